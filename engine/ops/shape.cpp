// shape.cpp: cat, stack, split, chunk, roll, flip, repeat, window_partition, window_reverse.
//
// roll, flip and repeat share one copy kernel, remap_copy: each output coordinate j along dim
// d reads input coordinate map_d(j), so the input element offset of an output element is a
// sum of per-dim table entries, table_d[j] = map_d(j) * x.stride(d). roll uses
// map(j) = (j - shift) mod n, flip map(j) = n - 1 - j, repeat map(j) = j mod n. Along the last
// dim the kernel copies whole unit-stride runs with memcpy when the map has few of them (a roll
// of (B, H, W, C) over H and W copies one C-run per token; a roll of the last dim two runs).
// On a device, roll and flip are one index_select (a gather kernel) per moved dim instead
// (repeat has no device path yet).
//
// cat copies in one parallel pass (cat_slabs) when every input is contiguous from the cat dim
// on (whatever its outer strides: Swin's patch-merging views, ViT's expanded class token), and
// otherwise input by input through copy_ into narrow() views of the output.
//
// split and chunk are narrow() views; stack is unsqueeze + cat; the window ops are reshape +
// permute + contiguous. Their gradients come from those ops, so they record nothing themselves.
#include "engine/ops/shape.h"

#include <cstring>

#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/cpu/parallel.h"
#include "engine/ops/index.h"
#include "engine/ops/reduce.h"

