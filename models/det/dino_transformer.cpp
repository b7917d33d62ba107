// dino_transformer.cpp: DinoTransformer (dino_transformer.h): flattening the levels, the encoder,
// query selection, the denoising queries in front, the decoder.
#include "models/det/dino_transformer.h"

#include <stdexcept>
#include <string>

#include "engine/autograd.h"
#include "engine/nn/init.h"
#include "engine/ops/activation.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/ms_deform_attn.h"
#include "engine/ops/shape.h"
#include "models/det/dino_geometry.h"
#include "models/det/dino_query_selection.h"

namespace rv::models::det {

namespace {

constexpr const char* kDinoTransformerName = "DinoTransformer";

std::string dino_transformer_str(int64_t v) { return std::to_string(v); }

DinoEncoderOptions encoder_options(const DinoTransformerOptions& o) {
  DinoEncoderOptions e;
  e.embed_dim = o.embed_dim, e.num_heads = o.num_heads, e.feedforward_dim = o.feedforward_dim;
  e.dropout = o.dropout, e.num_layers = o.encoder_layers, e.num_levels = o.num_levels, e.num_points = o.num_points;
  return e;
}

DinoDecoderOptions decoder_options(const DinoTransformerOptions& o) {
  DinoDecoderOptions d;
  d.embed_dim = o.embed_dim, d.num_heads = o.num_heads, d.feedforward_dim = o.feedforward_dim;
  d.dropout = o.dropout, d.num_layers = o.decoder_layers, d.num_levels = o.num_levels, d.num_points = o.num_points;
  d.num_classes = o.num_classes, d.look_forward_twice = o.look_forward_twice;
  d.dec_pred_class_embed_share = o.dec_pred_class_embed_share;
  d.dec_pred_bbox_embed_share = o.dec_pred_bbox_embed_share;
  d.two_stage_class_embed_share = o.two_stage_class_embed_share;
  d.two_stage_bbox_embed_share = o.two_stage_bbox_embed_share;
  return d;
}

}  // namespace

DinoTransformer::DinoTransformer(const DinoTransformerOptions& options, Generator& gen) : opt_(options) {
  if (opt_.num_queries < 1 || opt_.num_levels < 1)
    throw std::invalid_argument(std::string(kDinoTransformerName) + ": expected num_queries >= 1 and num_levels >= 1, got " +
                                dino_transformer_str(opt_.num_queries) + " and " + dino_transformer_str(opt_.num_levels));
  const int64_t C = opt_.embed_dim;
  encoder = register_module("encoder", std::make_shared<DinoTransformerEncoder>(encoder_options(opt_), gen));
  decoder = register_module("decoder", std::make_shared<DinoTransformerDecoder>(decoder_options(opt_), gen));
  level_embeds = register_parameter("level_embeds", empty({opt_.num_levels, C}));
  tgt_embed = register_module("tgt_embed", std::make_shared<nn::Embedding>(opt_.num_queries, C, gen));
  enc_output = register_module("enc_output", std::make_shared<nn::Linear>(C, C, gen));
  enc_output_norm = register_module("enc_output_norm", std::make_shared<nn::LayerNorm>(C));

  // detrex's init_weights: xavier on every matrix the transformer owns (DINO attaches the heads to the
  // decoder after this, so they keep their own init), then the deformable attentions' init.
  for (auto& [name, p] : named_parameters()) {
    const bool head = name.rfind("decoder.class_embed.", 0) == 0 || name.rfind("decoder.bbox_embed.", 0) == 0;
    if (p.dim() > 1 && !head) nn::init::xavier_uniform_(p, gen);
  }
  for (auto& [name, m] : named_modules())
    if (auto* a = dynamic_cast<MultiScaleDeformableAttention*>(m)) a->init_weights(gen);
  nn::init::normal_(level_embeds, gen);
}

DinoTransformerOutput DinoTransformer::forward(const std::vector<Tensor>& features, const std::vector<Tensor>& masks,
                                               const std::vector<Tensor>& pos_embeds, const DinoDenoisingQueries& dn) {
  const int64_t L = opt_.num_levels, C = opt_.embed_dim;
  if (int64_t(features.size()) != L || masks.size() != features.size() || pos_embeds.size() != features.size())
    throw std::invalid_argument(std::string(kDinoTransformerName) + ": expected " + dino_transformer_str(L) + " levels of features, masks and "
                                "position embeddings, got " + dino_transformer_str(int64_t(features.size())) + ", " +
                                dino_transformer_str(int64_t(masks.size())) + " and " + dino_transformer_str(int64_t(pos_embeds.size())));
  const int64_t B = features[0].dim() == 4 ? features[0].size(0) : -1;
  LevelShapes shapes;
  std::vector<Tensor> src, pos, mflat;
  for (int64_t l = 0; l < L; ++l) {
    const Tensor& f = features[size_t(l)];
    if (f.dim() != 4 || f.size(0) != B || f.size(1) != C)
      throw std::invalid_argument(std::string(kDinoTransformerName) + ": expected features (B, " + dino_transformer_str(C) + ", H, W) with one B, got " +
                                  "level " + dino_transformer_str(l) + ": " + shape_str(f.shape()));
    const int64_t H = f.size(2), W = f.size(3);
    if (masks[size_t(l)].shape() != Shape{B, H, W} || masks[size_t(l)].dtype() != DType::boolean)
      throw std::invalid_argument(std::string(kDinoTransformerName) + ": expected mask " + dino_transformer_str(l) + " bool (" + dino_transformer_str(B) + ", " + dino_transformer_str(H) +
                                  ", " + dino_transformer_str(W) + "), got " + dtype_name(masks[size_t(l)].dtype()) + " " +
                                  shape_str(masks[size_t(l)].shape()));
    if (pos_embeds[size_t(l)].shape() != f.shape())
      throw std::invalid_argument(std::string(kDinoTransformerName) + ": expected position embedding " + dino_transformer_str(l) + " of shape " +
                                  shape_str(f.shape()) + ", got " + shape_str(pos_embeds[size_t(l)].shape()));
    shapes.emplace_back(H, W);
    // (B, C, H, W) -> (B, H W, C)
    src.push_back(f.reshape({B, C, H * W}).transpose(1, 2));
    pos.push_back(add(pos_embeds[size_t(l)].reshape({B, C, H * W}).transpose(1, 2),
                      level_embeds.select(0, l).reshape({1, 1, C})));
    mflat.push_back(masks[size_t(l)].reshape({B, H * W}).to(DType::u8));
  }
  const Tensor x = cat(src, 1), lvl_pos = cat(pos, 1);
  const Tensor mask_flatten = cat(mflat, 1).to(DType::boolean);  // (B, S)
  Tensor spatial_shapes = ms_deform_attn_spatial_shapes(shapes), level_start = ms_deform_attn_level_start(shapes);
  if (!x.device().is_cpu()) spatial_shapes = spatial_shapes.to(x.device()), level_start = level_start.to(x.device());
  Tensor ratios = valid_ratios(masks, x.dtype());  // (B, L, 2)
  if (!x.device().is_cpu()) ratios = ratios.to(x.device());
  const Tensor ref_points = encoder_reference_points(shapes, ratios);

  const Tensor memory = encoder->forward(x, lvl_pos, ref_points, spatial_shapes, level_start, mask_flatten);

  const size_t enc_head = size_t(opt_.decoder_layers);
  QuerySelection sel = select_queries(memory, mask_flatten, shapes, *enc_output, *enc_output_norm,
                                      decoder->class_head(enc_head), decoder->bbox_head(enc_head), tgt_embed->weight);
  Tensor tgt = sel.content, ref = sel.reference_boxes;
  if (dn.tgt.defined()) {
    if (dn.tgt.dim() != 3 || dn.tgt.size(0) != B || dn.tgt.size(2) != C ||
        dn.ref_logits.shape() != Shape{B, dn.tgt.size(1), 4})
      throw std::invalid_argument(std::string(kDinoTransformerName) + ": expected denoising tgt (" + dino_transformer_str(B) + ", Q_dn, " + dino_transformer_str(C) +
                                  ") and ref_logits (" + dino_transformer_str(B) + ", Q_dn, 4), got " + shape_str(dn.tgt.shape()) +
                                  " and " + shape_str(dn.ref_logits.shape()));
    tgt = cat({dn.tgt, tgt}, 1);
    ref = cat({sigmoid(dn.ref_logits).detach(), ref}, 1);
  }
  const DinoDecoderOutput dec = decoder->forward(tgt, ref, memory, mask_flatten, spatial_shapes, level_start, ratios,
                                                 dn.attn_mask);
  return {dec.logits, dec.boxes, ref, sel.enc_logits, sel.enc_boxes, sel.topk};
}

}  // namespace rv::models::det
