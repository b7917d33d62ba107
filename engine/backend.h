// backend.h: the interface a device backend (today: CUDA) implements, and the registry that
// engine code looks it up in by DeviceType.
//
// Why an interface: engine/ must build and run with no CUDA toolkit at all, and a CPU-only
// build must contain no CUDA symbol. So engine code never includes a cuda/ header; it asks
// `backend::get(device)` for the backend of a tensor's device and calls its virtual methods,
// once per op call (never per element: the CPU path does not go through here at all).
//
// What a backend provides:
//   - memory: allocate / deallocate (the backend may cache blocks), memset, statistics;
//   - copies: host -> device, device -> host, device -> device (raw bytes);
//   - synchronize (wait for all queued work on the device);
//   - ops: one virtual method per op family it implements. The default implementation of each
//     throws "<op>: not implemented on cuda:0 yet", so an op that a backend lacks fails loudly
//     instead of silently running on the CPU.
//
// Registration: the CUDA backend is registered the first time any backend is looked up, by the
// one function in engine/backend.cpp that knows whether CUDA was compiled in (the single
// #ifdef of the engine). Tests may stand in a replacement (set_backend returns the previous
// one, so it can be put back).
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "engine/device.h"

namespace rv {
class Tensor;
}

namespace rv::backend {

enum class BinaryOp : uint8_t { add, sub, mul, div };
const char* binary_op_name(BinaryOp op);  // "add", ...

// Device memory statistics (bytes unless named otherwise). "allocated" counts live blocks at the
// size handed out (their size class); "reserved" counts everything taken from the device,
// live or cached; the difference is what the cache holds.
struct MemoryStats {
  size_t allocated = 0;
  size_t reserved = 0;
  size_t peak_allocated = 0;
  size_t peak_reserved = 0;
  size_t requested = 0;        // bytes the live blocks were asked for (<= allocated: the rest is slack)
  size_t allocations = 0;      // allocate() calls since start
  size_t cache_hits = 0;       // ... served from the cache
  size_t device_mallocs = 0;   // ... that went to the device allocator (cudaMalloc)
  size_t waiting_for_streams = 0;  // freed bytes not reusable yet: other streams may still use them (record_stream)
  bool caching = true;         // false when the cache is bypassed (ROPEVIT_CUDA_ALLOC=plain)
};

// What a benchmark needs to know about a device to put its figures against the card's limits.
struct DeviceProperties {
  std::string name;              // "NVIDIA H100 80GB HBM3"
  int major = 0, minor = 0;      // compute capability
  int multiprocessors = 0;
  double sm_clock_ghz = 0;       // the boost clock the driver reports (0 if unknown)
  double memory_gbps = 0;        // theoretical DRAM bandwidth, GB/s (0 if unknown)
  double fp32_tflops = 0;        // FP32 FMA peak without tensor cores: SMs x FP32 lanes x 2 x clock (0 if unknown)
  size_t total_memory = 0;       // bytes
};

class DeviceBackend {
 public:
  virtual ~DeviceBackend() = default;
  virtual DeviceType type() const = 0;

  // ---- devices -------------------------------------------------------------------------------
  virtual int device_count() const = 0;
  // Why device_count() is 0 ("" when it is not), e.g. "cudaGetDeviceCount: no CUDA-capable device".
  virtual std::string unavailable_reason() const = 0;
  virtual std::string device_name(int index) const = 0;
  // Name, compute capability and the card's peaks; the default knows only the name.
  virtual DeviceProperties properties(int index) const;
  virtual void synchronize(int index) = 0;

