// model_args.cpp: parsing NAME [--img-size H W] [KEY=VALUE ...] into a validated ModelConfig.
#include "train/model_args.h"

#include <cctype>
#include <stdexcept>

#include "models/registry.h"

namespace rv {

namespace {
bool is_positive_integer(const std::string& s) {
  if (s.empty() || s.size() > 9) return false;
  for (char c : s)
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
  return std::stoll(s) > 0;
}
}  // namespace

bool parse_img_size(int argc, char** argv, int& i, ModelArgs& args) {
  if (std::string(argv[i]) != "--img-size") return false;
  if (i + 2 >= argc)
    throw std::invalid_argument("--img-size: expected two values, H and W (e.g. --img-size 224 224)");
  const std::string h = argv[i + 1], w = argv[i + 2];
  if (!is_positive_integer(h) || !is_positive_integer(w))
    throw std::invalid_argument("--img-size: expected H and W as positive integers, got '" + h + "' '" + w + "'");
  args.overrides["img_size"] = h + "x" + w;
  i += 2;
  return true;
}

bool parse_override(const std::string& arg, ModelArgs& args) {
  const size_t eq = arg.find('=');
  if (arg.empty() || arg[0] == '-' || eq == std::string::npos) return false;
  if (eq == 0) throw std::invalid_argument("override '" + arg + "': expected KEY=VALUE");
  args.overrides[arg.substr(0, eq)] = arg.substr(eq + 1);
  return true;
}

int64_t parse_positive(const std::string& option, const std::string& value) {
  if (!is_positive_integer(value))
    throw std::invalid_argument(option + ": expected a positive integer, got '" + value + "'");
  return std::stoll(value);
}

models::ModelConfig resolve_config(const ModelArgs& args) {
  models::ModelConfig cfg = models::model_config(args.name);  // unknown: lists close names
  models::apply_overrides(cfg, args.overrides);
  models::validate(cfg);
  return cfg;
}

}  // namespace rv
