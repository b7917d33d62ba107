// exact_math.cuh: IEEE operations that nvcc may not fuse, plus bf16 load / store (device code;
// included by the .cu kernels only).
//
// Why: nvcc contracts a * b + c into one fused multiply-add by default, which rounds once
// instead of twice. Kernels that follow a CPU formula operation by operation (AdamW, the unary
// ops and their gradient maps) spell each operation with a *_rn intrinsic, which nvcc never
// fuses, so every operation rounds exactly as the formula says. (The CPU side may still fuse:
// GCC contracts C++ with -march=native, so a formula with a * b + c can differ by an ulp;
// single operations, and formulas without a multiply feeding an add, match bit for bit.)
// Overloaded for float and double so templates can use them.
#pragma once
#include <cuda_bf16.h>

#include <cstdint>

namespace rv::cuda::rn {

__device__ __forceinline__ float add(float a, float b) { return __fadd_rn(a, b); }
__device__ __forceinline__ float sub(float a, float b) { return __fsub_rn(a, b); }
__device__ __forceinline__ float mul(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ float div(float a, float b) { return __fdiv_rn(a, b); }
__device__ __forceinline__ float sqrt(float a) { return __fsqrt_rn(a); }
__device__ __forceinline__ double add(double a, double b) { return __dadd_rn(a, b); }
__device__ __forceinline__ double sub(double a, double b) { return __dsub_rn(a, b); }
__device__ __forceinline__ double mul(double a, double b) { return __dmul_rn(a, b); }
__device__ __forceinline__ double div(double a, double b) { return __ddiv_rn(a, b); }
__device__ __forceinline__ double sqrt(double a) { return __dsqrt_rn(a); }

}  // namespace rv::cuda::rn

namespace rv::cuda {

// Storage type S -> compute type (float for bf16) and back; bf16 rounds to nearest even, as
// engine/dtype.h's float_to_bf16 does.
template <class S> struct Compute { using type = S; };
template <> struct Compute<__nv_bfloat16> { using type = float; };

template <class S>
__device__ __forceinline__ typename Compute<S>::type load_c(const S* p) { return *p; }
template <>
__device__ __forceinline__ float load_c<__nv_bfloat16>(const __nv_bfloat16* p) { return __bfloat162float(*p); }

template <class S, class C>
__device__ __forceinline__ void store_c(S* p, C v) { *p = S(v); }
template <>
__device__ __forceinline__ void store_c<__nv_bfloat16, float>(__nv_bfloat16* p, float v) { *p = __float2bfloat16_rn(v); }
template <>
__device__ __forceinline__ void store_c<__nv_bfloat16, double>(__nv_bfloat16* p, double v) {
  *p = __float2bfloat16_rn(float(v));  // via f32, as the CPU rounds f64 -> f32 -> bf16
}

}  // namespace rv::cuda
