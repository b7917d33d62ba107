// cdn_queries.cpp: DINO's contrastive denoising queries: layout, noise draws, noised labels and
// boxes, padding per image (see cdn_queries.h).
#include "models/det/cdn_queries.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "engine/ops/elementwise.h"
#include "engine/ops/index.h"

namespace rv::models::det {

namespace {

// Each image's targets checked; returns the counts n_i.
std::vector<int64_t> target_counts(const std::vector<DetTarget>& targets, int64_t num_classes, const char* op) {
  std::vector<int64_t> counts;
  for (size_t b = 0; b < targets.size(); ++b) {
    const DetTarget& t = targets[b];
    const std::string where = std::string(op) + ": targets[" + std::to_string(b) + "]";
    if (!t.labels.defined() || !t.boxes.defined())
      throw std::invalid_argument(where + ": expected defined labels and boxes (use (0) and (0, 4) tensors for no objects)");
    if (t.labels.dim() != 1 || !is_integral(t.labels.dtype()) || t.labels.dtype() == DType::boolean)
      throw std::invalid_argument(where + ": expected integer labels of shape (n), got " +
                                  std::string(dtype_name(t.labels.dtype())) + " " + shape_str(t.labels.shape()));
    const int64_t n = t.labels.size(0);
    if (t.boxes.dim() != 2 || t.boxes.size(0) != n || t.boxes.size(1) != 4 || !is_floating(t.boxes.dtype()))
      throw std::invalid_argument(where + ": expected float boxes of shape (" + std::to_string(n) + ", 4), got " +
                                  std::string(dtype_name(t.boxes.dtype())) + " " + shape_str(t.boxes.shape()));
    if (num_classes > 0)
      for (double v : t.labels.to_double_vector())
        if (v < 0 || v >= double(num_classes))
          throw std::out_of_range(where + ": label " + std::to_string(int64_t(v)) + " is outside [0, " +
                                  std::to_string(num_classes) + ")");
    counts.push_back(n);
  }
  return counts;
}

void check_settings(const CdnSettings& s, const char* op) {
  if (s.dn_number < 0)
    throw std::invalid_argument(std::string(op) + ": expected dn_number >= 0, got " + std::to_string(s.dn_number));
  if (s.num_classes <= 0)
    throw std::invalid_argument(std::string(op) + ": expected num_classes > 0, got " + std::to_string(s.num_classes));
  if (!(s.label_noise_ratio >= 0.0 && s.label_noise_ratio <= 1.0))
    throw std::invalid_argument(std::string(op) + ": expected label_noise_ratio in [0, 1], got " +
                                std::to_string(s.label_noise_ratio));
  if (!(s.box_noise_scale >= 0.0))
    throw std::invalid_argument(std::string(op) + ": expected box_noise_scale >= 0, got " +
                                std::to_string(s.box_noise_scale));
}

DnMeta layout_from_counts(const std::vector<int64_t>& counts, int64_t dn_number) {
  DnMeta m;
  for (int64_t n : counts) m.max_gt = std::max(m.max_gt, n);
  if (dn_number == 0 || m.max_gt == 0) return m;  // no denoising queries: pad_size 0, one group
  // DINO's rule, x2 for positive and negative: 2 dn_number / (2 max_gt) groups for the usual
  // dn_number >= 50; below that DINO keeps 2 dn_number groups (see cdn_queries.h).
  const int64_t twice = 2 * dn_number;
  m.num_groups = twice >= 100 ? twice / (2 * m.max_gt) : twice;
  if (m.num_groups == 0) m.num_groups = 1;  // more targets than dn queries: still one group
  m.pad_size = 2 * m.max_gt * m.num_groups;
  return m;
}

// DINO's inverse_sigmoid with eps 1e-3, in T's arithmetic.
template <class T>
T inverse_sigmoid(T x) {
  x = std::min(std::max(x, T(0)), T(1));
  const T x1 = std::max(x, T(1e-3)), x2 = std::max(T(1) - x, T(1e-3));
  return std::log(x1 / x2);
}

// The noised (cxcywh -> inverse sigmoid) box of one row, written as PyTorch evaluates DINO's
// tensor expressions so that f32 rounds the same way.
template <class T>
void noised_box(const T* gt, bool negative, const double* sign, const double* part, T scale, bool noise, T* out) {
  T box[4] = {gt[0], gt[1], gt[2], gt[3]};
  if (noise) {
    const T half_w = gt[2] / T(2), half_h = gt[3] / T(2);
    T corner[4] = {gt[0] - half_w, gt[1] - half_h, gt[0] + half_w, gt[1] + half_h};
    const T diff[4] = {half_w, half_h, half_w, half_h};
    for (int i = 0; i < 4; ++i) {
      T p = T(part[i]);
      if (negative) p += T(1);  // negatives: between lambda and 2 lambda
      p *= T(sign[i]);
      corner[i] = corner[i] + p * diff[i] * scale;
      corner[i] = std::min(std::max(corner[i], T(0)), T(1));
    }
    box[0] = (corner[0] + corner[2]) / T(2);
    box[1] = (corner[1] + corner[3]) / T(2);
    box[2] = corner[2] - corner[0];
    box[3] = corner[3] - corner[1];
  }
  for (int i = 0; i < 4; ++i) out[i] = inverse_sigmoid(box[i]);
}

template <class T>
Tensor box_queries(const std::vector<DetTarget>& targets, const std::vector<int64_t>& counts, const DnMeta& m,
                   const CdnSettings& s, const CdnNoise& noise) {
  const int64_t B = int64_t(targets.size());
  Tensor out = zeros({B, m.pad_size, 4}, dtype_of<T>());  // padding slots: box logit 0
  T* o = out.data<T>();
  std::vector<std::vector<T>> gt(targets.size());
  for (size_t b = 0; b < targets.size(); ++b)
    if (counts[b] > 0) gt[b] = targets[b].boxes.to(dtype_of<T>()).contiguous().template to_vector<T>();
  const bool noise_on = s.box_noise_scale > 0;
  int64_t r = 0;  // row = k * N + j
  for (int64_t k = 0; k < 2 * m.num_groups; ++k)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < counts[size_t(b)]; ++t, ++r) {
        T* dst = o + (b * m.pad_size + k * m.max_gt + t) * 4;
        noised_box<T>(&gt[size_t(b)][size_t(t * 4)], k % 2 == 1, &noise.sign[size_t(r * 4)], &noise.part[size_t(r * 4)],
                      T(s.box_noise_scale), noise_on, dst);
      }
  return out;
}

}  // namespace

