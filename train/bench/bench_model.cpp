// bench_model.cpp: `ropevit bench model NAME` times a whole model on the CPU:
//   forward          eval mode, no grad (inference)
//   forward+backward train mode: zero_grad, cross_entropy(model(x), labels), backward
// with random weights (the config's seed) and a fixed random batch, f32, drop path 0 unless
// given. Each is run `--warmup` times untimed, then `--iters` times timed; the median is
// reported as ms/step and images/s, with progress on stderr since a step takes seconds.
// tools/bench_torch_models.py times timm's same model the same way: `--with-torch` runs it
// first (same name, batch, size, iterations, overrides, threads), `--torch FILE` reads its
// output from an earlier run; either way the PyTorch times and the ratio pt/us (PyTorch's time
// over ours: above 1.00 we are faster) are printed and go into the --out JSON line, which
// tools/bench_table.py merges over rounds (docs/perf.md, "Whole models").
#include "train/bench/bench_model.h"

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/cpu/parallel.h"
#include "engine/ops/loss.h"
#include "engine/ops/reduce.h"
#include "engine/profile/op_counter.h"
#include "engine/rng.h"
#include "engine/runtime_info.h"
#include "models/registry.h"
#include "train/bench/bench_harness.h"
#include "train/bench/bench_seg_model.h"
#include "train/cli_options.h"
#include "train/model_args.h"

#ifndef RV_SOURCE_DIR
#define RV_SOURCE_DIR "."
#endif

namespace rv::bench {

namespace {

// "1", "32", ...: digits only, above zero (what --batch, --iters and --img-size take).
bool is_positive_integer(const std::string& s) {
  if (s.empty() || s.size() > 18 || s.find_first_not_of("0123456789") != std::string::npos) return false;
  return std::stoll(s) > 0;
}

// The key both sides file a run under: name, batch, size and the other overrides, sorted.
std::string case_key(const models::ModelConfig& cfg, const ModelArgs& args, int64_t batch) {
  std::string key = "model/" + cfg.name + " b" + std::to_string(batch) + " " + std::to_string(cfg.img_h) + "x" +
                    std::to_string(cfg.img_w);
  for (auto& [k, v] : args.overrides)
    if (k != "img_size") key += " " + k + "=" + v;
  return key;
}

}  // namespace

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

nlohmann::json read_json_file(const std::string& path, const char* what) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error(std::string(what) + ": cannot open '" + path + "'");
  try {
    return nlohmann::json::parse(in);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(what) + ": '" + path + "' is not valid JSON: " + e.what());
  }
}

nlohmann::json torch_model_entry(const nlohmann::json& j, const std::string& key, const std::string& path) {
  if (!j.contains("models") || !j["models"].is_object())
    throw std::runtime_error("--torch: '" + path + "' has no \"models\" object (expected the output of "
                             "tools/bench_torch_models.py)");
  if (!j["models"].contains(key)) {
    std::fprintf(stderr, "ropevit bench model: '%s' has no entry '%s'; no PyTorch column\n", path.c_str(),
                 key.c_str());
    return nullptr;
  }
  return j["models"][key];
}

