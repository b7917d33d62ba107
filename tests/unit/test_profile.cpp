// test_profile.cpp: the engine's counters (engine/profile/): the MACs each product op reports
// to an OpCounter, against the formula for known shapes (odd sizes, broadcasting, vectors,
// groups, strides, transposed convolution, both attention kernels), nesting and thread
// locality of counters; and the live / peak bytes of tensor storage in memory_stats.
#include <thread>

#include "engine/autograd.h"
#include "engine/cpu/parallel.h"
#include "engine/nn/attention.h"
#include "engine/ops/attention.h"
#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/matmul.h"
#include "engine/profile/memory_stats.h"
#include "engine/profile/op_counter.h"
#include "engine/rng.h"
#include "engine/storage.h"
#include "tests/support/check.h"

using namespace rv;
using profile::OpCounter;

namespace {
Tensor t(const Shape& s, uint64_t seed = 1) { return test::test_tensor(s, seed); }
}  // namespace

TEST_CASE("op_counter: matmul counts batch * M * N * K, with broadcasting and vectors") {
  OpCounter c;
  matmul(t({2, 3, 5, 7}), t({7, 4}));  // batch 6, (5x7)(7x4)
  CHECK(c.macs() == 6 * 5 * 4 * 7);
  c.reset();
  matmul(t({1, 5, 7}), t({3, 7, 4}));  // batch broadcasts to 3
  CHECK(c.macs() == 3 * 5 * 4 * 7);
  c.reset();
  matmul(t({7}), t({7}));  // dot
  CHECK(c.macs() == 7);
  c.reset();
  matmul(t({7}), t({2, 7, 3}));  // row vector times a batch
  CHECK(c.macs() == 2 * 3 * 7);
  c.reset();
  matmul(t({2, 5, 7}), t({7}));  // matrix times a column
  CHECK(c.macs() == 2 * 5 * 7);
  c.reset();
  matmul(test::test_noncontiguous({3, 7, 5}, 2).transpose(-2, -1), t({3, 7, 2}));  // transposed view
  CHECK(c.macs() == 3 * 5 * 2 * 7);
  c.reset();
  matmul(t({0, 5, 7}), t({7, 4}));  // empty batch
  CHECK(c.macs() == 0);
  CHECK(c.calls_of("matmul") == 1);
}

TEST_CASE("op_counter: linear counts rows * in * out, bias free") {
  OpCounter c;
  linear(t({2, 3, 7}), t({5, 7}), t({5}));
  linear(t({4, 7}), t({5, 7}));
  CHECK(c.macs() == (6 + 4) * 7 * 5);
  CHECK(c.macs_of("linear") == c.macs());
  CHECK(c.calls_of("linear") == 2);
  CHECK(c.macs_of("matmul") == 0);
}

TEST_CASE("op_counter: conv2d counts B * O * Ho * Wo * C/groups * KH * KW") {
  OpCounter c;
  Tensor y = conv2d(t({2, 3, 9, 11}), t({4, 3, 3, 2}), t({4}), {2, 1}, {1, 0});  // Ho 5, Wo 10
  REQUIRE(y.shape() == Shape{2, 4, 5, 10});
  CHECK(c.macs() == 2 * 4 * 5 * 10 * 3 * 3 * 2);
  c.reset();
  y = conv2d(t({1, 4, 6, 6}), t({6, 2, 3, 3}), Tensor(), {1, 1}, {1, 1}, {1, 1}, /*groups=*/2);
  CHECK(c.macs() == 1 * 6 * 6 * 6 * 2 * 3 * 3);
  c.reset();
  y = conv2d(t({2, 3, 32, 48}), t({8, 3, 16, 16}), t({8}), {16, 16});  // the patch-embed path
  REQUIRE(y.shape() == Shape{2, 8, 2, 3});
  CHECK(c.macs() == 2 * 8 * 2 * 3 * 3 * 16 * 16);
  CHECK(c.macs_of("conv2d") == c.macs());
}

