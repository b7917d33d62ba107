// rope.cu: rotary position embedding on the GPU: the cos/sin table, the rotation of q and/or k
// (forward, and by -a for the backward w.r.t. x), the gradient w.r.t. the angles, and the angle
// table rope_angles with its backward. The CPU reference is engine/ops/rope.cpp.
//
// cos/sin once, not per element. The angles (NHa, Nr, P) are shared by the whole batch: for ViT-B
// (NH 12, N 197, P 32) they are 75k values, while q of a batch of 256 holds 19.4M pairs. So a
// first tiny kernel turns the angles into a (cos, sin) table (NHa*Nr*P float2 = 600 KB, which stays
// in L2), in double rounded to f32 so the values are those of the CPU's f32 cos/sin; the rotation
// then reads one 8-byte float2 per pair from L2 instead of running a sincosf (range reduction, two
// polynomials: ~40 instructions) per pair and per batch element. Bytes from DRAM per pair:
// read x (8 B f32 / 4 B bf16) + write out (same): the kernel is a copy with two multiply-adds.
//
// Rotation (rope_rotate_kernel): one thread per channel pair (2j, 2j+1). Grid: z = the tensor (q
// and k are rotated in one launch), y = the B*NH (b, h) slabs, x = the N*P pairs of a slab, so
// consecutive threads read consecutive pairs of a token row of x (coalesced, also for a permuted
// q/k view of a qkv projection, whose rows are contiguous) and write consecutive pairs of the
// contiguous output. A pair is one 8-byte (f32) or 4-byte (bf16) vector load when the view is
// aligned for it (checked on the host), two scalar loads otherwise. Index math: one 32-bit
// division per pair (token = k / P); the (b, h) split once per slab (64-bit division is an
// emulated routine; a flat index needs four divisions per pair, ~100 instructions, which by
// estimate (not measured) would take about as long as the memory traffic on an H200).
//
// Angle gradient (two stages, deterministic): dangles[h', n, j] sums over s (q, k), b (and h when
// the heads share the angles) the terms g[2j+1] out[2j] - g[2j] out[2j+1], out = R(a) x recomputed
// from x and the table (cheaper than keeping out: x is kept anyway, out would be one more tensor).
// Stage 1: grid (outputs / 256, C chunks); thread (m, c) sums the terms of chunk c in a fixed order
// in double and writes partials[c, m]. C depends on the shape only (enough threads to fill the GPU:
// ~256k). Stage 2: one thread per output sums its C partials in chunk order. No atomics, so every
// run gives the same bits. Consecutive threads are consecutive j: the loads of g and x coalesce.
//
// rope_angles: one thread per output, products and sums with __fmul_rn / __fadd_rn so that nvcc
// cannot fuse them into an FMA: the CPU rounds each product (fp-contract off), so the table is
// equal bit for bit. Its backward sums in double in the CPU's order, one thread per output.
#include "cuda/kernels/rope.h"

#include <cuda_bf16.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>

#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxBlocks = int64_t(1) << 20;        // grid-stride beyond this
constexpr int64_t kAngleGradThreads = int64_t(1) << 18;  // stage-1 threads to aim for
constexpr int64_t kMaxChunks = 4096;                     // <= 65535 (gridDim.y)
// The rotation indexes within one (b, h) slab in 32 bits: k + the grid stride (<= 1024 * 256 = 2^18)
// stays below 2^31.
constexpr int64_t kMaxSlab = (int64_t(1) << 31) - (int64_t(1) << 19);

int64_t blocks_for(int64_t n) { return std::clamp<int64_t>((n + kThreads - 1) / kThreads, 1, kMaxBlocks); }

// One channel pair (2j, 2j+1) as float2; kVec: one vector access (the pointer is aligned to it).
template <class T, bool kVec>
struct Pair;

template <bool kVec>
struct Pair<float, kVec> {
  static __device__ __forceinline__ float2 load(const float* p) {
    if constexpr (kVec) return *reinterpret_cast<const float2*>(p);
    else return make_float2(p[0], p[1]);
  }
  static __device__ __forceinline__ void store(float* p, float2 v) {
    if constexpr (kVec) {
      *reinterpret_cast<float2*>(p) = v;
    } else {
      p[0] = v.x;
      p[1] = v.y;
    }
  }
  static __device__ __forceinline__ void copy(float* o, const float* p) { store(o, load(p)); }
};

