// attention.cpp: scaled_dot_product_attention, the front end: argument checks, dtype handling,
// choosing the implementation, and the autograd record. The kernels are in engine/cpu/attention_*.
#include "engine/ops/attention.h"

#include <atomic>
#include <cmath>
#include <string>

#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/cpu/attention_kernel.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/cpu/loops.h"
#include "engine/ops/attention_device.h"
#include "engine/ops/reduce.h"
#include "engine/profile/op_counter.h"

namespace rv {

using autograd::Grads;
using autograd::Needs;

namespace {

constexpr const char* kOp = "scaled_dot_product_attention";

std::atomic<AttentionImpl> g_override{AttentionImpl::automatic};

std::string err(const std::string& what) { return std::string(kOp) + ": " + what; }

// A detached view of t in dtype dt whose last dim is contiguous (a copy only when needed).
Tensor rows_view(const Tensor& t, DType dt) {
  Tensor d = t.detach();
  if (d.dtype() != dt) d = d.to(dt);
  if (d.dim() > 0 && d.stride(-1) != 1 && d.size(-1) > 1) d = d.contiguous();
  return d;
}

cpu::RowStrides row_strides(const Tensor& t) { return {t.stride(0), t.stride(1), t.stride(2)}; }

// The inputs, converted, and everything a kernel needs to read them.
struct Prepared {
  Tensor q, k, v, bias, mask;
  Shape score_shape;  // (B, NH, Nq, Nk)
  double scale = 1.0;
};

template <class T>
cpu::AttentionArgs<T> make_args(const Prepared& p) {
  cpu::AttentionArgs<T> a;
  a.B = p.q.size(0);
  a.NH = p.q.size(1);
  a.Nq = p.q.size(2);
  a.Nk = p.k.size(2);
  a.HD = p.q.size(3);
  a.HDv = p.v.size(3);
  a.scale = T(p.scale);
  a.q = p.q.data<T>();
  a.k = p.k.data<T>();
  a.v = p.v.data<T>();
  a.sq = row_strides(p.q);
  a.sk = row_strides(p.k);
  a.sv = row_strides(p.v);
  if (p.bias.defined()) {
    a.bias = p.bias.data<T>();
    Shape s = cpu::broadcast_strides(p.bias, p.score_shape);
    for (int d = 0; d < 4; ++d) a.bias_s[d] = s[d];
  }
  if (p.mask.defined()) {
    a.mask = p.mask.data<bool>();
    Shape s = cpu::broadcast_strides(p.mask, p.score_shape);
    for (int d = 0; d < 4; ++d) a.mask_s[d] = s[d];
  }
  return a;
}

void check_broadcast(const Tensor& t, const Shape& score_shape, const char* name) {
  bool ok = t.dim() <= 4;
  for (int64_t d = 1; ok && d <= t.dim(); ++d)
    ok = t.size(-d) == 1 || t.size(-d) == score_shape[4 - d];
  if (!ok)
    throw std::invalid_argument(err(std::string("expected `") + name + "` to broadcast to the scores " +
                                    shape_str(score_shape) + ", got " + shape_str(t.shape())));
}

}  // namespace

void set_attention_impl_override(AttentionImpl impl) { g_override.store(impl); }
AttentionImpl attention_impl_override() { return g_override.load(); }

AttentionImpl resolve_attention_impl(AttentionImpl impl, int64_t Nq, int64_t Nk) {
  if (impl != AttentionImpl::automatic) return impl;
  AttentionImpl forced = g_override.load();
  if (forced != AttentionImpl::automatic) return forced;
  // Very short rows (Swin windows of 3x3) fit the reference's whole-matrix loops; from
  // kFusedMinKeys keys on the fused kernels are faster and keep O(N) memory per head.
  (void)Nq;
  return Nk >= kFusedMinKeys ? AttentionImpl::fused : AttentionImpl::reference;
}

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias,
                                    const Tensor& mask, std::optional<double> scale, AttentionImpl impl) {
  if (autocast::is_enabled()) {  // autocast policy (runs in bf16/f16; engine/autocast.h)
    const Tensor q_ac = autocast::cast_lower(q), k_ac = autocast::cast_lower(k), v_ac = autocast::cast_lower(v), bias_ac = autocast::cast_lower(bias);
    autocast::DisabledGuard inside;
    return scaled_dot_product_attention(q_ac, k_ac, v_ac, bias_ac, mask, scale, impl);
  }
  // ---- checks ----
  for (auto [t, name] : {std::pair{&q, "q"}, std::pair{&k, "k"}, std::pair{&v, "v"}}) {
    if (!t->defined()) throw std::invalid_argument(err(std::string("`") + name + "` is undefined"));
    if (!is_floating(t->dtype()))
      throw std::invalid_argument(err(std::string("expected `") + name + "` to be a float tensor, got " +
                                      dtype_name(t->dtype())));
    if (t->dim() != 4)
      throw std::invalid_argument(err(std::string("expected `") + name + "` of shape (B, NH, N, HD), got " +
                                      shape_str(t->shape())));
  }
  if (k.dtype() != q.dtype() || v.dtype() != q.dtype())
    throw std::invalid_argument(err(std::string("expected q, k and v of one dtype, got ") + dtype_name(q.dtype()) +
                                    ", " + dtype_name(k.dtype()) + ", " + dtype_name(v.dtype())));
  const int64_t B = q.size(0), NH = q.size(1), Nq = q.size(2), HD = q.size(3), Nk = k.size(2);
  if (k.size(0) != B || k.size(1) != NH || k.size(3) != HD)
    throw std::invalid_argument(err("expected `k` of shape (" + std::to_string(B) + ", " + std::to_string(NH) +
                                    ", Nk, " + std::to_string(HD) + ") to match q " + shape_str(q.shape()) +
                                    ", got " + shape_str(k.shape())));
  if (v.size(0) != B || v.size(1) != NH || v.size(2) != Nk)
    throw std::invalid_argument(err("expected `v` of shape (" + std::to_string(B) + ", " + std::to_string(NH) +
                                    ", " + std::to_string(Nk) + ", HDv) to match k " + shape_str(k.shape()) +
                                    ", got " + shape_str(v.shape())));
  if (HD == 0 && !scale) throw std::invalid_argument(err("head dim 0 needs an explicit scale"));
  const Shape score_shape = {B, NH, Nq, Nk};
  if (bias.defined()) {
    if (!is_floating(bias.dtype()))
      throw std::invalid_argument(err(std::string("expected `bias` to be a float tensor, got ") +
                                      dtype_name(bias.dtype())));
    check_broadcast(bias, score_shape, "bias");
  }
  if (mask.defined()) {
    if (mask.dtype() != DType::boolean)
      throw std::invalid_argument(err(std::string("expected `mask` to be a bool tensor (true = keep), got ") +
                                      dtype_name(mask.dtype())));
    if (mask.requires_grad()) throw std::invalid_argument(err("`mask` cannot require grad"));
    check_broadcast(mask, score_shape, "mask");
  }

  if (!q.device().is_cpu())
    return attention_composed_on_device(q, k, v, bias, mask, scale ? *scale : 1.0 / std::sqrt(double(HD)));

  // ---- forward ----
  const DType ct = cpu::compute_dtype(q.dtype());
  Prepared p;
  p.q = rows_view(q, ct);
  p.k = rows_view(k, ct);
  p.v = rows_view(v, ct);
  if (bias.defined()) p.bias = bias.detach().dtype() == ct ? bias.detach() : bias.detach().to(ct);
  if (mask.defined()) p.mask = mask.detach();
  p.score_shape = score_shape;
  p.scale = scale ? *scale : 1.0 / std::sqrt(double(HD));
  const int64_t HDv = v.size(3);
  const AttentionImpl chosen = resolve_attention_impl(impl, Nq, Nk);

  Tensor out_ct = empty({B, NH, Nq, HDv}, ct);
  Tensor stats;  // reference: probabilities (B, NH, Nq, Nk); fused: logsumexp (B, NH, Nq)
  cpu::dispatch_float(ct, kOp, [&]<class T>() {
    auto args = make_args<T>(p);
    if (chosen == AttentionImpl::fused) {
      stats = empty({B, NH, Nq}, ct);
      cpu::attention_fused_forward<T>(args, out_ct.data<T>(), stats.data<T>());
    } else {
      stats = empty(score_shape, ct);
      cpu::attention_reference_forward<T>(args, out_ct.data<T>(), stats.data<T>());
    }
  });
  Tensor out = q.dtype() == ct ? out_ct : out_ct.to(q.dtype());
  profile::count_macs(kOp, B * NH * Nq * Nk * (HD + HDv));  // q·kᵀ, then probabilities·v

  // ---- backward ----
  if (auto rec = autograd::Recorder(kOp, {q, k, v, bias})) {
    Prepared sp;  // saved: detached, version-checked aliases of the converted inputs
    sp.q = rec.save(p.q);
    sp.k = rec.save(p.k);
    sp.v = rec.save(p.v);
    if (p.bias.defined()) sp.bias = rec.save(p.bias);
    if (p.mask.defined()) sp.mask = rec.save(p.mask);
    sp.score_shape = p.score_shape;
    sp.scale = p.scale;
    Tensor s_stats = rec.save(stats);
    Tensor s_out = chosen == AttentionImpl::fused ? rec.save(out_ct) : Tensor();
    const DType in_dt = q.dtype();
    const DType bias_dt = bias.defined() ? bias.dtype() : DType::f32;
    const Shape bias_shape = bias.defined() ? bias.shape() : Shape{};
    rec.finish(out, [=](const Tensor& g_in, const Needs& need) -> Grads {
      Tensor gout = g_in.detach().to(ct).contiguous();
      Tensor dq = need[0] ? empty(sp.q.shape(), ct) : Tensor();
      Tensor dk = need[1] ? empty(sp.k.shape(), ct) : Tensor();
      Tensor dv = need[2] ? empty(sp.v.shape(), ct) : Tensor();
      Tensor dbias;
      cpu::dispatch_float(ct, kOp, [&]<class T>() {
        auto args = make_args<T>(sp);
        auto ptr = [](const Tensor& t) { return t.defined() ? t.data<T>() : nullptr; };
        if (chosen == AttentionImpl::fused) {
          cpu::AttentionGrads<T> g;
          g.dq = ptr(dq);
          g.dk = ptr(dk);
          g.dv = ptr(dv);
          Tensor dbias64;
          if (need[3]) {
            // Accumulate in f64 in the bias's own shape (padded to 4-D), then round once.
            Shape padded(4 - bias_shape.size(), 1);
            padded.insert(padded.end(), bias_shape.begin(), bias_shape.end());
            dbias64 = zeros(padded, DType::f64);
            Shape s = cpu::broadcast_strides(dbias64, sp.score_shape);
            for (int d = 0; d < 4; ++d) g.dbias_s[d] = s[d];
            g.dbias = dbias64.data<double>();
          }
          cpu::attention_fused_backward<T>(args, s_out.data<T>(), s_stats.data<T>(), gout.data<T>(), g);
          if (need[3]) dbias = dbias64.reshape(bias_shape).to(bias_dt);
        } else {
          Tensor dscores = need[3] ? empty(sp.score_shape, ct) : Tensor();
          cpu::attention_reference_backward<T>(args, s_stats.data<T>(), gout.data<T>(), ptr(dq), ptr(dk), ptr(dv),
                                               ptr(dscores));
          if (need[3]) dbias = sum_to_shape(dscores, bias_shape).to(bias_dt);
        }
      });
      auto back = [&](Tensor t) { return t.defined() && t.dtype() != in_dt ? t.to(in_dt) : t; };
      return {back(dq), back(dk), back(dv), dbias};
    });
  }
  return out;
}

}  // namespace rv
