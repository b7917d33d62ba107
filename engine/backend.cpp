// backend.cpp: the backend registry, and the one place in engine/ that knows whether the CUDA
// backend was compiled in (RV_HAVE_CUDA, set by CMake only when cuda/ is built).
#include "engine/backend.h"

#include <array>
#include <mutex>
#include <stdexcept>

#include "engine/tensor.h"

#ifdef RV_HAVE_CUDA
namespace rv::cuda {
// Defined in cuda/backend.cpp: the CUDA backend (making it queries no device yet).
backend::DeviceBackend* cuda_backend();
}  // namespace rv::cuda
#endif

namespace rv::backend {

namespace {

constexpr size_t kTypes = 2;  // DeviceType::cpu, DeviceType::cuda

std::array<DeviceBackend*, kTypes>& table() {
  static std::array<DeviceBackend*, kTypes> t{};
  return t;
}

// Registers the backends built into this program, once, before the first lookup.
void register_builtin() {
  static std::once_flag once;
  std::call_once(once, [] {
#ifdef RV_HAVE_CUDA
    table()[size_t(DeviceType::cuda)] = cuda::cuda_backend();
#endif
  });
}

const char* type_name(DeviceType t) { return t == DeviceType::cpu ? "cpu" : "cuda"; }

}  // namespace

const char* binary_op_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
    case BinaryOp::div: return "div";
  }
  return "?";
}

DeviceBackend* set_backend(DeviceType type, DeviceBackend* b) {
  if (type == DeviceType::cpu)
    throw std::invalid_argument("set_backend: the CPU is not a pluggable backend (its kernels live in engine/cpu)");
  if (b && b->type() != type)
    throw std::invalid_argument(std::string("set_backend: a ") + type_name(b->type()) + " backend given for " +
                                type_name(type));
  register_builtin();  // so that a later lookup does not overwrite `b` with the built-in one
  DeviceBackend*& slot = table()[size_t(type)];
  DeviceBackend* prev = slot;
  slot = b;
  return prev;
}

bool compiled_in(DeviceType type) {
  register_builtin();
  return type == DeviceType::cpu || table()[size_t(type)] != nullptr;
}

int device_count(DeviceType type) {
  if (type == DeviceType::cpu) return 1;
  register_builtin();
  DeviceBackend* b = table()[size_t(type)];
  return b ? b->device_count() : 0;
}

DeviceBackend& get(Device device) {
  if (device.is_cpu())
    throw std::logic_error("backend::get: the CPU has no device backend; CPU kernels are called directly");
  register_builtin();
  DeviceBackend* b = table()[size_t(device.type)];
  if (!b)
    throw std::runtime_error(device.str() + ": this build has no " + type_name(device.type) +
                             " backend (configure with -DROPEVIT_CUDA=ON on a machine with nvcc)");
  const int n = b->device_count();
  if (n == 0) throw std::runtime_error(device.str() + ": no CUDA device is available (" + b->unavailable_reason() + ")");
  if (device.index < 0 || device.index >= n)
    throw std::runtime_error(device.str() + ": no such device (this machine has " + std::to_string(n) + " " +
                             type_name(device.type) + " device" + (n == 1 ? "" : "s") + ")");
  return *b;
}

void throw_not_implemented(const char* op, Device device) {
  throw std::runtime_error(std::string(op) + ": not implemented on " + device.str() + " yet");
}

// ---- default op entries: a backend overrides the ones it has kernels for -------------------------

void DeviceBackend::copy_from_host_async(void* dst, const void* src, size_t nbytes, int index) {
  copy_from_host(dst, src, nbytes, index);
}
void* DeviceBackend::allocate_pinned_host(size_t) {
  throw std::runtime_error("pin_memory: page-locked host memory is not implemented by the " +
                           std::string(type() == DeviceType::cuda ? "cuda" : "cpu") + " backend in this build");
}
void DeviceBackend::free_pinned_host(void*) {
  throw std::logic_error("free_pinned_host: this backend allocates no pinned memory");
}

DeviceProperties DeviceBackend::properties(int index) const {
  DeviceProperties p;
  p.name = device_name(index);
  return p;
}
void DeviceBackend::copy_strided(const Tensor& dst, const Tensor&) { throw_not_implemented("copy", dst.device()); }
void DeviceBackend::fill(const Tensor& dst, double) { throw_not_implemented("fill_", dst.device()); }
Tensor DeviceBackend::binary(BinaryOp op, const Tensor& a, const Tensor&) {
  throw_not_implemented(binary_op_name(op), a.device());
}
Tensor DeviceBackend::sum_all(const Tensor& x) { throw_not_implemented("sum", x.device()); }

