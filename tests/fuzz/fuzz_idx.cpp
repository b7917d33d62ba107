// fuzz_idx.cpp: libFuzzer target for the IDX reader (data::parse_idx, plain and gzip input).
// The property is in idx_fuzz_check.h.
//
//   CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DROPEVIT_FUZZ=ON -DROPEVIT_TESTS=OFF
//   cmake --build build-fuzz --target fuzz_idx
//   build-fuzz/tests/fuzz/fuzz_idx -max_len=4096 -max_total_time=300 /tmp/idx-corpus tests/fuzz/corpus_idx
// (the first corpus folder receives new inputs; the committed seeds stay unchanged).
#include <cstdio>
#include <cstdlib>

#include "tests/fuzz/idx_fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string problem = rv::fuzz::idx_check_one(data, size);
  if (!problem.empty()) {
    std::fprintf(stderr, "fuzz_idx: %s\n", problem.c_str());
    std::abort();
  }
  return 0;
}
