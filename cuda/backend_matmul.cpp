// backend_matmul.cpp: the CUDA backend's fp32 GEMM (matmul, linear and their gradients) and the
// column sum behind linear's bias gradient; the switch between the hand-written kernel
// (cuda/kernels/sgemm.cu) and cuBLAS (cuda/kernels/cublas_gemm.cpp).
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "cuda/cuda_backend.h"
#include "cuda/kernels/cublas_gemm.h"
#include "cuda/kernels/sgemm.h"
#include "cuda/runtime/device.h"
#include "cuda/runtime/stream.h"

namespace rv::cuda {

namespace {

using Impl = backend::DeviceBackend::MatmulImpl;

void require_f32(const Tensor& t, const char* op, const char* arg) {
  if (t.dtype() != DType::f32)
    throw std::runtime_error(std::string(op) + ": dtype " + dtype_name(t.dtype()) + " of " + arg +
                             " is not implemented on " + t.device().str() + " yet (f32 is)");
}

// How the GEMM reads the last two dims (rows, cols) of a 3-D tensor: with unit column stride
// (not transposed, ld = row stride) or unit row stride (transposed, ld = column stride). `t` is
// replaced by a contiguous copy when neither fits. Also the batch stride (0 when size 1).
struct Operand {
  bool trans = false;
  int64_t ld = 0, batch_stride = 0;
};

Operand operand_of(Tensor& t) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    const int64_t r = t.size(1), c = t.size(2), sr = t.stride(1), sc = t.stride(2);
    Operand op;
    op.batch_stride = t.size(0) == 1 ? 0 : t.stride(0);
    if ((sc == 1 || c == 1) && (r == 1 || sr >= std::max<int64_t>(1, c))) {
      op.trans = false;
      op.ld = r == 1 ? std::max<int64_t>(1, c) : sr;
      return op;
    }
    if ((sr == 1 || r == 1) && (c == 1 || sc >= std::max<int64_t>(1, r))) {
      op.trans = true;
      op.ld = c == 1 ? std::max<int64_t>(1, r) : sc;
      return op;
    }
    t = t.contiguous();
  }
  throw std::logic_error("matmul: a contiguous operand was not readable by the GEMM");
}

Impl impl_from_env() {
  const char* v = std::getenv("ROPEVIT_MATMUL");
  if (!v || !*v) return Impl::ours;
  const std::string s(v);
  if (s == "ours") return Impl::ours;
  if (s == "simple") return Impl::simple;
  if (s == "blocked") return Impl::blocked;
  if (s == "cublas") return Impl::cublas;
  throw std::invalid_argument("ROPEVIT_MATMUL must be ours, simple, blocked or cublas, got '" + s + "'");
}

// The process-wide choice (one CudaBackend exists), read from the environment on first use.
std::atomic<Impl>& current_impl() {
  static std::atomic<Impl> impl{impl_from_env()};
  return impl;
}

// Split-K for few output tiles and a long K (the weight gradient: (out, in) = xᵀ g with K = all
// rows, e.g. 1152 x 384 x 50432: only 27 tiles of 128x128 for 132 SMs). K is cut into S chunks of
// Kc (a multiple of 8) that run as S batch entries of the blocked kernel, each writing its own
// (M, N) partial product into a workspace, plus one more entry for the tail K - S*Kc; then the
// partials are summed per element in a fixed order by the column sum (no atomics: the same bits
// every run), and bias / GELU applied after. Returns false when the problem does not qualify.
bool run_split_k(const SgemmArgs& p, const Device& dev, cudaStream_t stream) {
  constexpr int64_t kMinK = 4096, kMinChunk = 512, kTile = 128;
  if (p.batch != 1 || p.K < kMinK || p.ldc != p.N) return false;
  const int64_t tiles = ((p.M + kTile - 1) / kTile) * ((p.N + kTile - 1) / kTile);
  if (tiles >= 48) return false;
  const int64_t S = std::min<int64_t>(std::max<int64_t>(2, 264 / tiles), p.K / kMinChunk);
  if (S < 2) return false;
  const int64_t Kc = (p.K / S) / 8 * 8, tail = p.K - S * Kc;
  const int64_t parts = S + (tail > 0 ? 1 : 0), MN = p.M * p.N;
  Tensor work = empty({parts, MN}, DType::f32, dev);
  float* w = static_cast<float*>(work.device_data());
  SgemmArgs q = p;
  q.bias = nullptr;
  q.gelu = false;
  q.c = w;
  q.stride_c = MN;
  q.K = Kc;
  q.batch = S;
  // where element (m, k) / (k, n) lives: a k-step of Kc moves A by Kc (or Kc * lda when
  // transposed) and B by Kc * ldb (or Kc when transposed)
  q.stride_a = p.trans_a ? Kc * p.lda : Kc;
  q.stride_b = p.trans_b ? Kc : Kc * p.ldb;
  launch_sgemm(q, SgemmKernel::blocked, stream);
  if (tail > 0) {
    SgemmArgs r = q;
    r.K = tail;
    r.batch = 1;
    r.a = p.a + S * q.stride_a;
    r.b = p.b + S * q.stride_b;
    r.c = w + S * MN;
    launch_sgemm(r, SgemmKernel::blocked, stream);
  }
  Tensor partials = empty({column_sum_chunks(parts), MN}, DType::f64, dev);
  launch_column_sum(w, parts, MN, MN, p.c, static_cast<double*>(partials.device_data()), stream);
  launch_bias_gelu(p.c, p.M, p.N, p.bias, p.gelu, stream);
  return true;
}

}  // namespace

