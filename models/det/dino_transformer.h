// dino_transformer.h: DinoTransformer, the transformer of the DINO detector (detrex's DINOTransformer
// with its heads): multi-scale features in, per-layer class logits and boxes out.
//
//   features l (B, C, H_l, W_l), masks l (B, H_l, W_l) bool (true = padding), pos l (B, C, H_l, W_l)
//     -> flatten and concatenate the levels: src, pos + level_embeds[l], mask_flatten   (B, S, C), (B, S)
//     -> DinoTransformerEncoder (reference points at pixel centres, valid ratios)        memory (B, S, C)
//     -> select_queries: encoder proposals, top num_queries, detached reference boxes,
//        content queries tgt_embed (DINO's mixed query selection)
//     -> optional denoising queries (from the CDN generator) in FRONT: tgt = [dn_tgt, content],
//        reference = [sigmoid(dn_ref_logits), selected boxes], with their (Q, Q) attention mask
//     -> DinoTransformerDecoder: refinement, look-forward-twice, heads per layer
//
// State dict (detrex's DINOTransformer names; a detrex DINO checkpoint's `transformer.` entries load
// after stripping that prefix, its top-level duplicates `class_embed.*` / `bbox_embed.*` are the
// decoder's): encoder.*, decoder.*, level_embeds (L, C), tgt_embed.weight (num_queries, C),
// enc_output.{weight,bias}, enc_output_norm.{weight,bias}. IDEA-Research/DINO checkpoints differ:
//   IDEA DINO                              here
//   transformer.level_embed                level_embeds
//   transformer.enc_out_class_embed.*      decoder.class_embed.<num_layers>.*
//   transformer.enc_out_bbox_embed.*       decoder.bbox_embed.<num_layers>.*
//   ...encoder.layers.i.self_attn.*        encoder.layers.i.attentions.0.*
//   ...encoder.layers.i.norm1 / norm2      encoder.layers.i.norms.0 / norms.1
//   ...encoder.layers.i.linear1 / linear2  encoder.layers.i.ffns.0.layers.0.0 / ffns.0.layers.1
//   ...decoder.layers.i.self_attn.*        decoder.layers.i.attentions.0.attn.*
//   ...decoder.layers.i.cross_attn.*       decoder.layers.i.attentions.1.*
//   ...decoder.layers.i.norm2 / norm1 / norm3  decoder.layers.i.norms.0 / norms.1 / norms.2
//   ...decoder.layers.i.linear1 / linear2  decoder.layers.i.ffns.0.layers.0.0 / ffns.0.layers.1
//   (IDEA's decoder layer names its post-self-attention norm norm2 and post-cross-attention norm1.)
// Initialisation as detrex: xavier_uniform on every matrix of the encoder, decoder layers,
// ref_point_head, tgt_embed and enc_output (not the heads: DINO attaches them after), then the
// deformable attentions' own init, level_embeds normal(0, 1); heads as dino_decoder.h says.
#pragma once
#include <memory>
#include <vector>

#include "engine/nn/embedding.h"
#include "engine/nn/linear.h"
#include "engine/nn/norm.h"
#include "engine/rng.h"
#include "models/det/dino_decoder.h"
#include "models/det/dino_encoder.h"

namespace rv::models::det {

struct DinoTransformerOptions {
  int64_t embed_dim = 256;         // C
  int64_t num_heads = 8;           // NH
  int64_t feedforward_dim = 2048;
  double dropout = 0.0;
  int64_t encoder_layers = 6;
  int64_t decoder_layers = 6;
  int64_t num_levels = 4;          // L
  int64_t num_points = 4;          // P
  int64_t num_classes = 80;
  int64_t num_queries = 900;       // K, two_stage_num_proposals
  bool look_forward_twice = true;
  bool dec_pred_class_embed_share = true;
  bool dec_pred_bbox_embed_share = true;
  bool two_stage_class_embed_share = false;
  bool two_stage_bbox_embed_share = false;
};

// The contrastive denoising queries (built by the CDN generator from the targets); all undefined for
// none. Their Q_dn queries come first; attn_mask covers all Q = Q_dn + K queries.
struct DinoDenoisingQueries {
  Tensor tgt;         // (B, Q_dn, C) content
  Tensor ref_logits;  // (B, Q_dn, 4) box logits (inverse sigmoid of the noised boxes)
  Tensor attn_mask;   // (Q, Q) bool, true = blocked
};

struct DinoTransformerOutput {
  Tensor logits;           // (decoder_layers, B, Q, num_classes), Q = Q_dn + num_queries
  Tensor boxes;            // (decoder_layers, B, Q, 4) (cx, cy, w, h) in (0, 1)
  Tensor init_reference;   // (B, Q, 4): the decoder's starting boxes (detached)
  Tensor enc_logits;       // (B, num_queries, num_classes): the selected encoder proposals' logits
  Tensor enc_boxes;        // (B, num_queries, 4): their boxes
  Tensor topk;             // (B, num_queries) i64: which tokens were selected
};

class DinoTransformer : public nn::Module {
 public:
  std::shared_ptr<DinoTransformerEncoder> encoder;
  std::shared_ptr<DinoTransformerDecoder> decoder;
  Tensor level_embeds;                           // (L, C)
  std::shared_ptr<nn::Embedding> tgt_embed;      // (num_queries, C)
  std::shared_ptr<nn::Linear> enc_output;        // C -> C
  std::shared_ptr<nn::LayerNorm> enc_output_norm;

  DinoTransformer(const DinoTransformerOptions& options, Generator& gen);

  // One tensor per level in each vector (L of them, the same B and C).
  DinoTransformerOutput forward(const std::vector<Tensor>& features, const std::vector<Tensor>& masks,
                                const std::vector<Tensor>& pos_embeds, const DinoDenoisingQueries& dn = {});

  const DinoTransformerOptions& options() const { return opt_; }

 private:
  DinoTransformerOptions opt_;
};

}  // namespace rv::models::det
