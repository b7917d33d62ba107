// math.h: elementwise math functions (exp, log, sqrt, pow, tanh, clamp, ...), the
// tensor-tensor maximum/minimum, where(), and comparisons that return bool tensors.
//
// Float functions accept f32/f64/bf16/f16 (bf16/f16 compute in f32 and round once) and are
// differentiable. Binary ones broadcast like add(). Comparisons accept any dtypes, return
// bool tensors and are not differentiable.
//
// Note: these overload names (exp, log, abs, pow, ...) hide the C functions inside namespace
// rv, so kernels must spell scalar math std::exp, std::abs, ... (an unqualified call on a float
// is a compile error, never a silent conversion).
#pragma once
#include <optional>

#include "engine/tensor.h"

namespace rv {

Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor rsqrt(const Tensor& x);   // 1 / sqrt(x)
Tensor abs(const Tensor& x);     // gradient sign(x), 0 at x == 0 (as PyTorch)
Tensor tanh(const Tensor& x);
Tensor pow(const Tensor& x, double exponent);
Tensor pow(const Tensor& x, const Tensor& exponent);  // broadcasts; differentiable in both

// min(max(x, lo), hi) with either bound optional (at least one must be given). NaN stays NaN.
// The gradient passes where lo <= x <= hi (both ends included, as PyTorch).
Tensor clamp(const Tensor& x, std::optional<double> lo, std::optional<double> hi);

// cond ? a : b, broadcasting all three. cond must be bool. Differentiable in a and b.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// Elementwise max / min of two tensors (broadcasting). NaN propagates. On ties the gradient
// is split half and half between a and b, as PyTorch does.
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);

// Comparisons (broadcasting), bool results. Mixed dtypes compare in their promoted dtype.
// Against a scalar, a float tensor compares with the scalar rounded to the tensor's dtype
// (as PyTorch does: bf16(x) == 0.1 compares with bf16(0.1)); an integer tensor compares
// exactly with the scalar.
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, double b);
Tensor ne(const Tensor& a, double b);
Tensor lt(const Tensor& a, double b);
Tensor le(const Tensor& a, double b);
Tensor gt(const Tensor& a, double b);
Tensor ge(const Tensor& a, double b);

// !x as a bool tensor (x == 0 for non-bool dtypes).
Tensor logical_not(const Tensor& x);

}  // namespace rv
