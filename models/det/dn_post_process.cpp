// dn_post_process.cpp: cutting each decoder layer's outputs into the denoising and the matching
// queries (see dn_post_process.h).
#include "models/det/dn_post_process.h"

#include <stdexcept>
#include <string>

namespace rv::models::det {

DnSplit dn_post_process(const std::vector<DetPrediction>& layers, const DnMeta& meta) {
  DnSplit out;
  for (size_t l = 0; l < layers.size(); ++l) {
    const DetPrediction& p = layers[l];
    const std::string where = "dn_post_process: layer " + std::to_string(l);
    if (!p.logits.defined() || !p.boxes.defined() || p.logits.dim() != 3 || p.boxes.dim() != 3 ||
        p.boxes.size(2) != 4 || p.boxes.size(0) != p.logits.size(0) || p.boxes.size(1) != p.logits.size(1))
      throw std::invalid_argument(where + ": expected logits (B, Qt, K) and boxes (B, Qt, 4), got " +
                                  (p.logits.defined() ? shape_str(p.logits.shape()) : std::string("undefined")) +
                                  " and " + (p.boxes.defined() ? shape_str(p.boxes.shape()) : std::string("undefined")));
    const int64_t total = p.logits.size(1);
    if (total < meta.pad_size)
      throw std::invalid_argument(where + ": expected at least pad_size = " + std::to_string(meta.pad_size) +
                                  " queries, got " + std::to_string(total));
    if (!meta.has_dn()) {
      out.matching.push_back(p);
      continue;
    }
    out.dn.push_back({p.logits.narrow(1, 0, meta.pad_size), p.boxes.narrow(1, 0, meta.pad_size)});
    out.matching.push_back({p.logits.narrow(1, meta.pad_size, total - meta.pad_size),
                            p.boxes.narrow(1, meta.pad_size, total - meta.pad_size)});
  }
  return out;
}

DnSplit dn_post_process(const Tensor& logits, const Tensor& boxes, const DnMeta& meta) {
  if (!logits.defined() || !boxes.defined() || logits.dim() != 4 || boxes.dim() != 4 || logits.size(0) != boxes.size(0))
    throw std::invalid_argument("dn_post_process: expected stacked logits (L, B, Qt, K) and boxes (L, B, Qt, 4), got " +
                                (logits.defined() ? shape_str(logits.shape()) : std::string("undefined")) + " and " +
                                (boxes.defined() ? shape_str(boxes.shape()) : std::string("undefined")));
  std::vector<DetPrediction> layers;
  for (int64_t l = 0; l < logits.size(0); ++l) layers.push_back({logits.select(0, l), boxes.select(0, l)});
  return dn_post_process(layers, meta);
}

}  // namespace rv::models::det
