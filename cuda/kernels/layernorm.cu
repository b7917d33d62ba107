// layernorm.cu: layer norm over the last C values of each row of a contiguous (rows, C) tensor,
// forward and backward; f32 or bf16 storage, f32 math.
//
// Forward, one warp per row (8 warps, 8 rows, per 256-thread block; blocks loop over rows):
// the row is loaded once into registers with 128-bit loads (lane l holds the 16-byte vectors
// l, l + 32, l + 64, ...: a warp's loads are 512 contiguous bytes, fully coalesced), the mean is
// a warp shuffle sum, the variance a second pass over the registers (two-pass: no cancellation,
// and free since the row is already in registers), then y is written with 128-bit stores. The
// kernel is templated on K, the vectors per lane, so the row array lives in registers (C = 384
// f32: K = 3; C = 768: K = 6). Memory traffic is the minimum: x read once, y written once.
//
// Backward, the same mapping: the warp loads x and dy of its row into registers, forms
// xhat = (x - mean) * rstd and gy = dy * w, warp-sums gy and gy * xhat, and writes
//   dx = rstd * (gy - mean(gy) - xhat * mean(gy * xhat)).
// dweight = sum_rows dy * xhat and dbias = sum_rows dy come out of the same pass: since a lane
// always holds the same columns, it accumulates them in registers over all the rows its warp
// handles. At the end the block's 8 warps add their sums into shared memory one warp after
// the other (a fixed order) and the block writes one partial row (stage 1); a second kernel adds
// the partial rows of all blocks in a fixed order (stage 2). No atomics: the same input gives
// the same bits on every run. The number of blocks depends on rows only (at most 512).
//
// Fallback (any C and alignment: C not a multiple of 16 bytes, a misaligned view, or rows too
// long for registers, over 48 values per lane): the same warp-per-row kernels with lane-strided
// scalar loops over global memory (the row is re-read from L1/L2 for each pass), and dweight /
// dbias by a separate column kernel: block (32 columns x 8 row lanes) per (column tile, chunk of
// rows) writing the same partial rows as stage 1, then the same stage 2.
#include "cuda/kernels/layernorm.h"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <stdexcept>
#include <string>

#include "cuda/kernels/float_io.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

constexpr int kWarps = 8;  // rows per block at a time in the warp-per-row kernels
constexpr int kThreads = kWarps * 32;
constexpr int kMaxParts = 512;      // partial rows of dweight / dbias (blocks of the backward)
constexpr int kMaxPerLane = 48;     // the longest row kept in registers: 48 values per lane
constexpr int kFinishLanes = 16;    // stage 2: row lanes per column

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Blocks of the warp-per-row kernels and partial rows of dweight / dbias: from rows only.
int backward_parts(int64_t rows) { return int(std::clamp<int64_t>(ceil_div(rows, kWarps), 1, kMaxParts)); }
unsigned forward_blocks(int64_t rows) { return unsigned(std::clamp<int64_t>(ceil_div(rows, kWarps), 1, 1 << 20)); }

// ---- forward -----------------------------------------------------------------------------------

// Row in registers: K vectors of V = 16 / sizeof(T) values per lane; C % V == 0, x/y/w/b 16-byte
// aligned (checked by the launcher).
template <class T, class P, int K>
__global__ void __launch_bounds__(kThreads)
    ln_forward_regs(const T* __restrict__ x, const P* __restrict__ w, const P* __restrict__ b, T* __restrict__ y,
                    float* __restrict__ mean, float* __restrict__ rstd, int64_t rows, int C, float eps) {
  constexpr int V = int(16 / sizeof(T));
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int nvec = C / V;
  const float inv_c = 1.0f / float(C);
  for (int64_t r = int64_t(blockIdx.x) * kWarps + warp; r < rows; r += int64_t(gridDim.x) * kWarps) {
    const T* xr = x + r * C;
    float v[K][V];
    float s = 0.0f;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int q = lane + 32 * k;
      if (q < nvec) {
        load_floats<T, V>(xr + int64_t(q) * V, v[k]);
      } else {
#pragma unroll
        for (int i = 0; i < V; ++i) v[k][i] = 0.0f;
      }
#pragma unroll
      for (int i = 0; i < V; ++i) s += v[k][i];
    }
    const float mu = warp_sum(s) * inv_c;
    float ss = 0.0f;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      if (lane + 32 * k < nvec) {
#pragma unroll
        for (int i = 0; i < V; ++i) {
          const float d = v[k][i] - mu;
          ss += d * d;
        }
      }
    }
    const float rs = 1.0f / sqrtf(warp_sum(ss) * inv_c + eps);
    if (lane == 0) {
      mean[r] = mu;
      rstd[r] = rs;
    }
    T* yr = y + r * C;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int q = lane + 32 * k;
      if (q >= nvec) continue;
      float wv[V], bv[V];
      if (w) {
        load_floats<P, V>(w + int64_t(q) * V, wv);
      } else {
#pragma unroll
        for (int i = 0; i < V; ++i) wv[i] = 1.0f;
      }
      if (b) {
        load_floats<P, V>(b + int64_t(q) * V, bv);
      } else {
#pragma unroll
        for (int i = 0; i < V; ++i) bv[i] = 0.0f;
      }
      float o[V];
