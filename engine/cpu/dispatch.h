// dispatch.h: turns a runtime DType into a compile-time scalar type.
//
//   dispatch_float(t.dtype(), "softmax", [&]<class T>() { kernel<T>(...); });
//
// dispatch_float covers the math types f32 and f64 (bf16/f16 are converted to f32 by the op
// front-ends, see as_compute_type). dispatch_all adds the integer types and bool.
#pragma once
#include <stdexcept>
#include <string>
#include <type_traits>

#include "engine/dtype.h"

namespace rv::cpu {

template <class F>
decltype(auto) dispatch_float(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::f32: return f.template operator()<float>();
    case DType::f64: return f.template operator()<double>();
    default:
      throw std::runtime_error(std::string(op) + ": expected a float32 or float64 tensor, got " + dtype_name(dt));
  }
}

template <class F>
decltype(auto) dispatch_all(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::f32: return f.template operator()<float>();
    case DType::f64: return f.template operator()<double>();
    case DType::i32: return f.template operator()<int32_t>();
    case DType::i64: return f.template operator()<int64_t>();
    case DType::u8: return f.template operator()<uint8_t>();
    case DType::boolean: return f.template operator()<bool>();
    default:
      throw std::runtime_error(std::string(op) + ": dtype " + dtype_name(dt) + " is not supported here");
  }
}

}  // namespace rv::cpu

namespace rv::cpu {

// Every storage type, bf16_t and f16_t included (for copies and conversions).
template <class F>
decltype(auto) dispatch_storage(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::f32: return f.template operator()<float>();
    case DType::f64: return f.template operator()<double>();
    case DType::bf16: return f.template operator()<bf16_t>();
    case DType::f16: return f.template operator()<f16_t>();
    case DType::i32: return f.template operator()<int32_t>();
    case DType::i64: return f.template operator()<int64_t>();
    case DType::u8: return f.template operator()<uint8_t>();
    case DType::boolean: return f.template operator()<bool>();
  }
  throw std::runtime_error(std::string(op) + ": unknown dtype");
}

// Value conversions between storage types, going through float for the 16-bit formats.
template <class T> inline double to_double(T v) { return double(v); }
template <> inline double to_double(bf16_t v) { return bf16_to_float(v.bits); }
template <> inline double to_double(f16_t v) { return f16_to_float(v.bits); }

template <class Dst, class Src> inline Dst scalar_cast(Src v) {
  if constexpr (std::is_same_v<Dst, Src>) {
    return v;
  } else if constexpr (std::is_same_v<Dst, bf16_t>) {
    return bf16_t{float_to_bf16(float(to_double(v)))};
  } else if constexpr (std::is_same_v<Dst, f16_t>) {
    return f16_t{float_to_f16(float(to_double(v)))};
  } else if constexpr (std::is_same_v<Src, bf16_t> || std::is_same_v<Src, f16_t>) {
    return static_cast<Dst>(to_double(v));
  } else if constexpr (std::is_same_v<Dst, bool>) {
    return v != Src(0);
  } else {
    return static_cast<Dst>(v);
  }
}

}  // namespace rv::cpu
