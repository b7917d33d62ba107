// registry.h: models by timm's names.
//
//   auto model = models::create_model("vit_small_patch16_rope_mixed_224", {{"img_size", "320"}});
//   Tensor logits = model->forward(images);     // (B, 1000)
//
// Each family (ViT, Swin) lists its named configs and a builder in models/registry_families.cpp;
// a name is a ModelConfig (models/model_config.h) that overrides can change field by field.
#pragma once
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "models/model.h"

namespace rv::models {

// A model family: its arch name, its registered configs and the function that builds one.
struct ModelFamily {
  std::string arch;
  std::vector<ModelConfig> (*configs)();
  std::shared_ptr<Model> (*build)(const ModelConfig& cfg);
};
const std::vector<ModelFamily>& model_families();  // registry_families.cpp

std::vector<std::string> model_names();  // every registered name, sorted
// The config of a registered name; an unknown name throws listing the names that share its
// first word (e.g. every vit_* for "vit_smal").
ModelConfig model_config(const std::string& name);
// Builds a model: validate(cfg), then the family's builder, weights from cfg.seed.
std::shared_ptr<Model> create_model(const ModelConfig& cfg);
std::shared_ptr<Model> create_model(const std::string& name, const std::map<std::string, std::string>& overrides = {});

}  // namespace rv::models
