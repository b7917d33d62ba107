// compare_where.cu: comparisons (-> bool) and the select cond ? a : b, with broadcasting.
//
// Both are one thread per output element in a grid-stride loop over the contiguous output (so
// the stores coalesce), each thread mapping its row-major index to the inputs' offsets with
// nd_index.cuh; a broadcast operand (stride 0), e.g. the scalar of x < 0.5 or an attention mask
// broadcast over heads, is then read from cache. Memory-bound: no arithmetic to speak of.
//
// The comparison runs in the dtype the op front-end chose (f32, f64 or i64, exactly as the
// CPU's compare_dtype), with the C++ operators, so NaN compares false except for ne, as on the
// CPU. The select never looks at the values, only at their bits: it is instantiated per
// element size (1, 2, 4, 8 bytes) rather than per dtype, which covers every dtype (where on
// bf16 or i64 included) with four kernels.
#include "cuda/kernels/compare_where.h"

#include <stdexcept>
#include <string>

#include "cuda/kernels/nd_index.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

using CompareOp = backend::DeviceBackend::CompareOp;

constexpr int kThreads = 256;

template <class T, CompareOp Op>
__device__ __forceinline__ bool compare_values(T p, T q) {
  if constexpr (Op == CompareOp::eq) return p == q;
  if constexpr (Op == CompareOp::ne) return p != q;
  if constexpr (Op == CompareOp::lt) return p < q;
  if constexpr (Op == CompareOp::le) return p <= q;
  if constexpr (Op == CompareOp::gt) return p > q;
  if constexpr (Op == CompareOp::ge) return p >= q;
  return false;
}

template <class T, CompareOp Op>
__global__ void compare_kernel(bool* __restrict__ out, const T* __restrict__ a, const T* __restrict__ b, int64_t n,
                               NdIndex<2> ix) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2];
    ix.offsets(i, off);
    out[i] = compare_values<T, Op>(a[off[0]], b[off[1]]);
  }
}

template <class T, CompareOp Op>
void launch_compare_typed(bool* out, const void* a, const void* b, int64_t n, const NdIndex<2>& ix,
                          cudaStream_t stream) {
  compare_kernel<T, Op><<<grid_for(n, kThreads), kThreads, 0, stream>>>(out, static_cast<const T*>(a),
                                                                         static_cast<const T*>(b), n, ix);
  RV_CUDA_CHECK_LAUNCH("compare_kernel");
}

template <class T>
void launch_compare_op(CompareOp op, bool* out, const void* a, const void* b, int64_t n, const NdIndex<2>& ix,
                       cudaStream_t s) {
  switch (op) {
    case CompareOp::eq: return launch_compare_typed<T, CompareOp::eq>(out, a, b, n, ix, s);
    case CompareOp::ne: return launch_compare_typed<T, CompareOp::ne>(out, a, b, n, ix, s);
    case CompareOp::lt: return launch_compare_typed<T, CompareOp::lt>(out, a, b, n, ix, s);
    case CompareOp::le: return launch_compare_typed<T, CompareOp::le>(out, a, b, n, ix, s);
    case CompareOp::gt: return launch_compare_typed<T, CompareOp::gt>(out, a, b, n, ix, s);
    case CompareOp::ge: return launch_compare_typed<T, CompareOp::ge>(out, a, b, n, ix, s);
  }
}

// T: an unsigned integer of the element size; only bits move.
template <class T>
__global__ void where_kernel(T* __restrict__ out, const bool* __restrict__ cond, const T* __restrict__ a,
                             const T* __restrict__ b, int64_t n, NdIndex<3> ix) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[3];
    ix.offsets(i, off);
    out[i] = cond[off[0]] ? a[off[1]] : b[off[2]];
  }
}

template <class T>
void launch_where_typed(void* out, const bool* cond, const void* a, const void* b, int64_t n, const NdIndex<3>& ix,
                        cudaStream_t stream) {
  where_kernel<T><<<grid_for(n, kThreads), kThreads, 0, stream>>>(static_cast<T*>(out), cond,
                                                                   static_cast<const T*>(a),
                                                                   static_cast<const T*>(b), n, ix);
  RV_CUDA_CHECK_LAUNCH("where_kernel");
}

int64_t numel_of(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

}  // namespace

void launch_compare(CompareOp op, DType dtype, bool* out, const void* a, const std::vector<int64_t>& a_strides,
                    const void* b, const std::vector<int64_t>& b_strides, const std::vector<int64_t>& shape,
                    cudaStream_t stream) {
  const int64_t n = numel_of(shape);
  if (n == 0) return;
  const std::vector<int64_t>* strides[2] = {&a_strides, &b_strides};
  const char* name = backend::DeviceBackend::compare_op_name(op);
  const NdIndex<2> ix = make_nd_index<2>(shape, strides, name);
  if (dtype == DType::f32) return launch_compare_op<float>(op, out, a, b, n, ix, stream);
  if (dtype == DType::f64) return launch_compare_op<double>(op, out, a, b, n, ix, stream);
  if (dtype == DType::i64) return launch_compare_op<int64_t>(op, out, a, b, n, ix, stream);
  throw std::invalid_argument(std::string(name) + ": launch_compare takes f32, f64 or i64, got " +
                              dtype_name(dtype));
}

void launch_where(size_t itemsize, void* out, const bool* cond, const std::vector<int64_t>& cond_strides,
                  const void* a, const std::vector<int64_t>& a_strides, const void* b,
                  const std::vector<int64_t>& b_strides, const std::vector<int64_t>& shape, cudaStream_t stream) {
  const int64_t n = numel_of(shape);
  if (n == 0) return;
  const std::vector<int64_t>* strides[3] = {&cond_strides, &a_strides, &b_strides};
  const NdIndex<3> ix = make_nd_index<3>(shape, strides, "where");
  switch (itemsize) {
    case 1: return launch_where_typed<uint8_t>(out, cond, a, b, n, ix, stream);
    case 2: return launch_where_typed<uint16_t>(out, cond, a, b, n, ix, stream);
    case 4: return launch_where_typed<uint32_t>(out, cond, a, b, n, ix, stream);
    case 8: return launch_where_typed<uint64_t>(out, cond, a, b, n, ix, stream);
  }
  throw std::invalid_argument("where: element size " + std::to_string(itemsize) + " is not 1, 2, 4 or 8");
}

}  // namespace rv::cuda
