// dino_decoder.cpp: DinoDecoderLayer and DinoTransformerDecoder (dino_decoder.h): the layer order,
// the heads' sharing and initialisation, and the refinement loop with look-forward-twice.
#include "models/det/dino_decoder.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/nn/init.h"
#include "engine/ops/activation.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/shape.h"
#include "models/det/dino_geometry.h"
#include "models/det/position_embedding.h"

namespace rv::models::det {

namespace {

constexpr const char* kDinoDecoderName = "DinoTransformerDecoder";

std::string dino_decoder_str(int64_t v) { return std::to_string(v); }

}  // namespace

DinoDecoderLayer::DinoDecoderLayer(const DinoDecoderOptions& o, Generator& gen) {
  attentions = register_module("attentions", std::make_shared<nn::ModuleList>());
  attentions->push_back(std::make_shared<DetrMultiheadAttention>(o.embed_dim, o.num_heads, o.dropout, 0.0, gen));
  MSDeformAttnOptions a;
  a.embed_dims = o.embed_dim, a.num_heads = o.num_heads, a.num_levels = o.num_levels, a.num_points = o.num_points;
  a.dropout = o.dropout;
  attentions->push_back(std::make_shared<MultiScaleDeformableAttention>(a, gen));
  ffns = register_module("ffns", std::make_shared<nn::ModuleList>());
  ffns->push_back(std::make_shared<DetrFFN>(o.embed_dim, o.feedforward_dim, o.dropout, gen));
  norms = register_module("norms", std::make_shared<nn::ModuleList>());
  for (int i = 0; i < 3; ++i) norms->push_back(std::make_shared<nn::LayerNorm>(o.embed_dim));
}

Tensor DinoDecoderLayer::forward(const Tensor& x, const Tensor& query_pos, const Tensor& memory,
                                 const Tensor& reference_points, const Tensor& spatial_shapes,
                                 const Tensor& level_start_index, const Tensor& memory_mask,
                                 const Tensor& attn_mask) {
  Tensor y = norms->get<nn::LayerNorm>(0)->forward(self_attn().forward(x, query_pos, attn_mask));
  MSDeformAttnExtras extras;
  extras.query_pos = query_pos;
  extras.key_padding_mask = memory_mask;
  y = cross_attn().forward(y, memory, reference_points, spatial_shapes, level_start_index, extras);
  y = norms->get<nn::LayerNorm>(1)->forward(y);
  return norms->get<nn::LayerNorm>(2)->forward(ffns->get<DetrFFN>(0)->forward(y));
}

DinoTransformerDecoder::DinoTransformerDecoder(const DinoDecoderOptions& options, Generator& gen) : opt_(options) {
  const int64_t C = opt_.embed_dim;
  if (opt_.num_layers < 1 || opt_.num_classes < 1 || C <= 0 || C % 2 != 0)
    throw std::invalid_argument(std::string(kDinoDecoderName) + ": expected num_layers >= 1, num_classes >= 1 and an even "
                                "embed_dim > 0, got " + dino_decoder_str(opt_.num_layers) + ", " + dino_decoder_str(opt_.num_classes) + ", " +
                                dino_decoder_str(C));
  layers = register_module("layers", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < opt_.num_layers; ++i) layers->push_back(std::make_shared<DinoDecoderLayer>(opt_, gen));
  ref_point_head = register_module("ref_point_head", std::make_shared<DetrMLP>(2 * C, C, C, 2, gen));
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(C));

