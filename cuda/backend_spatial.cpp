// backend_spatial.cpp: the CUDA backend's index_select (forward, backward), the im2col / col2im
// pair that conv2d is built from, and 2-D pooling (kernels in cuda/kernels/index.cu, im2col.cu,
// pool.cu). Pooling windows arrive as the CPU op's span tables; the backward's inverse tables
// (which outputs read each input row / column) are built here on the host.
//
// Each method checks its arguments, makes strided inputs contiguous on the device (one device
// copy; the kernels then index plain (outer, S, inner) or NCHW arrays) and launches on the
// device's compute stream. Index values arrive on the host, already checked by the op: the
// backward buckets them there (a stable counting sort, O(K + S)) and uploads the buckets, so
// the kernel needs no atomics.
#include <algorithm>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda/cuda_backend.h"
#include "cuda/kernels/im2col.h"
#include "cuda/kernels/index.h"
#include "cuda/kernels/pool.h"
#include "cuda/runtime/device.h"
#include "cuda/runtime/stream.h"

namespace rv::cuda {

namespace {

// x's shape seen as (outer, size(dim), inner).
void split_at(const Shape& shape, int64_t dim, int64_t& outer, int64_t& inner) {
  outer = 1, inner = 1;
  for (int64_t d = 0; d < dim; ++d) outer *= shape[size_t(d)];
  for (size_t d = size_t(dim) + 1; d < shape.size(); ++d) inner *= shape[d];
}

void check_host_index(const Tensor& index, const char* op) {
  if (!index.device().is_cpu() || index.dtype() != DType::i64 || index.dim() != 1 || !index.is_contiguous())
    throw std::invalid_argument(std::string(op) + ": the backend takes the index as a contiguous 1-D int64 CPU "
                                "tensor, got " + dtype_name(index.dtype()) + " " + shape_str(index.shape()) + " on " +
                                index.device().str());
}

// A host int64 table on the device (at least one element, so an empty table still has memory;
// the kernels never read past the table's real length).
Tensor upload(const std::vector<int64_t>& v, Device dev) {
  return from_vector(v.empty() ? std::vector<int64_t>{0} : v, {int64_t(std::max<size_t>(v.size(), 1))}).to(dev);
}

Im2colGeom geom_of(const Shape& xs, const backend::DeviceBackend::ConvWindow& w) {
  return Im2colGeom{xs[0],  xs[1],      xs[2],      xs[3],     w.groups,  w.KH,     w.KW, w.stride_h,
                    w.stride_w, w.pad_h, w.pad_w, w.dil_h, w.dil_w, w.Ho, w.Wo};
}

}  // namespace

Tensor CudaBackend::index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  check_host_index(index, "index_select");
  if (dim < 0 || dim >= x.dim()) throw std::invalid_argument("index_select: dim " + std::to_string(dim) + " out of range");
  if (x.itemsize() != 2 && x.itemsize() != 4 && x.itemsize() != 8)
    throw std::runtime_error(std::string("index_select: dtype ") + dtype_name(x.dtype()) +
                             " is not implemented on " + x.device().str() + " yet");
  const int64_t K = index.numel(), S = x.size(dim);
  Shape out_shape = x.shape();
  out_shape[size_t(dim)] = K;
  Tensor out = empty(out_shape, x.dtype(), x.device());
  if (out.numel() == 0) return out;
  int64_t outer = 0, inner = 0;
  split_at(x.shape(), dim, outer, inner);
  const Tensor xc = x.contiguous();
  const Tensor idx = index.to(x.device());
  const int dev = x.device().index;
  DeviceGuard guard(dev);
  launch_index_select(int(x.itemsize()), out.device_data(), xc.device_data(),
                      static_cast<const int64_t*>(idx.device_data()), outer, S, K, inner, compute_stream(dev));
  return out;
}

