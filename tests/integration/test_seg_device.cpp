// test_seg_device.cpp: the segmentation trainer's device route (train.device = cuda), run on any
// machine: a CpuMirrorBackend (tests/support/cpu_mirror_backend.h) stands in for the GPU, its
// memory host memory and every op entry computed by the CPU engine. A tiny ViT RoPE-Mixed UperNet
// (auxiliary head, EMA, gradient clipping) trains a few iterations on generated scenes and is
// evaluated sliding-window, multi-scale and flipped, once on the CPU and once on the fake device,
// in-process: the step losses, the final weights, the EMA and the metrics agree to 1e-5, the
// device entries were really used (the model, its gradients and the optimizer state lived on the
// device), and resuming from a recovery checkpoint written from device tensors continues the run
// exactly. train.device = cuda without a GPU is refused with the reason.
// (The same comparison on a real GPU: tests/cuda/test_seg_train_cuda.cpp.)
#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "tests/support/cpu_mirror_backend.h"
#include "tests/support/seg_train_run.h"

namespace {
namespace fs = std::filesystem;
using nlohmann::json;
using namespace rv;
using namespace rv::test::segrun;

// Every tensor of two checkpoint files to `tol`.
void check_same_tensors(const fs::path& a, const fs::path& b, double tol) {
  const std::pair<double, std::string> worst = largest_difference(a, b);
  INFO("largest difference " << worst.first << " in " << worst.second << " (" << a.filename().string() << ")");
  CHECK(worst.first <= tol);
}

}  // namespace

TEST_CASE("seg device: the training and evaluation route on a (fake) device equals the CPU run") {
  train_run("cpu", "cpu");
  test::CpuMirrorInstalled fake;
  train_run("dev", "cuda");

  // The route really ran on the device: the model's products, convolutions (im2col), resizes,
  // pooling (PPM), the loss, dropout, flip (index_select), clipping and AdamW all went there, and
  // the batches came from pinned memory with asynchronous copies.
  for (const char* entry : {"gemm", "im2col", "col2im", "resample2d", "resample2d_backward", "pool2d",
                            "pool2d_backward", "cross_entropy", "cross_entropy_backward", "dropout_apply",
                            "index_select", "l2_norm_multi", "adamw_step", "rope_rotate", "layer_norm",
                            "minmax_dim", "softmax", "allocate_pinned_host", "copy_from_host_async"}) {
    INFO(entry);
    CHECK(fake.fake.calls[entry] > 0);
  }

  const auto cpu = step_losses("cpu"), dev = step_losses("dev");
  REQUIRE(cpu.size() == 4);
  REQUIRE(dev.size() == 4);
  for (const auto& [step, loss] : cpu) {
    INFO("step " << step);
    CHECK(dev.at(step) == doctest::Approx(loss).epsilon(1e-5));
  }
  // The final weights (model and EMA) and the optimizer moments, as the checkpoints hold them.
  check_same_tensors(run_dir("cpu") / "checkpoints" / "last.safetensors",
                     run_dir("dev") / "checkpoints" / "last.safetensors", 1e-5);
  // The evaluation: slide + multi-scale + flip on the device, histograms on the host.
  for (const char* stem : {"seg_eval.json", "seg_eval_ema.json"}) {
    INFO(stem);
    const json a = read_json(run_dir("cpu") / stem), b = read_json(run_dir("dev") / stem);
    CHECK(b["inference"] == a["inference"]);
    CHECK(b["images"].get<int64_t>() == 2);
    for (const char* m : {"mIoU", "mAcc", "aAcc"}) {
      INFO(m);
      CHECK(b[m].get<double>() == doctest::Approx(a[m].get<double>()).epsilon(1e-5));
    }
  }
}

TEST_CASE("seg device: resuming a device run from its recovery checkpoint continues it exactly") {
  test::CpuMirrorInstalled fake;
  if (!fs::exists(run_dir("dev") / "checkpoints" / "last.safetensors")) train_run("dev", "cuda");
  const fs::path recovery = run_dir("dev") / "checkpoints" / "recovery.safetensors";
  REQUIRE(fs::exists(recovery));
  const std::string kept = (tmp_root() / "recovery_step2.safetensors").string();
  fs::copy_file(recovery, kept, fs::copy_options::overwrite_existing);
  train_run("dev_resumed", "cuda", kept);
  // The same device route, the same batches, dropout masks and moments: the same bits.
  check_same_tensors(run_dir("dev") / "checkpoints" / "last.safetensors",
                     run_dir("dev_resumed") / "checkpoints" / "last.safetensors", 0.0);
  const auto a = step_losses("dev"), b = step_losses("dev_resumed");
  for (int64_t step : {3, 4}) CHECK(b.at(step) == a.at(step));
}

TEST_CASE("seg device: train.device = cuda without a GPU is refused with the reason") {
  if (backend::device_count(DeviceType::cuda) > 0) return;  // a real GPU: nothing to refuse
  try {
    train::RunPlan plan;
    plan.dir = run_dir("nogpu").string();
    train::seg::SegTrainer t(make_config("nogpu", "cuda"), plan);
    FAIL("expected an error");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    INFO(what);
    CHECK(what.find("train.device = cuda: ") == 0);
    CHECK(what.find("use cpu or auto") != std::string::npos);
  }
}
