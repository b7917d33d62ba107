// test_rope.cpp: the rotary embedding kernels (cuda/kernels/rope.cu) against the CPU ops of
// engine/ops/rope.cpp: rope_apply forward and backward (x and angles, through autograd on cuda),
// q and k rotated in one launch, rope_angles and its backward; ViT (CLS skipped), Swin windows,
// tiny and long token counts, shared and per-head angles, strided q/k views of a qkv tensor, bf16.
// Skipped (exit 77) without a GPU.
//
// Tolerances, and why:
//   rope_angles forward and backward: bit for bit (rtol 0, atol 0): same f32 roundings without
//     FMA forward; the backward sums exact f32 x f32 products in double in the CPU's order.
//   rope_apply f32, values and dx: rtol 1e-5, atol 1e-6. cos/sin come from double rounded to f32
//     (the CPU's cosf/sinf may differ in the last bit in rare cases) and either side may fuse the
//     rotation's multiply-add into an FMA: a few f32 ulps.
//   rope_apply bf16: rtol 8e-3 (one bf16 ulp, 2^-7): the f32 results agree to a few ulps, so the
//     one rounding to bf16 can at most land on the neighbouring value.
//   dangles: atol 1e-5, rtol 1e-5: sums of a few hundred terms in double of products that carry
//     the f32 ulps above. dfreqs through rope_angles: rtol 1e-4, atol 1e-3 (dangles times
//     positions up to 13, summed over 196 tokens).
#include <doctest/doctest.h>

#include <functional>
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/rope.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

const Device kDev = cuda_device(0);

struct Case {
  const char* what;
  int64_t B, NH, N, HD, skip;
  bool shared;  // angles (1, N - skip, HD/2)
};

// The shapes every rope_apply test runs on.
const Case kCases[] = {
    {"ViT-like, CLS skipped", 2, 3, 197, 64, 1, false},
    {"ViT-like, shared angles", 2, 3, 197, 64, 1, true},
    {"Swin window", 5, 4, 49, 32, 0, false},
    {"Swin window, shared", 5, 4, 49, 32, 0, true},
    {"HD 8 tiny, 7 tokens", 3, 2, 7, 8, 0, false},
    {"HD 2, one pair", 1, 3, 7, 2, 0, true},
    {"one token", 2, 2, 1, 16, 0, false},
    {"only the CLS token", 2, 2, 1, 16, 1, false},
    {"1000 tokens", 1, 2, 1000, 16, 1, true},
    {"4097 tokens", 1, 1, 4097, 8, 1, false},
    {"empty batch", 0, 2, 5, 8, 0, false},
};

Tensor angles_for(const Case& c, uint64_t seed) {
  return test::test_tensor({c.shared ? 1 : c.NH, c.N - c.skip, c.HD / 2}, seed, DType::f32, -4.0, 4.0);
}