TEST_CASE("op_counter: conv_transpose2d counts B * C * H * W * O/groups * KH * KW (per input pixel)") {
  OpCounter c;
  Tensor y = conv_transpose2d(t({2, 4, 5, 3}), t({4, 3, 2, 2}), t({6}), {2, 2}, {0, 0}, {0, 0}, {1, 1}, /*groups=*/2);
  REQUIRE(y.shape() == Shape{2, 6, 10, 6});
  CHECK(c.macs() == 2 * 4 * 5 * 3 * 3 * 2 * 2);
  CHECK(c.macs_of("conv_transpose2d") == c.macs());
}

TEST_CASE("op_counter: attention counts B * NH * Nq * Nk * (HD + HDv) in both kernels") {
  const int64_t B = 2, NH = 3, Nq = 5, Nk = 20, HD = 8, HDv = 4;
  Tensor q = t({B, NH, Nq, HD}, 1), k = t({B, NH, Nk, HD}, 2), v = t({B, NH, Nk, HDv}, 3);
  for (AttentionImpl impl : {AttentionImpl::reference, AttentionImpl::fused}) {
    CAPTURE(int(impl));
    OpCounter c;
    scaled_dot_product_attention(q, k, v, Tensor(), Tensor(), std::nullopt, impl);
    CHECK(c.macs() == B * NH * Nq * Nk * (HD + HDv));
    CHECK(c.macs_of("scaled_dot_product_attention") == c.macs());
  }
}

TEST_CASE("op_counter: nn::Attention counts the same whether fused or spelt out (attention dropout)") {
  Generator gen(3);
  const int64_t B = 2, N = 17, C = 24, NH = 4;
  nn::Attention attn(C, NH, gen, /*qkv_bias=*/true, /*attn_drop=*/0.1);
  nn::set_generator(attn, std::make_shared<Generator>(5));
  Tensor x = t({B, N, C});
  const int64_t expected = B * N * C * 3 * C + B * N * C * C + 2 * B * NH * N * N * (C / NH);
  attn.eval();  // fused scaled_dot_product_attention
  {
    OpCounter c;
    attn.forward(x);
    CHECK(c.macs() == expected);
    CHECK(c.macs_of("matmul") == 0);
  }
  attn.train();  // matmul, softmax, dropout, matmul
  {
    OpCounter c;
    attn.forward(x);
    CHECK(c.macs() == expected);
    CHECK(c.macs_of("matmul") == 2 * B * NH * N * N * (C / NH));
  }
}

TEST_CASE("op_counter: elementwise ops are free; by_op keeps first-run order") {
  OpCounter c;
  Tensor a = t({4, 6}), w = t({3, 6});
  Tensor y = add(a, a) * a;
  CHECK(c.macs() == 0);
  linear(a, w);
  matmul(a, w.t());
  linear(a, w);
  auto ops = c.by_op();
  REQUIRE(ops.size() == 2);
  CHECK(ops[0].first == "linear");
  CHECK(ops[0].second == 2 * 4 * 6 * 3);
  CHECK(ops[1].first == "matmul");
  CHECK(ops[1].second == 4 * 6 * 3);
}

TEST_CASE("op_counter: counters nest, start at zero, and count only their own thread") {
  Tensor a = t({4, 6}), w = t({3, 6});
  linear(a, w);  // before any counter: counted nowhere
  OpCounter outer;
  CHECK(outer.macs() == 0);
  linear(a, w);
  {
    OpCounter inner;
    linear(a, w);
    CHECK(inner.macs() == 72);
  }
  CHECK(outer.macs() == 2 * 72);
  std::thread other([&] { linear(a, w); });  // another thread's ops are not this thread's
  other.join();
  CHECK(outer.macs() == 2 * 72);
  int64_t seen_there = -1;
  std::thread counting([&] {
    OpCounter there;
    linear(a, w);
    seen_there = there.macs();
  });
  counting.join();
  CHECK(seen_there == 72);
  CHECK(outer.macs() == 2 * 72);
}

