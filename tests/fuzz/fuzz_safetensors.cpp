// fuzz_safetensors.cpp: libFuzzer target for the safetensors reader (SafetensorsFile::from_buffer)
// and, on inputs it accepts, a write/read round trip. The property is in safetensors_fuzz_check.h.
//
//   CXX=clang++ cmake -S . -B build-fuzz -G Ninja -DROPEVIT_FUZZ=ON -DROPEVIT_TESTS=OFF
//   cmake --build build-fuzz --target fuzz_safetensors
//   build-fuzz/tests/fuzz/fuzz_safetensors -dict=tests/fuzz/safetensors.dict -max_len=4096 \
//       -max_total_time=300 /tmp/st-corpus tests/fuzz/corpus
// (the first corpus folder receives new inputs; the committed seeds stay unchanged).
#include <cstdio>
#include <cstdlib>

#include "tests/fuzz/safetensors_fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string problem = rv::fuzz::safetensors_check_one(data, size);
  if (!problem.empty()) {
    std::fprintf(stderr, "fuzz_safetensors: %s\n", problem.c_str());
    std::abort();
  }
  return 0;
}
