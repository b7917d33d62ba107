// fuzz_coco.cpp: libFuzzer target for the COCO instances reader (data::CocoInstances::parse).
// The property is in coco_fuzz_check.h.
//
//   CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DROPEVIT_FUZZ=ON -DROPEVIT_TESTS=OFF
//   cmake --build build-fuzz --target fuzz_coco
//   build-fuzz/tests/fuzz/fuzz_coco -max_len=4096 -max_total_time=300 /tmp/coco-corpus tests/fuzz/corpus_coco
// (the first corpus folder receives new inputs; the committed seeds stay unchanged).
#include <cstdio>
#include <cstdlib>

#include "tests/fuzz/coco_fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string problem = rv::fuzz::coco_check_one(data, size);
  if (!problem.empty()) {
    std::fprintf(stderr, "fuzz_coco: %s\n", problem.c_str());
    std::abort();
  }
  return 0;
}