template <bool kVec>
struct Pair<__nv_bfloat16, kVec> {
  static __device__ __forceinline__ float2 load(const __nv_bfloat16* p) {
    if constexpr (kVec) {
      const __nv_bfloat162 v = *reinterpret_cast<const __nv_bfloat162*>(p);
      return make_float2(__low2float(v), __high2float(v));
    } else {
      return make_float2(__bfloat162float(p[0]), __bfloat162float(p[1]));
    }
  }
  // Each channel rounded to nearest even once, as the CPU's float_to_bf16.
  static __device__ __forceinline__ void store(__nv_bfloat16* p, float2 v) {
    if constexpr (kVec) {
      *reinterpret_cast<__nv_bfloat162*>(p) = __floats2bfloat162_rn(v.x, v.y);
    } else {
      p[0] = __float2bfloat16_rn(v.x);
      p[1] = __float2bfloat16_rn(v.y);
    }
  }
  static __device__ __forceinline__ void copy(__nv_bfloat16* o, const __nv_bfloat16* p) {
    o[0] = p[0];
    o[1] = p[1];
  }
};

// The pair turned by the angle with cosine c and sine s:
//   (x0 c - x1 s, x0 s + x1 c).
// The forward, the backward (s negated) and the angle gradient's recomputation all use this one
// expression, so the recomputed output is the forward's output bit for bit.
__device__ __forceinline__ float2 rotate_pair(float2 x, float c, float s) {
  return make_float2(x.x * c - x.y * s, x.x * s + x.y * c);
}

__global__ void rope_table_kernel(const float* __restrict__ angles, int64_t count, float2* __restrict__ table) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += int64_t(gridDim.x) * blockDim.x) {
    double s, c;
    sincos(double(angles[i]), &s, &c);
    table[i] = make_float2(float(c), float(s));
  }
}

struct RotateArgs {
  RopeView in[2];
  void* out[2];
};

// out[z] = R(sign * a) in[z] with z = blockIdx.z. blockIdx.y walks the B*NH slabs (b, h), each
// an (N, HD) block of the output; blockIdx.x / threadIdx.x walk the N*P pairs of a slab, so a
// thread does one 32-bit division (k / P) per pair and the (b, h) split once per slab.
template <class T, bool kVec>
__global__ void rope_rotate_kernel(RotateArgs args, int64_t BH, int NH, int N, int P, int skip, bool shared,
                                   const float2* __restrict__ table, float sign) {
  // Constant indices only: args.in[blockIdx.z] would copy the whole struct to local memory.
  const bool second = blockIdx.z != 0;
  const RopeView v = second ? args.in[1] : args.in[0];
  const T* __restrict__ in = static_cast<const T*>(v.data);
  T* __restrict__ out = static_cast<T*>(second ? args.out[1] : args.out[0]);
  const int slab = N * P;  // pairs per (b, h); the host checks that slab + the grid stride < 2^31
  const int Nr = N - skip;
  for (int64_t bh = blockIdx.y; bh < BH; bh += gridDim.y) {
    const int64_t h = bh % NH, b = bh / NH;
    const T* xs = in + (b * v.sb + h * v.sh);
    T* os = out + bh * 2 * int64_t(slab);  // the contiguous output's (b, h) block
    const float2* ts = table + (shared ? 0 : h) * int64_t(Nr) * P;
    for (int k = int(blockIdx.x * blockDim.x + threadIdx.x); k < slab; k += int(gridDim.x * blockDim.x)) {
      const int n = k / P, j = k - n * P;
      const T* xp = xs + (int64_t(n) * v.sn + 2 * j);
      T* op = os + 2 * int64_t(k);  // (n*P + j) pairs into the block: channel 2j of token n
      if (n < skip) {  // CLS: passed through (also its gradient, in the backward)
        Pair<T, kVec>::copy(op, xp);
        continue;
      }
      const float2 cs = ts[(n - skip) * P + j];
      Pair<T, kVec>::store(op, rotate_pair(Pair<T, kVec>::load(xp), cs.x, sign * cs.y));
    }
  }
}

struct GradArgs {
  RopeView g[2];
  RopeView x[2];
};

