// test_ema.cpp: the weight EMA (train/ema.h): starts as a copy, follows
// ema = d * ema + (1 - d) * w per step in the tensor's dtype, converges to constant weights as
// d^k, stays out of autograd, and refuses a model of another shape.
#include <doctest/doctest.h>

#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "models/registry.h"
#include "train/ema.h"

using namespace rv;

namespace {

std::shared_ptr<models::Model> tiny(int64_t width = 16) {
  return models::create_model("vit_tiny_patch16_rope_mixed_224",
                              {{"img_size", "8"}, {"patch_size", "4"}, {"embed_dim", std::to_string(width)},
                               {"depth", "1"}, {"num_heads", "2"}, {"num_classes", "3"}});
}

}  // namespace

TEST_CASE("ema: a copy at the start, then d * ema + (1 - d) * w every update") {
  auto model = tiny();
  train::ModelEma ema(tiny(), *model, 0.75);
  CHECK(!ema.model().is_training());
  const nn::StateDict m = model->state_dict(), e = ema.model().state_dict();
  for (const auto& [name, t] : m) CHECK(e.at(name).to_vector<float>() == t.to_vector<float>());

  // Reference, element by element in float: three updates with changing weights.
  std::map<std::string, std::vector<float>> ref;
  for (const auto& [name, t] : e) ref[name] = t.to_vector<float>();
  for (int k = 0; k < 3; ++k) {
    {
      autograd::NoGradGuard g;
      for (const auto& [name, t] : m) Tensor(t).copy_(mul(t, 0.5) + double(k));  // new weights
    }
    ema.update(*model);
    for (auto& [name, v] : ref) {
      const std::vector<float> w = m.at(name).to_vector<float>();
      for (size_t i = 0; i < v.size(); ++i) v[i] = 0.75f * v[i] + 0.25f * w[i];
    }
  }
  for (const auto& [name, t] : ema.model().state_dict()) {
    CAPTURE(name);
    CHECK(t.to_vector<float>() == ref.at(name));  // bit for bit
  }
}

TEST_CASE("ema: constant weights are approached as decay^k") {
  auto model = tiny();
  train::ModelEma ema(tiny(), *model, 0.9);
  const Tensor w = model->parameter("head.weight");
  const std::vector<float> start = w.to_vector<float>();
  {
    autograd::NoGradGuard g;
    Tensor(w).fill_(2.0);
  }
  for (int k = 0; k < 20; ++k) ema.update(*model);
  const std::vector<float> got = ema.model().parameter("head.weight").to_vector<float>();
  for (size_t i = 0; i < got.size(); ++i)
    CHECK(got[i] == doctest::Approx(2.0 + std::pow(0.9, 20) * (start[i] - 2.0)).epsilon(1e-5));
}

TEST_CASE("ema: bad decay and a mismatched model are refused") {
  auto model = tiny();
  CHECK_THROWS_WITH_AS(train::ModelEma(tiny(), *model, 1.0), doctest::Contains("ema_decay"), std::invalid_argument);
  CHECK_THROWS_WITH_AS(train::ModelEma(nullptr, *model, 0.9), doctest::Contains("no EMA model"),
                       std::invalid_argument);
  CHECK_THROWS(train::ModelEma(tiny(24), *model, 0.9));  // widths differ: load_state_dict names the shapes
}
