// row_reduce.cuh: device helpers shared by the row-wise kernels (softmax.cu, cross_entropy.cu):
// the math type of each storage dtype, packed (128-bit) loads and stores, warp and block
// reductions, and the online (max, sum of exp) state. Device code; included by .cu files only.
//
// Determinism: every reduction here combines values in a fixed order that depends only on the
// launch shape (warp butterflies, then the warps' results read in warp order by every thread),
// never on timing, and uses no atomics: the same input gives the same bits on every run.
#pragma once
#include <cuda_bf16.h>

#include <cmath>
#include <cstdint>

namespace rv::cuda::rowk {

// ---- dtypes: bf16 is storage only; f32 and bf16 compute in float, f64 in double ---------------
template <class T>
struct AccOf {
  using type = float;
};
template <>
struct AccOf<double> {
  using type = double;
};
template <class T>
using acc_t = typename AccOf<T>::type;

__device__ inline float to_acc(float v) { return v; }
__device__ inline double to_acc(double v) { return v; }
__device__ inline float to_acc(__nv_bfloat16 v) { return __bfloat162float(v); }

// Rounds a math value to storage: bf16 rounds to nearest even (NaN stays NaN), as the CPU does.
template <class T>
__device__ inline T from_acc(acc_t<T> v) {
  return T(v);
}
template <>
__device__ inline __nv_bfloat16 from_acc<__nv_bfloat16>(float v) {
  return __float2bfloat16_rn(v);
}

// expf / logf, not the __expf intrinsics: about 1 ulp, so results match the CPU within ~1e-6.
__device__ inline float dev_exp(float v) { return expf(v); }
__device__ inline double dev_exp(double v) { return exp(v); }
__device__ inline float dev_log(float v) { return logf(v); }
__device__ inline double dev_log(double v) { return log(v); }
// fmax ignores a NaN operand; the NaN still reaches the result through the sum of exps.
__device__ inline float dev_max(float a, float b) { return fmaxf(a, b); }
__device__ inline double dev_max(double a, double b) { return fmax(a, b); }
template <class A>
__device__ inline A neg_inf() {
  return -A(INFINITY);
}
template <class A>
__device__ inline A quiet_nan() {
  return A(NAN);
}

// ---- packed loads and stores -------------------------------------------------------------------
// V consecutive elements aligned to their total size, so that one instruction moves them
// (V = 16 / sizeof(T): a 128-bit load). The caller guarantees the alignment: the row base is
// 16-byte aligned and the row length and the element index are multiples of V.
template <class T, int V>
struct alignas(sizeof(T) * V) Pack {
  T v[V];
};

template <class T, int V>
__device__ inline void load_pack(const T* p, acc_t<T> (&out)[V]) {
  const Pack<T, V> pk = *reinterpret_cast<const Pack<T, V>*>(p);
#pragma unroll
  for (int i = 0; i < V; ++i) out[i] = to_acc(pk.v[i]);
}

template <class T, int V>
__device__ inline void store_pack(T* p, const acc_t<T> (&in)[V]) {
  Pack<T, V> pk;
#pragma unroll
  for (int i = 0; i < V; ++i) pk.v[i] = from_acc<T>(in[i]);
  *reinterpret_cast<Pack<T, V>*>(p) = pk;
}

// ---- warp reductions (xor butterfly: every lane ends with the same bits) -----------------------
template <class A>
__device__ inline A warp_sum(A v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

template <class A>
__device__ inline A warp_max(A v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = dev_max(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// ---- online max and sum of exp -----------------------------------------------------------------
// (m, s) stands for "s = sum of exp(x_i - m) over the values seen, m their max", so one pass over
// a row gives both. Seeing x > m rescales s by exp(m - x). exp(m - m) is taken as exactly 1, also
// for m = -inf (-inf - -inf would be NaN and poison rows that merely start with -inf entries).
// m is never NaN (x > m is false for a NaN x; fmax ignores NaN); a NaN x makes s NaN instead.
template <class A>
struct MaxSum {
  A m, s;

  __device__ static MaxSum empty() { return {neg_inf<A>(), A(0)}; }

  __device__ void add(A x) {
    if (x > m) {
      s = s * dev_exp(m - x) + A(1);  // m = -inf: exp(-inf) = 0, s = 1
      m = x;
    } else {
      s += x == m ? A(1) : dev_exp(x - m);  // NaN x: exp(NaN) = NaN
    }
  }

  // s rescaled to the max M >= m.
  __device__ A scaled_to(A M) const { return m == M ? s : s * dev_exp(m - M); }

  // Commutative (bit for bit), so a butterfly leaves every lane with the same result.
  __device__ static MaxSum combine(const MaxSum& a, const MaxSum& b) {
    const A M = dev_max(a.m, b.m);
    return {M, a.scaled_to(M) + b.scaled_to(M)};
  }

  // The exceptional rows, as the CPU (engine/ops/softmax.cpp): a +inf anywhere, or every entry
  // -inf (also an empty row), makes the whole row NaN there (inf - inf), so s becomes NaN here.
  __device__ void finish() {
    if (isinf(m)) s = quiet_nan<A>();
  }
};

template <class A>
__device__ inline MaxSum<A> warp_combine(MaxSum<A> st) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) {
    const MaxSum<A> other{__shfl_xor_sync(0xffffffffu, st.m, o), __shfl_xor_sync(0xffffffffu, st.s, o)};
    st = MaxSum<A>::combine(st, other);
  }
  return st;
}

// ---- block reductions (blockDim.x == kThreads, a multiple of 32, every thread calls) -----------
// Each warp reduces by butterfly, lane 0 of each writes its result to shared memory, and every
// thread then combines the kThreads / 32 warp results in warp order (broadcast reads): all
// threads get the same bits. The leading __syncthreads lets a block call these once per row in a
// loop: no thread overwrites `shm` while another still reads the previous row's values.
template <int kThreads, class A>
__device__ inline A block_sum(A v, A* shm) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "block_sum: kThreads must be a multiple of 32, <= 1024");
  v = warp_sum(v);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) shm[threadIdx.x >> 5] = v;
  __syncthreads();
  A t = shm[0];
#pragma unroll
  for (int w = 1; w < kThreads / 32; ++w) t += shm[w];
  return t;
}

template <int kThreads, class A>
__device__ inline MaxSum<A> block_combine(MaxSum<A> st, A* shm_m, A* shm_s) {
  static_assert(kThreads % 32 == 0 && kThreads <= 1024, "block_combine: kThreads must be a multiple of 32");
  st = warp_combine(st);
  __syncthreads();
  if ((threadIdx.x & 31) == 0) {
    shm_m[threadIdx.x >> 5] = st.m;
    shm_s[threadIdx.x >> 5] = st.s;
  }
  __syncthreads();
  MaxSum<A> t{shm_m[0], shm_s[0]};
#pragma unroll
  for (int w = 1; w < kThreads / 32; ++w) t = MaxSum<A>::combine(t, MaxSum<A>{shm_m[w], shm_s[w]});
  return t;
}

}  // namespace rv::cuda::rowk