  // DINO's head init: a prior probability of 0.01 for every class, and a zero last box layer (so a
  // fresh head keeps the reference box).
  const double prior_bias = -std::log((1.0 - 0.01) / 0.01);
  auto make_class = [&] {
    auto m = std::make_shared<nn::Linear>(C, opt_.num_classes, gen);
    nn::init::constant_(m->bias, prior_bias);
    return m;
  };
  auto make_box = [&] {
    auto m = std::make_shared<DetrMLP>(C, C, 4, 3, gen);
    nn::init::zeros_(m->layer(2).weight);
    nn::init::zeros_(m->layer(2).bias);
    return m;
  };
  class_embed = register_module("class_embed", std::make_shared<nn::ModuleList>());
  bbox_embed = register_module("bbox_embed", std::make_shared<nn::ModuleList>());
  std::shared_ptr<nn::Linear> shared_class;
  std::shared_ptr<DetrMLP> shared_box;
  for (int64_t j = 0; j < opt_.num_layers; ++j) {
    if (!opt_.dec_pred_class_embed_share || !shared_class) shared_class = make_class();
    class_embed->push_back(shared_class);
    if (!opt_.dec_pred_bbox_embed_share || !shared_box) shared_box = make_box();
    bbox_embed->push_back(shared_box);
  }
  // the encoder's heads (index num_layers)
  class_embed->push_back(opt_.two_stage_class_embed_share ? class_embed->get<nn::Linear>(0) : make_class());
  bbox_embed->push_back(opt_.two_stage_bbox_embed_share ? bbox_embed->get<DetrMLP>(0) : make_box());
}

DinoDecoderOutput DinoTransformerDecoder::forward(const Tensor& tgt, const Tensor& reference_boxes,
                                                  const Tensor& memory, const Tensor& memory_mask,
                                                  const Tensor& spatial_shapes, const Tensor& level_start_index,
                                                  const Tensor& valid_ratios, const Tensor& attn_mask) {
  const int64_t C = opt_.embed_dim, L = opt_.num_levels;
  if (tgt.dim() != 3 || tgt.size(2) != C)
    throw std::invalid_argument(std::string(kDinoDecoderName) + ": expected `tgt` (B, Q, " + dino_decoder_str(C) + "), got " +
                                shape_str(tgt.shape()));
  const int64_t B = tgt.size(0), Q = tgt.size(1);
  if (reference_boxes.shape() != Shape{B, Q, 4})
    throw std::invalid_argument(std::string(kDinoDecoderName) + ": expected `reference_boxes` (" + dino_decoder_str(B) + ", " + dino_decoder_str(Q) +
                                ", 4), got " + shape_str(reference_boxes.shape()));
  if (valid_ratios.shape() != Shape{B, L, 2})
    throw std::invalid_argument(std::string(kDinoDecoderName) + ": expected `valid_ratios` (" + dino_decoder_str(B) + ", " + dino_decoder_str(L) +
                                ", 2), got " + shape_str(valid_ratios.shape()));
  // (B, 1, L, 4): the box scaled into the valid part of every level
  const Tensor ratios4 = cat({valid_ratios, valid_ratios}, -1).unsqueeze(1).to(tgt.dtype());

  Tensor x = tgt;
  Tensor ref = reference_boxes.detach();  // ref_i, detached
  std::vector<Tensor> normed, prev;       // norm(x_i); the reference its box output adds to
  prev.push_back(ref);
  for (int64_t i = 0; i < opt_.num_layers; ++i) {
    const Tensor ref_in = mul(ref.unsqueeze(2), ratios4);  // (B, Q, L, 4)
    const Tensor sine = sine_embed_of_positions(ref_in.select(2, 0), C / 2);  // (B, Q, 2C)
    const Tensor query_pos = ref_point_head->forward(sine.to(tgt.dtype()));
    x = layer(size_t(i)).forward(x, query_pos, memory, ref_in, spatial_shapes, level_start_index, memory_mask,
                                 attn_mask);
    normed.push_back(norm->forward(x));
    if (i + 1 == opt_.num_layers) break;  // the last refinement feeds nothing (no later layer or output)
    const Tensor fresh = sigmoid(add(bbox_head(size_t(i)).forward(x), inverse_sigmoid(ref)));  // new_i
    ref = fresh.detach();
    prev.push_back(opt_.look_forward_twice ? fresh : ref);
  }
  std::vector<Tensor> logits, boxes;
  for (int64_t i = 0; i < opt_.num_layers; ++i) {
    logits.push_back(class_head(size_t(i)).forward(normed[size_t(i)]));
    boxes.push_back(sigmoid(add(bbox_head(size_t(i)).forward(normed[size_t(i)]), inverse_sigmoid(prev[size_t(i)]))));
  }
  return {stack(logits, 0), stack(boxes, 0)};
}

}  // namespace rv::models::det
