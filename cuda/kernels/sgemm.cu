// sgemm.cu: the hand-written fp32 GEMM (FFMA only, no TF32), batched, any transposes, any M/N/K,
// with the bias and exact-GELU epilogues fused into the store. Two kernels:
//
// simple (16x16 tiles): a 16x16 block computes a 16x16 tile of C, one output per thread. Each
//   k-step of 16 stages a 16x16 tile of A and of B in shared memory (padded to 17 columns so the
//   column reads hit 16 different banks), syncs, does 16 FMAs per thread, syncs. Easy to check;
//   used for small problems (where the big tiles would leave most of the GPU idle) and as the
//   reference rung of the ladder in the tests.
//
// blocked (128x128x8 tiles, 256 threads, 8x8 outputs per thread):
//   grid   x = ceil(M / 128) row tiles, y = ceil(N / 128) column tiles, z = batch entries (a
//          grid-stride loop over z when batch > 65535).
//   smem   As[2][8][132] (A's tile stored TRANSPOSED, k-major, so a thread's 8 rows for one k are
//          two float4 loads) and Bs[2][8][132]; 2 buffers x 2 operands x 8 x 132 x 4 B = 16.5 KB.
//          The pad 128 -> 132 spreads the transposing stores over distinct banks.
//   regs   64 accumulators + 8 A values + 8 B values + 8 prefetched global values (~120 per thread).
//   loop   double buffering: while the threads compute tile k from buffer k&1, they have already
//          issued the global loads of tile k+1 into registers; those are stored into the other
//          buffer after the FMAs, then ONE __syncthreads per k-tile. (The other buffer was last
//          read in iteration k-1, which ended with a sync, so the stores cannot race its reads.)
//   thread (ty, tx) = (t / 16, t % 16) owns rows {ty*4..ty*4+3, 64+ty*4..64+ty*4+3} and the same
//          pattern of columns with tx: each k-step reads 4 float4 from shared memory (no bank
//          conflicts: a warp's 16 tx read 16 consecutive float4) for 64 FMAs, so shared-memory
//          bandwidth is not the limit and the FMA pipes are kept busy.
//   loads  each thread fetches 4 values of A and 4 of B per k-tile, consecutive along the
//          operand's contiguous direction (a template flag per operand), so a warp's loads are
//          coalesced whether the operand is transposed or not; one float4 each when lengths, lds
//          and batch strides are multiples of 4 and pointers aligned (kVec), else 4 scalars. Loads outside M/N/K read as 0 (so
//          the tile FMAs need no guards) and stores outside C are skipped: any M, N, K, lds.
//   Why it reaches ~85-90% of cuBLAS at large shapes: arithmetic intensity per block of
//   128*128*8*2 FLOP per 2*128*8*4 B of global loads (32 FLOP/B, served mostly from L2), 64 FMA per
//   4 shared loads per thread, and load latency hidden behind a full tile of FMAs. What is left
//   on the table (warp tiling, two blocks per SM, a 128x64 variant for small N) is listed in
//   docs/kernels.md.
#include "cuda/kernels/sgemm.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

__device__ __forceinline__ float gelu_exact(float x) { return 0.5f * x * (1.f + erff(x * 0.70710678118654752f)); }

__device__ __forceinline__ float epilogue(float acc, float alpha, const float* bias, int64_t n, bool gelu) {
  float v = alpha * acc;
  if (bias) v += bias[n];
  if (gelu) v = gelu_exact(v);
  return v;
}

// ---- simple ---------------------------------------------------------------------------------
constexpr int kS = 16;

