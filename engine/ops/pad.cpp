// pad.cpp: F.pad forward and backward for the four padding modes.
//
// Every mode is the same operation: for each padded dim, an index table says which input
// index each output index reads (or -1 for "the fill value"). The forward pass gathers rows
// through the tables; the backward pass runs the same tables in reverse and accumulates
// (reflect, replicate and circular read an input element more than once). The backward
// scatter is split over the leading unpadded dims (e.g. the B*C planes of a 2-D pad), so no
// two threads ever add into the same input element and the result does not depend on the
// thread count.
//
// On a device (x not on the CPU) the same tables drive recorded device ops instead, one padded
// dim at a time, and autograd carries the gradient back through them: constant mode is a slice
// (negative pads crop) and a cat with two slabs of the fill value; the other modes are an
// index_select with the dim's table (every entry is a real input index there), whose backward
// sums the rows read more than once.
#include "engine/ops/pad.h"

#include <algorithm>

#include "engine/autograd.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/cpu/parallel.h"
#include "engine/ops/index.h"
#include "engine/ops/shape.h"

namespace rv {

namespace {

enum class PadMode { constant, reflect, replicate, circular };

PadMode parse_mode(const std::string& mode) {
  if (mode == "constant") return PadMode::constant;
  if (mode == "reflect") return PadMode::reflect;
  if (mode == "replicate") return PadMode::replicate;
  if (mode == "circular") return PadMode::circular;
  throw std::invalid_argument("pad: unknown mode '" + mode +
                              "' (expected 'constant', 'reflect', 'replicate' or 'circular')");
}

// Which input index each output index of one dim reads; -1 = fill value (constant mode).
std::vector<int64_t> index_table(PadMode mode, int64_t n, int64_t before, int64_t after) {
  const int64_t out = n + before + after;
  std::vector<int64_t> t(size_t(std::max<int64_t>(out, 0)));
  if (mode == PadMode::circular) {
    // PyTorch crops by the negative pads first, then wraps inside what is left.
    const int64_t crop_lo = std::max<int64_t>(-before, 0), crop_hi = std::max<int64_t>(-after, 0);
    const int64_t m = n - crop_lo - crop_hi, lead = std::max<int64_t>(before, 0);
    for (int64_t o = 0; o < out; ++o) t[o] = crop_lo + (((o - lead) % m) + m) % m;
    return t;
  }
  for (int64_t o = 0; o < out; ++o) {
    int64_t i = o - before;
    switch (mode) {
      case PadMode::constant: if (i < 0 || i >= n) i = -1; break;
      case PadMode::reflect: if (i < 0) i = -i; if (i >= n) i = 2 * (n - 1) - i; break;
      case PadMode::replicate: i = std::clamp<int64_t>(i, 0, n - 1); break;
      case PadMode::circular: break;
    }
    t[o] = i;
  }
  return t;
}

// The plan shared by forward and backward: shapes, and one index table per dim from
// `first` (the first padded dim) to the last. Dims before `first` are copied as they are.
struct PadPlan {
  Shape in_shape, out_shape;
  int64_t first = 0;                          // dims [0, first) are not padded
  std::vector<std::vector<int64_t>> tables;   // tables[d - first], for d in [first, ndim)