#pragma unroll
      for (int i = 0; i < V; ++i) o[i] = (v[k][i] - mu) * rs * wv[i] + bv[i];
      store_floats<T, V>(yr + int64_t(q) * V, o);
    }
  }
}

// Any C, any alignment: scalar lane-strided passes over the row in global memory.
template <class T, class P>
__global__ void __launch_bounds__(kThreads)
    ln_forward_loop(const T* __restrict__ x, const P* __restrict__ w, const P* __restrict__ b, T* __restrict__ y,
                    float* __restrict__ mean, float* __restrict__ rstd, int64_t rows, int64_t C, float eps) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const float inv_c = 1.0f / float(C);
  for (int64_t r = int64_t(blockIdx.x) * kWarps + warp; r < rows; r += int64_t(gridDim.x) * kWarps) {
    const T* xr = x + r * C;
    float s = 0.0f;
    for (int64_t c = lane; c < C; c += 32) s += to_float(xr[c]);
    const float mu = warp_sum(s) * inv_c;
    float ss = 0.0f;
    for (int64_t c = lane; c < C; c += 32) {
      const float d = to_float(xr[c]) - mu;
      ss += d * d;
    }
    const float rs = 1.0f / sqrtf(warp_sum(ss) * inv_c + eps);
    if (lane == 0) {
      mean[r] = mu;
      rstd[r] = rs;
    }
    T* yr = y + r * C;
    for (int64_t c = lane; c < C; c += 32) {
      const float wv = w ? to_float(w[c]) : 1.0f, bv = b ? to_float(b[c]) : 0.0f;
      yr[c] = from_float<T>((to_float(xr[c]) - mu) * rs * wv + bv);
    }
  }
}

// ---- backward ----------------------------------------------------------------------------------

