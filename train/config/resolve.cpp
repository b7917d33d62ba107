// resolve.cpp: the layers of a config merged in order, checked, and printed with provenance.
#include "train/config/resolve.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <sstream>

#include "train/config/config_file.h"
#include "train/config/overrides.h"
#include "train/config/schema.h"

namespace rv::config {
namespace {

using nlohmann::json;

// 6 not 6.0; 0.0005 as JSON writes it.
std::string num(double v) {
  if (v == std::floor(v) && std::fabs(v) < 1e15) return std::to_string(int64_t(v));
  return json(v).dump();
}

// Rules between keys, checked on the typed config after every key passed on its own.
std::vector<std::string> cross_checks(const TrainConfig& c, const SourcedJson& tree) {
  std::vector<std::string> problems;
  auto at = [&](const std::string& key) { return tree.origin_of(key) + ": " + key + ": "; };
  auto from = [&](const std::string& key) { return " (" + key + ", from " + tree.origin_of(key) + ")"; };
  if (c.train.iters > 0 && c.sched.warmup_epochs > 0)
    problems.push_back(at("sched.warmup_epochs") + "counts epochs, but train.iters = " + std::to_string(c.train.iters) +
                       " counts steps" + from("train.iters") + "; give the warmup as sched.warmup_iters and set "
                       "sched.warmup_epochs = 0");
  if (c.train.iters == 0 && c.sched.warmup_iters > 0)
    problems.push_back(at("sched.warmup_iters") + "needs train.iters > 0 (an epoch-counted run warms up for "
                       "sched.warmup_epochs)");
  if (c.train.iters > 0 && c.sched.warmup_iters > c.train.iters)
    problems.push_back(at("sched.warmup_iters") + std::to_string(c.sched.warmup_iters) +
                       " warmup steps is more than the " + std::to_string(c.train.iters) + " steps of training" +
                       from("train.iters"));
  const bool seg_data = c.data.dataset == "ade20k" || c.data.dataset == "scenes";
  if (c.task == "segmentation") {
    if (!seg_data)
      problems.push_back(at("data.dataset") + "'" + c.data.dataset + "' has no label maps; segmentation trains on "
                         "ade20k or scenes" + from("task"));
    const int64_t want = c.data.dataset == "scenes" ? 10 : c.data.dataset == "ade20k" ? 150 : c.data.num_classes;
    if (seg_data && c.data.num_classes != want)
      problems.push_back(at("data.num_classes") + std::to_string(c.data.num_classes) + " classes, but " +
                         c.data.dataset + " has " + std::to_string(want));
    if (c.train.iters == 0)
      problems.push_back(at("train.iters") + "segmentation counts optimizer steps (mmseg's iterations): set "
                         "train.iters > 0" + from("task"));
    if (c.ckpt.best_metric != "mIoU" && c.ckpt.best_metric != "mAcc" && c.ckpt.best_metric != "aAcc")
      problems.push_back(at("ckpt.best_metric") + "'" + c.ckpt.best_metric + "' is a classification metric; "
                         "segmentation keeps the best checkpoint by mIoU, mAcc or aAcc" + from("task"));
    if (c.seg.stride > c.seg.crop)
      problems.push_back(at("seg.stride") + std::to_string(c.seg.stride) + " is larger than the window seg.crop = " +
                         std::to_string(c.seg.crop) + ": pixels between windows would get no prediction");
  } else {
    if (seg_data)
      problems.push_back(at("data.dataset") + "'" + c.data.dataset + "' is a segmentation set; set task = "
                         "segmentation" + from("task"));
    if (c.ckpt.best_metric == "mIoU" || c.ckpt.best_metric == "mAcc" || c.ckpt.best_metric == "aAcc")
      problems.push_back(at("ckpt.best_metric") + "'" + c.ckpt.best_metric + "' is a segmentation metric; "
                         "classification keeps the best checkpoint by top1, top5 or loss" + from("task"));
    if (c.model.sync_bn.value_or(false))  // set, and true: it would be silently ignored
      problems.push_back(at("model.sync_bn") + "applies to segmentation (the UperNet's BatchNorm layers); the "
                         "classification models have no BatchNorm" + from("task"));
  }
  if (c.sched.warmup_epochs > double(c.train.epochs))
    problems.push_back(at("sched.warmup_epochs") + num(c.sched.warmup_epochs) + " warmup epochs is more than the " +
                       std::to_string(c.train.epochs) + " epochs of training" + from("train.epochs"));
  if (c.sched.min_lr > c.optim.lr)
    problems.push_back(at("sched.min_lr") + num(c.sched.min_lr) + " is above the base LR " + num(c.optim.lr) +
                       from("optim.lr") + "; the cosine would rise");
  if (c.data.mean.size() != c.data.std.size())
    problems.push_back(at("data.std") + std::to_string(c.data.std.size()) + " values, but data.mean has " +
                       std::to_string(c.data.mean.size()) + "; give one per channel (or one for all)");
  if (c.model.in_chans)
    for (const char* key : {"data.mean", "data.std"}) {
      const size_t n = std::string(key) == "data.mean" ? c.data.mean.size() : c.data.std.size();
      if (n != 1 && int64_t(n) != *c.model.in_chans)
        problems.push_back(at(key) + std::to_string(n) + " values for " + std::to_string(*c.model.in_chans) +
                           " input channels" + from("model.in_chans"));
    }
  if (c.aug.three_augment && !c.aug.randaugment.empty())
    problems.push_back(at("aug.randaugment") + "RandAugment and aug.three_augment are alternatives (DeiT-III uses "
                       "3-Augment instead of RandAugment); turn one off" + from("aug.three_augment"));
  if (c.aug.scale[0] > c.aug.scale[1] || c.aug.ratio[0] > c.aug.ratio[1])
    problems.push_back(at(c.aug.scale[0] > c.aug.scale[1] ? "aug.scale" : "aug.ratio") +
                       "expected [lo, hi] with lo <= hi");
  return problems;
}

std::string shown(const json& v) { return v.dump(); }

}  // namespace

ResolvedConfig resolve_config(const std::string& path, const std::vector<std::string>& overrides) {
  const Schema& schema = train_schema();
  std::vector<Override> parsed;
  for (const std::string& a : overrides) parsed.push_back(parse_override(a));

  SourcedJson tree = schema.defaults();
  LoadedConfig file = load_config_file(path);
  tree.merge(file.tree);
  apply_overrides(tree, parsed, schema);
  schema.check(tree);

  // An unnamed run takes the config file's name, as mmengine's work_dirs/<config name>.
  if (tree.find("train.run_name")->get<std::string>().empty()) {
    tree.set("train.run_name", std::filesystem::path(path).stem().string(), kFromFileName);
  }

  ResolvedConfig rc;
  rc.config = schema.to_config(tree);
  std::vector<std::string> problems = cross_checks(rc.config, tree);
  if (!problems.empty()) throw ConfigError(std::move(problems));
  rc.json = std::move(tree.value);
  rc.origin = std::move(tree.origin);
  rc.files = std::move(file.files);
  return rc;
}

std::string format_config(const ResolvedConfig& rc) {
  const Schema& schema = train_schema();
  std::ostringstream o;
  o << "# config: " << (rc.files.empty() ? "" : rc.files.back()) << "\n";
  if (rc.files.size() > 1) {
    o << "# includes:";
    for (size_t i = 0; i + 1 < rc.files.size(); ++i) o << " " << rc.files[i];
    o << "\n";
  }
  // Rows: every field, and every leaf under an open object (meta.*), in schema order.
  std::vector<std::pair<std::string, const json*>> rows;
  for (const Field& f : schema.fields()) {
    bool any = false;
    if (f.kind == Kind::Object)
      for (const auto& [key, _] : rc.origin)
        if (key.rfind(f.key + ".", 0) == 0) rows.emplace_back(key, nullptr), any = true;
    if (!any) rows.emplace_back(f.key, nullptr);
  }
  SourcedJson view;
  view.value = rc.json;
  size_t key_w = 0, val_w = 0;
  std::vector<std::string> values;
  for (auto& [key, v] : rows) {
    const json* found = view.find(key);
    values.push_back(found ? shown(*found) : "(missing)");
    key_w = std::max(key_w, key.size());
    val_w = std::max(val_w, std::min<size_t>(values.back().size(), 40));
  }
  std::string group;
  for (size_t i = 0; i < rows.size(); ++i) {
    const std::string& key = rows[i].first;
    const std::string g = key.substr(0, key.find('.'));
    if (g != group) {
      o << "\n";
      group = g;
    }
    auto it = rc.origin.find(key);
    const std::string from = it == rc.origin.end() ? "" : it->second;
    o << key << std::string(key_w + 2 - key.size(), ' ') << values[i];
    o << std::string(values[i].size() < val_w + 2 ? val_w + 2 - values[i].size() : 2, ' ') << from << "\n";
  }
  return o.str();
}

std::string format_keys() {
  const Schema& schema = train_schema();
  const json defaults = schema.defaults().value;
  SourcedJson view;
  view.value = defaults;
  std::ostringstream o;
  std::string group;
  for (const Field& f : schema.fields()) {
    const std::string g = f.key.substr(0, f.key.find('.'));
    if (g != group) {
      o << (group.empty() ? "" : "\n");
      group = g;
    }
    o << f.key << "  " << f.describe() << "; default " << view.find(f.key)->dump() << "\n    " << f.help << "\n";
  }
  return o.str();
}

}  // namespace rv::config
