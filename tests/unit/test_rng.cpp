// test_rng.cpp: the random tensor factories (engine/rng.cpp).
//
// Two kinds of checks:
//   - pinned values: a few numbers of each generator, recorded from the implementation that
//     computed every word from its own Philox block (before the factories computed each block
//     once). Checkpoints, fixtures and tests depend on these streams, so any change to what a
//     seed produces must fail here, loudly, rather than shift every random init silently.
//   - a plain reference loop: every element recomputed alone from philox_word (one block per
//     word), compared bit for bit with the factories, on sizes that span several tiles and
//     threads and on offsets that do not start at a block boundary.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <vector>

#include "engine/rng.h"

namespace rv {
namespace {

std::vector<double> values_f64(const Tensor& t) {
  Tensor c = t.to(DType::f64).contiguous();
  const double* p = c.data<double>();
  return std::vector<double>(p, p + c.numel());
}

// Exact for the integer-derived streams (rand, uniform, bernoulli); for randn and trunc_normal
// (log, cos, erf in libm) a few ulps, so that another libm's last-bit rounding still passes
// while a different stream (a different number entirely) fails.
void check_pinned(const Tensor& t, const std::vector<double>& expected, double rel) {
  std::vector<double> got = values_f64(t);
  REQUIRE(got.size() == expected.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", pinned " << expected[i]);
    CHECK(std::abs(got[i] - expected[i]) <= rel * std::abs(expected[i]));
  }
}

}  // namespace

TEST_CASE("philox_words: each word equals philox_word, for any start and length") {
  for (uint64_t first : {uint64_t(0), uint64_t(1), uint64_t(2), uint64_t(3), uint64_t(4), uint64_t(125),
                         (uint64_t(1) << 32) - 3, ~uint64_t(0) - 200}) {
    for (int64_t count : {0, 1, 3, 4, 5, 127, 128, 129, 131, 600}) {
      // a sentinel past the end catches a write beyond count
      std::vector<uint32_t> w(size_t(count) + 1, 0xDEADBEEFu);
      philox_words(0x123456789ABCDEFull, 0xFEDCBA987654321ull, first, count, w.data());
      for (int64_t j = 0; j < count; ++j) {
        INFO("first " << first << " count " << count << " word " << j);
        CHECK(w[size_t(j)] == philox_word(0x123456789ABCDEFull, 0xFEDCBA987654321ull, first + uint64_t(j)));
      }
      CHECK(w[size_t(count)] == 0xDEADBEEFu);
    }
  }
}

TEST_CASE("pinned values of every generator (f64, so the double each element is computed in)") {
  SUBCASE("words") {
    const uint32_t pinned[6] = {0xd6937fa4u, 0x528bdcfau, 0x2f135adcu, 0x03e5825bu, 0x05f9e21cu, 0x425c3e45u};
    for (int i = 0; i < 6; ++i) CHECK(philox_word(42, 7, 1000 + uint64_t(i)) == pinned[i]);
  }
  SUBCASE("rand, and a second draw from the same generator") {
    Generator g(42);
    check_pinned(rand({6}, g, DType::f64),
                 {0x1.39d5ep-1, 0x1.dfd524p-2, 0x1.2bf5p-4, 0x1.5d0accp-2, 0x1.f9b642p-1, 0x1.4ee9bp-2}, 0);
    CHECK(g.offset() == 8);  // 6 words, rounded up to whole blocks
    check_pinned(rand({3}, g, DType::f64), {0x1.a6d804p-1, 0x1.510ebap-1, 0x1.349adap-1}, 0);
  }
  SUBCASE("randn, from offset 0 and from an odd offset (pairs straddle blocks)") {
    Generator g(42, 7);
    check_pinned(randn({5}, g, DType::f64),
                 {0x1.10adba649d66dp+0, -0x1.5120683667039p-1, -0x1.50833f5f254bbp-2, 0x1.f917b638037a2p-2,
                  0x1.d170e6899d524p+0},
                 1e-14);
    g.set_offset(1);
    check_pinned(randn({3}, g, DType::f64), {-0x1.aa59967ca9e12p-2, 0x1.2fdc66659a06fp+0, -0x1.4bce91838a56p+0},
                 1e-14);
    Generator g32(42);
    check_pinned(randn({4}, g32), {-0x1.f0bcb8p-1, -0x1.3c51a4p+0, -0x1.2bc06p-4, -0x1.1b4e66p+0}, 1e-7);
  }
  SUBCASE("uniform") {
    Generator g(1234);
    check_pinned(uniform({4}, -2.0, 3.0, g, DType::f64),
                 {-0x1.5d2c81p+0, 0x1.223858p+1, -0x1.57f06p-1, 0x1.faf363p+0}, 0);
  }
  SUBCASE("trunc_normal") {
    Generator g(5);
    check_pinned(trunc_normal({4}, 0.0, 0.02, -0.04, 0.04, g, DType::f64),
                 {0x1.c2118c97a8aecp-7, -0x1.b8c8e85150836p-6, 0x1.222ca1db22639p-5, 0x1.052acfe920c9p-5}, 1e-14);
    Generator g2(9);
    g2.set_offset(2);
    check_pinned(trunc_normal({4}, 1.0, 2.0, -2.0, 2.0, g2, DType::f64),
                 {0x1.bda705bd27254p+0, 0x1.3fea2c754c92ep+0, 0x1.2ef5a546def67p-3, 0x1.76081197bd88bp-2}, 1e-14);
  }
  SUBCASE("bernoulli") {
    Generator g(77);
    check_pinned(bernoulli({12}, 0.3, g, DType::f64), {1, 1, 0, 0, 1, 0, 0, 0, 1, 1, 1, 0}, 0);
  }
}

