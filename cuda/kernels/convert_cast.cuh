// convert_cast.cuh: the device twin of the CPU's cpu::scalar_cast (engine/cpu/dispatch.h): one
// value of any storage dtype to any other, with the same rounding bit for bit (device code;
// included by the .cu kernels only).
//
//   Bf16, F16              16-bit float storage (the bits), as the CPU's bf16_t / f16_t
//   cast<D>(S v)           the conversion, following scalar_cast's rules in the same order:
//                            to bf16 / f16: through float(to_double(v)), then round to nearest
//                            even (NaN kept NaN) exactly as float_to_bf16 / float_to_f16;
//                            from bf16 / f16: widen to double, then as from a double;
//                            to bool: v != 0 (NaN is true);
//                            otherwise static_cast, except float -> integer (see below).
//
// Float -> integer: C++ leaves an out-of-range or NaN value undefined; x86 (where the CPU tests
// run) gives the "integer indefinite" value INT_MIN / INT64_MIN, while CUDA's cvt saturates. We
// follow x86 so the two devices agree on every input: i32 and i64 get INT_MIN / INT64_MIN, u8 the
// low byte of the i32 conversion (what g++ emits for static_cast<uint8_t>(float)). In-range values
// truncate toward zero on both.
#pragma once
#include <cstdint>
#include <type_traits>

namespace rv::cuda {

struct Bf16 { uint16_t bits; };
struct F16 { uint16_t bits; };

__device__ __forceinline__ float bf16_bits_to_float(uint16_t b) { return __uint_as_float(uint32_t(b) << 16); }

__device__ __forceinline__ uint16_t float_to_bf16_bits(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  u += 0x7fffu + ((u >> 16) & 1u);                                         // nearest even
  return uint16_t(u >> 16);
}

// IEEE binary16 <-> float, the same bit manipulation as engine/dtype.cpp.
__device__ __forceinline__ float f16_bits_to_float(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1fu;
  uint32_t man = h & 0x3ffu;
  uint32_t u;
  if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  // subnormal: normalise the mantissa
      int e = -1;
      do { man <<= 1; ++e; } while ((man & 0x400u) == 0);
      u = sign | uint32_t(127 - 15 - e) << 23 | (man & 0x3ffu) << 13;
    }
  } else if (exp == 31) {
    u = sign | 0x7f800000u | man << 13;  // inf or NaN
  } else {
    u = sign | (exp - 15 + 127) << 23 | man << 13;
  }
  return __uint_as_float(u);
}

__device__ __forceinline__ uint16_t float_to_f16_bits(float f) {
  uint32_t au = __float_as_uint(f);
  const uint16_t sign = uint16_t((au >> 16) & 0x8000u);
  au &= 0x7fffffffu;
  if (au > 0x7f800000u) return uint16_t(sign | 0x7e00u);  // NaN
  if (au >= 0x477ff000u) return uint16_t(sign | 0x7c00u);  // rounds to inf (>= 65520)
  if (au < 0x38800000u) {  // subnormal or zero: m = round_even(|f| 2^24)
    const float r = rintf(__uint_as_float(au) * 16777216.0f);  // exact scale; rintf: nearest even
    return uint16_t(sign | uint16_t(r));
  }
  const uint32_t mant_odd = (au >> 13) & 1u;
  au += 0xc8000fffu + mant_odd;  // rebias the exponent, plus the rounding bias
  return uint16_t(sign | uint16_t(au >> 13));
}

template <class T> __device__ __forceinline__ double to_double(T v) { return double(v); }
template <> __device__ __forceinline__ double to_double(Bf16 v) { return bf16_bits_to_float(v.bits); }
template <> __device__ __forceinline__ double to_double(F16 v) { return f16_bits_to_float(v.bits); }

template <class T> inline constexpr bool is_half_v = std::is_same_v<T, Bf16> || std::is_same_v<T, F16>;

// A float or double value truncated to an integer type, x86's answer when it does not fit.
template <class I, class F>
__device__ __forceinline__ I float_to_int(F v) {
  const double d = double(v);  // exact for float and double
  if constexpr (std::is_same_v<I, int64_t>) {
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0)) return INT64_MIN;
    return int64_t(d);
  } else {
    const int32_t i = (d > -2147483649.0 && d < 2147483648.0) ? int32_t(d) : INT32_MIN;
    return I(i);  // int32_t, or uint8_t: the low byte, as g++ converts through a 32-bit register
  }
}

template <class D, class S>
__device__ __forceinline__ D cast(S v) {
  if constexpr (std::is_same_v<D, S>) {
    return v;
  } else if constexpr (std::is_same_v<D, Bf16>) {
    return Bf16{float_to_bf16_bits(float(to_double(v)))};
  } else if constexpr (std::is_same_v<D, F16>) {
    return F16{float_to_f16_bits(float(to_double(v)))};
  } else if constexpr (is_half_v<S>) {
    return cast<D, double>(to_double(v));
  } else if constexpr (std::is_same_v<D, bool>) {
    return v != S(0);
  } else if constexpr (std::is_floating_point_v<S> && std::is_integral_v<D>) {
    return float_to_int<D>(v);
  } else {
    return static_cast<D>(v);
  }
}

}  // namespace rv::cuda
