// attention.h: scaled dot-product attention, softmax(q k^T * scale + bias) v, for ViT and Swin.
//
//   q: (B, NH, Nq, HD)   k: (B, NH, Nk, HD)   v: (B, NH, Nk, HDv)   ->  (B, NH, Nq, HDv)
//
// bias (optional): float, broadcastable to (B, NH, Nq, Nk), added to the scaled scores. Swin adds
//   its relative position bias (NH, N, N) and its shifted-window mask (-100 where two tokens come
//   from different regions) this way. With q laid out (B*nW, NH, N, HD), view it as
//   (B, nW*NH, N, HD) and pass the combined (nW*NH, N, N) bias, which then broadcasts over B.
// mask (optional): bool, broadcastable to (B, NH, Nq, Nk), true = keep; a dropped pair's score is
//   -inf. A query whose keys are all dropped gets a zero output (and zero gradients), where a
//   plain softmax would give NaN.
// scale: defaults to HD^-0.5.
//
// Differentiable w.r.t. q, k, v and bias. Inputs may be views with any strides (q/k/v sliced out of
// one qkv projection need no copy) as long as the last dim is contiguous; otherwise they are
// copied. bf16/f16 inputs compute in f32 and round the output once.
//
// Two implementations (engine/cpu/attention_kernel.h): `reference` keeps the Nq x Nk probabilities
// of every head for the backward pass; `fused` runs blocks of queries through SIMD tile products
// and keeps only a logsumexp per query (flash-attention style). `automatic` picks fused once there are
// at least kFusedMinKeys keys and the reference for shorter rows, unless
// set_attention_impl_override() forces one (for tests and benchmarks of whole models).
#pragma once
#include <cstdint>
#include <optional>

#include "engine/tensor.h"

namespace rv {

enum class AttentionImpl { automatic, reference, fused };

// From this many keys on, `automatic` uses the fused kernels. Measured on the 2-core dev box
// (forward + backward, f32) with the earlier fused kernels, which won from about 16 keys on (1.3x
// at Swin's 49, 3x at ViT's 197, 9x at 1025); the register-blocked ones are several times faster
// again at 49 and 197 (`ropevit bench ops --filter sdpa`), so the threshold is, if anything,
// conservative.
inline constexpr int64_t kFusedMinKeys = 16;

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& bias = Tensor(),
                                    const Tensor& mask = Tensor(), std::optional<double> scale = std::nullopt,
                                    AttentionImpl impl = AttentionImpl::automatic);

// What `automatic` resolves to for these sizes, given the current override.
AttentionImpl resolve_attention_impl(AttentionImpl impl, int64_t Nq, int64_t Nk);

// Forces every `automatic` call (process-wide) to one implementation; pass `automatic` to undo.
void set_attention_impl_override(AttentionImpl impl);
AttentionImpl attention_impl_override();

}  // namespace rv
