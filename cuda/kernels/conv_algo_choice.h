// conv_algo_choice.h: which of cuDNN's ranked convolution algorithms cuda/kernels/cudnn_conv.cpp
// runs, as a plain function over plain records (no cudnn.h), so that tests/unit/
// test_conv_algo_choice.cpp checks the rule on any machine. Header-only: the CPU-only build, which
// compiles nothing under cuda/, runs that test too.
//
// The rule: the first candidate in cuDNN's order (its heuristics' guess of the fastest first) that
// is supported, deterministic (the project's rule: the same bits on every run, so the weight-
// gradient algorithms that add with atomics never run), for f32 uses FP32 FMA math (never TF32:
// a like-for-like reference for our FFMA kernels), and fits the workspace cap.
#pragma once
#include <cstddef>
#include <vector>

namespace rv::cuda {

struct ConvAlgoCandidate {
  int algo = 0;                // cuDNN's enum value for the pass
  bool supported = false;      // status == CUDNN_STATUS_SUCCESS
  bool deterministic = false;  // determinism == CUDNN_DETERMINISTIC
  bool fma_math = false;       // mathType == CUDNN_FMA_MATH
  size_t workspace = 0;        // bytes (cuDNN's exact figure for this algorithm)
};

// The index into `ranked` of the algorithm to run, or -1 when none qualifies.
inline int pick_conv_algo(const std::vector<ConvAlgoCandidate>& ranked, bool require_fma, size_t max_workspace) {
  for (size_t i = 0; i < ranked.size(); ++i) {
    const ConvAlgoCandidate& c = ranked[i];
    if (!c.supported || !c.deterministic) continue;
    if (require_fma && !c.fma_math) continue;
    if (c.workspace > max_workspace) continue;
    return int(i);
  }
  return -1;
}

}  // namespace rv::cuda
