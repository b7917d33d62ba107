// elementwise_unary.cu: unary and tensor-scalar ops (neg, exp, log, sqrt, rsqrt, abs, tanh,
// x + a, x * a, a - x, a / x, x ^ a, clamp) and the fused gradient maps of the math ops.
//
// Mapping: one thread per element in a grid-stride loop. Contiguous f32 input and output take
// a 128-bit path (each thread loads and stores a float4: a quarter of the memory instructions)
// when both pointers are 16-byte aligned, then a scalar tail; any other layout maps each output
// index to the input's offset (nd_index.cuh). The op is a template parameter, so each kernel
// instance is a straight line of math with no per-element switch. bf16 loads to f32, computes
// and rounds once on store (as the CPU's map_unary does).
//
// Results match the CPU's formulas operation for operation: the arithmetic ones (neg, +, *, /,
// sqrt, abs, clamp, the gradient maps) use rn:: intrinsics that nvcc never fuses, so they agree
// bit for bit; exp, log, tanh and pow come from CUDA's libdevice (within 2 ulp of the exact
// value, as glibc's are), so they agree to a few ulp.
#include "cuda/kernels/elementwise_unary.h"

#include <cuda_bf16.h>

#include <stdexcept>
#include <type_traits>
#include <string>

#include "cuda/kernels/exact_math.cuh"
#include "cuda/kernels/nd_index.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

constexpr int kThreads = 256;

// pow's special exponents, decided on the host in double exactly as the CPU decides them
// (e == 2.0: x * x; e == 0.0: a zero gradient) and passed to the kernels in the unused `b`.
constexpr int kPowGeneral = 0, kPowSquare = 1, kPowZero = 2;
double pow_kind(double e) { return e == 2.0 ? kPowSquare : (e == 0.0 ? kPowZero : kPowGeneral); }

__device__ __forceinline__ float f_exp(float v) { return expf(v); }
__device__ __forceinline__ double f_exp(double v) { return ::exp(v); }
__device__ __forceinline__ float f_log(float v) { return logf(v); }
__device__ __forceinline__ double f_log(double v) { return ::log(v); }
__device__ __forceinline__ float f_tanh(float v) { return tanhf(v); }
__device__ __forceinline__ double f_tanh(double v) { return ::tanh(v); }
__device__ __forceinline__ float f_pow(float v, float e) { return powf(v, e); }
__device__ __forceinline__ double f_pow(double v, double e) { return ::pow(v, e); }
__device__ __forceinline__ float f_abs(float v) { return fabsf(v); }
__device__ __forceinline__ double f_abs(double v) { return ::fabs(v); }

// The forward formula of op OP in compute type C (engine/ops/math.cpp, elementwise.cpp).
// a, b: the scalar arguments already rounded to C, as the CPU rounds them.
template <UnaryOp OP, class C>
__device__ __forceinline__ C forward(C v, C a, C b) {
  if constexpr (OP == UnaryOp::neg) return -v;
  if constexpr (OP == UnaryOp::exp) return f_exp(v);
  if constexpr (OP == UnaryOp::log) return f_log(v);
  if constexpr (OP == UnaryOp::sqrt) return rn::sqrt(v);
  if constexpr (OP == UnaryOp::rsqrt) return rn::div(C(1), rn::sqrt(v));  // not rsqrtf: that one is approximate
  if constexpr (OP == UnaryOp::abs) return f_abs(v);
  if constexpr (OP == UnaryOp::tanh) return f_tanh(v);
  if constexpr (OP == UnaryOp::add_scalar) return rn::add(v, a);
  if constexpr (OP == UnaryOp::mul_scalar) return rn::mul(v, a);
  if constexpr (OP == UnaryOp::rsub_scalar) return rn::sub(a, v);
  if constexpr (OP == UnaryOp::rdiv_scalar) return rn::div(a, v);
  if constexpr (OP == UnaryOp::pow_scalar) return b != C(0) ? rn::mul(v, v) : f_pow(v, a);  // b: kPowSquare
  if constexpr (OP == UnaryOp::clamp) {
    const C r = v < a ? a : v;  // NaN compares false both ways and passes through
    return r > b ? b : r;
  }
  return v;
}

// The input gradient of op OP: g the output gradient, s the saved tensor (the output for exp,
// sqrt, rsqrt, tanh; the input otherwise), in the CPU's order of operations. For pow, a = e,
// b = the exponent's kind and e1 = e - 1 rounded from double (as the CPU rounds it).
template <UnaryOp OP, class C>
__device__ __forceinline__ C backward(C g, C s, C a, C b, C e1) {
  if constexpr (OP == UnaryOp::exp) return rn::mul(g, s);
  if constexpr (OP == UnaryOp::log) return rn::div(g, s);
  if constexpr (OP == UnaryOp::sqrt) return rn::div(g, rn::add(s, s));
  if constexpr (OP == UnaryOp::rsqrt) return rn::mul(rn::mul(rn::mul(rn::mul(C(-0.5), g), s), s), s);
  if constexpr (OP == UnaryOp::abs) return s > C(0) ? g : (s < C(0) ? -g : C(0));
  if constexpr (OP == UnaryOp::tanh) return rn::mul(g, rn::sub(C(1), rn::mul(s, s)));
  if constexpr (OP == UnaryOp::pow_scalar) {
    if (b == C(kPowZero)) return C(0);
    if (b == C(kPowSquare)) return rn::mul(g, rn::add(s, s));
    return rn::mul(rn::mul(g, a), f_pow(s, e1));
  }
  if constexpr (OP == UnaryOp::clamp) return (s >= a && s <= b) ? g : C(0);
  return g;
}

