// nn::Module: names and order (checked against PyTorch), buffers, ModuleList / Sequential,
// train/eval, zero_grad, state_dict round trips and the load_state_dict errors.
#include <cmath>

#include "engine/autograd.h"
#include "engine/nn/containers.h"
#include "engine/nn/module.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

// y = x * weight + bias, over the last dim C.
struct Affine : nn::UnaryModule {
  Tensor weight, bias;  // (C)
  explicit Affine(int64_t C, uint64_t seed = 1) {
    weight = register_parameter("weight", test::test_tensor({C}, seed));
    bias = register_parameter("bias", test::test_tensor({C}, seed + 100));
  }
  Tensor forward(const Tensor& x) override { return x * weight + bias; }
};

// Registration order deliberately interleaves children, parameters and buffers: PyTorch lists a
// module's own parameters before its children whatever the order of registration.
struct Attn : nn::Module {
  std::shared_ptr<Affine> qkv, proj;
  Tensor freqs, freqs_t_x, rel_index;
  explicit Attn(int64_t C) {
    qkv = register_module("qkv", std::make_shared<Affine>(C, 2));
    freqs_t_x = register_buffer("freqs_t_x", zeros({3}), /*persistent=*/false);
    freqs = register_parameter("freqs", test::test_tensor({2, C}, 3));
    proj = register_module("proj", std::make_shared<Affine>(C, 4));
    rel_index = register_buffer("relative_position_index", arange(4));
  }
};

struct Block : nn::Module {
  std::shared_ptr<Affine> norm1;
  std::shared_ptr<Attn> attn;
  explicit Block(int64_t C) {
    norm1 = register_module("norm1", std::make_shared<Affine>(C, 5));
    attn = register_module("attn", std::make_shared<Attn>(C));
  }
};

struct Net : nn::Module {
  Tensor cls_token, pos_embed, step_count;
  std::shared_ptr<nn::ModuleList> blocks;
  std::shared_ptr<nn::Sequential> head;
  Net(int64_t C, int depth) {
    cls_token = register_parameter("cls_token", test::test_tensor({1, 1, C}, 6));
    blocks = register_module("blocks", std::make_shared<nn::ModuleList>());
    for (int i = 0; i < depth; ++i) blocks->push_back(std::make_shared<Block>(C));
    step_count = register_buffer("step_count", zeros({}));
    pos_embed = register_parameter("pos_embed", test::test_tensor({1, 4, C}, 7));
    head = register_module("head", std::make_shared<nn::Sequential>(std::initializer_list<std::shared_ptr<nn::UnaryModule>>{
        std::make_shared<Affine>(C, 8), std::make_shared<nn::Functional>("Double", [](const Tensor& x) { return x * 2.0; }),
        std::make_shared<Affine>(C, 9)}));
  }
};

std::vector<std::string> names_of(const std::vector<nn::NamedTensor>& v) {
  std::vector<std::string> out;
  for (auto& [n, t] : v) out.push_back(n);
  return out;
}

}  // namespace