// ---- softmax and cross entropy ----
Tensor DeviceBackend::softmax_last_dim(const Tensor& x, bool log) {
  throw_not_implemented(log ? "log_softmax" : "softmax", x.device());
}
Tensor DeviceBackend::softmax_last_dim_backward(const Tensor& dy, const Tensor&, bool log) {
  throw_not_implemented(log ? "log_softmax backward" : "softmax backward", dy.device());
}
Tensor DeviceBackend::cross_entropy(const Tensor& logits, const Tensor&, int64_t, double, LossReduction, Tensor&,
                                    Tensor&) {
  throw_not_implemented("cross_entropy", logits.device());
}
Tensor DeviceBackend::cross_entropy_backward(const Tensor&, const Tensor& logits, const Tensor&, const Tensor&,
                                             const Tensor&, int64_t, double, LossReduction) {
  throw_not_implemented("cross_entropy backward", logits.device());
}

// ---- layernorm, activations ----------------------------------------------------------------------

Tensor DeviceBackend::layer_norm_forward(const Tensor& x, int64_t, const Tensor&, const Tensor&, double, Tensor&,
                                         Tensor&) {
  throw_not_implemented("layer_norm", x.device());
}
void DeviceBackend::layer_norm_backward(const Tensor&, const Tensor& x, int64_t, const Tensor&, const Tensor&,
                                        const Tensor&, const Tensor&, bool, bool, bool, Tensor&, Tensor&, Tensor&) {
  throw_not_implemented("layer_norm backward", x.device());
}
const char* DeviceBackend::activation_name(Activation a) {
  switch (a) {
    case Activation::gelu: return "gelu";
    case Activation::gelu_tanh: return "gelu";
    case Activation::relu: return "relu";
    case Activation::silu: return "silu";
    case Activation::sigmoid: return "sigmoid";
  }
  return "?";
}
bool DeviceBackend::activation_saves_output(Activation a) {
  return a == Activation::relu || a == Activation::sigmoid;
}
Tensor DeviceBackend::activation_forward(Activation a, const Tensor& x) {
  throw_not_implemented(activation_name(a), x.device());
}
Tensor DeviceBackend::activation_backward(Activation a, const Tensor& x, const Tensor&) {
  throw_not_implemented((std::string(activation_name(a)) + " backward").c_str(), x.device());
}

// ---- rotary embedding ----
Tensor DeviceBackend::rope_rotate(const Tensor& x, const Tensor&, int64_t, bool) {
  throw_not_implemented("rope_apply", x.device());
}
void DeviceBackend::rope_rotate_qk(const Tensor& q, const Tensor&, const Tensor&, int64_t, bool, Tensor&, Tensor&) {
  throw_not_implemented("rope_apply", q.device());
}
Tensor DeviceBackend::rope_angles_grad(const Tensor& g, const Tensor&, const Tensor&, int64_t) {
  throw_not_implemented("rope_apply backward", g.device());
}
Tensor DeviceBackend::rope_angles_grad_qk(const Tensor& gq, const Tensor&, const Tensor&, const Tensor&,
                                          const Tensor&, int64_t) {
  throw_not_implemented("rope_apply backward", gq.device());
}
Tensor DeviceBackend::rope_angles(const Tensor& freqs, const Tensor&) {
  throw_not_implemented("rope_angles", freqs.device());
}
void DeviceBackend::rope_angles_backward(const Tensor& g, const Tensor&, const Tensor&, Tensor*, Tensor*) {
  throw_not_implemented("rope_angles backward", g.device());
}

// ---- optim, reductions, unary math ---------------------------------------------------------------