__global__ void sgemm_simple_kernel(SgemmArgs p) {
  __shared__ float As[kS][kS + 1];  // As[m][k]
  __shared__ float Bs[kS][kS + 1];  // Bs[k][n]
  const int tx = threadIdx.x, ty = threadIdx.y;  // tx: column (n) / k, ty: row (m) / k
  const int64_t m = int64_t(blockIdx.x) * kS + ty, n = int64_t(blockIdx.y) * kS + tx;
  for (int64_t z = blockIdx.z; z < p.batch; z += gridDim.z) {
    const float* a = p.a + z * p.stride_a;
    const float* b = p.b + z * p.stride_b;
    float acc = 0.f;
    for (int64_t k0 = 0; k0 < p.K; k0 += kS) {
      const int64_t ka = k0 + tx, kb = k0 + ty;  // A(m, ka) and B(kb, n)
      As[ty][tx] = (m < p.M && ka < p.K) ? a[p.trans_a ? ka * p.lda + m : m * p.lda + ka] : 0.f;
      Bs[ty][tx] = (kb < p.K && n < p.N) ? b[p.trans_b ? n * p.ldb + kb : kb * p.ldb + n] : 0.f;
      __syncthreads();
      for (int k = 0; k < kS; ++k) acc += As[ty][k] * Bs[k][tx];
      __syncthreads();
    }
    if (m < p.M && n < p.N) p.c[z * p.stride_c + m * p.ldc + n] = epilogue(acc, p.alpha, p.bias, n, p.gelu);
  }
}

// ---- blocked --------------------------------------------------------------------------------
constexpr int kBM = 128, kBN = 128, kBK = 8, kPad = 4, kThreads = 256;

// Loads this thread's 4 values of the (kBM x kBK) A tile at (m0, k0) into r (0 outside A).
// Not transposed (k contiguous): thread t reads row t/2, k = (t%2)*4 + i.
// Transposed (m contiguous): thread t reads k = t/32, rows (t%32)*4 + i.
// kVec: the 4 values are consecutive in memory and 16-byte aligned (the host checked that the
// contiguous length, ld, batch stride are multiples of 4 and the pointer is aligned), so they
// are one float4 load; with the length a multiple of 4 they are all in range or all out.
template <bool kTrans, bool kVec>
__device__ __forceinline__ void load_a(const float* a, int64_t lda, int64_t M, int64_t K, int64_t m0, int64_t k0,
                                       float r[4]) {
  const int t = threadIdx.x;
  if constexpr (kVec) {
    const int64_t m = kTrans ? m0 + (t & 31) * 4 : m0 + (t >> 1), k = kTrans ? k0 + (t >> 5) : k0 + (t & 1) * 4;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (m < M && k < K) v = *reinterpret_cast<const float4*>(kTrans ? a + k * lda + m : a + m * lda + k);
    r[0] = v.x, r[1] = v.y, r[2] = v.z, r[3] = v.w;
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if (!kTrans) {
        const int64_t m = m0 + (t >> 1), k = k0 + (t & 1) * 4 + i;
        r[i] = (m < M && k < K) ? a[m * lda + k] : 0.f;
      } else {
        const int64_t m = m0 + (t & 31) * 4 + i, k = k0 + (t >> 5);
        r[i] = (m < M && k < K) ? a[k * lda + m] : 0.f;
      }
    }
  }
}

template <bool kTrans>
__device__ __forceinline__ void store_a(float (*As)[kBM + kPad], const float r[4]) {
  const int t = threadIdx.x;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if (!kTrans) {
      As[(t & 1) * 4 + i][t >> 1] = r[i];
    } else {
      As[t >> 5][(t & 31) * 4 + i] = r[i];
    }
  }
}

