// convert.cu: dtype conversion, dst[i] = cast<D>(src[i]) for every pair of the eight dtypes.
//
// Two kernels per (D, S) pair, one thread per element in a grid-stride loop:
//   - flat: dst and src both dense and in the same order (the common x.to(bf16) of a
//     contiguous tensor): element i at i on both sides, so loads and stores coalesce;
//   - strided: any strides / broadcast source; each thread maps its row-major index to both
//     offsets with nd_index.cuh (size-1 dims dropped, contiguous dims merged on the host).
// Pure bandwidth: per element it reads sizeof(S) and writes sizeof(D) bytes. The per-element
// conversion (convert_cast.cuh) follows the CPU's scalar_cast rule for rule, so results are
// bit for bit the CPU's. 64 type pairs are instantiated: the dispatch is two nested switches.
#include "cuda/kernels/convert.h"

#include <stdexcept>
#include <string>

#include "cuda/kernels/convert_cast.cuh"
#include "cuda/kernels/nd_index.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

constexpr int kThreads = 256;

template <class D, class S>
__global__ void convert_flat_kernel(D* __restrict__ dst, const S* __restrict__ src, int64_t n) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    dst[i] = cast<D>(src[i]);
}

template <class D, class S>
__global__ void convert_strided_kernel(D* __restrict__ dst, const S* __restrict__ src, int64_t n, NdIndex<2> ix) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2];
    ix.offsets(i, off);
    dst[off[0]] = cast<D>(src[off[1]]);
  }
}

// True when `strides` are the row-major contiguous strides of `shape` (size-1 dims ignored).
bool is_dense(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  int64_t expect = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] == 1) continue;
    if (strides[d] != expect) return false;
    expect *= shape[d];
  }
  return true;
}

template <class D, class S>
void launch_pair(void* dst, const std::vector<int64_t>& ds, const void* src, const std::vector<int64_t>& ss,
                 const std::vector<int64_t>& shape, cudaStream_t stream) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  if (n == 0) return;
  D* d = static_cast<D*>(dst);
  const S* s = static_cast<const S*>(src);
  const unsigned grid = grid_for(n, kThreads);
  if (is_dense(shape, ds) && is_dense(shape, ss)) {
    convert_flat_kernel<D, S><<<grid, kThreads, 0, stream>>>(d, s, n);
    RV_CUDA_CHECK_LAUNCH("convert_flat_kernel");
    return;
  }
  const std::vector<int64_t>* strides[2] = {&ds, &ss};
  const NdIndex<2> ix = make_nd_index<2>(shape, strides, "to(dtype)");
  convert_strided_kernel<D, S><<<grid, kThreads, 0, stream>>>(d, s, n, ix);
  RV_CUDA_CHECK_LAUNCH("convert_strided_kernel");
}

// The source dtype's switch for a fixed destination type D.
template <class D>
void launch_to(DType src_dtype, void* dst, const std::vector<int64_t>& ds, const void* src,
               const std::vector<int64_t>& ss, const std::vector<int64_t>& shape, cudaStream_t stream) {
  switch (src_dtype) {
    case DType::f32: return launch_pair<D, float>(dst, ds, src, ss, shape, stream);
    case DType::f64: return launch_pair<D, double>(dst, ds, src, ss, shape, stream);
    case DType::bf16: return launch_pair<D, Bf16>(dst, ds, src, ss, shape, stream);
    case DType::f16: return launch_pair<D, F16>(dst, ds, src, ss, shape, stream);
    case DType::i32: return launch_pair<D, int32_t>(dst, ds, src, ss, shape, stream);
    case DType::i64: return launch_pair<D, int64_t>(dst, ds, src, ss, shape, stream);
    case DType::u8: return launch_pair<D, uint8_t>(dst, ds, src, ss, shape, stream);
    case DType::boolean: return launch_pair<D, bool>(dst, ds, src, ss, shape, stream);
  }
  throw std::invalid_argument("to(dtype): unknown source dtype");
}

}  // namespace

void launch_convert(DType dst_dtype, void* dst, const std::vector<int64_t>& dst_strides, DType src_dtype,
                    const void* src, const std::vector<int64_t>& src_strides, const std::vector<int64_t>& shape,
                    cudaStream_t stream) {
  const auto& ds = dst_strides;
  const auto& ss = src_strides;
  switch (dst_dtype) {
    case DType::f32: return launch_to<float>(src_dtype, dst, ds, src, ss, shape, stream);
    case DType::f64: return launch_to<double>(src_dtype, dst, ds, src, ss, shape, stream);
    case DType::bf16: return launch_to<Bf16>(src_dtype, dst, ds, src, ss, shape, stream);
    case DType::f16: return launch_to<F16>(src_dtype, dst, ds, src, ss, shape, stream);
    case DType::i32: return launch_to<int32_t>(src_dtype, dst, ds, src, ss, shape, stream);
    case DType::i64: return launch_to<int64_t>(src_dtype, dst, ds, src, ss, shape, stream);
    case DType::u8: return launch_to<uint8_t>(src_dtype, dst, ds, src, ss, shape, stream);
    case DType::boolean: return launch_to<bool>(src_dtype, dst, ds, src, ss, shape, stream);
  }
  throw std::invalid_argument("to(dtype): unknown destination dtype");
}

}  // namespace rv::cuda
