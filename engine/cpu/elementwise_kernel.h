// elementwise_kernel.h: CPU maps for unary, and broadcasting binary / ternary / compare /
// select ops.
//
//   Tensor y = cpu::map_unary(x, "exp", [](auto v) { return std::exp(v); });
//   Tensor z = cpu::map_binary(a, b, "add", [](auto p, auto q) { return p + q; });
//   Tensor w = cpu::map_ternary(g, a, b, "maximum", [](auto g, auto p, auto q) { ... });
//   Tensor m = cpu::map_compare(a, b, "lt", [](auto p, auto q) { return p < q; });  // bool
//   Tensor s = cpu::map_where(cond, a, b, "where");                                 // cond ? a : b
//
// Inputs may be any strides (all broadcast to one shape); the output is a fresh contiguous
// tensor. The lambda is called with the compute type (float or double): bf16 and f16 inputs
// are widened to f32 first and the result is rounded back, so a bf16 op rounds once, as
// PyTorch's CPU kernels do.
#pragma once
#include <cmath>

#include "engine/backend.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/loops.h"
#include "engine/tensor.h"

namespace rv::cpu {

// These maps run on the host: a device tensor reaching one is an op with no kernel for its
// device yet, which fails here with the op's name ("exp: not implemented on cuda:0 yet").
inline void require_host(const Tensor& t, const char* op) {
  if (!t.device().is_cpu()) backend::throw_not_implemented(op, t.device());
}

// The float type an op computes in for inputs of dtype `dt` (bf16/f16 -> f32).
inline DType compute_dtype(DType dt) {
  return (dt == DType::bf16 || dt == DType::f16) ? DType::f32 : dt;
}

// Unary float map: y = f(x), same shape as x, contiguous.
template <class F>
Tensor map_unary(const Tensor& x_in, const char* op, F&& f) {
  require_host(x_in, op);
  const DType dt = x_in.dtype();
  if (!is_floating(dt))
    throw std::invalid_argument(std::string(op) + ": expected a float tensor, got " + dtype_name(dt));
  Tensor x = x_in.dtype() == compute_dtype(dt) ? x_in : x_in.to(compute_dtype(dt));
  Tensor y = empty(x.shape(), x.dtype());
  NdLoop<2> loop(x.shape(), {y.strides(), x.strides()});
  dispatch_float(x.dtype(), op, [&]<class T>() {
    T* yp = y.data<T>();
    const T* xp = x.data<T>();
    loop.run([&](const std::array<int64_t, 2>& base, const std::array<int64_t, 2>& inner, int64_t n) {
      T* yr = yp + base[0];
      const T* xr = xp + base[1];
      if (inner[1] == 1) {
        for (int64_t i = 0; i < n; ++i) yr[i] = T(f(xr[i]));
      } else {
        for (int64_t i = 0; i < n; ++i) yr[i] = T(f(xr[i * inner[1]]));
      }
    });
  });
  return dt == y.dtype() ? y : y.to(dt);
}

// Binary float map with broadcasting: z = f(a, b). Both inputs are promoted to one dtype.
template <class F>
Tensor map_binary(const Tensor& a_in, const Tensor& b_in, const char* op, F&& f) {
  require_host(a_in, op);
  require_host(b_in, op);
  const DType dt = promote_types(a_in.dtype(), b_in.dtype());
  if (!is_floating(dt))
    throw std::invalid_argument(std::string(op) + ": expected float tensors, got " + dtype_name(a_in.dtype()) +
                                " and " + dtype_name(b_in.dtype()));
  const DType ct = compute_dtype(dt);
  Tensor a = a_in.dtype() == ct ? a_in : a_in.to(ct);
  Tensor b = b_in.dtype() == ct ? b_in : b_in.to(ct);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor z = empty(shape, ct);
  NdLoop<3> loop(shape, {z.strides(), broadcast_strides(a, shape), broadcast_strides(b, shape)});
  dispatch_float(ct, op, [&]<class T>() {
    T* zp = z.data<T>();
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    loop.run([&](const std::array<int64_t, 3>& base, const std::array<int64_t, 3>& inner, int64_t n) {
      T* zr = zp + base[0];
      const T* ar = ap + base[1];
      const T* br = bp + base[2];
      if (inner[1] == 1 && inner[2] == 1) {
        for (int64_t i = 0; i < n; ++i) zr[i] = T(f(ar[i], br[i]));
      } else if (inner[1] == 1 && inner[2] == 0) {
        const T bv = *br;
        for (int64_t i = 0; i < n; ++i) zr[i] = T(f(ar[i], bv));
      } else if (inner[1] == 0 && inner[2] == 1) {
        const T av = *ar;
        for (int64_t i = 0; i < n; ++i) zr[i] = T(f(av, br[i]));
      } else {
        for (int64_t i = 0; i < n; ++i) zr[i] = T(f(ar[i * inner[1]], br[i * inner[2]]));
      }
    });
  });
  return dt == ct ? z : z.to(dt);
}

// Ternary float map with broadcasting of all three inputs: w = f(a, b, c), computed in the
// promoted dtype. Used by backward passes that need two saved tensors and the gradient.
template <class F>
Tensor map_ternary(const Tensor& a_in, const Tensor& b_in, const Tensor& c_in, const char* op, F&& f) {
  require_host(a_in, op);
  require_host(b_in, op);
  require_host(c_in, op);
  const DType dt = promote_types(promote_types(a_in.dtype(), b_in.dtype()), c_in.dtype());
  if (!is_floating(dt))
    throw std::invalid_argument(std::string(op) + ": expected float tensors, got " + dtype_name(a_in.dtype()) +
                                ", " + dtype_name(b_in.dtype()) + " and " + dtype_name(c_in.dtype()));
  const DType ct = compute_dtype(dt);
  Tensor a = a_in.dtype() == ct ? a_in : a_in.to(ct);
  Tensor b = b_in.dtype() == ct ? b_in : b_in.to(ct);
  Tensor c = c_in.dtype() == ct ? c_in : c_in.to(ct);
  Shape shape = broadcast_shapes(broadcast_shapes(a.shape(), b.shape(), op), c.shape(), op);
  Tensor w = empty(shape, ct);
  NdLoop<4> loop(shape, {w.strides(), broadcast_strides(a, shape), broadcast_strides(b, shape),
                         broadcast_strides(c, shape)});
  dispatch_float(ct, op, [&]<class T>() {
    T* wp = w.data<T>();
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    const T* cp = c.data<T>();
    loop.run([&](const std::array<int64_t, 4>& base, const std::array<int64_t, 4>& inner, int64_t n) {
      T* wr = wp + base[0];
      const T* ar = ap + base[1];
      const T* br = bp + base[2];
      const T* cr = cp + base[3];
      if (inner[1] == 1 && inner[2] == 1 && inner[3] == 1) {
        for (int64_t i = 0; i < n; ++i) wr[i] = T(f(ar[i], br[i], cr[i]));
      } else {
        for (int64_t i = 0; i < n; ++i) wr[i] = T(f(ar[i * inner[1]], br[i * inner[2]], cr[i * inner[3]]));
      }
    });
  });
  return dt == ct ? w : w.to(dt);
}

// The type two tensors are compared in: their promoted dtype, with bf16/f16 widened to f32
// (exact) and integers/bool widened to i64 (exact).
inline DType compare_dtype(DType a, DType b) {
  const DType dt = promote_types(a, b);
  return is_floating(dt) ? compute_dtype(dt) : DType::i64;
}

// Broadcasting comparison: m = f(a, b) as a bool tensor. Any dtypes.
template <class F>
Tensor map_compare(const Tensor& a_in, const Tensor& b_in, const char* op, F&& f) {
  require_host(a_in, op);
  require_host(b_in, op);
  const DType ct = compare_dtype(a_in.dtype(), b_in.dtype());
  Tensor a = a_in.dtype() == ct ? a_in : a_in.to(ct);
  Tensor b = b_in.dtype() == ct ? b_in : b_in.to(ct);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), op);
  Tensor m = empty(shape, DType::boolean);
  NdLoop<3> loop(shape, {m.strides(), broadcast_strides(a, shape), broadcast_strides(b, shape)});
  auto kernel = [&]<class T>() {
    bool* mp = m.data<bool>();
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    loop.run([&](const std::array<int64_t, 3>& base, const std::array<int64_t, 3>& inner, int64_t n) {
      bool* mr = mp + base[0];
      const T* ar = ap + base[1];
      const T* br = bp + base[2];
      if (inner[1] == 1 && inner[2] == 1) {
        for (int64_t i = 0; i < n; ++i) mr[i] = bool(f(ar[i], br[i]));
      } else if (inner[1] == 1 && inner[2] == 0) {
        const T bv = *br;
        for (int64_t i = 0; i < n; ++i) mr[i] = bool(f(ar[i], bv));
      } else {
        for (int64_t i = 0; i < n; ++i) mr[i] = bool(f(ar[i * inner[1]], br[i * inner[2]]));
      }
    });
  };
  if (ct == DType::i64)
    kernel.template operator()<int64_t>();
  else
    dispatch_float(ct, op, kernel);
  return m;
}

