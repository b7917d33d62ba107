// elementwise_binary.cu: add / sub / mul / div with broadcasting.
//
// Two kernels: when a, b and z are all contiguous with the same shape, a flat grid-stride loop
// (consecutive threads touch consecutive addresses, so loads coalesce); otherwise each thread
// maps its output index to the operands' offsets (nd_index.cuh). Both are memory-bound; the
// 128-bit vectorised version of the flat loop comes with the next kernel issue.
#include "cuda/kernels/elementwise_binary.h"

#include "cuda/kernels/nd_index.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

struct AddOp { template <class T> __device__ T operator()(T a, T b) const { return a + b; } };
struct SubOp { template <class T> __device__ T operator()(T a, T b) const { return a - b; } };
struct MulOp { template <class T> __device__ T operator()(T a, T b) const { return a * b; } };
struct DivOp { template <class T> __device__ T operator()(T a, T b) const { return a / b; } };

constexpr int kThreads = 256;

template <class T, class Op>
__global__ void binary_flat_kernel(T* __restrict__ z, const T* __restrict__ a, const T* __restrict__ b, int64_t n,
                                   Op op) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    z[i] = op(a[i], b[i]);
}

template <class T, class Op>
__global__ void binary_strided_kernel(T* __restrict__ z, const T* __restrict__ a, const T* __restrict__ b, int64_t n,
                                      NdIndex<2> ix, Op op) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[2];
    ix.offsets(i, off);
    z[i] = op(a[off[0]], b[off[1]]);
  }
}

bool is_dense(const std::vector<int64_t>& shape, const std::vector<int64_t>& strides) {
  int64_t expect = 1;
  for (size_t d = shape.size(); d-- > 0;) {
    if (shape[d] == 1) continue;
    if (strides[d] != expect) return false;
    expect *= shape[d];
  }
  return true;
}

template <class T, class Op>
void launch_typed(T* z, const T* a, const std::vector<int64_t>& sa, const T* b, const std::vector<int64_t>& sb,
                  const std::vector<int64_t>& shape, cudaStream_t stream, Op op, const char* name) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  if (n == 0) return;
  const unsigned grid = grid_for(n, kThreads);
  if (is_dense(shape, sa) && is_dense(shape, sb)) {
    binary_flat_kernel<T, Op><<<grid, kThreads, 0, stream>>>(z, a, b, n, op);
    RV_CUDA_CHECK_LAUNCH(name);
    return;
  }
  const std::vector<int64_t>* strides[2] = {&sa, &sb};
  const NdIndex<2> ix = make_nd_index<2>(shape, strides, name);
  binary_strided_kernel<T, Op><<<grid, kThreads, 0, stream>>>(z, a, b, n, ix, op);
  RV_CUDA_CHECK_LAUNCH(name);
}

template <class T>
void launch_op(backend::BinaryOp op, void* z, const void* a, const std::vector<int64_t>& sa, const void* b,
               const std::vector<int64_t>& sb, const std::vector<int64_t>& shape, cudaStream_t s) {
  T* zt = static_cast<T*>(z);
  const T* at = static_cast<const T*>(a);
  const T* bt = static_cast<const T*>(b);
  switch (op) {
    case backend::BinaryOp::add: return launch_typed(zt, at, sa, bt, sb, shape, s, AddOp{}, "binary_kernel<add>");
    case backend::BinaryOp::sub: return launch_typed(zt, at, sa, bt, sb, shape, s, SubOp{}, "binary_kernel<sub>");
    case backend::BinaryOp::mul: return launch_typed(zt, at, sa, bt, sb, shape, s, MulOp{}, "binary_kernel<mul>");
    case backend::BinaryOp::div: return launch_typed(zt, at, sa, bt, sb, shape, s, DivOp{}, "binary_kernel<div>");
  }
}

}  // namespace

void launch_binary(backend::BinaryOp op, DType dtype, void* z, const void* a, const std::vector<int64_t>& a_strides,
                   const void* b, const std::vector<int64_t>& b_strides, const std::vector<int64_t>& shape,
                   cudaStream_t stream) {
  if (dtype == DType::f32) return launch_op<float>(op, z, a, a_strides, b, b_strides, shape, stream);
  if (dtype == DType::f64) return launch_op<double>(op, z, a, a_strides, b, b_strides, shape, stream);
  throw std::invalid_argument(std::string(backend::binary_op_name(op)) + ": launch_binary takes f32 or f64, got " +
                              dtype_name(dtype));
}

}  // namespace rv::cuda