// B tile (kBK x kBN) at (k0, n0). Not transposed (n contiguous): k = t/32, n = (t%32)*4 + i.
// Transposed (k contiguous): n = t/2, k = (t%2)*4 + i.
template <bool kTrans, bool kVec>
__device__ __forceinline__ void load_b(const float* b, int64_t ldb, int64_t K, int64_t N, int64_t k0, int64_t n0,
                                       float r[4]) {
  const int t = threadIdx.x;
  if constexpr (kVec) {
    const int64_t k = kTrans ? k0 + (t & 1) * 4 : k0 + (t >> 5), n = kTrans ? n0 + (t >> 1) : n0 + (t & 31) * 4;
    float4 v = make_float4(0.f, 0.f, 0.f, 0.f);
    if (k < K && n < N) v = *reinterpret_cast<const float4*>(kTrans ? b + n * ldb + k : b + k * ldb + n);
    r[0] = v.x, r[1] = v.y, r[2] = v.z, r[3] = v.w;
  } else {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
      if (!kTrans) {
        const int64_t k = k0 + (t >> 5), n = n0 + (t & 31) * 4 + i;
        r[i] = (k < K && n < N) ? b[k * ldb + n] : 0.f;
      } else {
        const int64_t k = k0 + (t & 1) * 4 + i, n = n0 + (t >> 1);
        r[i] = (k < K && n < N) ? b[n * ldb + k] : 0.f;
      }
    }
  }
}

template <bool kTrans>
__device__ __forceinline__ void store_b(float (*Bs)[kBN + kPad], const float r[4]) {
  const int t = threadIdx.x;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    if (!kTrans) {
      Bs[t >> 5][(t & 31) * 4 + i] = r[i];
    } else {
      Bs[(t & 1) * 4 + i][t >> 1] = r[i];
    }
  }
}

template <bool kTA, bool kTB, bool kVec>
__global__ void __launch_bounds__(kThreads) sgemm_blocked_kernel(SgemmArgs p) {
  __shared__ __align__(16) float As[2][kBK][kBM + kPad];  // As[buf][k][m]: A's tile transposed
  __shared__ __align__(16) float Bs[2][kBK][kBN + kPad];  // Bs[buf][k][n]
  const int t = threadIdx.x, ty = t / 16, tx = t % 16;
  const int64_t m0 = int64_t(blockIdx.x) * kBM, n0 = int64_t(blockIdx.y) * kBN;
  const int64_t nk = (p.K + kBK - 1) / kBK;

  for (int64_t z = blockIdx.z; z < p.batch; z += gridDim.z) {
    const float* a = p.a + z * p.stride_a;
    const float* b = p.b + z * p.stride_b;
    float acc[8][8];
#pragma unroll
    for (int i = 0; i < 8; ++i)
#pragma unroll
      for (int j = 0; j < 8; ++j) acc[i][j] = 0.f;
    float ra[4], rb[4];
    if (nk > 0) {
      load_a<kTA, kVec>(a, p.lda, p.M, p.K, m0, 0, ra);
      load_b<kTB, kVec>(b, p.ldb, p.K, p.N, 0, n0, rb);
      store_a<kTA>(As[0], ra);
      store_b<kTB>(Bs[0], rb);
    }
    __syncthreads();
    for (int64_t kt = 0; kt < nk; ++kt) {
      const int cur = int(kt & 1);
      const bool more = kt + 1 < nk;
      if (more) {  // issue the next tile's global loads now; they land while we compute
        load_a<kTA, kVec>(a, p.lda, p.M, p.K, m0, (kt + 1) * kBK, ra);
        load_b<kTB, kVec>(b, p.ldb, p.K, p.N, (kt + 1) * kBK, n0, rb);
      }
#pragma unroll
      for (int k = 0; k < kBK; ++k) {
        const float4 a0 = *reinterpret_cast<const float4*>(&As[cur][k][ty * 4]);
        const float4 a1 = *reinterpret_cast<const float4*>(&As[cur][k][64 + ty * 4]);
        const float4 b0 = *reinterpret_cast<const float4*>(&Bs[cur][k][tx * 4]);
        const float4 b1 = *reinterpret_cast<const float4*>(&Bs[cur][k][64 + tx * 4]);
        const float av[8] = {a0.x, a0.y, a0.z, a0.w, a1.x, a1.y, a1.z, a1.w};
        const float bv[8] = {b0.x, b0.y, b0.z, b0.w, b1.x, b1.y, b1.z, b1.w};
#pragma unroll
        for (int i = 0; i < 8; ++i)
#pragma unroll
          for (int j = 0; j < 8; ++j) acc[i][j] = fmaf(av[i], bv[j], acc[i][j]);
      }
      if (more) {  // the other buffer was last read in iteration kt-1, which ended with a sync
        store_a<kTA>(As[cur ^ 1], ra);
        store_b<kTB>(Bs[cur ^ 1], rb);
      }
      __syncthreads();
    }
    float* c = p.c + z * p.stride_c;
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      const int64_t m = m0 + (i < 4 ? ty * 4 + i : 64 + ty * 4 + (i - 4));
      if (m >= p.M) continue;
#pragma unroll
      for (int j = 0; j < 8; ++j) {
        const int64_t n = n0 + (j < 4 ? tx * 4 + j : 64 + tx * 4 + (j - 4));
        if (n < p.N) c[m * p.ldc + n] = epilogue(acc[i][j], p.alpha, p.bias, n, p.gelu);
      }
    }
  }
}

