// index.cpp: embedding, index_select, index_add, gather, scatter_add and one_hot, forward and
// backward.
//
// Four value kernels do all the work, none of them records autograd:
//   select_rows   out[o, k, :] = x[o, idx[k], :]                  (index_select, embedding)
//   add_rows      out = x; out[o, idx[k], :] += src[o, k, :]      (index_add, their backward)
//   gather_values out[p] = x[p with p[dim] replaced by idx[p]]     (gather, scatter_add backward)
//   scatter_values out = x; out[p with p[dim] = idx[p]] += src[p]  (scatter_add, gather backward)
// where (o, k, :) views a tensor as (outer, size(dim), inner). The adding kernels must not let
// two threads add into one element, and must add in a fixed order so results do not depend on
// the thread count:
//   add_rows first buckets the positions k by target row (a counting sort, stable), then
//     gives each thread whole target rows, which it sums in ascending k;
//   scatter_values gives each thread whole "lines" (all positions that differ only in `dim`);
//     two different lines never write the same element, and a line is walked in ascending order.
// On a device (CUDA) index_select and embedding call the backend, whose kernels do the same as
// select_rows / add_rows (the index is checked here, on the host); index_add, gather and
// scatter_add say they are not implemented there yet.
#include "engine/ops/index.h"

#include <algorithm>
#include <cstring>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/cpu/loops.h"
#include "engine/ops/index_device.h"

namespace rv {

using autograd::Grads;
using autograd::Needs;

namespace {

std::string position_str(int64_t flat, const Shape& shape) {
  Shape coord(shape.size());
  for (int64_t d = int64_t(shape.size()) - 1; d >= 0; --d) {
    coord[d] = flat % shape[d];
    flat /= shape[d];
  }
  return shape_str(coord);
}

// `index` as a contiguous int64 tensor (itself when it already is one, else a copy), with
// every value checked against [0, bound). Ops save it with rec.save, so an in-place write to
// the caller's index between forward and backward is reported instead of giving a wrong grad.
// `what` describes the range for the error message, e.g. "for dim 1 of size 5".
Tensor checked_indices(const Tensor& index, int64_t bound, const char* op, const std::string& what) {
  if (index.dtype() != DType::i64 && index.dtype() != DType::i32)
    throw std::invalid_argument(std::string(op) + ": index must be int64 or int32, got " + dtype_name(index.dtype()));
  Tensor idx = index.dtype() == DType::i64 ? index.detach().contiguous() : index.to(DType::i64);
  const int64_t* p = idx.data<int64_t>();
  for (int64_t i = 0; i < idx.numel(); ++i)
    if (p[i] < 0 || p[i] >= bound)
      throw std::out_of_range(std::string(op) + ": index " + std::to_string(p[i]) + " at position " +
                              position_str(i, idx.shape()) + " is out of range " + what + " (valid range [0, " +
                              std::to_string(bound) + "))");
  return idx;
}

// The index of an op whose data is on a device, on the host: its values decide the bounds check
// and (backward) the device kernel's buckets, so a device index is copied back once (a sync).
Tensor index_on_host(const Tensor& index) { return index.device().is_cpu() ? index : index.to(cpu_device()); }

std::string dim_range(int64_t dim, int64_t size) {
  return "for dim " + std::to_string(dim) + " of size " + std::to_string(size);
}

// (outer, n, inner) with n = shape[dim].
struct Split3 {
  int64_t outer = 1, n = 1, inner = 1;
  Split3(const Shape& s, int64_t dim) {
    for (int64_t d = 0; d < int64_t(s.size()); ++d) {
      if (d < dim) outer *= s[d];
      else if (d == dim) n = s[d];
      else inner *= s[d];
    }
  }
};

// The dtype the adding kernels compute in: float16 formats widen to f32; bool is refused.
DType accumulate_dtype(DType dt, const char* op) {
  if (dt == DType::boolean) throw std::invalid_argument(std::string(op) + ": cannot add into a bool tensor");
  return cpu::compute_dtype(dt);
}

// out[o, k, :] = x[o, idx[k], :]; idx is a checked 1-D int64 tensor. Any dtype (byte copies).
Tensor select_rows(const Tensor& x_in, int64_t dim, const Tensor& idx) {
  Tensor x = x_in.detach().contiguous();
  const int64_t k = idx.numel();
  Shape out_shape = x.shape();
  out_shape[dim] = k;
  Tensor out = empty(out_shape, x.dtype());
  Split3 s(x.shape(), dim);
  const size_t row_bytes = size_t(s.inner) * x.itemsize();
  if (out.numel() == 0) return out;
  const char* xp = static_cast<const char*>(x.raw_data());
  char* op = static_cast<char*>(out.raw_data());
  const int64_t* ip = idx.data<int64_t>();
  const int64_t grain = std::max<int64_t>(1, 65536 / int64_t(row_bytes));
  cpu::parallel_for(s.outer * k, grain, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t o = r / k, j = r % k;
      std::memcpy(op + size_t(r) * row_bytes, xp + size_t(o * s.n + ip[j]) * row_bytes, row_bytes);
    }
  });
  return out;
}

