// cpu_mirror_backend.h: a complete stand-in "cuda" backend whose device memory is host memory and
// whose every op entry is computed by the CPU engine, so a whole model (a ViT, a UperNet, its
// loss, AdamW, clipping, evaluation) can run the engine's device route on a machine without a
// GPU, and be compared with the same run on the CPU.
//
// What it proves: every op a model calls has a device path (an op without one throws "<op>: not
// implemented on cuda:0 yet" or reads device memory as host memory and fails), tensors stay on
// the device through forward, backward and the optimizer step, host <-> device copies happen
// where the code says, and the device entries are called with the arguments the CPU results
// need. What it does not prove: the CUDA kernels' own numerics (tests/cuda/ checks those on a GPU).
//
// How each entry computes: its inputs are copied to CPU tensors (.cpu(): HostMemoryBackend's
// copies), the CPU op of the same meaning runs, and the result is copied back (.to(cuda:0)).
// Backward entries that take the forward's input recompute the forward on the CPU with autograd
// and take its gradient (vjp); those that take the forward's output use the closed form. The
// window ops (im2col, pooling, resampling, flat gathers and scatters) are host loops over the
// layouts engine/backend.h documents. `calls` counts the entries used, by name.
#pragma once
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/cpu/dispatch.h"
#include "engine/ops/activation.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/index.h"
#include "engine/ops/layernorm.h"
#include "engine/ops/loss.h"
#include "engine/ops/math.h"
#include "engine/ops/matmul.h"
#include "engine/ops/reduce.h"
#include "engine/ops/rope.h"
#include "engine/ops/softmax.h"
#include "engine/rng.h"
#include "tests/support/host_memory_backend.h"

namespace rv::test {

class CpuMirrorBackend : public HostMemoryBackend {
 public:
  std::map<std::string, int64_t> calls;  // entry name -> times called

  // ---- helpers ----
  static Device dev() { return cuda_device(0); }
  static Tensor host(const Tensor& t) { return t.defined() ? t.detach().cpu() : Tensor(); }
  static Tensor back(const Tensor& t) { return t.contiguous().to(dev()); }
  // Grad mode on for a CPU recomputation (backward entries run with it off).
  struct GradOn {
    bool prev = autograd::grad_enabled();
    GradOn() { autograd::set_grad_enabled(true); }
    ~GradOn() { autograd::set_grad_enabled(prev); }
  };
  // Fresh CPU leaves (copies of device tensors) that want a gradient.
  static Tensor leaf(const Tensor& t, bool want = true) {
    Tensor h = host(t).clone();
    if (want && is_floating(h.dtype())) h.requires_grad_();
    return h;
  }
  // The gradient of leaf l after a backward, on the device (zeros when nothing reached it).
  static Tensor grad_of(const Tensor& l) {
    const Tensor g = l.grad();
    return back(g.defined() ? g : zeros(l.shape(), l.dtype()));
  }

  // ---- page-locked host memory (the loader's pinned batches): plain host memory here ----
  void* allocate_pinned_host(size_t n) override {
    ++calls["allocate_pinned_host"];
    return std::malloc(n ? n : 1);
  }
  void free_pinned_host(void* p) override { std::free(p); }
  void copy_from_host_async(void* d, const void* s, size_t n, int) override {
    ++calls["copy_from_host_async"];
    std::memcpy(d, s, n);
  }

  // ---- basic ----
  void fill(const Tensor& dst, double value) override {
    ++calls["fill"];
    copy_strided(dst, back(full(dst.shape(), value, dst.dtype())));
  }
  Tensor binary(backend::BinaryOp op, const Tensor& a, const Tensor& b) override {
    ++calls["binary"];
    const Tensor x = host(a), y = host(b);
    switch (op) {
      case backend::BinaryOp::add: return back(add(x, y));
      case backend::BinaryOp::sub: return back(sub(x, y));
      case backend::BinaryOp::mul: return back(mul(x, y));
      case backend::BinaryOp::div: return back(div(x, y));
    }
    throw std::logic_error("CpuMirrorBackend::binary: unknown op");
  }
  Tensor sum_all(const Tensor& x) override {
    ++calls["sum_all"];
    return back(sum(host(x)).to(x.dtype()));
  }

