// activation.cu: gelu (exact erf form and tanh form), relu, silu and sigmoid, forward and backward.
//
// Memory-bound maps, one grid-stride kernel per (op, dtype, direction): when every pointer is
// 16-byte aligned each thread moves 16 bytes per load / store (4 f32 or 8 bf16: ld.global.v4),
// a quarter of the memory instructions of scalar code, and the last n % V elements are done one
// by one by the same kernel; otherwise a plain scalar grid-stride loop. Consecutive threads take
// consecutive vectors, so every warp access is 512 contiguous bytes.
//
// The math is f32 with CUDA's erfcf / expf (a few ulp), in the CPU's forms (engine/ops/
// activation.cpp):
//   gelu       x Phi(x), Phi(x) = erfc(-x / sqrt 2) / 2 (erfc keeps full relative precision in
//              the lower tail; the CPU's f32 rational is good to 2.5e-7 absolute)
//   gelu_tanh  x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)   (= 0.5 x (1 + tanh u))
//   relu       x <= 0 ? 0 : x  (NaN passes through);  relu' = [y > 0]
//   silu       x sigmoid(x);   silu' = s (1 + x (1 - s))
//   sigmoid    through e = exp(-|x|) (never overflows): 1 / (1 + e) for x >= 0, e / (1 + e) below;
//              sigmoid' = y (1 - y)
// Backward reads what the CPU's autograd saves, `saved`: x for gelu, gelu_tanh and silu, the output
// y for relu and sigmoid (their derivatives are cheapest from y; a bf16 y then gives the CPU's
// bf16 gradients), and dy, and writes dx = dy f'(.) in one pass.
#include "cuda/kernels/activation.h"

#include <stdexcept>
#include <string>

#include "cuda/kernels/float_io.cuh"
#include "cuda/kernels/nd_index.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

constexpr int kThreads = 256;
constexpr float kSqrtHalf = 0.70710678118654752f;    // 1 / sqrt(2)
constexpr float kInvSqrt2Pi = 0.39894228040143268f;  // 1 / sqrt(2 pi)
constexpr float kGeluBeta = 0.79788456080286536f;    // sqrt(2 / pi)
constexpr float kGeluKappa = 0.044715f;

__device__ __forceinline__ float sigmoid_f(float x) {
  const float e = expf(-fabsf(x));
  const float r = 1.0f / (1.0f + e);
  return x >= 0.0f ? r : e * r;
}

struct Gelu {
  __device__ float fwd(float x) const { return x * (0.5f * erfcf(-x * kSqrtHalf)); }
  // Phi(x) + x phi(x)
  __device__ float grad(float x, float g) const {
    const float cdf = 0.5f * erfcf(-x * kSqrtHalf);
    const float pdf = kInvSqrt2Pi * expf(-0.5f * (x * x));
    return g * (cdf + x * pdf);
  }
};

struct GeluTanh {
  __device__ float fwd(float x) const {
    const float u = kGeluBeta * (x + kGeluKappa * x * x * x);
    return x * sigmoid_f(u + u);
  }
  // With s = sigmoid(2u): s + 2 x s (1 - s) beta (1 + 3 kappa x^2), as the CPU.
  __device__ float grad(float x, float g) const {
    const float x2 = x * x;
    const float u = kGeluBeta * (x + kGeluKappa * x2 * x);
    const float s = sigmoid_f(u + u);
    return g * (s + 2.0f * x * s * (1.0f - s) * kGeluBeta * (1.0f + 3.0f * kGeluKappa * x2));
  }
};

struct Relu {  // grad() takes y
  __device__ float fwd(float x) const { return x <= 0.0f ? 0.0f : x; }
  __device__ float grad(float y, float g) const { return y > 0.0f ? g : 0.0f; }
};

struct Silu {
  __device__ float fwd(float x) const { return x * sigmoid_f(x); }
  __device__ float grad(float x, float g) const {
    const float s = sigmoid_f(x);
    return g * s * (1.0f + x * (1.0f - s));
  }
};

struct Sigmoid {  // grad() takes y
  __device__ float fwd(float x) const { return sigmoid_f(x); }
  __device__ float grad(float y, float g) const { return g * y * (1.0f - y); }
};

// ---- kernels -----------------------------------------------------------------------------------
// (In the backward kernels `x` is the saved tensor: x, or y for relu and sigmoid.)

template <class T, class Op>
__global__ void __launch_bounds__(kThreads) act_forward_vec(const T* __restrict__ x, T* __restrict__ y, int64_t n,
                                                            Op op) {
  constexpr int V = int(16 / sizeof(T));
  const int64_t nvec = n / V;
  const int64_t stride = int64_t(gridDim.x) * kThreads;
  const int64_t tid = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  for (int64_t q = tid; q < nvec; q += stride) {
    float v[V];
    load_floats<T, V>(x + q * V, v);
#pragma unroll
    for (int i = 0; i < V; ++i) v[i] = op.fwd(v[i]);
    store_floats<T, V>(y + q * V, v);
  }
  for (int64_t i = nvec * V + tid; i < n; i += stride) y[i] = from_float<T>(op.fwd(to_float(x[i])));
}