  // ---- memory (raw bytes; `index` is the device index) ---------------------------------------
  virtual void* allocate(size_t nbytes, int index) = 0;
  virtual void deallocate(void* p, int index) = 0;
  virtual void memset(void* dst, int byte, size_t nbytes, int index) = 0;
  // Both are complete (for the host) when they return: the host may reuse src / read dst.
  virtual void copy_from_host(void* dst, const void* src, size_t nbytes, int index) = 0;
  virtual void copy_to_host(void* dst, const void* src, size_t nbytes, int index) = 0;
  // As copy_from_host, but when src is pinned host memory (allocate_pinned_host) it may return as
  // soon as the transfer is queued; device work queued later still sees the data. The caller
  // must not write src until the device has caught up (a data loader never writes a batch it
  // has handed out). The default is the synchronous copy.
  virtual void copy_from_host_async(void* dst, const void* src, size_t nbytes, int index);
  // Page-locked host memory that this backend's copy engines read and write directly (one DMA,
  // no staging copy). Default: throws, saying that pinned memory needs this backend.
  virtual void* allocate_pinned_host(size_t nbytes);
  virtual void free_pinned_host(void* p);
  virtual void copy_on_device(void* dst, const void* src, size_t nbytes, int index) = 0;
  virtual MemoryStats memory_stats(int index) = 0;
  virtual void reset_peak_stats(int index) = 0;
  virtual void empty_cache(int index) = 0;  // hands cached blocks back to the device

  // ---- ops (all tensors on this backend's device; defaults throw "not implemented") ----------
  // dst[i] = src[i] with src broadcast to dst's shape; any strides; same dtype (copy_ / contiguous).
  virtual void copy_strided(const Tensor& dst, const Tensor& src);
  // Every element of dst (any strides) set to `value` (fill_, zeros, ones).
  virtual void fill(const Tensor& dst, double value);
  // z = a op b with broadcasting; a and b have one float dtype; z is fresh and contiguous.
  virtual Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
  // The sum of all elements as a 0-d tensor of x's dtype.
  virtual Tensor sum_all(const Tensor& x);

  // ---- softmax and cross entropy (cuda/backend_softmax.cpp) ----
  // y = softmax(x) over the LAST dim (log_softmax when `log`). x: contiguous, shape (..., len)
  // seen as rows = numel / len rows of len, dtype f32, bf16 (f32 math) or f64. Returns y: fresh,
  // contiguous, x's shape and dtype. Reads x once, writes y once (rows * len elements each).
  // Non-finite rows as the CPU op (engine/ops/softmax.h).
  virtual Tensor softmax_last_dim(const Tensor& x, bool log);
  // The fused backward over the last dim from the forward's output y and the incoming dy:
  //   softmax: dx = y * (dy - sum(dy * y));  log_softmax: dx = dy - exp(y) * sum(dy).
  // dy, y: contiguous, the same shape and dtype (as above). Returns dx: fresh, contiguous, same
  // shape and dtype. Reads dy and y once, writes dx once.
  virtual Tensor softmax_last_dim_backward(const Tensor& dy, const Tensor& y, bool log);

  enum class LossReduction : uint8_t { none, mean, sum };
  // Cross entropy of logits (R, K) (contiguous; f32, bf16 or f64) against class indices target
  // (R) (contiguous int64), softmax fused; label_smoothing s in [0, 1]; rows whose target equals
  // ignore_index add no loss and do not count; a target outside [0, K) gives a NaN loss.
  // Returns the loss in the logits' dtype: (R) for none (0 on ignored rows), () for mean (over
  // the non-ignored rows; NaN if none) and sum. Also sets lse: (R) the log-sum-exp of each row,
  // and count: () the number of non-ignored rows (the mean's divisor), both in the math dtype
  // (f32; f64 for f64 logits), computed on the device, for cross_entropy_backward.
  // Reads R K logits + R targets once; writes 3 R math-dtype values (+ the loss).
  virtual Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index,
                               double label_smoothing, LossReduction reduction, Tensor& lse, Tensor& count);
  // dlogits (R, K), fresh, the logits' dtype: g_r (softmax(logits_r) - smoothed one-hot(target_r))
  // in one pass, 0 on ignored rows. grad: the loss's gradient in the logits' dtype, (R) for none,
  // () otherwise (divided by count for mean). lse, count: as the forward set them. Reads R K
  // logits + R (target, lse), writes R K.
  virtual Tensor cross_entropy_backward(const Tensor& grad, const Tensor& logits, const Tensor& target,
                                        const Tensor& lse, const Tensor& count, int64_t ignore_index,
                                        double label_smoothing, LossReduction reduction);