// Row in registers (same conditions as ln_forward_regs). dx may be null. When pw is not null,
// also writes this block's partial sums of dy * xhat into pw[blockIdx.x * C ...] and of dy into
// pb[...]; it then needs 2 * C floats of dynamic shared memory.
template <class T, class P, int K>
__global__ void __launch_bounds__(kThreads)
    ln_backward_regs(const T* __restrict__ dy, const T* __restrict__ x, const P* __restrict__ w,
                     const float* __restrict__ mean, const float* __restrict__ rstd, T* __restrict__ dx,
                     float* __restrict__ pw, float* __restrict__ pb, int64_t rows, int C) {
  constexpr int V = int(16 / sizeof(T));
  extern __shared__ float shared_sums[];  // [0, C): dweight, [C, 2C): dbias (only when pw)
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const int nvec = C / V;
  const float inv_c = 1.0f / float(C);
  float aw[K][V], ab[K][V];  // this lane's running sums of dy * xhat and dy over its warp's rows
#pragma unroll
  for (int k = 0; k < K; ++k)
#pragma unroll
    for (int i = 0; i < V; ++i) aw[k][i] = ab[k][i] = 0.0f;

  for (int64_t r = int64_t(blockIdx.x) * kWarps + warp; r < rows; r += int64_t(gridDim.x) * kWarps) {
    const float mu = mean[r], rs = rstd[r];
    float xh[K][V], gy[K][V];  // xhat and dy * w of this lane's columns
    float sg = 0.0f, sgx = 0.0f;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int q = lane + 32 * k;
      if (q >= nvec) continue;
      float gv[V], wv[V];
      load_floats<T, V>(x + r * C + int64_t(q) * V, xh[k]);
      load_floats<T, V>(dy + r * C + int64_t(q) * V, gv);
      if (w) {
        load_floats<P, V>(w + int64_t(q) * V, wv);
      } else {
#pragma unroll
        for (int i = 0; i < V; ++i) wv[i] = 1.0f;
      }
#pragma unroll
      for (int i = 0; i < V; ++i) {
        xh[k][i] = (xh[k][i] - mu) * rs;
        gy[k][i] = gv[i] * wv[i];
        sg += gy[k][i];
        sgx += gy[k][i] * xh[k][i];
        aw[k][i] += gv[i] * xh[k][i];
        ab[k][i] += gv[i];
      }
    }
    if (!dx) continue;  // (uniform across the warp: the sums below are not needed)
    const float mg = warp_sum(sg) * inv_c, mgx = warp_sum(sgx) * inv_c;
#pragma unroll
    for (int k = 0; k < K; ++k) {
      const int q = lane + 32 * k;
      if (q >= nvec) continue;
      float o[V];
#pragma unroll
      for (int i = 0; i < V; ++i) o[i] = rs * (gy[k][i] - mg - xh[k][i] * mgx);
      store_floats<T, V>(dx + r * C + int64_t(q) * V, o);
    }
  }

  if (!pw) return;  // (uniform across the block)
  // Stage 1: the warps add their column sums into shared memory in warp order, then the block
  // writes its partial row. Every warp covers every column (K * 32 * V >= C).
  for (int wi = 0; wi < kWarps; ++wi) {
    if (warp == wi) {
#pragma unroll
      for (int k = 0; k < K; ++k) {
        const int q = lane + 32 * k;
        if (q >= nvec) continue;
#pragma unroll
        for (int i = 0; i < V; ++i) {
          const int c = q * V + i;
          shared_sums[c] = (wi == 0 ? 0.0f : shared_sums[c]) + aw[k][i];
          shared_sums[C + c] = (wi == 0 ? 0.0f : shared_sums[C + c]) + ab[k][i];
        }
      }
    }
    __syncthreads();
  }
  for (int c = threadIdx.x; c < C; c += kThreads) {
    pw[int64_t(blockIdx.x) * C + c] = shared_sums[c];
    pb[int64_t(blockIdx.x) * C + c] = shared_sums[C + c];
  }
}

// Any C, any alignment: dx only (dweight / dbias come from ln_param_partials).
template <class T, class P>
__global__ void __launch_bounds__(kThreads)
    ln_backward_dx_loop(const T* __restrict__ dy, const T* __restrict__ x, const P* __restrict__ w,
                        const float* __restrict__ mean, const float* __restrict__ rstd, T* __restrict__ dx,
                        int64_t rows, int64_t C) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  const float inv_c = 1.0f / float(C);
  for (int64_t r = int64_t(blockIdx.x) * kWarps + warp; r < rows; r += int64_t(gridDim.x) * kWarps) {
    const float mu = mean[r], rs = rstd[r];
    const T* xr = x + r * C;
    const T* gr = dy + r * C;
    float sg = 0.0f, sgx = 0.0f;
    for (int64_t c = lane; c < C; c += 32) {
      const float xh = (to_float(xr[c]) - mu) * rs;
      const float g = to_float(gr[c]) * (w ? to_float(w[c]) : 1.0f);
      sg += g;
      sgx += g * xh;
    }
    const float mg = warp_sum(sg) * inv_c, mgx = warp_sum(sgx) * inv_c;
    T* dr = dx + r * C;
    for (int64_t c = lane; c < C; c += 32) {
      const float xh = (to_float(xr[c]) - mu) * rs;
      const float g = to_float(gr[c]) * (w ? to_float(w[c]) : 1.0f);
      dr[c] = from_float<T>(rs * (g - mg - xh * mgx));
    }
  }
}

