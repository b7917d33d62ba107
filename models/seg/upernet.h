// upernet.h: UperNet, the segmenter of the paper's ADE20k results: mmseg's EncoderDecoder with a
// ViT or Swin backbone, a UPerHead decode head and an FCNHead auxiliary head.
//
//   images (B, 3, H, W) -> backbone -> levels (strides 4, 8, 16, 32)
//     -> decode_head (UPerHead)   -> logits (B, K, H/4, W/4)       loss weight 1
//     -> auxiliary_head (FCNHead on level 2) -> (B, K, H/16, W/16)  loss weight 0.4, training only
//   loss: each head's logits bilinear to the label size, CE with ignore 255 (models/seg/seg_loss.h)
//   predict: logits bilinear to the input size (mmseg's encode_decode), whole image or sliding
//            window, optionally averaged with the horizontally flipped image, then bilinear to
//            the label (original image) size.
//
// State dict: backbone.* (timm's names, see seg_backbone.h), decode_head.*, auxiliary_head.*
// (mmseg's names). mmseg's BatchNorm is SyncBN when data-parallel; here it is nn::BatchNorm2d
// (statistics per process), see conv_module.h.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/model_config.h"
#include "models/seg/fcn_head.h"
#include "models/seg/seg_backbone.h"
#include "models/seg/seg_loss.h"
#include "models/seg/uper_head.h"

namespace rv::models::seg {

struct UperNetConfig {
  ModelConfig backbone;                        // arch "vit" or "swin"; its num_classes is ignored
  std::vector<int64_t> vit_out_indices = {};   // ViT: four blocks ({} = 2, 5, 8, 11 for depth 12)
  int64_t num_classes = 150;                   // ADE20k
  int64_t channels = 512;                      // UPerHead width
  std::vector<int64_t> pool_scales = {1, 2, 3, 6};
  int64_t aux_channels = 256;                  // FCNHead width
  int64_t aux_in_index = 2;                    // the level the FCNHead reads (stride 16)
  double aux_loss_weight = 0.4;                // 0 = no auxiliary head at all
  double dropout_ratio = 0.1;                  // Dropout2d before both classifiers
  int64_t ignore_index = 255;
  bool avg_non_ignore = false;                 // mmseg's default (see seg_loss.h)
  uint64_t seed = 0;                           // neck and head init (the backbone uses backbone.seed)
};

struct SegLosses {
  Tensor decode;  // () decode head CE
  Tensor aux;     // () 0.4 x auxiliary CE; undefined without an auxiliary head
  Tensor total;   // () decode + aux: what backward runs on
};

struct SegInferenceOptions {
  std::string mode = "whole";  // "whole" or "slide"
  Pair crop = {512, 512};      // slide: window (h, w)
  Pair stride = {341, 341};    // slide: step (h, w); mmseg's ADE20k test_cfg
  bool flip = false;           // also run the horizontally flipped image; average the softmax
  std::vector<int64_t> out_size = {};  // (H, W) to resize to (the label size); {} = input size
};

// mmseg's ADE20k UperNet recipe on a registered backbone (models/registry.h), e.g.
// "vit_base_patch16_rope_mixed_224" or "swin_tiny_patch4_window7_rope_mixed_224": 150 classes,
// channels 512, auxiliary 256 on level 2, dropout 0.1, the backbone built for crop x crop inputs.
// ViT: blocks default_vit_out_indices(depth) (2, 5, 8, 11 for 12). Swin: the window stays the
// pretraining one (7 at 224, as mmseg's upernet_swin configs keep window_size=7 at 512 crops)
// instead of growing with the resolution, so RPB tables and RoPE-Swin weights load unchanged.
// Drop path and the other training options are left as the backbone registers them.
UperNetConfig upernet_ade20k_config(const std::string& backbone_name, int64_t crop = 512);

class UperNet : public nn::Module {
 public:
  std::shared_ptr<SegBackbone> backbone;
  std::shared_ptr<UperHead> decode_head;
  std::shared_ptr<FcnHead> auxiliary_head;  // null when aux_loss_weight == 0

  explicit UperNet(const UperNetConfig& cfg);
  const UperNetConfig& config() const { return cfg_; }

  // images (B, 3, H, W), H and W multiples of backbone->size_divisor() -> decode logits (B, K, H/4, W/4).
  Tensor forward(const Tensor& images);
  // Both heads' losses on labels (B, H', W') (any size: logits are resized to it).
  SegLosses loss(const Tensor& images, const Tensor& labels);
  // mmseg's encode_decode: decode logits bilinear to the input size (B, K, H, W). Inputs whose
  // size is not a multiple of the divisor are padded with zeros at the bottom / right first and
  // the logits cropped back (mmseg's ViT pads its patch embedding the same way).
  Tensor encode_decode(const Tensor& images);
  // Inference (no grad, whatever the mode): logits (B, K, out_H, out_W) for "whole" / "slide"
  // without flip; with flip, the mean of the two softmax maps (mmseg's SegTTAModel), (B, K, ...).
  Tensor predict(const Tensor& images, const SegInferenceOptions& options = {});
  // mmseg's multi-scale (+ flip) test (SegTTAModel): `scaled` holds the same images already resized
  // by the data pipeline to each test scale (ADE20k: ratios 0.5 .. 1.75 of (2048, 512), keep ratio)
  // and normalised. Each is predicted (mode whole / slide; and flipped back when options.flip),
  // resized to out_size ({} = the first image's size) and softmaxed; returns the mean (B, K, H, W).
  Tensor predict_multi_scale(const std::vector<Tensor>& scaled, const SegInferenceOptions& options = {});
  // The class map (B, out_H, out_W) i64: argmax over K of predict.
  Tensor predict_labels(const Tensor& images, const SegInferenceOptions& options = {});

  std::string type_name() const override { return "EncoderDecoder"; }

 private:
  UperNetConfig cfg_;
};

}  // namespace rv::models::seg
