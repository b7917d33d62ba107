// dn_meta.h: DnMeta, the layout of DINO's contrastive denoising (CDN) queries, shared by the
// query generator (cdn_queries.h), the attention mask (cdn_attention_mask.h), the split of the
// decoder outputs (dn_post_process.h) and the criterion (dino_criterion.h).
//
// The denoising part of the decoder's queries comes FIRST, pad_size queries per image, made of
// num_groups groups of 2 * max_gt queries each:
//
//   group g:  [g * 2 max_gt,  g * 2 max_gt + max_gt)          positive queries (the gt, slightly noised)
//             [g * 2 max_gt + max_gt,  (g + 1) * 2 max_gt)    negative queries (the gt, noised further)
//
// Within a half, slot t holds the image's target t; an image with fewer than max_gt targets leaves
// the rest of the half as padding (zero query vectors, box logit 0). The matching queries follow
// at [pad_size, pad_size + num_queries).
#pragma once
#include <cstdint>

namespace rv::models::det {

struct DnMeta {
  int64_t max_gt = 0;      // the most targets any image of the batch has (DINO's single_pad)
  int64_t num_groups = 1;  // DINO's num_dn_group (1 when there are no denoising queries)
  int64_t pad_size = 0;    // 2 * max_gt * num_groups: the denoising queries per image

  int64_t group_size() const { return 2 * max_gt; }  // DINO's criterion's single_pad
  bool has_dn() const { return pad_size > 0; }
};

}  // namespace rv::models::det
