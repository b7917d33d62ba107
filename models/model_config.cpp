// model_config.cpp: parsing key=value overrides into a ModelConfig, and the whole-config check.
#include "models/model_config.h"

#include <charconv>
#include <cmath>
#include <functional>
#include <sstream>
#include <stdexcept>

namespace rv::models {
namespace {

std::string where(const ModelConfig& cfg) { return "model " + (cfg.name.empty() ? cfg.arch : cfg.name); }

[[noreturn]] void bad_value(const ModelConfig& cfg, const std::string& key, const std::string& value,
                            const std::string& expected) {
  throw std::invalid_argument(where(cfg) + ": override " + key + "=" + value + ": expected " + expected);
}

int64_t parse_int(const ModelConfig& cfg, const std::string& key, const std::string& text) {
  int64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    bad_value(cfg, key, text, "an integer");
  return v;
}

double parse_double(const ModelConfig& cfg, const std::string& key, const std::string& text) {
  // std::from_chars for double is in GCC 12's libstdc++; strtod would accept trailing junk.
  double v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || !std::isfinite(v))
    bad_value(cfg, key, text, "a finite number");
  return v;
}

bool parse_bool(const ModelConfig& cfg, const std::string& key, const std::string& text) {
  if (text == "true" || text == "1") return true;
  if (text == "false" || text == "0") return false;
  bad_value(cfg, key, text, "true or false");
}

std::vector<int64_t> parse_list(const ModelConfig& cfg, const std::string& key, const std::string& text,
                                char sep) {
  std::vector<int64_t> out;
  std::string item;
  std::istringstream in(text);
  while (std::getline(in, item, sep)) out.push_back(parse_int(cfg, key, item));
  if (out.empty() || text.back() == sep) bad_value(cfg, key, text, std::string("integers separated by '") + sep + "'");
  return out;
}

}  // namespace

int64_t ModelConfig::depth() const {
  int64_t d = 0;
  for (int64_t x : depths) d += x;
  return d;
}

void apply_override(ModelConfig& cfg, const std::string& key, const std::string& value) {
  const bool vit = cfg.arch == "vit", swin = cfg.arch == "swin";
  auto only = [&](bool ok, const char* family) {
    if (!ok) throw std::invalid_argument(where(cfg) + ": override " + key + " applies to " + family + " models only");
  };
  using Setter = std::function<void()>;
  const std::map<std::string, Setter> setters = {
      {"img_size",
       [&] {
         auto hw = parse_list(cfg, key, value, 'x');
         if (hw.size() > 2) bad_value(cfg, key, value, "one size (224) or height x width (384x640)");
         cfg.img_h = hw[0];
         cfg.img_w = hw.back();
       }},
      {"in_chans", [&] { cfg.in_chans = parse_int(cfg, key, value); }},
      {"num_classes", [&] { cfg.num_classes = parse_int(cfg, key, value); }},
      {"patch_size", [&] { cfg.patch_size = parse_int(cfg, key, value); }},
      {"embed_dim", [&] { cfg.embed_dim = parse_int(cfg, key, value); }},
      {"depth", [&] { cfg.depths = parse_list(cfg, key, value, ','); }},
      {"depths", [&] { cfg.depths = parse_list(cfg, key, value, ','); }},
      {"heads", [&] { cfg.num_heads = parse_list(cfg, key, value, ','); }},
      {"num_heads", [&] { cfg.num_heads = parse_list(cfg, key, value, ','); }},
      {"mlp_ratio", [&] { cfg.mlp_ratio = parse_double(cfg, key, value); }},
      {"qkv_bias", [&] { cfg.qkv_bias = parse_bool(cfg, key, value); }},
      {"layer_scale_init", [&] { only(vit, "ViT"); cfg.layer_scale_init = parse_double(cfg, key, value); }},
      {"norm_eps", [&] { cfg.norm_eps = parse_double(cfg, key, value); }},
      {"drop_rate", [&] { cfg.drop_rate = parse_double(cfg, key, value); }},
      {"attn_drop_rate", [&] { cfg.attn_drop_rate = parse_double(cfg, key, value); }},
      {"proj_drop_rate", [&] { cfg.proj_drop_rate = parse_double(cfg, key, value); }},
      {"drop_path_rate", [&] { cfg.drop_path_rate = parse_double(cfg, key, value); }},
      {"rope_theta", [&] { cfg.rope_theta = parse_double(cfg, key, value); }},
      {"rope_mixed_theta", [&] { cfg.rope_mixed_theta = parse_double(cfg, key, value); }},
      {"window_size", [&] { only(swin, "Swin"); cfg.window_size = parse_int(cfg, key, value); }},
      {"ape_antialias", [&] { only(vit, "ViT"); cfg.ape_antialias = parse_bool(cfg, key, value); }},
      {"ape_on_cls", [&] { only(vit, "ViT"); cfg.ape_on_cls = parse_bool(cfg, key, value); }},
      {"class_token", [&] { only(vit, "ViT"); cfg.class_token = parse_bool(cfg, key, value); }},
      {"global_pool", [&] { only(vit, "ViT"); cfg.global_pool = value; }},
      {"pos_embed", [&] { cfg.pos_embed = value; }},
      {"seed", [&] { cfg.seed = uint64_t(parse_int(cfg, key, value)); }},
  };
  auto it = setters.find(key);
  if (it == setters.end()) {
    std::string keys;
    for (const auto& [k, _] : setters) {
      if (!keys.empty()) keys += ", ";
      keys += k;
    }
    throw std::invalid_argument(where(cfg) + ": unknown override key '" + key + "' (known: " + keys + ")");
  }
  it->second();
}

