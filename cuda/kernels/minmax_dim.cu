// minmax_dim.cu: max / min / argmax / argmin along one dim, and the backward scatter.
//
// The order: a NaN beats everything (the first NaN wins, PyTorch's rule), then the strictly
// better value, then the smaller index. This is a total order on (value, index) pairs, so the
// best of a slice can be found by any split of the work and any combining order and is always
// the CPU's answer (the first index on ties, the first NaN): no dependence on the launch shape.
//
// Two kernels:
//   - row (the reduced dim has stride 1, the usual last-dim case, e.g. argmax over logits): one
//     warp per output; lane l scans elements l, l + 32, ... (consecutive lanes read consecutive
//     addresses: coalesced), keeping its best (value, index) in registers; then five xor-shuffle
//     steps combine the 32 candidates with the order above, every lane ending with the answer;
//     lane 0 stores it. 8 warps per 256-thread block, rows in a grid-stride loop.
//   - column (any other stride): one thread per output scanning its slice in order, exactly as
//     the CPU's loop. Neighbouring outputs are usually neighbours in memory (a reduced dim that
//     is not the last), so a warp's loads of step j coalesce.
// Both find an output's base offset with nd_index.cuh over the kept dims (any strides). bf16 is
// compared in f32 (exact) and stored back through float_io's from_float, as the CPU widens and
// narrows.
// The backward writes g[o] at its slice's chosen index into a zeroed gradient: one thread per
// output, element-size generic (only bits move); each target is written by exactly one thread.
#include "cuda/kernels/minmax_dim.h"

#include <stdexcept>
#include <string>
#include <type_traits>

#include "cuda/kernels/float_io.cuh"
#include "cuda/kernels/nd_index.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarpsPerBlock = kThreads / 32;

// Storage S -> compute C: float stays, bf16 bits widen to float, double stays.
template <class S> struct Compute { using type = float; };
template <> struct Compute<double> { using type = double; };

__device__ __forceinline__ float load_value(float v) { return v; }
__device__ __forceinline__ float load_value(uint16_t v) { return to_float(v); }
__device__ __forceinline__ double load_value(double v) { return v; }

template <class S, class C>
__device__ __forceinline__ S store_value(C v) {
  if constexpr (std::is_same_v<S, uint16_t>) return from_float<uint16_t>(v);
  else return v;
}

template <bool IsMax, class C>
__device__ __forceinline__ bool better(C a, C b) {
  if constexpr (IsMax) return a > b;
  else return a < b;
}

// True when candidate (v, i) comes before the current best (bv, bi) in the order above. A
// best index < 0 means "none yet".
template <bool IsMax, class C>
__device__ __forceinline__ bool takes(C v, int64_t i, C bv, int64_t bi) {
  if (i < 0) return false;
  if (bi < 0) return true;
  const bool vn = v != v, bn = bv != bv;
  if (vn && bn) return i < bi;
  if (vn || bn) return vn;
  if (better<IsMax>(v, bv)) return true;
  if (better<IsMax>(bv, v)) return false;
  return i < bi;
}

template <class S, bool IsMax>
__global__ void minmax_row_kernel(const S* __restrict__ x, int64_t rows, int64_t len, NdIndex<1> kept,
                                  S* __restrict__ values, int64_t* __restrict__ indices) {
  using C = typename Compute<S>::type;
  const int lane = threadIdx.x & 31;
  const int64_t warp = int64_t(blockIdx.x) * kWarpsPerBlock + (threadIdx.x >> 5);
  // The loop bound depends on the warp only, so all 32 lanes run the shuffles together.
  for (int64_t row = warp; row < rows; row += int64_t(gridDim.x) * kWarpsPerBlock) {
    int64_t base[1];
    kept.offsets(row, base);
    const S* p = x + base[0];
    C best = C(0);
    int64_t bi = -1;
    for (int64_t j = lane; j < len; j += 32) {
      const C v = load_value(p[j]);
      if (takes<IsMax>(v, j, best, bi)) {
        best = v;
        bi = j;
      }
    }
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
      const C ov = __shfl_xor_sync(0xffffffffu, best, o);
      const int64_t oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (takes<IsMax>(ov, oi, best, bi)) {
        best = ov;
        bi = oi;
      }
    }
    if (lane == 0) {
      if (values) values[row] = store_value<S>(best);
      indices[row] = bi;
    }
  }
}