// The expected lists were printed by PyTorch 2.15 for the same structure written with
// nn.Parameter / register_buffer / nn.ModuleList / nn.Sequential(Affine, GELU, Affine).
TEST_CASE("named_parameters, state_dict and named_buffers follow PyTorch's order") {
  Net net(3, 2);
  std::vector<std::string> params = {
      "cls_token", "pos_embed", "blocks.0.norm1.weight", "blocks.0.norm1.bias", "blocks.0.attn.freqs",
      "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias", "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias",
      "blocks.1.norm1.weight", "blocks.1.norm1.bias", "blocks.1.attn.freqs", "blocks.1.attn.qkv.weight",
      "blocks.1.attn.qkv.bias", "blocks.1.attn.proj.weight", "blocks.1.attn.proj.bias", "head.0.weight",
      "head.0.bias", "head.2.weight", "head.2.bias"};
  CHECK(names_of(net.named_parameters()) == params);
  std::vector<std::string> state = {
      "cls_token", "pos_embed", "step_count", "blocks.0.norm1.weight", "blocks.0.norm1.bias", "blocks.0.attn.freqs",
      "blocks.0.attn.relative_position_index", "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias",
      "blocks.0.attn.proj.weight", "blocks.0.attn.proj.bias", "blocks.1.norm1.weight", "blocks.1.norm1.bias",
      "blocks.1.attn.freqs", "blocks.1.attn.relative_position_index", "blocks.1.attn.qkv.weight",
      "blocks.1.attn.qkv.bias", "blocks.1.attn.proj.weight", "blocks.1.attn.proj.bias", "head.0.weight",
      "head.0.bias", "head.2.weight", "head.2.bias"};
  CHECK(net.state_dict().keys() == state);
  std::vector<std::string> buffers = {"step_count", "blocks.0.attn.freqs_t_x", "blocks.0.attn.relative_position_index",
                                      "blocks.1.attn.freqs_t_x", "blocks.1.attn.relative_position_index"};
  CHECK(names_of(net.named_buffers()) == buffers);
  CHECK(net.num_parameters() == 75);
  CHECK(names_of(net.named_parameters(/*recurse=*/false)) == std::vector<std::string>{"cls_token", "pos_embed"});

  // Lookups by dotted name give the live tensors the layers hold.
  CHECK(net.parameter("blocks.1.attn.qkv.weight").same(net.blocks->get<Block>(1)->attn->qkv->weight));
  CHECK(net.buffer("blocks.0.attn.relative_position_index").same(net.blocks->get<Block>(0)->attn->rel_index));
  CHECK_THROWS_WITH(net.parameter("blocks.9.x"), doctest::Contains("blocks.9.x"));
  CHECK_THROWS_WITH(net.blocks->get<Affine>(0), doctest::Contains("Block"));
  CHECK_THROWS_AS((*net.blocks)[2], std::out_of_range);

  std::vector<std::string> modules;
  for (auto& [n, m] : net.named_modules()) modules.push_back(n + ":" + m->type_name());
  CHECK(modules.front() == ":Net");
  CHECK(modules[1] == "blocks:ModuleList");
  CHECK(modules[2] == "blocks.0:Block");
  CHECK(modules.back() == "head.2:Affine");
  CHECK(net.to_string().find("(relative_position_index)") == std::string::npos);
  CHECK(net.to_string().find("relative_position_index: [4] int64 buffer") != std::string::npos);
  CHECK(net.to_string().find("(1): Double()") != std::string::npos);
}

TEST_CASE("parameters require grad; buffers do not; registration errors name the problem") {
  Net net(3, 1);
  for (auto& p : net.parameters()) CHECK(p.requires_grad());
  for (auto& b : net.buffers()) CHECK(!b.requires_grad());

  nn::Module m;
  m.register_parameter("w", ones({2}));
  CHECK_THROWS_WITH(m.register_parameter("w", ones({2})), doctest::Contains("already registered as a parameter"));
  CHECK_THROWS_WITH(m.register_buffer("w", ones({2})), doctest::Contains("\"w\""));
  CHECK_THROWS_WITH(m.register_parameter("a.b", ones({2})), doctest::Contains("contains '.'"));
  CHECK_THROWS_WITH(m.register_parameter("", ones({2})), doctest::Contains("empty"));
  CHECK_THROWS_WITH(m.register_parameter("i", arange(3)), doctest::Contains("float"));
  Tensor leaf = ones({2}).requires_grad_();
  CHECK_THROWS_WITH(m.register_parameter("y", leaf * 2.0), doctest::Contains("leaf"));
  CHECK_THROWS_WITH(m.register_buffer("g", ones({2}).requires_grad_()), doctest::Contains("requires grad"));
  Tensor frozen = m.register_parameter("frozen", ones({4}), /*requires_grad=*/false);
  CHECK(!frozen.requires_grad());
  CHECK(m.num_parameters() == 6);
  CHECK(m.num_parameters(/*trainable_only=*/true) == 2);

  auto a = std::make_shared<nn::ModuleList>();
  auto b = a->push_back(std::make_shared<nn::ModuleList>());
  CHECK_THROWS_WITH(b->push_back(a), doctest::Contains("its own descendant"));
}

