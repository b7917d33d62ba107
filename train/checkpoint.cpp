// checkpoint.cpp: writing, reading, checking and finding checkpoints (see checkpoint.h).
#include "train/checkpoint.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <stdexcept>

#include "engine/io/safetensors.h"

namespace rv::train {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const char* kEmaPrefix = "ema.";
const char* kOptimPrefix = "optimizer.";

std::string shape_text(const Shape& s) {
  std::string t = "[";
  for (size_t i = 0; i < s.size(); ++i) t += (i ? ", " : "") + std::to_string(s[i]);
  return t + "]";
}

// JSON has no NaN / Inf: a non-finite number (e.g. the eval loss of a diverged run as the best
// metric) is stored as null and read back as NaN, rather than making the file unreadable.
json finite_or_null(double v) { return std::isfinite(v) ? json(v) : json(nullptr); }
double number_or_nan(const json& v) { return v.is_null() ? std::nan("") : v.get<double>(); }

}  // namespace

json meta_to_json(const CheckpointMeta& m) {
  return json{{"version", kCheckpointVersion},
              {"kind", m.kind},
              {"model", m.model},
              {"epoch", m.epoch},
              {"epoch_batches", m.epoch_batches},
              {"epoch_samples", m.epoch_samples},
              {"world_size", m.world_size},
              {"step", m.step},
              {"seed", m.seed},
              {"dropout_offset", m.dropout_offset},
              {"best_metric", finite_or_null(m.best_metric)},
              {"best_epoch", m.best_epoch},
              {"nan_skipped", m.nan_skipped},
              {"epoch_loss_sum", finite_or_null(m.epoch_loss_sum)},
              {"epoch_loss_steps", m.epoch_loss_steps},
              {"config", m.config}};
}

CheckpointMeta meta_from_json(const json& j, const std::string& where) {
  auto field = [&](const char* key) -> const json& {
    if (!j.is_object() || !j.contains(key))
      throw std::runtime_error(where + ": checkpoint metadata has no \"" + key + "\"");
    return j.at(key);
  };
  try {
    if (field("version").get<int64_t>() != kCheckpointVersion)
      throw std::runtime_error(where + ": checkpoint version " + field("version").dump() + ", this build reads " +
                               std::to_string(kCheckpointVersion));
    CheckpointMeta m;
    m.kind = field("kind").get<std::string>();
    m.model = field("model").get<std::string>();
    m.epoch = field("epoch").get<int64_t>();
    m.epoch_batches = field("epoch_batches").get<int64_t>();
    // Added with multi-rank training; older files are single-rank: their position in samples is
    // epoch_batches x train.batch_size.
    m.world_size = j.value("world_size", int64_t(1));
    const json& cfg = field("config");
    const int64_t batch = cfg.contains("train") && cfg["train"].contains("batch_size")
                              ? cfg["train"]["batch_size"].get<int64_t>()
                              : int64_t(1);
    m.epoch_samples = j.contains("epoch_samples") ? j.at("epoch_samples").get<int64_t>() : m.epoch_batches * batch;
    m.step = field("step").get<int64_t>();
    m.seed = field("seed").get<uint64_t>();
    m.dropout_offset = field("dropout_offset").get<uint64_t>();
    m.best_metric = number_or_nan(field("best_metric"));
    m.best_epoch = field("best_epoch").get<int64_t>();
    m.nan_skipped = field("nan_skipped").get<int64_t>();
    m.epoch_loss_sum = number_or_nan(field("epoch_loss_sum"));
    m.epoch_loss_steps = field("epoch_loss_steps").get<int64_t>();
    m.config = field("config");
    return m;
  } catch (const json::exception& e) {
    throw std::runtime_error(where + ": malformed checkpoint metadata: " + e.what());
  }
}

void save_checkpoint(const std::string& path, const nn::Module& model, const nn::Module* ema,
                     const optim::Optimizer* optimizer, const CheckpointMeta& meta) {
  // The file is written from host memory: tensors of a model trained on a GPU (weights, EMA,
  // optimizer moments) are copied to the host first, one at a time as they are listed.
  NamedTensors tensors;
  auto host = [](const Tensor& t) { return t.device().is_cpu() ? t : t.cpu(); };
  for (const auto& [name, t] : model.state_dict()) tensors.emplace_back(name, host(t));
  if (ema)
    for (const auto& [name, t] : ema->state_dict()) tensors.emplace_back(kEmaPrefix + name, host(t));
  if (optimizer)
    for (const auto& [name, t] : optimizer->state_dict()) tensors.emplace_back(kOptimPrefix + name, host(t));
  fs::create_directories(fs::path(path).parent_path());
  save_safetensors(path, tensors, {{kCheckpointMetaKey, meta_to_json(meta).dump()}});
}

