// cdn_queries.h: DINO's contrastive denoising (CDN) queries (DINO's prepare_for_cdn): noised
// copies of the ground truth fed to the decoder in front of the matching queries. Positive copies
// (a little noise) must be reconstructed into their gt box and label; negative copies (more
// noise) must be called "no object". This teaches the decoder to refine boxes and to reject
// near-misses, which stabilises the early bipartite matching.
//
// For a batch whose images hold n_i targets (max_gt = max n_i), with dn_number = 100 (DINO's):
//   groups   G = (2 dn_number) / (2 max_gt) when 2 dn_number >= 100, else 2 dn_number (DINO's
//            rule, kept as written: a dn_number under 50 gives 2 dn_number groups whatever
//            max_gt is); at least 1. No targets in the whole batch: G = 1 and pad_size = 0
//            (no denoising queries; the matching queries see each other only).
//   rows     every target is copied 2 G times, row r = k * N + j for copy k in [0, 2 G) and the
//            j-th target of the batch (image 0's targets, then image 1's, ...), N = sum n_i;
//            even k are positives, odd k negatives (DINO's positive_idx / negative_idx).
//   labels   row r's label is replaced by new_label[r] when flip[r] < label_noise_ratio / 2.
//   boxes    in corners (x1, y1, x2, y2) with diff = (w/2, h/2, w/2, h/2):
//              corner += sign * (part + [negative]) * diff * box_noise_scale, then clamp to [0, 1]
//            (sign in {-1, +1}, part in [0, 1)): a positive corner moves less than lambda = diff,
//            a negative one between lambda and 2 lambda. Back to cxcywh, then inverse sigmoid
//            (DINO's: clamp to [0, 1], log(max(x, 1e-3) / max(1 - x, 1e-3))).
//   placing  copy k of image b's target t goes to slot k * max_gt + t of image b (dn_meta.h);
//            the other slots are padding: label query 0, box query 0.
//   label query = label_enc.weight[label] (label_enc = Embedding(num_classes + 1, hidden), row
//            num_classes unused as in DINO), differentiable in that weight; box queries carry no
//            gradient.
//
// Randomness: every draw is in a CdnNoise, either from a Generator (draw_cdn_noise: training is
// reproducible from the seed) or given by a test (the same draws as a PyTorch transcription).
#pragma once
#include <cstdint>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"
#include "models/det/dn_meta.h"
#include "models/det/hungarian_matcher.h"

namespace rv::models::det {

struct CdnSettings {
  int64_t dn_number = 100;         // DINO's dn_number (queries before the x2 for positive / negative)
  double label_noise_ratio = 0.5;  // a label is replaced with probability label_noise_ratio / 2
  double box_noise_scale = 1.0;    // lambda, relative to the half width / height
  int64_t num_classes = 80;        // labels and noised labels are in [0, num_classes)
};

// The layout for a batch (groups and pad size) from the targets' counts; no randomness.
DnMeta cdn_layout(const std::vector<DetTarget>& targets, const CdnSettings& settings);

// Every random number the queries need for `rows` = 2 G N noised rows (cdn_rows):
struct CdnNoise {
  std::vector<double> flip;         // (rows) U[0, 1): replace the label when < label_noise_ratio / 2
  std::vector<int64_t> new_label;   // (rows) in [0, num_classes): the replacement (used only there)
  std::vector<double> sign;         // (rows * 4) -1 or +1, per corner coordinate
  std::vector<double> part;         // (rows * 4) U[0, 1): the noise as a fraction of diff
};

// 2 * num_groups * (total targets of the batch): the rows a CdnNoise must hold.
int64_t cdn_rows(const std::vector<DetTarget>& targets, const DnMeta& meta);

// Draws a CdnNoise for `rows` rows from `gen` (Philox: four uniform draws per row and corner,
// fixed by the generator's seed and offset).
CdnNoise draw_cdn_noise(int64_t rows, int64_t num_classes, Generator& gen);

struct CdnQueries {
  Tensor label_queries;  // (B, pad_size, hidden), label_enc_weight's dtype; grad to label_enc_weight
  Tensor box_queries;    // (B, pad_size, 4), inverse-sigmoid cxcywh, same dtype, no gradient
  Tensor noised_labels;  // (B, pad_size) int64: the (flipped) label of each slot, -1 for padding
  DnMeta meta;
};

// targets: one DetTarget per image (labels (n_i) int, boxes (n_i, 4) normalised cxcywh);
// label_enc_weight (num_classes + 1, hidden) float. The box arithmetic is done in the weight's
// dtype (f32 or f64) in PyTorch's order, so f32 matches PyTorch's f32 to rounding.
CdnQueries make_cdn_queries(const std::vector<DetTarget>& targets, const CdnSettings& settings,
                            const Tensor& label_enc_weight, const CdnNoise& noise);
// The same with the noise drawn from `gen`.
CdnQueries make_cdn_queries(const std::vector<DetTarget>& targets, const CdnSettings& settings,
                            const Tensor& label_enc_weight, Generator& gen);

}  // namespace rv::models::det
