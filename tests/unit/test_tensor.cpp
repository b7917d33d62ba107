// Tensor basics: factories, metadata, views sharing storage, copies and dtype conversion.
#include <cmath>

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "tests/support/check.h"

using namespace rv;

TEST_CASE("factories fill values and report metadata") {
  Tensor z = zeros({2, 3});
  CHECK(z.shape() == Shape{2, 3});
  CHECK(z.strides() == Shape{3, 1});
  CHECK(z.numel() == 6);
  CHECK(z.dtype() == DType::f32);
  CHECK(z.is_contiguous());
  for (float v : z.to_vector<float>()) CHECK(v == 0.0f);
  Tensor f = full({4}, 2.5, DType::f64);
  for (double v : f.to_vector<double>()) CHECK(v == 2.5);
  CHECK(arange(5).to_vector<int64_t>() == std::vector<int64_t>{0, 1, 2, 3, 4});
  CHECK(arange(0.0, 1.0, 0.25).to_vector<float>() == std::vector<float>{0, 0.25f, 0.5f, 0.75f});
  CHECK(scalar_tensor(3.0).dim() == 0);
  CHECK(scalar_tensor(3.0).item() == 3.0);
  CHECK(empty({0, 4}).numel() == 0);
  CHECK_THROWS_WITH_AS(empty({-1}), doctest::Contains("negative size"), std::invalid_argument);
}

TEST_CASE("views share storage and compute strides") {
  Tensor x = arange(0.0, 24.0, 1.0).view({2, 3, 4});
  Tensor p = x.permute({2, 0, 1});
  CHECK(p.shape() == Shape{4, 2, 3});
  CHECK(p.strides() == Shape{1, 12, 4});
  CHECK(!p.is_contiguous());
  CHECK(p.storage() == x.storage());
  Tensor n = x.narrow(1, 1, 2);
  CHECK(n.shape() == Shape{2, 2, 4});
  CHECK(n.offset() == 4);
  CHECK(n.contiguous().to_vector<float>() ==
        std::vector<float>{4, 5, 6, 7, 8, 9, 10, 11, 16, 17, 18, 19, 20, 21, 22, 23});
  Tensor s = x.select(2, -1);
  CHECK(s.shape() == Shape{2, 3});
  CHECK(s.contiguous().to_vector<float>() == std::vector<float>{3, 7, 11, 15, 19, 23});
  Tensor st = x.slice(2, 0, 4, 2);
  CHECK(st.strides() == Shape{12, 4, 2});
  CHECK(st.contiguous().to_vector<float>()[1] == 2.0f);
  Tensor e = arange(0.0, 3.0, 1.0).view({3, 1}).expand({3, 4});
  CHECK(e.strides() == Shape{1, 0});
  CHECK(e.contiguous().to_vector<float>() == std::vector<float>{0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2});
  CHECK(x.unsqueeze(0).shape() == Shape{1, 2, 3, 4});
  CHECK(x.unsqueeze(-1).shape() == Shape{2, 3, 4, 1});
  CHECK(x.unsqueeze(0).squeeze(0).shape() == Shape{2, 3, 4});
  CHECK(x.flatten(1).shape() == Shape{2, 12});
  CHECK(x.view({-1, 4}).shape() == Shape{6, 4});
  // a transposed tensor cannot be viewed flat, but can be reshaped (a copy)
  CHECK_THROWS_WITH(x.transpose(0, 2).view({24}), doctest::Contains("without a copy"));
  Tensor r = x.transpose(0, 2).reshape({24});
  CHECK(r.storage() != x.storage());
  CHECK(r.to_vector<float>()[1] == 12.0f);
  // a view that splits a dim of a permuted tensor keeps sharing storage
  Tensor q = x.permute({1, 0, 2}).view({3, 2, 2, 2});
  CHECK(q.storage() == x.storage());
  CHECK(q.contiguous().to_vector<float>()[4] == 12.0f);
}

TEST_CASE("view errors name the op and the shapes") {
  Tensor x = zeros({2, 3});
  CHECK_THROWS_WITH(x.view({4, 2}), doctest::Contains("[4, 2]"));
  CHECK_THROWS_WITH(x.permute({0, 0}), doctest::Contains("repeated"));
  CHECK_THROWS_WITH(x.narrow(1, 2, 2), doctest::Contains("exceeds"));
  CHECK_THROWS_WITH(x.expand({3, 3}), doctest::Contains("cannot expand"));
  CHECK_THROWS_WITH(x.select(0, 2), doctest::Contains("out of range"));
  CHECK_THROWS_WITH(x.size(2), doctest::Contains("out of range"));
}

