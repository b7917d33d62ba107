// clip.h: gradient clipping, as torch.nn.utils.clip_grad_norm_ / clip_grad_value_.
//
// Both act in place on the .grad of the given parameters and skip parameters without one.
//   clip_grad_norm_: total = the norm of all gradients taken together (as if concatenated);
//                    every gradient is multiplied by min(1, max_norm / (total + 1e-6)).
//                    Returns total, which trainers log as "grad_norm".
//   clip_grad_value_: every gradient element is clamped to [-clip_value, clip_value].
#pragma once
#include <limits>
#include <vector>

#include "engine/tensor.h"

namespace rv::optim {

inline constexpr double kInfNorm = std::numeric_limits<double>::infinity();

// norm_type: any p > 0, or kInfNorm (max |g|). A NaN or infinite total is returned as is (and
// scales the gradients as torch does) unless error_if_nonfinite, which throws instead.
// Gradients must be float32 or float64. With no gradients at all, returns 0.
double clip_grad_norm_(const std::vector<Tensor>& params, double max_norm, double norm_type = 2.0,
                       bool error_if_nonfinite = false);

// clip_value must be >= 0. NaN gradient elements stay NaN.
void clip_grad_value_(const std::vector<Tensor>& params, double clip_value);

}  // namespace rv::optim