DnMeta cdn_layout(const std::vector<DetTarget>& targets, const CdnSettings& settings) {
  check_settings(settings, "cdn_layout");
  return layout_from_counts(target_counts(targets, settings.num_classes, "cdn_layout"), settings.dn_number);
}

int64_t cdn_rows(const std::vector<DetTarget>& targets, const DnMeta& meta) {
  if (!meta.has_dn()) return 0;
  int64_t total = 0;
  for (const DetTarget& t : targets) total += t.labels.defined() ? t.labels.numel() : 0;
  return 2 * meta.num_groups * total;
}

CdnNoise draw_cdn_noise(int64_t rows, int64_t num_classes, Generator& gen) {
  if (rows < 0 || num_classes <= 0)
    throw std::invalid_argument("draw_cdn_noise: expected rows >= 0 and num_classes > 0, got " + std::to_string(rows) +
                                " and " + std::to_string(num_classes));
  CdnNoise n;
  n.flip = rand({rows}, gen, DType::f64).to_double_vector();
  const std::vector<double> u_label = rand({rows}, gen, DType::f64).to_double_vector();
  const std::vector<double> u_sign = rand({rows * 4}, gen, DType::f64).to_double_vector();
  n.part = rand({rows * 4}, gen, DType::f64).to_double_vector();
  n.new_label.resize(size_t(rows));
  for (size_t i = 0; i < u_label.size(); ++i)  // u < 1, so floor(u K) < K; the min guards rounding
    n.new_label[i] = std::min<int64_t>(num_classes - 1, int64_t(u_label[i] * double(num_classes)));
  n.sign.resize(u_sign.size());
  for (size_t i = 0; i < u_sign.size(); ++i) n.sign[i] = u_sign[i] < 0.5 ? -1.0 : 1.0;  // randint{0,1} * 2 - 1
  return n;
}