  int64_t outer() const {
    int64_t n = 1;
    for (int64_t d = 0; d < first; ++d) n *= out_shape[d];
    return n;
  }
  int64_t inner_out() const { return shape_numel(out_shape) / std::max<int64_t>(outer(), 1); }
};

PadPlan make_plan(const Tensor& x, const std::vector<int64_t>& pads, PadMode mode, const std::string& mode_name) {
  const int64_t nd = x.dim();
  if (pads.size() % 2 != 0)
    throw std::invalid_argument("pad: pads must hold (before, after) pairs, got " + std::to_string(pads.size()) +
                                " values");
  const int64_t npad = int64_t(pads.size()) / 2;
  if (npad > nd)
    throw std::invalid_argument("pad: " + std::to_string(pads.size()) + " pad values for a " + std::to_string(nd) +
                                "-d input (at most 2 per dim)");
  if (mode != PadMode::constant) {
    // PyTorch's rule: k padded trailing dims need k+1 or k+2 dims in all, k in {1, 2, 3}.
    if (npad < 1 || npad > 3 || nd < npad + 1 || nd > npad + 2)
      throw std::invalid_argument("pad: mode '" + mode_name + "' with " + std::to_string(pads.size()) +
                                  " pad values needs a " + std::to_string(npad + 1) + "-d or " +
                                  std::to_string(npad + 2) + "-d input, got shape " + shape_str(x.shape()));
    for (int64_t d = 0; d < nd; ++d)
      if (x.shape()[d] == 0 && d >= nd - npad - 1)
        throw std::invalid_argument("pad: mode '" + mode_name + "' needs non-empty dims (except the batch), got shape " +
                                    shape_str(x.shape()));
  }
  PadPlan p;
  p.in_shape = x.shape();
  p.out_shape = x.shape();
  p.first = nd - npad;
  for (int64_t d = p.first; d < nd; ++d) {
    const int64_t k = nd - 1 - d;  // pair index: 0 is the last dim
    const int64_t before = pads[2 * k], after = pads[2 * k + 1], n = x.shape()[d];
    const int64_t out = n + before + after;
    const std::string where = " at dim " + std::to_string(d) + " (size " + std::to_string(n) + ", pads " +
                              std::to_string(before) + ", " + std::to_string(after) + ")";
    if (out < 0) throw std::invalid_argument("pad: negative output size " + std::to_string(out) + where);
    if (mode == PadMode::reflect && (before >= n || after >= n))
      throw std::invalid_argument("pad: reflect padding must be smaller than the dim" + where);
    if (mode == PadMode::circular) {
      const int64_t m = n - std::max<int64_t>(-before, 0) - std::max<int64_t>(-after, 0);
      if (m <= 0 || before > m || after > m)
        throw std::invalid_argument("pad: circular padding may wrap around at most once" + where);
    }
    if (mode != PadMode::constant && out <= 0)
      throw std::invalid_argument("pad: output size " + std::to_string(out) + " is not positive" + where);
    p.out_shape[d] = out;
  }
  for (int64_t d = p.first; d < nd; ++d) {
    const int64_t k = nd - 1 - d;
    p.tables.push_back(index_table(mode, x.shape()[d], pads[2 * k], pads[2 * k + 1]));
  }
  return p;
}

// Calls f(out_row_offset, in_row_offset or -1, last_table) for every output row (all dims
// except the last) of plane `o` (an index over the unpadded leading dims), in order.
// Offsets count elements; input offsets use `in_strides`.
template <class F>
void for_each_row(const PadPlan& p, const Shape& in_strides, int64_t o, F&& f) {
  const int64_t nd = int64_t(p.out_shape.size());
  int64_t in_base = 0, rem = o;
  for (int64_t d = p.first - 1; d >= 0; --d) {
    in_base += (rem % p.out_shape[d]) * in_strides[d];
    rem /= p.out_shape[d];
  }
  const int64_t row = p.out_shape[nd - 1];
  const int64_t rows = row > 0 ? p.inner_out() / row : 0;
  const int64_t out_base = o * p.inner_out();
  for (int64_t r = 0; r < rows; ++r) {
    int64_t in_off = in_base, rr = r;
    for (int64_t d = nd - 2; d >= p.first; --d) {
      const int64_t idx = p.tables[d - p.first][rr % p.out_shape[d]];
      rr /= p.out_shape[d];
      if (idx < 0 || in_off < 0) in_off = -1;
      else in_off += idx * in_strides[d];
    }
    f(out_base + r * row, in_off);
  }
}

Tensor pad_forward(const Tensor& x, const PadPlan& p, double value) {
  Tensor out = empty(p.out_shape, x.dtype());
  if (out.numel() == 0) return out;
  const int64_t nd = x.dim();
  const std::vector<int64_t>& last = p.tables.back();
  const int64_t row = p.out_shape[nd - 1], s_last = x.strides()[nd - 1];
  const Shape in_strides = x.strides();
  cpu::dispatch_storage(x.dtype(), "pad", [&]<class T>() {
    const T* xp = static_cast<const T*>(x.raw_data());
    T* op = out.data<T>();
    const T fill = cpu::scalar_cast<T>(value);
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(p.inner_out(), 1));
    cpu::parallel_for(p.outer(), grain, [&](int64_t o0, int64_t o1) {
      for (int64_t o = o0; o < o1; ++o)
        for_each_row(p, in_strides, o, [&](int64_t out_off, int64_t in_off) {
          T* orow = op + out_off;
          if (in_off < 0) {
            std::fill(orow, orow + row, fill);
            return;
          }
          const T* irow = xp + in_off;
          for (int64_t w = 0; w < row; ++w) {
            const int64_t i = last[w];
            orow[w] = i < 0 ? fill : irow[i * s_last];
          }
        });
    });
  });
  return out;
}

// grad_in[source of each output element] += grad_out; grad_out is contiguous.
Tensor pad_backward(const Tensor& g_in, const PadPlan& p) {
  const DType dt = g_in.dtype(), ct = cpu::compute_dtype(dt);
  Tensor g = g_in.to(ct).contiguous();
  Tensor gx = zeros(p.in_shape, ct);
  const int64_t nd = int64_t(p.in_shape.size());
  const std::vector<int64_t>& last = p.tables.back();
  const int64_t row = p.out_shape[nd - 1];
  const Shape in_strides = gx.strides();
  if (g.numel() > 0 && gx.numel() > 0) {
    cpu::dispatch_float(ct, "pad backward", [&]<class T>() {
      const T* gp = g.data<T>();
      T* xp = gx.data<T>();
      const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(p.inner_out(), 1));
      cpu::parallel_for(p.outer(), grain, [&](int64_t o0, int64_t o1) {
        for (int64_t o = o0; o < o1; ++o)
          for_each_row(p, in_strides, o, [&](int64_t out_off, int64_t in_off) {
            if (in_off < 0) return;
            const T* grow = gp + out_off;
            T* irow = xp + in_off;
            for (int64_t w = 0; w < row; ++w)
              if (last[w] >= 0) irow[last[w]] += grow[w];
          });
      });
    });
  }
  return ct == dt ? gx : gx.to(dt);
}