int bench_model(int argc, char** argv) {
  ModelArgs args;
  int64_t batch = 32, iters = 5, warmup = 1;
  std::string out_path, torch_path, script = std::string(RV_SOURCE_DIR) + "/tools/bench_torch_models.py";
  bool with_torch = false, batch_given = false;
  std::string device = "cpu";
  std::vector<std::string> overrides;
  auto positive = [](int64_t* out, bool zero_ok) {
    return [out, zero_ok](const std::string& v) {
      if (zero_ok && v == "0") *out = 0;
      else if (!is_positive_integer(v)) throw cli::UsageError("expected a positive integer, got '" + v + "'");
      else *out = std::stoll(v);
    };
  };
  cli::Options opts("ropevit bench model", "Time a whole model on the CPU: forward (eval, no grad) and "
                                           "forward+backward (train mode), the median of --iters steps.");
  opts.positional("NAME", "a registered model (ropevit info --models lists them)", &args.name, false)
      .rest("KEY=VALUE", "a config override, e.g. depth=1 (passed to timm as a keyword too)", &overrides)
      .value("batch", "N", "images per step (upernet_*: 2)",
             [&](const std::string& v) {
               positive(&batch, false)(v);
               batch_given = true;
             },
             "32")
      .values("img-size", "H W", "input size (default: the model's)", 2,
              [&](const std::vector<std::string>& v) {
                if (!is_positive_integer(v[0]) || !is_positive_integer(v[1]))
                  throw cli::UsageError("expected H and W as positive integers, got '" + v[0] + "' '" + v[1] + "'");
                args.overrides["img_size"] = v[0] + "x" + v[1];
              })
      .value("iters", "K", "timed steps of each kind; the median is reported", positive(&iters, false), "5")
      .value("warmup", "W", "untimed steps first", positive(&warmup, true), "1")
      .value("device", "D", "cpu (default), or cuda (cuda:0; upernet_* only so far)", &device)
      .value("out", "FILE", "append one JSON line with the result", &out_path)
      .flag("with-torch", "run tools/bench_torch_models.py first (needs python3, torch, timm)", &with_torch)
      .value("torch", "FILE", "PyTorch times written earlier by tools/bench_torch_models.py --out", &torch_path)
      .value("torch-script", "P", "the script --with-torch runs (default: the source tree's tools/)",
             [&](const std::string& v) { script = v; })
      .epilog("NAME = upernet_<backbone> (e.g. upernet_vit_base_patch16_rope_mixed_224) times the segmenter: "
              "UperNet with the ADE20k heads, whole-image forward and the decode + auxiliary loss step, at "
              "--img-size (default 512 512). Threads follow OMP_NUM_THREADS (PyTorch gets the same). Progress "
              "goes to stderr.");
  if (!opts.parse(argc, argv)) return 0;
  if (args.name.empty())
    throw cli::UsageError("bench model: expected a model name (ropevit info --models lists them)");
  for (const auto& kv : overrides)
    if (!parse_override(kv, args))
      throw cli::UsageError("one model at a time: got '" + args.name + "' and '" + kv + "'");
  if (with_torch && !torch_path.empty()) throw std::invalid_argument("--with-torch and --torch: give one of them");
  // Training-step timing without stochastic depth on either side, unless asked for.
  if (!args.overrides.count("drop_path_rate")) args.overrides["drop_path_rate"] = "0";
  if (args.name.rfind("upernet_", 0) == 0) {  // the segmenter (bench_seg_model.cpp)
    SegBenchRequest r{.backbone = args.name.substr(8),
                      .overrides = args.overrides,
                      .batch = batch_given ? batch : 2,
                      .iters = iters,
                      .warmup = warmup,
                      .device = device,
                      .out_path = out_path,
                      .torch_path = torch_path,
                      .script = script,
                      .with_torch = with_torch};
    return bench_seg_model(r);
  }
  if (device != "cpu")
    throw std::invalid_argument("bench model: --device " + device + " is implemented for the segmenter (upernet_*) "
                                "only; a classifier is timed on the CPU");
  const models::ModelConfig cfg = resolve_config(args);  // fails early on a bad name or override
  const std::string key = case_key(cfg, args, batch);

  std::ofstream out;
  if (!out_path.empty()) {
    out.open(out_path, std::ios::app);
    if (!out) throw std::runtime_error("--out: cannot write '" + out_path + "'");
  }

  // PyTorch first, before our model takes memory; then ours, back to back.
  if (with_torch) {
    torch_path = (std::filesystem::temp_directory_path() / ("rv_bench_torch_" + std::to_string(getpid()) + ".json"))
                     .string();
    std::string cmd = "python3 " + shell_quote(script) + " " + shell_quote(cfg.name) + " --batch " +
                      std::to_string(batch) + " --img-size " + std::to_string(cfg.img_h) + " " +
                      std::to_string(cfg.img_w) + " --iters " + std::to_string(iters) + " --warmup " +
                      std::to_string(warmup) + " --out " + shell_quote(torch_path);
    for (auto& [k, v] : args.overrides)
      if (k != "img_size") cmd += " " + shell_quote(k + "=" + v);
    std::fprintf(stderr, "ropevit bench model: %s\n", cmd.c_str());
    if (std::system(cmd.c_str()) != 0)
      throw std::runtime_error("--with-torch: tools/bench_torch_models.py failed (needs python3 with torch and "
                               "timm; or time PyTorch separately and pass --torch FILE)");
  }
  nlohmann::json torch;
  std::string torch_version;
  if (!torch_path.empty()) {
    nlohmann::json j = read_json_file(torch_path, "--torch");
    torch = torch_model_entry(j, key, torch_path);
    torch_version = j.value("torch", "");
    if (with_torch) std::filesystem::remove(torch_path);
  }

  std::fprintf(stderr, "ropevit bench model: building %s\n", cfg.name.c_str());
  auto model = models::create_model(cfg);
  Generator gen(/*seed=*/1);
  Tensor x = randn({batch, cfg.in_chans, cfg.img_h, cfg.img_w}, gen);
  Tensor labels = empty({batch}, DType::i64);
  for (int64_t b = 0; b < batch; ++b) labels.data<int64_t>()[b] = (b * 7919) % std::max<int64_t>(1, cfg.num_classes);

  auto progress = [&](const char* what) {
    return [=](int i, double s) {
      std::fprintf(stderr, "  %-17s %lld/%lld  %9.1f ms\n", what, (long long)i + 1, (long long)iters, s * 1e3);
    };
  };
  // Forward: eval, no grad. The first (untimed) call also counts the multiply-adds.
  model->eval();
  int64_t macs = 0;
  std::vector<double> fwd;
  {
    autograd::NoGradGuard no_grad;
    {
      profile::OpCounter counter;
      model->forward(x);
      macs = counter.macs();
    }
    std::fprintf(stderr, "ropevit forward (batch %lld, %lld threads)\n", (long long)batch, (long long)cpu::num_threads());
    fwd = time_calls([&] { model->forward(x); }, {}, int(warmup) > 0 ? int(warmup) - 1 : 0, int(iters),
                     progress("forward"));
  }
  // Training step: train mode, fresh gradients each step (zero_grad drops them: set_to_none).
  model->train();
  std::fprintf(stderr, "ropevit forward+backward\n");
  const bool has_head = cfg.num_classes > 0;
  std::vector<double> step = time_calls(
      [&] {
        model->zero_grad();
        Tensor y = model->forward(x);
        Tensor loss = has_head ? cross_entropy(y, labels) : sum(y);
        loss.backward();
      },
      {}, int(warmup), int(iters), progress("forward+backward"));

  const double fwd_ms = median_of(fwd) * 1e3, step_ms = median_of(step) * 1e3;
  const double fwd_ips = double(batch) / fwd_ms * 1e3, step_ips = double(batch) / step_ms * 1e3;
  std::printf("ropevit bench model %s: batch %lld, %lldx%lld, f32, %d threads, BLAS %s\n", cfg.name.c_str(),
              (long long)batch, (long long)cfg.img_h, (long long)cfg.img_w, cpu::num_threads(), runtime_blas_name());
  std::printf("%.3f GMACs per image; median of %lld steps after %lld warm-up\n\n", double(macs) / double(batch) / 1e9,
              (long long)iters, (long long)warmup);
  std::printf("%-18s %10s %10s %9s %10s %10s %7s\n", "", "ms/step", "images/s", "GFLOP/s", "torch ms", "torch im/s",
              "pt/us");
  auto row = [&](const char* name, double ms, double ips, double flops_per_step, const char* torch_field) {
    char pt[32] = "", pt_ips[32] = "", ratio[32] = "";
    if (!torch.is_null()) {
      double t = torch[torch_field].get<double>();
      std::snprintf(pt, sizeof pt, "%.1f", t);
      std::snprintf(pt_ips, sizeof pt_ips, "%.2f", double(batch) / t * 1e3);
      std::snprintf(ratio, sizeof ratio, "%.2f", t / ms);
    }
    std::printf("%-18s %10.1f %10.2f %9.1f %10s %10s %7s\n", name, ms, ips, flops_per_step / ms / 1e6, pt, pt_ips,
                ratio);
  };
  row("forward", fwd_ms, fwd_ips, 2.0 * double(macs), "forward_ms");
  row("forward+backward", step_ms, step_ips, 6.0 * double(macs), "train_ms");  // backward ~ 2x forward
  std::printf("\nGFLOP/s counts 2 per MAC (forward+backward: 3x the forward's). pt/us: PyTorch's time over ours, "
              "above 1.00 we are faster.\n");

  if (out) {
    nlohmann::json j = {{"case", key},
                        {"kind", "model"},
                        {"model", cfg.name},
                        {"batch", batch},
                        {"img_h", cfg.img_h},
                        {"img_w", cfg.img_w},
                        {"threads", cpu::num_threads()},
                        {"iters", iters},
                        {"warmup", warmup},
                        {"gmacs_per_image", double(macs) / double(batch) / 1e9},
                        {"forward_ms", fwd_ms},
                        {"train_ms", step_ms},
                        {"forward_images_per_s", fwd_ips},
                        {"train_images_per_s", step_ips},
                        {"forward_times_ms", nlohmann::json::array()},
                        {"train_times_ms", nlohmann::json::array()}};
    for (double t : fwd) j["forward_times_ms"].push_back(t * 1e3);
    for (double t : step) j["train_times_ms"].push_back(t * 1e3);
    if (!torch.is_null()) {
      j["torch_forward_ms"] = torch["forward_ms"];
      j["torch_train_ms"] = torch["train_ms"];
      j["torch"] = torch_version;
    }
    out << j.dump() << "\n";
  }
  return 0;
}

}  // namespace rv::bench