template <UnaryOp OP, class S>
__global__ void unary_flat_kernel(S* __restrict__ z, const S* __restrict__ x, int64_t n, typename Compute<S>::type a,
                                  typename Compute<S>::type b) {
  using C = typename Compute<S>::type;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    store_c(z + i, forward<OP, C>(load_c(x + i), a, b));
}

// f32, both pointers 16-byte aligned: n4 = n / 4 float4s, then the n % 4 tail elements.
template <UnaryOp OP>
__global__ void unary_vec4_kernel(float* __restrict__ z, const float* __restrict__ x, int64_t n, float a, float b) {
  const int64_t n4 = n / 4;
  const int64_t stride = int64_t(gridDim.x) * blockDim.x;
  const int64_t t = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  const float4* x4 = reinterpret_cast<const float4*>(x);
  float4* z4 = reinterpret_cast<float4*>(z);
  for (int64_t i = t; i < n4; i += stride) {
    float4 v = x4[i];
    v.x = forward<OP, float>(v.x, a, b);
    v.y = forward<OP, float>(v.y, a, b);
    v.z = forward<OP, float>(v.z, a, b);
    v.w = forward<OP, float>(v.w, a, b);
    z4[i] = v;
  }
  for (int64_t i = n4 * 4 + t; i < n; i += stride) z[i] = forward<OP, float>(x[i], a, b);
}

template <UnaryOp OP, class S>
__global__ void unary_strided_kernel(S* __restrict__ z, const S* __restrict__ x, int64_t n, NdIndex<1> ix,
                                     typename Compute<S>::type a, typename Compute<S>::type b) {
  using C = typename Compute<S>::type;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    int64_t off[1];
    ix.offsets(i, off);
    store_c(z + i, forward<OP, C>(load_c(x + off[0]), a, b));
  }
}