  // ---- layernorm, activations (cuda/backend_layernorm.cpp, cuda/backend_activation.cpp) ------
  // Layer norm over the last C values: x (any shape, any strides; numel a multiple of C) is read
  // as rows = numel / C rows of C. x: f32 or bf16; weight, bias: (C) or undefined, f32 or x's
  // dtype (the same dtype when both are given). Returns y (x's shape and dtype, contiguous) and
  // sets mean and rstd to fresh (rows) f32 tensors (what the backward needs).
  virtual Tensor layer_norm_forward(const Tensor& x, int64_t C, const Tensor& weight, const Tensor& bias, double eps,
                                    Tensor& mean, Tensor& rstd);
  // Gradients of layer_norm_forward from dy (x's shape and dtype, any strides), x, C, weight (or
  // undefined), mean and rstd. Sets dx (x's shape and dtype) when need_dx, dweight (C, weight's
  // dtype) when need_dweight, dbias (C, bias's dtype: only bias's dtype is read) when need_dbias;
  // leaves the others undefined. Deterministic (no atomics).
  virtual void layer_norm_backward(const Tensor& dy, const Tensor& x, int64_t C, const Tensor& weight,
                                   const Tensor& bias, const Tensor& mean, const Tensor& rstd, bool need_dx,
                                   bool need_dweight, bool need_dbias, Tensor& dx, Tensor& dweight, Tensor& dbias);
  // The pointwise activations of engine/ops/activation.h (gelu: exact erf form; gelu_tanh).
  enum class Activation : uint8_t { gelu, gelu_tanh, relu, silu, sigmoid };
  static const char* activation_name(Activation a);  // "gelu", "gelu", "relu", "silu", "sigmoid"
  // y = f(x): x f32 or bf16, any shape and strides; y fresh, contiguous, x's shape and dtype.
  virtual Tensor activation_forward(Activation a, const Tensor& x);
  // dx = dy * f'(.) from `saved`: x for gelu, gelu_tanh, silu; the output y for relu, sigmoid
  // (what autograd saves, as on the CPU). saved and dy: one shape and dtype, any strides; dx is
  // fresh and contiguous.
  virtual Tensor activation_backward(Activation a, const Tensor& saved, const Tensor& dy);
  // True when activation_backward reads the output y rather than x (relu, sigmoid).
  static bool activation_saves_output(Activation a);

  // ---- rotary embedding (cuda/backend_rope.cpp) ----
  // Shapes as in engine/ops/rope.h: x (B, NH, N, HD) with HD even, any strides (the channel dim is
  // read contiguous; a view with another channel stride is copied first); angles (NH or 1, N - skip,
  // HD/2) f32 (a leading 1 is shared by every head); outputs contiguous. x and g: f32 or bf16
  // storage, f32 math, rounded once; other dtypes throw "not implemented on cuda:N yet".
  // out = x rotated by the angles (`inverse`: by -angles, the backward w.r.t. x; a gradient g goes
  // in as x), the first `skip_tokens` tokens copied. Same dtype as x.
  virtual Tensor rope_rotate(const Tensor& x, const Tensor& angles, int64_t skip_tokens, bool inverse);
  // q and k (same shape and dtype, e.g. two views of one qkv tensor) rotated by the same angles in
  // one launch: q_out, k_out = rope_rotate(q, ...), rope_rotate(k, ...).
  virtual void rope_rotate_qk(const Tensor& q, const Tensor& k, const Tensor& angles, int64_t skip_tokens,
                              bool inverse, Tensor& q_out, Tensor& k_out);
  // The gradient w.r.t. the angles of out = rope_rotate(x, angles, skip): (NH or 1, N - skip, HD/2)
  // f32, summed over the batch (and the heads when shared) in a fixed order. g: d loss / d out,
  // same shape and dtype as x. Deterministic.
  virtual Tensor rope_angles_grad(const Tensor& g, const Tensor& x, const Tensor& angles, int64_t skip_tokens);
  // The same for q and k rotated together: the sum of both tensors' contributions, one reduction.
  virtual Tensor rope_angles_grad_qk(const Tensor& gq, const Tensor& q, const Tensor& gk, const Tensor& k,
                                     const Tensor& angles, int64_t skip_tokens);
  // angles (NH, N, HD/2) f32 = rope_angles(freqs (A, NH, HD/2) f32, pos (N, A) f32), equal to the CPU
  // bit for bit.
  virtual Tensor rope_angles(const Tensor& freqs, const Tensor& pos);
  // Its backward from g (NH, N, HD/2): *dfreqs (A, NH, HD/2) and *dpos (N, A), each computed only
  // when the pointer is not null. Bit-identical to the CPU.
  virtual void rope_angles_backward(const Tensor& g, const Tensor& freqs, const Tensor& pos, Tensor* dfreqs,
                                    Tensor* dpos);