// pad on a device, composed of recorded device ops (see the top of the file).
Tensor pad_on_device(const Tensor& x, const std::vector<int64_t>& pads, const PadPlan& p, PadMode mode, double value) {
  const int64_t nd = x.dim();
  Tensor cur = x;
  bool fresh = false;  // false while cur is still x or a view of it
  for (int64_t d = p.first; d < nd; ++d) {
    const int64_t k = nd - 1 - d, before = pads[size_t(2 * k)], after = pads[size_t(2 * k + 1)];
    if (before == 0 && after == 0) continue;
    if (mode != PadMode::constant) {
      const std::vector<int64_t>& table = p.tables[size_t(d - p.first)];
      cur = index_select(cur, d, from_vector(table, {int64_t(table.size())}));  // the index stays on the host
      fresh = true;
      continue;
    }
    const int64_t n = cur.size(d);
    const int64_t lo = std::max<int64_t>(-before, 0), hi = std::max<int64_t>(n - std::max<int64_t>(-after, 0), lo);
    if (lo > 0 || hi < n) cur = cur.slice(d, lo, hi);  // negative pads crop
    std::vector<Tensor> parts;
    auto slab = [&](int64_t len) {
      Shape s = cur.shape();
      s[size_t(d)] = len;
      parts.push_back(full(s, value, x.dtype(), x.device()));
    };
    if (before > 0) slab(before);
    parts.push_back(cur);
    if (after > 0) slab(after);
    if (parts.size() > 1) cur = cat(parts, d), fresh = true;
  }
  // Only cropped, or nothing padded at all: a fresh copy, as the CPU path returns.
  return fresh ? cur : cur.clone();
}

}  // namespace

Tensor pad(const Tensor& x, const std::vector<int64_t>& pads, const std::string& mode, double value) {
  const PadMode m = parse_mode(mode);
  PadPlan plan = make_plan(x, pads, m, mode);
  if (!x.device().is_cpu()) {
    if (autograd::grad_enabled() && x.requires_grad() && !is_floating(x.dtype()))
      throw std::invalid_argument(std::string("pad: cannot differentiate a ") + dtype_name(x.dtype()) + " tensor");
    return pad_on_device(x, pads, plan, m, value);
  }
  if (pads.empty()) plan.first = x.dim();  // nothing padded: a plain copy
  Tensor out;
  if (plan.tables.empty()) {
    autograd::NoGradGuard ng;
    out = x.clone();
  } else {
    out = pad_forward(x, plan, value);
  }
  if (auto rec = autograd::Recorder("pad", {x})) {
    if (!is_floating(x.dtype()))
      throw std::invalid_argument(std::string("pad: cannot differentiate a ") + dtype_name(x.dtype()) + " tensor");
    rec.finish(out, [plan](const Tensor& g, const autograd::Needs&) -> autograd::Grads {
      if (plan.tables.empty()) return {g};
      return {pad_backward(g, plan)};
    });
  }
  return out;
}

}  // namespace rv
