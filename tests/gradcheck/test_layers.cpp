// Layer modules: gradients of the input and of every parameter, through the modules themselves,
// against f64 finite differences. Module::to(f64) turns the layers' own parameters into f64 leaves,
// which gradcheck then perturbs in place (the module reads the same storage).
#include "engine/nn/layers.h"
#include "engine/ops/attention.h"
#include "engine/ops/elementwise.h"
#include "tests/support/check.h"

using namespace rv;
using test::grad_input;

namespace {

// [x, then every parameter of m], all f64 leaves that require grad.
std::vector<Tensor> inputs_with_params(const Tensor& x, const nn::Module& m) {
  std::vector<Tensor> in = {x};
  for (const Tensor& p : m.parameters()) in.push_back(p);
  return in;
}

// Restores the global attention override when a test ends, even by an exception.
struct AttentionImplScope {
  explicit AttentionImplScope(AttentionImpl impl) { set_attention_impl_override(impl); }
  ~AttentionImplScope() { set_attention_impl_override(AttentionImpl::automatic); }
};

}  // namespace

TEST_CASE("gradcheck Mlp: x, fc1 and fc2 weights and biases, exact and tanh GELU") {
  for (const char* approx : {"none", "tanh"}) {
    CAPTURE(approx);
    Generator gen(1);
    nn::Mlp mlp(5, 7, 3, gen, std::make_shared<nn::GELU>(approx));
    mlp.to(DType::f64);
    std::vector<Tensor> in = inputs_with_params(grad_input({2, 3, 5}, 2), mlp);
    CHECK(in.size() == 5);
    RV_GRADCHECK([&](const std::vector<Tensor>& v) { return mlp.forward(v[0]); }, in);
  }
}

TEST_CASE("gradcheck Attention: x, bias, qkv and proj parameters, both kernels") {
  for (AttentionImpl impl : {AttentionImpl::reference, AttentionImpl::fused}) {
    CAPTURE(int(impl));
    AttentionImplScope scope(impl);
    Generator gen(3);
    nn::Attention attn(8, 2, gen, /*qkv_bias=*/true);
    attn.to(DType::f64);
    std::vector<Tensor> in = inputs_with_params(grad_input({2, 5, 8}, 4), attn);
    in.push_back(grad_input({2, 5, 5}, 5));  // (NH, N, N) bias
    RV_GRADCHECK([&](const std::vector<Tensor>& v) { return attn.forward(v[0], {}, v.back()); }, in);
  }
}

TEST_CASE("gradcheck Attention: through a q/k transform, and a per-window (G, NH, N, N) bias") {
  Generator gen(6);
  nn::Attention attn(6, 3, gen, /*qkv_bias=*/false);
  attn.to(DType::f64);
  // a transform that mixes q and k (as RoPE does with positions): q' = q * s + k, k' = k * s
  Tensor s = grad_input({1, 1, 4, 2}, 7);  // broadcasts over (B, NH, N, HD)
  auto mix = [&](const Tensor& q, const Tensor& k) { return std::make_pair(q * s + k, k * s); };
  std::vector<Tensor> in = inputs_with_params(grad_input({4, 4, 6}, 8), attn);  // 2 images x 2 windows
  in.push_back(s);
  in.push_back(grad_input({2, 3, 4, 4}, 9));  // (nW, NH, N, N)
  RV_GRADCHECK([&](const std::vector<Tensor>& v) { return attn.forward(v[0], mix, v.back()); }, in);
}

TEST_CASE("gradcheck Attention in training with attention and projection dropout (masks replayed)") {
  Generator gen(10);
  nn::Attention attn(4, 2, gen, true, /*attn_drop=*/0.3, /*proj_drop=*/0.2);
  attn.to(DType::f64);
  auto drop_gen = std::make_shared<Generator>(11);
  nn::set_generator(attn, drop_gen);
  std::vector<Tensor> in = inputs_with_params(grad_input({2, 3, 4}, 12), attn);
  // Every evaluation starts from the same Philox offset, so it draws the same masks: the function
  // being differentiated is then fixed, as it is within one training step.
  RV_GRADCHECK([&](const std::vector<Tensor>& v) {
    drop_gen->set_offset(0);
    return attn.forward(v[0]);
  }, in);
}

TEST_CASE("gradcheck Conv2d -> BatchNorm2d (training) -> GroupNorm -> LayerNorm -> Linear") {
  Generator gen(13);
  auto conv = std::make_shared<nn::Conv2d>(2, 4, Pair{3, 3}, gen, nn::Conv2dOptions{.stride = {2, 1}, .padding = {1, 1}});
  auto bn = std::make_shared<nn::BatchNorm2d>(4);
  auto gn = std::make_shared<nn::GroupNorm>(2, 4);
  auto ln = std::make_shared<nn::LayerNorm>(3);
  auto fc = std::make_shared<nn::Linear>(3, 2, gen);
  nn::Sequential seq{conv, bn, gn, ln, fc};
  seq.to(DType::f64);
  // non-trivial affine parameters, so their gradients are not special cases
  for (Tensor p : {bn->weight, bn->bias, gn->weight, gn->bias, ln->weight, ln->bias})
    nn::init::uniform_(p, gen, 0.5, 1.5);
  std::vector<Tensor> in = inputs_with_params(grad_input({2, 2, 5, 3}, 14), seq);
  RV_GRADCHECK([&](const std::vector<Tensor>& v) { return seq.forward(v[0]); }, in);
}