  // ---- softmax, cross entropy ----
  Tensor softmax_last_dim(const Tensor& x, bool log) override {
    ++calls["softmax"];
    return back(log ? log_softmax(host(x), -1) : softmax(host(x), -1));
  }
  Tensor softmax_last_dim_backward(const Tensor& dy, const Tensor& y, bool log) override {
    ++calls["softmax_backward"];
    const Tensor g = host(dy), o = host(y);
    const int64_t last = o.dim() - 1;
    if (log) return back(sub(g, mul(exp(o), sum(g, {last}, true))));
    return back(mul(o, sub(g, sum(mul(g, o), {last}, true))));
  }
  static CrossEntropyOptions ce_options(int64_t ignore_index, double smoothing, LossReduction r) {
    CrossEntropyOptions o;
    o.ignore_index = ignore_index;
    o.label_smoothing = smoothing;
    o.reduction = r == LossReduction::none ? Reduction::none : r == LossReduction::mean ? Reduction::mean : Reduction::sum;
    return o;
  }
  Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index, double smoothing,
                       LossReduction r, Tensor& lse, Tensor& count) override {
    ++calls["cross_entropy"];
    REQUIRE(target.dtype() == DType::i64);  // what the CUDA kernel reads (engine/backend.h)
    const Tensor x = host(logits), t = host(target);
    const DType math = x.dtype() == DType::f64 ? DType::f64 : DType::f32;
    const Tensor xm = x.to(math);
    const Tensor mx = max(xm, 1, true).values;
    lse = back(add(log(sum(exp(sub(xm, mx)), {1})), mx.squeeze(1)));
    count = back(sum(ne(t, double(ignore_index)).to(math)));
    return back(rv::cross_entropy(x, t, ce_options(ignore_index, smoothing, r)));
  }
  Tensor cross_entropy_backward(const Tensor& grad, const Tensor& logits, const Tensor& target, const Tensor&,
                                const Tensor&, int64_t ignore_index, double smoothing, LossReduction r) override {
    ++calls["cross_entropy_backward"];
    GradOn on;
    Tensor x = leaf(logits);
    rv::cross_entropy(x, host(target), ce_options(ignore_index, smoothing, r)).backward(host(grad));
    return grad_of(x);
  }

  // ---- layer norm, activations ----
  Tensor layer_norm_forward(const Tensor& x, int64_t C, const Tensor& weight, const Tensor& bias, double eps,
                            Tensor& mean_out, Tensor& rstd_out) override {
    ++calls["layer_norm"];
    const Tensor h = host(x);
    const Tensor rows = h.to(DType::f32).reshape({-1, C});
    mean_out = back(mean(rows, {1}));
    rstd_out = back(rsqrt(add(var(rows, {1}, 0.0), eps)));
    return back(layer_norm(h, {C}, host(weight), host(bias), eps));
  }
  // The closed form from the saved statistics (the forward's eps is inside rstd):
  //   xhat = (x - mean) rstd, dxhat = dy w, dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)),
  //   dw = sum over rows of dy xhat, db = sum over rows of dy (f32 math, rounded to the dtype).
  void layer_norm_backward(const Tensor& dy, const Tensor& x, int64_t C, const Tensor& weight, const Tensor& bias,
                           const Tensor& mean_in, const Tensor& rstd_in, bool need_dx, bool need_dw, bool need_db,
                           Tensor& dx, Tensor& dw, Tensor& db) override {
    ++calls["layer_norm_backward"];
    const Tensor g = host(dy).to(DType::f32).reshape({-1, C}), xr = host(x).to(DType::f32).reshape({-1, C});
    const Tensor mu = host(mean_in).reshape({-1, 1}), rs = host(rstd_in).reshape({-1, 1});
    const Tensor xhat = mul(sub(xr, mu), rs);
    if (need_dx) {
      const Tensor dxhat = weight.defined() ? mul(g, host(weight).to(DType::f32)) : g;
      const Tensor d = mul(rs, sub(sub(dxhat, mean(dxhat, {1}, true)), mul(xhat, mean(mul(dxhat, xhat), {1}, true))));
      dx = back(d.reshape(x.shape()).to(x.dtype()));
    }
    if (need_dw) dw = back(sum(mul(g, xhat), {0}).to(weight.dtype()));
    if (need_db) db = back(sum(g, {0}).to(bias.dtype()));
  }
  static Tensor activate(Activation a, const Tensor& x) {
    switch (a) {
      case Activation::gelu: return gelu(x);
      case Activation::gelu_tanh: return gelu(x, "tanh");
      case Activation::relu: return relu(x);
      case Activation::silu: return silu(x);
      case Activation::sigmoid: return sigmoid(x);
    }
    throw std::logic_error("CpuMirrorBackend: unknown activation");
  }
  Tensor activation_forward(Activation a, const Tensor& x) override {
    ++calls["activation"];
    return back(activate(a, host(x)));
  }
  Tensor activation_backward(Activation a, const Tensor& saved, const Tensor& dy) override {
    ++calls["activation_backward"];
    const Tensor g = host(dy), s = host(saved);
    if (a == Activation::relu) return back(mul(g, gt(s, 0.0).to(g.dtype())));
    if (a == Activation::sigmoid) return back(mul(g, mul(s, sub(1.0, s))));
    GradOn on;
    Tensor lx = leaf(saved);
    activate(a, lx).backward(g);
    return grad_of(lx);
  }

