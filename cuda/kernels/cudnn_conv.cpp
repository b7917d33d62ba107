// cudnn_conv.cpp: CudnnConvArgs through cuDNN's convolution API (cudnnConvolutionForward,
// ...BackwardData, ...BackwardFilter), one handle per device bound to the caller's stream.
//
// Why the "legacy" API: it is three calls with four descriptors, present in cuDNN 8 and 9 (in 9
// it is marked deprecated in favour of the graph API, but kept and supported; the warnings are
// opt-in, CUDNN_WARN_DEPRECATED). A reference should be the plainest use of the library.
//
// Algorithm: cudnnGet*Algorithm_v7 lists the algorithms by cuDNN's own estimate of their speed
// (heuristics: nothing is run, unlike cudnnFind*, which would time each one and allocate their
// workspaces); pick_conv_algo (conv_algo_choice.h) takes the first that is supported,
// deterministic, for f32 FP32 FMA (no TF32), and needs at most kMaxWorkspace bytes. The choice is
// cached per shape, so the listing runs once per layer shape.
#include "cuda/kernels/cudnn_conv.h"

#include <stdexcept>
#include <string>

#ifdef RV_HAVE_CUDNN
#include <cudnn.h>

#include <array>
#include <map>
#include <mutex>

#include <vector>

#include "cuda/allocator/caching_allocator.h"
#include "cuda/kernels/conv_algo_choice.h"
#endif

namespace rv::cuda {

#ifndef RV_HAVE_CUDNN

bool cudnn_built_in() { return false; }
std::string cudnn_unavailable_reason() {
  return "this build has no cuDNN (CMake found no cudnn.h and libcudnn; install cuDNN or PyTorch's "
         "nvidia-cudnn-cu12 wheel, or set CUDNN_ROOT, and configure again: the summary says whether cuDNN is in)";
}
std::string cudnn_version() { return ""; }
[[noreturn]] static void throw_no_cudnn() { throw std::runtime_error("conv2d (cuDNN): " + cudnn_unavailable_reason()); }
void cudnn_conv_forward(const CudnnConvArgs&, const void*, const void*, void*, int, cudaStream_t) { throw_no_cudnn(); }
void cudnn_conv_backward_data(const CudnnConvArgs&, const void*, const void*, void*, int, cudaStream_t) {
  throw_no_cudnn();
}
void cudnn_conv_backward_filter(const CudnnConvArgs&, const void*, const void*, void*, int, cudaStream_t) {
  throw_no_cudnn();
}

#else

namespace {

constexpr int kMaxCudnnDevices = 64;
constexpr size_t kMaxWorkspace = size_t(1) << 30;  // 1 GiB: past that, a slower algorithm is fine

void check_cudnn(cudnnStatus_t s, const char* what) {
  if (s != CUDNN_STATUS_SUCCESS)
    throw std::runtime_error(std::string("conv2d (cuDNN): ") + what + " failed: " + cudnnGetErrorString(s));
}

// The handle of `device` (made current by the caller), created on first use and kept for the life
// of the process (destroying it at exit could run after the driver has shut down).
cudnnHandle_t cudnn_handle_for(int device) {
  static std::mutex mu;
  static cudnnHandle_t handles[kMaxCudnnDevices] = {};
  if (device < 0 || device >= kMaxCudnnDevices) throw std::invalid_argument("conv2d (cuDNN): bad cuda device index");
  std::lock_guard<std::mutex> lock(mu);
  if (!handles[device]) check_cudnn(cudnnCreate(&handles[device]), "cudnnCreate");
  return handles[device];
}

int cudnn_int(int64_t v, const char* what) {
  if (v < 0 || v > 0x7fffffff)
    throw std::invalid_argument(std::string("conv2d (cuDNN): ") + what + " = " + std::to_string(v) +
                                " does not fit cuDNN's int");
  return static_cast<int>(v);
}

cudnnDataType_t cudnn_storage_type(CudnnDType t) {
  return t == CudnnDType::f32 ? CUDNN_DATA_FLOAT : t == CudnnDType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_BFLOAT16;
}
// The math we allow: FP32 / FP64 FMA for f32 / f64 (a like-for-like reference: no TF32), the
// tensor cores for bf16 (accumulating in f32, the compute type).
cudnnMathType_t cudnn_math_type(CudnnDType t) { return t == CudnnDType::bf16 ? CUDNN_TENSOR_OP_MATH : CUDNN_FMA_MATH; }

// The four descriptors of one convolution, destroyed with it.
struct ConvDescriptors {
  cudnnTensorDescriptor_t x = nullptr, y = nullptr;
  cudnnFilterDescriptor_t w = nullptr;
  cudnnConvolutionDescriptor_t conv = nullptr;

