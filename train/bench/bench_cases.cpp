// bench_cases.cpp: the case builders of bench_cases.h, and the direct OpenBLAS references.
#include "train/bench/bench_cases.h"

#include <cstdlib>
#include <memory>
#include <new>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/cpu/parallel.h"
#include "engine/ops/matmul.h"
#include "engine/rng.h"

#ifdef RV_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace rv::bench {

Tensor bench_input(const Shape& shape, uint64_t seed) {
  Generator g(seed);
  return randn(shape, g);
}

Tensor bench_leaf(const Shape& shape, uint64_t seed) {
  Tensor t = bench_input(shape, seed);
  t.requires_grad_(true);
  return t;
}

double f32_bytes(std::initializer_list<Shape> shapes) {
  double b = 0;
  for (const Shape& s : shapes) b += double(shape_numel(s)) * 4;
  return b;
}

Case forward_case(std::string group, std::string name, double flops, double bytes, RunFactory make) {
  Case c;
  c.group = std::move(group);
  c.name = std::move(name);
  c.flops = flops;
  c.bytes = bytes;
  if (make) c.make = [make = std::move(make)] { return CaseFns{.run = make()}; };
  return c;
}

namespace {

// The closures of a backward case, on inputs already built.
CaseFns backward_fns(const std::string& name, BackwardSetup setup) {
  for (const Tensor& l : setup.leaves)
    if (!l.requires_grad()) throw std::logic_error("backward_case '" + name + "': a leaf does not require grad");
  // The graph lives between prepare and run; the seed gradient is made on first use.
  struct State {
    Tensor out, grad;
  };
  auto st = std::make_shared<State>();
  CaseFns f;
  f.prepare = [st, leaves = std::move(setup.leaves), forward = std::move(setup.forward)] {
    for (Tensor l : leaves) l.zero_grad();
    bool prev = autograd::grad_enabled();
    autograd::set_grad_enabled(true);
    st->out = forward();
    autograd::set_grad_enabled(prev);
    if (!st->grad.defined()) st->grad = bench_input(st->out.shape(), 99);
  };
  f.run = [st] {
    st->out.backward(st->grad);
    st->out = Tensor();
  };
  return f;
}

}  // namespace

Case backward_case(std::string group, std::string name, double flops, double bytes,
                   std::function<BackwardSetup()> make) {
  Case c = forward_case(std::move(group), name, flops, bytes, nullptr);
  c.make = [name, make = std::move(make)] { return backward_fns(name, make()); };
  return c;
}

namespace {

// A fresh output buffer per reference call, allocated as engine tensors are (64-byte aligned,
// uninitialised): an op that returns a new tensor pays for the allocation and the first touch
// of its pages, so the reference does too, and the ratio compares the products alone.
struct Out {
  explicit Out(int64_t n) : p(static_cast<float*>(std::aligned_alloc(64, (size_t(n) * 4 + 63) / 64 * 64))) {
    if (!p) throw std::bad_alloc();
  }
  ~Out() { std::free(p); }
  Out(const Out&) = delete;
  Out& operator=(const Out&) = delete;
  float* p;
};

int64_t leading_rows(const Shape& x_shape) {
  int64_t m = 1;
  for (size_t i = 0; i + 1 < x_shape.size(); ++i) m *= x_shape[i];
  return m;
}

}  // namespace

Case linear_case(std::string group, std::string name, const Shape& x_shape, int64_t out_features, bool bias,
                 uint64_t seed) {
  const int64_t M = leading_rows(x_shape), K = x_shape.back(), Nout = out_features;
  Case c = forward_case(std::move(group), std::move(name), 2.0 * M * K * Nout,
                        f32_bytes({{M, K}, {Nout, K}, {M, Nout}}), nullptr);
#ifdef RV_HAVE_OPENBLAS
  c.reference_name = "cblas_sgemm";
#endif
  c.make = [=] {
    Tensor x = bench_input(x_shape, seed), w = bench_input({Nout, K}, seed + 1);
    Tensor b = bias ? bench_input({Nout}, seed + 2) : Tensor();
    CaseFns f{.run = [x, w, b] { linear(x, w, b); }};
#ifdef RV_HAVE_OPENBLAS
    f.reference = [x, w, b, M, K, Nout] {
      Out out(M * Nout);
      float* C = out.p;
      float beta = 0.0f;
      if (b.defined()) {  // the bias in every row of C, then C += x·Wᵀ: what linear does
        const float* bp = b.data<float>();
        cpu::parallel_for(M, 64, [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t j = 0; j < Nout; ++j) C[r * Nout + j] = bp[j];
        });
        beta = 1.0f;
      }
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, int(M), int(Nout), int(K), 1.0f, x.data<float>(), int(K),
                  w.data<float>(), int(K), beta, C, int(Nout));
    };
