// The layer modules of engine/nn: state dict names and order (as PyTorch / timm print them),
// shapes, init statistics, forward against the functional ops, train / eval behaviour of Dropout,
// DropPath and BatchNorm2d, bf16, Module::to, state dict round trips, and a PyTorch-made state
// dict (tests/fixtures/data/layers.safetensors, from tools/make_layer_fixtures.py) loaded and run.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>

#include "engine/autograd.h"
#include "engine/io/safetensors.h"
#include "engine/nn/layers.h"
#include "engine/ops/activation.h"
#include "engine/ops/attention.h"
#include "engine/ops/conv.h"
#include "engine/ops/dropout.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/index.h"
#include "engine/ops/layernorm.h"
#include "engine/ops/matmul.h"
#include "engine/ops/norm.h"
#include "engine/ops/reduce.h"
#include "engine/ops/softmax.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::test;

namespace {

constexpr Tol kExact{.rtol = 0.0, .atol = 0.0};

struct Stats {
  double mean = 0, std = 0, min = INFINITY, max = -INFINITY;
};
Stats stats(const Tensor& t) {
  std::vector<double> v = t.to_double_vector();
  Stats s;
  for (double x : v) {
    s.mean += x;
    s.min = std::min(s.min, x);
    s.max = std::max(s.max, x);
  }
  s.mean /= double(v.size());
  for (double x : v) s.std += (x - s.mean) * (x - s.mean);
  s.std = std::sqrt(s.std / double(v.size()));
  return s;
}

// U(-b, b) over n values: mean and std within 5 standard errors of 0 and b / sqrt 3 (the
// sample std of a uniform has relative error sqrt(0.8 / 4n)), the extremes inside the bound
// and within 20/n of it (missed with probability e^-10 each).
void check_uniform(const Tensor& t, double b) {
  Stats s = stats(t);
  const double n = double(t.numel()), sd = b / std::sqrt(3.0);
  CHECK(std::fabs(s.mean) < 5 * sd / std::sqrt(n));
  CHECK(s.std == doctest::Approx(sd).epsilon(5 * std::sqrt(0.8 / (4 * n))));
  CHECK(s.min >= -b);
  CHECK(s.max <= b);
  CHECK(s.min < -b * (1 - 20 / n));
  CHECK(s.max > b * (1 - 20 / n));
}

// The same structure as tools/make_layer_fixtures.py's Net.
struct Net : nn::Module {
  std::shared_ptr<nn::Linear> fc;
  std::shared_ptr<nn::LayerNorm> ln;
  std::shared_ptr<nn::Mlp> mlp;
  std::shared_ptr<nn::Attention> attn;
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::BatchNorm2d> bn, bn_cma;
  std::shared_ptr<nn::GroupNorm> gn;
  explicit Net(Generator& gen) {
    fc = register_module("fc", std::make_shared<nn::Linear>(6, 8, gen));
    ln = register_module("ln", std::make_shared<nn::LayerNorm>(8));
    mlp = register_module("mlp", std::make_shared<nn::Mlp>(8, 12, 0, gen));
    attn = register_module("attn", std::make_shared<nn::Attention>(8, 2, gen, /*qkv_bias=*/true));
    conv = register_module("conv", std::make_shared<nn::Conv2d>(3, 4, Pair{3, 3}, gen,
                                                                nn::Conv2dOptions{.stride = {2, 2}, .padding = {1, 1}, .bias = false}));
    bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(4));
    bn_cma = register_module("bn_cma", std::make_shared<nn::BatchNorm2d>(4, 1e-5, std::nullopt));
    gn = register_module("gn", std::make_shared<nn::GroupNorm>(2, 4));
  }
};

// Attention written out with matmul and softmax (no scaled_dot_product_attention), as timm's
// non-fused path. x (B, N, C), bias broadcastable to (B, NH, N, N) or undefined.
Tensor attention_reference(const nn::Attention& a, const Tensor& x, const Tensor& bias = Tensor()) {
  const int64_t B = x.size(0), N = x.size(1), C = x.size(2), NH = a.num_heads(), HD = C / NH;
  Tensor qkv = linear(x, a.qkv->weight, a.qkv->bias).reshape({B, N, 3, NH, HD}).permute({2, 0, 3, 1, 4});
  Tensor q = qkv.select(0, 0), k = qkv.select(0, 1), v = qkv.select(0, 2);
  Tensor s = matmul(q, k.transpose(-2, -1)) * (1.0 / std::sqrt(double(HD)));
  if (bias.defined()) s = s + bias;
  Tensor o = matmul(softmax(s, -1), v).transpose(1, 2).reshape({B, N, C});
  return linear(o, a.proj->weight, a.proj->bias);
}

}  // namespace

// ---- names and shapes -----------------------------------------------------------------------------