// Returns x with src[o, k, :] added into row idx[k] of x[o, :, :]. src has x's shape except
// size(dim) = idx.numel(). Deterministic: see the file comment.
Tensor add_rows(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& src, const char* op_name) {
  const DType dt = x.dtype(), ct = accumulate_dtype(dt, op_name);
  Tensor out = dt == ct ? x.detach().clone() : x.detach().to(ct);
  Tensor s = src.detach().to(ct).contiguous();
  Split3 sp(x.shape(), dim);
  const int64_t k = idx.numel(), n = sp.n, inner = sp.inner;
  if (k > 0 && inner > 0 && sp.outer > 0) {
    // Counting sort of the positions by target row: order[start[t] .. start[t+1]) lists, in
    // ascending order, the positions j with idx[j] == t.
    const int64_t* ip = idx.data<int64_t>();
    std::vector<int64_t> start(static_cast<size_t>(n) + 1, 0), order(static_cast<size_t>(k));
    for (int64_t j = 0; j < k; ++j) ++start[size_t(ip[j]) + 1];
    for (int64_t t = 0; t < n; ++t) start[size_t(t) + 1] += start[size_t(t)];
    std::vector<int64_t> cursor(start.begin(), start.end() - 1);
    for (int64_t j = 0; j < k; ++j) order[size_t(cursor[size_t(ip[j])]++)] = j;
    const int64_t work_per_row = std::max<int64_t>(1, inner * std::max<int64_t>(1, k / std::max<int64_t>(1, n)));
    cpu::dispatch_all(ct, op_name, [&]<class T>() {
      T* op = out.data<T>();
      const T* srcp = s.data<T>();
      cpu::parallel_for(sp.outer * n, std::max<int64_t>(1, 32768 / work_per_row), [&](int64_t r0, int64_t r1) {
        for (int64_t r = r0; r < r1; ++r) {
          const int64_t o = r / n, t = r % n;
          T* dst = op + r * inner;
          for (int64_t q = start[size_t(t)]; q < start[size_t(t) + 1]; ++q) {
            const T* row = srcp + (o * k + order[size_t(q)]) * inner;
            for (int64_t c = 0; c < inner; ++c) dst[c] += row[c];
          }
        }
      });
    });
  }
  return dt == ct ? out : out.to(dt);
}

// out[p] = x[p with p[dim] = idx[p]] over idx's shape; x may be strided. Any dtype.
Tensor gather_values(const Tensor& x_in, int64_t dim, const Tensor& idx) {
  Tensor x = x_in.detach();
  Tensor out = empty(idx.shape(), x.dtype());
  Shape xs = x.strides();
  const int64_t dim_stride = xs[dim];
  xs[dim] = 0;  // the position along dim comes from idx, not from the loop
  cpu::NdLoop<3> loop(idx.shape(), {out.strides(), idx.strides(), xs});
  const int64_t* ip = idx.data<int64_t>();
  cpu::dispatch_storage(x.dtype(), "gather", [&]<class T>() {
    T* op = static_cast<T*>(out.raw_data());
    const T* xp = static_cast<const T*>(x.raw_data());
    loop.run([&](const std::array<int64_t, 3>& base, const std::array<int64_t, 3>& inner, int64_t n) {
      for (int64_t i = 0; i < n; ++i)
        op[base[0] + i * inner[0]] = xp[base[2] + i * inner[2] + ip[base[1] + i * inner[1]] * dim_stride];
    });
  });
  return out;
}