#endif
    return f;
  };
  return c;
}

Case linear_backward_case(std::string group, std::string name, const Shape& x_shape, int64_t out_features,
                          bool bias, uint64_t seed) {
  const int64_t M = leading_rows(x_shape), K = x_shape.back(), Nout = out_features;
  // dX: 2MKN, dW: 2MKN, db: MN.
  double flops = 4.0 * M * K * Nout + (bias ? double(M * Nout) : 0.0);
  double bytes = f32_bytes({{M, Nout}, {M, K}, {Nout, K}, {M, K}, {Nout, K}}) + (bias ? 4.0 * Nout : 0.0);
  Case c = forward_case(std::move(group), name, flops, bytes, nullptr);
#ifdef RV_HAVE_OPENBLAS
  c.reference_name = "cblas_sgemm x2 + sgemv";
#endif
  c.make = [=] {
    Tensor x = bench_leaf(x_shape, seed), w = bench_leaf({Nout, K}, seed + 1);
    Tensor b = bias ? bench_leaf({Nout}, seed + 2) : Tensor();
    std::vector<Tensor> leaves = {x, w};
    if (bias) leaves.push_back(b);
    CaseFns f = backward_fns(name, {leaves, [x, w, b] { return linear(x, w, b); }});
#ifdef RV_HAVE_OPENBLAS
    // Same inputs as the op: dY (M, Nout), X (M, K), W (Nout, K); fresh outputs each call.
    Tensor dy = bench_input({M, Nout}, 99);
    auto ones = std::make_shared<std::vector<float>>(size_t(M), 1.0f);
    f.reference = [dy, x, w, ones, M, K, Nout, bias] {
      Out dx(M * K), dw(Nout * K), db(bias ? Nout : 1);
      const float* g = dy.data<float>();
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(M), int(K), int(Nout), 1.0f, g, int(Nout),
                  w.data<float>(), int(K), 0.0f, dx.p, int(K));
      cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, int(Nout), int(K), int(M), 1.0f, g, int(Nout),
                  x.data<float>(), int(K), 0.0f, dw.p, int(K));
      if (bias)
        cblas_sgemv(CblasRowMajor, CblasTrans, int(M), int(Nout), 1.0f, g, int(Nout), ones->data(), 1, 0.0f, db.p,
                    1);
    };
#endif
    return f;
  };
  return c;
}

Case batched_matmul_case(std::string group, std::string name, const Shape& batch, int64_t M, int64_t K, int64_t N,
                         bool trans_b, uint64_t seed) {
  int64_t nb = shape_numel(batch);
  Shape as = batch, bs = batch, cs = batch;
  as.insert(as.end(), {M, K});
  if (trans_b)
    bs.insert(bs.end(), {N, K});
  else
    bs.insert(bs.end(), {K, N});
  cs.insert(cs.end(), {M, N});
  Case c = forward_case(std::move(group), std::move(name), 2.0 * nb * M * K * N, f32_bytes({as, bs, cs}), nullptr);
#ifdef RV_HAVE_OPENBLAS
  c.reference_name = "cblas_sgemm per batch entry";
#endif
  c.make = [=] {
    Tensor a = bench_input(as, seed), braw = bench_input(bs, seed + 1);
    Tensor b = trans_b ? braw.transpose(-2, -1) : braw;
    CaseFns f{.run = [a, b] { matmul(a, b); }};
#ifdef RV_HAVE_OPENBLAS
    f.reference = [a, braw, nb, M, K, N, trans_b] {
      const float* A = a.data<float>();
      const float* Bp = braw.data<float>();
      Out out(nb * M * N);
      float* C = out.p;
      cpu::parallel_for(nb, 1, [&](int64_t i0, int64_t i1) {
        for (int64_t i = i0; i < i1; ++i)
          cblas_sgemm(CblasRowMajor, CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, int(M), int(N), int(K),
                      1.0f, A + i * M * K, int(K), Bp + i * K * N, trans_b ? int(K) : int(N), 0.0f, C + i * M * N,
                      int(N));
      });
    };
#endif
    return f;
  };
  return c;
}

}  // namespace rv::bench
