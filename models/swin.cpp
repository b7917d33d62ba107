// swin.cpp: SwinTransformer: patch embedding, the stages, the pooled head, and timm's init.
#include "models/swin.h"

#include <algorithm>
#include <stdexcept>
#include <string>

#include "engine/nn/init.h"
#include "engine/ops/reduce.h"

namespace rv::models {

SwinPatchEmbed::SwinPatchEmbed(int64_t in_chans, int64_t embed_dim, int64_t patch, double norm_eps, Generator& gen) {
  proj = register_module("proj", std::make_shared<nn::Conv2d>(in_chans, embed_dim, Pair{patch, patch}, gen,
                                                               nn::Conv2dOptions{.stride = {patch, patch}}));
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(embed_dim, norm_eps));
}

Tensor SwinPatchEmbed::forward(const Tensor& x) {
  return norm->forward(proj->forward(x).permute({0, 2, 3, 1}));  // (B, C, H', W') -> (B, H', W', C)
}

SwinHead::SwinHead(int64_t in_features, int64_t num_classes, double drop_rate, Generator& gen) {
  drop = register_module("drop", std::make_shared<nn::Dropout>(drop_rate));
  if (num_classes > 0) fc = register_module("fc", std::make_shared<nn::Linear>(in_features, num_classes, gen));
}

Tensor SwinHead::forward(const Tensor& x, bool pre_logits) {
  if (x.dim() != 4) throw std::invalid_argument("ClassifierHead: expected features (B, H, W, C), got " + shape_str(x.shape()));
  Tensor pooled = drop->forward(mean(x, {1, 2}));  // (B, C)
  return pre_logits || !fc ? pooled : fc->forward(pooled);
}

int64_t swin_window_size(const ModelConfig& cfg) {
  if (cfg.window_size > 0) return cfg.window_size;
  const int64_t ws = std::min(cfg.img_h, cfg.img_w) / 32;
  if (ws <= 0)
    throw std::invalid_argument("model " + cfg.name + ": window_size 0 means img_size // 32, which is 0 for " +
                                std::to_string(cfg.img_h) + "x" + std::to_string(cfg.img_w) +
                                "; set window_size explicitly");
  return ws;
}

SwinTransformer::SwinTransformer(const ModelConfig& cfg) : Model(cfg) {
  validate(cfg);
  if (cfg.arch != "swin") throw std::invalid_argument("SwinTransformer: config " + cfg.name + " has arch '" + cfg.arch + "'");
  const int64_t ws = swin_window_size(cfg);
  const int64_t gh = cfg.img_h / cfg.patch_size, gw = cfg.img_w / cfg.patch_size;
  if (gh <= 0 || gw <= 0)
    throw std::invalid_argument("model " + cfg.name + ": img_size " + std::to_string(cfg.img_h) + "x" +
                                std::to_string(cfg.img_w) + " is smaller than the patch " + std::to_string(cfg.patch_size));
  Generator gen(cfg.seed);
  patch_embed = register_module("patch_embed",
                                std::make_shared<SwinPatchEmbed>(cfg.in_chans, cfg.embed_dim, cfg.patch_size, cfg.norm_eps, gen));

  // Stochastic depth: linear from 0 to drop_path_rate over all blocks (timm's linspace).
  const int64_t total = cfg.depth();
  std::vector<double> dpr(static_cast<size_t>(total));
  for (int64_t i = 0; i < total; ++i) dpr[size_t(i)] = total > 1 ? cfg.drop_path_rate * double(i) / double(total - 1) : 0.0;

  layers = register_module("layers", std::make_shared<nn::ModuleList>());
  int64_t dim = cfg.embed_dim, res_h = gh, res_w = gw, first = 0;
  for (size_t s = 0; s < cfg.depths.size(); ++s) {
    const bool merge = s > 0;
    const int64_t out_dim = merge ? 2 * dim : dim;
    if (merge) res_h = (res_h + 1) / 2, res_w = (res_w + 1) / 2;  // PatchMerging pads odd sizes
    std::vector<double> rates(dpr.begin() + first, dpr.begin() + first + cfg.depths[s]);
    layers->push_back(std::make_shared<SwinStage>(dim, out_dim, merge, res_h, res_w, cfg.depths[s], cfg.num_heads[s], ws,
                                                  rates, cfg, gen));
    dim = out_dim;
    first += cfg.depths[s];
  }
  feature_dim_ = dim;
  norm = register_module("norm", std::make_shared<nn::LayerNorm>(dim, cfg.norm_eps));
  head = register_module("head", std::make_shared<SwinHead>(dim, cfg.num_classes, cfg.drop_rate, gen));

  // timm's init_weights_vit_timm: every Linear trunc_normal(.02) with zero bias (the conv keeps
  // PyTorch's default, LayerNorms ones and zeros, RPB tables trunc_normal(.02) from their ctor).
  for (auto& [name, m] : named_modules())
    if (auto* lin = dynamic_cast<nn::Linear*>(m)) {
      nn::init::trunc_normal_(lin->weight, gen, 0.02);
      if (lin->bias.defined()) nn::init::zeros_(lin->bias);
    }
  nn::set_generator(*this, std::make_shared<Generator>(cfg.seed, /*stream=*/1));  // dropout / drop-path noise
}

