// test_seg_train_cuda.cpp: the segmentation trainer on a real GPU (train.device = cuda): the tiny
// ViT RoPE-Mixed UperNet of tests/support/seg_train_run.h (auxiliary head, dropout, EMA,
// clipping, AdamW) trains 4 iterations on generated scenes and is evaluated sliding-window,
// multi-scale (1.0, 1.3: padded) and flipped, on cuda:0 and on the CPU, in-process, and the two
// runs are compared. Skipped (exit 77) without a GPU.
//
// Tolerances: every CUDA kernel sums in its own order (f32; the gradients of a ViT step agree to
// 1e-4 relative, test_vit_cuda.cpp), so the runs drift apart a little each step: the step
// losses must agree to 1e-4 relative, the weights to 1e-4 (AdamW with eps 1e-3, see
// seg_train_run.h), and the metrics (2 images, argmax over 10 classes) to 1 point. The same
// route is checked to 1e-5 on any machine by tests/integration/test_seg_device.cpp (a CPU
// mirror standing in for the device). Not run yet on a GPU when written (no device time).
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "engine/backend.h"
#include "tests/support/seg_train_run.h"

using namespace rv;
using namespace rv::test::segrun;

TEST_CASE("seg trainer: 4 iterations + evaluation on cuda:0 agree with the CPU") {
  train_run("cpu", "cpu");
  train_run("gpu", "cuda");

  const auto cpu = step_losses("cpu"), gpu = step_losses("gpu");
  REQUIRE(cpu.size() == 4);
  REQUIRE(gpu.size() == 4);
  for (const auto& [step, loss] : cpu) {
    INFO("step " << step << ": cpu " << loss << ", gpu " << gpu.at(step));
    CHECK(gpu.at(step) == doctest::Approx(loss).epsilon(1e-4));
  }
  const std::pair<double, std::string> worst = largest_difference(run_dir("cpu") / "model.safetensors",
                                                                  run_dir("gpu") / "model.safetensors");
  INFO("largest weight difference " << worst.first << " in " << worst.second);
  CHECK(worst.first <= 1e-4);
  for (const char* stem : {"seg_eval.json", "seg_eval_ema.json"}) {
    const json a = read_json(run_dir("cpu") / stem), b = read_json(run_dir("gpu") / stem);
    for (const char* m : {"mIoU", "mAcc", "aAcc"}) {
      INFO(stem << " " << m << ": cpu " << a[m] << ", gpu " << b[m]);
      CHECK(std::abs(b[m].get<double>() - a[m].get<double>()) <= 1.0);
    }
  }
  // The GPU run's recovery checkpoint (step 2, written from device tensors) resumes on the GPU.
  train_run("gpu_resumed", "cuda", (run_dir("gpu") / "checkpoints" / "recovery.safetensors").string());
  const auto resumed = step_losses("gpu_resumed");
  for (int64_t step : {3, 4}) CHECK(resumed.at(step) == doctest::Approx(gpu.at(step)).epsilon(1e-5));
}
