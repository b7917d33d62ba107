// dino_encoder.cpp: DinoEncoderLayer and DinoTransformerEncoder (dino_encoder.h).
#include "models/det/dino_encoder.h"

#include <stdexcept>
#include <string>

namespace rv::models::det {

DinoEncoderLayer::DinoEncoderLayer(const DinoEncoderOptions& o, Generator& gen) {
  MSDeformAttnOptions a;
  a.embed_dims = o.embed_dim, a.num_heads = o.num_heads, a.num_levels = o.num_levels, a.num_points = o.num_points;
  a.dropout = o.dropout;
  attentions = register_module("attentions", std::make_shared<nn::ModuleList>());
  attentions->push_back(std::make_shared<MultiScaleDeformableAttention>(a, gen));
  ffns = register_module("ffns", std::make_shared<nn::ModuleList>());
  ffns->push_back(std::make_shared<DetrFFN>(o.embed_dim, o.feedforward_dim, o.dropout, gen));
  norms = register_module("norms", std::make_shared<nn::ModuleList>());
  for (int i = 0; i < 2; ++i) norms->push_back(std::make_shared<nn::LayerNorm>(o.embed_dim));
}

Tensor DinoEncoderLayer::forward(const Tensor& x, const Tensor& pos, const Tensor& reference_points,
                                 const Tensor& spatial_shapes, const Tensor& level_start_index,
                                 const Tensor& padding_mask) {
  MSDeformAttnExtras extras;
  extras.query_pos = pos;
  extras.key_padding_mask = padding_mask;
  // value = x (the query without positions); the module adds the residual x
  Tensor y = self_attn().forward(x, Tensor(), reference_points, spatial_shapes, level_start_index, extras);
  y = norms->get<nn::LayerNorm>(0)->forward(y);
  y = ffns->get<DetrFFN>(0)->forward(y);
  return norms->get<nn::LayerNorm>(1)->forward(y);
}

DinoTransformerEncoder::DinoTransformerEncoder(const DinoEncoderOptions& options, Generator& gen) : opt_(options) {
  if (opt_.num_layers < 0)
    throw std::invalid_argument("DinoTransformerEncoder: expected num_layers >= 0, got " +
                                std::to_string(opt_.num_layers));
  layers = register_module("layers", std::make_shared<nn::ModuleList>());
  for (int64_t i = 0; i < opt_.num_layers; ++i) layers->push_back(std::make_shared<DinoEncoderLayer>(opt_, gen));
}

Tensor DinoTransformerEncoder::forward(const Tensor& x, const Tensor& pos, const Tensor& reference_points,
                                       const Tensor& spatial_shapes, const Tensor& level_start_index,
                                       const Tensor& padding_mask) {
  Tensor y = x;
  for (size_t i = 0; i < layers->size(); ++i)
    y = layers->get<DinoEncoderLayer>(i)->forward(y, pos, reference_points, spatial_shapes, level_start_index,
                                                  padding_mask);
  return y;
}

}  // namespace rv::models::det
