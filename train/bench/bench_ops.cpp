// bench_ops.cpp: the list of op benchmark cases, ViT-S/16's then Swin-T's (see
// bench_ops_vit.cpp and bench_ops_swin.cpp). Making the list builds no tensor: each case's
// inputs are made by its factory when it runs, outside the timed closures, and freed after;
// every closure runs the op exactly as the model would (same shapes, same layouts).
#include "train/bench/bench_ops.h"

#include "engine/autograd.h"
#include "train/bench/bench_cases.h"

namespace rv::bench {

std::vector<Case> op_cases() {
  std::vector<Case> cases;
  autograd::set_grad_enabled(false);  // forward timings: no graph (backward cases turn it on)
  add_vit_cases(cases);
  add_swin_cases(cases);
  return cases;
}

}  // namespace rv::bench