// Printed by PyTorch 2.15 for tools/make_layer_fixtures.py's Net (timm's Mlp and Attention names).
TEST_CASE("state_dict names and order match PyTorch's for the same structure") {
  Generator gen(1);
  Net net(gen);
  std::vector<std::string> expected = {
      "fc.weight", "fc.bias", "ln.weight", "ln.bias", "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight",
      "mlp.fc2.bias", "attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias", "conv.weight",
      "bn.weight", "bn.bias", "bn.running_mean", "bn.running_var", "bn.num_batches_tracked", "bn_cma.weight",
      "bn_cma.bias", "bn_cma.running_mean", "bn_cma.running_var", "bn_cma.num_batches_tracked", "gn.weight",
      "gn.bias"};
  CHECK(net.state_dict().keys() == expected);
  CHECK(net.mlp->fc1->weight.shape() == Shape{12, 8});
  CHECK(net.mlp->fc2->weight.shape() == Shape{8, 12});
  CHECK(net.attn->qkv->weight.shape() == Shape{24, 8});
  CHECK(net.attn->proj->weight.shape() == Shape{8, 8});
  CHECK(net.conv->weight.shape() == Shape{4, 3, 3, 3});
  CHECK(net.bn->num_batches_tracked.dtype() == DType::i64);
  CHECK(net.bn->num_batches_tracked.shape() == Shape{});
  CHECK(net.bn->num_batches_tracked.item() == 0);
  CHECK(net.bn->running_var.to_vector<float>() == std::vector<float>(4, 1.0f));
  // The member handles are the registered tensors (the module rule).
  CHECK(net.parameter("mlp.fc1.weight").same(net.mlp->fc1->weight));
  CHECK(net.buffer("bn.num_batches_tracked").same(net.bn->num_batches_tracked));

  // timm's Mlp and Attention module trees (Attention without its Identity q_norm / k_norm / norm).
  std::vector<std::string> mods;
  for (auto& [n, m] : net.mlp->named_modules()) mods.push_back(n + ":" + m->type_name());
  CHECK(mods == std::vector<std::string>{":Mlp", "fc1:Linear", "act:GELU", "drop1:Dropout", "norm:Identity",
                                         "fc2:Linear", "drop2:Dropout"});
  mods.clear();
  for (auto& [n, m] : net.attn->named_modules()) mods.push_back(n + ":" + m->type_name());
  CHECK(mods == std::vector<std::string>{":Attention", "qkv:Linear", "attn_drop:Dropout", "proj:Linear", "proj_drop:Dropout"});
}

