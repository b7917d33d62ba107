// dino_criterion.cpp: DINO's loss over the final and auxiliary decoder layers, the encoder
// proposals and the denoising queries (see dino_criterion.h).
#include "models/det/dino_criterion.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "engine/ops/elementwise.h"
#include "models/det/det_losses.h"

namespace rv::models::det {

namespace {

void check_prediction(const DetPrediction& p, int64_t B, const std::string& where) {
  if (!p.logits.defined() || !p.boxes.defined() || p.logits.dim() != 3 || p.boxes.dim() != 3 ||
      p.logits.size(0) != B || p.boxes.size(0) != B || p.boxes.size(1) != p.logits.size(1) || p.boxes.size(2) != 4)
    throw std::invalid_argument("dino_criterion: " + where + ": expected logits (B, Q, K) and boxes (B, Q, 4) with B = " +
                                std::to_string(B) + " (one per target), got " +
                                (p.logits.defined() ? shape_str(p.logits.shape()) : std::string("undefined")) +
                                " and " + (p.boxes.defined() ? shape_str(p.boxes.shape()) : std::string("undefined")));
}

void check_outputs(const DinoOutputs& o, const std::vector<DetTarget>& targets) {
  const int64_t B = int64_t(targets.size());
  if (o.layers.empty()) throw std::invalid_argument("dino_criterion: expected at least one decoder layer in outputs.layers");
  for (size_t l = 0; l < o.layers.size(); ++l) check_prediction(o.layers[l], B, "layers[" + std::to_string(l) + "]");
  if (o.dn_meta.has_dn() != !o.dn_layers.empty())
    throw std::invalid_argument("dino_criterion: expected dn_layers " +
                                std::string(o.dn_meta.has_dn() ? "for each decoder layer (dn_meta.pad_size = " +
                                                                     std::to_string(o.dn_meta.pad_size) + ")"
                                                               : "to be empty (dn_meta.pad_size = 0)") +
                                ", got " + std::to_string(o.dn_layers.size()));
  if (!o.dn_layers.empty() && o.dn_layers.size() != o.layers.size())
    throw std::invalid_argument("dino_criterion: expected one dn_layers entry per decoder layer (" +
                                std::to_string(o.layers.size()) + "), got " + std::to_string(o.dn_layers.size()));
  for (size_t l = 0; l < o.dn_layers.size(); ++l) {
    const std::string where = "dn_layers[" + std::to_string(l) + "]";
    check_prediction(o.dn_layers[l], B, where);
    if (o.dn_layers[l].logits.size(1) != o.dn_meta.pad_size)
      throw std::invalid_argument("dino_criterion: " + where + ": expected pad_size = " + std::to_string(o.dn_meta.pad_size) +
                                  " denoising queries, got " + std::to_string(o.dn_layers[l].logits.size(1)));
  }
  if (o.dn_meta.has_dn())
    for (size_t b = 0; b < targets.size(); ++b)
      if (targets[b].labels.defined() && targets[b].labels.numel() > o.dn_meta.max_gt)
        throw std::invalid_argument("dino_criterion: targets[" + std::to_string(b) + "] has " +
                                    std::to_string(targets[b].labels.numel()) + " targets, more than dn_meta.max_gt = " +
                                    std::to_string(o.dn_meta.max_gt) + " (a dn_meta of another batch?)");
  if (o.interm.logits.defined() || o.interm.boxes.defined()) check_prediction(o.interm, B, "interm");
}

struct SetLoss {
  Tensor cls, bbox, giou;
};

// DINO's loss_labels + loss_boxes for one output and its pairs.
SetLoss set_loss(const DetPrediction& p, const std::vector<DetTarget>& targets, const std::vector<MatchIndices>& idx,
                 double num_boxes, const DinoCriterionOptions& opt) {
  const int64_t Q = p.logits.size(1), K = p.logits.size(2);
  const Device dev = p.logits.device();
  const Tensor onehot = focal_targets(idx, targets, Q, K, p.logits.dtype()).to(dev);  // (B, Q, K)
  const Tensor src = matched_predictions(p.boxes, idx);                              // (M, 4)
  const Tensor tgt = matched_targets(targets, idx, p.boxes.dtype()).to(p.boxes.device());
  return {focal_class_loss(p.logits, onehot, num_boxes, opt.focal_alpha, opt.focal_gamma),
          l1_box_loss(src, tgt, num_boxes), giou_box_loss(src, tgt, num_boxes)};
}

// Adds one output's three losses under `suffix` and their weighted sum into the total.
void add_terms(DinoLoss& out, const SetLoss& s, const std::string& suffix, const DinoCriterionOptions& opt) {
  out.losses["loss_class" + suffix] = s.cls;
  out.losses["loss_bbox" + suffix] = s.bbox;
  out.losses["loss_giou" + suffix] = s.giou;
  const Tensor weighted = add(add(mul(s.cls, opt.class_weight), mul(s.bbox, opt.bbox_weight)), mul(s.giou, opt.giou_weight));
  out.total = out.total.defined() ? add(out.total, weighted) : weighted;
}

}  // namespace

DinoMatching dino_match(const DinoOutputs& outputs, const std::vector<DetTarget>& targets, const MatcherCosts& costs) {
  check_outputs(outputs, targets);
  DinoMatching m;
  for (const DetPrediction& p : outputs.layers) m.layers.push_back(hungarian_match(p.logits, p.boxes, targets, costs));
  if (outputs.interm.logits.defined())
    m.interm = hungarian_match(outputs.interm.logits, outputs.interm.boxes, targets, costs);
  return m;
}

std::vector<MatchIndices> dn_match_indices(const std::vector<DetTarget>& targets, const DnMeta& meta) {
  std::vector<MatchIndices> out(targets.size());
  if (!meta.has_dn()) return out;
  for (size_t b = 0; b < targets.size(); ++b) {
    const int64_t n = targets[b].labels.defined() ? targets[b].labels.numel() : 0;
    if (n > meta.max_gt)
      throw std::invalid_argument("dn_match_indices: targets[" + std::to_string(b) + "] has " + std::to_string(n) +
                                  " targets, more than dn_meta.max_gt = " + std::to_string(meta.max_gt));
    for (int64_t g = 0; g < meta.num_groups; ++g)
      for (int64_t t = 0; t < n; ++t) {
        out[b].query.push_back(g * meta.group_size() + t);  // the positive half of group g
        out[b].target.push_back(t);
      }
  }
  return out;
}

double dino_num_boxes(const std::vector<DetTarget>& targets, const DinoCriterionOptions& options) {
  double n = 0;
  for (const DetTarget& t : targets) n += t.labels.defined() ? double(t.labels.numel()) : 0.0;
  if (options.mean_over_ranks) n = options.mean_over_ranks(n);
  return std::max(n, 1.0);  // DINO's clamp(min = 1): a batch without objects still divides by 1
}

DinoLoss dino_criterion(const DinoOutputs& outputs, const std::vector<DetTarget>& targets,
                        const DinoCriterionOptions& options) {
  return dino_criterion(outputs, targets, dino_match(outputs, targets, options.matcher), options);
}

DinoLoss dino_criterion(const DinoOutputs& o, const std::vector<DetTarget>& targets, const DinoMatching& matching,
                        const DinoCriterionOptions& opt) {
  check_outputs(o, targets);
  if (matching.layers.size() != o.layers.size())
    throw std::invalid_argument("dino_criterion: expected a matching per decoder layer (" + std::to_string(o.layers.size()) +
                                "), got " + std::to_string(matching.layers.size()));
  if (o.interm.logits.defined() && matching.interm.size() != targets.size())
    throw std::invalid_argument("dino_criterion: expected the interm matching for " + std::to_string(targets.size()) +
                                " images, got " + std::to_string(matching.interm.size()));
  const double num_boxes = dino_num_boxes(targets, opt);
  const size_t L = o.layers.size();
  const std::vector<MatchIndices> dn_idx = dn_match_indices(targets, o.dn_meta);
  const double dn_num_boxes = num_boxes * double(o.dn_meta.num_groups);
  const DType dt = o.layers.back().logits.dtype();
  const SetLoss dn_zero{scalar_tensor(0.0, dt), scalar_tensor(0.0, dt), scalar_tensor(0.0, dt)};

  DinoLoss out;
  add_terms(out, set_loss(o.layers[L - 1], targets, matching.layers[L - 1], num_boxes, opt), "", opt);
  add_terms(out, o.dn_meta.has_dn() ? set_loss(o.dn_layers[L - 1], targets, dn_idx, dn_num_boxes, opt) : dn_zero, "_dn", opt);
  for (size_t l = 0; l + 1 < L; ++l) {
    const std::string i = std::to_string(l);
    add_terms(out, set_loss(o.layers[l], targets, matching.layers[l], num_boxes, opt), "_" + i, opt);
    add_terms(out, o.dn_meta.has_dn() ? set_loss(o.dn_layers[l], targets, dn_idx, dn_num_boxes, opt) : dn_zero, "_dn_" + i,
        opt);
  }
  if (o.interm.logits.defined()) add_terms(out, set_loss(o.interm, targets, matching.interm, num_boxes, opt), "_interm", opt);
  return out;
}

}  // namespace rv::models::det
