// loss.h: training losses, each matching its torch.nn.functional namesake in values,
// reductions, edge cases and gradients.
//
//   cross_entropy                     classification / segmentation, hard or soft (Mixup) targets
//   binary_cross_entropy_with_logits  multi-label / DeiT III style BCE on logits
//   mse_loss, l1_loss, smooth_l1_loss regression (box and depth heads)
//
// Reductions: `none` keeps one loss per element (per position for cross_entropy), `sum` adds
// them, `mean` divides the sum by the element count (cross_entropy with class indices: by the
// summed class weight of the non-ignored targets, as PyTorch). A mean over nothing is NaN.
// Sums are accumulated in f64 in a fixed order, so losses do not depend on the thread count.
#pragma once
#include <cstdint>
#include <string>

#include "engine/tensor.h"

namespace rv {

enum class Reduction { none, mean, sum };

const char* reduction_name(Reduction r);      // "none", "mean", "sum"
Reduction parse_reduction(const std::string& s);  // the inverse; anything else is an error

struct CrossEntropyOptions {
  Tensor weight = Tensor();       // (K,) per-class weights; undefined = all ones. Not differentiable.
  int64_t ignore_index = -100;    // class-index targets equal to this add no loss and no weight
  double label_smoothing = 0.0;   // in [0, 1]: the target becomes (1 - s) * target + s / K
  Reduction reduction = Reduction::mean;
};

// Cross entropy between softmax(logits) over dim 1 and `target`.
//   logits: (B, K) or (B, K, d1, d2, ...) e.g. (B, K, H, W) for segmentation; (K) unbatched.
//   target: class indices, integer dtype, shape (B, d1, ...) ((), unbatched), each in [0, K) or
//           ignore_index; or probabilities, float, the same shape as logits (soft targets).
// Returns () for mean/sum, or (B, d1, ...) for none (ignored positions hold 0).
// Differentiable in logits, and in soft targets.
Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options = {});

// Mean/sum/none of  weight * [ pos_weight * t * softplus(-x) + (1 - t) * softplus(x) ],
// i.e. -w [p t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))] computed without overflow.
//   input, target: the same shape;  weight, pos_weight: broadcast to it (pos_weight is
//   usually (C), one per class in the last dim). Differentiable in input and target.
Tensor binary_cross_entropy_with_logits(const Tensor& input, const Tensor& target, const Tensor& weight = {},
                                        const Tensor& pos_weight = {}, Reduction reduction = Reduction::mean);

// (x - t)^2. input and target broadcast (PyTorch warns there; we allow it); both differentiable.
Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);
// |x - t|; the gradient at x == t is 0 (sign(0)), as PyTorch.
Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean);
// 0.5 (x - t)^2 / beta where |x - t| < beta, else |x - t| - 0.5 beta. beta = 0 is l1_loss;
// beta < 0 is an error.
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction = Reduction::mean,
                      double beta = 1.0);

}  // namespace rv
