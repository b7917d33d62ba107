// bench_data.h: `ropevit bench data`: the input pipeline alone (data set + transforms + loader),
// in images per second.
#pragma once
#include <cstdint>
#include <string>

namespace rv::bench {

// argv[0] is "data". See the usage text in bench_data.cpp.
int bench_data(int argc, char** argv);

// --dataset imagefolder (bench_data_jpeg.cpp): JPEGs of `dir`, or `synthetic` "WxH" ones when
// dir is empty; `count` files; output side `size` (0: 224); augmentation `aa` ("3a", "none", "rand-...").
// Two pipelines side by side (not for RandAugment): `aa` without ColorJitter (the bar's) and with
// ColorJitter `jitter` (0.3: DeiT III's recipe; 0: the first one only).
int bench_imagefolder(const std::string& dir, const std::string& synthetic, int64_t count, int64_t workers, int64_t batch,
                      int64_t size, const std::string& aa, double jitter, double reprob, double seconds);

}  // namespace rv::bench