TEST_CASE("a shared child is listed once by named_parameters, under both names in state_dict") {
  auto shared = std::make_shared<Affine>(2);
  nn::ModuleList list;
  list.push_back(shared);
  list.push_back(shared);
  CHECK(names_of(list.named_parameters()) == std::vector<std::string>{"0.weight", "0.bias"});
  CHECK(list.state_dict().keys() == std::vector<std::string>{"0.weight", "0.bias", "1.weight", "1.bias"});
  CHECK(list.num_parameters() == 4);
}

TEST_CASE("train and eval reach every descendant") {
  Net net(3, 2);
  CHECK(net.is_training());
  net.eval();
  for (auto& [n, m] : net.named_modules()) CHECK_MESSAGE(!m->is_training(), n);
  net.blocks->train();
  CHECK(!net.is_training());
  CHECK(net.blocks->get<Block>(1)->attn->qkv->is_training());
  CHECK(!net.head->is_training());
  net.train();
  for (auto& [n, m] : net.named_modules()) CHECK_MESSAGE(m->is_training(), n);
}

TEST_CASE("zero_grad drops every parameter's gradient; forward through Sequential") {
  Net net(3, 1);
  Tensor x = test::test_tensor({2, 3}, 11);
  Tensor y = (*net.head)(x);
  // head = Affine(8) -> x2 -> Affine(9), written out by hand.
  auto& a = *std::dynamic_pointer_cast<Affine>((*net.head)[0]);
  auto& b = *std::dynamic_pointer_cast<Affine>((*net.head)[2]);
  std::vector<double> xv = x.to_double_vector(), aw = a.weight.to_double_vector(), ab = a.bias.to_double_vector(),
                      bw = b.weight.to_double_vector(), bb = b.bias.to_double_vector(), yv = y.to_double_vector();
  for (int i = 0; i < 6; ++i) {
    int c = i % 3;
    CHECK(yv[i] == doctest::Approx((xv[i] * aw[c] + ab[c]) * 2.0 * bw[c] + bb[c]).epsilon(1e-6));
  }
  sum(y + sum(net.blocks->get<Block>(0)->attn->freqs) * sum(net.cls_token)).backward();
  CHECK(a.weight.grad().defined());
  CHECK(net.cls_token.grad().defined());
  net.zero_grad();
  for (auto& p : net.parameters()) CHECK(!p.grad().defined());
  nn::Sequential empty;
  CHECK(empty(x).same(x));
}

TEST_CASE("to(dtype) converts float parameters and buffers in place; handles, sharing and int buffers survive") {
  Net net(3, 1);
  auto shared = std::make_shared<Affine>(3, 11);
  nn::ModuleList list;
  list.push_back(shared);
  list.push_back(shared);
  Tensor w = net.blocks->get<Block>(0)->attn->qkv->weight;  // a handle a layer keeps
  const std::vector<double> before = w.to_double_vector();
  sum(w * 2.0).backward();
  CHECK(w.grad().defined());
  net.to(DType::f64);
  CHECK(w.dtype() == DType::f64);
  CHECK(w.to_double_vector() == before);   // f32 -> f64 is exact
  CHECK(w.requires_grad());
  CHECK(!w.grad().defined());              // the old-dtype gradient is dropped
  CHECK(net.parameter("blocks.0.attn.qkv.weight").same(w));
  CHECK(net.step_count.dtype() == DType::f64);
  CHECK(net.blocks->get<Block>(0)->attn->rel_index.dtype() == DType::i64);  // integer buffers stay
  for (auto& p : net.parameters()) CHECK(p.dtype() == DType::f64);
  // the converted tensors work in ops, and gradients come back in the new dtype
  sum(w * 2.0).backward();
  CHECK(w.grad().dtype() == DType::f64);
  // a tensor reachable under two names is converted once, and both names see it
  list.to(DType::bf16);
  CHECK(shared->weight.dtype() == DType::bf16);
  CHECK(list.state_dict().at("1.weight").dtype() == DType::bf16);
  CHECK_THROWS_WITH(net.to(DType::i64), doctest::Contains("expected a float dtype"));
}

