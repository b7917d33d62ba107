// patch_embed.h: PatchEmbed, the ViT's image-to-tokens step (timm's PatchEmbed, child `proj`).
//
//   images (B, in_chans, H, W) -> proj: Conv2d(in_chans, C, p x p, stride p) -> (B, C, Gh, Gw)
//     -> flatten row-major -> (B, Gh*Gw, C)   [Gh = H/p, Gw = W/p; token n at row n / Gw, column n % Gw]
//
// A p x p conv with stride p is a Linear on each non-overlapping patch. Any H, W divisible by p
// is accepted (square or not); the grid is returned with the tokens so that the position
// embeddings can follow the actual input.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "engine/nn/conv.h"
#include "models/ape.h"

namespace rv::models {

class PatchEmbed : public nn::Module {
 public:
  std::shared_ptr<nn::Conv2d> proj;  // weight (C, in_chans, p, p), bias (C)

  PatchEmbed(int64_t in_chans, int64_t embed_dim, int64_t patch_size, Generator& gen);
  // images (B, in_chans, H, W) -> tokens (B, Gh*Gw, C) and the grid. `who` names the model in errors.
  std::pair<Tensor, Grid> forward(const Tensor& images, const std::string& who = "PatchEmbed");
  Grid grid(int64_t img_h, int64_t img_w) const { return {img_h / patch_, img_w / patch_}; }
  int64_t patch_size() const { return patch_; }

 private:
  int64_t in_chans_, patch_;
};

}  // namespace rv::models
