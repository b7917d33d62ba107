// attention_device.cpp: attention on a device as four recorded ops:
//
//   scores = matmul(q, kᵀ) * scale (+ bias)     (B, NH, Nq, Nk)
//   probs  = softmax(scores, -1)
//   out    = matmul(probs, v)                   (B, NH, Nq, HDv)
//
// Why composed: every piece is a device kernel that is tested on its own (the product, the
// softmax, the broadcast add and multiply), and autograd then gives the backward pass for free.
// The price is the (B, NH, Nq, Nk) score and probability tensors in memory, which the fused
// flash-attention kernel of issue 8 avoids; until then this is the device's reference path.
#include "engine/ops/attention_device.h"

#include <stdexcept>
#include <string>

#include "engine/ops/elementwise.h"
#include "engine/ops/matmul.h"
#include "engine/ops/softmax.h"

namespace rv {

Tensor attention_composed_on_device(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias,
                                    const Tensor& mask, double scale) {
  const Device dev = q.device();
  for (const Tensor* t : {&k, &v, &bias, &mask})
    if (t->defined() && !(t->device() == dev))
      throw std::invalid_argument("scaled_dot_product_attention: q is on " + dev.str() + " but an input is on " +
                                  t->device().str() + "; move it with .to(device)");
  if (mask.defined())
    throw std::runtime_error("scaled_dot_product_attention: a boolean mask is not implemented on " + dev.str() +
                             " yet (pass an additive bias with -inf or a large negative value instead)");
  // The scale as a 0-d tensor on the device: a broadcast multiply, whose gradient is g * scale.
  const Tensor s = full({}, scale, q.dtype(), dev);
  Tensor scores = mul(matmul(q, k.transpose(-2, -1)), s);
  if (bias.defined()) scores = add(scores, bias.dtype() == scores.dtype() ? bias : bias.to(scores.dtype()));
  return matmul(softmax(scores, -1), v);
}

}  // namespace rv