TEST_CASE("every generator equals a per-element reference loop, bit for bit") {
  // The reference: element i alone, each word from its own block (the original formulation).
  const uint64_t seed = 2024, stream = 3;
  auto u = [&](uint64_t w) { return double(philox_uniform(seed, stream, w)); };
  auto normal = [&](uint64_t w0) {
    double u1 = (double(philox_word(seed, stream, w0)) + 1.0) / 4294967296.0;
    double u2 = double(philox_word(seed, stream, w0 + 1)) / 4294967296.0;
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2);
  };
  struct Gen {
    const char* name;
    int words_per_element;
    std::function<Tensor(const Shape&, Generator&, DType)> make;
    std::function<double(uint64_t first_word)> expect;
  };
  const std::vector<Gen> gens = {
      {"rand", 1, [](const Shape& s, Generator& g, DType d) { return rand(s, g, d); }, u},
      {"uniform", 1, [](const Shape& s, Generator& g, DType d) { return uniform(s, -0.5, 4.0, g, d); },
       [&](uint64_t w) { return -0.5 + (4.0 - -0.5) * u(w); }},
      {"randn", 2, [](const Shape& s, Generator& g, DType d) { return randn(s, g, d); }, normal},
      {"bernoulli", 1, [](const Shape& s, Generator& g, DType d) { return bernoulli(s, 0.7, g, d); },
       [&](uint64_t w) { return u(w) < 0.7 ? 1.0 : 0.0; }},
      // trunc_normal's inverse CDF is internal to rng.cpp: the reference is the same factory
      // drawing element i alone (a one-element tensor at offset first + i), which checks that
      // tiling and threads give every element its own word (the pins check the formula).
      {"trunc_normal", 1,
       [](const Shape& s, Generator& g, DType d) { return trunc_normal(s, 1.0, 2.0, -1.0, 7.0, g, d); },
       [&](uint64_t w) {
         Generator one(seed, stream);
         one.set_offset(w);
         return trunc_normal({1}, 1.0, 2.0, -1.0, 7.0, one, DType::f64).data<double>()[0];
       }},
  };
  for (const Gen& gen : gens) {
    for (DType dt : {DType::f64, DType::f32}) {
      // 0 and 1 elements, one tile and one past, several tiles across the threads
      for (int64_t n : {0, 1, 7, 256, 257, 10007}) {
        for (uint64_t start : {uint64_t(0), uint64_t(1), uint64_t(3), uint64_t(4098)}) {
          INFO(gen.name << " " << (dt == DType::f64 ? "f64" : "f32") << " n=" << n << " offset=" << start);
          Generator g(seed, stream);
          g.set_offset(start);
          std::vector<double> got = values_f64(gen.make({n}, g, dt));
          REQUIRE(got.size() == size_t(n));
          int64_t bad = -1;
          for (int64_t i = 0; i < n && bad < 0; ++i) {
            double e = gen.expect(start + uint64_t(gen.words_per_element) * uint64_t(i));
            if (dt == DType::f32) e = double(float(e));
            if (std::memcmp(&e, &got[size_t(i)], sizeof e) != 0) bad = i;
          }
          CHECK_MESSAGE(bad < 0, "first differing element " << bad);
        }
      }
    }
  }
}

TEST_CASE("draws advance the generator by whole blocks and do not overlap") {
  Generator g(11);
  Tensor a = rand({5}, g);  // words 0..4, reserve 8
  CHECK(g.offset() == 8);
  Tensor b = randn({3}, g);  // 6 words, reserve 8
  CHECK(g.offset() == 16);
  // b's first element is Box-Muller on words 8 and 9
  double u1 = (double(philox_word(11, 0, 8)) + 1.0) / 4294967296.0, u2 = double(philox_word(11, 0, 9)) / 4294967296.0;
  CHECK(b.data<float>()[0] == float(std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * M_PI * u2)));
  Tensor e = randn({0}, g);
  CHECK(e.numel() == 0);
  CHECK(g.offset() == 16);
}

}  // namespace rv
