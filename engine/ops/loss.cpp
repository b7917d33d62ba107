// loss.cpp: cross_entropy, binary_cross_entropy_with_logits and the regression losses,
// forward and backward side by side.
//
// Cross entropy is one fused kernel: a stable log-sum-exp per position, the loss against hard
// or soft targets, and in backward the "softmax minus target" gradient, never forming
// log_softmax as a tensor. With per-class weights w, label smoothing s and K classes, every
// target form reduces to one distribution-like row q over the classes:
//   class index y:  q_c = (1 - s) w_y [c == y] + (s / K) w_c
//   soft target t:  q_c = w_c ((1 - s) t_c + s / K)
//   loss = sum_c q_c (lse - x_c),   dloss/dx_c = softmax(x)_c * sum(q) - q_c
// which is PyTorch's formula term by term (the smoothing term of the index form is divided by
// the same weight sum as the NLL term under reduction mean).
//
// Positions are processed in panels of rows copied to a small buffer (see panel_lanes below),
// so every pass over the classes reads contiguous memory for (B, K, H, W). For (B, K) logits
// (S = 1) each row is already contiguous: its log-sum-exp is taken in place (row_lse), and the
// backward of class-index targets writes each gradient row directly (ce_backward_rows). exp and
// log are vm:: (vec_math.h): vectorisable in f32, libm in f64; the log-sum-exp's exps of
// x - max <= 0 use exp_ftz (subnormal terms become 0: invisible next to the max's term, 1).
// Every row is computed by one thread and sums run in a fixed order: results do not depend on
// the thread count.
// On a CUDA device, class-index targets without class weights run the backend's fused kernels
// (cross_entropy_device below; cuda/kernels/cross_entropy.cu).
#if defined(__AVX512F__) && defined(__GNUC__) && !defined(__clang__)
#pragma GCC target("prefer-vector-width=512")  // see activation.cpp
#endif
#include "engine/ops/loss.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <stdexcept>
#include <vector>

#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/dense.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/cpu/loops.h"
#include "engine/cpu/parallel.h"
#include "engine/cpu/row_max.h"
#include "engine/cpu/vec_math.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"

namespace rv {

using autograd::Grads;
using autograd::Needs;

const char* reduction_name(Reduction r) {
  switch (r) {
    case Reduction::none: return "none";
    case Reduction::mean: return "mean";
    case Reduction::sum: return "sum";
  }
  return "?";
}

Reduction parse_reduction(const std::string& s) {
  if (s == "none") return Reduction::none;
  if (s == "mean") return Reduction::mean;
  if (s == "sum") return Reduction::sum;
  throw std::invalid_argument("reduction: expected \"none\", \"mean\" or \"sum\", got \"" + s + "\"");
}

namespace {

// A detached, contiguous copy (or alias) of `t` in dtype `dt`, optionally broadcast to `shape`.
// Forward and backward kernels read raw pointers from these.
Tensor dense(const Tensor& t, DType dt, const Shape* shape = nullptr) {
  if (!shape || t.shape() == *shape) return cpu::dense(t, dt);
  return cpu::dense(t.detach().expand(*shape), dt);
}

void check_float(const char* op, const char* arg, const Tensor& t) {
  if (!is_floating(t.dtype()))
    throw std::invalid_argument(std::string(op) + ": expected " + arg + " to be a float tensor, got " +
                                dtype_name(t.dtype()));
}

// PyTorch refuses gradients for class weights and pos_weight; so do we, rather than drop them.
void check_constant(const char* op, const char* arg, const Tensor& t) {
  if (t.defined() && autograd::grad_enabled() && t.requires_grad())
    throw std::invalid_argument(std::string(op) + ": is not differentiable with respect to " + arg +
                                "; pass a tensor that does not require grad (e.g. " + arg + ".detach())");
}

// Sum of f(i) for i in [0, n), in f64. Fixed-size blocks are summed in parallel and the block
// sums added in block order, so the result has the same bits for any thread count.
template <class F>
double ordered_sum(int64_t n, F&& f) {
  constexpr int64_t kBlock = 4096;
  const int64_t blocks = (n + kBlock - 1) / kBlock;
  std::vector<double> part(std::max<int64_t>(blocks, 1), 0.0);
  cpu::parallel_for(blocks, 4, [&](int64_t b0, int64_t b1) {
    for (int64_t b = b0; b < b1; ++b) {
      const int64_t i1 = std::min(n, (b + 1) * kBlock);
      double s = 0;
      for (int64_t i = b * kBlock; i < i1; ++i) s += double(f(i));
      part[b] = s;
    }
  });
  double s = 0;
  for (double p : part) s += p;
  return s;
}

// The reduced loss as a tensor of dtype T: per element (none), or the ordered sum, divided by
// `count` for mean (0 / 0 = NaN, as PyTorch's mean over nothing).
template <class T, class F>
Tensor reduce_loss(const Shape& shape, Reduction red, double count, F&& elem) {
  const int64_t n = shape_numel(shape);
  if (red == Reduction::none) {
    Tensor out = empty(shape, dtype_of<T>());
    T* o = out.data<T>();
    cpu::parallel_for(n, 16384, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) o[i] = T(elem(i));
    });
    return out;
  }
  double s = ordered_sum(n, elem);
  if (red == Reduction::mean) s = s / count;
  return scalar_tensor(s, dtype_of<T>());
}

