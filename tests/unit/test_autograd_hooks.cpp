// Post-accumulate-grad hooks (engine/autograd_hooks.h): once per leaf per backward, after the leaf's
// last contribution (a leaf used several times, shared by two branches), in reverse-of-forward
// order along a chain, never for leaves the backward does not reach, removed by their handle,
// and seeing the gradient the backward left (accumulated over earlier backward calls too).
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/autograd_hooks.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "tests/support/check.h"

using namespace rv;

namespace {
// What a hook saw: which leaf (by name) and the gradient's values at that moment.
struct Call {
  std::string leaf;
  std::vector<float> grad;
};
autograd::HookHandle record(const Tensor& t, const std::string& name, std::vector<Call>& calls) {
  return autograd::register_post_accumulate_grad_hook(
      t, [&calls, name](const Tensor& leaf) { calls.push_back({name, leaf.grad().to_vector<float>()}); });
}
}  // namespace

TEST_CASE("post-accumulate hook: a chain fires each leaf once, last layer first") {
  // y = ((x * w0) * w1) * w2: the backward reaches w2 first, then w1, then w0.
  Tensor x = full({3}, 2.0);
  std::vector<Tensor> w;
  for (int i = 0; i < 3; ++i) w.push_back(full({3}, double(i + 1)).requires_grad_());
  std::vector<Call> calls;
  std::vector<autograd::HookHandle> handles;
  const char* names[] = {"w0", "w1", "w2"};
  for (size_t i = 0; i < 3; ++i) handles.push_back(record(w[i], names[i], calls));
  Tensor y = mul(mul(mul(x, w[0]), w[1]), w[2]);
  sum(y).backward();
  REQUIRE(calls.size() == 3);
  CHECK(calls[0].leaf == "w2");
  CHECK(calls[1].leaf == "w1");
  CHECK(calls[2].leaf == "w0");
  // Each hook saw its final gradient: dy/dw2 = x w0 w1 = 4, dy/dw1 = x w0 w2 = 6, dy/dw0 = x w1 w2 = 12.
  CHECK(calls[0].grad == std::vector<float>{4, 4, 4});
  CHECK(calls[1].grad == std::vector<float>{6, 6, 6});
  CHECK(calls[2].grad == std::vector<float>{12, 12, 12});
}

TEST_CASE("post-accumulate hook: a leaf used several times fires once, after its last contribution") {
  Tensor w = full({2}, 3.0).requires_grad_();
  Tensor v = full({2}, 5.0).requires_grad_();
  std::vector<Call> calls;
  auto hw = record(w, "w", calls);
  auto hv = record(v, "v", calls);
  // w reaches the loss through three edges: mul(w, w) (two), and the later add with v * w (one).
  // v's branch is created last, so the engine runs it first; w's last gradient comes after.
  Tensor a = mul(w, w);                 // d/dw = 2w = 6
  Tensor b = mul(v, w);                 // d/dw = v = 5, d/dv = w = 3
  sum(add(a, b)).backward();
  REQUIRE(calls.size() == 2);
  CHECK(calls[0].leaf == "v");
  CHECK(calls[0].grad == std::vector<float>{3, 3});
  CHECK(calls[1].leaf == "w");
  CHECK(calls[1].grad == std::vector<float>{11, 11});  // the whole sum, not a part of it
  // A second backward: fires again, once, with the accumulated gradient.
  calls.clear();
  sum(mul(w, 2.0)).backward();
  REQUIRE(calls.size() == 1);
  CHECK(calls[0].leaf == "w");
  CHECK(calls[0].grad == std::vector<float>{13, 13});
}

TEST_CASE("post-accumulate hook: leaves the backward does not reach get no call; two hooks run in order") {
  Tensor used = full({2}, 1.0).requires_grad_();
  Tensor unused = full({2}, 1.0).requires_grad_();
  std::vector<std::string> order;
  auto h1 = autograd::register_post_accumulate_grad_hook(used, [&](const Tensor&) { order.push_back("first"); });
  auto h2 = autograd::register_post_accumulate_grad_hook(used, [&](const Tensor&) { order.push_back("second"); });
  auto h3 = autograd::register_post_accumulate_grad_hook(unused, [&](const Tensor&) { order.push_back("unused"); });
  Tensor keep = mul(unused, 2.0);  // a graph of its own, not part of the loss below
  sum(mul(used, 3.0)).backward();
  CHECK(order == std::vector<std::string>{"first", "second"});
  CHECK_FALSE(unused.grad().defined());
  // A backward from a leaf itself: its hooks fire too (the seed is its gradient).
  order.clear();
  used.backward(full({2}, 1.0));
  CHECK(order == std::vector<std::string>{"first", "second"});
}

TEST_CASE("post-accumulate hook: removed by its handle; a moved handle owns the hook") {
  Tensor w = full({2}, 1.0).requires_grad_();
  int fired = 0;
  {
    autograd::HookHandle h = autograd::register_post_accumulate_grad_hook(w, [&](const Tensor&) { ++fired; });
    autograd::HookHandle moved = std::move(h);
    h.remove();  // the moved-from handle no longer owns it: a no-op
    sum(w * 2.0).backward();
    CHECK(fired == 1);
  }  // `moved` goes: the hook goes
  sum(w * 2.0).backward();
  CHECK(fired == 1);
  autograd::HookHandle h = autograd::register_post_accumulate_grad_hook(w, [&](const Tensor&) { ++fired; });
  h.remove();
  h.remove();  // idempotent
  sum(w * 2.0).backward();
  CHECK(fired == 1);
  CHECK(w.grad().to_vector<float>() == std::vector<float>{6, 6});  // the gradients are unaffected throughout
}

TEST_CASE("post-accumulate hook: a dead tensor's hooks do not reach a new tensor at the same address") {
  int fired_old = 0, fired_new = 0;
  autograd::HookHandle old_handle;
  {
    Tensor old = full({2}, 1.0).requires_grad_();
    old_handle = autograd::register_post_accumulate_grad_hook(old, [&](const Tensor&) { ++fired_old; });
  }
  for (int i = 0; i < 8; ++i) {  // new tensors may reuse the freed impl's address
    Tensor t = full({2}, 1.0).requires_grad_();
    auto h = autograd::register_post_accumulate_grad_hook(t, [&](const Tensor&) { ++fired_new; });
    sum(t * 2.0).backward();
  }
  CHECK(fired_old == 0);
  CHECK(fired_new == 8);
  old_handle.remove();  // its tensor is gone: nothing to remove, no harm to others
}

TEST_CASE("post-accumulate hook: refused on non-leaves and tensors without requires_grad; exceptions propagate") {
  Tensor plain = full({2}, 1.0);
  Tensor w = full({2}, 1.0).requires_grad_();
  Tensor y = mul(w, 2.0);
  auto noop = [](const Tensor&) {};
  CHECK_THROWS_WITH_AS((void)autograd::register_post_accumulate_grad_hook(plain, noop),
                       doctest::Contains("a tensor that does not require grad"), std::invalid_argument);
  CHECK_THROWS_WITH_AS((void)autograd::register_post_accumulate_grad_hook(y, noop),
                       doctest::Contains("a non-leaf"), std::invalid_argument);
  auto h = autograd::register_post_accumulate_grad_hook(
      w, [](const Tensor&) { throw std::runtime_error("hook says no"); });
  CHECK_THROWS_WITH_AS(sum(y).backward(), doctest::Contains("hook says no"), std::runtime_error);
}