// Returns x with src[p] added into x[p with p[dim] = idx[p]] for every position p of idx.
Tensor scatter_values(const Tensor& x, int64_t dim, const Tensor& idx, const Tensor& src, const char* op_name) {
  const DType dt = x.dtype(), ct = accumulate_dtype(dt, op_name);
  Tensor out = dt == ct ? x.detach().clone() : x.detach().to(ct);
  Tensor s = src.detach().to(ct);
  const Shape& shape = idx.shape();
  const int64_t nd = int64_t(shape.size());
  const int64_t J = shape[dim];
  if (idx.numel() == 0) return dt == ct ? out : out.to(dt);
  // A line is one choice of every coordinate except `dim`; its J elements may hit the same
  // output element, so one thread walks the whole line in order.
  Shape line_shape, line_st_i, line_st_s, line_st_o;
  for (int64_t d = 0; d < nd; ++d) {
    if (d == dim) continue;
    line_shape.push_back(shape[d]);
    line_st_i.push_back(idx.strides()[d]);
    line_st_s.push_back(s.strides()[d]);
    line_st_o.push_back(out.strides()[d]);
  }
  const int64_t lines = idx.numel() / J, nl = int64_t(line_shape.size());
  const int64_t is = idx.strides()[dim], ss = s.strides()[dim], os = out.strides()[dim];
  const int64_t* ip = idx.data<int64_t>();
  cpu::dispatch_all(ct, op_name, [&]<class T>() {
    T* op = out.data<T>();
    const T* srcp = s.data<T>();
    cpu::parallel_for(lines, std::max<int64_t>(1, 16384 / J), [&](int64_t l0, int64_t l1) {
      std::vector<int64_t> coord(size_t(std::max<int64_t>(nl, 1)), 0);
      int64_t bi = 0, bs = 0, bo = 0, rem = l0;
      for (int64_t d = nl - 1; d >= 0; --d) {
        coord[d] = rem % line_shape[d];
        rem /= line_shape[d];
        bi += coord[d] * line_st_i[d];
        bs += coord[d] * line_st_s[d];
        bo += coord[d] * line_st_o[d];
      }
      for (int64_t l = l0; l < l1; ++l) {
        for (int64_t j = 0; j < J; ++j) op[bo + ip[bi + j * is] * os] += srcp[bs + j * ss];
        for (int64_t d = nl - 1; d >= 0; --d) {  // odometer step to the next line
          bi += line_st_i[d];
          bs += line_st_s[d];
          bo += line_st_o[d];
          if (++coord[d] < line_shape[d]) break;
          bi -= line_st_i[d] * line_shape[d];
          bs -= line_st_s[d] * line_shape[d];
          bo -= line_st_o[d] * line_shape[d];
          coord[d] = 0;
        }
      }
    });
  });
  return dt == ct ? out : out.to(dt);
}

// Checks index.dim() == x.dim() and index.size(d) <= x.size(d) for d != dim (and for d == dim
// too when `all_dims`), naming `op`, `xname` and the dim.
void check_index_fits(const Tensor& index, const Tensor& x, int64_t dim, bool all_dims, const char* op,
                      const char* xname) {
  if (index.dim() != x.dim())
    throw std::invalid_argument(std::string(op) + ": index has " + std::to_string(index.dim()) + " dims but " + xname +
                                " has " + std::to_string(x.dim()) + " (shapes " + shape_str(index.shape()) + " and " +
                                shape_str(x.shape()) + "); they must have the same number of dims");
  for (int64_t d = 0; d < x.dim(); ++d)
    if ((all_dims || d != dim) && index.shape()[d] > x.shape()[d])
      throw std::invalid_argument(std::string(op) + ": index shape " + shape_str(index.shape()) +
                                  " is larger than " + xname + " shape " + shape_str(x.shape()) + " in dim " +
                                  std::to_string(d));
}

int64_t wrap_index_dim(const Tensor& x, int64_t dim, const char* op) {
  if (x.dim() == 0) throw std::invalid_argument(std::string(op) + ": expected a tensor with at least 1 dim, got a 0-d tensor");
  return wrap_dim(dim, x.dim(), op);
}

}  // namespace

