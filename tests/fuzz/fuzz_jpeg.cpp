// fuzz_jpeg.cpp: libFuzzer target for the JPEG decoders (whole: data/decode_jpeg.cpp, region:
// data/decode_jpeg_roi.cpp) and the EXIF parser (data/exif.cpp).
// The property is in image_fuzz_check.h.
//
//   CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DROPEVIT_FUZZ=ON -DROPEVIT_TESTS=OFF
//   cmake --build build-fuzz --target fuzz_jpeg
//   build-fuzz/tests/fuzz/fuzz_jpeg -max_len=16384 -max_total_time=300 /tmp/jpeg-corpus tests/fixtures/data/images \
//       tests/fixtures/data/images_roi tests/fuzz/corpus_image
// (the first corpus folder receives new inputs; the fixture images and past findings are the seeds).
#include <cstdio>
#include <cstdlib>

#include "tests/fuzz/image_fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string problem = rv::fuzz::image_check_decode(data, size);
  if (!problem.empty()) {
    std::fprintf(stderr, "fuzz_jpeg: %s\n", problem.c_str());
    std::abort();
  }
  return 0;
}