const char* DeviceBackend::unary_op_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg: return "neg";
    case UnaryOp::exp: return "exp";
    case UnaryOp::log: return "log";
    case UnaryOp::sqrt: return "sqrt";
    case UnaryOp::rsqrt: return "rsqrt";
    case UnaryOp::abs: return "abs";
    case UnaryOp::tanh: return "tanh";
    case UnaryOp::add_scalar: return "add";
    case UnaryOp::mul_scalar: return "mul";
    case UnaryOp::rsub_scalar: return "sub";
    case UnaryOp::rdiv_scalar: return "div";
    case UnaryOp::pow_scalar: return "pow";
    case UnaryOp::clamp: return "clamp";
  }
  return "?";
}
Tensor DeviceBackend::unary(UnaryOp op, const Tensor& x, double, double) {
  throw_not_implemented(unary_op_name(op), x.device());
}
Tensor DeviceBackend::unary_backward(UnaryOp op, const Tensor& g, const Tensor&, double, double) {
  throw_not_implemented(unary_op_name(op), g.device());
}
Tensor DeviceBackend::sum_dims(const Tensor& x, const std::vector<bool>&, bool) {
  throw std::runtime_error("sum: reducing over some dims only is not implemented on " + x.device().str() + " yet");
}
void DeviceBackend::adamw_step(const std::vector<AdamWParam>& params) {
  throw_not_implemented("AdamW", params.empty() ? Device{DeviceType::cuda, 0} : params[0].param->device());
}
Tensor DeviceBackend::l2_norm_multi(const std::vector<Tensor>& tensors) {
  throw_not_implemented("clip_grad_norm_", tensors.empty() ? Device{DeviceType::cuda, 0} : tensors[0].device());
}
void DeviceBackend::scale_by_norm(const std::vector<Tensor>&, const Tensor& norm, double) {
  throw_not_implemented("clip_grad_norm_", norm.device());
}

// ---- matmul ----
void DeviceBackend::set_matmul_impl(MatmulImpl) {
  throw std::runtime_error("matmul: this backend has no choice of matmul implementation");
}
DeviceBackend::MatmulImpl DeviceBackend::matmul_impl() const { return MatmulImpl::ours; }
Tensor DeviceBackend::gemm(const Tensor& a, const Tensor&, const Tensor&, bool) {
  throw_not_implemented("matmul", a.device());
}
Tensor DeviceBackend::column_sum(const Tensor& x) { throw_not_implemented("linear (bias gradient)", x.device()); }

// ---- conversion, comparisons, where, max/min along a dim, dropout ----
void DeviceBackend::convert(const Tensor& dst, const Tensor& src) {
  throw std::runtime_error(std::string("to(dtype): converting ") + dtype_name(src.dtype()) + " to " +
                           dtype_name(dst.dtype()) + " is not implemented on " + dst.device().str() + " yet");
}
const char* DeviceBackend::compare_op_name(CompareOp op) {
  switch (op) {
    case CompareOp::eq: return "eq";
    case CompareOp::ne: return "ne";
    case CompareOp::lt: return "lt";
    case CompareOp::le: return "le";
    case CompareOp::gt: return "gt";
    case CompareOp::ge: return "ge";
  }
  return "?";
}
Tensor DeviceBackend::compare(CompareOp op, const Tensor& a, const Tensor&) {
  throw_not_implemented(compare_op_name(op), a.device());
}
Tensor DeviceBackend::where(const Tensor& cond, const Tensor&, const Tensor&) {
  throw_not_implemented("where", cond.device());
}
void DeviceBackend::minmax_dim(const Tensor& x, int64_t, bool, bool is_max, bool, Tensor&, Tensor&) {
  throw_not_implemented(is_max ? "max" : "min", x.device());
}
Tensor DeviceBackend::minmax_dim_backward(const Tensor& g, const Tensor&, const std::vector<int64_t>&,
                                          int64_t) {
  throw_not_implemented("max/min backward", g.device());
}
Tensor DeviceBackend::dropout_apply(const Tensor& x, uint64_t, uint64_t, uint64_t, double, int64_t group) {
  throw_not_implemented(group == 1 ? "dropout" : "drop_path", x.device());
}