// How the incoming gradient of a reduced loss scales element i: g[i] (none), g (sum),
// g / count (mean).
template <class T>
struct GradScale {
  const T* per_elem = nullptr;
  T uniform = T(0);
  T operator()(int64_t i) const { return per_elem ? per_elem[i] : uniform; }
};

template <class T>
GradScale<T> grad_scale(const Tensor& g_dense, Reduction red, double count) {
  GradScale<T> s;
  if (red == Reduction::none)
    s.per_elem = g_dense.data<T>();
  else
    s.uniform = T(g_dense.item() / (red == Reduction::mean ? count : 1.0));
  return s;
}

// ---- regression losses ---------------------------------------------------------------------

enum class Regression { mse, l1, smooth_l1 };

// Loss and derivative as functions of d = input - target.
template <Regression R, class T>
inline T regression_value(T d, T beta) {
  if constexpr (R == Regression::mse) {
    return d * d;
  } else if constexpr (R == Regression::l1) {
    return std::abs(d);
  } else {
    const T a = std::abs(d);
    return a < beta ? T(0.5) * d * d / beta : a - T(0.5) * beta;
  }
}

template <Regression R, class T>
inline T regression_grad(T d, T beta) {
  if constexpr (R == Regression::mse) {
    return T(2) * d;
  } else if constexpr (R == Regression::l1) {
    return T((d > T(0)) - (d < T(0)));  // sign(0) = 0, as PyTorch
  } else {
    return d <= -beta ? T(-1) : (d >= beta ? T(1) : d / beta);
  }
}

template <Regression R>
Tensor regression_loss(const char* op, const Tensor& input, const Tensor& target, Reduction red, double beta) {
  check_float(op, "input", input);
  check_float(op, "target", target);
  const DType dt = promote_types(input.dtype(), target.dtype());
  const DType ct = cpu::compute_dtype(dt);
  const Shape shape = cpu::broadcast_shapes(input.shape(), target.shape(), op);
  const double count = double(shape_numel(shape));
  Tensor out;
  {
    Tensor x = dense(input, ct, &shape), t = dense(target, ct, &shape);
    out = cpu::dispatch_float(ct, op, [&]<class T>() {
      const T* xp = x.data<T>();
      const T* tp = t.data<T>();
      const T b = T(beta);
      return reduce_loss<T>(shape, red, count, [&](int64_t i) { return regression_value<R>(xp[i] - tp[i], b); });
    });
  }
  out = out.to(dt);
  if (auto rec = autograd::Recorder(op, {input, target})) {
    Tensor sx = rec.save(input), st = rec.save(target);
    rec.finish(out, [=](const Tensor& g, const Needs& need) -> Grads {
      Tensor x = dense(sx, ct, &shape), t = dense(st, ct, &shape), gd = dense(g, ct);
      Tensor gx = empty(shape, ct);  // d loss / d input, before undoing the broadcast
      cpu::dispatch_float(ct, op, [&]<class T>() {
        const T* xp = x.data<T>();
        const T* tp = t.data<T>();
        T* o = gx.data<T>();
        const GradScale<T> gs = grad_scale<T>(gd, red, count);
        const T b = T(beta);
        cpu::parallel_for(shape_numel(shape), 16384, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i) o[i] = gs(i) * regression_grad<R>(xp[i] - tp[i], b);
        });
      });
      // d loss / d target = -(d loss / d input)
      return {need[0] ? sum_to_shape(gx, sx.shape()).to(sx.dtype()) : Tensor(),
              need[1] ? sum_to_shape(neg(gx), st.shape()).to(st.dtype()) : Tensor()};
    });
  }
  return out;
}

}  // namespace

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  if (autocast::is_enabled()) {  // autocast policy (runs in f32; engine/autocast.h)
    const Tensor input_ac = autocast::cast_f32(input), target_ac = autocast::cast_f32(target);
    autocast::DisabledGuard inside;
    return mse_loss(input_ac, target_ac, reduction);
  }
  return regression_loss<Regression::mse>("mse_loss", input, target, reduction, 0.0);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  if (autocast::is_enabled()) {  // autocast policy (runs in f32; engine/autocast.h)
    const Tensor input_ac = autocast::cast_f32(input), target_ac = autocast::cast_f32(target);
    autocast::DisabledGuard inside;
    return l1_loss(input_ac, target_ac, reduction);
  }
  return regression_loss<Regression::l1>("l1_loss", input, target, reduction, 0.0);
}

Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction, double beta) {
  if (autocast::is_enabled()) {  // autocast policy (runs in f32; engine/autocast.h)
    const Tensor input_ac = autocast::cast_f32(input), target_ac = autocast::cast_f32(target);
    autocast::DisabledGuard inside;
    return smooth_l1_loss(input_ac, target_ac, reduction, beta);
  }
  if (!(beta >= 0))
    throw std::invalid_argument("smooth_l1_loss: beta must be >= 0, got " + std::to_string(beta));
  if (beta == 0)  // the quadratic zone vanishes; PyTorch calls l1_loss here too
    return regression_loss<Regression::l1>("smooth_l1_loss", input, target, reduction, 0.0);
  return regression_loss<Regression::smooth_l1>("smooth_l1_loss", input, target, reduction, beta);
}