  // ---- rotary embedding ----
  Tensor rope_rotate(const Tensor& x, const Tensor& angles, int64_t skip, bool inverse) override {
    ++calls["rope_rotate"];
    const Tensor a = host(angles);
    return back(rope_apply(host(x), inverse ? neg(a) : a, skip));
  }
  void rope_rotate_qk(const Tensor& q, const Tensor& k, const Tensor& angles, int64_t skip, bool inverse,
                      Tensor& q_out, Tensor& k_out) override {
    q_out = rope_rotate(q, angles, skip, inverse);
    k_out = rope_rotate(k, angles, skip, inverse);
  }
  Tensor rope_angles_grad(const Tensor& g, const Tensor& x, const Tensor& angles, int64_t skip) override {
    ++calls["rope_angles_grad"];
    GradOn on;
    Tensor la = leaf(angles);
    rope_apply(host(x), la, skip).backward(host(g));
    return grad_of(la);
  }
  Tensor rope_angles_grad_qk(const Tensor& gq, const Tensor& q, const Tensor& gk, const Tensor& k,
                             const Tensor& angles, int64_t skip) override {
    return back(add(host(rope_angles_grad(gq, q, angles, skip)), host(rope_angles_grad(gk, k, angles, skip))));
  }
  Tensor rope_angles(const Tensor& freqs, const Tensor& pos) override {
    ++calls["rope_angles"];
    return back(rv::rope_angles(host(freqs), host(pos)));
  }
  void rope_angles_backward(const Tensor& g, const Tensor& freqs, const Tensor& pos, Tensor* dfreqs,
                            Tensor* dpos) override {
    ++calls["rope_angles_backward"];
    GradOn on;
    Tensor lf = leaf(freqs, dfreqs != nullptr), lp = leaf(pos, dpos != nullptr);
    rv::rope_angles(lf, lp).backward(host(g));
    if (dfreqs) *dfreqs = grad_of(lf);
    if (dpos) *dpos = grad_of(lp);
  }