  explicit ConvDescriptors(const CudnnConvArgs& a) {
    try {
      const cudnnDataType_t st = cudnn_storage_type(a.dtype);
      const cudnnDataType_t compute = a.dtype == CudnnDType::f64 ? CUDNN_DATA_DOUBLE : CUDNN_DATA_FLOAT;
      check_cudnn(cudnnCreateTensorDescriptor(&x), "cudnnCreateTensorDescriptor");
      check_cudnn(cudnnCreateTensorDescriptor(&y), "cudnnCreateTensorDescriptor");
      check_cudnn(cudnnCreateFilterDescriptor(&w), "cudnnCreateFilterDescriptor");
      check_cudnn(cudnnCreateConvolutionDescriptor(&conv), "cudnnCreateConvolutionDescriptor");
      check_cudnn(cudnnSetTensor4dDescriptor(x, CUDNN_TENSOR_NCHW, st, cudnn_int(a.B, "B"), cudnn_int(a.C, "C"),
                                             cudnn_int(a.H, "H"), cudnn_int(a.W, "W")),
                  "cudnnSetTensor4dDescriptor (x)");
      check_cudnn(cudnnSetTensor4dDescriptor(y, CUDNN_TENSOR_NCHW, st, cudnn_int(a.B, "B"), cudnn_int(a.O, "O"),
                                             cudnn_int(a.Ho, "Ho"), cudnn_int(a.Wo, "Wo")),
                  "cudnnSetTensor4dDescriptor (y)");
      check_cudnn(cudnnSetFilter4dDescriptor(w, st, CUDNN_TENSOR_NCHW, cudnn_int(a.O, "O"),
                                             cudnn_int(a.C / a.groups, "C/groups"), cudnn_int(a.KH, "KH"),
                                             cudnn_int(a.KW, "KW")),
                  "cudnnSetFilter4dDescriptor");
      check_cudnn(cudnnSetConvolution2dDescriptor(conv, cudnn_int(a.pad_h, "pad_h"), cudnn_int(a.pad_w, "pad_w"),
                                                  cudnn_int(a.stride_h, "stride_h"), cudnn_int(a.stride_w, "stride_w"),
                                                  cudnn_int(a.dil_h, "dil_h"), cudnn_int(a.dil_w, "dil_w"),
                                                  CUDNN_CROSS_CORRELATION, compute),
                  "cudnnSetConvolution2dDescriptor");
      check_cudnn(cudnnSetConvolutionGroupCount(conv, cudnn_int(a.groups, "groups")), "cudnnSetConvolutionGroupCount");
      check_cudnn(cudnnSetConvolutionMathType(conv, cudnn_math_type(a.dtype)), "cudnnSetConvolutionMathType");
      // cuDNN's own idea of the output size must be the op's (same formula: a mismatch is our bug).
      int n = 0, c = 0, h = 0, wd = 0;
      check_cudnn(cudnnGetConvolution2dForwardOutputDim(conv, x, w, &n, &c, &h, &wd),
                  "cudnnGetConvolution2dForwardOutputDim");
      if (n != a.B || c != a.O || h != a.Ho || wd != a.Wo)
        throw std::logic_error("conv2d (cuDNN): cuDNN computes the output (" + std::to_string(n) + ", " +
                               std::to_string(c) + ", " + std::to_string(h) + ", " + std::to_string(wd) +
                               ") but the op expects (" + std::to_string(a.B) + ", " + std::to_string(a.O) + ", " +
                               std::to_string(a.Ho) + ", " + std::to_string(a.Wo) + ")");
    } catch (...) {
      release();
      throw;
    }
  }
  ~ConvDescriptors() { release(); }
  ConvDescriptors(const ConvDescriptors&) = delete;
  ConvDescriptors& operator=(const ConvDescriptors&) = delete;