// Stage 1 of the angle gradient: thread (m, c) sums the terms t in [c*per_chunk, (c+1)*per_chunk)
// of output m = (h'*Nr + n')*P + j. Terms are ordered (s, b, h) with h only when shared (Hs = NH).
template <class T, bool kVec>
__global__ void rope_angle_grad_partials_kernel(GradArgs args, int64_t B, int64_t NH, int64_t N, int64_t P,
                                                int64_t skip, bool shared, int64_t M, int64_t terms,
                                                int64_t per_chunk, const float2* __restrict__ table,
                                                double* __restrict__ partials) {
  const int64_t m = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (m >= M) return;
  const int64_t c = blockIdx.y;
  const int64_t Nr = N - skip, Hs = shared ? NH : 1;
  const int64_t j = m % P, r = m / P;
  const int64_t n = r % Nr + skip, hrow = r / Nr;  // hrow: the angle row's head (0 when shared)
  const float2 cs = table[m];                       // the table has the layout of dangles
  const int64_t t0 = c * per_chunk, t1 = t0 + per_chunk < terms ? t0 + per_chunk : terms;
  double acc = 0.0;
  if (t0 >= t1) {  // an empty last chunk (or B = 0): no term, and no division by B * Hs = 0
    partials[c * M + m] = acc;
    return;
  }
  // (s, b, hh) of term t0, then stepped like an odometer (no division in the loop).
  int64_t s = t0 / (B * Hs), b = (t0 / Hs) % B, hh = t0 % Hs;
  for (int64_t t = t0; t < t1; ++t) {
    const int64_t h = shared ? hh : hrow;
    const RopeView gv = s != 0 ? args.g[1] : args.g[0], xv = s != 0 ? args.x[1] : args.x[0];  // (see above)
    const T* gp = static_cast<const T*>(gv.data) + (b * gv.sb + h * gv.sh + n * gv.sn + 2 * j);
    const T* xp = static_cast<const T*>(xv.data) + (b * xv.sb + h * xv.sh + n * xv.sn + 2 * j);
    const float2 gg = Pair<T, kVec>::load(gp);
    const float2 o = rotate_pair(Pair<T, kVec>::load(xp), cs.x, cs.y);
    acc += double(gg.y) * double(o.x) - double(gg.x) * double(o.y);
    if (++hh == Hs) {
      hh = 0;
      if (++b == B) {
        b = 0;
        ++s;
      }
    }
  }
  partials[c * M + m] = acc;
}

// Stage 2: dangles[m] = the C partials of m summed in chunk order.
__global__ void rope_angle_grad_final_kernel(const double* __restrict__ partials, int64_t M, int64_t C,
                                             float* __restrict__ dangles) {
  for (int64_t m = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; m < M; m += int64_t(gridDim.x) * blockDim.x) {
    double acc = 0.0;
    for (int64_t c = 0; c < C; ++c) acc += partials[c * M + m];
    dangles[m] = float(acc);
  }
}

__global__ void rope_angles_kernel(const float* __restrict__ freqs, const float* __restrict__ pos,
                                   float* __restrict__ out, int64_t A, int64_t NH, int64_t N, int64_t P) {
  const int64_t total = NH * N * P;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = i % P, r = i / P;
    const int64_t n = r % N, h = r / N;
    float acc = 0.0f;  // 0 + p is p (and +0 for p = -0), as the CPU's
    for (int64_t a = 0; a < A; ++a) acc = __fadd_rn(acc, __fmul_rn(pos[n * A + a], freqs[(a * NH + h) * P + j]));
    out[i] = acc;
  }
}

__global__ void rope_dfreqs_kernel(const float* __restrict__ g, const float* __restrict__ pos,
                                   float* __restrict__ dfreqs, int64_t A, int64_t NH, int64_t N, int64_t P) {
  const int64_t total = A * NH * P;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t j = t % P, ah = t / P;
    const int64_t h = ah % NH, a = ah / NH;
    double acc = 0.0;  // products of two floats are exact in double: same sum as the CPU's
    for (int64_t n = 0; n < N; ++n) acc += double(pos[n * A + a]) * double(g[(h * N + n) * P + j]);
    dfreqs[t] = float(acc);
  }
}

