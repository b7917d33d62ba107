// float_io.cuh: device helpers for kernels that store f32 or bf16 and compute in f32 (device code;
// included by the .cu kernels only).
//
//   to_float(v) / from_float<S>(f)   one element of storage type S (float, or bf16 bits in a
//                                    uint16_t) to and from f32; bf16 rounds to nearest even and
//                                    keeps NaN a NaN exactly as the CPU's float_to_bf16 does, so
//                                    the two sides round the same f32 value to the same bits
//   load_floats<S, V>(p, out)        V consecutive elements from p in 16-byte loads (128-bit
//   store_floats<S, V>(p, in)        ld/st.global.v4): p must be 16-byte aligned and V * sizeof(S)
//                                    a multiple of 16 (the caller checks the alignment)
//   warp_sum(v)                      the sum over the 32 lanes of a warp, the same value in every
//                                    lane, in a fixed butterfly order (deterministic)
#pragma once
#include <cstdint>
#include <cstring>

namespace rv::cuda {

__device__ __forceinline__ float to_float(float v) { return v; }
__device__ __forceinline__ float to_float(uint16_t bf16_bits) { return __uint_as_float(uint32_t(bf16_bits) << 16); }

template <class S>
__device__ __forceinline__ S from_float(float f);

template <>
__device__ __forceinline__ float from_float<float>(float f) {
  return f;
}

template <>
__device__ __forceinline__ uint16_t from_float<uint16_t>(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);  // quiet NaN, as the CPU
  u += 0x7fffu + ((u >> 16) & 1u);                                         // round to nearest even
  return uint16_t(u >> 16);
}

template <class S, int V>
__device__ __forceinline__ void load_floats(const S* __restrict__ p, float (&out)[V]) {
  static_assert((V * sizeof(S)) % 16 == 0, "load_floats moves whole 16-byte chunks");
  constexpr int kPer = int(16 / sizeof(S));  // elements per 16-byte chunk
#pragma unroll
  for (int j = 0; j < V / kPer; ++j) {
    const uint4 u = reinterpret_cast<const uint4*>(p)[j];
    S s[kPer];
    memcpy(s, &u, 16);
#pragma unroll
    for (int i = 0; i < kPer; ++i) out[j * kPer + i] = to_float(s[i]);
  }
}

template <class S, int V>
__device__ __forceinline__ void store_floats(S* __restrict__ p, const float (&in)[V]) {
  static_assert((V * sizeof(S)) % 16 == 0, "store_floats moves whole 16-byte chunks");
  constexpr int kPer = int(16 / sizeof(S));
#pragma unroll
  for (int j = 0; j < V / kPer; ++j) {
    S s[kPer];
#pragma unroll
    for (int i = 0; i < kPer; ++i) s[i] = from_float<S>(in[j * kPer + i]);
    uint4 u;
    memcpy(&u, s, 16);
    reinterpret_cast<uint4*>(p)[j] = u;
  }
}

// Every lane of the warp must call it (full mask).
__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

}  // namespace rv::cuda