TEST_CASE("copy_ broadcasts and converts; in-place writes are visible through views") {
  Tensor x = zeros({2, 3});
  x.narrow(1, 1, 1).copy_(from_vector(std::vector<float>{5, 6}, {2, 1}));
  CHECK(x.to_vector<float>() == std::vector<float>{0, 5, 0, 0, 6, 0});
  x.select(0, 1).fill_(1.5);
  CHECK(x.to_vector<float>() == std::vector<float>{0, 5, 0, 1.5f, 1.5f, 1.5f});
  Tensor i = x.to(DType::i64);
  CHECK(i.to_vector<int64_t>() == std::vector<int64_t>{0, 5, 0, 1, 1, 1});
  Tensor b = x.to(DType::boolean);
  CHECK(b.to_double_vector() == std::vector<double>{0, 1, 0, 1, 1, 1});
}

TEST_CASE("bf16 and f16 round to nearest even like PyTorch") {
  // 1 + 2^-8 is halfway between two bf16 values (1 and 1 + 2^-7): ties go to even (1).
  CHECK(bf16_to_float(float_to_bf16(1.0f + 1.0f / 256)) == 1.0f);
  CHECK(bf16_to_float(float_to_bf16(1.0f + 3.0f / 256)) == 1.0f + 4.0f / 256);
  CHECK(bf16_to_float(float_to_bf16(3.14159265f)) == 3.140625f);
  CHECK(std::isnan(bf16_to_float(float_to_bf16(NAN))));
  CHECK(f16_to_float(float_to_f16(1.0f + 1.0f / 2048)) == 1.0f);          // tie -> even
  CHECK(f16_to_float(float_to_f16(1.0f + 3.0f / 2048)) == 1.0f + 2.0f / 1024);
  CHECK(f16_to_float(float_to_f16(65504.0f)) == 65504.0f);
  CHECK(std::isinf(f16_to_float(float_to_f16(65520.0f))));
  CHECK(f16_to_float(float_to_f16(65519.0f)) == 65504.0f);
  CHECK(f16_to_float(float_to_f16(5.960464477539063e-08f)) == 5.960464477539063e-08f);  // smallest subnormal
  CHECK(f16_to_float(float_to_f16(2.9802322387695312e-08f)) == 0.0f);  // half of it: tie -> even (0)
  CHECK(f16_to_float(float_to_f16(-2.0f)) == -2.0f);
  // every f16 bit pattern survives f16 -> f32 -> f16
  for (uint32_t h = 0; h < 65536; ++h) {
    float f = f16_to_float(uint16_t(h));
    if (std::isnan(f)) continue;
    REQUIRE(float_to_f16(f) == h);
  }
  // float64 -> bf16 rounds through float32, as PyTorch does (c10::BFloat16 is built from a
  // float): 1 + 2^-8 + 2^-40 becomes the f32 tie 1 + 2^-8, which then rounds to even, 1.0.
  CHECK(from_vector(std::vector<double>{1.0 + 1.0 / 256 + std::ldexp(1.0, -40)}, {1}, DType::f64)
            .to(DType::bf16).item() == 1.0);
  Tensor x = from_vector(std::vector<float>{1.0f, 2.5f, -0.1f}, {3});
  CHECK(x.to(DType::bf16).to(DType::f32).to_vector<float>()[2] == bf16_to_float(float_to_bf16(-0.1f)));
}

TEST_CASE("printing shows values, shape and dtype") {
  Tensor x = from_vector(std::vector<float>{1.0f, -2.5f, 3.0f, 4.0f}, {2, 2});
  std::string s = x.str();
  CHECK(s == "tensor([[ 1.0000, -2.5000],\n        [ 3.0000,  4.0000]], shape=[2, 2], dtype=float32)");
  CHECK(arange(3).str() == "tensor([0, 1, 2], shape=[3], dtype=int64)");
  CHECK(zeros({2000}).str().find("...") != std::string::npos);
}