// ---- indexing, convolution windows, pooling ----
Tensor DeviceBackend::index_select(const Tensor& x, int64_t, const Tensor&) {
  throw_not_implemented("index_select", x.device());
}
Tensor DeviceBackend::index_select_backward(const Tensor& g, int64_t, const Tensor&, const Shape&) {
  throw_not_implemented("index_select backward", g.device());
}
Tensor DeviceBackend::im2col(const Tensor& x, const ConvWindow&) { throw_not_implemented("conv2d", x.device()); }
Tensor DeviceBackend::col2im(const Tensor& cols, const Shape&, const ConvWindow&) {
  throw_not_implemented("conv2d backward", cols.device());
}
void DeviceBackend::set_conv_impl(ConvImpl impl) {
  if (impl != ConvImpl::ours)
    throw std::runtime_error("conv2d: this backend has no vendor convolution library (only ours)");
}
DeviceBackend::ConvImpl DeviceBackend::conv_impl() const { return ConvImpl::ours; }
Tensor DeviceBackend::conv2d_forward(const Tensor& x, const Tensor&, const ConvWindow&) {
  throw_not_implemented("conv2d (vendor library)", x.device());
}
Tensor DeviceBackend::conv2d_input_grad(const Tensor& dy, const Tensor&, const Shape&, const ConvWindow&) {
  throw_not_implemented("conv2d input gradient (vendor library)", dy.device());
}
Tensor DeviceBackend::conv2d_weight_grad(const Tensor& x, const Tensor&, const Shape&, const ConvWindow&) {
  throw_not_implemented("conv2d weight gradient (vendor library)", x.device());
}
Tensor DeviceBackend::pool2d(const Tensor& x, const PoolWindows& win, Tensor*) {
  throw_not_implemented(win.mode == PoolWindows::Mode::max ? "max_pool2d" : "avg_pool2d", x.device());
}
Tensor DeviceBackend::pool2d_backward(const Tensor& g, const PoolWindows& win, const Tensor&) {
  throw_not_implemented(win.mode == PoolWindows::Mode::max ? "max_pool2d backward" : "avg_pool2d backward",
                        g.device());
}

// ---- resampling ----
Tensor DeviceBackend::resample2d(const Tensor& x, const ResampleTaps&, const ResampleTaps&) {
  throw_not_implemented("interpolate", x.device());
}
Tensor DeviceBackend::resample2d_backward(const Tensor& g, const ResampleTaps&, const ResampleTaps&) {
  throw_not_implemented("interpolate backward", g.device());
}

void invert_taps(const DeviceBackend::ResampleTaps& t, std::vector<int64_t>& off, std::vector<int64_t>& out_index,
                 std::vector<double>& weight) {
  off.assign(static_cast<size_t>(t.in) + 1, 0);
  for (int64_t o = 0; o < t.out; ++o)
    for (int64_t j = 0; j < t.n[size_t(o)]; ++j) ++off[size_t(t.idx[size_t(o * t.K + j)]) + 1];
  for (int64_t i = 0; i < t.in; ++i) off[size_t(i) + 1] += off[size_t(i)];
  out_index.assign(size_t(off[size_t(t.in)]), 0);
  weight.assign(size_t(off[size_t(t.in)]), 0.0);
  std::vector<int64_t> next(off.begin(), off.end() - 1);
  for (int64_t o = 0; o < t.out; ++o)
    for (int64_t j = 0; j < t.n[size_t(o)]; ++j) {
      const size_t e = size_t(o * t.K + j);
      const size_t at = size_t(next[size_t(t.idx[e])]++);
      out_index[at] = o;
      weight[at] = t.w[e];
    }
}

// ---- flat gathers and bucketed scatter-adds ----
Tensor DeviceBackend::take(const Tensor& src, const Tensor&) { throw_not_implemented("gather", src.device()); }
Tensor DeviceBackend::scatter_add_flat(const Tensor& x, const Tensor&, const Tensor&, const Tensor&) {
  throw_not_implemented("scatter_add", x.device());
}

void bucket_by_target(const int64_t* targets, const int64_t* sources, int64_t positions, int64_t n,
                      std::vector<int64_t>& off, std::vector<int64_t>& order) {
  off.assign(static_cast<size_t>(n) + 1, 0);
  for (int64_t p = 0; p < positions; ++p) ++off[size_t(targets[p]) + 1];
  for (int64_t t = 0; t < n; ++t) off[size_t(t) + 1] += off[size_t(t)];
  order.assign(static_cast<size_t>(positions), 0);
  std::vector<int64_t> next(off.begin(), off.end() - 1);
  for (int64_t p = 0; p < positions; ++p) order[size_t(next[size_t(targets[p])]++)] = sources[p];
}

// ---- ms_deform_attn ----
Tensor DeviceBackend::ms_deform_attn(const Tensor& value, const std::vector<int64_t>&, const std::vector<int64_t>&,
                                     const Tensor&, const Tensor&) {
  throw_not_implemented("ms_deform_attn", value.device());
}
void DeviceBackend::ms_deform_attn_backward(const Tensor& g, const Tensor&, const std::vector<int64_t>&,
                                            const std::vector<int64_t>&, const Tensor&, const Tensor&, Tensor*,
                                            Tensor*, Tensor*) {
  throw_not_implemented("ms_deform_attn backward", g.device());
}

}  // namespace rv::backend