// Broadcasting select: out = cond ? a : b. cond must be bool; a and b are promoted to one
// dtype and copied bit for bit (no widening, so bf16 stays exact).
inline Tensor map_where(const Tensor& cond, const Tensor& a_in, const Tensor& b_in, const char* op) {
  require_host(cond, op);
  require_host(a_in, op);
  require_host(b_in, op);
  if (cond.dtype() != DType::boolean)
    throw std::invalid_argument(std::string(op) + ": expected cond to be a bool tensor, got " +
                                dtype_name(cond.dtype()));
  const DType dt = promote_types(a_in.dtype(), b_in.dtype());
  Tensor a = a_in.dtype() == dt ? a_in : a_in.to(dt);
  Tensor b = b_in.dtype() == dt ? b_in : b_in.to(dt);
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), op), b.shape(), op);
  Tensor out = empty(shape, dt);
  NdLoop<4> loop(shape, {out.strides(), broadcast_strides(cond, shape), broadcast_strides(a, shape),
                         broadcast_strides(b, shape)});
  dispatch_storage(dt, op, [&]<class T>() {
    T* outp = out.data<T>();
    const bool* cp = cond.data<bool>();
    const T* ap = a.data<T>();
    const T* bp = b.data<T>();
    loop.run([&](const std::array<int64_t, 4>& base, const std::array<int64_t, 4>& inner, int64_t n) {
      T* orow = outp + base[0];
      const bool* cr = cp + base[1];
      const T* ar = ap + base[2];
      const T* br = bp + base[3];
      for (int64_t i = 0; i < n; ++i) orow[i] = cr[i * inner[1]] ? ar[i * inner[2]] : br[i * inner[3]];
    });
  });
  return out;
}

}  // namespace rv::cpu