  // ---- optim, reductions, unary math (cuda/backend_optim.cpp, cuda/backend_reduce_unary.cpp) ----
  // Unary / tensor-scalar elementwise ops; `a`, `b` are the scalar arguments where the op has any.
  enum class UnaryOp : uint8_t {
    neg,          // -x
    exp, log, sqrt, rsqrt, abs, tanh,
    add_scalar,   // x + a
    mul_scalar,   // x * a
    rsub_scalar,  // a - x
    rdiv_scalar,  // a / x
    pow_scalar,   // x ^ a
    clamp,        // min(max(x, a), b); a = -inf / b = +inf for a missing bound; NaN stays NaN
  };
  static const char* unary_op_name(UnaryOp op);  // the public op's name: "exp", "add", "clamp", ...
  // z = op(x) elementwise; x any strides, f32 / f64 / bf16 (bf16 computed in f32); z is fresh,
  // contiguous, x's shape and dtype. Reads x.numel() and writes z.numel() elements.
  virtual Tensor unary(UnaryOp op, const Tensor& x, double a = 0.0, double b = 0.0);
  // The input gradient of the math ops exp ... tanh, pow_scalar, clamp as one fused map over
  // (g, s): s is the saved output for exp, sqrt, rsqrt, tanh and the saved input otherwise (as
  // engine/ops/math.cpp records them). g and s have one shape and dtype; result contiguous.
  virtual Tensor unary_backward(UnaryOp op, const Tensor& g, const Tensor& s, double a = 0.0, double b = 0.0);
  // Sum over the dims where reduced[d] (one flag per dim of x, at least one set), keepdim as
  // rv::sum. x any strides, f32 / f64 / bf16 (accumulated in f64; bf16 rounded via f32). Result
  // fresh and contiguous. Deterministic: each output is summed in an order fixed by the shape.
  virtual Tensor sum_dims(const Tensor& x, const std::vector<bool>& reduced, bool keepdim);

  // One parameter of a fused AdamW step (engine/optim/adamw.h has the formulas). All tensors
  // contiguous, same shape, same dtype (f32 or f64, one dtype across the whole call);
  // max_exp_avg_sq is null unless amsgrad. `step` is the parameter's step count after this update.
  // The pointers are valid during the call only (the gradients may be the caller's temporaries).
  struct AdamWParam {
    const Tensor* param = nullptr;           // updated in place
    const Tensor* grad = nullptr;            // read
    const Tensor* exp_avg = nullptr;         // updated in place
    const Tensor* exp_avg_sq = nullptr;      // updated in place
    const Tensor* max_exp_avg_sq = nullptr;  // updated in place (amsgrad), else null
    double lr = 0.0, beta1 = 0.0, beta2 = 0.0, eps = 0.0, weight_decay = 0.0;
    int64_t step = 1;
  };
  // One launch updates every entry (multi-tensor apply). Per element it reads p, g, m, v (and
  // vmax) and writes p, m, v (and vmax): 7 (9 with amsgrad) * itemsize bytes of traffic.
  virtual void adamw_step(const std::vector<AdamWParam>& params);
  // The L2 norm of all elements of all `tensors` taken together (contiguous, one dtype f32 or
  // f64), as a 0-d f64 tensor on their device; no host sync. Reads every element once.
  virtual Tensor l2_norm_multi(const std::vector<Tensor>& tensors);
  // Multiplies every element of every tensor (contiguous, one dtype) in place by
  // coef = max_norm / (norm + 1e-6) when coef < 1 or is NaN (clip_grad_norm_'s rule); `norm` is
  // the 0-d f64 device tensor of l2_norm_multi, read on the device (no host sync). Reads and
  // writes every element once (only when clipping happens; otherwise reads nothing).
  virtual void scale_by_norm(const std::vector<Tensor>& tensors, const Tensor& norm, double max_norm);

