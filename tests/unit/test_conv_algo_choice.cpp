// test_conv_algo_choice.cpp: the rule by which cuda/kernels/cudnn_conv.cpp picks one of cuDNN's
// ranked convolution algorithms (cuda/kernels/conv_algo_choice.h), on made-up rankings: cuDNN's
// order is kept, and an unsupported, non-deterministic (atomics), TF32 (for f32) or too hungry
// candidate is passed over; none left is -1 (the caller's error).
#include <doctest/doctest.h>

#include <vector>

#include "cuda/kernels/conv_algo_choice.h"

using rv::cuda::ConvAlgoCandidate;
using rv::cuda::pick_conv_algo;

namespace {
constexpr size_t kGiB = size_t(1) << 30;
ConvAlgoCandidate usable_algo(int algo, size_t ws = 0) { return {algo, true, true, true, ws}; }
}  // namespace

TEST_CASE("conv algorithm choice: cuDNN's first usable candidate, in cuDNN's order") {
  CHECK(pick_conv_algo({usable_algo(7), usable_algo(1)}, true, kGiB) == 0);
  std::vector<ConvAlgoCandidate> ranked = {
      {5, false, true, true, 0},     // not supported for this shape
      {0, true, false, true, 0},     // non-deterministic (atomic adds)
      {6, true, true, false, 0},     // tensor-op math (TF32 for f32)
      usable_algo(3, 2 * kGiB),      // workspace over the cap
      usable_algo(1, 1024),          // the one
      usable_algo(2, 0),             // usable too, but ranked after
  };
  CHECK(pick_conv_algo(ranked, true, kGiB) == 4);
  CHECK(pick_conv_algo(ranked, false, kGiB) == 2);       // bf16 / f64: any math will do
  CHECK(pick_conv_algo(ranked, true, 4 * kGiB) == 3);    // a larger cap admits the hungry one
  CHECK(pick_conv_algo(ranked, true, 512) == 5);         // a smaller cap skips to the zero-workspace one
  CHECK(pick_conv_algo({ranked[0], ranked[1]}, false, kGiB) == -1);
  CHECK(pick_conv_algo({}, true, kGiB) == -1);
}