// Stage 1 for the fallback: block (32, kWarps) sums columns [32 * blockIdx.x, +32) over the rows
// [blockIdx.y * per, +per): thread (tx, ty) takes rows ty, ty + kWarps, ...; the kWarps sums of a
// column are then added in order of ty.
template <class T>
__global__ void __launch_bounds__(kThreads)
    ln_param_partials(const T* __restrict__ dy, const T* __restrict__ x, const float* __restrict__ mean,
                      const float* __restrict__ rstd, float* __restrict__ pw, float* __restrict__ pb, int64_t rows,
                      int64_t C, int64_t per) {
  __shared__ float sw[kWarps][32], sb[kWarps][32];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t c = int64_t(blockIdx.x) * 32 + tx;
  const int64_t r0 = int64_t(blockIdx.y) * per, r1 = r0 + per < rows ? r0 + per : rows;
  float aw = 0.0f, ab = 0.0f;
  if (c < C)
    for (int64_t r = r0 + ty; r < r1; r += kWarps) {
      const float g = to_float(dy[r * C + c]);
      aw += g * ((to_float(x[r * C + c]) - mean[r]) * rstd[r]);
      ab += g;
    }
  sw[ty][tx] = aw;
  sb[ty][tx] = ab;
  __syncthreads();
  if (ty == 0 && c < C) {
    float tw = 0.0f, tb = 0.0f;
    for (int j = 0; j < kWarps; ++j) {
      tw += sw[j][tx];
      tb += sb[j][tx];
    }
    pw[int64_t(blockIdx.y) * C + c] = tw;
    pb[int64_t(blockIdx.y) * C + c] = tb;
  }
}

// Stage 2: block (32, kFinishLanes) per 32 columns; thread (tx, ty) adds the partial rows
// ty, ty + kFinishLanes, ... in double, then the kFinishLanes sums are added in order of ty.
template <class P>
__global__ void __launch_bounds__(32 * kFinishLanes)
    ln_param_finish(const float* __restrict__ pw, const float* __restrict__ pb, int parts, int64_t C,
                    P* __restrict__ dw, P* __restrict__ db) {
  __shared__ double sw[kFinishLanes][32], sb[kFinishLanes][32];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t c = int64_t(blockIdx.x) * 32 + tx;
  double aw = 0.0, ab = 0.0;
  if (c < C)
    for (int j = ty; j < parts; j += kFinishLanes) {
      aw += double(pw[int64_t(j) * C + c]);
      ab += double(pb[int64_t(j) * C + c]);
    }
  sw[ty][tx] = aw;
  sb[ty][tx] = ab;
  __syncthreads();
  if (ty == 0 && c < C) {
    double tw = 0.0, tb = 0.0;
    for (int j = 0; j < kFinishLanes; ++j) {
      tw += sw[j][tx];
      tb += sb[j][tx];
    }
    if (dw) dw[c] = from_float<P>(float(tw));
    if (db) db[c] = from_float<P>(float(tb));
  }
}

// ---- launch ------------------------------------------------------------------------------------

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

// The vectors per lane the register kernels are instantiated for: the smallest K >= need, or 0
// when the row is too long for registers (more than kMaxPerLane values per lane).
template <class T>
int pick_k(int64_t need) {
  constexpr int V = int(16 / sizeof(T));
  const int ks[] = {1, 2, 3, 4, 6, 8, 12};
  for (int k : ks)
    if (k * V <= kMaxPerLane && need <= k) return k;
  return 0;
}

struct Ptrs {
  const void *x, *w, *b, *dy;
  void *y, *dx;
  float *mean, *rstd, *pw, *pb;
};

template <class T, class P, int K>
void forward_regs(const LayerNormArgs& a, const Ptrs& p, float eps, cudaStream_t s) {
  ln_forward_regs<T, P, K><<<forward_blocks(a.rows), kThreads, 0, s>>>(
      static_cast<const T*>(p.x), static_cast<const P*>(p.w), static_cast<const P*>(p.b), static_cast<T*>(p.y),
      p.mean, p.rstd, a.rows, int(a.C), eps);
  RV_CUDA_CHECK_LAUNCH("ln_forward_regs");
}