namespace rv {

using autograd::Grads;
using autograd::Needs;

namespace {

using Tables = std::vector<std::vector<int64_t>>;

template <class T>
void remap_kernel(const T* xp, T* op, const Shape& shape, const Tables& tables) {
  const int64_t nd = int64_t(shape.size());
  const int64_t last = shape[nd - 1];
  const int64_t rows = shape_numel(shape) / last;
  const std::vector<int64_t>& tl = tables[nd - 1];
  struct Run { int64_t out, in, len; };
  std::vector<Run> runs;
  for (int64_t j = 0; j < last; ++j) {
    if (j > 0 && tl[j] == tl[j - 1] + 1) ++runs.back().len;
    else runs.push_back({j, tl[j], 1});
  }
  const bool use_runs = int64_t(runs.size()) * 4 <= last;
  cpu::parallel_for(rows, std::max<int64_t>(1, 32768 / last), [&](int64_t r0, int64_t r1) {
    // Input offset of row r0's first element, kept up to date like an odometer.
    std::vector<int64_t> coord(size_t(nd), 0);
    int64_t base = 0, rem = r0;
    for (int64_t d = nd - 2; d >= 0; --d) {
      coord[d] = rem % shape[d];
      rem /= shape[d];
      base += tables[d][coord[d]];
    }
    for (int64_t r = r0; r < r1; ++r) {
      T* orow = op + r * last;
      const T* xb = xp + base;
      if (use_runs) {
        for (const Run& run : runs) std::memcpy(orow + run.out, xb + run.in, size_t(run.len) * sizeof(T));
      } else {
        for (int64_t j = 0; j < last; ++j) orow[j] = xb[tl[j]];
      }
      for (int64_t d = nd - 2; d >= 0; --d) {
        base -= tables[d][coord[d]];
        if (++coord[d] < shape[d]) {
          base += tables[d][coord[d]];
          break;
        }
        coord[d] = 0;
        base += tables[d][0];
      }
    }
  });
}

// out (out_shape, contiguous)[j_0, ..., j_k] = x.data[sum_d tables[d][j_d]]; no autograd.
Tensor remap_copy(const Tensor& x, const Shape& out_shape, Tables tables) {
  Tensor out = empty(out_shape, x.dtype());
  if (out.numel() == 0) return out;
  Shape shape = out_shape;
  if (shape.empty()) {  // 0-d: one element at offset 0
    shape = {1};
    tables = {{0}};
  }
  const void* xp = x.raw_data();
  void* op = out.raw_data();
  switch (x.itemsize()) {  // the kernel only moves bytes, so the dtype does not matter
    case 1: remap_kernel(static_cast<const uint8_t*>(xp), static_cast<uint8_t*>(op), shape, tables); break;
    case 2: remap_kernel(static_cast<const uint16_t*>(xp), static_cast<uint16_t*>(op), shape, tables); break;
    case 4: remap_kernel(static_cast<const uint32_t*>(xp), static_cast<uint32_t*>(op), shape, tables); break;
    case 8: remap_kernel(static_cast<const uint64_t*>(xp), static_cast<uint64_t*>(op), shape, tables); break;
    default: throw std::logic_error("remap_copy: unexpected item size");
  }
  return out;
}

// The identity table of every dim of x: table_d[j] = j * stride_d.
Tables identity_tables(const Tensor& x) {
  Tables t(static_cast<size_t>(x.dim()));
  for (int64_t d = 0; d < x.dim(); ++d) {
    t[d].resize(size_t(x.shape()[d]));
    for (int64_t j = 0; j < x.shape()[d]; ++j) t[d][j] = j * x.strides()[d];
  }
  return t;
}

bool is_skipped_in_cat(const Tensor& t) { return t.dim() == 1 && t.numel() == 0; }

}  // namespace

// ---- cat / stack -------------------------------------------------------------------------------

namespace {

// cat in one pass, when every input's slab below `dim` is contiguous: for each outer index (the
// dims before dim) the inputs' slabs (length_i * inner elements) are copied side by side into
// out's row, one memcpy each, all inputs in the same parallel pass. Swin's patch merging (four
// (B, 28, 28, 96) strided views into (B, 28, 28, 384)) went through four strided copy_ passes,
// each its own thread team, each revisiting every output row. Returns false (nothing done) when
// some input's slab is not contiguous; out must be contiguous.
bool cat_slabs(const std::vector<Tensor>& ts, const std::vector<size_t>& used, int64_t dim,
               const std::vector<int64_t>& offset, const std::vector<int64_t>& length, Tensor& out) {
  const Shape& os = out.shape();
  const int64_t nd = out.dim();
  int64_t inner = 1, outer = 1;
  for (int64_t d = dim + 1; d < nd; ++d) inner *= os[d];
  for (int64_t d = 0; d < dim; ++d) outer *= os[d];
  if (out.numel() == 0) return true;
  struct Slab { const char* base; const Shape* strides; int64_t out_off, bytes; };
  std::vector<Slab> slabs;
  const int64_t item = int64_t(out.itemsize());
  for (size_t i : used) {
    if (length[i] == 0) continue;
    const Tensor& t = ts[i];
    // contiguous from dim on: stride(d) == product of the sizes after d (size-1 dims may differ)
    int64_t want = 1;
    for (int64_t d = nd - 1; d >= dim; --d) {
      if (t.shape()[d] != 1 && t.strides()[d] != want) return false;
      want *= t.shape()[d];
    }
    slabs.push_back({static_cast<const char*>(t.raw_data()), &t.strides(), offset[i] * inner * item,
                     length[i] * inner * item});
  }
  const int64_t row_bytes = os[dim] * inner * item;
  char* op = static_cast<char*>(out.raw_data());
  cpu::parallel_for(outer, std::max<int64_t>(1, 65536 / row_bytes), [&](int64_t o0, int64_t o1) {
    std::vector<int64_t> idx(size_t(std::max<int64_t>(dim, 1)), 0);  // o0 as an index over dims < dim
    for (int64_t d = dim - 1, rest = o0; d >= 0; --d) {
      idx[size_t(d)] = rest % os[d];
      rest /= os[d];
    }
    for (int64_t o = o0; o < o1; ++o) {
      char* orow = op + o * row_bytes;
      for (const Slab& sl : slabs) {
        int64_t src = 0;
        for (int64_t d = 0; d < dim; ++d) src += idx[size_t(d)] * (*sl.strides)[d];
        std::memcpy(orow + sl.out_off, sl.base + src * item, size_t(sl.bytes));
      }
      for (int64_t d = dim - 1; d >= 0; --d) {  // next outer index
        if (++idx[size_t(d)] < os[d]) break;
        idx[size_t(d)] = 0;
      }
    }
  });
  return true;
}

}  // namespace

Tensor cat(const std::vector<Tensor>& ts, int64_t dim) {
  if (ts.empty()) throw std::invalid_argument("cat: expected a non-empty list of tensors");
  for (size_t i = 0; i < ts.size(); ++i)
    if (!ts[i].defined()) throw std::invalid_argument("cat: tensor " + std::to_string(i) + " is undefined");
  if (autocast::is_enabled()) {
    // Autocast policy (engine/autocast.h): follow the inputs, and where float dtypes meet (an f32
    // CLS token before bf16 patch tokens) promote them as torch's cat does, through
    // differentiable casts. Outside autocast the engine keeps refusing, below.
    bool all_float = true, mixed = false;
    DType dt = ts[0].dtype();
    for (const Tensor& t : ts) {
      all_float = all_float && is_floating(t.dtype());
      mixed = mixed || t.dtype() != ts[0].dtype();
      dt = promote_types(dt, t.dtype());
    }
    if (all_float && mixed) {
      std::vector<Tensor> promoted;
      for (const Tensor& t : ts) promoted.push_back(t.to(dt));
      autocast::DisabledGuard inside;
      return cat(promoted, dim);
    }
  }
  for (size_t i = 1; i < ts.size(); ++i)
    if (ts[i].dtype() != ts[0].dtype())
      throw std::invalid_argument("cat: tensor 0 is " + std::string(dtype_name(ts[0].dtype())) + " but tensor " +
                                  std::to_string(i) + " is " + dtype_name(ts[i].dtype()) +
                                  "; cat does not promote (outside autocast), convert with .to() first");
  // PyTorch's legacy rule: 1-D empty tensors are skipped whatever the other shapes are.
  std::vector<size_t> used;
  for (size_t i = 0; i < ts.size(); ++i)
    if (!is_skipped_in_cat(ts[i])) used.push_back(i);
  const size_t n_in = ts.size();
  std::vector<int64_t> offset(n_in, -1), length(n_in, 0);
  Tensor out;
  if (used.empty()) {
    out = empty({0}, ts[0].dtype());
    dim = 0;
  } else {
    const Tensor& ref = ts[used[0]];
    for (size_t i : used)
      if (ts[i].dim() == 0)
        throw std::invalid_argument("cat: tensor " + std::to_string(i) + " is 0-d; zero-dimensional tensors cannot "
                                    "be concatenated (unsqueeze them, or use stack)");
    dim = wrap_dim(dim, ref.dim(), "cat");
    Shape out_shape = ref.shape();
    out_shape[dim] = 0;
    for (size_t i : used) {
      const Shape& s = ts[i].shape();
      bool ok = int64_t(s.size()) == ref.dim();
      for (int64_t d = 0; ok && d < ref.dim(); ++d) ok = d == dim || s[d] == ref.shape()[d];
      if (!ok)
        throw std::invalid_argument("cat: tensor " + std::to_string(i) + " has shape " + shape_str(s) + " but tensor " +
                                    std::to_string(used[0]) + " has shape " + shape_str(ref.shape()) +
                                    "; shapes must match except in dim " + std::to_string(dim));
      offset[i] = out_shape[dim];
      length[i] = s[dim];
      out_shape[dim] += s[dim];
    }
    for (size_t i : used)
      if (!(ts[i].device() == ref.device()))
        throw std::invalid_argument("cat: tensor " + std::to_string(i) + " is on " + ts[i].device().str() +
                                    " but tensor " + std::to_string(used[0]) + " is on " + ref.device().str() +
                                    "; move it with .to(device)");
    out = empty(out_shape, ref.dtype(), ref.device());
    autograd::NoGradGuard ng;
    // On a device each input is one strided copy into its slice of out.
    if (!ref.device().is_cpu() || !cat_slabs(ts, used, dim, offset, length, out))
      for (size_t i : used)
        if (length[i] > 0) out.narrow(dim, offset[i], length[i]).copy_(ts[i].detach());
  }
  if (auto rec = autograd::Recorder("cat", ts)) {
    rec.finish(out, [dim, offset, length](const Tensor& g, const Needs& n) -> Grads {
      Grads grads(n.size());
      for (size_t i = 0; i < n.size(); ++i) {
        if (!n[i]) continue;
        grads[i] = offset[i] < 0 ? zeros({0}, g.dtype(), g.device()) : g.narrow(dim, offset[i], length[i]);
      }
      return grads;
    });
  }
  return out;
}

Tensor stack(const std::vector<Tensor>& ts, int64_t dim) {
  if (ts.empty()) throw std::invalid_argument("stack: expected a non-empty list of tensors");
  for (size_t i = 0; i < ts.size(); ++i) {
    if (!ts[i].defined()) throw std::invalid_argument("stack: tensor " + std::to_string(i) + " is undefined");
    if (ts[i].shape() != ts[0].shape())
      throw std::invalid_argument("stack: tensor " + std::to_string(i) + " has shape " + shape_str(ts[i].shape()) +
                                  " but tensor 0 has shape " + shape_str(ts[0].shape()) +
                                  "; stack needs equal shapes");
  }
  dim = wrap_dim(dim, ts[0].dim() + 1, "stack");
  std::vector<Tensor> parts;
  parts.reserve(ts.size());
  for (const Tensor& t : ts) parts.push_back(t.unsqueeze(dim));
  return cat(parts, dim);
}

// ---- split / chunk -----------------------------------------------------------------------------

std::vector<Tensor> split(const Tensor& x, int64_t split_size, int64_t dim) {
  if (x.dim() == 0) throw std::invalid_argument("split: expected a tensor with at least 1 dim, got a 0-d tensor");
  dim = wrap_dim(dim, x.dim(), "split");
  const int64_t n = x.shape()[dim];
  if (split_size < 0) throw std::invalid_argument("split: split_size must be >= 0, got " + std::to_string(split_size));
  if (split_size == 0 && n > 0)
    throw std::invalid_argument("split: split_size can only be 0 if dim " + std::to_string(dim) +
                                " has size 0, but it has size " + std::to_string(n));
  std::vector<Tensor> pieces;
  if (n == 0) {
    pieces.push_back(x.narrow(dim, 0, 0));
    return pieces;
  }
  for (int64_t start = 0; start < n; start += split_size)
    pieces.push_back(x.narrow(dim, start, std::min(split_size, n - start)));
  return pieces;
}

std::vector<Tensor> split(const Tensor& x, const Shape& sizes, int64_t dim) {
  if (x.dim() == 0) throw std::invalid_argument("split: expected a tensor with at least 1 dim, got a 0-d tensor");
  dim = wrap_dim(dim, x.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) {
    if (s < 0) throw std::invalid_argument("split: sizes must be >= 0, got " + shape_str(sizes));
    total += s;
  }
  if (total != x.shape()[dim])
    throw std::invalid_argument("split: sizes " + shape_str(sizes) + " sum to " + std::to_string(total) +
                                " but dim " + std::to_string(dim) + " has size " + std::to_string(x.shape()[dim]));
  std::vector<Tensor> pieces;
  int64_t start = 0;
  for (int64_t s : sizes) {
    pieces.push_back(x.narrow(dim, start, s));
    start += s;
  }
  return pieces;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  if (chunks <= 0) throw std::invalid_argument("chunk: chunks must be positive, got " + std::to_string(chunks));
  if (x.dim() == 0) throw std::invalid_argument("chunk: expected a tensor with at least 1 dim, got a 0-d tensor");
  dim = wrap_dim(dim, x.dim(), "chunk");
  const int64_t n = x.shape()[dim];
  if (n == 0) {  // as torch.chunk: `chunks` empty pieces, each its own view
    std::vector<Tensor> pieces;
    for (int64_t i = 0; i < chunks; ++i) pieces.push_back(x.narrow(dim, 0, 0));
    return pieces;
  }
  return split(x, (n + chunks - 1) / chunks, dim);
}

// ---- roll / flip / repeat ----------------------------------------------------------------------

Tensor roll(const Tensor& x, const Shape& shifts, const Shape& dims) {
  if (dims.empty()) {
    if (shifts.size() != 1)
      throw std::invalid_argument("roll: with no dims, expected exactly one shift, got " + shape_str(shifts));
    return roll(x.reshape({-1}), shifts, {0}).reshape(x.shape());
  }
  if (shifts.size() != dims.size())
    throw std::invalid_argument("roll: got " + std::to_string(shifts.size()) + " shifts for " +
                                std::to_string(dims.size()) + " dims; expected one shift per dim");
  if (x.dim() == 0) throw std::invalid_argument("roll: cannot roll a 0-d tensor along a dim");
  Shape total(size_t(x.dim()), 0);  // a dim named twice gets both shifts
  for (size_t i = 0; i < dims.size(); ++i) total[wrap_dim(dims[i], x.dim(), "roll")] += shifts[i];
  Tensor xd = x.detach();
  Tensor out;
  if (!x.device().is_cpu()) {
    // On a device (Swin's shifted windows): one gather per rolled dim with the index
    // (j - s) mod n (index_select's kernel; the index stays on the host), or a copy.
    autograd::NoGradGuard no_grad;
    out = xd;
    for (int64_t d = 0; d < x.dim(); ++d) {
      const int64_t n = x.shape()[d];
      if (n == 0 || total[d] % n == 0) continue;
      const int64_t s = ((total[d] % n) + n) % n;
      std::vector<int64_t> from(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j) from[size_t(j)] = (j - s + n) % n;
      out = index_select(out, d, from_vector(from, {n}));
    }
    if (out.same(xd)) out = xd.clone();
  } else {
    Tables tables = identity_tables(xd);
    for (int64_t d = 0; d < x.dim(); ++d) {
      const int64_t n = x.shape()[d];
      if (n == 0 || total[d] % n == 0) continue;
      const int64_t s = ((total[d] % n) + n) % n;
      for (int64_t j = 0; j < n; ++j) tables[d][j] = ((j - s + n) % n) * xd.strides()[d];
    }
    out = remap_copy(xd, x.shape(), std::move(tables));
  }
  if (auto rec = autograd::Recorder("roll", {x})) {
    Shape neg_shifts;
    for (int64_t s : shifts) neg_shifts.push_back(-s);
    rec.finish(out, [neg_shifts, dims](const Tensor& g, const Needs&) -> Grads { return {roll(g, neg_shifts, dims)}; });
  }
  return out;
}

Tensor flip(const Tensor& x, const Shape& dims) {
  std::vector<bool> flipped(size_t(x.dim()), false);
  for (int64_t d : dims) {
    int64_t w = wrap_dim(d, x.dim(), "flip");
    if (x.dim() == 0) continue;
    if (flipped[w]) throw std::invalid_argument("flip: dim " + std::to_string(d) + " appears twice in " + shape_str(dims));
    flipped[w] = true;
  }
  Tensor xd = x.detach();
  Tensor out;
  if (!x.device().is_cpu()) {
    // On a device: one gather per flipped dim with the index n-1 .. 0 (index_select's kernel;
    // the index stays on the host), or a copy when nothing is flipped.
    autograd::NoGradGuard no_grad;
    out = xd;
    for (int64_t d = 0; d < x.dim(); ++d) {
      if (!flipped[d]) continue;
      const int64_t n = x.shape()[d];
      std::vector<int64_t> rev(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j) rev[size_t(j)] = n - 1 - j;
      out = index_select(out, d, from_vector(rev, {n}));
    }
    if (out.same(xd)) out = xd.clone();
  } else {
    Tables tables = identity_tables(xd);
    for (int64_t d = 0; d < x.dim(); ++d) {
      if (!flipped[d]) continue;
      const int64_t n = x.shape()[d];
      for (int64_t j = 0; j < n; ++j) tables[d][j] = (n - 1 - j) * xd.strides()[d];
    }
    out = remap_copy(xd, x.shape(), std::move(tables));
  }
  if (auto rec = autograd::Recorder("flip", {x}))
    rec.finish(out, [dims](const Tensor& g, const Needs&) -> Grads { return {flip(g, dims)}; });
  return out;
}

Tensor repeat(const Tensor& x, const Shape& repeats) {
  const int64_t nd = int64_t(repeats.size()), lead = nd - x.dim();
  if (lead < 0)
    throw std::invalid_argument("repeat: got " + std::to_string(nd) + " repeats for a " + std::to_string(x.dim()) +
                                "-d tensor; expected at least one per dim");
  for (int64_t r : repeats)
    if (r < 0) throw std::invalid_argument("repeat: repeats must be >= 0, got " + shape_str(repeats));
  Tensor xd = x.detach();
  Shape out_shape(static_cast<size_t>(nd)), in_shape(static_cast<size_t>(nd));
  Tables tables(static_cast<size_t>(nd));
  for (int64_t d = 0; d < nd; ++d) {
    const int64_t n = d < lead ? 1 : x.shape()[d - lead];
    const int64_t st = d < lead ? 0 : xd.strides()[d - lead];
    in_shape[d] = n;
    out_shape[d] = n * repeats[d];
    tables[d].resize(size_t(out_shape[d]));
    for (int64_t j = 0; j < out_shape[d]; ++j) tables[d][j] = (j % n) * st;
  }
  Tensor out = remap_copy(xd, out_shape, std::move(tables));
  if (auto rec = autograd::Recorder("repeat", {x})) {
    Shape xs = x.shape();
    rec.finish(out, [xs, in_shape, repeats](const Tensor& g, const Needs&) -> Grads {
      // View g as (r0, n0, r1, n1, ...) and sum over the copies r_d.
      Shape split_shape, copy_dims;
      for (size_t d = 0; d < in_shape.size(); ++d) {
        copy_dims.push_back(int64_t(split_shape.size()));
        split_shape.push_back(repeats[d]);
        split_shape.push_back(in_shape[d]);
      }
      if (copy_dims.empty()) return {g};
      return {sum(g.reshape(split_shape), copy_dims).reshape(xs)};
    });
  }
  return out;
}

// ---- Swin windows ------------------------------------------------------------------------------

Tensor window_partition(const Tensor& x, int64_t ws) {
  if (x.dim() != 4)
    throw std::invalid_argument("window_partition: expected x of shape (B, H, W, C), got " + shape_str(x.shape()));
  if (ws <= 0) throw std::invalid_argument("window_partition: window size must be positive, got " + std::to_string(ws));
  const int64_t B = x.shape()[0], H = x.shape()[1], W = x.shape()[2], C = x.shape()[3];
  if (H % ws != 0 || W % ws != 0)
    throw std::invalid_argument("window_partition: H = " + std::to_string(H) + " and W = " + std::to_string(W) +
                                " must be multiples of the window size " + std::to_string(ws) + " (pad first)");
  const int64_t nW = (H / ws) * (W / ws);
  // (B, H/ws, ws, W/ws, ws, C) -> (B, H/ws, W/ws, ws, ws, C): window (wr, wc), then row-major tokens.
  return x.reshape({B, H / ws, ws, W / ws, ws, C}).permute({0, 1, 3, 2, 4, 5}).contiguous().view({B * nW, ws * ws, C});
}

Tensor window_reverse(const Tensor& windows, int64_t ws, int64_t H, int64_t W) {
  if (ws <= 0) throw std::invalid_argument("window_reverse: window size must be positive, got " + std::to_string(ws));
  if (windows.dim() != 3 || windows.shape()[1] != ws * ws)
    throw std::invalid_argument("window_reverse: expected windows of shape (B*nW, " + std::to_string(ws * ws) +
                                ", C), got " + shape_str(windows.shape()));
  if (H <= 0 || W <= 0 || H % ws != 0 || W % ws != 0)
    throw std::invalid_argument("window_reverse: H = " + std::to_string(H) + " and W = " + std::to_string(W) +
                                " must be positive multiples of the window size " + std::to_string(ws));
  const int64_t nW = (H / ws) * (W / ws), C = windows.shape()[2];
  if (windows.shape()[0] % nW != 0)
    throw std::invalid_argument("window_reverse: " + std::to_string(windows.shape()[0]) +
                                " windows is not a multiple of the " + std::to_string(nW) +
                                " windows per image of " + std::to_string(H) + "x" + std::to_string(W));
  const int64_t B = windows.shape()[0] / nW;
  return windows.reshape({B, H / ws, W / ws, ws, ws, C}).permute({0, 1, 3, 2, 4, 5}).contiguous().view({B, H, W, C});
}

}  // namespace rv