// ---- embedding / index_select / index_add -------------------------------------------------------

Tensor embedding(const Tensor& weight, const Tensor& indices) {
  if (weight.dim() != 2)
    throw std::invalid_argument("embedding: weight must be 2-D (V, C), got shape " + shape_str(weight.shape()));
  const int64_t V = weight.shape()[0], C = weight.shape()[1];
  const bool on_device = !weight.device().is_cpu();
  Tensor idx = checked_indices(on_device ? index_on_host(indices) : indices, V, "embedding",
                               "for a weight with " + std::to_string(V) + " rows");
  Tensor flat = idx.view({idx.numel()});
  Shape out_shape = indices.shape();
  out_shape.push_back(C);
  Tensor out = (on_device ? backend::get(weight.device()).index_select(weight.detach(), 0, flat)
                          : select_rows(weight, 0, flat))
                   .view(out_shape);  // (*S, C)
  if (auto rec = autograd::Recorder("embedding", {weight})) {
    flat = rec.save(flat);
    rec.finish(out, [flat, V, C](const Tensor& g, const Needs&) -> Grads {
      // dW[v, :] = sum of g[s, :] over the positions s with indices[s] == v
      if (!g.device().is_cpu())
        return {backend::get(g.device()).index_select_backward(g.reshape({-1, C}), 0, flat, {V, C})};
      return {add_rows(zeros({V, C}, g.dtype()), 0, flat, g.reshape({-1, C}), "embedding backward")};
    });
  }
  return out;
}

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  dim = wrap_index_dim(x, dim, "index_select");
  if (index.dim() > 1)
    throw std::invalid_argument("index_select: index must be 1-D, got shape " + shape_str(index.shape()));
  const bool on_device = !x.device().is_cpu();
  Tensor idx = checked_indices(on_device ? index_on_host(index) : index, x.shape()[dim], "index_select",
                               dim_range(dim, x.shape()[dim]));
  idx = idx.view({idx.numel()});
  Tensor out = on_device ? backend::get(x.device()).index_select(x.detach(), dim, idx) : select_rows(x, dim, idx);
  if (auto rec = autograd::Recorder("index_select", {x})) {
    idx = rec.save(idx);
    Shape xs = x.shape();
    rec.finish(out, [xs, dim, idx](const Tensor& g, const Needs&) -> Grads {
      if (!g.device().is_cpu()) return {backend::get(g.device()).index_select_backward(g, dim, idx, xs)};
      return {add_rows(zeros(xs, g.dtype(), g.device()), dim, idx, g, "index_select backward")};
    });
  }
  return out;
}

Tensor index_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  dim = wrap_index_dim(x, dim, "index_add");
  const bool on_device = !x.device().is_cpu();
  if (src.device() != x.device())
    throw std::invalid_argument("index_add: x is on " + x.device().str() + " but src is on " + src.device().str());
  if (index.dim() > 1)
    throw std::invalid_argument("index_add: index must be 1-D, got shape " + shape_str(index.shape()));
  if (src.dtype() != x.dtype())
    throw std::invalid_argument(std::string("index_add: src dtype ") + dtype_name(src.dtype()) + " differs from x dtype " +
                                dtype_name(x.dtype()));
  Shape want = x.shape();
  want[dim] = index.numel();
  if (src.shape() != want)
    throw std::invalid_argument("index_add: src has shape " + shape_str(src.shape()) + ", expected " + shape_str(want) +
                                " (x's shape with dim " + std::to_string(dim) + " = index.numel())");
  Tensor idx = checked_indices(on_device ? index_on_host(index) : index, x.shape()[dim], "index_add",
                               dim_range(dim, x.shape()[dim]));
  idx = idx.view({idx.numel()});
  if (on_device) return index_add_on_device(x, dim, idx, src);
  Tensor out = add_rows(x, dim, idx, src, "index_add");
  if (auto rec = autograd::Recorder("index_add", {x, src})) {
    if (rec.needs(1)) idx = rec.save(idx);
    rec.finish(out, [dim, idx](const Tensor& g, const Needs& n) -> Grads {
      return {n[0] ? g : Tensor(), n[1] ? select_rows(g, dim, idx) : Tensor()};
    });
  }
  return out;
}

