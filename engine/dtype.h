// dtype.h: the element types a Tensor can hold, their sizes and names, and the
// float <-> bf16 / f16 conversions (round to nearest even, NaN kept NaN, as PyTorch does).
//
// The CPU kernels compute in f32 or f64. A bf16/f16 tensor is converted to f32 by the op
// front-end, computed, and converted back: bf16 is a storage format here, not a math type.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

namespace rv {

enum class DType : uint8_t { f32, f64, bf16, f16, i32, i64, u8, boolean };

size_t dtype_size(DType dt);
const char* dtype_name(DType dt);  // "float32", "bfloat16", ... (PyTorch's names)
bool is_floating(DType dt);        // f32, f64, bf16, f16
bool is_integral(DType dt);        // i32, i64, u8, bool

// 16-bit float storage types. They are plain bit containers; arithmetic goes through float.
struct bf16_t { uint16_t bits; };
struct f16_t { uint16_t bits; };

inline float bf16_to_float(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t float_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN
  // round to nearest, ties to even: add 0x7fff plus the lowest kept bit.
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float f16_to_float(uint16_t h);
uint16_t float_to_f16(float f);

// Maps a C++ scalar type to its DType.
template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::f32; }
template <> constexpr DType dtype_of<double>() { return DType::f64; }
template <> constexpr DType dtype_of<bf16_t>() { return DType::bf16; }
template <> constexpr DType dtype_of<f16_t>() { return DType::f16; }
template <> constexpr DType dtype_of<int32_t>() { return DType::i32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::i64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::u8; }
template <> constexpr DType dtype_of<bool>() { return DType::boolean; }

// The dtype that a binary op on (a, b) computes in: floats outrank integers, wider floats
// outrank narrower ones, and bf16 with f16 meet in f32 (as torch.result_type does).
DType promote_types(DType a, DType b);

}  // namespace rv
