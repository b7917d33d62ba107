// patch_embed.cpp: PatchEmbed, the strided conv that cuts an image into patch tokens.
#include "models/patch_embed.h"

#include <stdexcept>

namespace rv::models {

PatchEmbed::PatchEmbed(int64_t in_chans, int64_t embed_dim, int64_t patch_size, Generator& gen)
    : in_chans_(in_chans), patch_(patch_size) {
  proj = register_module("proj", std::make_shared<nn::Conv2d>(in_chans, embed_dim, Pair{patch_size, patch_size}, gen,
                                                              nn::Conv2dOptions{.stride = {patch_size, patch_size}}));
}

std::pair<Tensor, Grid> PatchEmbed::forward(const Tensor& images, const std::string& who) {
  if (images.dim() != 4 || images.size(1) != in_chans_)
    throw std::invalid_argument(who + ": expected images (B, " + std::to_string(in_chans_) + ", H, W), got " +
                                shape_str(images.shape()));
  const int64_t H = images.size(2), W = images.size(3);
  if (H == 0 || W == 0 || H % patch_ != 0 || W % patch_ != 0)
    throw std::invalid_argument(who + ": expected an image height and width that are positive multiples of the patch " +
                                std::to_string(patch_) + ", got " + std::to_string(H) + "x" + std::to_string(W));
  Tensor maps = proj->forward(images);  // (B, C, Gh, Gw)
  Grid g{maps.size(2), maps.size(3)};
  // (B, C, Gh, Gw) -> (B, C, Gh*Gw) -> (B, Gh*Gw, C)
  return {maps.flatten(2).transpose(1, 2), g};
}

}  // namespace rv::models
