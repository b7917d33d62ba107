// upernet.cpp: UperNet: backbone + heads, the two losses, whole / sliding-window / flip inference.
#include "models/seg/upernet.h"

#include <stdexcept>
#include <string>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/interpolate.h"
#include "engine/ops/pad.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape.h"
#include "engine/ops/softmax.h"
#include "models/registry.h"
#include "models/seg/slide_inference.h"
#include "models/swin.h"
#include "models/seg/swin_seg_backbone.h"
#include "models/seg/vit_seg_backbone.h"

namespace rv::models::seg {

namespace {

Tensor upernet_bilinear_to(const Tensor& x, int64_t h, int64_t w) {
  if (x.size(2) == h && x.size(3) == w) return x;
  return interpolate(x, {.size = {h, w}, .mode = "bilinear", .align_corners = false});
}

}  // namespace

UperNetConfig upernet_ade20k_config(const std::string& backbone_name, int64_t crop) {
  UperNetConfig c;
  c.backbone = model_config(backbone_name);
  if (c.backbone.arch == "swin") c.backbone.window_size = swin_window_size(c.backbone);  // before the size changes
  c.backbone.img_h = c.backbone.img_w = crop;
  c.backbone.num_classes = 0;
  if (c.backbone.arch == "vit") c.vit_out_indices = default_vit_out_indices(c.backbone.depth());
  return c;
}

UperNet::UperNet(const UperNetConfig& cfg) : cfg_(cfg) {
  // Stream 2 of the seed: apart from the backbone's init (stream 0) and its dropout (stream 1).
  Generator gen(cfg_.seed, 2);
  if (cfg_.backbone.arch == "vit")
    backbone = register_module("backbone", std::make_shared<VitSegBackbone>(cfg_.backbone, cfg_.vit_out_indices, gen));
  else if (cfg_.backbone.arch == "swin")
    backbone = register_module("backbone", std::make_shared<SwinSegBackbone>(cfg_.backbone));
  else
    throw std::invalid_argument("UperNet: expected a backbone of arch 'vit' or 'swin', got '" + cfg_.backbone.arch + "'");
  const std::vector<int64_t> ch = backbone->out_channels();
  decode_head = register_module("decode_head", std::make_shared<UperHead>(
                                                   UperHeadOptions{.in_channels = ch,
                                                                   .channels = cfg_.channels,
                                                                   .num_classes = cfg_.num_classes,
                                                                   .pool_scales = cfg_.pool_scales,
                                                                   .dropout_ratio = cfg_.dropout_ratio},
                                                   gen));
  if (cfg_.aux_loss_weight != 0.0) {
    if (cfg_.aux_in_index < 0 || cfg_.aux_in_index > 3)
      throw std::invalid_argument("UperNet: expected aux_in_index in [0, 3], got " + std::to_string(cfg_.aux_in_index));
    auxiliary_head = register_module(
        "auxiliary_head", std::make_shared<FcnHead>(FcnHeadOptions{.in_channels = ch[size_t(cfg_.aux_in_index)],
                                                                   .in_index = cfg_.aux_in_index,
                                                                   .channels = cfg_.aux_channels,
                                                                   .num_convs = 1,
                                                                   .num_classes = cfg_.num_classes,
                                                                   .dropout_ratio = cfg_.dropout_ratio},
                                                    gen));
  }
  // One dropout stream for the heads; the backbone's modules keep the ViT / Swin's own.
  auto drop_gen = std::make_shared<Generator>(cfg_.seed, 3);
  nn::set_generator(*decode_head, drop_gen);
  if (auxiliary_head) nn::set_generator(*auxiliary_head, drop_gen);
}

Tensor UperNet::forward(const Tensor& images) { return decode_head->forward(backbone->forward(images)); }

SegLosses UperNet::loss(const Tensor& images, const Tensor& labels) {
  const std::vector<Tensor> levels = backbone->forward(images);
  SegLosses out;
  const SegLossOptions base{.ignore_index = cfg_.ignore_index, .avg_non_ignore = cfg_.avg_non_ignore};
  out.decode = seg_cross_entropy(decode_head->forward(levels), labels, base);
  out.total = out.decode;
  if (auxiliary_head) {
    SegLossOptions aux = base;
    aux.loss_weight = cfg_.aux_loss_weight;
    out.aux = seg_cross_entropy(auxiliary_head->forward(levels), labels, aux);
    out.total = add(out.decode, out.aux);
  }
  return out;
}

Tensor UperNet::encode_decode(const Tensor& images) {
  if (images.dim() != 4) throw std::invalid_argument("UperNet: expected images (B, C, H, W), got " + shape_str(images.shape()));
  const int64_t H = images.size(2), W = images.size(3), d = backbone->size_divisor();
  const int64_t Hp = (H + d - 1) / d * d, Wp = (W + d - 1) / d * d;
  Tensor x = (Hp == H && Wp == W) ? images : pad(images, {0, Wp - W, 0, Hp - H});
  Tensor logits = upernet_bilinear_to(forward(x), Hp, Wp);
  return (Hp == H && Wp == W) ? logits : logits.slice(2, 0, H).slice(3, 0, W);
}

Tensor UperNet::predict(const Tensor& images, const SegInferenceOptions& opt) {
  autograd::NoGradGuard no_grad;
  auto run = [&](const Tensor& x) {
    if (opt.mode == "whole") return encode_decode(x);
    if (opt.mode == "slide") return slide_inference(x, [&](const Tensor& crop) { return encode_decode(crop); }, opt.crop, opt.stride);
    throw std::invalid_argument("UperNet::predict: expected mode 'whole' or 'slide', got '" + opt.mode + "'");
  };
  int64_t oh = images.size(2), ow = images.size(3);
  if (!opt.out_size.empty()) {
    if (opt.out_size.size() != 2) throw std::invalid_argument("UperNet::predict: expected out_size {H, W}");
    oh = opt.out_size[0], ow = opt.out_size[1];
  }
  Tensor logits = upernet_bilinear_to(run(images), oh, ow);
  if (!opt.flip) return logits;
  // mmseg's flip test: the flipped image's logits flipped back, and the softmax maps averaged.
  Tensor flipped = flip(upernet_bilinear_to(run(flip(images, {3})), oh, ow), {3});
  return mul(add(softmax(logits, 1), softmax(flipped, 1)), 0.5);
}

Tensor UperNet::predict_multi_scale(const std::vector<Tensor>& scaled, const SegInferenceOptions& opt) {
  if (scaled.empty()) throw std::invalid_argument("UperNet::predict_multi_scale: expected at least one scaled image batch");
  autograd::NoGradGuard no_grad;
  SegInferenceOptions one = opt;
  one.flip = false;
  if (one.out_size.empty()) one.out_size = {scaled[0].size(2), scaled[0].size(3)};
  Tensor acc;
  int64_t n = 0;
  for (const Tensor& img : scaled) {
    for (bool flipped : {false, true}) {
      if (flipped && !opt.flip) continue;
      Tensor p = flipped ? flip(predict(flip(img, {3}), one), {3}) : predict(img, one);
      p = softmax(p, 1);
      acc = acc.defined() ? add(acc, p) : p;
      ++n;
    }
  }
  return mul(acc, 1.0 / double(n));
}

Tensor UperNet::predict_labels(const Tensor& images, const SegInferenceOptions& opt) {
  return argmax(predict(images, opt), 1);
}

}  // namespace rv::models::seg