// ---- binary cross entropy with logits --------------------------------------------------------

namespace {

// softplus(-x) = log(1 + exp(-x)), without overflow for either sign of x.
template <class T>
inline T softplus_neg(T x) {
  return std::log1p(std::exp(-std::abs(x))) + std::max(-x, T(0));
}

template <class T>
inline T sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

// Raw pointers of one BCE problem; weight / pos_weight are null when absent.
template <class T>
struct BceData {
  const T *x, *t, *w, *p;
  // l = w [ (1 - t) x + (1 + (p - 1) t) softplus(-x) ]  (= w [p t sp(-x) + (1 - t) sp(x)])
  T loss(int64_t i) const {
    const T xv = x[i], tv = t[i];
    const T lw = p ? T(1) + (p[i] - T(1)) * tv : T(1);
    const T l = (T(1) - tv) * xv + lw * softplus_neg(xv);
    return w ? w[i] * l : l;
  }
  // dl/dx = w [ (1 + (p - 1) t) sigmoid(x) - p t ]
  T dx(int64_t i) const {
    const T tv = t[i], pv = p ? p[i] : T(1);
    const T d = (T(1) + (pv - T(1)) * tv) * sigmoid(x[i]) - pv * tv;
    return w ? w[i] * d : d;
  }
  // dl/dt = w [ (p - 1) softplus(-x) - x ]
  T dt(int64_t i) const {
    const T xv = x[i];
    const T d = p ? (p[i] - T(1)) * softplus_neg(xv) - xv : -xv;
    return w ? w[i] * d : d;
  }
};

}  // namespace

Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight,
                                        const Tensor& pos_weight, Reduction reduction) {
  if (autocast::is_enabled()) {  // autocast policy (runs in f32; engine/autocast.h)
    const Tensor input_ac = autocast::cast_f32(input), target_ac = autocast::cast_f32(target), weight_ac = autocast::cast_f32(weight), pos_weight_ac = autocast::cast_f32(pos_weight);
    autocast::DisabledGuard inside;
    return binary_cross_entropy_with_logits(input_ac, target_ac, weight_ac, pos_weight_ac, reduction);
  }
  const char* op = "binary_cross_entropy_with_logits";
  check_float(op, "input", input);
  check_float(op, "target", target);
  if (target.shape() != input.shape())
    throw std::invalid_argument(std::string(op) + ": expected target of the input's shape " +
                                shape_str(input.shape()) + ", got " + shape_str(target.shape()));
  const Shape shape = input.shape();
  DType dt = promote_types(input.dtype(), target.dtype());
  for (auto [arg, t] : {std::pair<const char*, const Tensor*>{"weight", &weight}, {"pos_weight", &pos_weight}}) {
    if (!t->defined()) continue;
    check_float(op, arg, *t);
    check_constant(op, arg, *t);
    bool fits = t->dim() <= input.dim();  // right-aligned, each dim 1 or the input's
    for (int64_t d = 1; fits && d <= t->dim(); ++d)
      fits = t->size(-d) == 1 || t->size(-d) == input.size(-d);
    if (!fits)
      throw std::invalid_argument(std::string(op) + ": expected " + arg + " to broadcast to the input's shape " +
                                  shape_str(shape) + ", got " + shape_str(t->shape()));
    dt = promote_types(dt, t->dtype());
  }
  const DType ct = cpu::compute_dtype(dt);
  const double count = double(shape_numel(shape));

  // Raw pointers into the dense tensors `hold` keeps alive. Captures by value: backward reuses it.
  auto make_data = [shape, ct]<class T>(const Tensor& x, const Tensor& t, const Tensor& w, const Tensor& p,
                                         std::vector<Tensor>& hold) {
    hold = {dense(x, ct), dense(t, ct), w.defined() ? dense(w, ct, &shape) : Tensor(),
            p.defined() ? dense(p, ct, &shape) : Tensor()};
    return BceData<T>{hold[0].data<T>(), hold[1].data<T>(), hold[2].defined() ? hold[2].data<T>() : nullptr,
                      hold[3].defined() ? hold[3].data<T>() : nullptr};
  };

  Tensor out = cpu::dispatch_float(ct, op, [&]<class T>() {
    std::vector<Tensor> hold;
    const BceData<T> d = make_data.template operator()<T>(input, target, weight, pos_weight, hold);
    return reduce_loss<T>(shape, reduction, count, [&](int64_t i) { return d.loss(i); });
  });
  out = out.to(dt);

  if (auto rec = autograd::Recorder(op, {input, target})) {
    Tensor sx = rec.save(input), st = rec.save(target), sw = rec.save(weight), sp = rec.save(pos_weight);
    rec.finish(out, [=](const Tensor& g, const Needs& need) -> Grads {
      Tensor gd = dense(g, ct);
      Tensor gx = need[0] ? empty(shape, ct) : Tensor();
      Tensor gt = need[1] ? empty(shape, ct) : Tensor();
      cpu::dispatch_float(ct, op, [&]<class T>() {
        std::vector<Tensor> hold;
        const BceData<T> d = make_data.template operator()<T>(sx, st, sw, sp, hold);
        const GradScale<T> gs = grad_scale<T>(gd, reduction, count);
        T* gxp = gx.defined() ? gx.data<T>() : nullptr;
        T* gtp = gt.defined() ? gt.data<T>() : nullptr;
        cpu::parallel_for(shape_numel(shape), 8192, [&](int64_t i0, int64_t i1) {
          for (int64_t i = i0; i < i1; ++i) {
            if (gxp) gxp[i] = gs(i) * d.dx(i);
            if (gtp) gtp[i] = gs(i) * d.dt(i);
          }
        });
      });
      return {need[0] ? gx.to(sx.dtype()) : Tensor(), need[1] ? gt.to(st.dtype()) : Tensor()};
    });
  }
  return out;
}