TEST_CASE("state_dict round trip restores values in place and keeps handles valid") {
  Net src(3, 2), dst(3, 2);
  // Make the two models differ: scale dst's parameters, write a buffer.
  {
    autograd::NoGradGuard ng;
    for (auto& p : dst.parameters()) mul_(p, -3.0);
    dst.step_count.fill_(5.0);
    src.step_count.fill_(2.0);
  }
  Tensor held = dst.blocks->get<Block>(1)->attn->qkv->weight;  // a handle a layer keeps
  nn::StateDict snapshot = src.state_dict().clone();
  nn::LoadResult r = dst.load_state_dict(snapshot);
  CHECK(r.missing_keys.empty());
  CHECK(r.unexpected_keys.empty());
  for (auto& [name, t] : src.state_dict()) {
    INFO(name);
    CHECK(dst.state_dict().at(name).to_double_vector() == t.to_double_vector());
  }
  CHECK(held.same(dst.parameter("blocks.1.attn.qkv.weight")));
  CHECK(held.to_double_vector() == src.blocks->get<Block>(1)->attn->qkv->weight.to_double_vector());
  CHECK(held.requires_grad());
  CHECK(held.is_leaf());
  CHECK(dst.step_count.item() == 2.0);

  // state_dict() values alias the live tensors; clone() snapshots them.
  nn::StateDict live = src.state_dict();
  {
    autograd::NoGradGuard ng;
    src.pos_embed.fill_(9.0);
  }
  CHECK(live.at("pos_embed").to_double_vector()[0] == 9.0);
  CHECK(snapshot.at("pos_embed").to_double_vector()[0] != 9.0);
  CHECK(!live.at("pos_embed").requires_grad());
}

TEST_CASE("strict load lists every missing key, unexpected key and mismatch in one error") {
  Net net(3, 1);
  nn::StateDict sd = net.state_dict().clone();
  Tensor before = net.cls_token.clone();
  sd.erase("pos_embed");
  sd.erase("blocks.0.attn.relative_position_index");
  sd.insert("blocks.0.attn.extra", zeros({2}));
  sd.insert("fc.weight", zeros({2}));
  sd.set("head.0.weight", zeros({4}));           // size mismatch
  sd.set("cls_token", zeros({1, 1, 3}, DType::f64));  // dtype mismatch
  std::string msg;
  try {
    net.load_state_dict(sd);
  } catch (const std::runtime_error& e) {
    msg = e.what();
  }
  CHECK(msg.find("Error(s) in loading state_dict for Net:") == 0);
  CHECK(msg.find("Missing key(s) in state_dict: \"pos_embed\", \"blocks.0.attn.relative_position_index\".") !=
        std::string::npos);
  CHECK(msg.find("Unexpected key(s) in state_dict: \"blocks.0.attn.extra\", \"fc.weight\".") != std::string::npos);
  CHECK(msg.find("size mismatch for head.0.weight: copying a param with shape [4] from checkpoint, the shape in "
                 "current model is [3].") != std::string::npos);
  CHECK(msg.find("dtype mismatch for cls_token: the checkpoint has float64, the model has float32") !=
        std::string::npos);
  // Nothing was copied, not even the keys that matched.
  CHECK(net.cls_token.to_double_vector() == before.to_double_vector());
  // A clean model state with the same holes loads non-strictly and reports them.
  nn::StateDict partial = net.state_dict().clone();
  partial.erase("pos_embed");
  partial.insert("fc.weight", zeros({2}));
  {
    autograd::NoGradGuard ng;
    Tensor b = partial.at("blocks.0.norm1.bias");
    b.fill_(0.5);
  }
  nn::LoadResult r = net.load_state_dict(partial, /*strict=*/false);
  CHECK(r.missing_keys == std::vector<std::string>{"pos_embed"});
  CHECK(r.unexpected_keys == std::vector<std::string>{"fc.weight"});
  CHECK(net.blocks->get<Block>(0)->norm1->bias.to_double_vector() == std::vector<double>{0.5, 0.5, 0.5});
  // Shape mismatches stay errors when not strict (as in PyTorch).
  partial.set("head.0.weight", zeros({4}));
  CHECK_THROWS_WITH(net.load_state_dict(partial, false), doctest::Contains("size mismatch for head.0.weight"));
}

