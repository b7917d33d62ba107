// bench_ops.cpp: one Case per (op, shape). Inputs are made once, outside the timed closure;
// every closure runs the op exactly as the model would (same shapes, same layouts).
//
// ViT-S/16 @224, batch 32: B=32, N=197 tokens (196 patches + CLS), C=384, NH=6, HD=64,
// MLP hidden 1536. Swin-T stage 1 @224, batch 32: 56x56 tokens of C=96 in 7x7 windows,
// so 2048 windows of N=49 tokens, NH=3, HD=32.
#include "train/bench/bench_ops.h"

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/rng.h"

namespace rv::bench {

namespace {

constexpr int64_t B = 32, N = 197, C = 384;

Tensor input(const Shape& shape, uint64_t seed) {
  Generator g(seed);
  return randn(shape, g);
}

double f32_bytes(std::initializer_list<Shape> shapes) {
  double b = 0;
  for (const Shape& s : shapes) b += double(shape_numel(s)) * 4;
  return b;
}

}  // namespace

std::vector<Case> op_cases() {
  std::vector<Case> cases;
  autograd::set_grad_enabled(false);  // forward timings: no graph recording

  {  // residual add: x + attn(x)
    Shape s{B, N, C};
    Tensor a = input(s, 1), b = input(s, 2);
    cases.push_back({"add (32,197,384)", "vit_s16", double(shape_numel(s)), f32_bytes({s, s, s}),
                     [a, b] { add(a, b); }});
  }
  {  // a row sum: the mean over tokens that a pooled head takes
    Shape s{B, N, C};
    Tensor a = input(s, 3);
    cases.push_back({"sum over tokens (32,197,384)", "vit_s16", double(shape_numel(s)),
                     f32_bytes({s, {B, C}}), [a] { sum(a, {1}); }});
  }
  return cases;
}

}  // namespace rv::bench
