// bench_decode.h: `ropevit bench decode`, per-image cost of JPEG decoding and of each augmentation
// chain on one thread (bench_decode.cpp); `ropevit bench data` times a whole loader instead.
#pragma once

namespace rv::bench {

int bench_decode(int argc, char** argv);

}  // namespace rv::bench