// ---- epilogue pass and column sum -----------------------------------------------------------
__global__ void bias_gelu_kernel(float* c, int64_t rows, int64_t cols, const float* bias, bool gelu) {
  const int64_t total = rows * cols;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += int64_t(gridDim.x) * blockDim.x)
    c[i] = epilogue(c[i], 1.f, bias, i % cols, gelu);
}

constexpr int kSumThreads = 256;
constexpr int64_t kRowsPerChunk = 128;
constexpr int64_t kMaxChunks = 4096;

// partials[chunk][col] = sum of x[r][col] over the chunk's rows, in row order, in double.
__global__ void column_sum_partials_kernel(const float* x, int64_t rows, int64_t cols, int64_t ld,
                                           int64_t rows_per_chunk, double* partials) {
  const int64_t col = int64_t(blockIdx.x) * kSumThreads + threadIdx.x;
  if (col >= cols) return;
  const int64_t r0 = int64_t(blockIdx.y) * rows_per_chunk;
  const int64_t r1 = r0 + rows_per_chunk < rows ? r0 + rows_per_chunk : rows;
  double acc = 0.0;
  for (int64_t r = r0; r < r1; ++r) acc += double(x[r * ld + col]);
  partials[int64_t(blockIdx.y) * cols + col] = acc;
}

__global__ void column_sum_final_kernel(const double* partials, int64_t chunks, int64_t cols, float* out) {
  const int64_t col = int64_t(blockIdx.x) * kSumThreads + threadIdx.x;
  if (col >= cols) return;
  double acc = 0.0;
  for (int64_t ch = 0; ch < chunks; ++ch) acc += partials[ch * cols + col];
  out[col] = float(acc);
}

unsigned grid_z(int64_t batch) { return unsigned(std::min<int64_t>(batch, 65535)); }

// float4 loads are exact when each operand's contiguous length (K for A, N for B when not
// transposed; M for A, K for B when transposed), its ld and batch stride are multiples of 4 and
// its base pointer is 16-byte aligned (then every 4-run a thread loads starts aligned).
bool vec_loads_ok(const SgemmArgs& p) {
  const int64_t len_a = p.trans_a ? p.M : p.K, len_b = p.trans_b ? p.K : p.N;
  auto ok = [](const float* ptr, int64_t len, int64_t ld, int64_t stride) {
    return len % 4 == 0 && ld % 4 == 0 && stride % 4 == 0 && reinterpret_cast<uintptr_t>(ptr) % 16 == 0;
  };
  return ok(p.a, len_a, p.lda, p.stride_a) && ok(p.b, len_b, p.ldb, p.stride_b);
}

template <bool kVec>
void launch_blocked(const SgemmArgs& p, dim3 grid, cudaStream_t stream) {
  if (!p.trans_a && !p.trans_b) {
    sgemm_blocked_kernel<false, false, kVec><<<grid, kThreads, 0, stream>>>(p);
  } else if (!p.trans_a && p.trans_b) {
    sgemm_blocked_kernel<false, true, kVec><<<grid, kThreads, 0, stream>>>(p);
  } else if (p.trans_a && !p.trans_b) {
    sgemm_blocked_kernel<true, false, kVec><<<grid, kThreads, 0, stream>>>(p);
  } else {
    sgemm_blocked_kernel<true, true, kVec><<<grid, kThreads, 0, stream>>>(p);
  }
}

}  // namespace

