// accuracy.cpp: one pass over each row, counting the logits that beat the label's (see the rule
// in accuracy.h). Counting beats sorting: O(C) per row and no allocation, and the count stops
// early once 5 classes beat the label. Rows are independent, so they are split over threads;
// each row writes its own rank, and the sums are formed afterwards in row order (integers, so
// the result is the same on any thread count anyway).
#include "data/metrics/accuracy.h"

#include <cmath>
#include <limits>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/cpu/parallel.h"

namespace rv::data {
namespace {

// Rank of the label in row x[0..C): how many classes come before it in a stable descending
// sort, capped at `cap` (we only need to know whether it is < 1 and < 5).
template <class T>
int64_t label_rank(const T* x, int64_t C, int64_t y, int64_t cap) {
  const T xy = x[y];
  int64_t rank = 0;
  if (std::isnan(xy)) {  // NaN is largest: only NaNs of lower index come before it
    for (int64_t j = 0; j < y && rank < cap; ++j) rank += std::isnan(x[j]);
    return rank;
  }
  for (int64_t j = 0; j < C && rank < cap; ++j) {
    const T xj = x[j];
    // NaN beats the (non-NaN) label; an equal logit beats it only from a lower index.
    rank += (xj > xy) | std::isnan(xj) | ((xj == xy) & (j < y));
  }
  return rank;
}

template <class T>
AccuracyCounts count_rows(const Tensor& logits, const std::vector<int64_t>& labels) {
  const int64_t B = logits.size(0), C = logits.size(1);
  const T* x = logits.data<T>();
  std::vector<int64_t> rank(size_t(B), 0);
  // ~C compares per row: a grain of 64k logits keeps small batches on one thread.
  cpu::parallel_for(B, std::max<int64_t>(1, 65536 / std::max<int64_t>(C, 1)), [&](int64_t lo, int64_t hi) {
    for (int64_t b = lo; b < hi; ++b) rank[size_t(b)] = label_rank(x + b * C, C, labels[size_t(b)], 5);
  });
  AccuracyCounts c;
  for (int64_t r : rank) {
    c.top1 += r < 1;
    c.top5 += r < 5;
  }
  c.total = B;
  return c;
}

}  // namespace

double AccuracyCounts::top1_fraction() const {
  return total ? double(top1) / double(total) : std::numeric_limits<double>::quiet_NaN();
}
double AccuracyCounts::top5_fraction() const {
  return total ? double(top5) / double(total) : std::numeric_limits<double>::quiet_NaN();
}

AccuracyCounts accuracy_counts(const Tensor& logits, const Tensor& labels) {
  if (!is_floating(logits.dtype()))
    throw std::invalid_argument(std::string("accuracy_counts: logits must be a float tensor, got ") +
                                dtype_name(logits.dtype()));
  if (logits.dim() != 2)
    throw std::invalid_argument("accuracy_counts: logits must be (B, C), got shape " + shape_str(logits.shape()));
  const DType ld = labels.dtype();
  if (ld != DType::i64 && ld != DType::i32 && ld != DType::u8)
    throw std::invalid_argument(std::string("accuracy_counts: labels must be int64, int32 or uint8, got ") +
                                dtype_name(ld));
  if (labels.dim() != 1 || labels.size(0) != logits.size(0))
    throw std::invalid_argument("accuracy_counts: labels must be (B,) with B = " + std::to_string(logits.size(0)) +
                                " as in logits " + shape_str(logits.shape()) + ", got shape " +
                                shape_str(labels.shape()));
  const int64_t B = logits.size(0), C = logits.size(1);
  if (C < 1) throw std::invalid_argument("accuracy_counts: logits need at least one class, got shape " +
                                         shape_str(logits.shape()));

  // Labels as i64 (any strides), each checked.
  std::vector<int64_t> y(static_cast<size_t>(B));
  {
    std::vector<double> v = labels.to_double_vector();
    for (int64_t b = 0; b < B; ++b) {
      if (!(v[size_t(b)] >= 0 && v[size_t(b)] < double(C)))
        throw std::out_of_range("accuracy_counts: label " + std::to_string(int64_t(v[size_t(b)])) + " of sample " +
                                std::to_string(b) + " is outside 0.." + std::to_string(C - 1));
      y[size_t(b)] = int64_t(v[size_t(b)]);
    }
  }
  // Logits contiguous, in f32 or f64 (bf16/f16 widen exactly to f32, so ranks do not change).
  // detach(): metrics never record a graph, even on logits that require grad.
  Tensor x = logits.detach();
  if (x.dtype() == DType::bf16 || x.dtype() == DType::f16) x = x.to(DType::f32);
  x = x.contiguous();
  return x.dtype() == DType::f64 ? count_rows<double>(x, y) : count_rows<float>(x, y);
}

}  // namespace rv::data
