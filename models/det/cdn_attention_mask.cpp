// cdn_attention_mask.cpp: the blocked (query, key) pairs of DINO's denoising training (see
// cdn_attention_mask.h).
#include "models/det/cdn_attention_mask.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "engine/cpu/parallel.h"

namespace rv::models::det {

Tensor cdn_attention_mask(const DnMeta& meta, int64_t num_queries) {
  if (num_queries < 0 || meta.max_gt < 0 || meta.num_groups < 1 ||
      meta.pad_size != 2 * meta.max_gt * meta.num_groups)
    throw std::invalid_argument("cdn_attention_mask: expected num_queries >= 0 and a DnMeta with pad_size = 2 * max_gt * "
                                "num_groups, got num_queries " + std::to_string(num_queries) + ", max_gt " +
                                std::to_string(meta.max_gt) + ", num_groups " + std::to_string(meta.num_groups) +
                                ", pad_size " + std::to_string(meta.pad_size));
  const int64_t pad = meta.pad_size, total = pad + num_queries, group = meta.group_size();
  Tensor out = empty({total, total}, DType::boolean);
  bool* o = out.data<bool>();
  // One row per thread chunk: each element is written once, so the result is thread-count free.
  cpu::parallel_for(total, 16, [&](int64_t i0, int64_t i1) {
    for (int64_t i = i0; i < i1; ++i) {
      bool* row = o + i * total;  // runs of equal values: memset-like fills
      if (i >= pad) {  // a matching query: blind to every denoising query
        std::fill(row, row + pad, true);
      } else {  // a denoising query: blind to the other groups' denoising queries
        const int64_t g0 = (i / group) * group, g1 = g0 + group;
        std::fill(row, row + g0, true);
        std::fill(row + g0, row + g1, false);
        std::fill(row + g1, row + pad, true);
      }
      std::fill(row + pad, row + total, false);  // everyone sees the matching queries
    }
  });
  return out;
}

}  // namespace rv::models::det
