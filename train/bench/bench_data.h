// bench_data.h: `ropevit bench data`: the input pipeline alone (data set + transforms + loader),
// in images per second.
#pragma once

namespace rv::bench {

// argv[0] is "data". See the usage text in bench_data.cpp.
int bench_data(int argc, char** argv);

}  // namespace rv::bench
