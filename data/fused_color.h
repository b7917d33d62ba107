// fused_color.h: the colour end of the train chain (3-Augment's grayscale / solarize, ColorJitter's
// brightness / contrast / saturation / hue, horizontal flip, ToTensor + Normalize) in as few
// passes over the S x S image as the maths allows, with the same output as the op-by-op chain
// (augment.h's three_augment_apply / color_jitter_apply, image_ops.h's hflip and
// to_tensor_normalized), bit for bit.
//
// Why it is exact: most of these ops are a function of one byte of one channel, the same for
// every pixel (solarize; brightness = blend with black; contrast = blend with a constant grey,
// once that grey is known; the normalise of each channel). A run of them is one 256-entry table
// per channel, composed as the ops come and applied once, by the pass that must read the
// pixels anyway: contrast's mean (a read-only pass, the luma of the mapped pixels), saturation
// (it mixes channels, so it writes the mapped pixels out and the table restarts), or the final
// normalise, whose float table is the normalise of the composed byte table. Grayscale keeps
// one channel (its three would be equal; saturation is then the identity). The flip commutes
// with every op here (pixel-wise, a global mean, and the blur's symmetric box kernel), so it is
// folded into the normalise's writes.
#pragma once
#include <array>
#include <cstdint>

#include "data/augment.h"
#include "data/image.h"
#include "engine/tensor.h"

namespace rv::data {

// A pending per-channel byte map: channel c's value v stands for map[c][v].
struct ChannelLut {
  std::array<std::array<uint8_t, 256>, 3> map;
  bool identity = true;
  ChannelLut() { reset(); }
  void reset();
  // Follows the current map with f (f(c, v) -> new byte) on every channel.
  template <class F>
  void then(F&& f) {
    for (int c = 0; c < 3; ++c)
      for (int v = 0; v < 256; ++v) map[c][v] = f(c, map[c][v]);
    identity = false;
  }
};

// 3-Augment's op (when three != nullptr) and then the jitter (when jitter != nullptr), in the
// jitter's random order, on `im` (H x W x 3, or 1 channel). On return the image is `im` with
// `lut` still to apply (possibly a grey 1-channel image: grayscale). `im` is changed in place
// or replaced (blur, grayscale).
void fused_color_apply(Image& im, const ThreeAugmentParams* three, const ColorJitterParams* jitter, ChannelLut& lut);

// ToTensor + Normalize of lut(im), mirrored left-right when `flip`, into `out` (a contiguous
// f32 (3, H, W) tensor). A 1-channel `im` is written to all three planes (grayscale3).
void to_tensor_normalized_lut_into(const Image& im, const ChannelLut& lut, bool flip, const std::array<float, 3>& mean,
                                   const std::array<float, 3>& stdev, const Tensor& out);

}  // namespace rv::data