 private:
  void release() {
    if (conv) cudnnDestroyConvolutionDescriptor(conv);
    if (w) cudnnDestroyFilterDescriptor(w);
    if (y) cudnnDestroyTensorDescriptor(y);
    if (x) cudnnDestroyTensorDescriptor(x);
    conv = nullptr;
    w = nullptr;
    x = y = nullptr;
  }
};

enum class ConvPass : int64_t { forward, backward_data, backward_filter };

// One chosen algorithm (an int: the three passes have their own enums) and its workspace size.
struct AlgoChoice {
  int algo = 0;
  cudnnMathType_t math = CUDNN_DEFAULT_MATH;
  size_t workspace = 0;
};

using ConvKey = std::array<int64_t, 19>;
ConvKey conv_key(ConvPass pass, int device, const CudnnConvArgs& a) {
  return {int64_t(pass), device, a.B, a.C, a.H, a.W, a.O, a.KH, a.KW, a.Ho, a.Wo, a.stride_h, a.stride_w,
          a.pad_h, a.pad_w, a.dil_h, a.dil_w, a.groups, int64_t(a.dtype)};
}

std::mutex& algo_cache_mutex() {
  static std::mutex mu;
  return mu;
}
std::map<ConvKey, AlgoChoice>& algo_cache() {
  static auto* cache = new std::map<ConvKey, AlgoChoice>();  // never destroyed, like the handles
  return *cache;
}

// The entry of cuDNN's ranked list that pick_conv_algo (conv_algo_choice.h) takes. `workspace_of`
// asks cuDNN for an entry's exact workspace with the entry's math type set on the descriptor (the
// list's `memory` is an estimate; ~0 if the query fails).
template <class Perf, class WorkspaceOf>
AlgoChoice first_usable(const Perf* perf, int count, const CudnnConvArgs& a, const char* pass,
                        WorkspaceOf&& workspace_of) {
  std::vector<ConvAlgoCandidate> ranked(size_t(count > 0 ? count : 0));
  for (size_t i = 0; i < ranked.size(); ++i) {
    const Perf& p = perf[i];
    ConvAlgoCandidate& c = ranked[i];
    c.algo = int(p.algo);
    c.supported = p.status == CUDNN_STATUS_SUCCESS;
    c.deterministic = p.determinism == CUDNN_DETERMINISTIC;
    c.fma_math = p.mathType == CUDNN_FMA_MATH;
    c.workspace = c.supported ? workspace_of(p) : ~size_t(0);
  }
  const int k = pick_conv_algo(ranked, a.dtype == CudnnDType::f32, kMaxWorkspace);
  // cuDNN wants the descriptor's math type to be the listed one when the algorithm runs.
  if (k >= 0) return AlgoChoice{ranked[size_t(k)].algo, perf[k].mathType, ranked[size_t(k)].workspace};
  throw std::runtime_error(std::string("conv2d (cuDNN): no deterministic ") + pass + " algorithm for x (" +
                           std::to_string(a.B) + ", " + std::to_string(a.C) + ", " + std::to_string(a.H) + ", " +
                           std::to_string(a.W) + "), weight (" + std::to_string(a.O) + ", " +
                           std::to_string(a.C / a.groups) + ", " + std::to_string(a.KH) + ", " + std::to_string(a.KW) +
                           "), groups " + std::to_string(a.groups) + " in this dtype");
}

AlgoChoice choose_algo(ConvPass pass, int device, cudnnHandle_t h, const ConvDescriptors& d, const CudnnConvArgs& a) {
  const ConvKey key = conv_key(pass, device, a);
  {
    std::lock_guard<std::mutex> lock(algo_cache_mutex());
    auto it = algo_cache().find(key);
    if (it != algo_cache().end()) return it->second;
  }
  AlgoChoice c;
  int n = 0;
  if (pass == ConvPass::forward) {
    cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
    check_cudnn(cudnnGetConvolutionForwardAlgorithm_v7(h, d.x, d.w, d.conv, d.y, CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n,
                                                       perf),
                "cudnnGetConvolutionForwardAlgorithm_v7");
    c = first_usable(perf, n, a, "forward", [&](const cudnnConvolutionFwdAlgoPerf_t& p) -> size_t {
      size_t ws = 0;
      if (cudnnSetConvolutionMathType(d.conv, p.mathType) != CUDNN_STATUS_SUCCESS ||
          cudnnGetConvolutionForwardWorkspaceSize(h, d.x, d.w, d.conv, d.y, p.algo, &ws) != CUDNN_STATUS_SUCCESS)
        return ~size_t(0);
      return ws;
    });
  } else if (pass == ConvPass::backward_data) {
    cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
    check_cudnn(cudnnGetConvolutionBackwardDataAlgorithm_v7(h, d.w, d.y, d.conv, d.x,
                                                            CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf),
                "cudnnGetConvolutionBackwardDataAlgorithm_v7");
    c = first_usable(perf, n, a, "input-gradient", [&](const cudnnConvolutionBwdDataAlgoPerf_t& p) -> size_t {
      size_t ws = 0;
      if (cudnnSetConvolutionMathType(d.conv, p.mathType) != CUDNN_STATUS_SUCCESS ||
          cudnnGetConvolutionBackwardDataWorkspaceSize(h, d.w, d.y, d.conv, d.x, p.algo, &ws) != CUDNN_STATUS_SUCCESS)
        return ~size_t(0);
      return ws;
    });
  } else {
    cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
    check_cudnn(cudnnGetConvolutionBackwardFilterAlgorithm_v7(h, d.x, d.y, d.conv, d.w,
                                                              CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf),
                "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
    c = first_usable(perf, n, a, "weight-gradient", [&](const cudnnConvolutionBwdFilterAlgoPerf_t& p) -> size_t {
      size_t ws = 0;
      if (cudnnSetConvolutionMathType(d.conv, p.mathType) != CUDNN_STATUS_SUCCESS ||
          cudnnGetConvolutionBackwardFilterWorkspaceSize(h, d.x, d.y, d.conv, d.w, p.algo, &ws) != CUDNN_STATUS_SUCCESS)
        return ~size_t(0);
      return ws;
    });
  }
  std::lock_guard<std::mutex> lock(algo_cache_mutex());
  algo_cache().emplace(key, c);
  return c;
}

// The workspace: a block of the caching allocator on `stream`, given back as soon as the call is
// queued (the next owner's kernels queue on the same stream, after this convolution).
class ConvWorkspace {
 public:
  ConvWorkspace(size_t bytes, int device, cudaStream_t stream) : device_(device) {
    if (bytes > 0) p_ = device_allocator(device).allocate(bytes, stream);
  }
  ~ConvWorkspace() {
    if (p_) device_allocator(device_).free(p_);
  }
  ConvWorkspace(const ConvWorkspace&) = delete;
  ConvWorkspace& operator=(const ConvWorkspace&) = delete;
  void* get() const { return p_; }

 private:
  int device_;
  void* p_ = nullptr;
};

// alpha = 1, beta = 0 in the type cuDNN wants for the compute type (double for f64, else float).
struct Scales {
  float f1 = 1.f, f0 = 0.f;
  double d1 = 1.0, d0 = 0.0;
  bool dbl;
  explicit Scales(CudnnDType t) : dbl(t == CudnnDType::f64) {}
  const void* one() const { return dbl ? static_cast<const void*>(&d1) : &f1; }
  const void* zero() const { return dbl ? static_cast<const void*>(&d0) : &f0; }
};

cudnnHandle_t handle_on(int device, cudaStream_t stream) {
  cudnnHandle_t h = cudnn_handle_for(device);
  check_cudnn(cudnnSetStream(h, stream), "cudnnSetStream");
  return h;
}

}  // namespace

bool cudnn_built_in() { return true; }
std::string cudnn_unavailable_reason() { return ""; }
std::string cudnn_version() {
  const size_t v = cudnnGetVersion();  // major * 10000 + minor * 100 + patch (cuDNN 9; 8 used * 1000)
  if (v >= 90000)
    return std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." + std::to_string(v % 100);
  return std::to_string(v / 1000) + "." + std::to_string(v / 100 % 10) + "." + std::to_string(v % 100);
}

void cudnn_conv_forward(const CudnnConvArgs& a, const void* x, const void* w, void* y, int device,
                        cudaStream_t stream) {
  cudnnHandle_t h = handle_on(device, stream);
  ConvDescriptors d(a);
  const AlgoChoice c = choose_algo(ConvPass::forward, device, h, d, a);
  check_cudnn(cudnnSetConvolutionMathType(d.conv, c.math), "cudnnSetConvolutionMathType");
  ConvWorkspace ws(c.workspace, device, stream);
  const Scales s(a.dtype);
  check_cudnn(cudnnConvolutionForward(h, s.one(), d.x, x, d.w, w, d.conv, cudnnConvolutionFwdAlgo_t(c.algo), ws.get(),
                                      c.workspace, s.zero(), d.y, y),
              "cudnnConvolutionForward");
}

void cudnn_conv_backward_data(const CudnnConvArgs& a, const void* dy, const void* w, void* dx, int device,
                              cudaStream_t stream) {
  cudnnHandle_t h = handle_on(device, stream);
  ConvDescriptors d(a);
  const AlgoChoice c = choose_algo(ConvPass::backward_data, device, h, d, a);
  check_cudnn(cudnnSetConvolutionMathType(d.conv, c.math), "cudnnSetConvolutionMathType");
  ConvWorkspace ws(c.workspace, device, stream);
  const Scales s(a.dtype);
  check_cudnn(cudnnConvolutionBackwardData(h, s.one(), d.w, w, d.y, dy, d.conv, cudnnConvolutionBwdDataAlgo_t(c.algo),
                                           ws.get(), c.workspace, s.zero(), d.x, dx),
              "cudnnConvolutionBackwardData");
}

void cudnn_conv_backward_filter(const CudnnConvArgs& a, const void* x, const void* dy, void* dw, int device,
                                cudaStream_t stream) {
  cudnnHandle_t h = handle_on(device, stream);
  ConvDescriptors d(a);
  const AlgoChoice c = choose_algo(ConvPass::backward_filter, device, h, d, a);
  check_cudnn(cudnnSetConvolutionMathType(d.conv, c.math), "cudnnSetConvolutionMathType");
  ConvWorkspace ws(c.workspace, device, stream);
  const Scales s(a.dtype);
  check_cudnn(cudnnConvolutionBackwardFilter(h, s.one(), d.x, x, d.y, dy, d.conv,
                                             cudnnConvolutionBwdFilterAlgo_t(c.algo), ws.get(), c.workspace, s.zero(),
                                             d.w, dw),
              "cudnnConvolutionBackwardFilter");
}

#endif  // RV_HAVE_CUDNN

}  // namespace rv::cuda
