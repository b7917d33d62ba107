// simple_feature_pyramid.h: ViTDet's simple feature pyramid: a multi-scale pyramid built from
// the ViT's LAST feature map alone (Li et al. 2022, "Exploring Plain Vision Transformer Backbones
// for Object Detection"), as the paper's DINO-on-ViT detector uses it (detrex's dino_vitdet:
// scale factors 2, 1, 0.5 and a last-level max pool, LN norms, 256 channels).
//
//   feature (B, C, H/16, W/16), e.g. the ViT's final tokens as a map ->
//     scale 4.0:  ConvT 2x2/2 (C -> C/2), LayerNorm2d, GELU, ConvT 2x2/2 (-> C/4)     stride 4
//     scale 2.0:  ConvT 2x2/2 (C -> C/2)                                                stride 8
//     scale 1.0:  (nothing)                                                             stride 16
//     scale 0.5:  MaxPool 2x2/2                                                         stride 32
//   each then Conv 1x1 (-> out_channels) + norm, Conv 3x3 (pad 1) + norm (no bias with a norm),
//   and with top_block a last level p(k+1) = max_pool(p_k, kernel 1, stride 2)          stride 64
//
// Followed: detectron2's modeling/backbone/vit.py (SimpleFeaturePyramid, LastLevelMaxPool) and
// detrex's projects/dino/configs/models/dino_vitdet.py. State dict as detectron2's: the levels
// are `simfp_<log2 stride>.<i>.*` (e.g. simfp_3.0.weight: the stride-8 deconvolution,
// simfp_3.1.weight + simfp_3.1.norm.{weight,bias}: its 1x1 conv), the top block holds nothing.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "engine/nn/containers.h"
#include "engine/rng.h"

namespace rv::models::det {

struct SimpleFeaturePyramidOptions {
  int64_t in_channels = 768;                        // the ViT's width
  int64_t out_channels = 256;
  std::vector<double> scale_factors = {2.0, 1.0, 0.5};  // each one of 4.0, 2.0, 1.0, 0.5
  int64_t input_stride = 16;                        // the ViT's patch size
  bool top_block = true;                            // add the max-pooled extra level
  std::string norm = "LN";                          // "LN" (LayerNorm2d) or "" (convs with bias)
};

class SimpleFeaturePyramid : public nn::Module {
 public:
  SimpleFeaturePyramid(const SimpleFeaturePyramidOptions& options, Generator& gen);

  // feature (B, C, h, w) -> the levels from the finest stride to the coarsest, each
  // (B, out_channels, h * scale, w * scale), then the top block's level.
  std::vector<Tensor> forward(const Tensor& feature);
  const std::vector<int64_t>& strides() const { return strides_; }  // e.g. 8, 16, 32, 64
  const SimpleFeaturePyramidOptions& options() const { return opt_; }
  std::string type_name() const override { return "SimpleFeaturePyramid"; }

 private:
  SimpleFeaturePyramidOptions opt_;
  std::vector<std::shared_ptr<nn::Sequential>> levels_;
  std::vector<int64_t> strides_;
};

}  // namespace rv::models::det
