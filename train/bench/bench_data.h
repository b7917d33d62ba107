// bench_data.h: `ropevit bench data`, the image input pipeline's throughput (bench_data.cpp).
#pragma once

namespace rv::bench {

int bench_data(int argc, char** argv);

}  // namespace rv::bench
