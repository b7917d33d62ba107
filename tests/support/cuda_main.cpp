// The main() of the CUDA test executables (tests/cuda/): without a usable CUDA device it prints
// one line saying why and exits with 77, which CTest counts and shows as "Skipped"
// (SKIP_RETURN_CODE in tests/CMakeLists.txt); with one it runs the doctest suite as usual.
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>
#include <exception>

#include "engine/backend.h"

int main(int argc, char** argv) {
  try {
    rv::backend::get(rv::cuda_device(0));
  } catch (const std::exception& e) {
    std::printf("SKIPPED: no CUDA device to test on: %s\n", e.what());
    return 77;
  }
  doctest::Context context(argc, argv);
  return context.run();
}
