// bench_seg_model.cpp: `ropevit bench model upernet_<backbone>` (see bench_seg_model.h).
#include "train/bench/bench_seg_model.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/parallel.h"
#include "engine/profile/op_counter.h"
#include "engine/rng.h"
#include "engine/runtime_info.h"
#include "models/seg/upernet.h"
#include "models/seg/vit_seg_backbone.h"
#include "train/bench/bench_harness.h"
#include "train/bench/bench_model.h"

namespace rv::bench {

namespace {

// The crop (H, W) from img_size=HxW (default 512x512, the ADE20k recipe's).
std::pair<int64_t, int64_t> crop_of(const std::map<std::string, std::string>& o) {
  auto it = o.find("img_size");
  if (it == o.end()) return {512, 512};
  const auto x = it->second.find('x');
  return {std::stoll(it->second.substr(0, x)), std::stoll(it->second.substr(x + 1))};
}

// The ADE20k UperNet (150 classes, heads 512 / 256, dropout 0.1, aux 0.4) on the backbone with
// its overrides, built for the crop.
models::seg::UperNetConfig seg_bench_config(const SegBenchRequest& r, int64_t h, int64_t w) {
  models::seg::UperNetConfig u = models::seg::upernet_ade20k_config(r.backbone, h);
  std::map<std::string, std::string> o = r.overrides;
  o.erase("img_size");
  o.erase("num_classes");  // the backbone has no head here
  models::apply_overrides(u.backbone, o);
  u.backbone.img_h = h;
  u.backbone.img_w = w;
  u.backbone.num_classes = 0;
  models::validate(u.backbone);
  if (u.backbone.arch == "vit") u.vit_out_indices = models::seg::default_vit_out_indices(u.backbone.depth());
  return u;
}

// The key both sides file a run under: model/upernet_<backbone> b<B> <H>x<W> [cuda] and the
// other overrides, sorted (as bench_model.cpp's case_key).
std::string seg_case_key(const SegBenchRequest& r, int64_t h, int64_t w) {
  std::string key = "model/upernet_" + r.backbone + " b" + std::to_string(r.batch) + " " + std::to_string(h) + "x" +
                    std::to_string(w);
  if (r.device != "cpu") key += " " + r.device;
  for (auto& [k, v] : r.overrides)
    if (k != "img_size") key += " " + k + "=" + v;
  return key;
}

}  // namespace

int bench_seg_model(const SegBenchRequest& r) {
  if (r.device != "cpu" && r.device != "cuda")
    throw std::invalid_argument("bench model: --device expects cpu or cuda, got '" + r.device + "'");
  const auto [H, W] = crop_of(r.overrides);
  const models::seg::UperNetConfig ucfg = seg_bench_config(r, H, W);  // fails early on a bad name or override
  const std::string key = seg_case_key(r, H, W);
  Device dev = cpu_device();
  if (r.device == "cuda") {
    try {
      backend::get(cuda_device(0));  // throws, saying why, without CUDA or a GPU
    } catch (const std::exception& e) {
      throw std::invalid_argument(std::string("bench model --device cuda: ") + e.what());
    }
    dev = cuda_device(0);
  }

  std::ofstream out;
  if (!r.out_path.empty()) {
    out.open(r.out_path, std::ios::app);
    if (!out) throw std::runtime_error("--out: cannot write '" + r.out_path + "'");
  }
  // PyTorch first, before our model takes memory; then ours.
  std::string torch_path = r.torch_path;
  if (r.with_torch) {
    torch_path = (std::filesystem::temp_directory_path() / ("rv_bench_torch_" + std::to_string(getpid()) + ".json"))
                     .string();
    std::string cmd = "python3 " + shell_quote(r.script) + " " + shell_quote("upernet_" + r.backbone) + " --batch " +
                      std::to_string(r.batch) + " --img-size " + std::to_string(H) + " " + std::to_string(W) +
                      " --iters " + std::to_string(r.iters) + " --warmup " + std::to_string(r.warmup) + " --device " +
                      r.device + " --out " + shell_quote(torch_path);
    for (auto& [k, v] : r.overrides)
      if (k != "img_size") {  // += piece by piece: GCC 12 warns falsely (-Wrestrict) on " " + string&&
        cmd += ' ';
        cmd += shell_quote(k + "=" + v);
      }
    std::fprintf(stderr, "ropevit bench model: %s\n", cmd.c_str());
    if (std::system(cmd.c_str()) != 0)
      throw std::runtime_error("--with-torch: tools/bench_torch_models.py failed (needs python3 with torch and "
                               "timm; or time PyTorch separately and pass --torch FILE)");
  }
  nlohmann::json torch;
  std::string torch_version;
  if (!torch_path.empty()) {
    const nlohmann::json j = read_json_file(torch_path, "--torch");
    torch = torch_model_entry(j, key, torch_path);
    torch_version = j.value("torch", "");
    if (r.with_torch) std::filesystem::remove(torch_path);
  }

  std::fprintf(stderr, "ropevit bench model: building UperNet on %s (%lldx%lld) on %s\n", r.backbone.c_str(),
               (long long)H, (long long)W, dev.str().c_str());
  models::seg::UperNet net(ucfg);
  if (!dev.is_cpu()) net.to(dev);
  Generator gen(/*seed=*/1);
  const Tensor x = randn({r.batch, 3, H, W}, gen).to(dev);
  // Labels (B, H, W) u8: classes spread over 0..149, as a label map comes from the loader.
  Tensor labels = empty({r.batch, H, W}, DType::u8);
  for (int64_t i = 0; i < labels.numel(); ++i) labels.data<uint8_t>()[i] = uint8_t((i * 7919) % ucfg.num_classes);
  labels = labels.to(dev);
  // Each timed call ends when the device is done (queued kernels would otherwise time nothing).
  auto sync = [&] {
    if (!dev.is_cpu()) backend::get(dev).synchronize(dev.index);
  };
  auto progress = [&](const char* what) {
    return [=](int i, double s) {
      std::fprintf(stderr, "  %-17s %lld/%lld  %9.1f ms\n", what, (long long)i + 1, (long long)r.iters, s * 1e3);
    };
  };
  // Forward: eval, no grad; the first (untimed) call also counts the multiply-adds.
  net.train(false);
  int64_t macs = 0;
  std::vector<double> fwd;
  {
    autograd::NoGradGuard no_grad;
    {
      profile::OpCounter counter;
      net.encode_decode(x);
      sync();
      macs = counter.macs();
    }
    std::fprintf(stderr, "ropevit forward (batch %lld, %d threads)\n", (long long)r.batch, cpu::num_threads());
    fwd = time_calls(
        [&] {
          net.encode_decode(x);
          sync();
        },
        {}, r.warmup > 0 ? int(r.warmup) - 1 : 0, int(r.iters), progress("forward"));
  }
  net.train(true);
  std::fprintf(stderr, "ropevit forward+backward\n");
  const std::vector<double> step = time_calls(
      [&] {
        net.zero_grad();
        net.loss(x, labels).total.backward();
        sync();
      },
      {}, int(r.warmup), int(r.iters), progress("forward+backward"));

  const double fwd_ms = median_of(fwd) * 1e3, step_ms = median_of(step) * 1e3;
  const double fwd_ips = double(r.batch) / fwd_ms * 1e3, step_ips = double(r.batch) / step_ms * 1e3;
  std::printf("ropevit bench model upernet_%s: UperNet (ADE20k heads, 150 classes), batch %lld, %lldx%lld, f32, %s, "
              "%d threads, BLAS %s\n",
              r.backbone.c_str(), (long long)r.batch, (long long)H, (long long)W, dev.str().c_str(),
              cpu::num_threads(), runtime_blas_name());
  std::printf("%.3f GMACs per image; median of %lld steps after %lld warm-up\n\n", double(macs) / double(r.batch) / 1e9,
              (long long)r.iters, (long long)r.warmup);
  std::printf("%-18s %10s %10s %9s %10s %10s %7s\n", "", "ms/step", "images/s", "GFLOP/s", "torch ms", "torch im/s",
              "pt/us");
  auto row = [&](const char* name, double ms, double ips, double flops_per_step, const char* torch_field) {
    char pt[32] = "", pt_ips[32] = "", ratio[32] = "";
    if (!torch.is_null()) {
      const double t = torch[torch_field].get<double>();
      std::snprintf(pt, sizeof pt, "%.1f", t);
      std::snprintf(pt_ips, sizeof pt_ips, "%.2f", double(r.batch) / t * 1e3);
      std::snprintf(ratio, sizeof ratio, "%.2f", t / ms);
    }
    std::printf("%-18s %10.1f %10.2f %9.1f %10s %10s %7s\n", name, ms, ips, flops_per_step / ms / 1e6, pt, pt_ips,
                ratio);
  };
  row("forward", fwd_ms, fwd_ips, 2.0 * double(macs), "forward_ms");
  row("forward+backward", step_ms, step_ips, 6.0 * double(macs), "train_ms");
  std::printf("\nforward: decode logits resized to the input (whole-image inference); forward+backward: decode + "
              "auxiliary CE, backward. GFLOP/s counts 2 per MAC (forward+backward: 3x the forward's). pt/us: "
              "PyTorch's time over ours, above 1.00 we are faster.\n");

  if (out) {
    nlohmann::json j = {{"case", key},
                        {"kind", "model"},
                        {"model", "upernet_" + r.backbone},
                        {"device", dev.str()},
                        {"batch", r.batch},
                        {"img_h", H},
                        {"img_w", W},
                        {"threads", cpu::num_threads()},
                        {"iters", r.iters},
                        {"warmup", r.warmup},
                        {"gmacs_per_image", double(macs) / double(r.batch) / 1e9},
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
