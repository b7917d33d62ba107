// tensor.cpp: Tensor metadata, views, copies and factories.
#include "engine/tensor.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <sstream>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/loops.h"
#include "engine/ops/reduce.h"

namespace rv {

// ---- shapes -------------------------------------------------------------------------------------

std::string shape_str(const Shape& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

int64_t shape_numel(const Shape& s) {
  int64_t n = 1;
  for (int64_t d : s) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& s) {
  Shape st(s.size());
  int64_t acc = 1;
  for (int64_t d = int64_t(s.size()) - 1; d >= 0; --d) {
    st[d] = acc;
    acc *= s[d] > 1 ? s[d] : 1;
  }
  return st;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char* op) {
  int64_t lo = ndim == 0 ? -1 : -ndim, hi = ndim == 0 ? 0 : ndim - 1;
  if (dim < lo || dim > hi)
    throw std::out_of_range(std::string(op) + ": dim " + std::to_string(dim) + " is out of range for a " +
                            std::to_string(ndim) + "-d tensor (expected " + std::to_string(lo) + ".." +
                            std::to_string(hi) + ")");
  return dim < 0 ? dim + (ndim == 0 ? 1 : ndim) : dim;
}

// ---- metadata -----------------------------------------------------------------------------------

int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;  // no elements, no layout (as PyTorch); empty() itself makes such strides
  int64_t expected = 1;
  for (int64_t d = dim() - 1; d >= 0; --d) {
    if (shape()[d] == 1) continue;
    if (strides()[d] != expected) return false;
    expected *= shape()[d];
  }
  return true;
}

namespace {

Tensor make_view(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.storage();
  impl->offset = offset;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->dtype = base.dtype();
  return Tensor(impl);
}

// Strides for viewing `t` as `shape` without a copy, or an empty optional-like flag.
bool view_strides(const Tensor& t, const Shape& shape, Shape& out) {
  if (t.is_contiguous()) {
    out = contiguous_strides(shape);
    return true;
  }
  // General rule (as in PyTorch's computeStride): walk both shapes from the right, grouping
  // old dims that are contiguous with each other into chunks the new shape may split or merge.
  const Shape& os = t.shape();
  const Shape& ost = t.strides();
  out.assign(shape.size(), 0);
  int64_t view_d = int64_t(shape.size()) - 1;
  int64_t chunk_base_stride = ost.empty() ? 1 : ost.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t td = int64_t(os.size()) - 1; td >= 0; --td) {
    tensor_numel *= os[td];
    if (td == 0 || (os[td - 1] != 1 && ost[td - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (td > 0) {
        chunk_base_stride = ost[td - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

Shape infer_shape(const Shape& shape, int64_t numel, const char* op) {
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      if (infer >= 0) throw std::invalid_argument(std::string(op) + ": only one dimension can be -1");
      infer = int64_t(i);
    } else if (s[i] < 0) {
      throw std::invalid_argument(std::string(op) + ": invalid size " + std::to_string(s[i]));
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel % known != 0)
      throw std::invalid_argument(std::string(op) + ": cannot infer -1 in " + shape_str(shape) + " for " +
                                  std::to_string(numel) + " elements");
    s[infer] = numel / known;
  }
  if (shape_numel(s) != numel)
    throw std::invalid_argument(std::string(op) + ": shape " + shape_str(shape) + " is invalid for " +
                                std::to_string(numel) + " elements");
  return s;
}

}  // namespace

// ---- views --------------------------------------------------------------------------------------

Tensor Tensor::view(const Shape& shape_in) const {
  Shape shape = infer_shape(shape_in, numel(), "view");
  Shape st;
  if (!view_strides(*this, shape, st))
    throw std::runtime_error("view: cannot view a tensor of shape " + shape_str(this->shape()) + " and strides " +
                             shape_str(strides()) + " as " + shape_str(shape) + " without a copy; use reshape()");
  Tensor out = make_view(*this, shape, st, offset());
  if (auto rec = autograd::Recorder("view", {*this})) {
    Shape in_shape = this->shape();
    rec.finish(out, [in_shape](const Tensor& g, const autograd::Needs&) -> autograd::Grads {
      return {g.reshape(in_shape)};
    });
  }
  return out;
}

Tensor Tensor::reshape(const Shape& shape_in) const {
  Shape shape = infer_shape(shape_in, numel(), "reshape");
  Shape st;
  if (view_strides(*this, shape, st)) return view(shape);
  return clone().view(shape);
}

Tensor Tensor::permute(const Shape& dims) const {
  const int64_t n = dim();
  if (int64_t(dims.size()) != n)
    throw std::invalid_argument("permute: expected " + std::to_string(n) + " dims, got " + shape_str(dims));
  Shape shape(n), st(n), inverse(n);
  std::vector<bool> used(n, false);
  for (int64_t i = 0; i < n; ++i) {
    int64_t d = wrap_dim(dims[i], n, "permute");
    if (used[d]) throw std::invalid_argument("permute: dim " + std::to_string(d) + " repeated in " + shape_str(dims));
    used[d] = true;
    shape[i] = this->shape()[d];
    st[i] = strides()[d];
    inverse[d] = i;
  }
  Tensor out = make_view(*this, shape, st, offset());
  if (auto rec = autograd::Recorder("permute", {*this})) {
    rec.finish(out, [inverse](const Tensor& g, const autograd::Needs&) -> autograd::Grads {
      return {g.permute(inverse)};
    });
  }
  return out;
}

Tensor Tensor::transpose(int64_t a, int64_t b) const {
  const int64_t n = dim();
  a = wrap_dim(a, n, "transpose");
  b = wrap_dim(b, n, "transpose");
  Shape dims(n);
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[a], dims[b]);
  return permute(dims);
}

Tensor Tensor::slice(int64_t d, int64_t start, int64_t end, int64_t step) const {
  d = wrap_dim(d, dim(), "slice");
  if (step <= 0) throw std::invalid_argument("slice: step must be positive, got " + std::to_string(step));
  const int64_t n = shape()[d];
  // Python slice semantics: negative indices count from the end, out-of-range ones clamp.
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  int64_t len = (end - start + step - 1) / step;
  Shape shape = this->shape(), st = strides();
  shape[d] = len;
  st[d] *= step;
  Tensor out = make_view(*this, shape, st, offset() + start * strides()[d]);
  if (auto rec = autograd::Recorder("slice", {*this})) {
    Shape in_shape = this->shape();
    DType dt = dtype();
    rec.finish(out, [in_shape, dt, d, start, end, step](const Tensor& g, const autograd::Needs&) -> autograd::Grads {
      Tensor gi = zeros(in_shape, dt, g.device());
      gi.slice(d, start, end, step).copy_(g);
      return {gi};
    });
  }
  return out;
}

Tensor Tensor::narrow(int64_t d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim(), "narrow");
  const int64_t n = shape()[d];
  if (start < 0) start += n;
  if (start < 0 || length < 0 || start + length > n)
    throw std::out_of_range("narrow: start " + std::to_string(start) + " + length " + std::to_string(length) +
                            " exceeds size " + std::to_string(n) + " of dim " + std::to_string(d));
  return slice(d, start, start + length);
}

Tensor Tensor::select(int64_t d, int64_t index) const {
  d = wrap_dim(d, dim(), "select");
  const int64_t n = shape()[d];
  if (index < -n || index >= n)
    throw std::out_of_range("select: index " + std::to_string(index) + " is out of range for dim " +
                            std::to_string(d) + " of size " + std::to_string(n));
  if (index < 0) index += n;
  return narrow(d, index, 1).squeeze(d);
}

Tensor Tensor::expand(const Shape& shape_in) const {
  const int64_t n = dim(), m = int64_t(shape_in.size());
  if (m < n)
    throw std::invalid_argument("expand: target " + shape_str(shape_in) + " has fewer dims than " + shape_str(shape()));
  Shape shape(m), st(m);
  for (int64_t i = m - 1; i >= 0; --i) {
    int64_t j = i - (m - n);
    int64_t want = shape_in[i];
    if (j >= 0) {
      int64_t have = this->shape()[j];
      if (want == -1) want = have;
      if (have == want) {
        st[i] = strides()[j];
      } else if (have == 1) {
        st[i] = 0;
      } else {
        throw std::invalid_argument("expand: cannot expand " + shape_str(this->shape()) + " to " + shape_str(shape_in) +
                                    " (dim " + std::to_string(i) + ": " + std::to_string(have) + " -> " +
                                    std::to_string(want) + ")");
      }
    } else {
      if (want < 0) throw std::invalid_argument("expand: -1 is not allowed for a new leading dim");
      st[i] = 0;
    }
    shape[i] = want;
  }
  Tensor out = make_view(*this, shape, st, offset());
  if (auto rec = autograd::Recorder("expand", {*this})) {
    Shape in_shape = this->shape();
    rec.finish(out, [in_shape](const Tensor& g, const autograd::Needs&) -> autograd::Grads {
      return {sum_to_shape(g, in_shape)};
    });
  }
  return out;
}

Tensor Tensor::unsqueeze(int64_t d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape s = shape();
  s.insert(s.begin() + d, 1);
  return view(s);
}

Tensor Tensor::squeeze(int64_t d) const {
  d = wrap_dim(d, dim(), "squeeze");
  if (shape()[d] != 1) return *this;  // as PyTorch: squeezing a non-1 dim is a no-op
  Shape s = shape();
  s.erase(s.begin() + d);
  return view(s);
}

Tensor Tensor::squeeze() const {
  Shape s;
  for (int64_t v : shape())
    if (v != 1) s.push_back(v);
  return view(s);
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  start = wrap_dim(start, dim(), "flatten");
  end = wrap_dim(end, dim(), "flatten");
  if (start > end) throw std::invalid_argument("flatten: start dim must not come after end dim");
  Shape s(shape().begin(), shape().begin() + start);
  int64_t prod = 1;
  for (int64_t d = start; d <= end; ++d) prod *= shape()[d];
  s.push_back(prod);
  s.insert(s.end(), shape().begin() + end + 1, shape().end());
  return reshape(s);
}

Tensor Tensor::as_strided(const Shape& shape, const Shape& st, int64_t off) const {
  if (autograd::grad_enabled() && requires_grad())
    throw std::runtime_error("as_strided: not differentiable; call it on a detached tensor or under NoGradGuard");
  if (shape.size() != st.size()) throw std::invalid_argument("as_strided: shape and strides differ in length");
  int64_t last = off;  // offset of the last element the view can reach
  for (size_t i = 0; i < shape.size(); ++i) last += shape[i] > 0 ? (shape[i] - 1) * st[i] : 0;
  bool empty_view = shape_numel(shape) == 0;
  if (off < 0 || (!empty_view && size_t(last + 1) * itemsize() > storage()->nbytes()))
    throw std::out_of_range("as_strided: view " + shape_str(shape) + " at offset " + std::to_string(off) +
                            " runs past the storage");
  return make_view(*this, shape, st, off);
}

// ---- copies -------------------------------------------------------------------------------------

namespace {

// dst[i] = convert(src[i]) for src already broadcastable to dst's shape; no autograd.
void copy_values(const Tensor& dst, const Tensor& src) {
  Shape bst = cpu::broadcast_strides(src, dst.shape());
  cpu::NdLoop<2> loop(dst.shape(), {dst.strides(), bst});
  cpu::dispatch_storage(dst.dtype(), "copy", [&]<class D>() {
    cpu::dispatch_storage(src.dtype(), "copy", [&]<class S>() {
      D* d = static_cast<D*>(dst.raw_data());
      const S* s = static_cast<const S*>(src.raw_data());
      loop.run([&](const std::array<int64_t, 2>& base, const std::array<int64_t, 2>& inner, int64_t n) {
        D* dp = d + base[0];
        const S* sp = s + base[1];
        if (inner[0] == 1 && inner[1] == 1) {
          for (int64_t i = 0; i < n; ++i) dp[i] = cpu::scalar_cast<D>(sp[i]);
        } else {
          for (int64_t i = 0; i < n; ++i) dp[i * inner[0]] = cpu::scalar_cast<D>(sp[i * inner[1]]);
        }
      });
    });
  });
}

// copy_values on any device: dst and src on the same device. On a device, a copy between dtypes
// is the backend's convert kernel (the CPU's rounding), a same-dtype one its strided copy.
void copy_values_any(const Tensor& dst, const Tensor& src, const char* op) {
  if (dst.device() != src.device())
    throw std::invalid_argument(std::string(op) + ": source on " + src.device().str() + ", destination on " +
                                dst.device().str() + "; move one with .to(device) first");
  if (dst.device().is_cpu()) return copy_values(dst, src);
  if (dst.numel() == 0) return;
  if (dst.dtype() != src.dtype()) return backend::get(dst.device()).convert(dst, src);
  backend::get(dst.device()).copy_strided(dst, src);
}

}  // namespace

void Tensor::throw_not_on_host() const {
  throw std::runtime_error("Tensor::data: this tensor lives on " + device().str() +
                           ", and the op reading it has no kernel there: not implemented on " + device().str() +
                           " yet (CPU kernels cannot read device memory; move it with .cpu() if that is meant)");
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  copy_values_any(out, *this, "clone");
  if (auto rec = autograd::Recorder("clone", {*this})) {
    rec.finish(out, [](const Tensor& g, const autograd::Needs&) -> autograd::Grads { return {g}; });
  }
  return out;
}

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return *this;
  Tensor out = empty(shape(), dt, device());
  copy_values_any(out, *this, "to(dtype)");
  if (is_floating(dt) && is_floating(dtype())) {
    if (auto rec = autograd::Recorder("to", {*this})) {
      DType src = dtype();
      rec.finish(out, [src](const Tensor& g, const autograd::Needs&) -> autograd::Grads { return {g.to(src)}; });
    }
  }
  return out;
}

Tensor Tensor::to(Device dev) const { return to(dev, false); }

bool Tensor::is_pinned() const { return checked()->storage && impl_->storage->pinned(); }

Tensor Tensor::pin_memory() const {
  if (!device().is_cpu()) throw std::invalid_argument("pin_memory: the tensor is on " + device().str() + ", not the host");
  if (is_pinned()) return *this;
  Tensor out = empty_pinned(shape(), dtype());
  if (numel() > 0) out.copy_(detach());
  return out;
}

Tensor Tensor::to(Device dev, bool non_blocking) const {
  if (dev == device()) return *this;
  // Between devices only raw bytes move, so the source is first made contiguous where it lives.
  Tensor src = detach().contiguous();
  Tensor out = empty(shape(), dtype(), dev);
  const size_t nbytes = size_t(numel()) * itemsize();
  if (nbytes == 0) return out;
  if (dev.is_cpu()) {
    backend::get(src.device()).copy_to_host(out.raw_data(), src.device_data(), nbytes, src.device().index);
  } else if (src.device().is_cpu()) {
    if (non_blocking)
      backend::get(dev).copy_from_host_async(out.device_data(), src.raw_data(), nbytes, dev.index);
    else
      backend::get(dev).copy_from_host(out.device_data(), src.raw_data(), nbytes, dev.index);
  } else if (src.device().type == dev.type) {
    backend::get(dev).copy_on_device(out.device_data(), src.device_data(), nbytes, dev.index);
  } else {
    return src.cpu().to(dev);
  }
  return out;
}

Tensor& Tensor::copy_(const Tensor& src) {
  autograd::check_inplace(*this, "copy_");
  if (autograd::grad_enabled() && src.requires_grad())
    throw std::runtime_error("copy_: copying from a tensor that requires grad is not recorded; detach() it or use "
                             "an out-of-place op");
  if (src.dim() > dim() || cpu::broadcast_shapes(shape(), src.shape(), "copy_") != shape())
    throw std::invalid_argument("copy_: source shape " + shape_str(src.shape()) + " does not broadcast to " +
                                shape_str(shape()));
  // Source and destination may overlap (x.copy_(x.flip...)): read from a private copy then.
  Tensor s = src;
  if (src.storage() == storage()) s = src.detach().clone();
  if (!device().is_cpu() && s.dtype() != dtype()) s = s.detach().to(dtype());  // convert on the source's side
  if (s.device() != device() && s.numel() == numel()) s = s.detach().to(device());
  copy_values_any(*this, s, "copy_");
  return *this;
}

Tensor& Tensor::fill_(double value) {
  autograd::check_inplace(*this, "fill_");
  if (!device().is_cpu()) {
    if (numel() > 0) backend::get(device()).fill(*this, value);
    return *this;
  }
  copy_values(*this, scalar_tensor(value, DType::f64));
  return *this;
}

// ---- values -------------------------------------------------------------------------------------

double Tensor::item() const {
  if (numel() != 1)
    throw std::runtime_error("item: expected a tensor with one element, got shape " + shape_str(shape()));
  if (!device().is_cpu()) return cpu().item();
  return cpu::dispatch_storage(dtype(), "item", [&]<class T>() { return cpu::to_double(*static_cast<T*>(raw_data())); });
}

template <class T>
std::vector<T> Tensor::to_vector() const {
  if (dtype_of<T>() != dtype())
    throw std::runtime_error(std::string("to_vector<") + dtype_name(dtype_of<T>()) + ">: tensor has dtype " +
                             dtype_name(dtype()));
  Tensor c = detach().cpu().contiguous();
  const T* p = c.data<T>();
  return std::vector<T>(p, p + c.numel());
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

std::vector<double> Tensor::to_double_vector() const {
  return detach().cpu().to(DType::f64).contiguous().to_vector<double>();
}

// ---- autograd -----------------------------------------------------------------------------------

Tensor& Tensor::requires_grad_(bool on) {
  if (!is_leaf())
    throw std::runtime_error("requires_grad_: only leaves can change requires_grad; use detach() first");
  if (on && !is_floating(dtype()))
    throw std::runtime_error(std::string("requires_grad_: only float tensors can require grad, this one is ") +
                             dtype_name(dtype()));
  impl()->requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const { return impl()->grad ? Tensor(impl()->grad) : Tensor(); }

void Tensor::set_grad(const Tensor& g) {
  if (g.defined() && g.shape() != shape())
    throw std::invalid_argument("set_grad: gradient shape " + shape_str(g.shape()) + " != tensor shape " +
                                shape_str(shape()));
  impl()->grad = g.defined() ? g.impl_ptr() : nullptr;
}

void Tensor::zero_grad() { impl()->grad = nullptr; }

void Tensor::backward(const Tensor& grad_output) const {
  Tensor g = grad_output;
  if (!g.defined()) {
    if (numel() != 1)
      throw std::runtime_error("backward: grad can be implicitly created only for a one-element output, got shape " +
                               shape_str(shape()) + "; pass a gradient");
    g = ones(shape(), dtype(), device());
  }
  autograd::run_backward(*this, g);
}

Tensor Tensor::detach() const {
  Tensor out = make_view(*this, shape(), strides(), offset());
  return out;
}

// ---- factories ----------------------------------------------------------------------------------

Tensor empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape)
    if (d < 0) throw std::invalid_argument("empty: negative size in shape " + shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate(size_t(shape_numel(shape)) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(impl);
}

Tensor empty_pinned(const Shape& shape, DType dtype) {
  for (int64_t d : shape)
    if (d < 0) throw std::invalid_argument("empty_pinned: negative size in shape " + shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = Storage::allocate_pinned(size_t(shape_numel(shape)) * dtype_size(dtype));
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(impl);
}

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  autograd::NoGradGuard ng;
  t.fill_(value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  const size_t nbytes = size_t(t.numel()) * t.itemsize();
  if (device.is_cpu())
    std::memset(t.raw_data(), 0, nbytes);
  else if (nbytes > 0)
    backend::get(device).memset(t.device_data(), 0, nbytes, device.index);
  return t;
}
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor empty_like(const Tensor& t) { return empty(t.shape(), t.dtype(), t.device()); }

Tensor scalar_tensor(double value, DType dtype) {
  Tensor t = empty({}, dtype);
  cpu::dispatch_storage(dtype, "scalar_tensor", [&]<class T>() {
    *static_cast<T*>(t.raw_data()) = cpu::scalar_cast<T>(value);
  });
  return t;
}

Tensor arange(double start, double end, double step, DType dtype) {
  if (step == 0) throw std::invalid_argument("arange: step must be non-zero");
  int64_t n = int64_t(std::ceil((end - start) / step));
  if (n < 0) n = 0;
  Tensor t = empty({n}, dtype);
  cpu::dispatch_storage(dtype, "arange", [&]<class T>() {
    T* p = static_cast<T*>(t.raw_data());
    for (int64_t i = 0; i < n; ++i) p[i] = cpu::scalar_cast<T>(start + double(i) * step);
  });
  return t;
}

Tensor arange(int64_t end, DType dtype) { return arange(0.0, double(end), 1.0, dtype); }

Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype) {
  if (int64_t(values.size()) != shape_numel(shape))
    throw std::invalid_argument("from_vector: " + std::to_string(values.size()) + " values for shape " +
                                shape_str(shape));
  Tensor t = empty(shape, dtype);
  cpu::dispatch_storage(dtype, "from_vector", [&]<class T>() {
    T* p = static_cast<T*>(t.raw_data());
    for (size_t i = 0; i < values.size(); ++i) p[i] = cpu::scalar_cast<T>(values[i]);
  });
  return t;
}

Tensor from_vector(const std::vector<float>& values, const Shape& shape) {
  if (int64_t(values.size()) != shape_numel(shape))
    throw std::invalid_argument("from_vector: " + std::to_string(values.size()) + " values for shape " +
                                shape_str(shape));
  Tensor t = empty(shape, DType::f32);
  std::copy(values.begin(), values.end(), t.data<float>());
  return t;
}

Tensor from_vector(const std::vector<int64_t>& values, const Shape& shape) {
  if (int64_t(values.size()) != shape_numel(shape))
    throw std::invalid_argument("from_vector: " + std::to_string(values.size()) + " values for shape " +
                                shape_str(shape));
  Tensor t = empty(shape, DType::i64);
  std::copy(values.begin(), values.end(), t.data<int64_t>());
  return t;
}

}  // namespace rv
