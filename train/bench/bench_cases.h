// bench_cases.h: helpers shared by the files that define the op benchmark cases
// (bench_ops_vit.cpp, bench_ops_swin.cpp): inputs, byte counts, and the builders of forward,
// backward and linear / batched-matmul cases.
//
// Counting conventions (so that GFLOP/s and GB/s mean the same thing in every row):
//   flops: the arithmetic of the op's formula, once (a recompute an implementation chooses to
//          do is not counted); each exp / erf / sin / cos / sqrt counts as one.
//   bytes: every input read once and every output written once (the least traffic the op
//          can have), f32 = 4 bytes.
// References (OpenBLAS) allocate a fresh output per call as the engine's ops do, so that the
// ratio compares the products and not malloc and first-touch page faults.
// A backward case times only out.backward(grad): its forward graph is recorded, untimed, by the
// case's `prepare` before every call, and the leaves' .grad are dropped first, so each call
// produces fresh gradients exactly as one training step does.
// Inputs are built lazily: every builder takes (or makes) a factory that creates the inputs
// when the case runs, never when the list of cases is made (see Case in bench_harness.h).
// Inputs are N(0,1) from fixed seeds, so a case sees the same numbers however it is selected.
#pragma once
#include <functional>
#include <initializer_list>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "train/bench/bench_harness.h"

namespace rv::bench {

Tensor bench_input(const Shape& shape, uint64_t seed);           // N(0,1), f32
Tensor bench_leaf(const Shape& shape, uint64_t seed);            // the same, requiring grad
double f32_bytes(std::initializer_list<Shape> shapes);           // sum of numel * 4

// A forward case (grad mode is off while the cases run). `make` builds the inputs and returns
// the closure to time, which captures them:
//   forward_case(G, "add residual", flops, bytes, [] {
//     Tensor a = bench_input(s, 1), b = bench_input(s, 2);
//     return [=] { add(a, b); };
//   });
using RunFactory = std::function<std::function<void()>()>;
Case forward_case(std::string group, std::string name, double flops, double bytes, RunFactory make);

// What a backward case's factory builds: `forward` makes the output from `leaves` (which must
// require grad); the timed call is out.backward(g) with a fixed N(0,1) g of the output's shape.
struct BackwardSetup {
  std::vector<Tensor> leaves;
  std::function<Tensor()> forward;
};
Case backward_case(std::string group, std::string name, double flops, double bytes,
                   std::function<BackwardSetup()> make);

// linear(x (M, K), W (Nout, K), b (Nout)) forward, with the direct OpenBLAS call on the same
// shapes as its reference: preload C with the bias, then cblas_sgemm(x, Wᵀ, beta = 1).
// `x_shape` is the model's shape of x (..., K); M is the product of its leading dims.
Case linear_case(std::string group, std::string name, const Shape& x_shape, int64_t out_features, bool bias,
                 uint64_t seed);
// The backward of the same linear: dX = dY·W, dW = dYᵀ·X, db = column sums of dY. Reference:
// two cblas_sgemm calls and one cblas_sgemv (db = dYᵀ·1).
Case linear_backward_case(std::string group, std::string name, const Shape& x_shape, int64_t out_features,
                          bool bias, uint64_t seed);

// matmul(a, b) on batched operands a (batch..., M, K), b (batch..., K, N) where b may be a
// transposed view (trans_b: b is made as (batch..., N, K) and transposed). Reference: each
// batch entry through cblas_sgemm, entries spread over the threads (OpenBLAS runs single-
// threaded inside an OpenMP region), which is how a batched BLAS call works.
Case batched_matmul_case(std::string group, std::string name, const Shape& batch, int64_t M, int64_t K, int64_t N,
                         bool trans_b, uint64_t seed);

void add_vit_cases(std::vector<Case>& cases);   // bench_ops_vit.cpp
void add_swin_cases(std::vector<Case>& cases);  // bench_ops_swin.cpp

}  // namespace rv::bench
