// info_model.cpp: `ropevit info MODEL`: a model's parameters, multiply-adds per image and the
// memory to train it at a batch size, measured by building and running it (models/model_stats.h);
// `ropevit info --models` lists the registered names.
#include <cstdio>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "models/model_stats.h"
#include "models/registry.h"
#include "train/commands.h"
#include "train/model_args.h"

namespace rv {

namespace {

void info_usage() {
  std::printf(
      "usage: ropevit info                     the build: compiler, threads, BLAS, devices\n"
      "       ropevit info --models            the registered model names\n"
      "       ropevit info MODEL [options] [KEY=VALUE ...]\n"
      "  --img-size H W   input size (default: the model's)\n"
      "  --batch N        batch size of the training-memory estimate (default 32)\n"
      "  --json           one JSON object instead of the text block\n"
      "  KEY=VALUE        a config override, e.g. depth=6 or drop_path_rate=0.1\n");
}

std::string millions(int64_t n) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2fM", double(n) / 1e6);
  return b;
}

std::string bytes_str(int64_t n) {
  char b[32];
  if (n >= (int64_t(1) << 30)) std::snprintf(b, sizeof b, "%.2f GiB", double(n) / double(int64_t(1) << 30));
  else std::snprintf(b, sizeof b, "%.1f MiB", double(n) / double(int64_t(1) << 20));
  return b;
}

std::string config_summary(const models::ModelConfig& c) {
  auto list = [](const std::vector<int64_t>& v) {
    std::string s;
    for (int64_t x : v) {
      if (!s.empty()) s.push_back(',');
      s.append(std::to_string(x));
    }
    return s;
  };
  const std::string depths = list(c.depths), heads = list(c.num_heads);
  char b[256];
  std::snprintf(b, sizeof b, "%s, %s, %lldx%lld, patch %lld, dim %lld, depth %s, heads %s, mlp %.3g, classes %lld",
                c.arch.c_str(), c.pos_embed.c_str(), (long long)c.img_h, (long long)c.img_w,
                (long long)c.patch_size, (long long)c.embed_dim, depths.c_str(), heads.c_str(), c.mlp_ratio,
                (long long)c.num_classes);
  return b;
}

}  // namespace

int info_model(int argc, char** argv) {
  ModelArgs args;
  int64_t batch = 32;
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      info_usage();
      return 0;
    }
    if (parse_img_size(argc, argv, i, args)) continue;
    if (a == "--batch") {
      if (i + 1 >= argc) throw std::invalid_argument("--batch needs a value");
      batch = parse_positive("--batch", argv[++i]);
    } else if (a == "--json") {
      json = true;
    } else if (parse_override(a, args)) {
    } else if (a[0] == '-') {
      throw std::invalid_argument("unknown option '" + a + "' (see ropevit info --help)");
    } else if (args.name.empty()) {
      args.name = a;
    } else {
      throw std::invalid_argument("one model at a time: got '" + args.name + "' and '" + a + "'");
    }
  }
  const models::ModelConfig cfg = resolve_config(args);
  std::fprintf(stderr, "ropevit info: building %s and running it at batch 1 and 2 to measure it...\n",
               cfg.name.c_str());
  auto model = models::create_model(cfg);
  const models::ModelStats s = models::measure_model(*model, cfg.img_h, cfg.img_w);
  const models::TrainingMemory m = models::training_memory(s, batch);

  if (json) {
    nlohmann::json j;
    j["model"] = cfg.name;
    j["overrides"] = args.overrides;
    j["img_h"] = cfg.img_h;
    j["img_w"] = cfg.img_w;
    j["params"] = s.params;
    j["trainable_params"] = s.trainable;
    j["macs_per_image"] = s.macs;
    j["gmacs_per_image"] = double(s.macs) / 1e9;
    j["macs_by_op"] = nlohmann::json::object();
    for (auto& [op, macs] : s.macs_by_op) j["macs_by_op"][op] = macs;
    j["batch"] = batch;
    j["memory_bytes"] = {{"params", m.params},
                         {"grads", m.grads},
                         {"adamw_moments", m.adamw_moments},
                         {"activations", m.activations},
                         {"total", m.total()},
                         {"step_peak_total", m.total_from_peak()}};
    j["activation_bytes_per_image"] = s.activation_bytes_per_image;
    j["activation_bytes_fixed"] = s.activation_bytes_fixed;
    j["memory_method"] = "activations measured at batch 1 and 2 and extrapolated linearly";
    std::printf("%s\n", j.dump(1).c_str());
    return 0;
  }

  std::printf("%s\n", cfg.name.c_str());
  std::printf("  config       %s\n", config_summary(cfg).c_str());
  for (auto& [k, v] : args.overrides) std::printf("  override     %s=%s\n", k.c_str(), v.c_str());
  std::printf("  params       %s (%lld), trainable %s\n", millions(s.params).c_str(), (long long)s.params,
              millions(s.trainable).c_str());
  std::string ops;
  for (auto& [op, macs] : s.macs_by_op) {
    char b[96];
    std::snprintf(b, sizeof b, "%s%s %.3f", ops.empty() ? "" : ", ", op.c_str(), double(macs) / 1e9);
    ops += b;
  }
  std::printf("  GMACs        %.3f per image at %lldx%lld (%s)\n", double(s.macs) / 1e9, (long long)cfg.img_h,
              (long long)cfg.img_w, ops.c_str());
  std::printf("  memory       to train at batch %lld with AdamW:\n", (long long)batch);
  std::printf("    parameters     %s\n", bytes_str(m.params).c_str());
  std::printf("    gradients      %s\n", bytes_str(m.grads).c_str());
  std::printf("    AdamW moments  %s\n", bytes_str(m.adamw_moments).c_str());
  std::printf("    activations    %s  (%s per image + %s; saved by the forward)\n", bytes_str(m.activations).c_str(),
              bytes_str(s.activation_bytes_per_image).c_str(), bytes_str(s.activation_bytes_fixed).c_str());
  std::printf("    total          %s\n", bytes_str(m.total()).c_str());
  std::printf("    step peak      %s  (parameters + AdamW + the peak of a forward+backward)\n",
              bytes_str(m.total_from_peak()).c_str());
  std::printf("  (memory measured at batch 1 and 2 and extrapolated linearly to batch %lld)\n", (long long)batch);
  return 0;
}

int info_models(int, char**) {
  const auto names = models::model_names();
  if (names.empty()) std::fprintf(stderr, "ropevit info: no model is registered in this build\n");
  for (const auto& n : names) std::printf("%s\n", n.c_str());
  return 0;
}

}  // namespace rv
