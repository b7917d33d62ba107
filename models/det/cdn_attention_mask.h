// cdn_attention_mask.h: the decoder self-attention mask of DINO's denoising training (the
// attn_mask of DINO's prepare_for_cdn): which query may attend to which, over the pad_size
// denoising queries followed by the num_queries matching queries.
//
//   mask[i][j] = true (BLOCKED) when
//     i is a matching query and j a denoising query   (the matching queries must not see the
//                                                      answers hidden in the noised gt), or
//     i and j are denoising queries of different groups  (each group is an independent
//                                                      reconstruction; groups must not copy)
//   everything else is allowed (false): a denoising query sees its own group and every matching
//   query, a matching query sees every matching query.
//
// Shape (pad_size + num_queries) x (pad_size + num_queries), bool, true = blocked, as PyTorch's
// nn.MultiheadAttention attn_mask (engine/ops/attention.h takes the opposite convention, true =
// keep: pass logical_not of this). Without denoising queries (pad_size 0) nothing is blocked.
#pragma once
#include <cstdint>

#include "engine/tensor.h"
#include "models/det/dn_meta.h"

namespace rv::models::det {

Tensor cdn_attention_mask(const DnMeta& meta, int64_t num_queries);

}  // namespace rv::models::det
