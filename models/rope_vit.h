// rope_vit.h: VitRope, the rotary position embedding of a RoPE-ViT (spec sections 2 and 3): it
// turns a patch grid into the per-block rotation angles that rope_apply (engine/ops/rope.h) uses
// on q and k of the patch tokens.
//
//   grid Gh x Gw --rope_grid_positions--> pos (Gh*Gw, 2) = (t_x, t_y) = (column, row), integers from 0
//   RoPE-Axial: fixed table (2, 1, HD/2), theta = 100: pairs j < HD/4 turn with t_x, the rest with t_y
//               angles (1, Gh*Gw, HD/2), the same for every block and head; cached per grid
//   RoPE-Mixed: learned `freqs` (2, L, NH, HD/2) = (x|y, block, head, pair), timm's `rope.freqs`
//               angles[l] = t_x * Fx[l] + t_y * Fy[l]: (NH, Gh*Gw, HD/2), rebuilt every forward so
//               that the gradient reaches `freqs`
//
// Angles are fp32 (one rounding per product, then the sum), and rope_apply takes cos / sin of
// them in fp32, as the reference. The CLS token is never rotated: the model passes
// skip_tokens = 1 to rope_apply, so the angles cover patch tokens only.
//
// As a child named `rope` of the ViT, the mixed parameter is `rope.freqs` in the state dict (as
// in timm); the axial variant has no state (timm keeps its table in non-persistent buffers).
#pragma once
#include <cstdint>
#include <map>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "engine/nn/module.h"
#include "engine/rng.h"
#include "models/ape.h"

namespace rv::models {

class VitRope : public nn::Module {
 public:
  Tensor freqs;  // mixed only: (2, L, NH, HD/2) learned, no weight decay; undefined for axial

  // mixed = false: RoPE-Axial with base `theta` (100 for ViT). mixed = true: RoPE-Mixed with the
  // random-direction init of base `theta` (10), one direction per (block, head), drawn from gen
  // block by block. head_dim must be a multiple of 4.
  VitRope(bool mixed, int64_t depth, int64_t num_heads, int64_t head_dim, double theta, Generator& gen);

  // One angle tensor per block for the patch grid `grid`: axial (1, Gh*Gw, HD/2) shared by all
  // blocks, mixed (NH, Gh*Gw, HD/2) per block (differentiable in freqs). On `device` (the
  // tokens' device): the axial table is made on the host once and moved; mixed angles are made
  // where freqs lives.
  std::vector<Tensor> angles(Grid grid, Device device = cpu_device());

  bool mixed() const { return mixed_; }
  int64_t depth() const { return depth_; }
  int64_t num_heads() const { return heads_; }
  int64_t head_dim() const { return head_dim_; }
  std::string type_name() const override { return mixed_ ? "RotaryEmbeddingMixed" : "RotaryEmbeddingCat"; }

 private:
  const Tensor& positions(Grid grid, Device device);  // (Gh*Gw, 2) f32, cached per grid and device

  bool mixed_;
  int64_t depth_, heads_, head_dim_;
  Tensor axial_freqs_;  // axial only: (2, 1, HD/2)
  // Caches keyed by (Gh, Gw, device). Inputs of a few sizes only are expected (train / eval
  // sizes), so the caches are not bounded. Not thread-safe: one model is run by one thread at a time.
  using CacheKey = std::tuple<int64_t, int64_t, std::string>;
  std::map<CacheKey, Tensor> positions_, axial_angles_;
};

}  // namespace rv::models
