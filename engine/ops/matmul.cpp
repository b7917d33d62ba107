// matmul.cpp: matmul and linear, forward and backward.
//
// Both reduce to cpu::gemm calls on raw pointers:
//   matmul  (..., M, K) x (..., K, N): one GEMM per broadcast batch entry, or a single GEMM when
//           the right operand has no batch dims and the left one's rows can be stacked
//           ((B, N, C) x (C, D) is one (B*N, C) x (C, D) product);
//   linear  x (..., in) x weightᵀ: always one GEMM over all rows, the bias preloaded into C.
// Backward: dA = g · Bᵀ and dB = Aᵀ · g, written with matmul itself on transposed views (which
// GEMM reads with its transpose flag, so no copies), then summed over broadcast batch dims.
// On a device (cuda), both go through backend gemm() (f32; transposed views read in place) and
// the backward closures run there too: the batch-dim sums and linear's bias gradient use the
// backend's deterministic column_sum.
#include "engine/ops/matmul.h"

#include <stdexcept>
#include <string>

#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/cpu/gemm.h"
#include "engine/cpu/gemm_operand.h"
#include "engine/cpu/loops.h"
#include "engine/ops/reduce.h"
#include "engine/profile/op_counter.h"

namespace rv {

namespace {

std::string two_shapes(const Tensor& a, const Tensor& b) {
  return shape_str(a.shape()) + " and " + shape_str(b.shape());
}

DType float_compute_dtype(const char* op, std::initializer_list<Tensor> ts) {
  DType dt = DType::f32;
  bool first = true;
  for (const Tensor& t : ts) {
    if (!t.defined()) continue;
    if (!is_floating(t.dtype()))
      throw std::invalid_argument(std::string(op) + ": expected float tensors, got " + dtype_name(t.dtype()));
    dt = first ? t.dtype() : promote_types(dt, t.dtype());
    first = false;
  }
  return dt;
}

// The operand view of the last two dims of t, copying t when GEMM cannot read it as it is.
cpu::GemmOperand operand_of(Tensor& t) {
  const int64_t n = t.dim();
  auto op = cpu::gemm_operand(t.size(n - 2), t.size(n - 1), t.stride(n - 2), t.stride(n - 1));
  if (!op.usable) {
    t = t.contiguous();
    op = cpu::gemm_operand(t.size(n - 2), t.size(n - 1), t.stride(n - 2), t.stride(n - 1));
  }
  return op;
}

// If the dims before the last of t merge into one row dim (with unit last stride), returns the
// stride between rows (>= 0); else -1. Lets (B, N, C) be read as (B*N, C) without a copy.
int64_t stacked_row_stride(const Tensor& t) {
  const int64_t n = t.dim(), cols = t.size(n - 1);
  if (t.stride(n - 1) != 1 && cols > 1) return -1;
  int64_t row_stride = -1, expect = -1;
  for (int64_t d = n - 2; d >= 0; --d) {
    if (t.size(d) == 1) continue;
    if (row_stride < 0) {
      row_stride = t.stride(d);
    } else if (t.stride(d) != expect) {
      return -1;
    }
    expect = t.stride(d) * t.size(d);
  }
  const int64_t ld = row_stride < 0 ? std::max<int64_t>(1, cols) : row_stride;
  return ld >= std::max<int64_t>(1, cols) ? ld : -1;
}

// Values of a (..., M, K) x b (..., K, N), both already of compute dtype and at least 2-D.
// No autograd. Returns a contiguous (broadcast batch..., M, N) tensor.
Tensor bmm_values(Tensor a, Tensor b) {
  const int64_t na = a.dim(), nb = b.dim();
  const int64_t M = a.size(na - 2), K = a.size(na - 1), N = b.size(nb - 1);
  Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
  Shape batch = cpu::broadcast_shapes(batch_a, batch_b, "matmul");
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = empty(out_shape, a.dtype());
  if (out.numel() == 0) return out;
  const int64_t batch_n = shape_numel(batch);

  cpu::dispatch_float(a.dtype(), "matmul", [&]<class T>() {
    T* cp = out.data<T>();
    // Right operand without batch dims: stack all rows of the left one into one product.
    if (shape_numel(batch_b) == 1 && shape_numel(batch_a) == batch_n) {
      const int64_t lda = stacked_row_stride(a);
      if (lda >= 0 || batch_n == 1) {
        Tensor b2 = b.reshape({K, N});
        auto ob = operand_of(b2);
        if (batch_n == 1) {
          Tensor a2 = a.reshape({M, K});
          auto oa = operand_of(a2);
          cpu::gemm(oa.trans, ob.trans, M, N, K, T(1), a2.data<T>(), oa.ld, b2.data<T>(), ob.ld, T(0), cp, N);
        } else {
          cpu::gemm(false, ob.trans, batch_n * M, N, K, T(1), a.data<T>(), lda, b2.data<T>(), ob.ld, T(0), cp, N);
        }
        return;
      }
    }
    // General case: per batch entry, with broadcast batch dims read through stride-0 offsets.
    auto oa = operand_of(a);
    auto ob = operand_of(b);
    Shape full_a = batch, full_b = batch;  // each operand broadcast over the batch dims only
    full_a.insert(full_a.end(), {M, K});
    full_b.insert(full_b.end(), {K, N});
    Shape sa = cpu::broadcast_strides(a, full_a), sb = cpu::broadcast_strides(b, full_b);
    std::vector<int64_t> ao(batch_n), bo(batch_n), co(batch_n);
    const int64_t nbd = int64_t(batch.size());
    std::vector<int64_t> idx(nbd, 0);
    int64_t offa = 0, offb = 0;
    for (int64_t i = 0; i < batch_n; ++i) {
      ao[i] = offa;
      bo[i] = offb;
      co[i] = i * M * N;
      for (int64_t d = nbd - 1; d >= 0; --d) {  // odometer over the batch dims
        offa += sa[d];
        offb += sb[d];
        if (++idx[d] < batch[d]) break;
        offa -= sa[d] * batch[d];
        offb -= sb[d] * batch[d];
        idx[d] = 0;
      }
    }
    cpu::gemm_batched<T>(oa.trans, ob.trans, M, N, K, T(1), a.data<T>(), oa.ld, ao, b.data<T>(), ob.ld, bo, T(0),
                         cp, N, co);
  });
  return out;
}

// ---- device path (tensors not on the CPU) ------------------------------------------------------

void require_same_device(const char* op, std::initializer_list<Tensor> ts) {
  Device dev{};
  bool first = true;
  for (const Tensor& t : ts) {
    if (!t.defined()) continue;
    if (first) {
      dev = t.device();
      first = false;
    } else if (t.device() != dev) {
      throw std::invalid_argument(std::string(op) + ": operands on different devices (" + dev.str() + " and " +
                                  t.device().str() + "); move one with .to(device)");
    }
  }
}

void require_device_f32(const char* op, std::initializer_list<Tensor> ts) {
  for (const Tensor& t : ts)
    if (t.defined() && t.dtype() != DType::f32)
      throw std::invalid_argument(std::string(op) + ": dtype " + dtype_name(t.dtype()) + " is not implemented on " +
                                  t.device().str() + " yet (f32 is)");
}

// g summed down to `shape` (a broadcast of it), on g's device: the reduced dims are permuted to
// the front, the rest flattened, and the rows summed by the backend's column_sum.
Tensor device_sum_to_shape(const Tensor& g, const Shape& shape) {
  if (g.shape() == shape) return g;
  const int64_t lead = g.dim() - int64_t(shape.size());
  Shape reduced, kept;
  int64_t rows = 1, cols = 1;
  for (int64_t d = 0; d < g.dim(); ++d) {
    const bool red = d < lead || (shape[d - lead] == 1 && g.size(d) != 1);
    (red ? reduced : kept).push_back(d);
    (red ? rows : cols) *= g.size(d);
  }
  Shape perm = reduced;
  perm.insert(perm.end(), kept.begin(), kept.end());
  Tensor g2 = g.permute(perm).reshape({rows, cols});
  return backend::get(g.device()).column_sum(g2).reshape(shape);
}

Tensor reduce_to_shape(const Tensor& g, const Shape& shape) {
  return g.device().is_cpu() ? sum_to_shape(g, shape) : device_sum_to_shape(g, shape);
}

// matmul's values on a device: pa (..., M, K) x pb (..., K, N) promoted shapes, f32.
Tensor device_bmm_values(const Tensor& a, const Tensor& b) {
  const int64_t na = a.dim(), nb = b.dim();
  const int64_t M = a.size(na - 2), K = a.size(na - 1), N = b.size(nb - 1);
  Shape batch_a(a.shape().begin(), a.shape().end() - 2), batch_b(b.shape().begin(), b.shape().end() - 2);
  Shape batch = cpu::broadcast_shapes(batch_a, batch_b, "matmul");
  const int64_t batch_n = shape_numel(batch);
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  backend::DeviceBackend& be = backend::get(a.device());
  if (batch_n == 0 || M == 0 || N == 0) return empty(out_shape, DType::f32, a.device());
  // t as a 3-D (n, r, c) view: unsqueeze keeps a transposed 2-D view a view (strides (0, 1, ld)),
  // so the GEMM reads it with its transpose flag instead of a copy.
  auto as3 = [](const Tensor& t, int64_t n, int64_t r, int64_t c) {
    if (t.dim() == 2 && n == 1) return t.unsqueeze(0);
    if (t.dim() == 3 && t.size(0) == n) return t;
    return t.reshape({n, r, c});
  };
  // Right operand without batch dims: all rows of the left one stacked into one product.
  if (shape_numel(batch_b) == 1 && shape_numel(batch_a) == batch_n) {
    const Tensor a3 = batch_n == 1 ? as3(a.reshape({M, K}), 1, M, K) : a.reshape({1, batch_n * M, K});
    return be.gemm(a3, as3(b.reshape({K, N}), 1, K, N), Tensor(), false).reshape(out_shape);
  }
  // Each operand flattened to (batch_n or 1, rows, cols); a partly broadcast one is expanded
  // (reshape copies it then).
  auto flat = [&](const Tensor& t, const Shape& tb, int64_t r, int64_t c) {
    if (shape_numel(tb) == 1) return as3(t.reshape({r, c}), 1, r, c);
    if (shape_numel(tb) == batch_n) return as3(t, batch_n, r, c);
    Shape full = batch;
    full.push_back(r);
    full.push_back(c);
    return t.expand(full).reshape({batch_n, r, c});
  };
  return be.gemm(flat(a, batch_a, M, K), flat(b, batch_b, K, N), Tensor(), false).reshape(out_shape);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (autocast::is_enabled()) {  // autocast policy (runs in bf16/f16; engine/autocast.h)
    const Tensor a_ac = autocast::cast_lower(a), b_ac = autocast::cast_lower(b);
    autocast::DisabledGuard inside;
    return matmul(a_ac, b_ac);
  }
  if (a.dim() == 0 || b.dim() == 0)
    throw std::invalid_argument("matmul: both arguments need at least 1 dimension, got shapes " + two_shapes(a, b));
  const DType dt = float_compute_dtype("matmul", {a, b});
  const DType ct = cpu::compute_dtype(dt);
  const bool vec_a = a.dim() == 1, vec_b = b.dim() == 1;
  const int64_t ka = a.size(-1), kb = vec_b ? b.size(0) : b.size(-2);
  if (ka != kb)
    throw std::invalid_argument("matmul: shapes " + two_shapes(a, b) + " cannot be multiplied (" +
                                std::to_string(ka) + " columns vs " + std::to_string(kb) + " rows)");

  // Promoted operands: a 1-D left operand is a (1, K) row, a 1-D right one a (K, 1) column.
  Shape pa = a.shape(), pb = b.shape();
  if (vec_a) pa.insert(pa.begin(), 1);
  if (vec_b) pb.push_back(1);
  {  // batch dims must broadcast (error names both original shapes)
    Shape ba(pa.begin(), pa.end() - 2), bb(pb.begin(), pb.end() - 2);
    try {
      cpu::broadcast_shapes(ba, bb, "matmul");
    } catch (const std::invalid_argument&) {
      throw std::invalid_argument("matmul: batch dims of shapes " + two_shapes(a, b) + " do not broadcast");
    }
  }

  const bool on_device = !a.device().is_cpu() || !b.device().is_cpu();
  if (on_device) {
    require_same_device("matmul", {a, b});
    require_device_f32("matmul", {a, b});
  }

  Tensor out;
  {
    autograd::NoGradGuard ng;
    Tensor av = a.detach(), bv = b.detach();
    if (av.dtype() != ct) av = av.to(ct);
    if (bv.dtype() != ct) bv = bv.to(ct);
    out = on_device ? device_bmm_values(av.reshape(pa), bv.reshape(pb)) : bmm_values(av.reshape(pa), bv.reshape(pb));
    Shape os = out.shape();
    if (vec_b) os.erase(os.end() - 1);
    if (vec_a) os.erase(os.end() - (vec_b ? 1 : 2));
    out = out.reshape(os);
    if (out.dtype() != dt) out = out.to(dt);
  }
  profile::count_macs("matmul", out.numel() * ka);  // batch * M * N products of length K

  if (auto rec = autograd::Recorder("matmul", {a, b})) {
    Tensor sa = rec.needs(1) ? rec.save(a) : Tensor();  // dB needs A, dA needs B
    Tensor sb = rec.needs(0) ? rec.save(b) : Tensor();
    // the promoted output shape: batch..., M, N with the squeezed 1s put back
    Shape po = cpu::broadcast_shapes(Shape(pa.begin(), pa.end() - 2), Shape(pb.begin(), pb.end() - 2), "matmul");
    po.push_back(pa[pa.size() - 2]);
    po.push_back(pb.back());
    Shape sha = a.shape(), shb = b.shape();
    rec.finish(out, [=](const Tensor& g, const autograd::Needs& n) -> autograd::Grads {
      Tensor gp = g.reshape(po);
      Tensor da, db;
      if (n[0]) {  // dA = g · Bᵀ, summed over the batch dims A was broadcast along
        Tensor bp = sb.reshape(pb);
        da = reduce_to_shape(matmul(gp, bp.transpose(-2, -1)), pa).reshape(sha);
      }
      if (n[1]) {  // dB = Aᵀ · g
        Tensor ap = sa.reshape(pa);
        if (pb.size() == 2 && po.size() > 2) {
          // B shared by every batch entry: one product over all stacked rows, (K, rows)·(rows, N)
          const int64_t K = pa.back(), N = pb.back(), rows = shape_numel(Shape(po.begin(), po.end() - 1));
          db = matmul(ap.reshape({rows, K}).t(), gp.reshape({rows, N})).reshape(shb);
        } else {
          db = reduce_to_shape(matmul(ap.transpose(-2, -1), gp), pb).reshape(shb);
        }
      }
      return {da, db};
    });
  }
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (autocast::is_enabled()) {  // autocast policy (runs in bf16/f16; engine/autocast.h)
    const Tensor x_ac = autocast::cast_lower(x), weight_ac = autocast::cast_lower(weight), bias_ac = autocast::cast_lower(bias);
    autocast::DisabledGuard inside;
    return linear(x_ac, weight_ac, bias_ac);
  }
  if (weight.dim() != 2)
    throw std::invalid_argument("linear: weight must be 2-D (out, in), got shape " + shape_str(weight.shape()));
  const int64_t out_f = weight.size(0), in_f = weight.size(1);
  if (x.dim() < 1 || x.size(-1) != in_f)
    throw std::invalid_argument("linear: input shape " + shape_str(x.shape()) + " does not end in in_features=" +
                                std::to_string(in_f) + " of weight shape " + shape_str(weight.shape()));
  if (bias.defined() && (bias.dim() != 1 || bias.size(0) != out_f))
    throw std::invalid_argument("linear: bias must have shape [" + std::to_string(out_f) + "], got " +
                                shape_str(bias.shape()));
  const DType dt = float_compute_dtype("linear", {x, weight, bias});
  const DType ct = cpu::compute_dtype(dt);
  Shape out_shape(x.shape().begin(), x.shape().end() - 1);
  const int64_t rows = shape_numel(out_shape);
  out_shape.push_back(out_f);
  const bool on_device = !x.device().is_cpu() || !weight.device().is_cpu() ||
                         (bias.defined() && !bias.device().is_cpu());

  Tensor out;
  if (on_device) {  // one GEMM (1, rows, in) x (1, in, out) with Wᵀ read in place, bias fused
    require_same_device("linear", {x, weight, bias});
    require_device_f32("linear", {x, weight, bias});
    autograd::NoGradGuard ng;
    const Tensor x3 = x.detach().reshape({1, rows, in_f});
    const Tensor wt3 = weight.detach().t().unsqueeze(0);
    out = backend::get(x.device()).gemm(x3, wt3, bias.defined() ? bias.detach() : Tensor(), false).view(out_shape);
  } else {
    autograd::NoGradGuard ng;
    Tensor xv = x.detach(), wv = weight.detach();
    if (xv.dtype() != ct) xv = xv.to(ct);
    if (wv.dtype() != ct) wv = wv.to(ct);
    Tensor x2 = in_f == 0 ? zeros({rows, 0}, ct) : xv.reshape({rows, in_f});  // (rows, in)
    Tensor wt = wv.t();                                                       // (in, out)
    auto ox = operand_of(x2);
    auto ow = operand_of(wt);
    Tensor o2 = empty({rows, out_f}, ct);
    cpu::dispatch_float(ct, "linear", [&]<class T>() {
      T* op = o2.data<T>();
      T beta = T(0);
      if (bias.defined()) {  // preload every row with the bias, then C = x·Wᵀ + 1·C
        Tensor bv = bias.detach().to(ct).contiguous();
        const T* bp = bv.data<T>();
        cpu::parallel_for(rows, std::max<int64_t>(1, 65536 / std::max<int64_t>(1, out_f)), [&](int64_t r0, int64_t r1) {
          for (int64_t r = r0; r < r1; ++r)
            for (int64_t j = 0; j < out_f; ++j) op[r * out_f + j] = bp[j];
        });
        beta = T(1);
      }
      cpu::gemm(ox.trans, ow.trans, rows, out_f, in_f, T(1), x2.data<T>(), ox.ld, wt.data<T>(), ow.ld, beta, op,
                out_f);
    });
    out = o2.view(out_shape);
    if (out.dtype() != dt) out = out.to(dt);
  }
  profile::count_macs("linear", rows * in_f * out_f);

  std::vector<Tensor> inputs{x, weight};
  if (bias.defined()) inputs.push_back(bias);
  if (auto rec = autograd::Recorder("linear", inputs)) {
    Tensor sx = rec.needs(1) ? rec.save(x) : Tensor();  // dW needs x, dx needs W
    Tensor sw = rec.needs(0) ? rec.save(weight) : Tensor();
    Shape shx = x.shape();
    const bool has_bias = bias.defined();
    rec.finish(out, [=](const Tensor& g, const autograd::Needs& n) -> autograd::Grads {
      Tensor g2 = g.reshape({rows, out_f});                         // (rows, out)
      autograd::Grads grads(has_bias ? 3 : 2);
      if (n[0]) grads[0] = matmul(g2, sw).view(shx);                // (rows, out)·(out, in)
      if (n[1]) grads[1] = matmul(g2.t(), sx.reshape({rows, in_f}));  // (out, rows)·(rows, in)
      if (has_bias && n[2])                                         // column sums
        grads[2] = g2.device().is_cpu() ? sum(g2, {0}) : backend::get(g2.device()).column_sum(g2);
      return grads;
    });
  }
  return out;
}

}  // namespace rv
