// checkpoint_convert.cpp: the three steps of checkpoint conversion (names, shapes, check); the
// rules and their order are described in checkpoint_convert.h.
#include "models/checkpoint_convert.h"

#include <cmath>
#include <map>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>

#include "engine/autograd.h"
#include "engine/dtype.h"
#include "models/ape.h"
#include "models/swin_attention.h"
#include "models/swin_rel_pos_bias.h"

namespace rv::models {
namespace {

// Buffers every model here recomputes from its config, so a checkpoint's copy is dropped (NV's
// loaders delete the same names before load_state_dict).
const std::set<std::string> kRegenerated = {"freqs_t_x",         "freqs_t_y", "relative_position_index",
                                            "relative_coords_table", "attn_mask", "rope_t_x",
                                            "rope_t_y"};

std::string last_component(const std::string& name) {
  const size_t dot = name.rfind('.');
  return dot == std::string::npos ? name : name.substr(dot + 1);
}

// s when s*s == n (n >= 0), else -1.
int64_t exact_sqrt(int64_t n) {
  if (n < 0) return -1;
  int64_t s = int64_t(std::llround(std::sqrt(double(n))));
  while (s * s > n) --s;
  while ((s + 1) * (s + 1) <= n) ++s;
  return s * s == n ? s : -1;
}

std::string join(const std::vector<std::string>& items, const std::string& sep = ", ") {
  std::string out;
  for (size_t i = 0; i < items.size(); ++i) out += (i ? sep : "") + items[i];
  return out;
}

std::string model_label(const Model& model) {
  return model.config().name.empty() ? std::string("the model") : "model '" + model.config().name + "'";
}

bool is_head_key(const std::string& name) { return name.rfind("head.", 0) == 0; }

// The window of every Swin attention block, by the name of its RPB table.
std::map<std::string, SwinWindow> swin_windows(const Model& model) {
  std::map<std::string, SwinWindow> out;
  for (const auto& [name, module] : model.named_modules())
    if (const auto* attn = dynamic_cast<const SwinWindowAttention*>(module))
      out[name + ".relative_position_bias_table"] = attn->window();
  return out;
}

}  // namespace

nn::StateDict map_checkpoint_keys(const nn::StateDict& source, const Model& model, std::vector<std::string>& notes) {
  const nn::StateDict target = model.state_dict();
  const ModelConfig& cfg = model.config();
  auto expects = [&](const std::string& n) { return target.contains(n); };

  // MS / NV Swin put the patch merging at the end of stages 0..S-2; timm never has layers.0.downsample.
  bool ms_swin = false;
  if (cfg.arch == "swin")
    for (const auto& [name, t] : source) {
      const std::string n = name.rfind("module.", 0) == 0 ? name.substr(7) : name;
      if (n.rfind("layers.0.downsample.", 0) == 0 && !expects(n)) ms_swin = true;
    }

  static const std::regex gamma_nv(R"(^blocks\.(\d+)\.gamma_([12])$)");
  static const std::regex gamma_timm(R"(^blocks\.(\d+)\.ls([12])\.gamma$)");
  static const std::regex downsample(R"(^layers\.(\d+)\.downsample\.(.*)$)");

  nn::StateDict out;
  int64_t stripped = 0, layer_scale = 0, moved_downsample = 0, head_fc = 0;
  std::vector<std::string> dropped;
  std::set<std::string> dropped_kinds;
  std::string freqs_note;
  for (const auto& [name, value] : source) {
    std::string n = name;
    Tensor t = value;
    if (n.rfind("module.", 0) == 0) {
      n = n.substr(7);
      ++stripped;
    }
    if (kRegenerated.count(last_component(n)) && !expects(n)) {
      dropped.push_back(n);
      dropped_kinds.insert(last_component(n));
      continue;
    }
    std::smatch m;
    if (cfg.arch == "vit") {
      if (n == "freqs" && !expects(n) && expects("rope.freqs")) {
        // NV (2, L, C/2) -> timm (2, L, NH, HD/2): C/2 = NH * HD/2 with the head outermost.
        const Shape& want = target.at("rope.freqs").shape();
        n = "rope.freqs";
        if (t.numel() == shape_numel(want) && t.dim() == 3 && t.size(0) == want[0] && t.size(1) == want[1]) {
          freqs_note = "reshaped freqs " + shape_str(t.shape()) + " -> rope.freqs " + shape_str(want);
          t = t.reshape(want);
        } else {
          freqs_note = "renamed freqs -> rope.freqs";  // its shape is reported by the check
        }
      } else if (std::regex_match(n, m, gamma_nv) && !expects(n)) {
        const std::string to = "blocks." + m[1].str() + ".ls" + m[2].str() + ".gamma";
        if (expects(to)) n = to, ++layer_scale;
      } else if (std::regex_match(n, m, gamma_timm) && !expects(n)) {
        const std::string to = "blocks." + m[1].str() + ".gamma_" + m[2].str();
        if (expects(to)) n = to, ++layer_scale;
      }
    } else if (cfg.arch == "swin") {
      if (ms_swin && std::regex_match(n, m, downsample)) {
        n = "layers." + std::to_string(std::stoll(m[1].str()) + 1) + ".downsample." + m[2].str();
        ++moved_downsample;
      } else if (is_head_key(n) && n.rfind("head.fc.", 0) != 0 && !expects(n) && expects("head.fc." + n.substr(5))) {
        n = "head.fc." + n.substr(5);
        ++head_fc;
      }
    }
    if (out.contains(n))
      throw std::runtime_error("convert checkpoint -> " + model_label(model) + ": two checkpoint keys map to '" + n +
                               "' (the second is '" + name + "')");
    out.insert(n, t);
  }

  if (stripped) notes.push_back("stripped the 'module.' prefix from " + std::to_string(stripped) + " keys");
  if (!dropped.empty())
    notes.push_back("dropped " + std::to_string(dropped.size()) + " regenerated buffer" +
                    (dropped.size() == 1 ? "" : "s") + ": " +
                    join(dropped.size() <= 4 ? dropped : std::vector<std::string>(dropped_kinds.begin(), dropped_kinds.end())));
  if (!freqs_note.empty()) notes.push_back(freqs_note);
  if (layer_scale)
    notes.push_back("renamed " + std::to_string(layer_scale) + " LayerScale keys (" +
                    (expects("blocks.0.ls1.gamma") ? "blocks.i.gamma_1/2 -> blocks.i.ls1/ls2.gamma"
                                                   : "blocks.i.ls1/ls2.gamma -> blocks.i.gamma_1/2") +
                    ")");
  if (moved_downsample)
    notes.push_back("moved " + std::to_string(moved_downsample) +
                    " patch-merging keys from the MS layout: layers.{s}.downsample -> layers.{s+1}.downsample");
  if (head_fc) notes.push_back("renamed head.* -> head.fc.* (" + std::to_string(head_fc) + " keys)");
  return out;
}

nn::StateDict resize_position_tables(const nn::StateDict& mapped, const Model& model, const ConvertOptions& options,
                                     std::vector<std::string>& notes) {
  const nn::StateDict target = model.state_dict();
  const ModelConfig& cfg = model.config();
  std::map<std::string, SwinWindow> windows;
  if (cfg.arch == "swin") windows = swin_windows(model);

  autograd::NoGradGuard no_grad;
  nn::StateDict out;
  std::map<std::string, int64_t> casts;            // "bf16 -> f32": count
  std::map<std::string, int64_t> rpb_resizes;      // "7x7 -> 12x12": count
  for (const auto& [name, value] : mapped) {
    Tensor t = value;
    const Tensor* want = target.find(name);
    if (want && t.defined() && is_floating(t.dtype()) && is_floating(want->dtype()) && t.dtype() != want->dtype()) {
      ++casts[std::string(dtype_name(t.dtype())) + " -> " + dtype_name(want->dtype())];
      t = t.to(want->dtype());
    }
    if (want && t.defined() && t.shape() != want->shape()) {
      if (name == "pos_embed" && cfg.arch == "vit" && t.dim() == 3 && want->dim() == 3 && t.size(0) == 1 &&
          t.size(2) == want->size(2)) {
        // (1, P + Gs_h*Gs_w, C) -> (1, P + Gh*Gw, C). The source grid is the one the options give
        // when its rows match, else square (timm and NV train square).
        const int64_t prefix = cfg.ape_on_cls ? 1 : 0;
        Grid src = options.source_grid;
        if (src.tokens() <= 0 || src.tokens() != t.size(1) - prefix) {
          const int64_t g = exact_sqrt(t.size(1) - prefix);
          src = Grid{g, g};
        }
        const Grid grid{cfg.img_h / cfg.patch_size, cfg.img_w / cfg.patch_size};
        if (src.h > 0 && want->size(1) == prefix + grid.tokens()) {
          t = resample_abs_pos_embed(t, src, grid, prefix, cfg.ape_antialias);
          notes.push_back("resized pos_embed " + std::to_string(src.h) + "x" + std::to_string(src.w) + " -> " +
                          std::to_string(grid.h) + "x" + std::to_string(grid.w) + " (bicubic, antialias " +
                          (cfg.ape_antialias ? "on" : "off") + (prefix ? ", CLS row kept" : "") + ")");
        }
      } else if (last_component(name) == "relative_position_bias_table" && windows.count(name) && t.dim() == 2 &&
                 want->dim() == 2 && t.size(1) == want->size(1)) {
        // ((2ws-1)^2, NH) -> ((2wh-1)(2ww-1), NH) for this block's window.
        const int64_t side = exact_sqrt(t.size(0));
        const SwinWindow& w = windows.at(name);
        if (side > 0 && side % 2 == 1) {
          const int64_t old_ws = (side + 1) / 2;
          t = resize_rel_pos_bias_table(t, old_ws, w.wh, w.ww);
          ++rpb_resizes[std::to_string(old_ws) + "x" + std::to_string(old_ws) + " -> " + std::to_string(w.wh) + "x" +
                        std::to_string(w.ww)];
        }
      }
    }
    out.insert(name, t);
  }
  for (const auto& [what, n] : casts)
    notes.push_back("converted " + std::to_string(n) + " tensor" + (n == 1 ? "" : "s") + " " + what);
  for (const auto& [what, n] : rpb_resizes)
    notes.push_back("resized " + std::to_string(n) + " relative_position_bias_table" + (n == 1 ? "" : "s") +
                    " for windows " + what + " (bicubic, antialias off)");
  return out;
}

ConvertResult check_against_model(const nn::StateDict& resized, const Model& model, const ConvertOptions& options,
                                  std::vector<std::string> notes) {
  const nn::StateDict target = model.state_dict();
  ConvertResult result;
  std::vector<std::string> missing, unexpected, mismatched;
  auto skip_head = [&](const std::string& name, const std::string& why) {
    if (!options.skip_mismatched_head || !is_head_key(name)) return false;
    result.skipped_head.push_back(name + " (" + why + ")");
    return true;
  };
  for (const auto& [name, want] : target) {
    const Tensor* src = resized.find(name);
    if (!src) {
      if (!skip_head(name, "not in the checkpoint")) missing.push_back(name);
    } else if (src->shape() != want.shape()) {
      if (!skip_head(name, "checkpoint " + shape_str(src->shape()) + ", model " + shape_str(want.shape())))
        mismatched.push_back(name + ": checkpoint " + shape_str(src->shape()) + ", model " + shape_str(want.shape()));
    } else {
      result.state.insert(name, *src);
    }
  }
  for (const auto& [name, t] : resized)
    if (!target.contains(name) && !skip_head(name, "the model has no such key")) unexpected.push_back(name);

  if (!missing.empty() || !unexpected.empty() || !mismatched.empty()) {
    std::string msg = "convert checkpoint -> " + model_label(model) + ": " +
                      std::to_string(missing.size() + unexpected.size() + mismatched.size()) +
                      " problem(s) after mapping the names:";
    if (!missing.empty())
      msg += "\n  missing keys (" + std::to_string(missing.size()) + "): " + join(missing);
    if (!unexpected.empty())
      msg += "\n  unexpected keys (" + std::to_string(unexpected.size()) + "): " + join(unexpected);
    if (!mismatched.empty())
      msg += "\n  shape mismatches (" + std::to_string(mismatched.size()) + "):\n    " + join(mismatched, "\n    ");
    if (!notes.empty()) msg += "\n  rules applied: " + join(notes, "; ");
    throw std::runtime_error(msg);
  }
  if (!result.skipped_head.empty())
    notes.push_back("skipped " + std::to_string(result.skipped_head.size()) +
                    " head tensor(s), the model keeps its own: " + join(result.skipped_head));
  result.notes = std::move(notes);
  return result;
}

ConvertResult convert_state_dict(const nn::StateDict& source, const Model& model, const ConvertOptions& options) {
  std::vector<std::string> notes;
  nn::StateDict mapped = map_checkpoint_keys(source, model, notes);
  nn::StateDict resized = resize_position_tables(mapped, model, options, notes);
  return check_against_model(resized, model, options, std::move(notes));
}

}  // namespace rv::models