// ---- cross entropy ---------------------------------------------------------------------------

namespace {

// One cross-entropy problem over dense buffers. Logits are (B, K, S) with S the product of the
// spatial dims (1 for (B, K)); a "row" r is one position (b, s), whose class c lies at
// row_offset(r) + c * S.
template <class T>
struct CeData {
  const T* x = nullptr;            // (B, K, S) logits
  const int64_t* index = nullptr;  // (B, S) class indices, or null
  const T* soft = nullptr;         // (B, K, S) target probabilities, or null
  const T* w = nullptr;            // (K) class weights, or null
  int64_t B = 0, K = 0, S = 1;
  int64_t ignore_index = -100;
  double smoothing = 0;

  int64_t rows() const { return B * S; }
  int64_t row_offset(int64_t r) const { return (r / S) * K * S + r % S; }
  T weight(int64_t c) const { return w ? w[c] : T(1); }
  bool ignored(int64_t r) const { return index && index[r] == ignore_index; }
};

// Rows are processed in panels of up to kMaxLanes rows. A panel's (K, lanes) block of logits is
// first copied into a small per-thread buffer buf[c * lanes + j]; every later pass reads the
// buffer with the lane loop innermost and contiguous. Reading the logits in place would walk
// K addresses S apart on every pass, and for power-of-two S (a 512 x 512 image) those all fall
// into the same cache sets and evict each other.
constexpr int64_t kMaxLanes = 64;
constexpr int64_t kPanelValues = 8192;  // K * lanes budget per buffer: 32 KiB of f32
constexpr int64_t kPanelGrain = 32768;  // logits per thread at least (a (32, 1000) batch runs on one)

inline int64_t panel_lanes(int64_t K) {
  return std::clamp<int64_t>(kPanelValues / std::max<int64_t>(K, 1), 1, kMaxLanes);
}

// Calls f(first_row, n, off, buf) for panels of at most L rows covering [0, R), in parallel.
// off[j] is the offset of row first_row + j; buf has room for `buffers` blocks of K * L values.
template <class T, class F>
void for_each_panel(const CeData<T>& p, int64_t L, int buffers, F&& f) {
  const int64_t R = p.rows();
  const int64_t panels = (R + L - 1) / L;
  const int64_t grain = std::max<int64_t>(1, kPanelGrain / std::max<int64_t>(1, p.K * L));
  cpu::parallel_for(panels, grain, [&](int64_t q0, int64_t q1) {
    std::vector<T> buf(size_t(buffers * p.K * L));
    int64_t off[kMaxLanes];
    for (int64_t q = q0; q < q1; ++q) {
      const int64_t r0 = q * L, n = std::min(L, R - r0);
      for (int64_t j = 0; j < n; ++j) off[j] = p.row_offset(r0 + j);
      f(r0, n, off, buf.data());
    }
  });
}

// buf[c * L + j] = src[off[j] + c * S] for the panel's n rows, and the reverse.
template <class T>
void gather_panel(const T* src, const CeData<T>& p, const int64_t* off, int64_t n, int64_t L, T* buf) {
  if (p.S == 1) {  // each row is contiguous in src
    for (int64_t j = 0; j < n; ++j)
      for (int64_t c = 0; c < p.K; ++c) buf[c * L + j] = src[off[j] + c];
  } else {         // each class is contiguous across neighbouring rows
    for (int64_t c = 0; c < p.K; ++c)
      for (int64_t j = 0; j < n; ++j) buf[c * L + j] = src[off[j] + c * p.S];
  }
}

template <class T>
void scatter_panel(const T* buf, const CeData<T>& p, const int64_t* off, int64_t n, int64_t L, T* dst) {
  if (p.S == 1) {
    for (int64_t j = 0; j < n; ++j)
      for (int64_t c = 0; c < p.K; ++c) dst[off[j] + c] = buf[c * L + j];
  } else {
    for (int64_t c = 0; c < p.K; ++c)
      for (int64_t j = 0; j < n; ++j) dst[off[j] + c * p.S] = buf[c * L + j];
  }
}

// log sum_c exp(x[c]) of one contiguous row of K >= 1 logits: the max and the sum of exp(x - max)
// in kRowLanes fixed partial lanes of T combined in a fixed order (vectorised, deterministic).
// The exps go through a small buffer so that the exp loop is a plain vectorisable loop.
constexpr int kRowLanes = 16;
template <class T>
T row_lse(const T* x, int64_t K) {
  const T m = cpu::row_max(x, K);  // vectorised lanes (GCC leaves a ?: max loop scalar)
  constexpr int64_t kChunk = 256;
  T e[kChunk], sl[kRowLanes] = {};
  for (int64_t c0 = 0; c0 < K; c0 += kChunk) {
    const int64_t n = std::min(kChunk, K - c0);
    for (int64_t i = 0; i < n; ++i) e[i] = cpu::vm::exp_ftz(x[c0 + i] - m);
    int64_t i = 0;
    for (; i + kRowLanes <= n; i += kRowLanes)
      for (int l = 0; l < kRowLanes; ++l) sl[l] += e[i + l];
    for (; i < n; ++i) sl[0] += e[i];
  }
  T sum = 0;
  for (int l = 0; l < kRowLanes; ++l) sum += sl[l];
  return m + cpu::vm::log(sum);  // all -inf: m = -inf, sum = NaN -> NaN, as PyTorch
}

// Forward: lse[r] = log sum_c exp(x_rc); loss[r] (unreduced, f64); wsum[r] = the row's share of
// the mean's denominator (w_y, 0 if ignored; 1 for soft targets).
template <class T>
void ce_forward(const CeData<T>& p, T* lse, double* loss, double* wsum) {
  const int64_t K = p.K, L = panel_lanes(K);
  const double s = p.smoothing, sK = s / double(K);
  // The panel buffer holds what the soft-target and smoothing terms read, and (B, K, d...) rows;
  // plain (B, K) rows without smoothing are read in place and need none.
  const int buffers = p.soft ? 2 : (p.S > 1 || s > 0) ? 1 : 0;
  for_each_panel(p, L, buffers, [&](int64_t r0, int64_t n, const int64_t* off, T* xb) {
    T m[kMaxLanes], l[kMaxLanes];
    double acc[kMaxLanes];
    if (buffers > 0) gather_panel(p.x, p, off, n, L, xb);
    if (p.S == 1) {
      for (int64_t j = 0; j < n; ++j) l[j] = row_lse(p.x + off[j], K);
    } else {
      for (int64_t j = 0; j < n; ++j) {
        m[j] = -std::numeric_limits<T>::infinity();
        acc[j] = 0;
      }
      for (int64_t c = 0; c < K; ++c)
        for (int64_t j = 0; j < n; ++j) m[j] = std::max(m[j], xb[c * L + j]);
      for (int64_t c = 0; c < K; ++c)
        for (int64_t j = 0; j < n; ++j) acc[j] += double(cpu::vm::exp_ftz(xb[c * L + j] - m[j]));
      for (int64_t j = 0; j < n; ++j) l[j] = m[j] + T(std::log(acc[j]));
    }
    for (int64_t j = 0; j < n; ++j) {
      lse[r0 + j] = l[j];
      acc[j] = 0;
    }
    if (p.soft) {  // loss = sum_c w_c ((1 - s) t_c + s / K) (lse - x_c)
      T* tb = xb + K * L;
      gather_panel(p.soft, p, off, n, L, tb);
      for (int64_t c = 0; c < K; ++c) {
        const double wc = double(p.weight(c));
        for (int64_t j = 0; j < n; ++j)
          acc[j] += wc * ((1 - s) * double(tb[c * L + j]) + sK) * double(l[j] - xb[c * L + j]);
      }
      for (int64_t j = 0; j < n; ++j) {
        loss[r0 + j] = acc[j];
        wsum[r0 + j] = 1;
      }
      return;
    }
    // class index y: loss = (1 - s) w_y (lse - x_y) + (s / K) sum_c w_c (lse - x_c)
    if (s > 0) {
      for (int64_t c = 0; c < K; ++c) {
        const double wc = double(p.weight(c));
        for (int64_t j = 0; j < n; ++j) acc[j] += wc * double(l[j] - xb[c * L + j]);
      }
    }
    for (int64_t j = 0; j < n; ++j) {
      const int64_t r = r0 + j;
      if (p.ignored(r)) {
        loss[r] = 0;
        wsum[r] = 0;
        continue;
      }
      const int64_t y = p.index[r];
      const double wy = double(p.weight(y));
      loss[r] = (1 - s) * wy * double(l[j] - p.x[off[j] + y * p.S]) + sK * acc[j];
      wsum[r] = wy;
    }
  });
}

// Backward of class-index targets for (B, K) logits: each gradient row is written in place,
//   gx[r][c] = g_r (exp(x_rc - lse_r) qsum_r - (s / K) w_c) - [c == y_r] g_r (1 - s) w_y,
// one vectorised pass per row, rows in parallel.
template <class T>
void ce_backward_rows(const CeData<T>& p, const T* lse, const GradScale<T>& gs, T* gx) {
  const int64_t K = p.K;
  const double s = p.smoothing, sK = s / double(K);
  double wsum_all = 0;  // sum_c w_c, in a fixed order
  for (int64_t c = 0; c < K; ++c) wsum_all += double(p.weight(c));
  cpu::parallel_for(p.rows(), std::max<int64_t>(1, kPanelGrain / K), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const T* x = p.x + r * K;
      T* o = gx + r * K;
      const bool ign = p.ignored(r);
      const T g = ign ? T(0) : gs(r), l = lse[r];
      const T qsum = ign ? T(0) : T((1 - s) * double(p.weight(p.index[r])) + sK * wsum_all);
      if (p.w) {
        for (int64_t c = 0; c < K; ++c) o[c] = g * (cpu::vm::exp(x[c] - l) * qsum - T(sK) * p.w[c]);
      } else {
        const T smooth = T(sK);
        for (int64_t c = 0; c < K; ++c) o[c] = g * (cpu::vm::exp(x[c] - l) * qsum - smooth);
      }
      if (!ign) o[p.index[r]] -= g * T(1 - s) * p.weight(p.index[r]);  // the one-hot part of q
    }
  });
}