// ---- gather / scatter_add ----------------------------------------------------------------------

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  dim = wrap_index_dim(x, dim, "gather");
  const bool on_device = !x.device().is_cpu();
  check_index_fits(index, x, dim, false, "gather", "x");
  Tensor idx = checked_indices(on_device ? index_on_host(index) : index, x.shape()[dim], "gather",
                               dim_range(dim, x.shape()[dim]));
  if (on_device) return gather_on_device(x, dim, idx);
  Tensor out = gather_values(x, dim, idx);
  if (auto rec = autograd::Recorder("gather", {x})) {
    idx = rec.save(idx);
    Shape xs = x.shape();
    rec.finish(out, [xs, dim, idx](const Tensor& g, const Needs&) -> Grads {
      return {scatter_values(zeros(xs, g.dtype()), dim, idx, g, "gather backward")};
    });
  }
  return out;
}

Tensor scatter_add(const Tensor& x, int64_t dim, const Tensor& index, const Tensor& src) {
  dim = wrap_index_dim(x, dim, "scatter_add");
  const bool on_device = !x.device().is_cpu();
  if (src.device() != x.device())
    throw std::invalid_argument("scatter_add: x is on " + x.device().str() + " but src is on " + src.device().str());
  if (src.dtype() != x.dtype())
    throw std::invalid_argument(std::string("scatter_add: src dtype ") + dtype_name(src.dtype()) +
                                " differs from x dtype " + dtype_name(x.dtype()));
  check_index_fits(index, x, dim, false, "scatter_add", "x");
  check_index_fits(index, src, dim, true, "scatter_add", "src");
  Tensor idx = checked_indices(on_device ? index_on_host(index) : index, x.shape()[dim], "scatter_add",
                               dim_range(dim, x.shape()[dim]));
  if (on_device) return scatter_add_on_device(x, dim, idx, src);
  Tensor out = scatter_values(x, dim, idx, src, "scatter_add");
  if (auto rec = autograd::Recorder("scatter_add", {x, src})) {
    idx = rec.save(idx);
    Shape ss = src.shape();
    rec.finish(out, [dim, idx, ss](const Tensor& g, const Needs& n) -> Grads {
      Tensor gs;
      if (n[1]) {
        gs = gather_values(g, dim, idx);  // index's shape
        if (gs.shape() != ss) {  // src elements the index does not reach get zero gradient
          Tensor full = zeros(ss, g.dtype());
          Tensor part = full;
          for (int64_t d = 0; d < int64_t(ss.size()); ++d) part = part.narrow(d, 0, idx.shape()[d]);
          part.copy_(gs);
          gs = full;
        }
      }
      return {n[0] ? g : Tensor(), gs};
    });
  }
  return out;
}

// ---- one_hot ------------------------------------------------------------------------------------

Tensor one_hot(const Tensor& indices, int64_t num_classes) {
  if (indices.dtype() != DType::i64 && indices.dtype() != DType::i32)
    throw std::invalid_argument(std::string("one_hot: indices must be int64 or int32, got ") +
                                dtype_name(indices.dtype()));
  if (num_classes < -1)
    throw std::invalid_argument("one_hot: num_classes must be positive or -1 (infer), got " +
                                std::to_string(num_classes));
  if (!indices.device().is_cpu())  // made on the host, where the range check needs the values anyway
    return one_hot(indices.to(cpu_device()), num_classes).to(indices.device());
  if (num_classes == -1) {
    if (indices.numel() == 0)
      throw std::invalid_argument("one_hot: cannot infer num_classes from an empty tensor; pass num_classes");
    std::vector<double> v = indices.to_double_vector();
    num_classes = int64_t(*std::max_element(v.begin(), v.end())) + 1;
    if (num_classes <= 0) num_classes = 1;  // all negative: the check below reports the bad value
  }
  Tensor idx = checked_indices(indices, num_classes, "one_hot",
                               "for num_classes " + std::to_string(num_classes));
  Shape out_shape = indices.shape();
  out_shape.push_back(num_classes);
  Tensor out = zeros(out_shape, DType::i64);
  int64_t* op = out.data<int64_t>();
  const int64_t* ip = idx.data<int64_t>();
  for (int64_t i = 0; i < idx.numel(); ++i) op[i * num_classes + ip[i]] = 1;
  return out;
}

}  // namespace rv
