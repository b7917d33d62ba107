// model_args.h: the model arguments `ropevit info MODEL` and `ropevit bench model NAME` share:
//
//   NAME [--img-size H W] [KEY=VALUE ...]
//
// NAME is a registered model (models/registry.h; an unknown name lists the close ones),
// --img-size sets the input (H and W positive integers; the model checks divisibility), and
// each KEY=VALUE is a ModelConfig override (models/model_config.h), e.g. depth=1 drop_path_rate=0.
#pragma once
#include <cstdint>
#include <map>
#include <string>

#include "models/model_config.h"

namespace rv {

struct ModelArgs {
  std::string name;
  std::map<std::string, std::string> overrides;  // KEY=VALUE, --img-size as img_size=HxW
};

// Reads `--img-size H W` at argv[i] (advancing i past it) into args; returns false when argv[i]
// is not --img-size. Throws naming --img-size when H or W is missing or not a positive integer.
bool parse_img_size(int argc, char** argv, int& i, ModelArgs& args);
// Reads a KEY=VALUE override at argv[i]; returns false when argv[i] has no '=' or starts with '-'.
bool parse_override(const std::string& arg, ModelArgs& args);
// A positive integer option value (--batch, --iters): throws naming the option otherwise.
int64_t parse_positive(const std::string& option, const std::string& value);

// The registered config with the overrides applied, validated.
models::ModelConfig resolve_config(const ModelArgs& args);

}  // namespace rv
