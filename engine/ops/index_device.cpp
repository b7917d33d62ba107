// index_device.cpp: gather, scatter_add and index_add on a device, as two backend primitives.
//
// Each op is a map between element positions, decided by the index, which lives on the host (its
// bounds were checked there). So the host turns it into flat offsets, once per call:
//   gather       out[p] = x[target(p)]                      -> backend take(x, targets)
//   scatter_add  out = x; out[target(p)] += src[source(p)]  -> backend scatter_add_flat
//   index_add    the same, with one target per element of src
// where target(p) is p's coordinates with the coordinate along `dim` replaced by the index,
// as an offset into contiguous x. The device then only moves elements: `take` is a plain
// gather, and `scatter_add_flat` a gather over positions bucketed by target on the host, so
// every output element has one writer adding in ascending position order (the CPU's order, no
// atomics). Backward passes are the same two primitives the other way round (a gather's
// gradient is a scatter-add and vice versa), and index_add's source gradient is index_select.
#include "engine/ops/index_device.h"

#include <functional>
#include <numeric>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"

namespace rv {

namespace {

// For every position of `shape` in row-major order: the flat offset, in a contiguous tensor of
// shape `dst`, of that position's coordinates with the one along `dim` replaced by
// dim_value(position, coordinate along dim).
std::vector<int64_t> remapped_offsets(const Shape& shape, const Shape& dst, int64_t dim,
                                      const std::function<int64_t(int64_t, int64_t)>& dim_value) {
  const int64_t nd = int64_t(shape.size());
  Shape stride(size_t(nd), 1);
  for (int64_t d = nd - 2; d >= 0; --d) stride[size_t(d)] = stride[size_t(d) + 1] * dst[size_t(d) + 1];
  const int64_t n = shape_numel(shape);
  std::vector<int64_t> out(static_cast<size_t>(n));
  std::vector<int64_t> coord(static_cast<size_t>(nd), 0);
  for (int64_t p = 0; p < n; ++p) {
    int64_t off = 0;
    for (int64_t d = 0; d < nd; ++d)
      off += (d == dim ? dim_value(p, coord[size_t(d)]) : coord[size_t(d)]) * stride[size_t(d)];
    out[size_t(p)] = off;
    for (int64_t d = nd - 1; d >= 0; --d) {  // odometer step
      if (++coord[size_t(d)] < shape[size_t(d)]) break;
      coord[size_t(d)] = 0;
    }
  }
  return out;
}

// The offsets of idx's positions in a contiguous tensor of shape `dst` (coordinates unchanged).
std::vector<int64_t> plain_offsets(const Shape& shape, const Shape& dst) {
  return remapped_offsets(shape, dst, -1, [](int64_t, int64_t c) { return c; });
}

Tensor host_i64(std::vector<int64_t> v) {
  const int64_t n = int64_t(v.size());
  return from_vector(v, {n});
}

// src's gradient where only idx's leading block of src is reached: zeros elsewhere.
Tensor embed_in_zeros(const Tensor& part, const Shape& full_shape) {
  if (part.shape() == full_shape) return part;
  Tensor full = zeros(full_shape, part.dtype(), part.device());
  Tensor view = full;
  for (int64_t d = 0; d < int64_t(full_shape.size()); ++d) view = view.narrow(d, 0, part.shape()[size_t(d)]);
  view.copy_(part);
  return full;
}

}  // namespace

Tensor gather_on_device(const Tensor& x, int64_t dim, const Tensor& idx) {
  const int64_t* ip = idx.data<int64_t>();
  const Tensor targets = host_i64(remapped_offsets(idx.shape(), x.shape(), dim, [ip](int64_t p, int64_t) { return ip[p]; }));
  Tensor out = backend::get(x.device()).take(x.detach().contiguous(), targets).reshape(idx.shape());
  if (auto rec = autograd::Recorder("gather", {x})) {
    const Shape xs = x.shape();
    rec.finish(out, [xs, targets](const Tensor& g, const autograd::Needs&) -> autograd::Grads {
      // every position p sends g[p] to x's element targets[p]
      std::vector<int64_t> positions(size_t(targets.numel()));
      std::iota(positions.begin(), positions.end(), int64_t(0));
      return {backend::get(g.device())
                  .scatter_add_flat(zeros(xs, g.dtype(), g.device()), g.contiguous(), targets, host_i64(positions))};
    });
  }
  return out;
}

Tensor scatter_add_on_device(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& src) {
  const int64_t* ip = idx.data<int64_t>();
  const Tensor targets = host_i64(remapped_offsets(idx.shape(), x.shape(), dim, [ip](int64_t p, int64_t) { return ip[p]; }));
  const Tensor sources = host_i64(plain_offsets(idx.shape(), src.shape()));
  Tensor out = backend::get(x.device()).scatter_add_flat(x.detach(), src.detach().contiguous(), targets, sources);
  if (auto rec = autograd::Recorder("scatter_add", {x, src})) {
    const Shape ss = src.shape(), is = idx.shape();
    rec.finish(out, [targets, ss, is](const Tensor& g, const autograd::Needs& n) -> autograd::Grads {
      Tensor gs;
      if (n[1]) gs = embed_in_zeros(backend::get(g.device()).take(g.contiguous(), targets).reshape(is), ss);
      return {n[0] ? g : Tensor(), gs};
    });
  }
  return out;
}

Tensor index_add_on_device(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& src) {
  const int64_t* ip = idx.data<int64_t>();
  const Tensor targets = host_i64(remapped_offsets(src.shape(), x.shape(), dim, [ip](int64_t, int64_t k) { return ip[k]; }));
  std::vector<int64_t> positions(size_t(src.numel()));
  std::iota(positions.begin(), positions.end(), int64_t(0));
  Tensor out = backend::get(x.device()).scatter_add_flat(x.detach(), src.detach().contiguous(), targets,
                                                         host_i64(std::move(positions)));
  if (auto rec = autograd::Recorder("index_add", {x, src})) {
    rec.finish(out, [dim, idx](const Tensor& g, const autograd::Needs& n) -> autograd::Grads {
      return {n[0] ? g : Tensor(), n[1] ? backend::get(g.device()).index_select(g, dim, idx) : Tensor()};
    });
  }
  return out;
}

}  // namespace rv
