// cuda_backend.h: the CUDA implementation of engine/backend.h's DeviceBackend.
//
// One class, its methods spread over several files so that each op family reads on its own:
//   backend.cpp            devices, memory (the caching allocator), host <-> device copies
//   backend_basic_ops.cpp  strided copy, fill, add/sub/mul/div, sum of all elements
//   backend_<family>.cpp   one file per further op family (softmax, layernorm, rope, matmul, ...)
// Each method checks its arguments, makes the device current, allocates outputs and calls the
// plain C++ launcher of a kernel in cuda/kernels/ on the device's compute stream. Only this
// folder includes CUDA headers; engine/ sees the class through the DeviceBackend interface.
#pragma once
#include "engine/backend.h"
#include "engine/tensor.h"

namespace rv::cuda {

class CudaBackend final : public backend::DeviceBackend {
 public:
  DeviceType type() const override { return DeviceType::cuda; }

  // ---- devices and memory (backend.cpp) ------------------------------------------------------
  int device_count() const override;
  std::string unavailable_reason() const override;
  std::string device_name(int index) const override;
  backend::DeviceProperties properties(int index) const override;
  void synchronize(int index) override;
  void* allocate(size_t nbytes, int index) override;
  void deallocate(void* p, int index) override;
  void memset(void* dst, int byte, size_t nbytes, int index) override;
  void copy_from_host(void* dst, const void* src, size_t nbytes, int index) override;
  void copy_to_host(void* dst, const void* src, size_t nbytes, int index) override;
  void copy_on_device(void* dst, const void* src, size_t nbytes, int index) override;
  void copy_from_host_async(void* dst, const void* src, size_t nbytes, int index) override;
  void* allocate_pinned_host(size_t nbytes) override;
  void free_pinned_host(void* p) override;
  backend::MemoryStats memory_stats(int index) override;
  void reset_peak_stats(int index) override;
  void empty_cache(int index) override;

  // ---- basic ops (backend_basic_ops.cpp) ------------------------------------------------------
  void copy_strided(const Tensor& dst, const Tensor& src) override;
  void fill(const Tensor& dst, double value) override;
  Tensor binary(backend::BinaryOp op, const Tensor& a, const Tensor& b) override;
  Tensor sum_all(const Tensor& x) override;

  // ---- softmax and cross entropy (backend_softmax.cpp) ----------------------------------------
  Tensor softmax_last_dim(const Tensor& x, bool log) override;
  Tensor softmax_last_dim_backward(const Tensor& dy, const Tensor& y, bool log) override;
  Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index, double label_smoothing,
                       LossReduction reduction, Tensor& lse, Tensor& count) override;
  Tensor cross_entropy_backward(const Tensor& grad, const Tensor& logits, const Tensor& target, const Tensor& lse,
                                const Tensor& count, int64_t ignore_index, double label_smoothing,
                                LossReduction reduction) override;

  // ---- layernorm (backend_layernorm.cpp), activations (backend_activation.cpp) ----------------
  Tensor layer_norm_forward(const Tensor& x, int64_t C, const Tensor& weight, const Tensor& bias, double eps,
                            Tensor& mean, Tensor& rstd) override;
  void layer_norm_backward(const Tensor& dy, const Tensor& x, int64_t C, const Tensor& weight,
                           const Tensor& bias, const Tensor& mean, const Tensor& rstd, bool need_dx,
                           bool need_dweight, bool need_dbias, Tensor& dx, Tensor& dweight, Tensor& dbias) override;
  Tensor activation_forward(Activation a, const Tensor& x) override;
  Tensor activation_backward(Activation a, const Tensor& saved, const Tensor& dy) override;

  // ---- rotary embedding (backend_rope.cpp) ----
  Tensor rope_rotate(const Tensor& x, const Tensor& angles, int64_t skip_tokens, bool inverse) override;
  void rope_rotate_qk(const Tensor& q, const Tensor& k, const Tensor& angles, int64_t skip_tokens, bool inverse,
                      Tensor& q_out, Tensor& k_out) override;
  Tensor rope_angles_grad(const Tensor& g, const Tensor& x, const Tensor& angles, int64_t skip_tokens) override;
  Tensor rope_angles_grad_qk(const Tensor& gq, const Tensor& q, const Tensor& gk, const Tensor& k,
                             const Tensor& angles, int64_t skip_tokens) override;
  Tensor rope_angles(const Tensor& freqs, const Tensor& pos) override;
  void rope_angles_backward(const Tensor& g, const Tensor& freqs, const Tensor& pos, Tensor* dfreqs,
                            Tensor* dpos) override;