template <class T, class P, int K>
void backward_regs(const LayerNormArgs& a, const Ptrs& p, cudaStream_t s) {
  const size_t smem = p.pw ? size_t(2 * a.C) * sizeof(float) : 0;  // <= 2 * 1536 floats: 12 KB
  ln_backward_regs<T, P, K><<<backward_parts(a.rows), kThreads, smem, s>>>(
      static_cast<const T*>(p.dy), static_cast<const T*>(p.x), static_cast<const P*>(p.w), p.mean, p.rstd,
      static_cast<T*>(p.dx), p.pw, p.pb, a.rows, int(a.C));
  RV_CUDA_CHECK_LAUNCH("ln_backward_regs");
}

// Calls f<K>() for the K pick_k chose (the bf16 rows stop at K = 6: 48 values per lane).
template <class T, class P>
struct RegsLaunch {
  static void forward(int k, const LayerNormArgs& a, const Ptrs& p, float eps, cudaStream_t s) {
    switch (k) {
      case 1: return forward_regs<T, P, 1>(a, p, eps, s);
      case 2: return forward_regs<T, P, 2>(a, p, eps, s);
      case 3: return forward_regs<T, P, 3>(a, p, eps, s);
      case 4: return forward_regs<T, P, 4>(a, p, eps, s);
      case 6: return forward_regs<T, P, 6>(a, p, eps, s);
    }
    if constexpr (sizeof(T) == 4) {
      if (k == 8) return forward_regs<T, P, 8>(a, p, eps, s);
      if (k == 12) return forward_regs<T, P, 12>(a, p, eps, s);
    }
    throw std::logic_error("layer_norm: no register kernel for K = " + std::to_string(k));
  }
  static void backward(int k, const LayerNormArgs& a, const Ptrs& p, cudaStream_t s) {
    switch (k) {
      case 1: return backward_regs<T, P, 1>(a, p, s);
      case 2: return backward_regs<T, P, 2>(a, p, s);
      case 3: return backward_regs<T, P, 3>(a, p, s);
      case 4: return backward_regs<T, P, 4>(a, p, s);
      case 6: return backward_regs<T, P, 6>(a, p, s);
    }
    if constexpr (sizeof(T) == 4) {
      if (k == 8) return backward_regs<T, P, 8>(a, p, s);
      if (k == 12) return backward_regs<T, P, 12>(a, p, s);
    }
    throw std::logic_error("layer_norm backward: no register kernel for K = " + std::to_string(k));
  }
};

// The register kernels apply when rows are whole 16-byte vectors, every pointer is 16-byte
// aligned and the row fits in registers; returns their K, or 0 for the fallback.
template <class T, class P>
int regs_k(const LayerNormArgs& a, std::initializer_list<const void*> ptrs) {
  constexpr int64_t V = int64_t(16 / sizeof(T));
  if (a.C % V != 0) return 0;
  for (const void* q : ptrs)
    if (q && !aligned16(q)) return 0;
  return pick_k<T>(ceil_div(a.C / V, 32));
}

template <class T, class P>
void forward_typed(const LayerNormArgs& a, const Ptrs& p, float eps, cudaStream_t s) {
  const int k = regs_k<T, P>(a, {p.x, p.w, p.b, p.y});
  if (k > 0) return RegsLaunch<T, P>::forward(k, a, p, eps, s);
  ln_forward_loop<T, P><<<forward_blocks(a.rows), kThreads, 0, s>>>(
      static_cast<const T*>(p.x), static_cast<const P*>(p.w), static_cast<const P*>(p.b), static_cast<T*>(p.y),
      p.mean, p.rstd, a.rows, a.C, eps);
  RV_CUDA_CHECK_LAUNCH("ln_forward_loop");
}