__global__ void rope_dpos_kernel(const float* __restrict__ g, const float* __restrict__ freqs,
                                 float* __restrict__ dpos, int64_t A, int64_t NH, int64_t N, int64_t P) {
  const int64_t total = N * A;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < total; t += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = t / A, a = t % A;
    double acc = 0.0;
    for (int64_t h = 0; h < NH; ++h)
      for (int64_t j = 0; j < P; ++j) acc += double(freqs[(a * NH + h) * P + j]) * double(g[(h * N + n) * P + j]);
    dpos[t] = float(acc);
  }
}

bool pair_aligned(const void* p, size_t item) { return reinterpret_cast<uintptr_t>(p) % (2 * item) == 0; }
bool view_pair_aligned(const RopeView& v, size_t item) {
  return pair_aligned(v.data, item) && v.sb % 2 == 0 && v.sh % 2 == 0 && v.sn % 2 == 0;
}

constexpr int64_t kRotateBlocksX = 1024;  // grid.x cap: blocks per slab (then a stride loop)
constexpr int64_t kMaxGridY = 65535;

template <class T>
void rotate_typed(const RotateArgs& args, int count, const RopeDims& d, const float* table, float sign, bool vec,
                  cudaStream_t stream) {
  const int64_t P = d.HD / 2, slab = d.N * P, BH = d.B * d.NH;
  const dim3 grid(unsigned(std::min((slab + kThreads - 1) / kThreads, kRotateBlocksX)),
                  unsigned(std::min(BH, kMaxGridY)), unsigned(count));
  const float2* t2 = reinterpret_cast<const float2*>(table);
  if (vec)
    rope_rotate_kernel<T, true><<<grid, kThreads, 0, stream>>>(args, BH, int(d.NH), int(d.N), int(P), int(d.skip),
                                                               d.shared_heads, t2, sign);
  else
    rope_rotate_kernel<T, false><<<grid, kThreads, 0, stream>>>(args, BH, int(d.NH), int(d.N), int(P), int(d.skip),
                                                                d.shared_heads, t2, sign);
  RV_CUDA_CHECK_LAUNCH("rope_rotate_kernel");
}

size_t storage_size(DType dtype, const char* what) {
  if (dtype == DType::f32) return 4;
  if (dtype == DType::bf16) return 2;
  throw std::invalid_argument(std::string(what) + ": takes f32 or bf16 tensors, got " + dtype_name(dtype));
}

void check_count(int count, const char* what) {
  if (count < 1 || count > 2)
    throw std::invalid_argument(std::string(what) + ": rotates 1 or 2 tensors, got " + std::to_string(count));
}

// The stage-1 split: terms per chunk, from the shape only.
int64_t angle_grad_per_chunk(int64_t M, int64_t terms) {
  if (M <= 0 || terms <= 0) return 1;
  const int64_t want = std::clamp<int64_t>((kAngleGradThreads + M - 1) / M, 1, std::min(terms, kMaxChunks));
  return (terms + want - 1) / want;
}

int64_t angle_grad_outputs(const RopeDims& d) {
  return (d.shared_heads ? 1 : d.NH) * (d.N - d.skip) * (d.HD / 2);
}
int64_t angle_grad_terms(const RopeDims& d, int count) { return count * d.B * (d.shared_heads ? d.NH : 1); }

}  // namespace

void launch_rope_table(const float* angles, int64_t count, float* table, cudaStream_t stream) {
  if (count <= 0) return;
  rope_table_kernel<<<unsigned(blocks_for(count)), kThreads, 0, stream>>>(angles, count,
                                                                           reinterpret_cast<float2*>(table));
  RV_CUDA_CHECK_LAUNCH("rope_table_kernel");
}

void launch_rope_rotate(DType dtype, const RopeView* in, void* const* out, int count, const RopeDims& d,
                        const float* table, bool inverse, cudaStream_t stream) {
  check_count(count, "launch_rope_rotate");
  const size_t item = storage_size(dtype, "launch_rope_rotate");
  if (d.B * d.NH * d.N * (d.HD / 2) == 0) return;
  if (d.N * (d.HD / 2) > kMaxSlab || d.NH > kMaxSlab)
    throw std::invalid_argument("rope_apply: N * HD/2 = " + std::to_string(d.N * (d.HD / 2)) + " pairs per head (and NH = " +
                                std::to_string(d.NH) + ") must stay below " + std::to_string(kMaxSlab) +
                                " on cuda (32-bit index math)");
  RotateArgs args{};
  bool vec = true;
  for (int k = 0; k < count; ++k) {
    args.in[k] = in[k];
    args.out[k] = out[k];
    vec = vec && view_pair_aligned(in[k], item) && pair_aligned(out[k], item);
  }
  const float sign = inverse ? -1.0f : 1.0f;
  if (dtype == DType::f32) return rotate_typed<float>(args, count, d, table, sign, vec, stream);
  rotate_typed<__nv_bfloat16>(args, count, d, table, sign, vec, stream);
}