Tensor CudaBackend::index_select_backward(const Tensor& g, int64_t dim, const Tensor& index, const Shape& x_shape) {
  check_host_index(index, "index_select backward");
  require_float32_or_64(g, "index_select backward");
  const int64_t K = index.numel(), S = x_shape[size_t(dim)];
  Shape want = x_shape;
  want[size_t(dim)] = K;
  if (g.shape() != want)
    throw std::invalid_argument("index_select backward: gradient shape " + shape_str(g.shape()) + ", expected " +
                                shape_str(want));
  Tensor dx = empty(x_shape, g.dtype(), g.device());
  if (dx.numel() == 0) return dx;
  // Stable counting sort of the positions k by target idx[k]: bucket s is order[offsets[s] ..
  // offsets[s+1]), ascending k inside it.
  const int64_t* ip = index.data<int64_t>();
  std::vector<int64_t> offsets(static_cast<size_t>(S) + 1, 0);
  std::vector<int64_t> order(static_cast<size_t>(K));
  for (int64_t k = 0; k < K; ++k) ++offsets[size_t(ip[k]) + 1];
  for (int64_t s = 0; s < S; ++s) offsets[size_t(s) + 1] += offsets[size_t(s)];
  std::vector<int64_t> next(offsets.begin(), offsets.end() - 1);
  for (int64_t k = 0; k < K; ++k) order[size_t(next[size_t(ip[k])]++)] = k;
  const Tensor d_offsets = upload(offsets, g.device());
  const Tensor d_order = upload(order, g.device());  // K == 0: one unread element
  int64_t outer = 0, inner = 0;
  split_at(x_shape, dim, outer, inner);
  const Tensor gc = g.contiguous();
  const int dev = g.device().index;
  DeviceGuard guard(dev);
  // K == 0: every bucket is empty and the kernel writes zeros (g has no elements to read).
  launch_index_select_backward(g.dtype(), dx.device_data(), gc.device_data(),
                               static_cast<const int64_t*>(d_offsets.device_data()),
                               static_cast<const int64_t*>(d_order.device_data()), outer, S, K, inner,
                               compute_stream(dev));
  return dx;
}

Tensor CudaBackend::im2col(const Tensor& x, const ConvWindow& win) {
  require_float32_or_64(x, "conv2d");
  if (x.dim() != 4) throw std::invalid_argument("conv2d (im2col): x must be (B, C, H, W), got " + shape_str(x.shape()));
  const Im2colGeom g = geom_of(x.shape(), win);
  if (g.G < 1 || g.C % g.G != 0)
    throw std::invalid_argument("conv2d (im2col): " + std::to_string(g.C) + " channels do not split into " +
                                std::to_string(g.G) + " groups");
  Tensor cols = empty({g.G, g.B * g.Ho * g.Wo, g.C / g.G * g.KH * g.KW}, x.dtype(), x.device());
  if (cols.numel() == 0) return cols;
  const Tensor xc = x.contiguous();
  const int dev = x.device().index;
  DeviceGuard guard(dev);
  launch_im2col(x.dtype(), cols.device_data(), xc.device_data(), g, compute_stream(dev));
  return cols;
}

Tensor CudaBackend::col2im(const Tensor& cols, const Shape& x_shape, const ConvWindow& win) {
  require_float32_or_64(cols, "conv2d backward");
  const Im2colGeom g = geom_of(x_shape, win);
  const Shape want{g.G, g.B * g.Ho * g.Wo, g.C / g.G * g.KH * g.KW};
  if (cols.shape() != want)
    throw std::invalid_argument("conv2d backward (col2im): columns have shape " + shape_str(cols.shape()) +
                                ", expected " + shape_str(want));
  Tensor dx = empty(x_shape, cols.dtype(), cols.device());
  if (dx.numel() == 0) return dx;
  const Tensor cc = cols.contiguous();
  const int dev = cols.device().index;
  DeviceGuard guard(dev);
  launch_col2im(cols.dtype(), dx.device_data(), cc.device_data(), g, compute_stream(dev));
  return dx;
}


namespace {

// For each input index i in [0, in), the outputs o whose span (lo, hi) holds lo <= i < hi, in
// ascending o: CSR offsets (in + 1) and list.
void invert_spans(const std::vector<int64_t>& spans, int64_t in, std::vector<int64_t>& off,
                  std::vector<int64_t>& list) {
  const int64_t out = int64_t(spans.size() / 3);
  off.assign(static_cast<size_t>(in) + 1, 0);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = std::max<int64_t>(spans[3 * o], 0); i < std::min(spans[3 * o + 1], in); ++i) ++off[i + 1];
  for (int64_t i = 0; i < in; ++i) off[i + 1] += off[i];
  list.assign(static_cast<size_t>(off[in]), 0);
  std::vector<int64_t> next(off.begin(), off.end() - 1);
  for (int64_t o = 0; o < out; ++o)
    for (int64_t i = std::max<int64_t>(spans[3 * o], 0); i < std::min(spans[3 * o + 1], in); ++i)
      list[static_cast<size_t>(next[i]++)] = o;
}

