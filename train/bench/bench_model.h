// bench_model.h: `ropevit bench model NAME`: a whole model's forward and training step, timed.
#pragma once

namespace rv::bench {

// argv[0] is "model". See the usage text in bench_model.cpp.
int bench_model(int argc, char** argv);

}  // namespace rv::bench