// Backward: gx = gs_r (softmax(x_r) * sum(q_r) - q_r) and, for soft targets,
// gt = gs_r (1 - s) w_c (lse - x_c), where gs_r is the incoming gradient's scale for row r.
// Both are computed in the panel buffers (in place of x and t) and then scattered.
template <class T>
void ce_backward(const CeData<T>& p, const T* lse, const GradScale<T>& gs, T* gx, T* gt) {
  if (!p.soft && p.S == 1) {
    if (gx) ce_backward_rows(p, lse, gs, gx);
    return;
  }
  const int64_t K = p.K, L = panel_lanes(K);
  const double s = p.smoothing, sK = s / double(K);
  double wsum_all = 0;  // sum_c w_c, in a fixed order
  for (int64_t c = 0; c < K; ++c) wsum_all += double(p.weight(c));
  for_each_panel(p, L, p.soft ? 2 : 1, [&](int64_t r0, int64_t n, const int64_t* off, T* xb) {
    T g[kMaxLanes], qsum[kMaxLanes], lj[kMaxLanes];
    gather_panel(p.x, p, off, n, L, xb);
    for (int64_t j = 0; j < n; ++j) {
      g[j] = p.ignored(r0 + j) ? T(0) : gs(r0 + j);
      lj[j] = lse[r0 + j];
    }
    if (p.soft) {
      T* tb = xb + K * L;
      gather_panel(p.soft, p, off, n, L, tb);
      double acc[kMaxLanes] = {};
      for (int64_t c = 0; c < K; ++c) {
        const double wc = double(p.weight(c));
        for (int64_t j = 0; j < n; ++j) acc[j] += wc * ((1 - s) * double(tb[c * L + j]) + sK);
      }
      for (int64_t j = 0; j < n; ++j) qsum[j] = T(acc[j]);
      for (int64_t c = 0; c < K; ++c) {
        const T wc = p.weight(c);
        T* xc = xb + c * L;
        T* tc = tb + c * L;
        for (int64_t j = 0; j < n; ++j) {
          const T d = lj[j] - xc[j];  // -log softmax
          const T q = wc * (T(1 - s) * tc[j] + T(sK));
          xc[j] = g[j] * (cpu::vm::exp(-d) * qsum[j] - q);  // d loss / d x
          tc[j] = g[j] * T(1 - s) * wc * d;             // d loss / d t
        }
      }
      if (gx) scatter_panel(xb, p, off, n, L, gx);
      if (gt) scatter_panel(tb, p, off, n, L, gt);
      return;
    }
    for (int64_t j = 0; j < n; ++j) {
      const int64_t r = r0 + j;
      qsum[j] = p.ignored(r) ? T(0) : T((1 - s) * double(p.weight(p.index[r])) + sK * wsum_all);
    }
    for (int64_t c = 0; c < K; ++c) {
      T* xc = xb + c * L;
      const T smooth_c = T(sK) * p.weight(c);
      for (int64_t j = 0; j < n; ++j) xc[j] = g[j] * (cpu::vm::exp(xc[j] - lj[j]) * qsum[j] - smooth_c);
    }
    for (int64_t j = 0; j < n; ++j) {  // the one-hot part of q
      const int64_t r = r0 + j;
      if (p.ignored(r)) continue;
      const int64_t y = p.index[r];
      xb[y * L + j] -= g[j] * T(1 - s) * p.weight(y);
    }
    if (gx) scatter_panel(xb, p, off, n, L, gx);
  });
}

