// registry_families.cpp: the model families the registry knows. Adding a family is adding a
// line here (its configs and builder live in the family's own files).
#include "models/registry.h"
#include "models/swin.h"
#include "models/vit.h"

namespace rv::models {

const std::vector<ModelFamily>& model_families() {
  static const std::vector<ModelFamily> families = {
      {"vit", vit_configs, build_vit},
      {"swin", swin_configs, build_swin},
  };
  return families;
}

}  // namespace rv::models
