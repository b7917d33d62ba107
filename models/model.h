// model.h: models::Model, what every backbone (ViT, Swin) offers the trainer and the task heads.
//
//   images (B, in_chans, H, W) --forward_features--> features --forward_head--> logits (B, classes)
//                              \--forward_intermediates(indices)--> feature maps (B, C_i, H_i, W_i)
//
// forward_features is the backbone up to and including its final norm: tokens (B, N, C) for
// ViT (CLS first), a map (B, H', W', C) for Swin. forward_head pools (CLS token or mean over
// tokens), applies the head dropout and the Linear head; with pre_logits it stops before the
// Linear. forward_intermediates serves detection and segmentation: the outputs of the given
// blocks (ViT) or stages (Swin) as NCHW maps, as timm's forward_intermediates does.
//
// A Model is a Module, so its state dict carries timm's names (`blocks.3.attn.qkv.weight`,
// `rope.freqs`, `layers.1.downsample.reduction.weight`) and loads timm weights unchanged.
#pragma once
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "engine/nn/containers.h"
#include "models/model_config.h"

namespace rv::models {

// One feature map forward_intermediates can return.
struct FeatureInfo {
  std::string module;  // where it is taken, e.g. "blocks.11" or "layers.2"
  int64_t channels;    // C_i
  int64_t reduction;   // input pixels per map pixel (16 for ViT/16, 4 8 16 32 for Swin)
};

class Model : public nn::UnaryModule {
 public:
  explicit Model(ModelConfig cfg) : cfg_(std::move(cfg)) {}
  const ModelConfig& config() const { return cfg_; }

  // images (B, in_chans, H, W) -> logits (B, num_classes), or the pooled features when the
  // model has no head (num_classes = 0).
  Tensor forward(const Tensor& images) override { return forward_head(forward_features(images)); }
  virtual Tensor forward_features(const Tensor& images) = 0;
  virtual Tensor forward_head(const Tensor& features, bool pre_logits = false) = 0;

  // indices: which blocks (ViT, 0..depth-1) or stages (Swin, 0..3) to return, each as
  // (B, C_i, H_i, W_i); negative indices count from the end as in Python.
  virtual std::vector<Tensor> forward_intermediates(const Tensor& images, const std::vector<int64_t>& indices) = 0;
  virtual std::vector<FeatureInfo> feature_info() const = 0;  // one entry per possible index

  // Names (or dotted suffixes / globs, see optim::name_matches) kept out of weight decay on top
  // of the 1-D and bias rule: timm's no_weight_decay().
  virtual std::set<std::string> no_weight_decay() const = 0;

 protected:
  ModelConfig cfg_;
};

}  // namespace rv::models
