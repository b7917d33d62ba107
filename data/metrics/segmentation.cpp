// segmentation.cpp: the histograms of seg_areas in one pass over the pixels, and the metrics.
// Pixels are split into fixed chunks, each with its own histograms, summed afterwards in chunk
// order: integer sums, so the result does not depend on the thread count.
#include "data/metrics/segmentation.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>

#include "engine/cpu/parallel.h"

namespace rv::data {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

void check_int(const Tensor& t, const char* op, const char* arg) {
  DType d = t.dtype();
  if (d != DType::u8 && d != DType::i32 && d != DType::i64)
    throw std::invalid_argument(std::string(op) + ": " + arg + " must be uint8, int32 or int64, got " + dtype_name(d));
}

// Pixel values as i64 via the tensor's own type.
template <class P, class L>
void histogram_chunk(const P* p, const L* l, int64_t n, int64_t nc, int64_t ignore, int64_t* I, int64_t* Pa,
                     int64_t* La) {
  for (int64_t i = 0; i < n; ++i) {
    const int64_t y = int64_t(l[i]);
    if (y == ignore) continue;
    const int64_t q = int64_t(p[i]);
    // histc over [0, nc-1]: out-of-range values land in no bin.
    const bool q_in = q >= 0 && q < nc, y_in = y >= 0 && y < nc;
    if (q_in) ++Pa[q];
    if (y_in) ++La[y];
    if (q == y && y_in) ++I[y];
  }
}

template <class P, class L>
SegAreas areas_typed(const Tensor& pred, const Tensor& label, int64_t nc, int64_t ignore) {
  const P* p = pred.data<P>();
  const L* l = label.data<L>();
  const int64_t n = pred.numel();
  constexpr int64_t kChunk = 1 << 16;  // pixels per partial histogram
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  // partial[c] holds I, P, L for chunk c, 3 * nc counters.
  std::vector<int64_t> partial(size_t(chunks * 3 * nc), 0);
  cpu::parallel_for(chunks, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t c = lo; c < hi; ++c) {
      int64_t* h = partial.data() + c * 3 * nc;
      const int64_t b = c * kChunk, e = std::min(n, b + kChunk);
      histogram_chunk(p + b, l + b, e - b, nc, ignore, h, h + nc, h + 2 * nc);
    }
  });
  SegAreas a(nc);
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t* h = partial.data() + c * 3 * nc;
    for (int64_t k = 0; k < nc; ++k) {
      a.intersect[size_t(k)] += h[k];
      a.pred[size_t(k)] += h[nc + k];
      a.label[size_t(k)] += h[2 * nc + k];
    }
  }
  for (int64_t k = 0; k < nc; ++k) a.union_[size_t(k)] = a.pred[size_t(k)] + a.label[size_t(k)] - a.intersect[size_t(k)];
  return a;
}

template <class P>
SegAreas areas_label_dispatch(const Tensor& pred, const Tensor& label, int64_t nc, int64_t ignore) {
  switch (label.dtype()) {
    case DType::u8: return areas_typed<P, uint8_t>(pred, label, nc, ignore);
    case DType::i32: return areas_typed<P, int32_t>(pred, label, nc, ignore);
    default: return areas_typed<P, int64_t>(pred, label, nc, ignore);
  }
}

double nanmean(const std::vector<double>& v) {
  double s = 0;
  int64_t n = 0;
  for (double x : v)
    if (!std::isnan(x)) s += x, ++n;
  return n ? s / double(n) : kNaN;
}

}  // namespace

SegAreas::SegAreas(int64_t nc)
    : intersect(size_t(nc), 0), union_(size_t(nc), 0), pred(size_t(nc), 0), label(size_t(nc), 0) {}

SegAreas& SegAreas::operator+=(const SegAreas& o) {
  if (o.num_classes() != num_classes())
    throw std::invalid_argument("SegAreas::operator+=: adding areas of " + std::to_string(o.num_classes()) +
                                " classes to areas of " + std::to_string(num_classes()));
  for (size_t k = 0; k < intersect.size(); ++k) {
    intersect[k] += o.intersect[k];
    union_[k] += o.union_[k];
    pred[k] += o.pred[k];
    label[k] += o.label[k];
  }
  return *this;
}

SegAreas seg_areas(const Tensor& pred, const Tensor& label, int64_t num_classes, int64_t ignore_index) {
  check_int(pred, "seg_areas", "pred");
  check_int(label, "seg_areas", "label");
  if (pred.shape() != label.shape())
    throw std::invalid_argument("seg_areas: pred " + shape_str(pred.shape()) + " and label " +
                                shape_str(label.shape()) + " must have the same shape");
  if (num_classes < 1)
    throw std::invalid_argument("seg_areas: num_classes must be at least 1, got " + std::to_string(num_classes));
  Tensor p = pred.contiguous(), l = label.contiguous();
  switch (p.dtype()) {
    case DType::u8: return areas_label_dispatch<uint8_t>(p, l, num_classes, ignore_index);
    case DType::i32: return areas_label_dispatch<int32_t>(p, l, num_classes, ignore_index);
    default: return areas_label_dispatch<int64_t>(p, l, num_classes, ignore_index);
  }
}

SegMetrics seg_metrics(const SegAreas& a) {
  SegMetrics m;
  const size_t nc = size_t(a.num_classes());
  m.iou.resize(nc);
  m.acc.resize(nc);
  int64_t sum_i = 0, sum_l = 0;
  auto ratio = [](int64_t num, int64_t den) { return den ? double(num) / double(den) : kNaN; };
  for (size_t k = 0; k < nc; ++k) {
    m.iou[k] = ratio(a.intersect[k], a.union_[k]);
    m.acc[k] = ratio(a.intersect[k], a.label[k]);
    sum_i += a.intersect[k];
    sum_l += a.label[k];
  }
  m.aacc = ratio(sum_i, sum_l);
  m.miou = nanmean(m.iou);
  m.macc = nanmean(m.acc);
  return m;
}

Tensor reduce_zero_label(const Tensor& label) {
  check_int(label, "reduce_zero_label", "label");
  Tensor out = label.clone();  // a fresh contiguous copy
  auto shift = [](auto* v, int64_t n) {
    for (int64_t i = 0; i < n; ++i) {
      auto x = v[i];
      x = x == 0 ? 255 : x;  // 0 -> 255
      x = x - 1;             // everything down by one (255 -> 254)
      v[i] = x == 254 ? 255 : x;  // 254 -> 255: the old 0 and the old 255 are both ignored
    }
  };
  const int64_t n = out.numel();
  switch (out.dtype()) {
    case DType::u8: shift(out.data<uint8_t>(), n); break;
    case DType::i32: shift(out.data<int32_t>(), n); break;
    default: shift(out.data<int64_t>(), n); break;
  }
  return out;
}

}  // namespace rv::data
