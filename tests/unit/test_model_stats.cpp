// test_model_stats.cpp: measure_model / training_memory (models/model_stats.h) on toy models
// defined here, so the numbers have hand formulas:
//   - a two-layer MLP over the flattened image: its saved activations are exactly its new
//     outputs, (2 * hidden + classes) floats per image;
//   - a ViT-S/16-shaped toy (patch embed, CLS, 12 pre-norm blocks with timm's nn::Attention and
//     nn::Mlp, head): its MACs must match the usual hand formula, about 4.6 G at 224 (timm's
//     table), and follow a non-square image as the formula says.
#include "engine/autograd.h"
#include "engine/nn/attention.h"
#include "engine/nn/conv.h"
#include "engine/nn/linear.h"
#include "engine/nn/mlp.h"
#include "engine/nn/norm.h"
#include "engine/ops/activation.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/shape.h"
#include "engine/profile/memory_stats.h"
#include "engine/profile/op_counter.h"
#include "engine/rng.h"
#include "models/model_stats.h"
#include "tests/support/check.h"

using namespace rv;
using models::Model;
using models::ModelConfig;

namespace {

// The Model interface parts measure_model does not use.
struct ToyBase : Model {
  using Model::Model;
  std::vector<Tensor> forward_intermediates(const Tensor&, const std::vector<int64_t>&) override {
    throw std::logic_error("toy model: forward_intermediates is not part of this test");
  }
  std::vector<models::FeatureInfo> feature_info() const override { return {}; }
  std::set<std::string> no_weight_decay() const override { return {}; }
};

ModelConfig toy_config(int64_t img) {
  ModelConfig cfg;
  cfg.name = "toy";
  cfg.arch = "vit";
  cfg.img_h = cfg.img_w = img;
  return cfg;
}

// images (B, 3, H, W) -> flatten -> Linear -> GELU -> Linear (classes)
struct ToyMlp : ToyBase {
  std::shared_ptr<nn::Linear> fc1, fc2;
  ToyMlp(int64_t img, int64_t hidden, int64_t classes, Generator& g) : ToyBase(toy_config(img)) {
    fc1 = register_module("fc1", std::make_shared<nn::Linear>(3 * img * img, hidden, g));
    fc2 = register_module("fc2", std::make_shared<nn::Linear>(hidden, classes, g));
  }
  Tensor forward_features(const Tensor& x) override { return gelu(fc1->forward(x.flatten(1))); }
  Tensor forward_head(const Tensor& f, bool pre_logits) override { return pre_logits ? f : fc2->forward(f); }
};

struct ToyBlock : nn::UnaryModule {
  std::shared_ptr<nn::LayerNorm> norm1, norm2;
  std::shared_ptr<nn::Attention> attn;
  std::shared_ptr<nn::Mlp> mlp;
  ToyBlock(int64_t C, int64_t NH, Generator& g) {
    norm1 = register_module("norm1", std::make_shared<nn::LayerNorm>(C, 1e-6));
    attn = register_module("attn", std::make_shared<nn::Attention>(C, NH, g, /*qkv_bias=*/true));
    norm2 = register_module("norm2", std::make_shared<nn::LayerNorm>(C, 1e-6));
    mlp = register_module("mlp", std::make_shared<nn::Mlp>(C, 4 * C, 0, g));
  }
  Tensor forward(const Tensor& x) override {  // (B, N, C)
    Tensor h = x + attn->forward(norm1->forward(x));
    return h + mlp->forward(norm2->forward(h));
  }
};

// ViT-S/16 without position embedding (the ops that count are the same as RoPE-ViT's).
struct ToyVit : ToyBase {
  static constexpr int64_t C = 384, NH = 6, depth = 12, classes = 1000;
  std::shared_ptr<nn::Conv2d> patch;
  Tensor cls;
  std::vector<std::shared_ptr<ToyBlock>> blocks;
  std::shared_ptr<nn::LayerNorm> norm;
  std::shared_ptr<nn::Linear> head;
  ToyVit(int64_t img_h, int64_t img_w, Generator& g) : ToyBase(toy_config(img_h)) {
    cfg_.img_w = img_w;
    patch = register_module("patch_embed", std::make_shared<nn::Conv2d>(3, C, Pair{16, 16}, g,
                                                                          nn::Conv2dOptions{.stride = {16, 16}}));
    cls = register_parameter("cls_token", zeros({1, 1, C}));
    auto list = register_module("blocks", std::make_shared<nn::ModuleList>());
    for (int64_t i = 0; i < depth; ++i) blocks.push_back(list->push_back(std::make_shared<ToyBlock>(C, NH, g)));
    norm = register_module("norm", std::make_shared<nn::LayerNorm>(C, 1e-6));
    head = register_module("head", std::make_shared<nn::Linear>(C, classes, g));
  }
  Tensor forward_features(const Tensor& images) override {
    Tensor x = patch->forward(images).flatten(2).transpose(1, 2);  // (B, N, C)
    x = cat({cls.expand({x.size(0), 1, C}), x}, 1);
    for (auto& b : blocks) x = b->forward(x);
    return norm->forward(x);
  }
  Tensor forward_head(const Tensor& f, bool pre_logits) override {
    Tensor pooled = f.select(1, 0);
    return pre_logits ? pooled : head->forward(pooled);
  }
  // The usual hand count: patch embed, then per block qkv + proj + attention + MLP, then head.
  static int64_t hand_macs(int64_t img_h, int64_t img_w) {
    const int64_t P = (img_h / 16) * (img_w / 16), N = P + 1;
    const int64_t block = N * C * 3 * C + N * C * C + 2 * N * N * C + 2 * N * C * 4 * C;
    return P * 3 * 16 * 16 * C + depth * block + C * classes;
  }
  static int64_t hand_params() {
    const int64_t block = 2 * 2 * C + (3 * C * C + 3 * C) + (C * C + C) + (4 * C * C + 4 * C) + (4 * C * C + C);
    return (3 * 16 * 16 * C + C) + C + depth * block + 2 * C + (C * classes + classes);
  }
};

}  // namespace

