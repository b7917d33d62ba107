// bench_ops.h: the op benchmark cases, on the shapes of ViT-S/16 at 224 with batch 32 and of
// Swin-T's first stage (windows of 7x7 tokens).
#pragma once
#include <vector>

#include "train/bench/bench_harness.h"

namespace rv::bench {

std::vector<Case> op_cases();

}  // namespace rv::bench