// CPU reference of out = rope_apply(x, a, skip) and the gradients of sum(out * w).
struct Ref {
  Tensor out, dx, da;
};
Ref cpu_ref(const Tensor& x, const Tensor& a, const Tensor& w, int64_t skip) {
  Tensor xl = x.clone().requires_grad_(), al = a.clone().requires_grad_();
  Tensor out = rope_apply(xl, al, skip);
  out.backward(w);
  return {out.detach(), xl.grad(), al.grad()};
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("rope_apply on cuda: forward and autograd backward equal the CPU, f32, every shape") {
  for (const Case& c : kCases) {
    CAPTURE(c.what);
    const Tensor x = test::test_tensor({c.B, c.NH, c.N, c.HD}, 1);
    const Tensor a = angles_for(c, 2);
    const Tensor w = test::test_tensor({c.B, c.NH, c.N, c.HD}, 3);
    const Ref ref = cpu_ref(x, a, w, c.skip);

    Tensor xd = x.cuda().requires_grad_(), ad = a.cuda().requires_grad_();
    Tensor out = rope_apply(xd, ad, c.skip);
    CHECK(out.device() == kDev);
    CHECK(out.is_contiguous());
    RV_EXPECT_CLOSE(out.cpu(), ref.out, .rtol = 1e-5, .atol = 1e-6);
    out.backward(w.cuda());
    REQUIRE(xd.grad().defined());
    REQUIRE(ad.grad().defined());
    CHECK(xd.grad().device() == kDev);
    CHECK(ad.grad().device() == kDev);
    RV_EXPECT_CLOSE(xd.grad().cpu(), ref.dx, .rtol = 1e-5, .atol = 1e-6);
    RV_EXPECT_CLOSE(ad.grad().cpu(), ref.da, .rtol = 1e-5, .atol = 1e-5);
    if (c.skip > 0 && c.B > 0) {  // CLS: the value and its gradient pass through unchanged
      RV_EXPECT_CLOSE(out.cpu().narrow(2, 0, c.skip), x.narrow(2, 0, c.skip), .rtol = 0, .atol = 0);
      RV_EXPECT_CLOSE(xd.grad().cpu().narrow(2, 0, c.skip), w.narrow(2, 0, c.skip), .rtol = 0, .atol = 0);
    }
  }
}

TEST_CASE("rope_apply on cuda: q and k as strided views of a (B, N, 3, NH, HD) qkv tensor") {
  const int64_t B = 2, N = 197, NH = 3, HD = 64, skip = 1;
  const Tensor qkv = test::test_tensor({B, N, 3, NH, HD}, 4);
  const Tensor qkv_d = qkv.cuda();
  const Tensor a = test::test_tensor({NH, N - skip, HD / 2}, 5, DType::f32, -4.0, 4.0);
  const Tensor w = test::test_tensor({B, NH, N, HD}, 6);
  for (int64_t part : {0, 1}) {
    CAPTURE(part);
    const Tensor x = qkv.select(2, part).permute({0, 2, 1, 3});    // (B, NH, N, HD), strided
    const Tensor xd = qkv_d.select(2, part).permute({0, 2, 1, 3});  // the same view on the device
    REQUIRE(!xd.is_contiguous());
    const Ref ref = cpu_ref(x, a, w, skip);
    // angles requiring grad: the angle gradient reads the strided x saved on the device
    Tensor ad = a.cuda().requires_grad_();
    Tensor out = rope_apply(xd, ad, skip);
    RV_EXPECT_CLOSE(out.cpu(), ref.out, .rtol = 1e-5, .atol = 1e-6);
    out.backward(w.cuda());
    RV_EXPECT_CLOSE(ad.grad().cpu(), ref.da, .rtol = 1e-5, .atol = 1e-5);
    // dx from a strided gradient (the same layout as x): the inverse rotation reads views too
    const Tensor gd = qkv_d.select(2, 2).permute({0, 2, 1, 3});
    const Ref ref_g = cpu_ref(x, a, qkv.select(2, 2).permute({0, 2, 1, 3}).contiguous(), skip);
    RV_EXPECT_CLOSE(backend::get(kDev).rope_rotate(gd, a.cuda(), skip, true).cpu(), ref_g.dx, .rtol = 1e-5,
                    .atol = 1e-6);
  }
}

TEST_CASE("rope_apply on cuda: unaligned views (odd offset) and a non-contiguous channel dim") {
  const Case c{"odd", 2, 3, 9, 8, 1, false};
  const int64_t n = c.B * c.NH * c.N * c.HD;
  const Tensor a = angles_for(c, 8), w = test::test_tensor({c.B, c.NH, c.N, c.HD}, 9);
  SUBCASE("offset 1: the pair loads fall back to scalar loads") {
    const Tensor flat = test::test_tensor({n + 1}, 7);
    const Shape st = {c.NH * c.N * c.HD, c.N * c.HD, c.HD, 1};
    const Tensor x = flat.as_strided({c.B, c.NH, c.N, c.HD}, st, 1);
    const Tensor xd = flat.cuda().as_strided({c.B, c.NH, c.N, c.HD}, st, 1);
    const Ref ref = cpu_ref(x, a, w, c.skip);
    Tensor ad = a.cuda().requires_grad_();
    Tensor out = rope_apply(xd, ad, c.skip);
    RV_EXPECT_CLOSE(out.cpu(), ref.out, .rtol = 1e-5, .atol = 1e-6);
    out.backward(w.cuda());
    RV_EXPECT_CLOSE(ad.grad().cpu(), ref.da, .rtol = 1e-5, .atol = 1e-5);
  }
  SUBCASE("channel dim with stride N (a transposed view): copied to contiguous channels first") {
    const Tensor base = test::test_tensor({c.B, c.NH, c.HD, c.N}, 10);
    const Tensor x = base.transpose(2, 3), xd = base.cuda().transpose(2, 3);
    const Ref ref = cpu_ref(x, a, w, c.skip);
    RV_EXPECT_CLOSE(rope_apply(xd, a.cuda(), c.skip).cpu(), ref.out, .rtol = 1e-5, .atol = 1e-6);
  }
}

TEST_CASE("rope_apply on cuda: bf16 x, f32 math, rounded once; its gradients") {
  for (const Case& c : {kCases[0], kCases[3], kCases[4], kCases[9]}) {
    CAPTURE(c.what);
    const Tensor x = test::test_tensor({c.B, c.NH, c.N, c.HD}, 11).to(DType::bf16);
    const Tensor a = angles_for(c, 12);
    const Tensor w = test::test_tensor({c.B, c.NH, c.N, c.HD}, 13).to(DType::bf16);
    const Ref ref = cpu_ref(x, a, w, c.skip);
    Tensor xd = x.cuda().requires_grad_(), ad = a.cuda().requires_grad_();
    Tensor out = rope_apply(xd, ad, c.skip);
    CHECK(out.dtype() == DType::bf16);
    RV_EXPECT_CLOSE(out.cpu().to(DType::f32), ref.out.to(DType::f32), .rtol = 8e-3, .atol = 1e-6);
    out.backward(w.cuda());
    REQUIRE(xd.grad().defined());
    CHECK(xd.grad().dtype() == DType::bf16);
    RV_EXPECT_CLOSE(xd.grad().cpu().to(DType::f32), ref.dx.to(DType::f32), .rtol = 8e-3, .atol = 1e-6);
    RV_EXPECT_CLOSE(ad.grad().cpu(), ref.da, .rtol = 1e-5, .atol = 1e-5);
  }
}

TEST_CASE("rope_rotate_qk: q and k in one launch equal two CPU rope_apply calls, forward and backward") {
  const int64_t B = 2, N = 197, NH = 6, HD = 64, skip = 1;
  const Tensor qkv = test::test_tensor({B, N, 3, NH, HD}, 14);
  const Tensor qkv_d = qkv.cuda();
  const Tensor q = qkv.select(2, 0).permute({0, 2, 1, 3}), k = qkv.select(2, 1).permute({0, 2, 1, 3});
  const Tensor qd = qkv_d.select(2, 0).permute({0, 2, 1, 3}), kd = qkv_d.select(2, 1).permute({0, 2, 1, 3});
  const Tensor wq = test::test_tensor({B, NH, N, HD}, 15), wk = test::test_tensor({B, NH, N, HD}, 16);
  backend::DeviceBackend& be = backend::get(kDev);
  for (bool shared : {false, true}) {
    CAPTURE(shared);
    const Tensor a = test::test_tensor({shared ? 1 : NH, N - skip, HD / 2}, 17, DType::f32, -4.0, 4.0);
    const Tensor ad = a.cuda();
    // CPU: both rotations, and the gradients of sum(rq * wq) + sum(rk * wk)
    Tensor ql = q.clone().requires_grad_(), kl = k.clone().requires_grad_(), al = a.clone().requires_grad_();
    Tensor rq = rope_apply(ql, al, skip), rk = rope_apply(kl, al, skip);
    rq.backward(wq);
    Tensor da_q = al.grad().clone();
    al.zero_grad();
    rk.backward(wk);
    Tensor da = al.grad() + da_q;

    Tensor qo, ko;
    be.rope_rotate_qk(qd, kd, ad, skip, false, qo, ko);
    RV_EXPECT_CLOSE(qo.cpu(), rq.detach(), .rtol = 1e-5, .atol = 1e-6);
    RV_EXPECT_CLOSE(ko.cpu(), rk.detach(), .rtol = 1e-5, .atol = 1e-6);
    Tensor dq, dk;
    be.rope_rotate_qk(wq.cuda(), wk.cuda(), ad, skip, true, dq, dk);
    RV_EXPECT_CLOSE(dq.cpu(), ql.grad(), .rtol = 1e-5, .atol = 1e-6);
    RV_EXPECT_CLOSE(dk.cpu(), kl.grad(), .rtol = 1e-5, .atol = 1e-6);
    const Tensor dad = be.rope_angles_grad_qk(wq.cuda(), qd, wk.cuda(), kd, ad, skip);
    RV_EXPECT_CLOSE(dad.cpu(), da, .rtol = 1e-5, .atol = 1e-5);
    // deterministic: the same bits on a second run
    RV_EXPECT_CLOSE(be.rope_angles_grad_qk(wq.cuda(), qd, wk.cuda(), kd, ad, skip).cpu(), dad.cpu(), .rtol = 0,
                    .atol = 0);
  }
}

TEST_CASE("rope_angles on cuda: bit for bit, forward and backward (axial, mixed, random, 3 axes)") {
  Generator gen(21);
  struct AnglesCase {
    const char* what;
    Tensor freqs, pos;
  };
  const AnglesCase cases[] = {
      {"ViT axial", rope_axial_freqs(6, 64), rope_grid_positions(14, 14)},
      {"ViT mixed", rope_mixed_freqs(6, 64, gen), rope_grid_positions(14, 14)},
      {"Swin axial", rope_swin_axial_freqs(4, 32), rope_grid_positions(7, 7)},
      {"random, 3 axes", test::test_tensor({3, 5, 7}, 22, DType::f32, -3.0, 3.0),
       test::test_tensor({97, 3}, 23, DType::f32, -20.0, 20.0)},
      {"no tokens", rope_axial_freqs(2, 8), rope_grid_positions(0, 3)},
  };
  for (const AnglesCase& c : cases) {
    CAPTURE(c.what);
    Tensor fl = c.freqs.clone().requires_grad_(), pl = c.pos.clone().requires_grad_();
    Tensor want = rope_angles(fl, pl);
    const Tensor g = test::test_tensor(want.shape(), 24, DType::f32, -2.0, 2.0);
    if (want.numel() > 0) want.backward(g);

    Tensor fd = c.freqs.cuda().requires_grad_(), pd = c.pos.cuda().requires_grad_();
    Tensor got = rope_angles(fd, pd);
    CHECK(got.device() == kDev);
    RV_EXPECT_CLOSE(got.cpu(), want.detach(), .rtol = 0, .atol = 0);
    if (want.numel() == 0) continue;  // no tokens: nothing to differentiate
    got.backward(g.cuda());
    REQUIRE(fd.grad().defined());
    REQUIRE(pd.grad().defined());
    RV_EXPECT_CLOSE(fd.grad().cpu(), fl.grad(), .rtol = 0, .atol = 0);
    RV_EXPECT_CLOSE(pd.grad().cpu(), pl.grad(), .rtol = 0, .atol = 0);
  }
}

TEST_CASE("RoPE-Mixed end to end on cuda: learnable freqs -> rope_angles -> rope_apply, gradients as the CPU's") {
  const int64_t B = 2, NH = 3, HD = 64, skip = 1;
  Generator gen(31);
  const Tensor freqs = rope_mixed_freqs(NH, HD, gen), pos = rope_grid_positions(14, 14);
  const int64_t N = pos.size(0) + skip;
  const Tensor x = test::test_tensor({B, NH, N, HD}, 32), w = test::test_tensor({B, NH, N, HD}, 33);

  Tensor fl = freqs.clone().requires_grad_(), xl = x.clone().requires_grad_();
  Tensor want = rope_apply(xl, rope_angles(fl, pos), skip);
  want.backward(w);

  Tensor fd = freqs.cuda().requires_grad_(), xd = x.cuda().requires_grad_();
  Tensor got = rope_apply(xd, rope_angles(fd, pos.cuda()), skip);
  RV_EXPECT_CLOSE(got.cpu(), want.detach(), .rtol = 1e-5, .atol = 1e-6);
  got.backward(w.cuda());
  RV_EXPECT_CLOSE(xd.grad().cpu(), xl.grad(), .rtol = 1e-5, .atol = 1e-6);
  RV_EXPECT_CLOSE(fd.grad().cpu(), fl.grad(), .rtol = 1e-4, .atol = 1e-3);
}

TEST_CASE("rope on cuda: clear errors for mixed devices and unsupported dtypes") {
  const Tensor x = test::test_tensor({1, 2, 5, 8}, 40), a = test::test_tensor({2, 5, 4}, 41);
  const std::string mixed = error_of([&] { rope_apply(x.cuda(), a, 0); });
  CHECK(mixed.find("rope_apply") != std::string::npos);
  CHECK(mixed.find("angles") != std::string::npos);
  const std::string f64 = error_of([&] { rope_apply(x.to(DType::f64).cuda(), a.to(DType::f64).cuda(), 0); });
  CHECK(f64.find("rope_apply: dtype f64") != std::string::npos);
  CHECK(f64.find("not implemented on cuda:0") != std::string::npos);
  const std::string ang =
      error_of([&] { rope_angles(rope_axial_freqs(2, 8).cuda(), rope_grid_positions(2, 2).to(DType::f64).cuda()); });
  CHECK(ang.find("rope_angles: dtype f64") != std::string::npos);
  const std::string shape = error_of([&] { rope_apply(x.cuda(), test::test_tensor({2, 4, 4}, 42).cuda(), 0); });
  CHECK(shape.find("expected `angles` of shape") != std::string::npos);
}