// The device tables of `win` (kept alive by the caller's `keep` while the kernel may run: the
// tensors' memory goes back to the stream-ordered cache only after the launches queued before).
PoolTables pool_tables(const backend::DeviceBackend::PoolWindows& win, Device dev, std::vector<Tensor>& keep) {
  const int64_t OH = int64_t(win.hspan.size() / 3), OW = int64_t(win.wspan.size() / 3);
  if (win.hspan.size() != size_t(3 * OH) || win.wspan.size() != size_t(3 * OW))
    throw std::invalid_argument("pool2d: span tables must hold (lo, hi, padded) triples");
  std::vector<int64_t> hoff, hlist, woff, wlist;
  invert_spans(win.hspan, win.H, hoff, hlist);
  invert_spans(win.wspan, win.W, woff, wlist);
  keep = {upload(win.hspan, dev), upload(win.wspan, dev), upload(hoff, dev),
          upload(hlist, dev),     upload(woff, dev),      upload(wlist, dev)};
  auto p = [&](int i) { return static_cast<const int64_t*>(keep[size_t(i)].device_data()); };
  return PoolTables{win.P, win.H, win.W, OH, OW, win.step_h, win.step_w, win.divisor,
                    p(0),  p(1),  p(2),  p(3), p(4), p(5)};
}

PoolMode mode_of(backend::DeviceBackend::PoolWindows::Mode m) {
  using M = backend::DeviceBackend::PoolWindows::Mode;
  switch (m) {
    case M::max: return PoolMode::max;
    case M::avg_clipped: return PoolMode::avg_clipped;
    case M::avg_padded: return PoolMode::avg_padded;
    case M::avg_fixed: return PoolMode::avg_fixed;
    case M::avg_adaptive: return PoolMode::avg_adaptive;
  }
  throw std::invalid_argument("pool2d: unknown mode");
}

}  // namespace

Tensor CudaBackend::pool2d(const Tensor& x, const PoolWindows& win, Tensor* indices) {
  const bool is_max = win.mode == PoolWindows::Mode::max;
  require_float32_or_64(x, is_max ? "max_pool2d" : "avg_pool2d");
  if (x.shape() != Shape{win.P, win.H, win.W})
    throw std::invalid_argument("pool2d: x has shape " + shape_str(x.shape()) + ", expected the planes " +
                                shape_str({win.P, win.H, win.W}));
  const Device dev = x.device();
  std::vector<Tensor> keep;
  const PoolTables t = pool_tables(win, dev, keep);
  Tensor out = empty({win.P, t.OH, t.OW}, x.dtype(), dev);
  Tensor idx = is_max ? empty({win.P, t.OH, t.OW}, DType::i64, dev) : Tensor();
  if (out.numel() > 0) {
    const Tensor xc = x.contiguous();
    DeviceGuard guard(dev.index);
    launch_pool_forward(mode_of(win.mode), x.dtype(), out.device_data(),
                        is_max ? static_cast<int64_t*>(idx.device_data()) : nullptr, xc.device_data(), t,
                        compute_stream(dev.index));
  }
  if (indices) *indices = idx;
  return out;
}

Tensor CudaBackend::pool2d_backward(const Tensor& g, const PoolWindows& win, const Tensor& indices) {
  const bool is_max = win.mode == PoolWindows::Mode::max;
  require_float32_or_64(g, is_max ? "max_pool2d backward" : "avg_pool2d backward");
  const Device dev = g.device();
  std::vector<Tensor> keep;
  const PoolTables t = pool_tables(win, dev, keep);
  if (g.shape() != Shape{win.P, t.OH, t.OW} || (is_max && indices.shape() != g.shape()))
    throw std::invalid_argument("pool2d backward: gradient shape " + shape_str(g.shape()) + ", expected " +
                                shape_str({win.P, t.OH, t.OW}));
  Tensor dx = empty({win.P, win.H, win.W}, g.dtype(), dev);
  if (dx.numel() == 0) return dx;
  const Tensor gc = g.contiguous();
  const Tensor ic = is_max ? indices.contiguous() : Tensor();
  DeviceGuard guard(dev.index);
  launch_pool_backward(mode_of(win.mode), g.dtype(), dx.device_data(), gc.device_data(),
                       is_max ? static_cast<const int64_t*>(ic.device_data()) : nullptr, t,
                       compute_stream(dev.index));
  return dx;
}

}  // namespace rv::cuda
