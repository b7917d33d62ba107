// bench_comm_step.h: the second half of `ropevit bench comm`: a data-parallel training step of a
// model, timed with the gradient all-reduce after the backward and overlapped with it
// (dist.overlap, train/distributed/grad_sync.h), side by side in one run.
#pragma once
#include <cstdint>
#include <string>

#include "train/distributed/communicator.h"

namespace rv::bench {

struct StepBenchOptions {
  std::string model = "vit_small_patch16_rope_mixed_224";  // ViT-S: 22M parameters, 88 MB of gradients
  int64_t batch = 2;       // images per rank
  int64_t img_size = 64;   // small images: the step is short, so the communication weighs
  int iters = 5;           // timed steps per mode (the median is printed), after one warm-up each
};

// Prints (rank 0) the median step time of: compute only (forward + backward, no all-reduce),
// all-reduce after the backward, all-reduce overlapped; and the share of the communication time
// (after minus compute only) that the overlap hides. Every rank must call it.
void bench_comm_step(train::dist::Communicator& comm, const StepBenchOptions& o);

}  // namespace rv::bench