  // ---- matmul (cuda/backend_matmul.cpp) ----
  // Which GEMM runs matmul/linear on this backend: the hand-written kernel (automatic choice of
  // its variants), forced to its simple 16x16 variant or its blocked 128x128 one, or cuBLAS.
  // Default: ours, or the ROPEVIT_MATMUL environment variable (ours|simple|blocked|cublas).
  enum class MatmulImpl : uint8_t { ours, simple, blocked, cublas };
  virtual void set_matmul_impl(MatmulImpl impl);
  virtual MatmulImpl matmul_impl() const;
  // out (batch, M, N), fresh and contiguous = a (Ba, M, K) · b (Bb, K, N) (+ bias (N,)) (then exact
  // GELU), f32 only. Ba and Bb are batch or 1 (1 = broadcast over the batch); any strides: a
  // last-two-dims view with unit stride in either dim (e.g. a transpose) is read in place with the
  // GEMM's transpose flag, anything else is made contiguous first. bias may be undefined.
  // Reads 4 * (Ba*M*K + Bb*K*N (+ N)) bytes, writes 4 * batch*M*N; 2 * batch*M*N*K FLOP.
  virtual Tensor gemm(const Tensor& a, const Tensor& b, const Tensor& bias, bool gelu);
  // out (C,) = the sum over rows of x (R, C), f32, deterministic (fixed order, f64 accumulation).
  // Reads 4*R*C bytes. The bias gradient of linear.
  virtual Tensor column_sum(const Tensor& x);