TEST_CASE("memory_stats: allocations and frees of storage move the live bytes") {
  const auto s0 = profile::memory_stats();
  {
    Tensor a = empty({1000}, DType::f32);
    Tensor b = empty({3, 5}, DType::f64);
    auto s1 = profile::memory_stats();
    CHECK(s1.live_bytes - s0.live_bytes == 4000 + 120);
    CHECK(s1.live_storages - s0.live_storages == 2);
    CHECK(s1.allocations - s0.allocations == 2);
    Tensor v = a.view({10, 100}).transpose(0, 1).narrow(0, 1, 3);  // views allocate nothing
    CHECK(profile::memory_stats().live_bytes == s1.live_bytes);
    Tensor c = empty({0}, DType::f32);  // empty: counted as 0 bytes, one storage
    CHECK(profile::memory_stats().live_bytes == s1.live_bytes);
    CHECK(profile::memory_stats().live_storages == s1.live_storages + 1);
  }
  auto s2 = profile::memory_stats();
  CHECK(s2.live_bytes == s0.live_bytes);
  CHECK(s2.live_storages == s0.live_storages);
  CHECK(s2.allocations == s0.allocations + 3);
}

TEST_CASE("memory_stats: wrapped memory is not counted") {
  static float buffer[64];
  const auto s0 = profile::memory_stats();
  bool released = false;
  {
    auto st = Storage::wrap(buffer, sizeof buffer, [&](void*) { released = true; });
    CHECK(profile::memory_stats().live_bytes == s0.live_bytes);
    CHECK(profile::memory_stats().allocations == s0.allocations);
  }
  CHECK(released);
  CHECK(profile::memory_stats().live_bytes == s0.live_bytes);
}

TEST_CASE("memory_stats: the peak since reset_peak_memory") {
  Tensor keep = empty({256});
  profile::reset_peak_memory();
  const int64_t base = profile::memory_stats().live_bytes;
  CHECK(profile::memory_stats().peak_bytes == base);
  {
    Tensor big = empty({1 << 18});  // 1 MiB
    Tensor more = empty({1 << 16});
  }
  Tensor after = empty({1 << 17});
  auto s = profile::memory_stats();
  CHECK(s.peak_bytes == base + (int64_t(1) << 20) + (int64_t(1) << 18));
  CHECK(s.live_bytes == base + (int64_t(1) << 19));
  profile::reset_peak_memory();
  CHECK(profile::memory_stats().peak_bytes == base + (int64_t(1) << 19));
}

TEST_CASE("memory_stats: a recorded forward keeps its saved tensors alive until backward") {
  Tensor w = t({64, 32});
  w.requires_grad_(true);
  Tensor x = t({10, 32});
  const int64_t before = profile::memory_stats().live_bytes;
  Tensor y = linear(x, w);  // saves x and w (aliases): only y is new
  CHECK(profile::memory_stats().live_bytes - before == 10 * 64 * 4);
  y.backward(ones({10, 64}));  // adds w.grad
  y = Tensor();
  CHECK(profile::memory_stats().live_bytes - before == 64 * 32 * 4);
}

TEST_CASE("memory_stats: counts are exact when threads allocate and free at once") {
  const auto s0 = profile::memory_stats();
  const int64_t n = 4000;
  cpu::parallel_for(n, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      Tensor a = empty({1 + i % 7});
      Tensor c = empty({3});
    }
  });
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([] {
      for (int i = 0; i < 2000; ++i) Tensor a = empty({i % 13});
    });
  for (auto& th : threads) th.join();
  auto s1 = profile::memory_stats();
  CHECK(s1.live_bytes == s0.live_bytes);
  CHECK(s1.live_storages == s0.live_storages);
  CHECK(s1.allocations == s0.allocations + 2 * n + 4 * 2000);
  CHECK(s1.peak_bytes >= s0.live_bytes);
}