template <UnaryOp OP, class S>
__global__ void unary_backward_kernel(S* __restrict__ out, const S* __restrict__ g, const S* __restrict__ s, int64_t n,
                                      typename Compute<S>::type a, typename Compute<S>::type b,
                                      typename Compute<S>::type e1) {
  using C = typename Compute<S>::type;
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    store_c(out + i, backward<OP, C>(load_c(g + i), load_c(s + i), a, b, e1));
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

template <UnaryOp OP, class S>
void launch_forward(void* z, const void* x, const std::vector<int64_t>& xs, const std::vector<int64_t>& shape,
                    double a, double b, cudaStream_t stream) {
  using C = typename Compute<S>::type;
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  if (n == 0) return;
  S* zt = static_cast<S*>(z);
  const S* xt = static_cast<const S*>(x);
  const C ca = C(a), cb = C(b);  // rounded once on the host, as the CPU rounds the scalar
  if (is_dense(shape, xs)) {
    if constexpr (std::is_same_v<S, float>) {
      if (reinterpret_cast<uintptr_t>(z) % 16 == 0 && reinterpret_cast<uintptr_t>(x) % 16 == 0) {
        unary_vec4_kernel<OP><<<grid_for((n + 3) / 4, kThreads), kThreads, 0, stream>>>(zt, xt, n, ca, cb);
        RV_CUDA_CHECK_LAUNCH("unary_vec4_kernel");
        return;
      }
    }
    unary_flat_kernel<OP, S><<<grid_for(n, kThreads), kThreads, 0, stream>>>(zt, xt, n, ca, cb);
    RV_CUDA_CHECK_LAUNCH("unary_flat_kernel");
    return;
  }
  const std::vector<int64_t>* strides[1] = {&xs};
  const NdIndex<1> ix = make_nd_index<1>(shape, strides, unary_op_name(OP));
  unary_strided_kernel<OP, S><<<grid_for(n, kThreads), kThreads, 0, stream>>>(zt, xt, n, ix, ca, cb);
  RV_CUDA_CHECK_LAUNCH("unary_strided_kernel");
}

template <UnaryOp OP, class S>
void launch_backward(void* out, const void* g, const void* s, int64_t n, double a, double b, cudaStream_t stream) {
  using C = typename Compute<S>::type;
  if (n == 0) return;
  unary_backward_kernel<OP, S><<<grid_for(n, kThreads), kThreads, 0, stream>>>(
      static_cast<S*>(out), static_cast<const S*>(g), static_cast<const S*>(s), n, C(a), C(b), C(a - 1.0));
  RV_CUDA_CHECK_LAUNCH("unary_backward_kernel");
}

// Calls f.template operator()<OP>() for the runtime op.
template <class F>
void dispatch_op(UnaryOp op, const F& f) {
  switch (op) {
    case UnaryOp::neg: return f.template operator()<UnaryOp::neg>();
    case UnaryOp::exp: return f.template operator()<UnaryOp::exp>();
    case UnaryOp::log: return f.template operator()<UnaryOp::log>();
    case UnaryOp::sqrt: return f.template operator()<UnaryOp::sqrt>();
    case UnaryOp::rsqrt: return f.template operator()<UnaryOp::rsqrt>();
    case UnaryOp::abs: return f.template operator()<UnaryOp::abs>();
    case UnaryOp::tanh: return f.template operator()<UnaryOp::tanh>();
    case UnaryOp::add_scalar: return f.template operator()<UnaryOp::add_scalar>();
    case UnaryOp::mul_scalar: return f.template operator()<UnaryOp::mul_scalar>();
    case UnaryOp::rsub_scalar: return f.template operator()<UnaryOp::rsub_scalar>();
    case UnaryOp::rdiv_scalar: return f.template operator()<UnaryOp::rdiv_scalar>();
    case UnaryOp::pow_scalar: return f.template operator()<UnaryOp::pow_scalar>();
    case UnaryOp::clamp: return f.template operator()<UnaryOp::clamp>();
  }
  throw std::invalid_argument("launch_unary: unknown op");
}

// The dtype dispatch of one op, as functors (the CUDA sources are C++17: no template lambdas).
struct ForwardLauncher {
  UnaryOp op;
  DType dtype;
  void* z;
  const void* x;
  const std::vector<int64_t>& x_strides;
  const std::vector<int64_t>& shape;
  double a, b;
  cudaStream_t stream;
  template <UnaryOp OP>
  void operator()() const {
    if (dtype == DType::f32) return launch_forward<OP, float>(z, x, x_strides, shape, a, b, stream);
    if (dtype == DType::f64) return launch_forward<OP, double>(z, x, x_strides, shape, a, b, stream);
    if (dtype == DType::bf16) return launch_forward<OP, __nv_bfloat16>(z, x, x_strides, shape, a, b, stream);
    throw std::invalid_argument(std::string(unary_op_name(op)) + ": launch_unary takes f32, f64 or bf16, got " +
                                dtype_name(dtype));
  }
};

struct BackwardLauncher {
  UnaryOp op;
  DType dtype;
  void* out;
  const void* g;
  const void* s;
  int64_t n;
  double a, b;
  cudaStream_t stream;
  template <UnaryOp OP>
  void operator()() const {
    if (dtype == DType::f32) return launch_backward<OP, float>(out, g, s, n, a, b, stream);
    if (dtype == DType::f64) return launch_backward<OP, double>(out, g, s, n, a, b, stream);
    if (dtype == DType::bf16) return launch_backward<OP, __nv_bfloat16>(out, g, s, n, a, b, stream);
    throw std::invalid_argument(std::string(unary_op_name(op)) +
                                ": launch_unary_backward takes f32, f64 or bf16, got " + dtype_name(dtype));
  }
};

}  // namespace

void launch_unary(UnaryOp op, DType dtype, void* z, const void* x, const std::vector<int64_t>& x_strides,
                  const std::vector<int64_t>& shape, double a, double b, cudaStream_t stream) {
  // forward: only x^2 is special (x^0 goes through pow, which gives 1 everywhere, as std::pow)
  if (op == UnaryOp::pow_scalar) b = a == 2.0 ? kPowSquare : kPowGeneral;
  dispatch_op(op, ForwardLauncher{op, dtype, z, x, x_strides, shape, a, b, stream});
}

void launch_unary_backward(UnaryOp op, DType dtype, void* out, const void* g, const void* s, int64_t n, double a,
                           double b, cudaStream_t stream) {
  if (op == UnaryOp::pow_scalar) b = pow_kind(a);
  const BackwardLauncher f{op, dtype, out, g, s, n, a, b, stream};
  // Only the math ops have a fused gradient; the scalar ops' gradients are composed of ops.
  switch (op) {
    case UnaryOp::exp: return f.operator()<UnaryOp::exp>();
    case UnaryOp::log: return f.operator()<UnaryOp::log>();
    case UnaryOp::sqrt: return f.operator()<UnaryOp::sqrt>();
    case UnaryOp::rsqrt: return f.operator()<UnaryOp::rsqrt>();
    case UnaryOp::abs: return f.operator()<UnaryOp::abs>();
    case UnaryOp::tanh: return f.operator()<UnaryOp::tanh>();
    case UnaryOp::pow_scalar: return f.operator()<UnaryOp::pow_scalar>();
    case UnaryOp::clamp: return f.operator()<UnaryOp::clamp>();
    default: break;
  }
  throw std::invalid_argument(std::string(unary_op_name(op)) +
                              ": launch_unary_backward has no fused gradient for this op (it is composed of ops)");
}

}  // namespace rv::cuda
