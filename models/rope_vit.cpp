// rope_vit.cpp: VitRope, the axial table / mixed parameter of a RoPE-ViT and the per-grid angles.
#include "models/rope_vit.h"

#include <stdexcept>
#include <string>

#include "engine/autograd.h"
#include "engine/nn/init.h"
#include "engine/ops/rope.h"
#include "engine/ops/shape.h"

namespace rv::models {

VitRope::VitRope(bool mixed, int64_t depth, int64_t num_heads, int64_t head_dim, double theta, Generator& gen)
    : mixed_(mixed), depth_(depth), heads_(num_heads), head_dim_(head_dim) {
  if (depth < 0 || num_heads <= 0 || head_dim <= 0 || head_dim % 4 != 0)
    throw std::invalid_argument("VitRope: expected depth >= 0, num_heads > 0 and head_dim a positive multiple of 4, "
                                "got depth " + std::to_string(depth) + ", " + std::to_string(num_heads) +
                                " heads, head_dim " + std::to_string(head_dim));
  if (!mixed) {
    axial_freqs_ = rope_axial_freqs(1, head_dim, theta);  // (2, 1, HD/2)
    return;
  }
  Tensor f;
  if (nn::init::init_skipped()) {
    f = empty({2, depth, num_heads, head_dim / 2});  // weights come from a checkpoint next
  } else {
    // Block by block, as the reference draws its angles: (2, NH, HD/2) each, stacked on dim 1.
    std::vector<Tensor> per_block;
    for (int64_t l = 0; l < depth; ++l) per_block.push_back(rope_mixed_freqs(num_heads, head_dim, gen, theta));
    f = depth > 0 ? stack(per_block, 1) : empty({2, 0, num_heads, head_dim / 2});
  }
  freqs = register_parameter("freqs", f.contiguous());
}

const Tensor& VitRope::positions(Grid grid, Device device) {
  const CacheKey key{grid.h, grid.w, device.str()};
  auto it = positions_.find(key);
  if (it == positions_.end()) it = positions_.emplace(key, rope_grid_positions(grid.h, grid.w).to(device)).first;
  return it->second;
}

std::vector<Tensor> VitRope::angles(Grid grid, Device device) {
  if (grid.h <= 0 || grid.w <= 0)
    throw std::invalid_argument("VitRope::angles: expected a positive grid, got " + std::to_string(grid.h) + "x" +
                                std::to_string(grid.w));
  if (!mixed_) {
    const CacheKey key{grid.h, grid.w, device.str()};
    auto it = axial_angles_.find(key);
    if (it == axial_angles_.end()) {
      autograd::NoGradGuard ng;  // a constant table, made on the host (1, N, HD/2)
      it = axial_angles_.emplace(key, rope_angles(axial_freqs_, positions(grid, cpu_device())).to(device)).first;
    }
    return std::vector<Tensor>(size_t(depth_), it->second);
  }
  // All blocks in one call: (2, L, NH, HD/2) -> (2, L*NH, HD/2) -> (L*NH, N, HD/2) -> (L, NH, N, HD/2).
  const int64_t N = grid.tokens(), P = head_dim_ / 2;
  const Tensor& pos = positions(grid, freqs.device());
  Tensor all = rope_angles(freqs.reshape({2, depth_ * heads_, P}), pos).reshape({depth_, heads_, N, P});
  std::vector<Tensor> out;
  out.reserve(size_t(depth_));
  for (int64_t l = 0; l < depth_; ++l) out.push_back(all.select(0, l));
  return out;
}

}  // namespace rv::models
