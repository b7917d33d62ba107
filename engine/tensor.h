// tensor.h: the Tensor handle.
//
// A Tensor is a cheap, shared handle (like torch.Tensor) to a TensorImpl that holds
//   storage (shared memory) + offset + shape + strides  -> where the elements are
//   dtype + device                                      -> what they are
//   requires_grad + grad + grad_fn                      -> autograd bookkeeping
// Offsets and strides count elements, not bytes. Copying a Tensor copies the handle; two
// handles to the same impl see the same data and the same grad.
//
// View ops (reshape, permute, narrow, expand, ...) are declared here as methods and return
// tensors that share storage. They are recorded by autograd like any other op, so gradients
// flow back through them. All other ops are free functions in engine/ops/*.h.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/storage.h"

namespace rv {

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape& s);  // "[2, 3]"
int64_t shape_numel(const Shape& s);
Shape contiguous_strides(const Shape& s);

namespace autograd { struct Node; }

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;
  Shape shape;
  Shape strides;
  DType dtype = DType::f32;

  // autograd
  bool requires_grad = false;                 // true on leaves that want .grad, and on op outputs
  std::shared_ptr<TensorImpl> grad;           // accumulated gradient (leaves only)
  std::shared_ptr<autograd::Node> grad_fn;    // the op that made this tensor (non-leaves only)
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  bool defined() const { return impl_ != nullptr; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& o) const { return impl_ == o.impl_; }

  // ---- metadata ----------------------------------------------------------------------------
  const Shape& shape() const { return checked()->shape; }
  const Shape& strides() const { return checked()->strides; }
  int64_t dim() const { return int64_t(shape().size()); }
  int64_t size(int64_t d) const;      // negative d counts from the end
  int64_t stride(int64_t d) const;
  int64_t numel() const { return shape_numel(shape()); }
  int64_t offset() const { return checked()->offset; }
  DType dtype() const { return checked()->dtype; }
  Device device() const { return checked()->storage->device(); }
  size_t itemsize() const { return dtype_size(dtype()); }
  bool is_contiguous() const;
  const std::shared_ptr<Storage>& storage() const { return checked()->storage; }

  // Host pointer to the first element, typed, for CPU kernels. Throws if T does not match the
  // dtype, and if the tensor lives on a device: a CPU kernel reached with a device tensor is an
  // op that has no kernel for that device yet (see engine/backend.h), never a silent copy.
  template <class T> T* data() const {
    if (dtype_of<T>() != dtype())
      throw std::runtime_error(std::string("Tensor::data<") + dtype_name(dtype_of<T>()) +
                               ">: tensor has dtype " + dtype_name(dtype()));
    if (!storage()->device().is_cpu()) throw_not_on_host();
    return static_cast<T*>(storage()->data()) + offset();
  }
  void* raw_data() const {
    if (!storage()->device().is_cpu()) throw_not_on_host();
    return static_cast<char*>(storage()->data()) + offset() * int64_t(itemsize());
  }
  // Address of the first element on whatever device holds it (for device backends).
  void* device_data() const {
    return static_cast<char*>(storage()->data()) + offset() * int64_t(itemsize());
  }

  // ---- values ------------------------------------------------------------------------------
  double item() const;                          // a one-element tensor's value, as double
  template <class T> std::vector<T> to_vector() const;  // row-major copy (T must match dtype)
  std::vector<double> to_double_vector() const; // any dtype, row-major
  std::string str() const;                      // PyTorch-like printout

  // ---- autograd ----------------------------------------------------------------------------
  bool requires_grad() const { return checked()->requires_grad; }
  Tensor& requires_grad_(bool on = true);       // only on leaves
  bool is_leaf() const { return checked()->grad_fn == nullptr; }
  Tensor grad() const;                          // undefined until a backward reaches this leaf
  void set_grad(const Tensor& g);
  void zero_grad();                             // drops the gradient (as set_to_none=True)
  // Runs the backward pass from this tensor. Without `grad_output` the tensor must hold one
  // element (a loss); the seed gradient is then 1.
  void backward(const Tensor& grad_output = Tensor()) const;
  Tensor detach() const;                        // same storage, no graph

  // ---- views (share storage; recorded by autograd) ----------------------------------------
  Tensor view(const Shape& shape) const;        // needs compatible strides; -1 infers one dim
  Tensor reshape(const Shape& shape) const;     // view when possible, else a copy
  Tensor permute(const Shape& dims) const;
  Tensor transpose(int64_t a, int64_t b) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor select(int64_t dim, int64_t index) const;  // removes `dim`
  Tensor expand(const Shape& shape) const;      // -1 keeps a size; size-1 dims broadcast
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;            // only if size(dim) == 1
  Tensor squeeze() const;                       // all size-1 dims
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;
  Tensor t() const { return transpose(-2, -1); }
  Tensor as_strided(const Shape& shape, const Shape& strides, int64_t offset) const;

  // ---- copies ------------------------------------------------------------------------------
  Tensor contiguous() const;                    // itself if already contiguous
  Tensor clone() const;                         // always a fresh contiguous copy
  Tensor to(DType dt) const;                    // differentiable between float dtypes
  // A copy on `device` (itself if already there), same shape, contiguous. Host <-> device copies
  // are complete (for the host) when this returns: from pinned memory (pin_memory()) one direct
  // DMA, from ordinary memory through pinned staging. Not recorded by autograd.
  Tensor to(Device device) const;
  // As to(device), but a host -> device copy from pinned memory may return once it is queued
  // (torch's non_blocking=True): the host must not write this tensor until the device has
  // caught up. For batches from a loader with pin_memory.
  Tensor to(Device device, bool non_blocking) const;
  // A copy of this host tensor in page-locked memory (itself if it already is), as torch's
  // pin_memory(); needs a CUDA device. is_pinned(): whether the memory is page-locked.
  Tensor pin_memory() const;
  bool is_pinned() const;
  Tensor cuda(int index = 0) const { return to(cuda_device(index)); }
  Tensor cpu() const { return to(cpu_device()); }

  // ---- in-place (refused on tensors that require grad while grad mode is on) ---------------
  Tensor& copy_(const Tensor& src);             // broadcasts src, converts dtype
  Tensor& fill_(double value);
  Tensor& zero_() { return fill_(0.0); }

 private:
  [[noreturn]] void throw_not_on_host() const;
  TensorImpl* checked() const {
    if (!impl_) throw std::runtime_error("use of an undefined Tensor");
    return impl_.get();
  }
  std::shared_ptr<TensorImpl> impl_;
};

// Normalises a possibly negative dim against `ndim`, naming `op` in the error.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op);

// ---- factories ------------------------------------------------------------------------------
Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device{});
// Uninitialised host memory, page-locked for cuda:0 (see Tensor::pin_memory).
Tensor empty_pinned(const Shape& shape, DType dtype = DType::f32);
Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device{});
Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device{});
Tensor full(const Shape& shape, double value, DType dtype = DType::f32, Device device = Device{});
Tensor scalar_tensor(double value, DType dtype = DType::f32);  // shape []
Tensor arange(double start, double end, double step = 1.0, DType dtype = DType::f32);
Tensor arange(int64_t end, DType dtype = DType::i64);
// Copies a host buffer; values are converted from double to `dtype`.
Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f32);
Tensor from_vector(const std::vector<float>& values, const Shape& shape);
Tensor from_vector(const std::vector<int64_t>& values, const Shape& shape);
Tensor zeros_like(const Tensor& t);  // the *_like factories keep t's device
Tensor ones_like(const Tensor& t);
Tensor empty_like(const Tensor& t);

}  // namespace rv