TEST_CASE("model_stats: a two-layer MLP's parameters, MACs and saved activations, by hand") {
  Generator g(7);
  const int64_t img = 8, hidden = 40, classes = 11, in = 3 * img * img;
  ToyMlp m(img, hidden, classes, g);
  m.eval();  // measure_model must restore the mode
  const int64_t live_before = profile::memory_stats().live_bytes;
  models::ModelStats s = models::measure_model(m, img, img);
  CHECK(profile::memory_stats().live_bytes == live_before);  // nothing left behind (grads dropped)
  CHECK_FALSE(m.is_training());
  CHECK(s.params == in * hidden + hidden + hidden * classes + classes);
  CHECK(s.trainable == s.params);
  CHECK(s.param_bytes == 4 * s.params);
  CHECK(s.macs == in * hidden + hidden * classes);
  REQUIRE(s.macs_by_op.size() == 1);
  CHECK(s.macs_by_op[0].first == "linear");
  // New tensors a recorded forward leaves: fc1's output, gelu's output, the logits.
  CHECK(s.activation_bytes_per_image == 4 * (2 * hidden + classes));
  CHECK(s.activation_bytes_fixed == 0);
  // The step's peak (batch 1) holds at least the activations, and at its end every gradient
  // (activations are freed during backward as the nodes that saved them run).
  const int64_t peak1 = s.step_peak_bytes_fixed + s.step_peak_bytes_per_image;
  CHECK(peak1 >= 4 * (2 * hidden + classes));
  CHECK(peak1 >= s.trainable_bytes);

  models::TrainingMemory t = models::training_memory(s, 32);
  CHECK(t.params == s.param_bytes);
  CHECK(t.grads == s.param_bytes);
  CHECK(t.adamw_moments == 2 * s.param_bytes);
  CHECK(t.activations == 32 * 4 * (2 * hidden + classes));
  CHECK(t.total() == 4 * s.param_bytes + t.activations);
  CHECK(t.step_peak == s.step_peak_bytes_fixed + 32 * s.step_peak_bytes_per_image);
  CHECK(t.total_from_peak() == t.params + t.adamw_moments + t.step_peak);
  CHECK_THROWS_WITH_AS(models::training_memory(s, 0), doctest::Contains("batch must be positive"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(models::measure_model(m, 0, 8), doctest::Contains("image size must be positive"),
                       std::invalid_argument);
}

TEST_CASE("model_stats: frozen parameters are counted but need no gradient or AdamW state") {
  Generator g(8);
  ToyMlp m(4, 6, 5, g);
  m.fc1->weight.requires_grad_(false);
  models::ModelStats s = models::measure_model(m, 4, 4);
  CHECK(s.params == 48 * 6 + 6 + 6 * 5 + 5);
  CHECK(s.trainable == s.params - 48 * 6);
  models::TrainingMemory t = models::training_memory(s, 1);
  CHECK(t.grads == 4 * s.trainable);
  CHECK(t.adamw_moments == 8 * s.trainable);
}

TEST_CASE("model_stats: a ViT-S/16-shaped toy has the hand-counted MACs, about 4.6 G at 224") {
  // One inference forward under a counter (what measure_model does first); measure_model's
  // memory passes at 224 would take seconds, so they run on a smaller image below.
  Generator g(9);
  ToyVit m(224, 224, g);
  m.eval();
  autograd::NoGradGuard no_grad;
  Tensor x = zeros({1, 3, 224, 224});
  profile::OpCounter counter;
  m.forward(x);
  CHECK(counter.macs() == ToyVit::hand_macs(224, 224));
  CHECK(counter.macs() > 4.5e9);
  CHECK(counter.macs() < 4.7e9);  // timm's table: 4.6 GMACs for vit_small_patch16_224
  CHECK(counter.macs_of("scaled_dot_product_attention") == 12 * 2 * 197 * 197 * 384);
  CHECK(counter.macs_of("conv2d") == 196 * 3 * 16 * 16 * 384);
}

TEST_CASE("model_stats: the ViT-S toy on a non-square image: parameters, MACs, activations") {
  Generator g(10);
  ToyVit m(64, 96, g);
  models::ModelStats s = models::measure_model(m, 64, 96);
  CHECK(s.params == ToyVit::hand_params());
  CHECK(s.macs == ToyVit::hand_macs(64, 96));
  // Each block keeps at least its residual stream, q/k/v and the MLP's hidden (B, N, 4C).
  const int64_t N = 4 * 6 + 1, C = ToyVit::C;
  CHECK(s.activation_bytes_per_image > 12 * N * (3 * C + 4 * C) * 4);
  CHECK(s.activation_bytes_per_image < 12 * N * 40 * C * 4);
}
