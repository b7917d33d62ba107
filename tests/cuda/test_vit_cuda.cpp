// test_vit_cuda.cpp: a whole ViT-Ti with RoPE-Mixed (vit_tiny_patch16_rope_mixed_224: C = 192, 12
// blocks, 3 heads) at 64x64 (16 patches + CLS), one forward and backward on CUDA against the
// same on the CPU: logits, loss and every parameter's gradient within 1e-4 (relative to the
// largest value of each tensor, since each kernel sums in its own order). Also the axial variant's
// forward. Skipped (exit 77) without a GPU.
//
// Every op a ViT training step uses runs here on the device: the patch embedding (as a product),
// cat of the CLS token, layer norm, linear, the RoPE angles and rotation, attention (composed of
// products and softmax), GELU, residual adds, LayerScale, cross entropy and every backward.
#include <doctest/doctest.h>

#include <cmath>
#include <string>

#include "engine/autograd.h"
#include "engine/ops/loss.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "models/registry.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

const Device kDev = cuda_device(0);

// max |a - b| / max(max |b|, 1e-6): each kernel's sum order differs, so compare against scale.
double rel_diff(const Tensor& a, const Tensor& b) {
  const Tensor ah = a.cpu().to(DType::f64).contiguous(), bh = b.cpu().to(DType::f64).contiguous();
  REQUIRE(ah.shape() == bh.shape());
  const double* p = ah.data<double>();
  const double* q = bh.data<double>();
  double diff = 0, scale = 1e-6;
  for (int64_t i = 0; i < ah.numel(); ++i) {
    diff = std::max(diff, std::fabs(p[i] - q[i]));
    scale = std::max(scale, std::fabs(q[i]));
  }
  return diff / scale;
}

struct Step {
  Tensor logits, loss;
};

Step forward_backward(models::Model& m, const Tensor& images, const Tensor& labels) {
  m.zero_grad();
  Tensor logits = m.forward(images);
  Tensor loss = cross_entropy(logits, labels, {.label_smoothing = 0.1});
  loss.backward();
  return {logits, loss};
}

}  // namespace

TEST_CASE("ViT-Ti RoPE-Mixed: one forward and backward on cuda equals the CPU within 1e-4") {
  // No stochastic depth: the two devices draw no random masks here (that is test_dropout's job).
  const std::map<std::string, std::string> small = {{"img_size", "64"}, {"num_classes", "10"}, {"drop_path_rate", "0"}};
  auto cpu_model = models::create_model("vit_tiny_patch16_rope_mixed_224", small);
  auto gpu_model = models::create_model("vit_tiny_patch16_rope_mixed_224", small);
  gpu_model->load_state_dict(cpu_model->state_dict());
  gpu_model->to(kDev);
  cpu_model->train();
  gpu_model->train();

  Generator g(5);
  const Tensor images = randn({2, 3, 64, 64}, g);
  const Tensor labels = from_vector({3, 7}, {2}, DType::i64);
  const Step c = forward_backward(*cpu_model, images, labels);
  const Step d = forward_backward(*gpu_model, images.to(kDev), labels.to(kDev));
  CHECK(d.logits.device() == kDev);
  CHECK(rel_diff(d.logits, c.logits) < 1e-4);
  CHECK(rel_diff(d.loss, c.loss) < 1e-4);
  const auto cp = cpu_model->named_parameters(), gp = gpu_model->named_parameters();
  REQUIRE(cp.size() == gp.size());
  int checked = 0;
  for (size_t i = 0; i < cp.size(); ++i) {
    CAPTURE(cp[i].first);
    REQUIRE(cp[i].second.grad().defined());
    REQUIRE(gp[i].second.grad().defined());
    CHECK(gp[i].second.grad().device() == kDev);
    const double r = rel_diff(gp[i].second.grad(), cp[i].second.grad());
    CHECK_MESSAGE(r < 1e-4, cp[i].first << ": relative difference " << r);
    ++checked;
  }
  MESSAGE(checked << " parameter gradients compared");
}

TEST_CASE("ViT-Ti RoPE-Axial: forward on cuda equals the CPU within 1e-4") {
  const std::map<std::string, std::string> small = {{"img_size", "64"}, {"num_classes", "10"}};
  auto cpu_model = models::create_model("vit_tiny_patch16_rope_axial_224", small);
  auto gpu_model = models::create_model("vit_tiny_patch16_rope_axial_224", small);
  gpu_model->load_state_dict(cpu_model->state_dict());
  gpu_model->to(kDev);
  cpu_model->eval();
  gpu_model->eval();
  Generator g(6);
  const Tensor images = randn({2, 3, 64, 64}, g);
  autograd::NoGradGuard ng;
  CHECK(rel_diff(gpu_model->forward(images.to(kDev)), cpu_model->forward(images)) < 1e-4);
}