void apply_overrides(ModelConfig& cfg, const std::map<std::string, std::string>& overrides) {
  for (const auto& [k, v] : overrides) apply_override(cfg, k, v);
}

void validate(const ModelConfig& cfg) {
  auto fail = [&](const std::string& what) { throw std::invalid_argument(where(cfg) + ": " + what); };
  auto positive = [&](int64_t v, const char* field) {
    if (v <= 0) fail(std::string(field) + " must be positive, got " + std::to_string(v));
  };
  positive(cfg.img_h, "img_size (height)");
  positive(cfg.img_w, "img_size (width)");
  positive(cfg.in_chans, "in_chans");
  positive(cfg.patch_size, "patch_size");
  positive(cfg.embed_dim, "embed_dim");
  if (cfg.num_classes < 0) fail("num_classes must be >= 0 (0 = no head), got " + std::to_string(cfg.num_classes));
  if (cfg.mlp_ratio <= 0) fail("mlp_ratio must be positive");
  if (cfg.norm_eps <= 0) fail("norm_eps must be positive");
  for (double p : {cfg.drop_rate, cfg.attn_drop_rate, cfg.proj_drop_rate, cfg.drop_path_rate})
    if (p < 0 || p >= 1) fail("dropout and drop-path rates must be in [0, 1)");
  if (cfg.depths.size() != cfg.num_heads.size())
    fail("depths and num_heads must have one entry per stage, got " + std::to_string(cfg.depths.size()) + " and " +
         std::to_string(cfg.num_heads.size()));
  for (int64_t d : cfg.depths)
    if (d < 0) fail("depths must be >= 0");
  for (int64_t h : cfg.num_heads) positive(h, "num_heads");

  if (cfg.arch == "vit") {
    if (cfg.depths.size() != 1) fail("a ViT has one depth, got " + std::to_string(cfg.depths.size()) + " stages");
    if (cfg.embed_dim % cfg.num_heads[0] != 0)
      fail("embed_dim " + std::to_string(cfg.embed_dim) + " is not divisible by num_heads " +
           std::to_string(cfg.num_heads[0]));
    if (cfg.img_h % cfg.patch_size != 0 || cfg.img_w % cfg.patch_size != 0)
      fail("img_size " + std::to_string(cfg.img_h) + "x" + std::to_string(cfg.img_w) +
           " is not divisible by the patch size " + std::to_string(cfg.patch_size));
    static const char* kVit[] = {"ape", "rope_axial", "rope_mixed", "rope_axial_ape", "rope_mixed_ape"};
    bool known = false;
    for (const char* p : kVit) known |= cfg.pos_embed == p;
    if (!known)
      fail("pos_embed '" + cfg.pos_embed +
           "' is not one of ape, rope_axial, rope_mixed, rope_axial_ape, rope_mixed_ape (ViT)");
    if (cfg.uses_rope() && (cfg.embed_dim / cfg.num_heads[0]) % 4 != 0)
      fail("RoPE needs a head dim divisible by 4, got " + std::to_string(cfg.embed_dim / cfg.num_heads[0]));
    if (cfg.ape_on_cls && !cfg.uses_ape()) fail("ape_on_cls needs an APE pos_embed");
    if (cfg.global_pool != "token" && cfg.global_pool != "avg")
      fail("global_pool '" + cfg.global_pool + "' is not one of token, avg (ViT)");
    if (!cfg.class_token && cfg.global_pool == "token") fail("global_pool 'token' needs class_token = true");
    if (!cfg.class_token && cfg.ape_on_cls) fail("ape_on_cls needs class_token = true");
  } else if (cfg.arch == "swin") {
    if (cfg.depths.empty()) fail("a Swin needs at least one stage");
    if (cfg.pos_embed != "rpb" && cfg.pos_embed != "rope_axial" && cfg.pos_embed != "rope_mixed")
      fail("pos_embed '" + cfg.pos_embed + "' is not one of rpb, rope_axial, rope_mixed (Swin)");
    if (cfg.window_size < 0) fail("window_size must be >= 0 (0 = img_size // 32)");
    for (size_t s = 0; s < cfg.depths.size(); ++s) {
      const int64_t dim = cfg.embed_dim << s;
      if (dim % cfg.num_heads[s] != 0)
        fail("stage " + std::to_string(s) + " dim " + std::to_string(dim) + " is not divisible by its " +
             std::to_string(cfg.num_heads[s]) + " heads");
    }
  } else {
    fail("arch must be vit or swin, got '" + cfg.arch + "'");
  }
}