  // ---- conversion, comparisons, where, max/min along a dim, dropout (cuda/backend_select_ops.cpp) ----
  // dst[i] = src[i] converted to dst's dtype, src broadcast to dst's shape (stride 0), any strides,
  // any pair of the eight dtypes, rounded exactly as the CPU's scalar_cast (bf16/f16 to nearest
  // even with NaN kept; float -> integer truncates toward zero). dst and src differ in dtype.
  virtual void convert(const Tensor& dst, const Tensor& src);
  enum class CompareOp : uint8_t { eq, ne, lt, le, gt, ge };
  static const char* compare_op_name(CompareOp op);  // "eq", ...
  // m = a op b as a fresh contiguous bool tensor of the broadcast shape. a and b: one dtype, f32,
  // f64 or i64 (the op front-end converts to the compare dtype first, as the CPU does); any strides.
  virtual Tensor compare(CompareOp op, const Tensor& a, const Tensor& b);
  // out = cond ? a : b, broadcasting all three; cond bool, a and b one dtype (any); out fresh,
  // contiguous, of the broadcast shape. A pure select of bits (masked_fill is where(mask, v, x)).
  virtual Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);
  // The max (is_max) or min of x along `dim` (already wrapped; x.dim() >= 1, size > 0) and the
  // first index that reaches it; a slice with a NaN gives NaN and the first NaN's index (the CPU's
  // rule). x f32, f64 or bf16, any strides. Sets indices (i64) and, when want_values, values
  // (x's dtype), both fresh and contiguous, shaped as rv::max(x, dim, keepdim).
  virtual void minmax_dim(const Tensor& x, int64_t dim, bool keepdim, bool is_max, bool want_values, Tensor& values,
                          Tensor& indices);
  // The backward of minmax_dim: a fresh contiguous tensor of `in_shape` and g's dtype, zero except
  // grad[..., indices[o], ...] = g[o] along `dim`. g and indices: contiguous, the output's numel.
  virtual Tensor minmax_dim_backward(const Tensor& g, const Tensor& indices, const std::vector<int64_t>& in_shape,
                                     int64_t dim);
  // Dropout / drop_path's masked scale of x (f32, f64 or bf16 (f32 math), any strides; elements
  // numbered in row-major order): y[i] = x[i] * (1 / keep) when draw d = i / group is kept, else 0;
  // a fresh contiguous tensor of x's shape and dtype. group == 1 (dropout): kept iff
  // word_to_uniform(philox_word(seed, stream, offset + i)) < ceil(keep 2^24) 2^-24 (in f32);
  // group > 1 (drop_path): kept iff double(philox_uniform(seed, stream, offset + d)) < keep. The
  // same bits as engine/ops/dropout.cpp's CPU loop.
  virtual Tensor dropout_apply(const Tensor& x, uint64_t seed, uint64_t stream, uint64_t offset, double keep,
                               int64_t group);

  // ---- indexing, convolution windows, pooling (cuda/backend_spatial.cpp) ----
  // out = x.index_select(dim, index): x any shape and strides, any dtype of 2, 4 or 8 bytes (a
  // copy: f32, bf16, f64, int64, ...); index: (K) int64, contiguous, ON THE CPU, every value
  // already checked to lie in [0, x.size(dim)) by the op (the backend copies it to the device).
  // Returns out: fresh, contiguous, x's shape with size(dim) = K. Reads and writes out.numel().
  virtual Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index);
  // Its backward: dx (x_shape) with slice s along dim = the sum of g's slices k with index[k] == s,
  // added in ascending k (no atomics: one thread per dx element; the host buckets the positions
  // by target, a stable counting sort). g: x_shape with size(dim) = K, any strides, f32 or f64;
  // index as above. Returns dx fresh and contiguous (zero where no index points).
  virtual Tensor index_select_backward(const Tensor& g, int64_t dim, const Tensor& index,
                                       const std::vector<int64_t>& x_shape);

  // The window of a 2-D convolution over x (B, C, H, W): kernel (KH, KW), stride, padding,
  // dilation, groups G, and the output size (Ho, Wo) the op computed.
  struct ConvWindow {
    int64_t KH = 1, KW = 1, stride_h = 1, stride_w = 1, pad_h = 0, pad_w = 0, dil_h = 1, dil_w = 1;
    int64_t groups = 1, Ho = 1, Wo = 1;
  };
  // cols (G, B*Ho*Wo, C/G*KH*KW), fresh and contiguous: row (b, oh, ow) of group g holds the
  // window of output pixel (oh, ow) over group g's channels, ordered (c, kh, kw) like the weight
  // (O, C/G, KH, KW); 0 where the window reads padding. x: (B, C, H, W) any strides, f32 or f64.
  virtual Tensor im2col(const Tensor& x, const ConvWindow& win);
  // The adjoint of im2col: dx (x_shape = (B, C, H, W)) where each pixel sums, in (kh, kw) order,
  // the entries of cols (as im2col's result; any strides) that im2col copied from it. A gather
  // (one thread per pixel), so deterministic. Fresh and contiguous, cols' dtype.
  virtual Tensor col2im(const Tensor& cols, const std::vector<int64_t>& x_shape, const ConvWindow& win);
  // Which implementation runs conv2d / conv_transpose2d on this backend: ours (im2col + our GEMM,
  // engine/ops/conv_device.cpp) or the vendor library through the three entries below (cuDNN on
  // CUDA). Default: ours, or the ROPEVIT_CONV environment variable (ours|cudnn). Asking for cudnn
  // where the build has none throws an error saying so (so does the variable, at the first conv).
  enum class ConvImpl : uint8_t { ours, cudnn };
  virtual void set_conv_impl(ConvImpl impl);
  virtual ConvImpl conv_impl() const;
  // The three convolutions of conv2d by the vendor library, without bias; G = win.groups, (Ho, Wo)
  // = (win.Ho, win.Wo). Inputs any strides, one dtype (f32; bf16 / f64 where the library has
  // them); results fresh, contiguous, that dtype. Deterministic algorithms only.
  //   y  (B, O, Ho, Wo)     = conv(x (B, C, H, W), w (O, C/G, KH, KW))
  //   dx (x_shape)          = its input gradient from dy (B, O, Ho, Wo)  (= conv_transpose2d's forward)
  //   dw (w_shape)          = its weight gradient from x and dy
  virtual Tensor conv2d_forward(const Tensor& x, const Tensor& w, const ConvWindow& win);
  virtual Tensor conv2d_input_grad(const Tensor& dy, const Tensor& w, const std::vector<int64_t>& x_shape,
                                   const ConvWindow& win);
  virtual Tensor conv2d_weight_grad(const Tensor& x, const Tensor& dy, const std::vector<int64_t>& w_shape,
                                    const ConvWindow& win);

  // A 2-D pooling call over P planes (H, W) -> (OH, OW), as engine/ops/pool.cpp describes it:
  // output row oh reads input rows lo, lo + step_h, ... < hi from hspan[3*oh .. 3*oh+2] = (lo, hi,
  // padded) (padded: the count_include_pad window height); columns likewise from wspan. The mode
  // picks max (first maximum, NaN wins) or the average's divisor: the real cells (clipped), the
  // padded window (padded), `divisor` (fixed), or height then width (adaptive).
  struct PoolWindows {
    enum class Mode : uint8_t { max, avg_clipped, avg_padded, avg_fixed, avg_adaptive } mode = Mode::max;
    int64_t P = 0, H = 0, W = 0, step_h = 1, step_w = 1, divisor = 1;
    std::vector<int64_t> hspan, wspan;
  };
  // out (P, OH, OW) fresh, contiguous, x's dtype; x (P, H, W) any strides, f32 or f64. For max,
  // *indices (when not null) gets the (P, OH, OW) int64 flat h*W+w of each chosen cell.
  virtual Tensor pool2d(const Tensor& x, const PoolWindows& win, Tensor* indices);
  // dx (P, H, W) from g (P, OH, OW) (and the forward's indices for max): each input cell sums the
  // gradients of the outputs it fed in ascending (oh, ow), one thread per cell (deterministic).
  virtual Tensor pool2d_backward(const Tensor& g, const PoolWindows& win, const Tensor& indices);

  // ---- resampling: interpolate's tap tables (cuda/backend_resample.cpp) ----
  // One spatial dim of a separable resampling (engine/ops/interpolate.cpp builds these for every
  // mode): output index o reads n[o] <= K inputs idx[o*K + j] with weights w[o*K + j]. The op
  // computes the weights in the tensor's dtype; they are stored here as double, exactly.
  struct ResampleTaps {
    int64_t in = 0, out = 0, K = 1;
    std::vector<int64_t> n, idx;
    std::vector<double> w;
    bool identity = false;  // out == in and output o copies input o: the pass is a copy, as on the CPU
  };
  // out (P, OH, OW) fresh and contiguous, x's dtype, from x (P, H, W) (any strides, f32 or f64):
  // out[p][oh][ow] = sum over height taps i of wh_i * (sum over width taps j of ww_j * x[p][h_i][w_j]),
  // the width sums inside and every sum in tap order, as the CPU computes it.
  virtual Tensor resample2d(const Tensor& x, const ResampleTaps& th, const ResampleTaps& tw);
  // Its transpose: dx (P, th.in, tw.in) from g (P, OH, OW), fresh and contiguous. A gather (one
  // thread per input cell, over invert_taps' lists), so deterministic, in the CPU's order.
  virtual Tensor resample2d_backward(const Tensor& g, const ResampleTaps& th, const ResampleTaps& tw);

  // ---- flat gathers and bucketed scatter-adds: gather / scatter_add / index_add (cuda/backend_take.cpp) ----
  // The engine turns each of these ops into element offsets on the host (engine/ops/index_device.cpp),
  // where the index is anyway (its bounds are checked there).
  // out (n) fresh and contiguous, src's dtype: out[i] = src's element at flat offset offsets[i] of
  // contiguous src (any dtype). offsets: a contiguous 1-D int64 CPU tensor, each in [0, src.numel()).
  virtual Tensor take(const Tensor& src, const Tensor& offsets);
  // out: a fresh contiguous copy of x (f32 or f64) to which, for every position p in ascending
  // order, contiguous src's element sources[p] is added into out's element targets[p] (one
  // writer per output element, over bucket_by_target's lists: deterministic, the CPU's order).
  // targets, sources: contiguous 1-D int64 CPU tensors of one length.
  virtual Tensor scatter_add_flat(const Tensor& x, const Tensor& src, const Tensor& targets, const Tensor& sources);

  // ---- ms_deform_attn (cuda/backend_ms_deform_attn.cpp) ----
  // Multi-scale deformable attention as engine/ops/ms_deform_attn.h defines it (grid_sample bilinear,
  // zeros padding, align_corners=False). value (B, S, NH, HD), sampling_locations (B, Q, NH, L, P, 2),
  // attention_weights (B, Q, NH, L, P): one float dtype (f32 or f64; others throw "not implemented on
  // cuda:N yet"), any strides, on this device. level_hw: the L levels' (H, W) flattened (2L values), level_start:
  // their L start tokens in S (host values, checked by the op: prefix sums of H*W summing to S).
  // Returns out (B, Q, NH*HD), fresh and contiguous.
  virtual Tensor ms_deform_attn(const Tensor& value, const std::vector<int64_t>& level_hw,
                                const std::vector<int64_t>& level_start, const Tensor& sampling_locations,
                                const Tensor& attention_weights);
  // Its backward from g (B, Q, NH*HD): *dvalue (value's shape), *dlocations and *dweights (their
  // inputs' shapes), fresh and contiguous, each computed only when its pointer is not null. The
  // location and weight gradients are deterministic; the value gradient is a scatter whose f32 sums
  // may round differently from run to run (f32 / f64 atomics; see docs/kernels.md).
  virtual void ms_deform_attn_backward(const Tensor& g, const Tensor& value, const std::vector<int64_t>& level_hw,
                                       const std::vector<int64_t>& level_start, const Tensor& sampling_locations,
                                       const Tensor& attention_weights, Tensor* dvalue, Tensor* dlocations,
                                       Tensor* dweights);
};

