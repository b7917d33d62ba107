// pretrained.cpp: read_checkpoint and load_pretrained (see pretrained.h).
#include "models/pretrained.h"

#include <cstdio>
#include <stdexcept>
#include <string>

#include "engine/io/safetensors.h"

namespace rv::models {
namespace {

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

}  // namespace

nn::StateDict read_checkpoint(const std::string& path, std::map<std::string, std::string>* metadata) {
  for (const char* ext : {".pth", ".pt", ".bin", ".pth.tar", ".ckpt"})
    if (ends_with(path, ext))
      throw std::runtime_error("load pretrained: '" + path +
                               "' is a PyTorch pickle, which C++ cannot read; convert it first: "
                               "ropevit convert '" + path + "' OUT.safetensors --model NAME");
  SafetensorsFile file = SafetensorsFile::open(path);
  nn::StateDict sd;
  for (const std::string& name : file.names()) sd.insert(name, file.tensor(name));
  if (metadata) *metadata = file.metadata();
  return sd;
}

Grid source_grid_from_metadata(const std::map<std::string, std::string>& metadata, int64_t patch_size) {
  auto it = metadata.find("img_size");
  if (it == metadata.end() || patch_size <= 0) return {};
  long long h = 0, w = 0;
  char x = 0, extra = 0;
  if (std::sscanf(it->second.c_str(), "%lld%c%lld%c", &h, &x, &w, &extra) != 3 || x != 'x' || h <= 0 || w <= 0 ||
      h % patch_size || w % patch_size)
    return {};
  return Grid{h / patch_size, w / patch_size};
}

std::vector<std::string> load_pretrained(Model& model, const std::string& path, const PretrainedOptions& options) {
  std::map<std::string, std::string> metadata;
  const nn::StateDict source = read_checkpoint(path, &metadata);
  ConvertResult converted;
  try {
    converted = convert_state_dict(
        source, model,
        ConvertOptions{.skip_mismatched_head = options.skip_mismatched_head,
                       .source_grid = source_grid_from_metadata(metadata, model.config().patch_size)});
  } catch (const std::runtime_error& e) {
    throw std::runtime_error("load pretrained '" + path + "': " + e.what());
  }
  // Skipped head tensors keep the model's own values: load_state_dict is strict, so put them in.
  nn::StateDict state;
  for (const auto& [name, own] : model.state_dict()) {
    const Tensor* loaded = converted.state.find(name);
    state.insert(name, loaded ? *loaded : own);
  }
  model.load_state_dict(state, nn::LoadOptions{.strict = true, .convert_dtype = true});
  return converted.notes;
}

}  // namespace rv::models