LoadedCheckpoint read_checkpoint(const std::string& path) {
  if (!fs::exists(path)) throw std::runtime_error("checkpoint '" + path + "' does not exist");
  SafetensorsFile file = SafetensorsFile::open(path);  // checks the whole layout (truncation included)
  const auto& md = file.metadata();
  auto it = md.find(kCheckpointMetaKey);
  if (it == md.end())
    throw std::runtime_error("'" + path + "' is a safetensors file but not a ropevit checkpoint (no \"" +
                             kCheckpointMetaKey + "\" metadata); weights alone go to --init-from / ckpt.init_from");
  json j;
  try {
    j = json::parse(it->second);
  } catch (const json::exception& e) {
    throw std::runtime_error("checkpoint '" + path + "': its metadata is not JSON: " + e.what());
  }
  LoadedCheckpoint c;
  c.path = path;
  c.meta = meta_from_json(j, "checkpoint '" + path + "'");
  for (const auto& name : file.names()) {  // sorted by name; the model order comes from the model
    Tensor t = file.tensor(name);
    if (name.rfind(kEmaPrefix, 0) == 0)
      c.ema.insert(name.substr(std::string(kEmaPrefix).size()), t);
    else if (name.rfind(kOptimPrefix, 0) == 0)
      c.optimizer.insert(name.substr(std::string(kOptimPrefix).size()), t);
    else
      c.model.insert(name, t);
  }
  return c;
}

std::string state_mismatch(const nn::StateDict& state, const nn::Module& model, size_t max_lines) {
  std::vector<std::string> lines;
  const nn::StateDict own = model.state_dict();
  for (const auto& [name, t] : own) {
    const Tensor* s = state.find(name);
    if (!s)
      lines.push_back("missing " + name + " " + shape_text(t.shape()));
    else if (s->shape() != t.shape())
      lines.push_back("shape of " + name + ": file " + shape_text(s->shape()) + ", model " + shape_text(t.shape()));
    else if (s->dtype() != t.dtype())
      lines.push_back("dtype of " + name + ": file " + dtype_name(s->dtype()) + ", model " + dtype_name(t.dtype()));
  }
  for (const auto& [name, t] : state)
    if (!own.contains(name)) lines.push_back("unexpected " + name + " " + shape_text(t.shape()));
  if (lines.empty()) return "";
  std::string out;
  for (size_t i = 0; i < lines.size() && i < max_lines; ++i) out += "\n  " + lines[i];
  if (lines.size() > max_lines) out += "\n  ... and " + std::to_string(lines.size() - max_lines) + " more";
  return out;
}

void restore_checkpoint(const LoadedCheckpoint& ckpt, models::Model& model, models::Model* ema,
                        optim::Optimizer* optimizer) {
  const std::string who = "checkpoint '" + ckpt.path + "' (model " + ckpt.meta.model + ")";
  const std::string ours = model.config().name.empty() ? model.type_name() : model.config().name;
  if (std::string m = state_mismatch(ckpt.model, model); !m.empty())
    throw std::runtime_error(who + " does not fit this run's model " + ours + ":" + m);
  if (ema) {
    if (ckpt.ema.empty())
      throw std::runtime_error(who + " has no EMA weights (ema.*), but this run keeps an EMA (train.ema_decay > 0)");
    if (std::string m = state_mismatch(ckpt.ema, *ema); !m.empty())
      throw std::runtime_error(who + ": its EMA weights do not fit the model " + ours + ":" + m);
  }
  if (optimizer && ckpt.optimizer.empty()) throw std::runtime_error(who + " has no optimizer state (optimizer.*)");
  // Everything named above fits; the optimizer checks its own state before changing anything,
  // so it goes first and a refusal leaves the model untouched too.
  if (optimizer) {
    try {
      optimizer->load_state_dict(ckpt.optimizer);
    } catch (const std::exception& e) {
      throw std::runtime_error(who + ": optimizer state does not fit (a different optim.name, layer_decay or "
                                     "frozen parameters?): " + e.what());
    }
  }
  model.load_state_dict(ckpt.model);
  if (ema) ema->load_state_dict(ckpt.ema);
}

std::optional<std::string> find_latest_checkpoint(const std::string& dir, std::vector<std::string>* skipped) {
  if (!fs::is_directory(dir)) return std::nullopt;
  struct Found {
    int64_t step;
    fs::file_time_type time;
    std::string path;
  };
  std::vector<Found> found;
  for (const auto& e : fs::directory_iterator(dir)) {
    if (!e.is_regular_file() || e.path().extension() != ".safetensors") continue;
    try {
      LoadedCheckpoint c = read_checkpoint(e.path().string());
      found.push_back({c.meta.step, e.last_write_time(), e.path().string()});
    } catch (const std::exception& err) {
      if (skipped) skipped->push_back(e.path().string() + ": " + err.what());
    }
  }
  if (found.empty()) return std::nullopt;
  auto best = std::max_element(found.begin(), found.end(), [](const Found& a, const Found& b) {
    return a.step != b.step ? a.step < b.step : a.time < b.time;
  });
  return best->path;
}

void export_weights(const std::string& checkpoint_path, const std::string& out, bool ema) {
  LoadedCheckpoint c = read_checkpoint(checkpoint_path);
  const nn::StateDict& w = ema ? c.ema : c.model;
  if (w.empty())
    throw std::runtime_error("checkpoint '" + checkpoint_path + "' has no " + (ema ? "EMA weights" : "model weights"));
  NamedTensors tensors(w.begin(), w.end());
  save_safetensors(out, tensors, {{"ropevit_model", c.meta.model}, {"ropevit_step", std::to_string(c.meta.step)}});
}

}  // namespace rv::train