template <class T, class P>
void backward_typed(const LayerNormArgs& a, const Ptrs& p, void* dw, void* db, cudaStream_t s) {
  const int parts = backward_parts(a.rows);
  const int k = regs_k<T, P>(a, {p.x, p.w, p.dy, p.dx});
  if (k > 0) {
    RegsLaunch<T, P>::backward(k, a, p, s);
  } else {
    if (p.dx) {
      ln_backward_dx_loop<T, P><<<forward_blocks(a.rows), kThreads, 0, s>>>(
          static_cast<const T*>(p.dy), static_cast<const T*>(p.x), static_cast<const P*>(p.w), p.mean, p.rstd,
          static_cast<T*>(p.dx), a.rows, a.C);
      RV_CUDA_CHECK_LAUNCH("ln_backward_dx_loop");
    }
    if (p.pw) {
      // parts chunks of `per` rows (the last ones may be empty: their partial rows are zeros).
      const int64_t per = std::max<int64_t>(1, ceil_div(a.rows, parts));
      const dim3 grid(unsigned(ceil_div(a.C, 32)), unsigned(parts)), block(32, kWarps);
      ln_param_partials<T><<<grid, block, 0, s>>>(static_cast<const T*>(p.dy), static_cast<const T*>(p.x), p.mean,
                                                  p.rstd, p.pw, p.pb, a.rows, a.C, per);
      RV_CUDA_CHECK_LAUNCH("ln_param_partials");
    }
  }
  if (p.pw) {
    const dim3 grid(unsigned(ceil_div(a.C, 32))), block(32, kFinishLanes);
    ln_param_finish<P><<<grid, block, 0, s>>>(p.pw, p.pb, parts, a.C, static_cast<P*>(dw), static_cast<P*>(db));
    RV_CUDA_CHECK_LAUNCH("ln_param_finish");
  }
}

void check_args(const LayerNormArgs& a, const char* op) {
  const bool x_ok = a.x_dtype == DType::f32 || a.x_dtype == DType::bf16;
  const bool p_ok = a.p_dtype == DType::f32 || a.p_dtype == a.x_dtype;
  if (!x_ok || !p_ok)
    throw std::invalid_argument(std::string(op) + ": launcher takes x in f32 or bf16 with weight/bias in f32 or x's "
                                "dtype, got x " + dtype_name(a.x_dtype) + ", weight " + dtype_name(a.p_dtype));
  if (a.C <= 0 || a.C > (int64_t(1) << 30) || a.rows < 0)
    throw std::invalid_argument(std::string(op) + ": rows must be >= 0 and C in [1, 2^30], got rows " +
                                std::to_string(a.rows) + ", C " + std::to_string(a.C));
}

}  // namespace

void launch_layer_norm_forward(const LayerNormArgs& a, const void* x, const void* w, const void* b, void* y,
                               float* mean, float* rstd, float eps, cudaStream_t stream) {
  check_args(a, "layer_norm");
  if (a.rows == 0) return;
  const Ptrs p{x, w, b, nullptr, y, nullptr, mean, rstd, nullptr, nullptr};
  if (a.x_dtype == DType::f32) return forward_typed<float, float>(a, p, eps, stream);
  if (a.p_dtype == DType::f32) return forward_typed<uint16_t, float>(a, p, eps, stream);
  return forward_typed<uint16_t, uint16_t>(a, p, eps, stream);
}

int64_t layer_norm_backward_scratch(int64_t rows, int64_t C) { return 2 * int64_t(backward_parts(rows)) * C; }

void launch_layer_norm_backward(const LayerNormArgs& a, const void* dy, const void* x, const void* w,
                                const float* mean, const float* rstd, void* dx, void* dw, void* db, float* scratch,
                                cudaStream_t stream) {
  check_args(a, "layer_norm backward");
  const bool params = dw || db;
  if (params && !scratch) throw std::invalid_argument("layer_norm backward: dweight/dbias need the scratch buffer");
  if (a.rows == 0 && !params) return;
  const int64_t parts = backward_parts(a.rows);
  float* pw = params ? scratch : nullptr;
  float* pb = params ? scratch + parts * a.C : nullptr;
  const Ptrs p{x, w, nullptr, dy, nullptr, dx, const_cast<float*>(mean), const_cast<float*>(rstd), pw, pb};
  if (a.x_dtype == DType::f32) return backward_typed<float, float>(a, p, dw, db, stream);
  if (a.p_dtype == DType::f32) return backward_typed<uint16_t, float>(a, p, dw, db, stream);
  return backward_typed<uint16_t, uint16_t>(a, p, dw, db, stream);
}

}  // namespace rv::cuda
