// softmax.h: softmax and log_softmax along one dim (attention scores, classifier losses).
#pragma once
#include "engine/tensor.h"

namespace rv {

// exp(x - max) / sum(exp(x - max)) along `dim` (negative counts from the end). Float dtypes;
// bf16/f16 compute in f32. A slice that is all -inf gives NaN (as PyTorch); a slice with some
// -inf gives 0 there.
Tensor softmax(const Tensor& x, int64_t dim);
// x - max - log(sum(exp(x - max))) along `dim`: -inf where x is -inf, never log(0) elsewhere.
Tensor log_softmax(const Tensor& x, int64_t dim);

}  // namespace rv