int64_t rope_angle_grad_chunks(const RopeDims& d, int count) {
  const int64_t M = angle_grad_outputs(d), terms = angle_grad_terms(d, count);
  if (M <= 0 || terms <= 0) return 1;
  const int64_t per = angle_grad_per_chunk(M, terms);
  return (terms + per - 1) / per;
}

void launch_rope_angle_grad(DType dtype, const RopeView* g, const RopeView* x, int count, const RopeDims& d,
                            const float* table, double* partials, float* dangles, cudaStream_t stream) {
  check_count(count, "launch_rope_angle_grad");
  const size_t item = storage_size(dtype, "launch_rope_angle_grad");
  const int64_t M = angle_grad_outputs(d), terms = angle_grad_terms(d, count);
  if (M <= 0) return;
  const int64_t per = angle_grad_per_chunk(M, terms);
  const int64_t C = rope_angle_grad_chunks(d, count);
  GradArgs args{};
  bool vec = true;
  for (int k = 0; k < count; ++k) {
    args.g[k] = g[k];
    args.x[k] = x[k];
    vec = vec && view_pair_aligned(g[k], item) && view_pair_aligned(x[k], item);
  }
  const dim3 grid(unsigned((M + kThreads - 1) / kThreads), unsigned(C));
  const float2* t2 = reinterpret_cast<const float2*>(table);
#define RV_ROPE_GRAD(T, V)                                                                                           \
  rope_angle_grad_partials_kernel<T, V><<<grid, kThreads, 0, stream>>>(args, d.B, d.NH, d.N, d.HD / 2, d.skip,      \
                                                                       d.shared_heads, M, terms, per, t2, partials)
  if (dtype == DType::f32) {
    if (vec) RV_ROPE_GRAD(float, true);
    else RV_ROPE_GRAD(float, false);
  } else {
    if (vec) RV_ROPE_GRAD(__nv_bfloat16, true);
    else RV_ROPE_GRAD(__nv_bfloat16, false);
  }
#undef RV_ROPE_GRAD
  RV_CUDA_CHECK_LAUNCH("rope_angle_grad_partials_kernel");
  rope_angle_grad_final_kernel<<<unsigned(blocks_for(M)), kThreads, 0, stream>>>(partials, M, C, dangles);
  RV_CUDA_CHECK_LAUNCH("rope_angle_grad_final_kernel");
}

void launch_rope_angles(const float* freqs, const float* pos, float* out, int64_t A, int64_t NH, int64_t N,
                        int64_t P, cudaStream_t stream) {
  const int64_t total = NH * N * P;
  if (total == 0) return;
  rope_angles_kernel<<<unsigned(blocks_for(total)), kThreads, 0, stream>>>(freqs, pos, out, A, NH, N, P);
  RV_CUDA_CHECK_LAUNCH("rope_angles_kernel");
}

void launch_rope_angles_backward(const float* g, const float* freqs, const float* pos, float* dfreqs, float* dpos,
                                 int64_t A, int64_t NH, int64_t N, int64_t P, cudaStream_t stream) {
  if (dfreqs && A * NH * P > 0) {
    rope_dfreqs_kernel<<<unsigned(blocks_for(A * NH * P)), kThreads, 0, stream>>>(g, pos, dfreqs, A, NH, N, P);
    RV_CUDA_CHECK_LAUNCH("rope_dfreqs_kernel");
  }
  if (dpos && N * A > 0) {
    rope_dpos_kernel<<<unsigned(blocks_for(N * A)), kThreads, 0, stream>>>(g, freqs, dpos, A, NH, N, P);
    RV_CUDA_CHECK_LAUNCH("rope_dpos_kernel");
  }
}

}  // namespace rv::cuda