  // ---- optim, reductions, unary math (backend_optim.cpp, backend_reduce_unary.cpp) ------------
  Tensor unary(UnaryOp op, const Tensor& x, double a, double b) override;
  Tensor unary_backward(UnaryOp op, const Tensor& g, const Tensor& s, double a, double b) override;
  Tensor sum_dims(const Tensor& x, const std::vector<bool>& reduced, bool keepdim) override;
  void adamw_step(const std::vector<AdamWParam>& params) override;
  Tensor l2_norm_multi(const std::vector<Tensor>& tensors) override;
  void scale_by_norm(const std::vector<Tensor>& tensors, const Tensor& norm, double max_norm) override;

  // ---- matmul (backend_matmul.cpp) -----------------------------------------------------------
  void set_matmul_impl(MatmulImpl impl) override;
  MatmulImpl matmul_impl() const override;
  Tensor gemm(const Tensor& a, const Tensor& b, const Tensor& bias, bool gelu) override;
  Tensor column_sum(const Tensor& x) override;

  // ---- conversion, comparisons, where, max/min along a dim, dropout (backend_select_ops.cpp) ----
  void convert(const Tensor& dst, const Tensor& src) override;
  Tensor compare(CompareOp op, const Tensor& a, const Tensor& b) override;
  Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) override;
  void minmax_dim(const Tensor& x, int64_t dim, bool keepdim, bool is_max, bool want_values, Tensor& values,
                  Tensor& indices) override;
  Tensor minmax_dim_backward(const Tensor& g, const Tensor& indices, const std::vector<int64_t>& in_shape,
                             int64_t dim) override;
  Tensor dropout_apply(const Tensor& x, uint64_t seed, uint64_t stream, uint64_t offset, double keep,
                       int64_t group) override;

  // ---- indexing, convolution windows, pooling (backend_spatial.cpp) ---------------------------
  Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) override;
  Tensor index_select_backward(const Tensor& g, int64_t dim, const Tensor& index, const Shape& x_shape) override;
  Tensor im2col(const Tensor& x, const ConvWindow& win) override;
  Tensor col2im(const Tensor& cols, const Shape& x_shape, const ConvWindow& win) override;
  // ---- convolution by cuDNN (backend_conv.cpp) ----------------------------------------------
  void set_conv_impl(ConvImpl impl) override;
  ConvImpl conv_impl() const override;
  Tensor conv2d_forward(const Tensor& x, const Tensor& w, const ConvWindow& win) override;
  Tensor conv2d_input_grad(const Tensor& dy, const Tensor& w, const Shape& x_shape, const ConvWindow& win) override;
  Tensor conv2d_weight_grad(const Tensor& x, const Tensor& dy, const Shape& w_shape, const ConvWindow& win) override;
  Tensor pool2d(const Tensor& x, const PoolWindows& win, Tensor* indices) override;
  Tensor pool2d_backward(const Tensor& g, const PoolWindows& win, const Tensor& indices) override;

  // ---- resampling: interpolate (backend_resample.cpp) -----------------------------------------
  Tensor resample2d(const Tensor& x, const ResampleTaps& th, const ResampleTaps& tw) override;
  Tensor resample2d_backward(const Tensor& g, const ResampleTaps& th, const ResampleTaps& tw) override;

  // ---- flat gather and bucketed scatter-add: gather / scatter_add / index_add (backend_take.cpp) ----
  Tensor take(const Tensor& src, const Tensor& offsets) override;
  Tensor scatter_add_flat(const Tensor& x, const Tensor& src, const Tensor& targets, const Tensor& sources) override;

  // ---- ms_deform_attn (backend_ms_deform_attn.cpp) ----
  Tensor ms_deform_attn(const Tensor& value, const std::vector<int64_t>& level_hw,
                        const std::vector<int64_t>& level_start, const Tensor& sampling_locations,
                        const Tensor& attention_weights) override;
  void ms_deform_attn_backward(const Tensor& g, const Tensor& value, const std::vector<int64_t>& level_hw,
                               const std::vector<int64_t>& level_start, const Tensor& sampling_locations,
                               const Tensor& attention_weights, Tensor* dvalue, Tensor* dlocations,
                               Tensor* dweights) override;
};

// Argument helpers shared by the backend_*.cpp files.
// Element strides of `t` read as `shape` (t broadcast to it: stride 0 in the broadcast dims).
Shape broadcast_strides_to(const Tensor& t, const Shape& shape);
// The broadcast of two shapes; throws naming `op` when they do not broadcast.
Shape broadcast_shape(const Shape& a, const Shape& b, const char* op);
// Throws "<op>: dtype X is not implemented on cuda:N yet (f32 and f64 are)" for other dtypes.
void require_float32_or_64(const Tensor& t, const char* op);

}  // namespace rv::cuda
