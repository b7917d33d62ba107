// dino_criterion.h: DINO's training loss (DINO's SetCriterion with denoising; detrex's
// DINOCriterion): the focal / L1 / GIoU losses of det_losses.h over every output DINO supervises.
//
//   final      the last decoder layer's matching queries, Hungarian-matched to the targets
//   _0 .. _L-2 each earlier decoder layer (auxiliary losses), matched on its own
//   _interm    the encoder proposals of two-stage query selection, matched on their own against
//              the same targets (DINO's interm_outputs)
//   _dn        the last layer's denoising queries, matched by construction: positive query
//              g * 2 max_gt + t of image b is target t of image b (every group g); those get box
//              and class losses; the negatives (and padding slots) appear only in the class
//              loss, as "no object" (all-zero focal targets)
//   _dn_0 ..   each earlier layer's denoising queries, the same way
//
// Each group gives loss_class (focal, alpha 0.25, gamma 2), loss_bbox (L1) and loss_giou, named
// loss_class, loss_class_dn, loss_class_0, loss_class_dn_0, ..., loss_class_interm (likewise
// bbox, giou). Normalisation: num_boxes = the batch's targets, averaged over the processes of a
// distributed run (the mean_over_ranks hook), clamped to >= 1; the dn losses divide by
// num_boxes * num_groups. Without denoising queries (none in the batch, or dn off) the dn losses
// are 0 (DINO adds zeros so the logged keys stay the same).
//
// The losses in the dict are unweighted, as DINO's criterion returns them; total is the weighted
// sum (class 1.0, bbox 5.0, giou 2.0: DINO's weight_dict, the same for dn, aux and interm), the
// one tensor to call backward() on. Gradients reach the predicted logits and boxes; the matching
// itself is piecewise constant and carries none.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "engine/tensor.h"
#include "models/det/dn_meta.h"
#include "models/det/dn_post_process.h"
#include "models/det/hungarian_matcher.h"

namespace rv::models::det {

struct DinoCriterionOptions {
  double class_weight = 1.0;  // DINO's cls_loss_coef
  double bbox_weight = 5.0;   // bbox_loss_coef
  double giou_weight = 2.0;   // giou_loss_coef
  double focal_alpha = 0.25;
  double focal_gamma = 2.0;
  MatcherCosts matcher;       // DINO's matcher: class 2, bbox 5, giou 2
  // Distributed training: maps this process's target count to the mean over all processes
  // (DINO all-reduces num_boxes and divides by the world size), e.g. with a
  // train::dist::Communicator:
  //   [comm](double n) { comm->all_reduce_sum(&n, 1, DType::f64); return n / comm->world_size(); }
  // Unset: one process (the count itself).
  std::function<double(double)> mean_over_ranks;
};

// What the criterion reads (DINO's outputs dict after dn_post_process):
struct DinoOutputs {
  std::vector<DetPrediction> layers;     // matching queries, per decoder layer, the last = final
  std::vector<DetPrediction> dn_layers;  // denoising queries, per decoder layer (same count), or
                                         // empty when there are none
  DetPrediction interm;                  // encoder proposals (B, Q_enc, K), (B, Q_enc, 4); undefined
                                         // tensors: no interm losses (one-stage)
  DnMeta dn_meta;
};

// The Hungarian matchings, one per matched output (each a MatchIndices per image).
struct DinoMatching {
  std::vector<std::vector<MatchIndices>> layers;  // per decoder layer
  std::vector<MatchIndices> interm;               // empty when outputs.interm is undefined
};

struct DinoLoss {
  std::map<std::string, Tensor> losses;  // unweighted, () each
  Tensor total;                          // () the weighted sum
};

// Matches every decoder layer and the encoder proposals to the targets (no gradient).
DinoMatching dino_match(const DinoOutputs& outputs, const std::vector<DetTarget>& targets,
                        const MatcherCosts& costs = {});

// The denoising queries' pairs by construction: image b's positives (query g * 2 max_gt + t,
// target t) for g in [0, num_groups), t in [0, n_b), group by group (DINO's dn_pos_idx order).
std::vector<MatchIndices> dn_match_indices(const std::vector<DetTarget>& targets, const DnMeta& meta);

// DINO's num_boxes: the targets of the batch (through the mean_over_ranks hook), at least 1.
double dino_num_boxes(const std::vector<DetTarget>& targets, const DinoCriterionOptions& options = {});

// The losses and total with the matching computed here, or given (fixed: for gradchecks, or to
// reuse a matching).
DinoLoss dino_criterion(const DinoOutputs& outputs, const std::vector<DetTarget>& targets,
                        const DinoCriterionOptions& options = {});
DinoLoss dino_criterion(const DinoOutputs& outputs, const std::vector<DetTarget>& targets, const DinoMatching& matching,
                        const DinoCriterionOptions& options = {});

}  // namespace rv::models::det
