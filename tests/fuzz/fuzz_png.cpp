// fuzz_png.cpp: libFuzzer target for the PNG decoders (stb_image, data/png_indices.cpp).
// The property is in image_fuzz_check.h.
//
//   CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DROPEVIT_FUZZ=ON -DROPEVIT_TESTS=OFF
//   cmake --build build-fuzz --target fuzz_png
//   build-fuzz/tests/fuzz/fuzz_png -max_len=8192 -max_total_time=300 /tmp/png-corpus tests/fixtures/data/images tests/fuzz/corpus_image
// (the first corpus folder receives new inputs; the fixture images and past findings are the seeds).
#include <cstdio>
#include <cstdlib>

#include "tests/fuzz/image_fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string problem = rv::fuzz::image_check_png(data, size);
  if (!problem.empty()) {
    std::fprintf(stderr, "fuzz_png: %s\n", problem.c_str());
    std::abort();
  }
  return 0;
}