template <class T, class Op>
__global__ void __launch_bounds__(kThreads) act_forward_scalar(const T* __restrict__ x, T* __restrict__ y, int64_t n,
                                                               Op op) {
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += int64_t(gridDim.x) * kThreads)
    y[i] = from_float<T>(op.fwd(to_float(x[i])));
}

template <class T, class Op>
__global__ void __launch_bounds__(kThreads) act_backward_vec(const T* __restrict__ x, const T* __restrict__ dy,
                                                             T* __restrict__ dx, int64_t n, Op op) {
  constexpr int V = int(16 / sizeof(T));
  const int64_t nvec = n / V;
  const int64_t stride = int64_t(gridDim.x) * kThreads;
  const int64_t tid = int64_t(blockIdx.x) * kThreads + threadIdx.x;
  for (int64_t q = tid; q < nvec; q += stride) {
    float v[V], g[V];
    load_floats<T, V>(x + q * V, v);
    load_floats<T, V>(dy + q * V, g);
#pragma unroll
    for (int i = 0; i < V; ++i) v[i] = op.grad(v[i], g[i]);
    store_floats<T, V>(dx + q * V, v);
  }
  for (int64_t i = nvec * V + tid; i < n; i += stride)
    dx[i] = from_float<T>(op.grad(to_float(x[i]), to_float(dy[i])));
}

template <class T, class Op>
__global__ void __launch_bounds__(kThreads) act_backward_scalar(const T* __restrict__ x, const T* __restrict__ dy,
                                                                T* __restrict__ dx, int64_t n, Op op) {
  for (int64_t i = int64_t(blockIdx.x) * kThreads + threadIdx.x; i < n; i += int64_t(gridDim.x) * kThreads)
    dx[i] = from_float<T>(op.grad(to_float(x[i]), to_float(dy[i])));
}

// ---- launch ------------------------------------------------------------------------------------

bool aligned16(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 15u) == 0; }

template <class T, class Op>
void forward_typed(const void* xv, void* yv, int64_t n, cudaStream_t s, Op op) {
  constexpr int V = int(16 / sizeof(T));
  const T* x = static_cast<const T*>(xv);
  T* y = static_cast<T*>(yv);
  if (aligned16(x) && aligned16(y)) {
    // Vectors, plus the n % V tail (at least one thread per tail element).
    act_forward_vec<T, Op><<<grid_for(n / V + V, kThreads), kThreads, 0, s>>>(x, y, n, op);
    RV_CUDA_CHECK_LAUNCH("act_forward_vec");
  } else {
    act_forward_scalar<T, Op><<<grid_for(n, kThreads), kThreads, 0, s>>>(x, y, n, op);
    RV_CUDA_CHECK_LAUNCH("act_forward_scalar");
  }
}

template <class T, class Op>
void backward_typed(const void* xv, const void* gv, void* dxv, int64_t n, cudaStream_t s, Op op) {
  constexpr int V = int(16 / sizeof(T));
  const T* x = static_cast<const T*>(xv);
  const T* g = static_cast<const T*>(gv);
  T* dx = static_cast<T*>(dxv);
  if (aligned16(x) && aligned16(g) && aligned16(dx)) {
    act_backward_vec<T, Op><<<grid_for(n / V + V, kThreads), kThreads, 0, s>>>(x, g, dx, n, op);
    RV_CUDA_CHECK_LAUNCH("act_backward_vec");
  } else {
    act_backward_scalar<T, Op><<<grid_for(n, kThreads), kThreads, 0, s>>>(x, g, dx, n, op);
    RV_CUDA_CHECK_LAUNCH("act_backward_scalar");
  }
}

// Calls f(op) with the functor of `kind`.
template <class F>
void with_op(ActivationKind kind, F&& f) {
  switch (kind) {
    case ActivationKind::gelu: return f(Gelu{});
    case ActivationKind::gelu_tanh: return f(GeluTanh{});
    case ActivationKind::relu: return f(Relu{});
    case ActivationKind::silu: return f(Silu{});
    case ActivationKind::sigmoid: return f(Sigmoid{});
  }
  throw std::invalid_argument("activation: unknown kind");
}

void check_dtype(DType dtype, const char* what) {
  if (dtype != DType::f32 && dtype != DType::bf16)
    throw std::invalid_argument(std::string(what) + ": launcher takes f32 or bf16, got " + dtype_name(dtype));
}

}  // namespace

void launch_activation_forward(ActivationKind kind, DType dtype, const void* x, void* y, int64_t n,
                               cudaStream_t stream) {
  check_dtype(dtype, "activation");
  if (n <= 0) return;
  with_op(kind, [&](auto op) {
    if (dtype == DType::f32)
      forward_typed<float>(x, y, n, stream, op);
    else
      forward_typed<uint16_t>(x, y, n, stream, op);
  });
}

void launch_activation_backward(ActivationKind kind, DType dtype, const void* saved, const void* dy, void* dx,
                                int64_t n, cudaStream_t stream) {
  check_dtype(dtype, "activation backward");
  if (n <= 0) return;
  with_op(kind, [&](auto op) {
    if (dtype == DType::f32)
      backward_typed<float>(saved, dy, dx, n, stream, op);
    else
      backward_typed<uint16_t>(saved, dy, dx, n, stream, op);
  });
}

}  // namespace rv::cuda
