// dropout.cu: dropout and drop_path with the keep mask generated on the device.
//
// The CPU's mask is a pure function of (seed, stream, word index), so the device computes the
// very same words: Philox 4x32-10 below is engine/rng.cpp's philox4x32_10 line for line (the
// 32x32 -> 64-bit products are __umulhi and a plain multiply), and the keep tests are the CPU's:
//   dropout  (group 1): element i uses word offset + i and is kept iff
//                       word_to_uniform(word) < keep_threshold(keep), compared in f32;
//   drop_path (group g): sample d = i / g uses word offset + d and is kept iff
//                       double(word_to_uniform(word)) < keep.
// One Philox block yields four consecutive words, so for dropout each thread handles the (up to)
// four elements of one block: block b covers words 4b .. 4b+3, i.e. elements 4b - offset ..
// 4b + 3 - offset (an offset that is not a multiple of 4 just clips the first and last block).
// Consecutive threads take consecutive blocks, so a warp reads and writes 128 consecutive
// elements. drop_path needs one word per sample only, but each thread simply recomputes its
// element's sample word (ten rounds of integer math per element): obviously right, and with
// one 4-byte load and store per element it is close to the bandwidth limit; if a profile ever
// shows it, a block per sample could draw the word once and broadcast it.
// bf16: loaded to f32, scaled in f32, rounded once (float_io), as the CPU widens and narrows.
#include "cuda/kernels/dropout.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "cuda/kernels/float_io.cuh"
#include "cuda/kernels/nd_index.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

constexpr int kThreads = 256;

struct Words { uint32_t w[4]; };

// The block of four words at counter (block, stream) under key seed: engine/rng.cpp's rounds.
__device__ __forceinline__ Words philox_block(uint64_t block, uint64_t stream, uint64_t seed) {
  constexpr uint32_t M0 = 0xD2511F53u, M1 = 0xCD9E8D57u, W0 = 0x9E3779B9u, W1 = 0xBB67AE85u;
  uint32_t c0 = uint32_t(block), c1 = uint32_t(block >> 32), c2 = uint32_t(stream), c3 = uint32_t(stream >> 32);
  uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
#pragma unroll
  for (int round = 0; round < 10; ++round) {
    const uint32_t hi0 = __umulhi(M0, c0), lo0 = M0 * c0;
    const uint32_t hi1 = __umulhi(M1, c2), lo1 = M1 * c2;
    const uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
    c0 = n0, c1 = lo1, c2 = n2, c3 = lo0;
    k0 += W0;
    k1 += W1;
  }
  return Words{{c0, c1, c2, c3}};
}

__device__ __forceinline__ float word_to_uniform(uint32_t w) { return float(w >> 8) * (1.0f / 16777216.0f); }

// C: the math type (float for f32 and bf16, double for f64); S: storage (float, double, bf16 bits).
template <class S> struct Math { using type = float; };
template <> struct Math<double> { using type = double; };

template <class S>
__device__ __forceinline__ typename Math<S>::type load(const S* p, int64_t i) {
  if constexpr (std::is_same_v<S, uint16_t>) return to_float(p[i]);
  else return p[i];
}
template <class S, class C>
__device__ __forceinline__ void store(S* p, int64_t i, C v) {
  if constexpr (std::is_same_v<S, uint16_t>) p[i] = from_float<uint16_t>(v);
  else p[i] = v;
}

template <class S>
__global__ void dropout_kernel(S* __restrict__ y, const S* __restrict__ x, int64_t n, uint64_t seed, uint64_t stream,
                               uint64_t offset, float threshold, typename Math<S>::type scale, int64_t blocks) {
  using C = typename Math<S>::type;
  const uint64_t first_block = offset >> 2;
  for (int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; t < blocks; t += int64_t(gridDim.x) * blockDim.x) {
    const uint64_t block = first_block + uint64_t(t);
    const Words w = philox_block(block, stream, seed);
#pragma unroll
    for (int k = 0; k < 4; ++k) {
      // element index of word 4 block + k; outside [0, n) for the clipped ends
      const int64_t i = int64_t(block * 4 + uint64_t(k) - offset);
      if (i < 0 || i >= n) continue;
      const C v = load(x, i) * scale;  // the CPU's x * scale, then the select
      store(y, i, word_to_uniform(w.w[k]) < threshold ? v : C(0));
    }
  }
}

template <class S>
__global__ void drop_path_kernel(S* __restrict__ y, const S* __restrict__ x, int64_t n, uint64_t seed,
                                 uint64_t stream, uint64_t offset, double keep, typename Math<S>::type scale,
                                 int64_t group) {
  using C = typename Math<S>::type;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const uint64_t word = offset + uint64_t(i / group);
    const Words w = philox_block(word >> 2, stream, seed);
    // a select rather than w.w[word & 3]: a run-time index would put w in local memory
    const uint32_t k = uint32_t(word & 3);
    const uint32_t wk = k == 0 ? w.w[0] : (k == 1 ? w.w[1] : (k == 2 ? w.w[2] : w.w[3]));
    const bool kept = double(word_to_uniform(wk)) < keep;
    store(y, i, kept ? load(x, i) * scale : C(0));
  }
}

template <class S>
void launch_typed(void* yv, const void* xv, int64_t n, const DropoutSpec& m, cudaStream_t stream) {
  using C = typename Math<S>::type;
  S* y = static_cast<S*>(yv);
  const S* x = static_cast<const S*>(xv);
  const C scale = m.keep > 0 ? C(1.0 / m.keep) : C(0);  // the CPU's T(1.0 / keep)
  if (m.group == 1) {
    // The CPU's keep_threshold: ceil(keep 2^24) 2^-24, exact in float.
    const float threshold = float(std::ceil(m.keep * 16777216.0) / 16777216.0);
    // Philox blocks touching words offset .. offset + n - 1.
    const int64_t blocks = int64_t(((m.offset + uint64_t(n) - 1) >> 2) - (m.offset >> 2) + 1);
    dropout_kernel<S><<<grid_for(blocks, kThreads), kThreads, 0, stream>>>(y, x, n, m.seed, m.stream, m.offset,
                                                                            threshold, scale, blocks);
    RV_CUDA_CHECK_LAUNCH("dropout_kernel");
    return;
  }
  drop_path_kernel<S><<<grid_for(n, kThreads), kThreads, 0, stream>>>(y, x, n, m.seed, m.stream, m.offset, m.keep,
                                                                       scale, m.group);
  RV_CUDA_CHECK_LAUNCH("drop_path_kernel");
}

}  // namespace

void launch_dropout(DType dtype, void* y, const void* x, int64_t n, const DropoutSpec& spec, cudaStream_t stream) {
  if (n == 0) return;
  if (spec.group < 1) throw std::invalid_argument("dropout: group must be >= 1");
  if (dtype == DType::f32) return launch_typed<float>(y, x, n, spec, stream);
  if (dtype == DType::f64) return launch_typed<double>(y, x, n, spec, stream);
  if (dtype == DType::bf16) return launch_typed<uint16_t>(y, x, n, spec, stream);
  throw std::invalid_argument(std::string("dropout: launch_dropout takes f32, f64 or bf16, got ") + dtype_name(dtype));
}

}  // namespace rv::cuda
