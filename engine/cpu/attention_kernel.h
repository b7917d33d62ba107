// attention_kernel.h: the CPU kernels behind scaled_dot_product_attention (engine/ops/attention.h).
//
// Two implementations of softmax(q k^T * scale + bias) v, forward and backward:
//   reference (attention_reference.cpp): scores, probabilities and their gradients as whole
//     Nq x Nk matrices per (batch, head); the probabilities are kept for the backward pass.
//   fused (attention_fused.cpp): flash-attention style; blocks of queries against whole key rows
//     on register-blocked SIMD tile products, only a per-row logsumexp is kept, and the backward
//     pass recomputes the probabilities block by block. Memory stays O(N) per thread instead of
//     O(N^2) per head.
//
// Both read q, k, v through strides (the last dim must be contiguous), so q/k/v views of one qkv
// projection need no copy, and they read bias and mask through broadcast strides over
// (B, NH, Nq, Nk) (0 on a broadcast dim). A row whose keys are all masked (or -inf) gives a zero
// output and zero gradients.
#pragma once
#include <cstdint>

namespace rv::cpu {

// Where row n of head h of batch b starts: base + b*sb + h*sh + n*sn (elements; unit last stride).
struct RowStrides {
  int64_t sb = 0, sh = 0, sn = 0;
};

template <class T>
struct AttentionArgs {
  int64_t B = 0, NH = 0, Nq = 0, Nk = 0, HD = 0, HDv = 0;  // q,k: (.., HD), v: (.., HDv)
  T scale = T(1);
  const T* q = nullptr;
  const T* k = nullptr;
  const T* v = nullptr;
  RowStrides sq, sk, sv;
  const T* bias = nullptr;  // optional, additive; strides over (B, NH, Nq, Nk)
  int64_t bias_s[4] = {0, 0, 0, 0};
  const bool* mask = nullptr;  // optional, true = keep
  int64_t mask_s[4] = {0, 0, 0, 0};
};

// Gradients. dq/dk/dv are contiguous (B, NH, N, HD|HDv). dbias (optional) is a contiguous buffer of
// the bias's own (1-padded to 4-D) shape, reached with strides dbias_s over (B, NH, Nq, Nk) that are 0
// on the dims the bias broadcasts along; contributions that meet there are summed.
template <class T>
struct AttentionGrads {
  T* dq = nullptr;
  T* dk = nullptr;
  T* dv = nullptr;
  double* dbias = nullptr;
  int64_t dbias_s[4] = {0, 0, 0, 0};
};

// Reference. out: (B, NH, Nq, HDv); probs: (B, NH, Nq, Nk), kept for the backward pass.
template <class T>
void attention_reference_forward(const AttentionArgs<T>& a, T* out, T* probs);
// dout: contiguous (B, NH, Nq, HDv). dscores (optional): (B, NH, Nq, Nk), the gradient of the
// scores, written only when asked for (the bias gradient sums it down to the bias's shape).
template <class T>
void attention_reference_backward(const AttentionArgs<T>& a, const T* probs, const T* dout, T* dq, T* dk, T* dv,
                                  T* dscores);

// Fused. out: (B, NH, Nq, HDv); lse: (B, NH, Nq) logsumexp of each score row (+inf for a row
// with every key masked, so that its recomputed probabilities are 0).
template <class T>
void attention_fused_forward(const AttentionArgs<T>& a, T* out, T* lse);
// out and dout: contiguous (B, NH, Nq, HDv).
template <class T>
void attention_fused_backward(const AttentionArgs<T>& a, const T* out, const T* lse, const T* dout,
                              const AttentionGrads<T>& g);

}  // namespace rv::cpu