std::string to_string(const ModelConfig& cfg) {
  auto list = [](const std::vector<int64_t>& v) {
    std::string s;
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) s += ",";
      s += std::to_string(v[i]);  // two appends: GCC 12 warns (-Wrestrict, falsely) on "," + to_string
    }
    return s;
  };
  std::ostringstream o;
  o << "name=" << cfg.name << "\narch=" << cfg.arch << "\npos_embed=" << cfg.pos_embed
    << "\nimg_size=" << cfg.img_h << "x" << cfg.img_w << "\nin_chans=" << cfg.in_chans
    << "\nnum_classes=" << cfg.num_classes << "\npatch_size=" << cfg.patch_size << "\nembed_dim=" << cfg.embed_dim
    << "\ndepths=" << list(cfg.depths) << "\nnum_heads=" << list(cfg.num_heads) << "\nmlp_ratio=" << cfg.mlp_ratio
    << "\nqkv_bias=" << (cfg.qkv_bias ? "true" : "false") << "\nnorm_eps=" << cfg.norm_eps
    << "\ndrop_rate=" << cfg.drop_rate << "\nattn_drop_rate=" << cfg.attn_drop_rate
    << "\nproj_drop_rate=" << cfg.proj_drop_rate << "\ndrop_path_rate=" << cfg.drop_path_rate << "\nseed=" << cfg.seed;
  if (cfg.arch == "vit")
    o << "\nlayer_scale_init=" << cfg.layer_scale_init << "\nape_on_cls=" << (cfg.ape_on_cls ? "true" : "false")
      << "\nape_antialias=" << (cfg.ape_antialias ? "true" : "false")
      << "\nclass_token=" << (cfg.class_token ? "true" : "false") << "\nglobal_pool=" << cfg.global_pool;
  if (cfg.arch == "swin") o << "\nwindow_size=" << cfg.window_size;
  if (cfg.uses_rope()) o << "\nrope_theta=" << cfg.rope_theta << "\nrope_mixed_theta=" << cfg.rope_mixed_theta;
  o << "\n";
  return o.str();
}

}  // namespace rv::models