TEST_CASE("dtype conversion on load only when asked") {
  Net net(3, 1);
  nn::StateDict sd;
  for (auto& [name, t] : net.state_dict()) sd.insert(name, is_floating(t.dtype()) ? t.to(DType::f64) * 0.0 + 0.25 : t);
  CHECK_THROWS_WITH(net.load_state_dict(sd), doctest::Contains("set LoadOptions::convert_dtype"));
  net.load_state_dict(sd, nn::LoadOptions{.strict = true, .convert_dtype = true});
  CHECK(net.pos_embed.dtype() == DType::f32);
  CHECK(net.pos_embed.to_double_vector()[5] == 0.25);
}

TEST_CASE("a non-contiguous checkpoint tensor loads by value") {
  nn::Module m;
  Tensor w = m.register_parameter("w", zeros({2, 3}));
  Tensor src = from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {3, 2}).t();  // (2, 3) view
  m.load_state_dict(nn::StateDict{{"w", src}});
  CHECK(w.to_vector<float>() == std::vector<float>{1, 3, 5, 2, 4, 6});
}

TEST_CASE("apply visits children before parents") {
  Net net(2, 2);
  std::vector<std::string> order;
  net.apply([&](nn::Module& m) { order.push_back(m.type_name()); });
  CHECK(order.front() == "Affine");
  CHECK(order.back() == "Net");
  CHECK(order.size() == net.named_modules().size());
}

TEST_CASE("StateDict keeps insertion order and refuses duplicate keys") {
  nn::StateDict sd{{"b", ones({1})}, {"a", zeros({1})}};
  sd.insert("c", ones({2}));
  CHECK(sd.keys() == std::vector<std::string>{"b", "a", "c"});
  CHECK_THROWS_WITH(sd.insert("a", ones({1})), doctest::Contains("\"a\" is already present"));
  CHECK(sd.erase("b"));
  CHECK(!sd.erase("b"));
  CHECK(sd.at("c").numel() == 2);
  CHECK_THROWS_AS(sd.at("b"), std::out_of_range);
  sd.set("a", ones({3}));
  CHECK(sd.keys() == std::vector<std::string>{"a", "c"});
  CHECK(sd.at("a").numel() == 3);
}

namespace {
struct Holder : nn::Module {};  // a parameter-free child, not a UnaryModule
struct Scale2 : nn::UnaryModule {
  Tensor w;
  explicit Scale2(double v) { w = register_parameter("w", full({1}, v)); }
  Tensor forward(const Tensor& x) override { return mul(x, w); }
};
}  // namespace

TEST_CASE("Module::replace_child: same name and place, containers re-pointed, refusals change nothing") {
  nn::Sequential seq{std::make_shared<Scale2>(2.0), std::make_shared<Scale2>(3.0)};
  const Tensor x = full({2}, 1.0);
  CHECK(seq.forward(x).to_vector<float>() == std::vector<float>{6, 6});
  auto old = seq.replace_child("1", std::make_shared<Scale2>(5.0));
  CHECK(std::dynamic_pointer_cast<Scale2>(old)->w.item() == 3.0);
  CHECK(seq.forward(x).to_vector<float>() == std::vector<float>{10, 10});  // forward uses the new one
  CHECK(seq.named_parameters()[1].first == "1.w");
  // A module that cannot run in the chain is refused before anything changes.
  CHECK_THROWS_WITH(seq.replace_child("0", std::make_shared<Holder>()), doctest::Contains("is not a UnaryModule"));
  CHECK(seq.forward(x).to_vector<float>() == std::vector<float>{10, 10});
  CHECK_THROWS_AS(seq.replace_child("2", std::make_shared<Scale2>(1.0)), std::out_of_range);
  CHECK_THROWS_WITH(seq.replace_child("0", nullptr), doctest::Contains("the module is null"));

  nn::ModuleList list({std::make_shared<Scale2>(1.0)});
  auto fresh = std::make_shared<Scale2>(7.0);
  list.replace_child("0", fresh);
  CHECK(list[0] == fresh);
  CHECK(list.child("0") == fresh);
}