  // ---- unary math, sums ----
  static Tensor unary_cpu(UnaryOp op, const Tensor& x, double a, double b) {
    switch (op) {
      case UnaryOp::neg: return neg(x);
      case UnaryOp::exp: return exp(x);
      case UnaryOp::log: return log(x);
      case UnaryOp::sqrt: return sqrt(x);
      case UnaryOp::rsqrt: return rsqrt(x);
      case UnaryOp::abs: return abs(x);
      case UnaryOp::tanh: return tanh(x);
      case UnaryOp::add_scalar: return add(x, a);
      case UnaryOp::mul_scalar: return mul(x, a);
      case UnaryOp::rsub_scalar: return sub(a, x);
      case UnaryOp::rdiv_scalar: return div(a, x);
      case UnaryOp::pow_scalar: return pow(x, a);
      case UnaryOp::clamp:
        return clamp(x, std::isinf(a) ? std::nullopt : std::optional<double>(a),
                     std::isinf(b) ? std::nullopt : std::optional<double>(b));
    }
    throw std::logic_error("CpuMirrorBackend: unknown unary op");
  }
  Tensor unary(UnaryOp op, const Tensor& x, double a, double b) override {
    ++calls[std::string("unary.") + unary_op_name(op)];
    return back(unary_cpu(op, host(x), a, b));
  }
  Tensor unary_backward(UnaryOp op, const Tensor& g_in, const Tensor& s_in, double a, double b) override {
    ++calls[std::string("unary_backward.") + unary_op_name(op)];
    const Tensor g = host(g_in), s = host(s_in);
    switch (op) {  // s is the forward's output for these four
      case UnaryOp::exp: return back(mul(g, s));
      case UnaryOp::sqrt: return back(div(mul(g, 0.5), s));
      case UnaryOp::rsqrt: return back(mul(g, mul(pow(s, 3.0), -0.5)));
      case UnaryOp::tanh: return back(mul(g, sub(1.0, mul(s, s))));
      default: break;
    }
    GradOn on;  // s is the forward's input: recompute and differentiate
    Tensor lx = leaf(s_in);
    unary_cpu(op, lx, a, b).backward(g);
    return grad_of(lx);
  }
  Tensor sum_dims(const Tensor& x, const std::vector<bool>& reduced, bool keepdim) override {
    ++calls["sum_dims"];
    Shape dims;
    for (size_t d = 0; d < reduced.size(); ++d)
      if (reduced[d]) dims.push_back(int64_t(d));
    return back(sum(host(x), dims, keepdim).to(x.dtype()));
  }

  // ---- optimizer: in place on the device memory (host memory here), AdamW's CPU arithmetic ----
  void adamw_step(const std::vector<AdamWParam>& params) override {
    ++calls["adamw_step"];
    for (const AdamWParam& a : params) {
      const double bc1 = 1.0 - std::pow(a.beta1, double(a.step)), bc2 = 1.0 - std::pow(a.beta2, double(a.step));
      cpu::dispatch_float(a.param->dtype(), "adamw_step", [&]<class T>() {
        T* p = static_cast<T*>(a.param->device_data());
        const T* g = static_cast<const T*>(a.grad->device_data());
        T* m = static_cast<T*>(a.exp_avg->device_data());
        T* v = static_cast<T*>(a.exp_avg_sq->device_data());
        T* vm = a.max_exp_avg_sq ? static_cast<T*>(a.max_exp_avg_sq->device_data()) : nullptr;
        const T decay = T(1.0 - a.lr * a.weight_decay), w1 = T(1.0 - a.beta1), b2 = T(a.beta2), w2 = T(1.0 - a.beta2);
        const T bc2_sqrt = T(std::sqrt(bc2)), eps = T(a.eps), neg_step = T(-(a.lr / bc1));
        for (int64_t k = 0; k < a.param->numel(); ++k) {
          const T gk = g[k], pk = p[k] * decay;
          const T mk = m[k] + w1 * (gk - m[k]);
          T vk = v[k] * b2 + w2 * gk * gk;
          m[k] = mk;
          v[k] = vk;
          if (vm) vk = vm[k] = vm[k] > vk ? vm[k] : vk;
          p[k] = pk + neg_step * mk / (std::sqrt(vk) / bc2_sqrt + eps);
        }
      });
    }
  }
  Tensor l2_norm_multi(const std::vector<Tensor>& tensors) override {
    ++calls["l2_norm_multi"];
    double ss = 0.0;
    for (const Tensor& t : tensors)
      for (double v : t.to_double_vector()) ss += v * v;
    return back(full({}, std::sqrt(ss), DType::f64));
  }
  void scale_by_norm(const std::vector<Tensor>& tensors, const Tensor& norm, double max_norm) override {
    ++calls["scale_by_norm"];
    const double coef = max_norm / (norm.item() + 1e-6);
    if (!(coef < 1.0 || std::isnan(coef))) return;
    for (const Tensor& t : tensors)
      cpu::dispatch_float(t.dtype(), "scale_by_norm", [&]<class T>() {
        T* x = static_cast<T*>(t.device_data());
        for (int64_t i = 0; i < t.numel(); ++i) x[i] *= T(coef);
      });
  }