Tensor SwinTransformer::embed(const Tensor& images) {
  if (images.dim() != 4 || images.size(1) != cfg_.in_chans || images.size(2) != cfg_.img_h || images.size(3) != cfg_.img_w)
    throw std::invalid_argument("SwinTransformer " + cfg_.name + ": expected images (B, " + std::to_string(cfg_.in_chans) +
                                ", " + std::to_string(cfg_.img_h) + ", " + std::to_string(cfg_.img_w) +
                                ") (the size it was built for; set img_size for another), got " + shape_str(images.shape()));
  return patch_embed->forward(images);
}

Tensor SwinTransformer::forward_features(const Tensor& images) {
  Tensor x = embed(images);
  for (size_t s = 0; s < layers->size(); ++s) x = stage(s)->forward(x);
  return norm->forward(x);
}

Tensor SwinTransformer::forward_head(const Tensor& features, bool pre_logits) { return head->forward(features, pre_logits); }

std::vector<Tensor> SwinTransformer::forward_intermediates(const Tensor& images, const std::vector<int64_t>& indices) {
  const auto n = int64_t(layers->size());
  std::vector<int64_t> take;
  for (int64_t i : indices) {
    const int64_t j = i < 0 ? i + n : i;
    if (j < 0 || j >= n)
      throw std::out_of_range("SwinTransformer::forward_intermediates: stage index " + std::to_string(i) +
                              " is out of range for " + std::to_string(n) + " stages");
    take.push_back(j);
  }
  const int64_t last = take.empty() ? -1 : *std::max_element(take.begin(), take.end());
  std::vector<Tensor> maps(take.size());
  Tensor x = embed(images);
  for (int64_t s = 0; s <= last; ++s) {  // stop after the last stage asked for
    x = stage(size_t(s))->forward(x);
    for (size_t k = 0; k < take.size(); ++k)
      if (take[k] == s) maps[k] = x.permute({0, 3, 1, 2}).contiguous();  // (B, C_s, H_s, W_s)
  }
  return maps;
}

std::vector<FeatureInfo> SwinTransformer::feature_info() const {
  std::vector<FeatureInfo> info;
  for (size_t s = 0; s < cfg_.depths.size(); ++s)
    info.push_back({"layers." + std::to_string(s), cfg_.embed_dim << s, cfg_.patch_size << s});
  return info;
}

std::set<std::string> SwinTransformer::no_weight_decay() const {
  return {"relative_position_bias_table", "rope_freqs"};
}

std::shared_ptr<Model> build_swin(const ModelConfig& cfg) { return std::make_shared<SwinTransformer>(cfg); }

}  // namespace rv::models