void launch_sgemm(const SgemmArgs& p, SgemmKernel kernel, cudaStream_t stream) {
  if (p.M <= 0 || p.N <= 0 || p.batch <= 0) return;
  if (kernel == SgemmKernel::automatic) {
    // Fewer 128x128 tiles than about a third of an H100/H200's 132 SMs: the blocked kernel would
    // leave most SMs idle, and 16x16 tiles spread the (small) work wider. Otherwise blocked,
    // which is ~3x the simple kernel's FLOP rate per SM.
    const int64_t tiles = ((p.M + kBM - 1) / kBM) * ((p.N + kBN - 1) / kBN) * p.batch;
    kernel = tiles < 48 ? SgemmKernel::simple : SgemmKernel::blocked;
  }
  if (kernel == SgemmKernel::simple) {
    const int64_t gy = (p.N + kS - 1) / kS;
    if (gy > 65535 || (p.M + kS - 1) / kS > 0x7fffffff)
      throw std::invalid_argument("matmul: N=" + std::to_string(p.N) + " is too large for the simple cuda GEMM");
    const dim3 grid(unsigned((p.M + kS - 1) / kS), unsigned(gy), grid_z(p.batch));
    sgemm_simple_kernel<<<grid, dim3(kS, kS), 0, stream>>>(p);
    RV_CUDA_CHECK_LAUNCH("sgemm_simple_kernel");
    return;
  }
  const int64_t gy = (p.N + kBN - 1) / kBN;
  if (gy > 65535 || (p.M + kBM - 1) / kBM > 0x7fffffff)
    throw std::invalid_argument("matmul: N=" + std::to_string(p.N) + " is too large for the blocked cuda GEMM");
  const dim3 grid(unsigned((p.M + kBM - 1) / kBM), unsigned(gy), grid_z(p.batch));
  if (vec_loads_ok(p)) {
    launch_blocked<true>(p, grid, stream);
  } else {
    launch_blocked<false>(p, grid, stream);
  }
  RV_CUDA_CHECK_LAUNCH("sgemm_blocked_kernel");
}

void launch_bias_gelu(float* c, int64_t rows, int64_t cols, const float* bias, bool gelu, cudaStream_t stream) {
  const int64_t total = rows * cols;
  if (total == 0 || (!bias && !gelu)) return;
  const int64_t blocks = std::min<int64_t>((total + 255) / 256, 65535);
  bias_gelu_kernel<<<unsigned(blocks), 256, 0, stream>>>(c, rows, cols, bias, gelu);
  RV_CUDA_CHECK_LAUNCH("bias_gelu_kernel");
}

int64_t column_sum_chunks(int64_t rows) {
  const int64_t c = (rows + kRowsPerChunk - 1) / kRowsPerChunk;
  return std::max<int64_t>(1, std::min<int64_t>(c, kMaxChunks));
}

void launch_column_sum(const float* x, int64_t rows, int64_t cols, int64_t ld, float* out, double* partials,
                       cudaStream_t stream) {
  if (cols == 0) return;
  const int64_t chunks = column_sum_chunks(rows);
  const int64_t per_chunk = std::max<int64_t>(1, (rows + chunks - 1) / chunks);
  const unsigned gx = unsigned((cols + kSumThreads - 1) / kSumThreads);
  column_sum_partials_kernel<<<dim3(gx, unsigned(chunks)), kSumThreads, 0, stream>>>(x, rows, cols, ld, per_chunk,
                                                                                     partials);
  RV_CUDA_CHECK_LAUNCH("column_sum_partials_kernel");
  column_sum_final_kernel<<<gx, kSumThreads, 0, stream>>>(partials, chunks, cols, out);
  RV_CUDA_CHECK_LAUNCH("column_sum_final_kernel");
}

}  // namespace rv::cuda