void CudaBackend::set_matmul_impl(MatmulImpl impl) { current_impl().store(impl); }
CudaBackend::MatmulImpl CudaBackend::matmul_impl() const { return current_impl().load(); }

Tensor CudaBackend::gemm(const Tensor& a_in, const Tensor& b_in, const Tensor& bias, bool gelu) {
  const char* op = "matmul";
  require_f32(a_in, op, "the left operand");
  require_f32(b_in, op, "the right operand");
  if (a_in.dim() != 3 || b_in.dim() != 3)
    throw std::invalid_argument(std::string(op) + ": the cuda gemm takes 3-D (batch, rows, cols) operands, got " +
                                shape_str(a_in.shape()) + " and " + shape_str(b_in.shape()));
  if (a_in.device() != b_in.device() || (bias.defined() && bias.device() != a_in.device()))
    throw std::invalid_argument(std::string(op) + ": operands on different devices");
  const int64_t M = a_in.size(1), K = a_in.size(2), N = b_in.size(2);
  const int64_t ba = a_in.size(0), bb = b_in.size(0), batch = std::max(ba, bb);
  if (b_in.size(1) != K || (ba != batch && ba != 1) || (bb != batch && bb != 1))
    throw std::invalid_argument(std::string(op) + ": shapes " + shape_str(a_in.shape()) + " and " +
                                shape_str(b_in.shape()) + " do not multiply as (batch, M, K) x (batch, K, N)");
  Tensor bias_c;
  if (bias.defined()) {
    require_f32(bias, op, "the bias");
    if (bias.dim() != 1 || bias.size(0) != N)
      throw std::invalid_argument(std::string(op) + ": bias must have shape [" + std::to_string(N) + "], got " +
                                  shape_str(bias.shape()));
    bias_c = bias.contiguous();
  }
  Tensor out = empty({batch, M, N}, DType::f32, a_in.device());
  if (out.numel() == 0) return out;
  Tensor a = a_in, b = b_in;
  Operand oa, ob;  // K = 0: nothing is read (the kernels write bias / zeros), so no operand views
  if (K > 0) {
    oa = operand_of(a);
    ob = operand_of(b);
  } else {
    oa.ld = ob.ld = 1;
  }

  SgemmArgs p;
  p.trans_a = oa.trans;
  p.trans_b = ob.trans;
  p.M = M;
  p.N = N;
  p.K = K;
  p.batch = batch;
  p.a = static_cast<const float*>(a.device_data());
  p.lda = oa.ld;
  p.stride_a = oa.batch_stride;
  p.b = static_cast<const float*>(b.device_data());
  p.ldb = ob.ld;
  p.stride_b = ob.batch_stride;
  p.c = static_cast<float*>(out.device_data());
  p.ldc = N;
  p.stride_c = M * N;
  p.bias = bias_c.defined() ? static_cast<const float*>(bias_c.device_data()) : nullptr;
  p.gelu = gelu;

  const int dev = a.device().index;
  DeviceGuard g(dev);
  switch (current_impl().load()) {
    case Impl::ours:
      if (!run_split_k(p, a.device(), compute_stream(dev))) launch_sgemm(p, SgemmKernel::automatic, compute_stream(dev));
      break;
    case Impl::simple: launch_sgemm(p, SgemmKernel::simple, compute_stream(dev)); break;
    case Impl::blocked: launch_sgemm(p, SgemmKernel::blocked, compute_stream(dev)); break;
    case Impl::cublas: launch_cublas_sgemm(p, dev, compute_stream(dev)); break;
  }
  return out;
}

Tensor CudaBackend::column_sum(const Tensor& x_in) {
  require_f32(x_in, "linear (bias gradient)", "the gradient");
  if (x_in.dim() != 2)
    throw std::invalid_argument("column_sum: expected a 2-D (rows, cols) tensor, got " + shape_str(x_in.shape()));
  Tensor x = x_in;
  const int64_t R = x.size(0), C = x.size(1);
  if ((x.stride(1) != 1 && C > 1) || (R > 1 && x.stride(0) < C)) x = x.contiguous();
  const int64_t ld = R > 1 ? x.stride(0) : C;
  Tensor out = empty({C}, DType::f32, x.device());
  if (C == 0) return out;
  Tensor partials = empty({column_sum_chunks(R), C}, DType::f64, x.device());
  const int dev = x.device().index;
  DeviceGuard g(dev);
  launch_column_sum(static_cast<const float*>(x.device_data()), R, C, ld, static_cast<float*>(out.device_data()),
                    static_cast<double*>(partials.device_data()), compute_stream(dev));
  return out;
}

}  // namespace rv::cuda