CdnQueries make_cdn_queries(const std::vector<DetTarget>& targets, const CdnSettings& s, const Tensor& weight,
                            const CdnNoise& noise) {
  const char* op = "make_cdn_queries";
  check_settings(s, op);
  if (!weight.defined() || weight.dim() != 2 || weight.size(0) != s.num_classes + 1 ||
      !(weight.dtype() == DType::f32 || weight.dtype() == DType::f64))
    throw std::invalid_argument(std::string(op) + ": expected label_enc_weight of shape (num_classes + 1 = " +
                                std::to_string(s.num_classes + 1) + ", hidden), float32 or float64, got " +
                                (weight.defined() ? std::string(dtype_name(weight.dtype())) + " " + shape_str(weight.shape())
                                                  : std::string("an undefined tensor")));
  const std::vector<int64_t> counts = target_counts(targets, s.num_classes, op);
  const DnMeta m = layout_from_counts(counts, s.dn_number);
  const int64_t rows = cdn_rows(targets, m);
  if (int64_t(noise.flip.size()) != rows || int64_t(noise.new_label.size()) != rows ||
      int64_t(noise.sign.size()) != 4 * rows || int64_t(noise.part.size()) != 4 * rows)
    throw std::invalid_argument(std::string(op) + ": expected noise for " + std::to_string(rows) +
                                " rows (flip and new_label: " + std::to_string(rows) + ", sign and part: " +
                                std::to_string(4 * rows) + "), got " + std::to_string(noise.flip.size()) + ", " +
                                std::to_string(noise.new_label.size()) + ", " + std::to_string(noise.sign.size()) +
                                ", " + std::to_string(noise.part.size()));
  const int64_t B = int64_t(targets.size());

  // Noised labels in their slots (-1: padding), DINO's row order.
  std::vector<int64_t> slot_label(size_t(B * m.pad_size), -1);
  if (m.has_dn()) {
    std::vector<std::vector<double>> labels(targets.size());
    for (size_t b = 0; b < targets.size(); ++b) labels[b] = targets[b].labels.to_double_vector();
    const double threshold = s.label_noise_ratio * 0.5;
    int64_t r = 0;
    for (int64_t k = 0; k < 2 * m.num_groups; ++k)
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < counts[size_t(b)]; ++t, ++r) {
          int64_t label = int64_t(labels[size_t(b)][size_t(t)]);
          if (s.label_noise_ratio > 0 && noise.flip[size_t(r)] < threshold) {
            label = noise.new_label[size_t(r)];
            if (label < 0 || label >= s.num_classes)
              throw std::out_of_range(std::string(op) + ": noise.new_label[" + std::to_string(r) + "] = " +
                                      std::to_string(label) + " is outside [0, " + std::to_string(s.num_classes) + ")");
          }
          slot_label[size_t(b * m.pad_size + k * m.max_gt + t)] = label;
        }
  }

  CdnQueries q;
  q.meta = m;
  q.noised_labels = from_vector(slot_label, {B, m.pad_size});
  // Label queries: the embedding of each slot's label, times 0 on padding slots (DINO leaves them
  // zero), so only real slots send gradient to the embedding rows.
  std::vector<int64_t> index(slot_label.size());
  std::vector<double> keep(slot_label.size());
  for (size_t i = 0; i < slot_label.size(); ++i) {
    index[i] = std::max<int64_t>(slot_label[i], 0);
    keep[i] = slot_label[i] >= 0 ? 1.0 : 0.0;
  }
  const Device dev = weight.device();
  const Tensor picked = embedding(weight, from_vector(index, {B, m.pad_size}).to(dev));  // (B, pad, hidden)
  q.label_queries = mul(picked, from_vector(keep, {B, m.pad_size, 1}, weight.dtype()).to(dev));
  q.box_queries = (weight.dtype() == DType::f64 ? box_queries<double>(targets, counts, m, s, noise)
                                                : box_queries<float>(targets, counts, m, s, noise))
                      .to(dev);
  return q;
}

CdnQueries make_cdn_queries(const std::vector<DetTarget>& targets, const CdnSettings& settings,
                            const Tensor& label_enc_weight, Generator& gen) {
  check_settings(settings, "make_cdn_queries");
  const DnMeta m = layout_from_counts(target_counts(targets, settings.num_classes, "make_cdn_queries"), settings.dn_number);
  return make_cdn_queries(targets, settings, label_enc_weight,
                          draw_cdn_noise(cdn_rows(targets, m), settings.num_classes, gen));
}

}  // namespace rv::models::det