  // ---- matmul ----
  Tensor gemm(const Tensor& a, const Tensor& b, const Tensor& bias, bool gelu_after) override {
    ++calls["gemm"];
    Tensor out = matmul(host(a), host(b));
    if (bias.defined()) out = add(out, host(bias));
    return back(gelu_after ? gelu(out) : out);
  }
  Tensor column_sum(const Tensor& x) override {
    ++calls["column_sum"];
    return back(sum(host(x), {0}));
  }

  // ---- conversion, comparisons, where, max / min along a dim, dropout ----
  void convert(const Tensor& dst, const Tensor& src) override {
    ++calls["convert"];
    copy_strided(dst, back(host(src).to(dst.dtype())));
  }
  Tensor compare(CompareOp op, const Tensor& a, const Tensor& b) override {
    ++calls["compare"];
    const Tensor x = host(a), y = host(b);
    switch (op) {
      case CompareOp::eq: return back(eq(x, y));
      case CompareOp::ne: return back(ne(x, y));
      case CompareOp::lt: return back(lt(x, y));
      case CompareOp::le: return back(le(x, y));
      case CompareOp::gt: return back(gt(x, y));
      case CompareOp::ge: return back(ge(x, y));
    }
    throw std::logic_error("CpuMirrorBackend: unknown compare op");
  }
  Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) override {
    ++calls["where"];
    return back(rv::where(host(cond), host(a), host(b)));
  }
  void minmax_dim(const Tensor& x, int64_t dim, bool keepdim, bool is_max, bool want_values, Tensor& values,
                  Tensor& indices) override {
    ++calls["minmax_dim"];
    const ValuesIndices r = is_max ? max(host(x), dim, keepdim) : min(host(x), dim, keepdim);
    indices = back(r.indices);
    if (want_values) values = back(r.values);
  }
  Tensor minmax_dim_backward(const Tensor& g, const Tensor& indices, const std::vector<int64_t>& in_shape,
                             int64_t dim) override {
    ++calls["minmax_dim_backward"];
    GradOn on;  // gather's adjoint: a scatter of g into the chosen positions
    Tensor z = zeros(in_shape, g.dtype());
    z.requires_grad_();
    Shape kept = in_shape;
    kept[size_t(dim)] = 1;
    gather(z, dim, host(indices).reshape(kept)).backward(host(g).reshape(kept));
    return grad_of(z);
  }
  Tensor dropout_apply(const Tensor& x_in, uint64_t seed, uint64_t stream, uint64_t offset, double keep,
                       int64_t group) override {
    ++calls["dropout_apply"];
    const Tensor x0 = host(x_in);
    const DType ct = x0.dtype() == DType::f64 ? DType::f64 : DType::f32;
    const Tensor x = x0.to(ct).contiguous();
    Tensor y = empty(x.shape(), ct);
    // engine/ops/dropout.cpp's rule: one 32-bit word per element against ceil(keep 2^24) 2^-24
    // (dropout), or one uniform per run of `group` elements against keep (drop_path, Dropout2d).
    const float thr = float(std::ceil(keep * 16777216.0) / 16777216.0);
    cpu::dispatch_float(ct, "dropout_apply", [&]<class T>() {
      const T* xp = x.data<T>();
      T* yp = y.data<T>();
      const T scale = keep > 0 ? T(1.0 / keep) : T(0);
      for (int64_t i = 0; i < x.numel(); ++i) {
        const bool kept = group == 1 ? word_to_uniform(philox_word(seed, stream, offset + uint64_t(i))) < thr
                                     : double(philox_uniform(seed, stream, offset + uint64_t(i / group))) < keep;
        yp[i] = kept ? xp[i] * scale : T(0);
      }
    });
    return back(y.to(x0.dtype()));
  }

  // ---- index_select ----
  Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) override {
    ++calls["index_select"];
    REQUIRE(index.device().is_cpu());
    return back(rv::index_select(host(x), dim, index));
  }
  Tensor index_select_backward(const Tensor& g, int64_t dim, const Tensor& index, const Shape& x_shape) override {
    ++calls["index_select_backward"];
    GradOn on;
    Tensor z = zeros(x_shape, g.dtype());
    z.requires_grad_();
    rv::index_select(z, dim, index).backward(host(g));
    return grad_of(z);
  }

  // ---- convolution windows (the layout of engine/backend.h) ----
  Tensor im2col(const Tensor& x_in, const ConvWindow& w) override {
    ++calls["im2col"];
    const Tensor x = host(x_in).contiguous();
    const int64_t B = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3), Cg = C / w.groups;
    const int64_t rows = B * w.Ho * w.Wo, cols = Cg * w.KH * w.KW;
    Tensor out = zeros({w.groups, rows, cols}, x.dtype());
    cpu::dispatch_float(x.dtype(), "im2col", [&]<class T>() {
      const T* xp = x.data<T>();
      T* op = out.data<T>();
      for (int64_t g = 0; g < w.groups; ++g)
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t b = r / (w.Ho * w.Wo), oh = (r / w.Wo) % w.Ho, ow = r % w.Wo;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t kh = 0; kh < w.KH; ++kh)
              for (int64_t kw = 0; kw < w.KW; ++kw) {
                const int64_t ih = oh * w.stride_h - w.pad_h + kh * w.dil_h, iw = ow * w.stride_w - w.pad_w + kw * w.dil_w;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                op[(g * rows + r) * cols + (c * w.KH + kh) * w.KW + kw] = xp[((b * C + g * Cg + c) * H + ih) * W + iw];
              }
        }
    });
    return back(out);
  }
  Tensor col2im(const Tensor& cols_in, const Shape& xs, const ConvWindow& w) override {
    ++calls["col2im"];
    const Tensor cl = host(cols_in).contiguous();
    const int64_t B = xs[0], C = xs[1], H = xs[2], W = xs[3], Cg = C / w.groups;
    const int64_t rows = B * w.Ho * w.Wo, cols = Cg * w.KH * w.KW;
    Tensor dx = zeros(xs, cl.dtype());
    cpu::dispatch_float(cl.dtype(), "col2im", [&]<class T>() {
      const T* cp = cl.data<T>();
      T* dp = dx.data<T>();
      for (int64_t g = 0; g < w.groups; ++g)
        for (int64_t r = 0; r < rows; ++r) {
          const int64_t b = r / (w.Ho * w.Wo), oh = (r / w.Wo) % w.Ho, ow = r % w.Wo;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t kh = 0; kh < w.KH; ++kh)
              for (int64_t kw = 0; kw < w.KW; ++kw) {
                const int64_t ih = oh * w.stride_h - w.pad_h + kh * w.dil_h, iw = ow * w.stride_w - w.pad_w + kw * w.dil_w;
                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                dp[((b * C + g * Cg + c) * H + ih) * W + iw] += cp[(g * rows + r) * cols + (c * w.KH + kh) * w.KW + kw];
              }
        }
    });
    return back(dx);
  }

  // ---- pooling (PoolWindows as engine/backend.h describes them) ----
  static double pool_divisor(PoolWindows::Mode m, const int64_t* a, const int64_t* b, int64_t divisor) {
    switch (m) {
      case PoolWindows::Mode::avg_adaptive: return double(a[1] - a[0]) * double(b[1] - b[0]);
      case PoolWindows::Mode::avg_fixed: return double(divisor);
      case PoolWindows::Mode::avg_padded: return double(a[2] * b[2]);
      default: return double((a[1] - a[0]) * (b[1] - b[0]));
    }
  }
  Tensor pool2d(const Tensor& x_in, const PoolWindows& w, Tensor* indices) override {
    ++calls["pool2d"];
    const Tensor x = host(x_in).contiguous();
    const int64_t OH = int64_t(w.hspan.size() / 3), OW = int64_t(w.wspan.size() / 3);
    Tensor out = empty({w.P, OH, OW}, x.dtype());
    Tensor idx = zeros({w.P, OH, OW}, DType::i64);
    cpu::dispatch_float(x.dtype(), "pool2d", [&]<class T>() {
      const T* xp = x.data<T>();
      T* op = out.data<T>();
      int64_t* ip = idx.data<int64_t>();
      for (int64_t e = 0; e < out.numel(); ++e) {
        const int64_t ow = e % OW, oh = (e / OW) % OH, p = e / (OW * OH);
        const int64_t* a = w.hspan.data() + 3 * oh;
        const int64_t* b = w.wspan.data() + 3 * ow;
        const T* xq = xp + p * w.H * w.W;
        if (w.mode == PoolWindows::Mode::max) {
          T best = -std::numeric_limits<T>::infinity();
          int64_t bi = a[0] * w.W + b[0];
          for (int64_t h = a[0]; h < a[1]; h += w.step_h)
            for (int64_t c = b[0]; c < b[1]; c += w.step_w)
              if (xq[h * w.W + c] > best || std::isnan(xq[h * w.W + c])) best = xq[h * w.W + c], bi = h * w.W + c;
          op[e] = best;
          ip[e] = bi;
        } else {
          double s = 0;
          for (int64_t h = a[0]; h < a[1]; ++h)
            for (int64_t c = b[0]; c < b[1]; ++c) s += double(xq[h * w.W + c]);
          op[e] = T(s / pool_divisor(w.mode, a, b, w.divisor));
        }
      }
    });
    if (indices) *indices = back(idx);
    return back(out);
  }
  Tensor pool2d_backward(const Tensor& g_in, const PoolWindows& w, const Tensor& indices) override {
    ++calls["pool2d_backward"];
    const Tensor g = host(g_in).contiguous();
    const Tensor idx = w.mode == PoolWindows::Mode::max ? host(indices).contiguous() : Tensor();
    const int64_t OH = int64_t(w.hspan.size() / 3), OW = int64_t(w.wspan.size() / 3);
    Tensor dx = zeros({w.P, w.H, w.W}, g.dtype());
    cpu::dispatch_float(g.dtype(), "pool2d_backward", [&]<class T>() {
      const T* gp = g.data<T>();
      T* dp = dx.data<T>();
      for (int64_t e = 0; e < g.numel(); ++e) {
        const int64_t ow = e % OW, oh = (e / OW) % OH, p = e / (OW * OH);
        const int64_t* a = w.hspan.data() + 3 * oh;
        const int64_t* b = w.wspan.data() + 3 * ow;
        T* dq = dp + p * w.H * w.W;
        if (w.mode == PoolWindows::Mode::max) {
          dq[idx.data<int64_t>()[e]] += gp[e];
          continue;
        }
        const T v = T(double(gp[e]) / pool_divisor(w.mode, a, b, w.divisor));
        for (int64_t h = std::max<int64_t>(a[0], 0); h < std::min(a[1], w.H); ++h)
          for (int64_t c = std::max<int64_t>(b[0], 0); c < std::min(b[1], w.W); ++c) dq[h * w.W + c] += v;
      }
    });
    return back(dx);
  }

  // ---- separable resampling (interpolate's tap tables) ----
  Tensor resample2d(const Tensor& x_in, const ResampleTaps& th, const ResampleTaps& tw) override {
    ++calls["resample2d"];
    const Tensor x = host(x_in).contiguous();
    const int64_t P = x.size(0);
    Tensor out = empty({P, th.out, tw.out}, x.dtype());
    cpu::dispatch_float(x.dtype(), "resample2d", [&]<class T>() {
      const T* xp = x.data<T>();
      T* op = out.data<T>();
      for (int64_t p = 0; p < P; ++p)
        for (int64_t oh = 0; oh < th.out; ++oh)
          for (int64_t ow = 0; ow < tw.out; ++ow) {
            T acc = 0;
            for (int64_t i = 0; i < th.n[size_t(oh)]; ++i) {
              const int64_t h = th.idx[size_t(oh * th.K + i)];
              T row = 0;
              for (int64_t j = 0; j < tw.n[size_t(ow)]; ++j)
                row += T(tw.w[size_t(ow * tw.K + j)]) * xp[(p * th.in + h) * tw.in + tw.idx[size_t(ow * tw.K + j)]];
              acc += T(th.w[size_t(oh * th.K + i)]) * row;
            }
            op[(p * th.out + oh) * tw.out + ow] = acc;
          }
    });
    return back(out);
  }
  Tensor resample2d_backward(const Tensor& g_in, const ResampleTaps& th, const ResampleTaps& tw) override {
    ++calls["resample2d_backward"];
    const Tensor g = host(g_in).contiguous();
    const int64_t P = g.size(0);
    Tensor dx = zeros({P, th.in, tw.in}, g.dtype());
    cpu::dispatch_float(g.dtype(), "resample2d_backward", [&]<class T>() {
      const T* gp = g.data<T>();
      T* dp = dx.data<T>();
      for (int64_t p = 0; p < P; ++p)
        for (int64_t oh = 0; oh < th.out; ++oh)
          for (int64_t ow = 0; ow < tw.out; ++ow) {
            const T go = gp[(p * th.out + oh) * tw.out + ow];
            for (int64_t i = 0; i < th.n[size_t(oh)]; ++i)
              for (int64_t j = 0; j < tw.n[size_t(ow)]; ++j)
                dp[(p * th.in + th.idx[size_t(oh * th.K + i)]) * tw.in + tw.idx[size_t(ow * tw.K + j)]] +=
                    T(th.w[size_t(oh * th.K + i)]) * T(tw.w[size_t(ow * tw.K + j)]) * go;
          }
    });
    return back(dx);
  }

  // ---- flat gathers and scatter-adds ----
  Tensor take(const Tensor& src, const Tensor& offsets) override {
    ++calls["take"];
    const Tensor s = host(src).contiguous();
    const int64_t n = offsets.numel();
    Tensor out = empty({n}, s.dtype());
    const size_t item = s.itemsize();
    const int64_t* o = offsets.data<int64_t>();
    for (int64_t i = 0; i < n; ++i)
      std::memcpy(static_cast<char*>(out.raw_data()) + size_t(i) * item,
                  static_cast<const char*>(s.raw_data()) + size_t(o[i]) * item, item);
    return back(out);
  }
  Tensor scatter_add_flat(const Tensor& x, const Tensor& src, const Tensor& targets, const Tensor& sources) override {
    ++calls["scatter_add_flat"];
    Tensor out = host(x).contiguous().clone();
    const Tensor s = host(src).contiguous();
    const int64_t* t = targets.data<int64_t>();
    const int64_t* so = sources.data<int64_t>();
    cpu::dispatch_float(out.dtype(), "scatter_add_flat", [&]<class T>() {
      T* op = out.data<T>();
      const T* sp = s.data<T>();
      for (int64_t p = 0; p < targets.numel(); ++p) op[t[p]] += sp[so[p]];
    });
    return back(out);
  }
};

// Installs a CpuMirrorBackend as the cuda backend for its lifetime (the previous one is put back).
struct CpuMirrorInstalled {
  CpuMirrorBackend fake;
  backend::DeviceBackend* previous = nullptr;
  CpuMirrorInstalled() { previous = backend::set_backend(DeviceType::cuda, &fake); }
  ~CpuMirrorInstalled() { backend::set_backend(DeviceType::cuda, previous); }
  CpuMirrorInstalled(const CpuMirrorInstalled&) = delete;
  CpuMirrorInstalled& operator=(const CpuMirrorInstalled&) = delete;
};

}  // namespace rv::test
