// param_groups.cpp: weight-decay and layer-wise LR decay groups (see param_groups.h).
#include "train/param_groups.h"

#include "engine/optim/adamw.h"
#include "engine/optim/lamb.h"
#include "engine/optim/sgd.h"

#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

namespace rv::train {
namespace {

bool starts_with(const std::string& s, const std::string& p) { return s.rfind(p, 0) == 0; }

// The integer after `prefix` in `name` ("blocks.3.attn" with "blocks." -> 3), or -1.
int64_t index_after(const std::string& name, const std::string& prefix) {
  if (!starts_with(name, prefix)) return -1;
  size_t i = prefix.size(), j = i;
  while (j < name.size() && std::isdigit(static_cast<unsigned char>(name[j]))) ++j;
  if (j == i) return -1;
  return std::stoll(name.substr(i, j - i));
}

bool no_decay(const std::string& name, const Tensor& p, const std::set<std::string>& patterns) {
  if (p.dim() <= 1 || name.ends_with(".bias")) return true;
  for (const auto& pattern : patterns)
    if (optim::name_matches(name, pattern)) return true;
  return false;
}

}  // namespace

int64_t layer_id(const std::string& name, const models::ModelConfig& cfg) {
  const int64_t L = cfg.depth();
  auto bad = [&](const std::string& why) {
    return std::invalid_argument("layer_id: parameter '" + name + "' of " + cfg.arch + " model '" + cfg.name +
                                 "': " + why);
  };
  if (cfg.arch == "vit") {
    if (starts_with(name, "cls_token") || starts_with(name, "pos_embed") || starts_with(name, "patch_embed.") ||
        starts_with(name, "rope."))
      return 0;
    if (starts_with(name, "blocks.")) {
      const int64_t i = index_after(name, "blocks.");
      if (i < 0 || i >= L) throw bad("block index out of 0.." + std::to_string(L - 1));
      return i + 1;
    }
    return L + 1;
  }
  if (cfg.arch == "swin") {
    if (starts_with(name, "patch_embed.") || starts_with(name, "absolute_pos_embed")) return 0;
    if (starts_with(name, "layers.")) {
      const int64_t s = index_after(name, "layers.");
      if (s < 0 || s >= int64_t(cfg.depths.size())) throw bad("stage index out of range");
      int64_t before = 0;
      for (int64_t k = 0; k < s; ++k) before += cfg.depths[size_t(k)];
      const std::string stage = "layers." + std::to_string(s) + ".";
      if (starts_with(name, stage + "downsample.")) return before;
      const int64_t b = index_after(name, stage + "blocks.");
      if (b < 0 || b >= cfg.depths[size_t(s)]) throw bad("not a block or downsample of stage " + std::to_string(s));
      return 1 + before + b;
    }
    return L + 1;
  }
  throw bad("unknown arch (expected vit or swin)");
}

TrainParamGroups make_param_groups(const models::Model& model, double weight_decay, double layer_decay) {
  if (!(layer_decay > 0.0 && layer_decay <= 1.0))
    throw std::invalid_argument("make_param_groups: optim.layer_decay must be in (0, 1], got " +
                                std::to_string(layer_decay));
  std::set<std::string> patterns = model.no_weight_decay();
  for (const auto& p : optim::default_no_weight_decay()) patterns.insert(p);
  const bool llrd = layer_decay < 1.0;
  const int64_t top = model.config().depth() + 1;

  // key: (layer id or 0 without LLRD, decays?) -> its parameters in model order.
  std::map<std::pair<int64_t, bool>, std::vector<nn::NamedTensor>> buckets;
  for (const auto& [name, p] : model.named_parameters()) {
    if (!p.requires_grad()) continue;  // frozen: not trained, as timm
    const int64_t id = llrd ? layer_id(name, model.config()) : top;
    buckets[{id, !no_decay(name, p, patterns)}].emplace_back(name, p);
  }
  TrainParamGroups out;
  for (const auto& [key, named] : buckets) {
    const auto [id, decays] = key;
    out.groups.push_back(optim::ParamGroup::from_named(named, std::nullopt, decays ? weight_decay : 0.0));
    out.lr_scale.push_back(std::pow(layer_decay, double(top - id)));
    out.layer_id.push_back(id);
  }
  return out;
}

std::unique_ptr<optim::Optimizer> make_optimizer(const config::TrainConfig& cfg, const TrainParamGroups& pg) {
  const auto& o = cfg.optim;
  if (o.name == "adamw")
    return std::make_unique<optim::AdamW>(
        pg.groups, optim::AdamWOptions{.lr = o.lr, .beta1 = o.betas[0], .beta2 = o.betas[1], .eps = o.eps,
                                       .weight_decay = o.weight_decay});
  if (o.name == "lamb") {
    optim::LambOptions lo;
    lo.lr = o.lr, lo.beta1 = o.betas[0], lo.beta2 = o.betas[1], lo.eps = o.eps, lo.weight_decay = o.weight_decay;
    return std::make_unique<optim::Lamb>(pg.groups, lo);
  }
  if (o.name == "sgd")
    return std::make_unique<optim::SGD>(pg.groups, optim::SGDOptions{.lr = o.lr, .momentum = o.momentum,
                                                                    .weight_decay = o.weight_decay,
                                                                    .nesterov = o.nesterov});
  throw std::invalid_argument("optim.name: expected adamw, lamb or sgd, got '" + o.name + "'");
}

}  // namespace rv::train
