// registry.cpp: name lookup over the families of registry_families.cpp.
#include "models/registry.h"

#include <algorithm>
#include <stdexcept>

namespace rv::models {

std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const auto& family : model_families())
    for (const auto& cfg : family.configs()) names.push_back(cfg.name);
  std::sort(names.begin(), names.end());
  return names;
}

ModelConfig model_config(const std::string& name) {
  for (const auto& family : model_families())
    for (const auto& cfg : family.configs())
      if (cfg.name == name) return cfg;
  // Suggest the names that share the first word ("vit", "swin", "deit3").
  const std::string head = name.substr(0, name.find('_'));
  std::string close;
  for (const auto& n : model_names())
    if (n.rfind(head, 0) == 0) close += "\n  " + n;
  throw std::invalid_argument("unknown model '" + name + "'" +
                              (close.empty() ? std::string(" (`ropevit info --models` lists them)")
                                             : "; models starting with '" + head + "':" + close));
}

std::shared_ptr<Model> create_model(const ModelConfig& cfg) {
  validate(cfg);
  for (const auto& family : model_families())
    if (family.arch == cfg.arch) return family.build(cfg);
  throw std::invalid_argument("model " + cfg.name + ": no builder for arch '" + cfg.arch + "'");
}

std::shared_ptr<Model> create_model(const std::string& name, const std::map<std::string, std::string>& overrides) {
  ModelConfig cfg = model_config(name);
  apply_overrides(cfg, overrides);
  return create_model(cfg);
}

}  // namespace rv::models