// Printed by PyTorch 2.15: BatchNorm2d(affine=False) / (track_running_stats=False), LayerNorm(bias=False),
// nn.Sequential(Linear, GELU, Linear), and timm's Attention(qkv_bias=False).
TEST_CASE("optional parameters and buffers leave the state dict as PyTorch's does") {
  Generator gen(2);
  CHECK(nn::BatchNorm2d(3, 1e-5, 0.1, /*affine=*/false).state_dict().keys() ==
        std::vector<std::string>{"running_mean", "running_var", "num_batches_tracked"});
  CHECK(nn::BatchNorm2d(3, 1e-5, 0.1, true, /*track=*/false).state_dict().keys() ==
        std::vector<std::string>{"weight", "bias"});
  CHECK(nn::LayerNorm(4, 1e-5, true, /*bias=*/false).state_dict().keys() == std::vector<std::string>{"weight"});
  CHECK(nn::LayerNorm(4, 1e-5, /*affine=*/false).state_dict().empty());
  CHECK(nn::GroupNorm(2, 4, 1e-5, false).state_dict().empty());
  CHECK(nn::Linear(3, 2, gen, /*bias=*/false).state_dict().keys() == std::vector<std::string>{"weight"});
  nn::Sequential seq{std::make_shared<nn::Linear>(2, 3, gen), std::make_shared<nn::GELU>(),
                     std::make_shared<nn::Linear>(3, 2, gen)};
  CHECK(seq.state_dict().keys() == std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"});
  CHECK(nn::Attention(8, 2, gen).state_dict().keys() ==
        std::vector<std::string>{"qkv.weight", "proj.weight", "proj.bias"});
  nn::Conv2d grouped(6, 4, {3, 2}, gen, {.groups = 2});
  CHECK(grouped.weight.shape() == Shape{4, 3, 3, 2});
  CHECK(nn::Embedding(10, 3, gen).weight.shape() == Shape{10, 3});
  CHECK(nn::Identity().state_dict().empty());
  for (auto& p : seq.parameters()) CHECK(p.requires_grad());
}

TEST_CASE("constructor arguments are checked") {
  Generator gen(3);
  CHECK_THROWS_WITH(nn::Attention(10, 3, gen), doctest::Contains("divisible by num_heads"));
  CHECK_THROWS_WITH(nn::GroupNorm(3, 4), doctest::Contains("divisible by num_groups"));
  CHECK_THROWS_WITH(nn::Conv2d(6, 4, {3, 3}, gen, {.groups = 4}), doctest::Contains("groups = 4"));
  CHECK_THROWS_WITH(nn::Conv2d(6, 4, {3, 3}, gen, {.stride = {0, 1}}), doctest::Contains("stride"));
  CHECK_THROWS_WITH(nn::Dropout(1.5), doctest::Contains("Dropout: expected a probability"));
  CHECK_THROWS_WITH(nn::DropPath(-0.1), doctest::Contains("DropPath"));
  CHECK_THROWS_WITH(nn::GELU("fast"), doctest::Contains("approximate"));
  CHECK_THROWS_WITH(nn::BatchNorm2d(4, 1e-5, 1.5), doctest::Contains("momentum"));
  CHECK_THROWS_WITH(nn::LayerNorm(Shape{}), doctest::Contains("normalized_shape"));
  CHECK_THROWS_WITH(nn::Mlp(0, 4, 4, gen), doctest::Contains("Mlp"));
  // forward on a wrong shape names the layer and the expected shape
  CHECK_THROWS_WITH(nn::Linear(4, 2, gen).forward(zeros({3, 5})), doctest::Contains("last dim is 4"));
  CHECK_THROWS_WITH(nn::BatchNorm2d(4).forward(zeros({2, 4, 3})), doctest::Contains("4-D"));
  CHECK_THROWS_WITH(nn::Conv2d(3, 4, {3, 3}, gen).forward(zeros({1, 2, 5, 5})), doctest::Contains("(B, 3, H, W)"));
  CHECK_THROWS_WITH(nn::Attention(8, 2, gen).forward(zeros({2, 3, 6})), doctest::Contains("(B, N, 8)"));
}

// ---- init -----------------------------------------------------------------------------------------

TEST_CASE("Linear and Conv2d init as PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for weight and bias") {
  Generator gen(11);
  nn::Linear lin(64, 2000, gen);  // 128k weights
  check_uniform(lin.weight, 1.0 / 8.0);
  check_uniform(lin.bias, 1.0 / 8.0);
  nn::Conv2d conv(16, 512, {3, 3}, gen, {.groups = 4});  // fan_in = 4 * 9 = 36
  check_uniform(conv.weight, 1.0 / 6.0);
  check_uniform(conv.bias, 1.0 / 6.0);
  // The same seed gives the same weights; the draws advance the generator (weight, then bias).
  Generator a(5), b(5);
  nn::Linear la(7, 3, a), lb(7, 3, b);
  CHECK(la.weight.to_vector<float>() == lb.weight.to_vector<float>());
  CHECK(la.bias.to_vector<float>() == lb.bias.to_vector<float>());
  CHECK(a.offset() == 24 + 4);  // 21 weights and 3 biases, each rounded up to a Philox block of 4
  nn::Linear lc(7, 3, a);
  CHECK(lc.weight.to_vector<float>() != la.weight.to_vector<float>());
}

TEST_CASE("SkipInitGuard leaves weights as allocated and the generator untouched") {
  Generator gen(3);
  {
    nn::init::SkipInitGuard skip;
    CHECK(nn::init::init_skipped());
    nn::Linear lin(64, 32, gen);
    CHECK(gen.offset() == 0);  // nothing drawn
    CHECK(lin.weight.requires_grad());
    Tensor t = zeros({4});
    nn::init::ones_(t);
    CHECK(t.to_vector<float>() == std::vector<float>(4, 0.0f));
    {
      nn::init::SkipInitGuard nested;
    }
    CHECK(nn::init::init_skipped());  // the inner guard restores the outer state
    // Arguments are still checked.
    Tensor i = zeros({2}, DType::i64);
    CHECK_THROWS_AS(nn::init::zeros_(i), std::invalid_argument);
  }
  CHECK_FALSE(nn::init::init_skipped());
  nn::Linear lin(7, 3, gen);
  CHECK(gen.offset() == 24 + 4);  // initialised again once the guard is gone
}

TEST_CASE("Embedding init is N(0, 1); norms start at ones and zeros") {
  Generator gen(12);
  nn::Embedding emb(1000, 100, gen);
  Stats s = stats(emb.weight);
  CHECK(std::fabs(s.mean) < 5.0 / std::sqrt(1e5));
  CHECK(s.std == doctest::Approx(1.0).epsilon(0.01));
  CHECK(s.max > 3.5);  // a normal, not a bounded distribution
  nn::LayerNorm ln(5);
  CHECK(ln.weight.to_vector<float>() == std::vector<float>(5, 1.0f));
  CHECK(ln.bias.to_vector<float>() == std::vector<float>(5, 0.0f));
  nn::GroupNorm gn(2, 4);
  CHECK(gn.weight.to_vector<float>() == std::vector<float>(4, 1.0f));
  CHECK(gn.bias.to_vector<float>() == std::vector<float>(4, 0.0f));
}

TEST_CASE("init helpers: trunc_normal_, normal_, kaiming / xavier bounds, constants, errors") {
  Generator gen(13);
  namespace init = nn::init;
  // timm's ViT init: trunc_normal_(w, .02) on a parameter that requires grad, in grad mode.
  nn::Linear lin(200, 500, gen);
  init::trunc_normal_(lin.weight, gen, 0.02);
  CHECK(lin.weight.requires_grad());
  Stats s = stats(lin.weight);
  CHECK(std::fabs(s.mean) < 5 * 0.02 / std::sqrt(1e5));
  CHECK(s.std == doctest::Approx(0.02).epsilon(0.01));
  // truncated at +-1.5 std: every value inside, and the std shrinks to 0.74265 std (N(0,1) on [-1.5, 1.5])
  Tensor t = empty({100000});
  init::trunc_normal_(t, gen, 2.0, 1.0, 1.0 - 3.0, 1.0 + 3.0);
  s = stats(t);
  CHECK(s.min >= -2.0);
  CHECK(s.max <= 4.0);
  CHECK(s.mean == doctest::Approx(1.0).epsilon(0.01));
  CHECK(s.std == doctest::Approx(2.0 * 0.74265).epsilon(0.01));
  init::normal_(t, gen, -3.0, 0.5);
  s = stats(t);
  CHECK(s.mean == doctest::Approx(-3.0).epsilon(0.003));
  CHECK(s.std == doctest::Approx(0.5).epsilon(0.01));
  // kaiming_uniform_(a = 0): bound sqrt(6 / fan_in); xavier_uniform_: gain sqrt(6 / (fan_in + fan_out))
  Tensor w = empty({400, 24, 2, 2});  // fan_in 96, fan_out 1600
  init::kaiming_uniform_(w, gen);
  check_uniform(w, std::sqrt(6.0 / 96));
  init::xavier_uniform_(w, gen, 2.0);
  check_uniform(w, 2.0 * std::sqrt(6.0 / (96 + 1600)));
  CHECK(init::fan_in_and_fan_out({400, 24, 2, 2}) == std::pair<int64_t, int64_t>{96, 1600});
  CHECK_THROWS_WITH(init::fan_in_and_fan_out({5}), doctest::Contains("at least 2 dims"));
  // constants on a parameter; bf16 and f64 targets; integer targets refused
  init::constant_(lin.bias, 0.25);
  CHECK(lin.bias.to_vector<float>() == std::vector<float>(500, 0.25f));
  init::zeros_(lin.bias);
  CHECK(stats(lin.bias).max == 0.0);
  Tensor hb = empty({64, 64}, DType::bf16);
  init::uniform_(hb, gen, -1, 1);
  CHECK(hb.dtype() == DType::bf16);
  CHECK(stats(hb).std == doctest::Approx(1.0 / std::sqrt(3.0)).epsilon(0.05));
  Tensor d = empty({3, 3}, DType::f64);
  init::ones_(d);
  CHECK(stats(d).min == 1.0);
  Tensor i = empty({3}, DType::i64);
  CHECK_THROWS_WITH(init::normal_(i, gen), doctest::Contains("float tensor"));
  CHECK_THROWS_WITH(init::trunc_normal_(t, gen, 1.0, 0.0, 2.0, 1.0), doctest::Contains("a < b"));
  // A non-contiguous view is filled in place, through the view.
  Tensor base = zeros({4, 6});
  Tensor view = base.narrow(1, 1, 3);
  init::constant_(view, 2.0);
  CHECK(sum(base).item() == 24.0);
}

// ---- forward against the functional ops ----------------------------------------------------------

TEST_CASE("Linear, LayerNorm, Conv2d, GroupNorm, Embedding and activations equal their ops") {
  Generator gen(21);
  Tensor x = test_noncontiguous({3, 5, 7}, 1);  // (B, N, C), non-contiguous
  nn::Linear lin(7, 4, gen), lin_nb(7, 4, gen, false);
  RV_EXPECT_CLOSE(lin.forward(x), linear(x, lin.weight, lin.bias), kExact);
  RV_EXPECT_CLOSE(lin_nb(x), linear(x, lin_nb.weight), kExact);

  nn::LayerNorm ln(Shape{5, 7}, 1e-3);
  nn::init::uniform_(ln.weight, gen, 0.5, 1.5);
  nn::init::uniform_(ln.bias, gen, -1, 1);
  RV_EXPECT_CLOSE(ln(x), layer_norm(x, {5, 7}, ln.weight, ln.bias, 1e-3), kExact);
  nn::LayerNorm ln_plain(7, 1e-5, false);
  RV_EXPECT_CLOSE(ln_plain(x), layer_norm(x, {7}), kExact);

  Tensor img = test_tensor({2, 6, 9, 8}, 2);
  nn::Conv2d conv(6, 4, {3, 2}, gen, {.stride = {2, 1}, .padding = {1, 0}, .dilation = {1, 2}, .groups = 2});
  RV_EXPECT_CLOSE(conv(img), conv2d(img, conv.weight, conv.bias, {2, 1}, {1, 0}, {1, 2}, 2), kExact);
  nn::Conv2d patch(6, 5, {4, 4}, gen, {.stride = {4, 4}, .bias = false});  // the ViT patch embedding
  // (GCC 12.2 with -march=native once turned these options into padding {4, 4}; see CMakeLists.txt)
  CHECK(patch.options().stride == Pair{4, 4});
  CHECK(patch.options().padding == Pair{0, 0});
  CHECK(patch.options().dilation == Pair{1, 1});
  RV_EXPECT_CLOSE(patch(img.narrow(2, 0, 8)), conv2d(img.narrow(2, 0, 8), patch.weight, Tensor(), {4, 4}), kExact);

  nn::GroupNorm gn(3, 6, 1e-4);
  nn::init::uniform_(gn.weight, gen, 0.5, 1.5);
  RV_EXPECT_CLOSE(gn(img), group_norm(img, 3, gn.weight, gn.bias, 1e-4), kExact);

  nn::Embedding emb(10, 4, gen);
  Tensor idx = from_vector(std::vector<int64_t>{3, 0, 9, 3, 1, 7}, {2, 3});
  RV_EXPECT_CLOSE(emb(idx), embedding(emb.weight, idx), kExact);

  CHECK(nn::Identity()(x).same(x));
  RV_EXPECT_CLOSE(nn::GELU()(x), gelu(x), kExact);
  RV_EXPECT_CLOSE(nn::GELU("tanh")(x), gelu(x, "tanh"), kExact);
  RV_EXPECT_CLOSE(nn::ReLU()(x), relu(x), kExact);
  RV_EXPECT_CLOSE(nn::SiLU()(x), silu(x), kExact);
}

TEST_CASE("Sequential of layers and activations") {
  Generator gen(22);
  auto fc1 = std::make_shared<nn::Linear>(5, 8, gen);
  auto fc2 = std::make_shared<nn::Linear>(8, 3, gen);
  nn::Sequential seq{std::make_shared<nn::Embedding>(6, 5, gen), fc1, std::make_shared<nn::SiLU>(),
                     std::make_shared<nn::Identity>(), fc2, std::make_shared<nn::ReLU>()};
  Tensor idx = from_vector(std::vector<int64_t>{1, 5, 0, 2}, {4});
  auto emb = std::dynamic_pointer_cast<nn::Embedding>(seq[0]);
  Tensor e = relu(linear(silu(linear(embedding(emb->weight, idx), fc1->weight, fc1->bias)), fc2->weight, fc2->bias));
  RV_EXPECT_CLOSE(seq(idx), e, kExact);
}

TEST_CASE("Mlp is fc1 -> act -> fc2 (timm); hidden and out default to in") {
  Generator gen(23);
  Tensor x = test_tensor({2, 7, 6}, 3);
  nn::Mlp mlp(6, 10, 4, gen);
  RV_EXPECT_CLOSE(mlp(x), linear(gelu(linear(x, mlp.fc1->weight, mlp.fc1->bias)), mlp.fc2->weight, mlp.fc2->bias),
                  kExact);
  nn::Mlp relu_mlp(6, 0, 0, gen, std::make_shared<nn::ReLU>(), 0.0, /*bias=*/false);
  CHECK(relu_mlp.fc1->weight.shape() == Shape{6, 6});
  CHECK(relu_mlp.fc2->weight.shape() == Shape{6, 6});
  CHECK(!relu_mlp.fc1->bias.defined());
  RV_EXPECT_CLOSE(relu_mlp(x), linear(relu(linear(x, relu_mlp.fc1->weight)), relu_mlp.fc2->weight), kExact);
  // dropout in eval mode is the identity, so an Mlp with drop > 0 evaluates like one without
  nn::Mlp dropped(6, 10, 4, gen, nullptr, 0.5);
  dropped.load_state_dict(mlp.state_dict());
  dropped.eval();
  RV_EXPECT_CLOSE(dropped(x), mlp(x), kExact);
}

TEST_CASE("Attention equals the written-out product, with and without a bias, both kernels") {
  Generator gen(24);
  nn::Attention attn(12, 3, gen, /*qkv_bias=*/true);
  for (int64_t N : {5, 40}) {  // 5 keys run the reference kernel, 40 the fused one
    CAPTURE(N);
    Tensor x = test_tensor({2, N, 12}, 4);
    RV_EXPECT_CLOSE(attn(x), attention_reference(attn, x), .rtol = 1e-4, .atol = 1e-5);
    Tensor bias = test_tensor({3, N, N}, 5, DType::f32, -2, 2);  // (NH, N, N), e.g. a position bias
    RV_EXPECT_CLOSE(attn.forward(x, {}, bias), attention_reference(attn, x, bias), .rtol = 1e-4, .atol = 1e-5);
    // the module's forward is the op call on the head-split views
    Tensor qkv = linear(x, attn.qkv->weight, attn.qkv->bias).reshape({2, N, 3, 3, 4}).permute({2, 0, 3, 1, 4});
    Tensor o = scaled_dot_product_attention(qkv.select(0, 0), qkv.select(0, 1), qkv.select(0, 2), bias);
    RV_EXPECT_CLOSE(attn.forward(x, {}, bias),
                    linear(o.transpose(1, 2).reshape({2, N, 12}), attn.proj->weight, attn.proj->bias), kExact);
  }
}

TEST_CASE("Attention: the q/k transform sees (B, NH, N, HD) and changes only the scores") {
  Generator gen(25);
  nn::Attention attn(8, 2, gen, true);
  Tensor x = test_tensor({3, 6, 8}, 6);
  int calls = 0;
  // Scaling q by 2 is the same as doubling the scores; k is left alone.
  auto twice_q = [&](const Tensor& q, const Tensor& k) {
    ++calls;
    CHECK(q.shape() == Shape{3, 2, 6, 4});
    CHECK(k.shape() == Shape{3, 2, 6, 4});
    return std::make_pair(q * 2.0, k);
  };
  Tensor y = attn.forward(x, twice_q);
  CHECK(calls == 1);
  // reference: doubled scores = scale 2 HD^-0.5
  const int64_t B = 3, N = 6;
  Tensor qkv = linear(x, attn.qkv->weight, attn.qkv->bias).reshape({B, N, 3, 2, 4}).permute({2, 0, 3, 1, 4});
  Tensor o = scaled_dot_product_attention(qkv.select(0, 0), qkv.select(0, 1), qkv.select(0, 2), Tensor(), Tensor(),
                                          2.0 / std::sqrt(4.0));
  RV_EXPECT_CLOSE(y, linear(o.transpose(1, 2).reshape({B, N, 8}), attn.proj->weight, attn.proj->bias), .rtol = 1e-5,
                  .atol = 1e-6);
  auto bad = [](const Tensor& q, const Tensor& k) { return std::make_pair(q.narrow(2, 0, 5), k); };
  CHECK_THROWS_WITH(attn.forward(x, bad), doctest::Contains("must keep the shape"));
}

TEST_CASE("Attention: a (G, NH, N, N) bias applies bias[b % G] to batch element b (Swin windows)") {
  Generator gen(26);
  nn::Attention attn(8, 2, gen, true);
  const int64_t images = 2, nW = 3, N = 4;
  Tensor x = test_tensor({images * nW, N, 8}, 7);  // the nW windows of each image, consecutive
  Tensor mask = test_tensor({nW, 1, N, N}, 8, DType::f32, -3, 0);  // per window, broadcast over heads
  Tensor rpb = test_tensor({2, N, N}, 9);                           // per head, shared by windows
  Tensor bias = mask + rpb;                                          // (nW, NH, N, N)
  // The same bias written out for every batch element.
  Tensor full_bias = bias.unsqueeze(0).expand({images, nW, 2, N, N}).reshape({images * nW, 2, N, N});
  RV_EXPECT_CLOSE(attn.forward(x, {}, bias), attention_reference(attn, x, full_bias), .rtol = 1e-4, .atol = 1e-5);
  // a broadcastable (nW, 1, N, N) mask alone works too
  Tensor full_mask = mask.unsqueeze(0).expand({images, nW, 1, N, N}).reshape({images * nW, 1, N, N});
  RV_EXPECT_CLOSE(attn.forward(x, {}, mask), attention_reference(attn, x, full_mask), .rtol = 1e-4, .atol = 1e-5);
  CHECK_THROWS_WITH(attn.forward(x, {}, zeros({4, 2, N, N})), doctest::Contains("divide the batch"));
}

// ---- bf16 and Module::to ---------------------------------------------------------------------------

TEST_CASE("bf16 inputs: each layer equals its op on the same bf16 input and stays near f32") {
  Generator gen(27);
  Tensor x = test_tensor({2, 5, 8}, 10);
  Tensor xb = x.to(DType::bf16);
  nn::Linear lin(8, 6, gen);
  RV_EXPECT_CLOSE(lin(xb), linear(xb, lin.weight, lin.bias), kExact);
  nn::LayerNorm ln(8);
  Tensor yb = ln(xb);
  CHECK(yb.dtype() == DType::bf16);
  RV_EXPECT_CLOSE(yb, layer_norm(xb, {8}, ln.weight, ln.bias), kExact);
  nn::Mlp mlp(8, 16, 0, gen);
  RV_EXPECT_CLOSE(mlp(xb).to(DType::f32), mlp(x), .rtol = 0.05, .atol = 0.03);
  nn::Attention attn(8, 2, gen, true);
  RV_EXPECT_CLOSE(attn(xb).to(DType::f32), attn(x), .rtol = 0.05, .atol = 0.03);
  Tensor img = test_tensor({2, 4, 5, 5}, 11).to(DType::bf16);
  nn::GroupNorm gn(2, 4);
  RV_EXPECT_CLOSE(gn(img), group_norm(img, 2, gn.weight, gn.bias), kExact);
  nn::BatchNorm2d bn(4);
  bn.eval();
  RV_EXPECT_CLOSE(bn(img), batch_norm(img, bn.running_mean, bn.running_var, bn.weight, bn.bias, false), kExact);
}

TEST_CASE("Module::to converts float parameters and buffers in place, keeping handles; integer buffers stay") {
  Generator gen(28);
  Net net(gen);
  Tensor w = net.attn->qkv->weight;
  const std::vector<double> before = w.to_double_vector();
  Tensor x = test_tensor({2, 5, 6}, 12);
  Tensor y32 = net.attn->forward(net.ln->forward(net.fc->forward(x)));
  net.to(DType::f64);
  CHECK(w.dtype() == DType::f64);  // the handle taken before sees the conversion
  CHECK(net.parameter("attn.qkv.weight").same(w));
  CHECK(w.to_double_vector() == before);
  CHECK(w.requires_grad());
  CHECK(net.bn->running_var.dtype() == DType::f64);
  CHECK(net.bn->num_batches_tracked.dtype() == DType::i64);
  Tensor y64 = net.attn->forward(net.ln->forward(net.fc->forward(x.to(DType::f64))));
  CHECK(y64.dtype() == DType::f64);
  RV_EXPECT_CLOSE(y64.to(DType::f32), y32, .rtol = 1e-5, .atol = 1e-6);
  net.to(DType::bf16);
  CHECK(net.mlp->fc1->weight.dtype() == DType::bf16);
  Tensor yb = net.mlp->forward(net.ln->forward(net.fc->forward(x.to(DType::bf16))));
  CHECK(yb.dtype() == DType::bf16);
  CHECK_THROWS_WITH(net.to(DType::i32), doctest::Contains("float dtype"));
}

// ---- train / eval -------------------------------------------------------------------------------------

TEST_CASE("Dropout and DropPath: identity in eval, the op's mask in training, one shared generator") {
  Tensor x = test_tensor({4, 3, 5}, 13);
  nn::Dropout drop(0.3);
  nn::DropPath path(0.5);
  // training with p > 0 and no generator is an error that says what to do
  CHECK_THROWS_WITH(drop(x), doctest::Contains("nn::set_generator"));
  CHECK_THROWS_WITH(path(x), doctest::Contains("DropPath"));
  CHECK(nn::Dropout(0.0)(x).same(x));  // p = 0 needs no generator
  drop.eval();
  path.eval();
  CHECK(drop(x).same(x));
  CHECK(path(x).same(x));

  // Dropouts inside a model share one generator; each call takes the next Philox range.
  Generator init_gen(1);
  auto gen = std::make_shared<Generator>(77, 2);
  nn::Sequential seq{std::make_shared<nn::Dropout>(0.3), std::make_shared<nn::Linear>(5, 5, init_gen),
                     std::make_shared<nn::DropPath>(0.5)};
  CHECK(nn::set_generator(seq, gen) == 2);
  auto lin = std::dynamic_pointer_cast<nn::Linear>(seq[1]);
  Tensor y = seq(x);
  Generator replay(77, 2);  // the same stream, replayed with the ops
  Tensor e = drop_path(linear(dropout(x, 0.3, true, replay), lin->weight, lin->bias), 0.5, true, replay);
  RV_EXPECT_CLOSE(y, e, kExact);
  CHECK(gen->offset() == replay.offset());
  CHECK(seq(x).to_vector<float>() != y.to_vector<float>());  // the next call draws fresh masks
  // a run restarted from the same seed repeats itself
  gen->set_offset(0);
  RV_EXPECT_CLOSE(seq(x), y, kExact);
  seq.eval();
  const uint64_t off = gen->offset();
  RV_EXPECT_CLOSE(seq(x), linear(x, lin->weight, lin->bias), kExact);
  CHECK(gen->offset() == off);  // eval draws nothing
}

TEST_CASE("DropPath zeroes whole samples; Dropout zeroes about p of the elements") {
  auto gen = std::make_shared<Generator>(5);
  nn::DropPath path(0.4, gen);
  Tensor y = path(ones({2000, 3, 2}));
  int dropped = 0;
  for (int64_t b = 0; b < 2000; ++b) {
    std::vector<double> v = y.select(0, b).to_double_vector();
    for (double f : v) CHECK(f == v[0]);  // one decision per sample
    CHECK((v[0] == 0.0 || std::fabs(v[0] - 1.0 / 0.6) < 1e-6));
    dropped += v[0] == 0.0;
  }
  CHECK(std::fabs(dropped / 2000.0 - 0.4) < 5 * std::sqrt(0.24 / 2000));
  nn::Dropout drop(0.25, gen);
  Stats s = stats(drop(ones({40000})));
  CHECK(s.mean == doctest::Approx(1.0).epsilon(0.03));
}

TEST_CASE("Attention with attn_drop in training drops attention probabilities; eval uses the fused op") {
  Generator gen(29);
  nn::Attention attn(8, 2, gen, true, /*attn_drop=*/0.2, /*proj_drop=*/0.1);
  auto drop_gen = std::make_shared<Generator>(3);
  CHECK(nn::set_generator(attn, drop_gen) == 2);
  Tensor x = test_tensor({2, 5, 8}, 14);
  Tensor bias = test_tensor({2, 5, 5}, 15);
  Tensor y = attn.forward(x, {}, bias);
  // written out with the same generator stream: scores -> softmax -> dropout -> v -> proj -> dropout
  Generator replay(3);
  Tensor qkv = linear(x, attn.qkv->weight, attn.qkv->bias).reshape({2, 5, 3, 2, 4}).permute({2, 0, 3, 1, 4});
  Tensor s = matmul(qkv.select(0, 0), qkv.select(0, 1).transpose(-2, -1)) * 0.5 + bias;
  Tensor o = matmul(dropout(softmax(s, -1), 0.2, true, replay), qkv.select(0, 2));
  Tensor e = dropout(linear(o.transpose(1, 2).reshape({2, 5, 8}), attn.proj->weight, attn.proj->bias), 0.1, true, replay);
  RV_EXPECT_CLOSE(y, e, .rtol = 1e-6, .atol = 1e-7);
  attn.eval();
  RV_EXPECT_CLOSE(attn.forward(x, {}, bias), attention_reference(attn, x, bias), .rtol = 1e-4, .atol = 1e-5);
}

TEST_CASE("BatchNorm2d: training uses batch stats and updates the buffers; eval uses the running stats") {
  nn::BatchNorm2d bn(3, 1e-5, 0.1);
  Tensor x = test_tensor({4, 3, 5, 2}, 16, DType::f32, -2, 3);
  // the expected update, computed here from the batch statistics per channel
  std::vector<double> xv = x.to_double_vector(), mean_b(3, 0), var_b(3, 0);
  const int64_t n = 4 * 5 * 2;
  for (int64_t c = 0; c < 3; ++c) {
    for (int64_t b = 0; b < 4; ++b)
      for (int64_t i = 0; i < 10; ++i) mean_b[c] += xv[(b * 3 + c) * 10 + i];
    mean_b[c] /= n;
    for (int64_t b = 0; b < 4; ++b)
      for (int64_t i = 0; i < 10; ++i) var_b[c] += std::pow(xv[(b * 3 + c) * 10 + i] - mean_b[c], 2);
    var_b[c] /= n;  // biased
  }
  Tensor y = bn(x);
  CHECK(bn.num_batches_tracked.item() == 1);
  RV_EXPECT_CLOSE(y, batch_norm(x, Tensor(), Tensor(), bn.weight, bn.bias, true), kExact);
  std::vector<double> rm(3), rv(3);
  for (int c = 0; c < 3; ++c) {
    rm[c] = 0.1 * mean_b[c];
    rv[c] = 0.9 + 0.1 * var_b[c] * n / (n - 1);  // unbiased variance into the running stat
  }
  RV_EXPECT_CLOSE(bn.running_mean, from_vector(rm, {3}), .rtol = 1e-5, .atol = 1e-6);
  RV_EXPECT_CLOSE(bn.running_var, from_vector(rv, {3}), .rtol = 1e-5, .atol = 1e-6);
  bn(x);
  CHECK(bn.num_batches_tracked.item() == 2);

  bn.eval();
  Tensor rm_before = bn.running_mean.clone();
  Tensor ye = bn(x);
  RV_EXPECT_CLOSE(ye, batch_norm(x, bn.running_mean, bn.running_var, bn.weight, bn.bias, false), kExact);
  RV_EXPECT_CLOSE(bn.running_mean, rm_before, kExact);  // eval changes nothing
  CHECK(bn.num_batches_tracked.item() == 2);

  // without running stats: batch statistics in both modes, nothing tracked
  nn::BatchNorm2d plain(3, 1e-5, 0.1, true, false);
  plain.eval();
  RV_EXPECT_CLOSE(plain(x), batch_norm(x, Tensor(), Tensor(), plain.weight, plain.bias, true), kExact);
}

TEST_CASE("BatchNorm2d with momentum = none keeps the cumulative average of the batch statistics") {
  nn::BatchNorm2d bn(2, 1e-5, std::nullopt);
  std::vector<double> mean_sum(2, 0), var_sum(2, 0);
  for (int step = 0; step < 4; ++step) {
    Tensor x = test_tensor({3, 2, 4, 4}, 30 + step, DType::f32, -1.0 - step, 2.0 + step);
    bn(x);
    // this batch's per-channel mean and unbiased variance
    std::vector<double> v = x.to_double_vector();
    for (int c = 0; c < 2; ++c) {
      double m = 0, q = 0;
      for (int b = 0; b < 3; ++b)
        for (int i = 0; i < 16; ++i) m += v[(b * 2 + c) * 16 + i];
      m /= 48;
      for (int b = 0; b < 3; ++b)
        for (int i = 0; i < 16; ++i) q += std::pow(v[(b * 2 + c) * 16 + i] - m, 2);
      mean_sum[c] += m;
      var_sum[c] += q / 47;
    }
    CHECK(bn.num_batches_tracked.item() == step + 1);
    // after k steps the running stats are the plain means over the k batches (the initial
    // running_var of 1 is forgotten at the first step, whose factor is 1/1)
    RV_EXPECT_CLOSE(bn.running_mean, from_vector(std::vector<double>{mean_sum[0] / (step + 1), mean_sum[1] / (step + 1)}, {2}),
                    .rtol = 1e-5, .atol = 1e-6);
    RV_EXPECT_CLOSE(bn.running_var, from_vector(std::vector<double>{var_sum[0] / (step + 1), var_sum[1] / (step + 1)}, {2}),
                    .rtol = 1e-5, .atol = 1e-6);
  }
}

// ---- state dicts --------------------------------------------------------------------------------------

TEST_CASE("state_dict round trip through a safetensors file restores every output") {
  Generator g1(41), g2(42);
  Net a(g1), b(g2);
  Tensor x = test_tensor({2, 5, 6}, 17);
  Tensor img = test_tensor({2, 3, 6, 6}, 18);
  a.bn->forward(a.conv->forward(img));  // non-trivial running stats and num_batches_tracked
  a.eval();
  b.eval();
  auto run = [&](Net& n) {
    Tensor h = n.ln->forward(n.fc->forward(x));
    Tensor c = n.conv->forward(img);
    return std::vector<Tensor>{n.mlp->forward(h), n.attn->forward(h), n.bn->forward(c), n.gn->forward(c)};
  };
  std::vector<Tensor> ya = run(a);
  CHECK(run(b)[0].to_vector<float>() != ya[0].to_vector<float>());

  const std::string path = (std::filesystem::temp_directory_path() / "rv_test_layers_roundtrip.safetensors").string();
  const nn::StateDict sd = a.state_dict();
  NamedTensors items(sd.begin(), sd.end());
  save_safetensors(path, items);
  nn::StateDict loaded;
  for (auto& [k, v] : load_safetensors(path)) loaded.insert(k, v);
  std::remove(path.c_str());
  Tensor handle = b.mlp->fc1->weight;
  b.load_state_dict(loaded);
  CHECK(handle.same(b.mlp->fc1->weight));
  CHECK(b.bn->num_batches_tracked.item() == 1);
  std::vector<Tensor> yb = run(b);
  for (size_t i = 0; i < ya.size(); ++i) RV_EXPECT_CLOSE(yb[i], ya[i], kExact);
}

TEST_CASE("a state dict written by PyTorch loads and gives PyTorch's outputs") {
  const std::map<std::string, Tensor> file = load_safetensors(std::string(RV_FIXTURE_DIR) + "/layers.safetensors");
  auto at = [&](const std::string& k) -> const Tensor& {
    auto it = file.find(k);
    REQUIRE_MESSAGE(it != file.end(), "missing " << k);
    return it->second;
  };
  nn::StateDict state;
  for (const auto& [k, v] : file)
    if (k.rfind("state.", 0) == 0) state.insert(k.substr(6), v);
  Generator gen(0);
  Net net(gen);
  net.load_state_dict(state);  // strict: every name and shape matches
  CHECK(net.bn->num_batches_tracked.item() == 3);
  net.eval();

  const Tol tol{.rtol = 1e-5, .atol = 2e-6};
  Tensor h = net.fc->forward(at("in.tokens"));
  RV_EXPECT_CLOSE(h, at("out.fc"), tol.rtol, tol.atol);
  h = net.ln->forward(h);
  RV_EXPECT_CLOSE(h, at("out.ln"), tol.rtol, tol.atol);
  RV_EXPECT_CLOSE(net.mlp->forward(h), at("out.mlp"), tol.rtol, tol.atol);
  RV_EXPECT_CLOSE(net.attn->forward(h), at("out.attn"), tol.rtol, tol.atol);
  RV_EXPECT_CLOSE(net.attn.get()->forward(h, {}, at("in.bias")), at("out.attn_bias"), tol.rtol, tol.atol);
  Tensor c = net.conv->forward(at("in.image"));
  RV_EXPECT_CLOSE(c, at("out.conv"), tol.rtol, tol.atol);
  RV_EXPECT_CLOSE(net.bn->forward(c), at("out.bn"), tol.rtol, tol.atol);
  RV_EXPECT_CLOSE(net.bn_cma->forward(c), at("out.bn_cma"), tol.rtol, tol.atol);
  RV_EXPECT_CLOSE(net.gn->forward(c), at("out.gn"), tol.rtol, tol.atol);

  // one more training step of each BatchNorm, as PyTorch took it
  net.train();
  for (auto& [name, bn] : {std::pair{"bn", net.bn}, std::pair{"bn_cma", net.bn_cma}}) {
    CAPTURE(name);
    const std::string p = std::string("train.") + name + ".";
    RV_EXPECT_CLOSE(bn->forward(c), at(p + "out"), tol.rtol, tol.atol);
    RV_EXPECT_CLOSE(bn->running_mean, at(p + "running_mean"), tol.rtol, tol.atol);
    RV_EXPECT_CLOSE(bn->running_var, at(p + "running_var"), tol.rtol, tol.atol);
    CHECK(bn->num_batches_tracked.item() == at(p + "num_batches_tracked").item());
  }
}
