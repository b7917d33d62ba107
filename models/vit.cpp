// vit.cpp: VisionTransformer: building the layers in timm's order, the init, and the forward
// passes (features, head, intermediates) at any input size.
#include "models/vit.h"

#include <algorithm>
#include <stdexcept>

#include "engine/nn/init.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape.h"

namespace rv::models {

VisionTransformer::VisionTransformer(const ModelConfig& cfg) : Model(cfg) {
  validate(cfg_);
  if (cfg_.arch != "vit") throw std::invalid_argument(who() + ": VisionTransformer needs arch 'vit', got '" + cfg_.arch + "'");
  Generator gen(cfg_.seed);
  const int64_t C = cfg_.embed_dim, L = cfg_.depths[0], NH = cfg_.num_heads[0], HD = C / NH;
  const Grid g = config_grid();
  const bool skip = nn::init::init_skipped();

  // Own parameters first (PyTorch lists them before any child's): cls_token, pos_embed.
  // timm: cls_token ~ N(0, 1e-6) (VisionTransformer) or trunc_normal(.02) (Eva); pos_embed
  // trunc_normal(.02). We use trunc_normal(.02) for both: any small init trains the same way.
  if (cfg_.class_token) {
    Tensor cls = empty({1, 1, C});
    nn::init::trunc_normal_(cls, gen, 0.02);
    cls_token = register_parameter("cls_token", cls);
  }
  if (cfg_.uses_ape()) {
    Tensor pe = empty({1, (cfg_.ape_on_cls ? 1 : 0) + g.tokens(), C});
    nn::init::trunc_normal_(pe, gen, 0.02);
    pos_embed = register_parameter("pos_embed", pe);
  }
  patch_embed = register_module("patch_embed", std::make_shared<PatchEmbed>(cfg_.in_chans, C, cfg_.patch_size, gen));
  if (cfg_.uses_rope()) {
    const bool mixed = cfg_.uses_rope_mixed();
    rope = register_module("rope", std::make_shared<VitRope>(mixed, L, NH, HD,
                                                             mixed ? cfg_.rope_mixed_theta : cfg_.rope_theta, gen));
  }
  // timm builds the RoPE models with Eva (gamma_1 / gamma_2) and the APE-only ones with
  // VisionTransformer (ls1.gamma / ls2.gamma).
  const LayerScaleNaming naming = cfg_.uses_rope() ? LayerScaleNaming::eva : LayerScaleNaming::timm_vit;
  blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
  for (int64_t l = 0; l < L; ++l) {
    // Stochastic depth grows linearly over the blocks (torch.linspace(0, rate, depth)).
    const double dp = L > 1 ? cfg_.drop_path_rate * double(l) / double(L - 1) : 0.0;
    blocks->push_back(std::make_shared<VitBlock>(
        VitBlockOptions{.dim = C, .num_heads = NH, .mlp_ratio = cfg_.mlp_ratio, .qkv_bias = cfg_.qkv_bias,
                        .norm_eps = cfg_.norm_eps, .layer_scale_init = cfg_.layer_scale_init, .naming = naming,
                        .attn_drop = cfg_.attn_drop_rate, .proj_drop = cfg_.proj_drop_rate, .drop_path = dp},
        gen));
  }
  // timm: with average pooling the final norm moves after the pooling (fc_norm); `norm` is an
  // Identity (no weights), so the features the blocks return are not normalised.
  if (cfg_.avg_pool())
    fc_norm = register_module("fc_norm", std::make_shared<nn::LayerNorm>(C, cfg_.norm_eps));
  else
    norm = register_module("norm", std::make_shared<nn::LayerNorm>(C, cfg_.norm_eps));
  head_drop = register_module("head_drop", std::make_shared<nn::Dropout>(cfg_.drop_rate));
  if (cfg_.num_classes > 0) head = register_module("head", std::make_shared<nn::Linear>(C, cfg_.num_classes, gen));

  // timm's ViT init: every Linear trunc_normal(.02) with zero bias (the patch conv keeps its
  // default init). Skipped (no draws) under SkipInitGuard.
  if (!skip)
    apply([&](nn::Module& m) {
      if (auto* lin = dynamic_cast<nn::Linear*>(&m)) {
        nn::init::trunc_normal_(lin->weight, gen, 0.02);
        if (lin->bias.defined()) nn::init::zeros_(lin->bias);
      }
    });
  nn::set_generator(*this, std::make_shared<Generator>(cfg_.seed, 1));
}

std::string VisionTransformer::who() const { return "model " + (cfg_.name.empty() ? std::string("vit") : cfg_.name); }

std::pair<Tensor, Grid> VisionTransformer::embed(const Tensor& images) {
  auto [x, g] = patch_embed->forward(images, who());  // (B, Gh*Gw, C)
  const int64_t B = x.size(0), C = cfg_.embed_dim;
  if (pos_embed.defined() && !cfg_.ape_on_cls)
    x = add(x, resample_abs_pos_embed(pos_embed, config_grid(), g, 0, cfg_.ape_antialias));  // patch tokens only
  if (!cls_token.defined()) return {x, g};  // no prefix token (global_pool avg, class_token false)
  x = cat({cls_token.expand({B, 1, C}), x}, 1);
  if (cfg_.ape_on_cls)  // original ViT: the table has a CLS row too, added after the prepend
    x = add(x, resample_abs_pos_embed(pos_embed, config_grid(), g, 1, cfg_.ape_antialias));
  return {x, g};
}

Tensor VisionTransformer::forward_features(const Tensor& images) {
  auto [x, g] = embed(images);
  std::vector<Tensor> angles = rope ? rope->angles(g, x.device()) : std::vector<Tensor>(blocks->size());
  for (size_t l = 0; l < blocks->size(); ++l) x = block(l)->forward(x, angles[l], num_prefix_tokens());
  return norm ? norm->forward(x) : x;
}

Tensor VisionTransformer::forward_windowed(const Tensor& images, int64_t window,
                                           const std::vector<int64_t>& global_blocks) {
  const int64_t L = int64_t(blocks->size());
  std::vector<bool> global(static_cast<size_t>(L), false);
  for (int64_t j : global_blocks) {
    const int64_t b = j < 0 ? j + L : j;
    if (b < 0 || b >= L)
      throw std::invalid_argument(who() + ": global block " + std::to_string(j) + " is outside the " + std::to_string(L) +
                                  " blocks");
    global[size_t(b)] = true;
  }
  if (window <= 0) throw std::invalid_argument(who() + ": the window size must be positive, got " + std::to_string(window));
  auto [x, g] = embed(images);
  const int64_t P = num_prefix_tokens();
  if (P > 0) x = x.narrow(1, P, x.size(1) - P);  // ViTDet keeps no CLS token
  const std::vector<Tensor> full = rope ? rope->angles(g, x.device()) : std::vector<Tensor>(size_t(L));
  const std::vector<Tensor> local = rope ? rope->angles(Grid{window, window}, x.device()) : std::vector<Tensor>(size_t(L));
  for (int64_t l = 0; l < L; ++l)
    x = global[size_t(l)] ? block(size_t(l))->forward(x, full[size_t(l)], 0)
                          : block(size_t(l))->forward_windowed(x, g, window, local[size_t(l)]);
  const int64_t B = x.size(0), C = x.size(2);
  return x.reshape({B, g.h, g.w, C}).permute({0, 3, 1, 2});  // (B, C, Gh, Gw)
}

Tensor VisionTransformer::forward_head(const Tensor& features, bool pre_logits) {
  if (features.dim() != 3 || features.size(2) != cfg_.embed_dim)
    throw std::invalid_argument(who() + ": forward_head expected features (B, N, " + std::to_string(cfg_.embed_dim) +
                                "), got " + shape_str(features.shape()));
  Tensor x;
  if (cfg_.avg_pool())  // the mean of the patch tokens, then fc_norm (B, C)
    x = fc_norm->forward(mean(features.narrow(1, num_prefix_tokens(), features.size(1) - num_prefix_tokens()), {1}));
  else
    x = features.select(1, 0);  // the CLS token (B, C)
  x = head_drop->forward(x);
  if (pre_logits || !head) return x;
  return head->forward(x);
}

std::vector<Tensor> VisionTransformer::forward_intermediates(const Tensor& images, const std::vector<int64_t>& indices) {
  const int64_t L = int64_t(blocks->size());
  std::vector<int64_t> take;
  int64_t last = -1;
  for (int64_t i : indices) {
    const int64_t j = i < 0 ? i + L : i;
    if (j < 0 || j >= L)
      throw std::out_of_range(who() + ": forward_intermediates index " + std::to_string(i) + " is out of range for " +
                              std::to_string(L) + " blocks");
    take.push_back(j);
    last = std::max(last, j);
  }
  auto [x, g] = embed(images);
  const int64_t B = x.size(0), C = cfg_.embed_dim;
  std::vector<Tensor> angles = rope ? rope->angles(g, x.device()) : std::vector<Tensor>(blocks->size());
  std::vector<Tensor> by_block(static_cast<size_t>(L));
  for (int64_t l = 0; l <= last; ++l) {
    x = block(size_t(l))->forward(x, angles[size_t(l)], num_prefix_tokens());
    if (std::find(take.begin(), take.end(), l) == take.end()) continue;
    // (B, N, C) -> patch tokens (B, Gh*Gw, C) -> (B, Gh, Gw, C) -> (B, C, Gh, Gw)
    by_block[size_t(l)] =
        x.narrow(1, num_prefix_tokens(), g.tokens()).reshape({B, g.h, g.w, C}).permute({0, 3, 1, 2}).contiguous();
  }
  std::vector<Tensor> out;
  for (int64_t j : take) out.push_back(by_block[size_t(j)]);
  return out;
}

std::vector<FeatureInfo> VisionTransformer::feature_info() const {
  std::vector<FeatureInfo> info;
  for (size_t l = 0; l < blocks->size(); ++l)
    info.push_back({"blocks." + std::to_string(l), cfg_.embed_dim, cfg_.patch_size});
  return info;
}

std::set<std::string> VisionTransformer::no_weight_decay() const {
  std::set<std::string> names;
  if (cls_token.defined()) names.insert("cls_token");
  if (pos_embed.defined()) names.insert("pos_embed");
  if (rope && rope->mixed()) names.insert("rope.freqs");
  return names;
}

std::shared_ptr<Model> build_vit(const ModelConfig& cfg) { return std::make_shared<VisionTransformer>(cfg); }

}  // namespace rv::models