// Buckets positions by target for a gather-form scatter-add over n outputs: output t sums
// sources[order[j]] for j in off[t] .. off[t+1] (off has n + 1 entries; order lists the
// sources in ascending position within each bucket). A stable counting sort, O(n + positions).
void bucket_by_target(const int64_t* targets, const int64_t* sources, int64_t positions, int64_t n,
                      std::vector<int64_t>& off, std::vector<int64_t>& order);

// The inverse of one tap table, for gathers: for input index i, the entries off[i] .. off[i+1]
// of (out_index, weight) are the taps that read i, in ascending (o, j) order (the order in which
// the CPU's scatter adds them). Shared by the CUDA backend and the tests' host transcription.
void invert_taps(const DeviceBackend::ResampleTaps& t, std::vector<int64_t>& off, std::vector<int64_t>& out_index,
                 std::vector<double>& weight);

// The backend of `device`'s type, checked to have that device. Throws std::runtime_error that
// names the device and says why when the backend is not built in or the device is absent.
DeviceBackend& get(Device device);

// True when a backend for `type` is compiled into this build (whether or not a device is present).
bool compiled_in(DeviceType type);
// Number of devices of `type` usable now (0 when not compiled in or none present).
int device_count(DeviceType type);

// Installs `b` (nullptr: none) as the backend of `type` and returns the previous one (nullptr if
// none), so a test can stand a fake in and put the real one back. The registry does not own
// backends: they must outlive their registration.
DeviceBackend* set_backend(DeviceType type, DeviceBackend* b);

// The error every op throws on a device it has no kernel for: "<op>: not implemented on cuda:0 yet".
[[noreturn]] void throw_not_implemented(const char* op, Device device);

}  // namespace rv::backend