template <class S, bool IsMax>
__global__ void minmax_column_kernel(const S* __restrict__ x, int64_t rows, int64_t len, int64_t stride,
                                     NdIndex<1> kept, S* __restrict__ values, int64_t* __restrict__ indices) {
  using C = typename Compute<S>::type;
  for (int64_t row = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; row < rows;
       row += int64_t(gridDim.x) * blockDim.x) {
    int64_t base[1];
    kept.offsets(row, base);
    const S* p = x + base[0];
    C best = load_value(p[0]);
    int64_t bi = 0;
    if (best == best) {
      for (int64_t j = 1; j < len; ++j) {
        const C v = load_value(p[j * stride]);
        if (v != v) {  // the first NaN wins and nothing can replace it
          best = v;
          bi = j;
          break;
        }
        if (better<IsMax>(v, best)) {
          best = v;
          bi = j;
        }
      }
    }
    if (values) values[row] = store_value<S>(best);
    indices[row] = bi;
  }
}

template <class S>
void launch_typed(const void* xv, const std::vector<int64_t>& shape, const std::vector<int64_t>& strides, int64_t dim,
                  bool is_max, void* vv, int64_t* indices, cudaStream_t stream) {
  const S* x = static_cast<const S*>(xv);
  S* values = static_cast<S*>(vv);
  std::vector<int64_t> kept_shape, kept_strides;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (int64_t(d) == dim) continue;
    kept_shape.push_back(shape[d]);
    kept_strides.push_back(strides[d]);
  }
  int64_t rows = 1;
  for (int64_t s : kept_shape) rows *= s;
  const int64_t len = shape[size_t(dim)], stride = strides[size_t(dim)];
  if (rows == 0) return;
  const std::vector<int64_t>* st[1] = {&kept_strides};
  const NdIndex<1> kept = make_nd_index<1>(kept_shape, st, is_max ? "max" : "min");
  // A warp per row pays when the row is contiguous and long enough to give the lanes work.
  if (stride == 1 && len >= 32) {
    const unsigned grid = grid_for(rows, kWarpsPerBlock);
    if (is_max) minmax_row_kernel<S, true><<<grid, kThreads, 0, stream>>>(x, rows, len, kept, values, indices);
    else minmax_row_kernel<S, false><<<grid, kThreads, 0, stream>>>(x, rows, len, kept, values, indices);
    RV_CUDA_CHECK_LAUNCH("minmax_row_kernel");
    return;
  }
  const unsigned grid = grid_for(rows, kThreads);
  if (is_max)
    minmax_column_kernel<S, true><<<grid, kThreads, 0, stream>>>(x, rows, len, stride, kept, values, indices);
  else
    minmax_column_kernel<S, false><<<grid, kThreads, 0, stream>>>(x, rows, len, stride, kept, values, indices);
  RV_CUDA_CHECK_LAUNCH("minmax_column_kernel");
}

template <class T>
__global__ void minmax_scatter_kernel(T* __restrict__ grad, const T* __restrict__ g, const int64_t* __restrict__ idx,
                                      int64_t n, int64_t len, int64_t inner) {
  for (int64_t o = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; o < n; o += int64_t(gridDim.x) * blockDim.x)
    grad[(o / inner * len + idx[o]) * inner + o % inner] = g[o];
}

template <class T>
void launch_scatter_typed(void* grad, const void* g, const int64_t* idx, int64_t n, int64_t len, int64_t inner,
                          cudaStream_t stream) {
  minmax_scatter_kernel<T><<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<T*>(grad),
                                                                           static_cast<const T*>(g), idx, n, len,
                                                                           inner);
  RV_CUDA_CHECK_LAUNCH("minmax_scatter_kernel");
}

}  // namespace

void launch_minmax_dim(DType dtype, const void* x, const std::vector<int64_t>& shape,
                       const std::vector<int64_t>& strides, int64_t dim, bool is_max, void* values, int64_t* indices,
                       cudaStream_t stream) {
  if (dtype == DType::f32) return launch_typed<float>(x, shape, strides, dim, is_max, values, indices, stream);
  if (dtype == DType::f64) return launch_typed<double>(x, shape, strides, dim, is_max, values, indices, stream);
  if (dtype == DType::bf16) return launch_typed<uint16_t>(x, shape, strides, dim, is_max, values, indices, stream);
  throw std::invalid_argument(std::string(is_max ? "max" : "min") + ": launch_minmax_dim takes f32, f64 or bf16, got " +
                              dtype_name(dtype));
}

void launch_minmax_scatter(size_t itemsize, void* grad, const void* g, const int64_t* indices, int64_t outer,
                           int64_t len, int64_t inner, cudaStream_t stream) {
  const int64_t n = outer * inner;
  if (n == 0) return;
  switch (itemsize) {
    case 2: return launch_scatter_typed<uint16_t>(grad, g, indices, n, len, inner, stream);
    case 4: return launch_scatter_typed<uint32_t>(grad, g, indices, n, len, inner, stream);
    case 8: return launch_scatter_typed<uint64_t>(grad, g, indices, n, len, inner, stream);
  }
  throw std::invalid_argument("max backward: element size " + std::to_string(itemsize) + " is not 2, 4 or 8");
}

}  // namespace rv::cuda