// Cross entropy on a device (logits or target not on the CPU), after the shape checks above:
// class-index targets without class weights. The logits become contiguous (R, K) rows, the class
// dim moved last (permute + contiguous, recorded by autograd, which carries the gradient back to
// (B, K, d1, ...)); the backend's fused kernels do the rest on the device, the mean's divisor
// included (cuda/kernels/cross_entropy.cu).
Tensor cross_entropy_device(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opt, bool soft,
                            const Shape& pos_shape) {
  const Device dev = logits.device();
  if (target.device() != dev)
    throw std::invalid_argument("cross_entropy: logits on " + dev.str() + " and target on " + target.device().str() +
                                "; move one with .to(device)");
  if (soft)
    throw std::runtime_error("cross_entropy: soft (probability) targets are not implemented on " + dev.str() + " yet");
  if (opt.weight.defined())
    throw std::runtime_error("cross_entropy: class weights (the weight option) are not implemented on " + dev.str() +
                             " yet");
  const int64_t K = logits.shape()[1], R = shape_numel(pos_shape);
  Tensor x = logits;
  if (logits.dim() > 2) {  // (B, K, d1, ...) -> (B, d1, ..., K): rows in pos_shape's order
    Shape perm = {0};
    for (int64_t d = 2; d < logits.dim(); ++d) perm.push_back(d);
    perm.push_back(1);
    x = logits.permute(perm);
  }
  x = x.contiguous().reshape({R, K});
  // The kernels read int64 class indices; any other integer dtype (a segmentation label map
  // comes as u8, a quarter of the bytes over the bus) is widened on the device, as the CPU path
  // reads every integer dtype.
  Tensor t = target.detach();
  if (t.dtype() != DType::i64) t = t.to(DType::i64);
  t = t.contiguous().reshape({R});
  using LR = backend::DeviceBackend::LossReduction;
  const LR red = opt.reduction == Reduction::none ? LR::none : opt.reduction == Reduction::mean ? LR::mean : LR::sum;
  Tensor lse, count;
  Tensor out = backend::get(dev).cross_entropy(x, t, opt.ignore_index, opt.label_smoothing, red, lse, count);
  if (auto rec = autograd::Recorder("cross_entropy", {x})) {
    Tensor sx = rec.save(x), st = rec.save(t);
    const int64_t ignore_index = opt.ignore_index;
    const double smoothing = opt.label_smoothing;
    rec.finish(out, [=](const Tensor& g, const Needs&) -> Grads {
      return {backend::get(sx.device())
                  .cross_entropy_backward(g.contiguous(), sx, st, lse, count, ignore_index, smoothing, red)};
    });
  }
  return red == LR::none ? out.reshape(pos_shape) : out;
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& opt) {
  if (autocast::is_enabled()) {  // autocast policy (runs in f32; engine/autocast.h)
    const Tensor logits_ac = autocast::cast_f32(logits), target_ac = autocast::cast_f32(target);
    autocast::DisabledGuard inside;
    return cross_entropy(logits_ac, target_ac, opt);
  }
  const char* op = "cross_entropy";
  check_float(op, "logits", logits);
  if (target.dtype() == DType::boolean)
    throw std::invalid_argument("cross_entropy: expected target to hold class indices (an integer dtype) or "
                                "probabilities (a float dtype), got bool");
  const bool soft = is_floating(target.dtype());
  if (logits.dim() == 0)
    throw std::invalid_argument("cross_entropy: expected logits of shape (B, K), (B, K, d1, ...) or (K), got []");
  if (logits.dim() == 1) {  // unbatched: one position
    if (target.dim() != (soft ? 1 : 0))
      throw std::invalid_argument("cross_entropy: unbatched logits " + shape_str(logits.shape()) +
                                  " expect a target of shape " + (soft ? shape_str(logits.shape()) : "[]") +
                                  ", got " + shape_str(target.shape()));
    Tensor out = cross_entropy(logits.unsqueeze(0), target.unsqueeze(0), opt);
    return opt.reduction == Reduction::none ? out.squeeze(0) : out;
  }
  const Shape& xs = logits.shape();
  Shape pos_shape = xs;  // (B, d1, ...): one loss per position
  pos_shape.erase(pos_shape.begin() + 1);
  if (soft && target.shape() != xs)
    throw std::invalid_argument("cross_entropy: soft (float) targets must have the logits' shape " + shape_str(xs) +
                                ", got " + shape_str(target.shape()));
  if (!soft && target.shape() != pos_shape)
    throw std::invalid_argument("cross_entropy: class-index targets must have shape " + shape_str(pos_shape) +
                                " (the logits' shape " + shape_str(xs) + " without the class dim 1), got " +
                                shape_str(target.shape()));
  if (!(opt.label_smoothing >= 0.0 && opt.label_smoothing <= 1.0))
    throw std::invalid_argument("cross_entropy: label_smoothing must be in [0, 1], got " +
                                std::to_string(opt.label_smoothing));
  const int64_t B = xs[0], K = xs[1], S = shape_numel(xs) / std::max<int64_t>(1, B * K);
  const int64_t R = shape_numel(pos_shape);  // = B * S, also when B or K is 0
  DType dt = soft ? promote_types(logits.dtype(), target.dtype()) : logits.dtype();
  if (opt.weight.defined()) {
    check_float(op, "weight", opt.weight);
    check_constant(op, "weight", opt.weight);
    if (opt.weight.shape() != Shape{K})
      throw std::invalid_argument("cross_entropy: expected weight of shape [" + std::to_string(K) +
                                  "] (one per class), got " + shape_str(opt.weight.shape()));
  }
  if (K == 0 && R > 0)
    throw std::invalid_argument("cross_entropy: logits " + shape_str(xs) + " have no classes (dim 1 is 0)");
  if (!logits.device().is_cpu() || !target.device().is_cpu())
    return cross_entropy_device(logits, target, opt, soft, pos_shape);
  const DType ct = cpu::compute_dtype(dt);

  // Dense operands (captured by value: backward reuses these helpers). A class-index target is
  // range-checked here, before any parallel loop.
  auto prepare = [soft, ct](const Tensor& x, const Tensor& t, const Tensor& w, std::vector<Tensor>& hold) {
    hold = {dense(x, ct), soft ? dense(t, ct) : dense(t, DType::i64), w.defined() ? dense(w, ct) : Tensor()};
  };
  std::vector<Tensor> hold;
  prepare(logits, target, opt.weight, hold);
  if (!soft) {
    const int64_t* y = hold[1].data<int64_t>();
    for (int64_t r = 0; r < R; ++r)
      if (y[r] != opt.ignore_index && (y[r] < 0 || y[r] >= K))
        throw std::out_of_range("cross_entropy: target index " + std::to_string(y[r]) + " at flat position " +
                                std::to_string(r) + " is out of range for " + std::to_string(K) +
                                " classes (expected 0 <= index < " + std::to_string(K) + ", or ignore_index " +
                                std::to_string(opt.ignore_index) + ")");
  }
  auto data = [soft, B, K, S, ignore_index = opt.ignore_index,
               smoothing = opt.label_smoothing]<class T>(const std::vector<Tensor>& h) {
    CeData<T> p;
    p.x = h[0].data<T>();
    if (soft)
      p.soft = h[1].data<T>();
    else
      p.index = h[1].data<int64_t>();
    p.w = h[2].defined() ? h[2].data<T>() : nullptr;
    p.B = B;
    p.K = K;
    p.S = S;
    p.ignore_index = ignore_index;
    p.smoothing = smoothing;
    return p;
  };

  Tensor lse = empty({R}, ct);  // log-sum-exp per position, reused by backward
  double denom = 0;             // the mean's denominator
  Tensor out = cpu::dispatch_float(ct, op, [&]<class T>() {
    const CeData<T> p = data.template operator()<T>(hold);
    std::vector<double> loss(R), wsum(R);
    ce_forward(p, lse.data<T>(), loss.data(), wsum.data());
    denom = ordered_sum(R, [&](int64_t r) { return wsum[r]; });
    return reduce_loss<T>(pos_shape, opt.reduction, denom, [&](int64_t r) { return loss[r]; });
  });
  out = out.to(dt);

  if (auto rec = autograd::Recorder(op, {logits, target})) {
    Tensor sx = rec.save(logits), st = rec.save(target), sw = rec.save(opt.weight);
    const Reduction red = opt.reduction;
    rec.finish(out, [=](const Tensor& g, const Needs& need) -> Grads {
      std::vector<Tensor> h;
      prepare(sx, st, sw, h);
      Tensor gd = dense(g, ct);
      Tensor gx = need[0] ? empty(xs, ct) : Tensor();
      Tensor gt = need[1] ? empty(xs, ct) : Tensor();
      cpu::dispatch_float(ct, op, [&]<class T>() {
        const CeData<T> p = data.template operator()<T>(h);
        ce_backward(p, lse.data<T>(), grad_scale<T>(gd, red, denom), gx.defined() ? gx.data<T>() : nullptr,
                    gt.defined() ? gt.data<T>() : nullptr);
      });
      return {need[0] ? gx.to(sx.dtype()) : Tensor(), need[1] ? gt.to(st.dtype()) : Tensor()};
    });
  }
  return out;
}

}  // namespace rv
