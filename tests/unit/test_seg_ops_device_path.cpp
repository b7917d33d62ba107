// test_seg_ops_device_path.cpp: the device paths the segmenter needed beyond the op kernels, on
// any machine (a CpuMirrorBackend stands in for the GPU, tests/support/cpu_mirror_backend.h):
//   pad      composed of device ops (slice + cat with fill slabs for constant, index_select with
//            the dim's table for reflect / replicate / circular), forward and backward
//   flip     one index_select per flipped dim, forward and backward
//   roll     likewise (Swin's shifted windows); and a whole Swin UperNet training step
//   cross_entropy with a u8 (or i32) target: widened to int64 on the device for the kernels
// each against the CPU op on the same values (odd sizes, non-contiguous inputs, negative pads,
// size-1 and empty dims), and the gradients too. UperNet uses them on a GPU: pad in
// encode_decode (sizes not a multiple of the patch), flip in flip-test inference, roll in a Swin
// backbone, u8 label maps.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/ops/loss.h"
#include "engine/ops/pad.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape.h"
#include "engine/rng.h"
#include "models/seg/upernet.h"
#include "tests/support/check.h"
#include "tests/support/cpu_mirror_backend.h"

using namespace rv;

namespace {

const Device kDev = cuda_device(0);

// f(x) on the CPU and on the device: the same values (to `tol`: 0 = the same bits); and the
// gradients of sum(f(x) * w) w.r.t. x.
template <class F>
void check_same_on_device(const Tensor& x_cpu, F f, test::Tol tol = {.rtol = 0, .atol = 0}) {
  test::CpuMirrorInstalled fake;
  Tensor a = x_cpu.detach().clone().requires_grad_();
  Tensor b = x_cpu.detach().to(kDev).requires_grad_();
  const Tensor ya = f(a), yb = f(b);
  REQUIRE(yb.device() == kDev);
  REQUIRE(yb.shape() == ya.shape());
  CHECK(yb.is_contiguous());
  RV_EXPECT_CLOSE(yb.cpu(), ya, tol.rtol, tol.atol);
  if (ya.numel() == 0 || x_cpu.numel() == 0) return;
  Generator gen(7);
  const Tensor w = randn(ya.shape(), gen);
  sum(mul(ya, w)).backward();
  sum(mul(yb, w.to(kDev))).backward();
  REQUIRE(b.grad().defined());
  CHECK(b.grad().device() == kDev);
  RV_EXPECT_CLOSE(b.grad().cpu(), a.grad(), 1e-6, 1e-7);
}

}  // namespace

TEST_CASE("pad on a device: constant with positive, negative and zero pads equals the CPU") {
  Generator gen(1);
  const Tensor x = randn({2, 3, 5, 7}, gen);
  check_same_on_device(x, [](const Tensor& t) { return pad(t, {0, 9, 0, 11}); });          // UperNet's bottom/right
  check_same_on_device(x, [](const Tensor& t) { return pad(t, {2, -3, -1, 4}, "constant", 1.5); });
  check_same_on_device(x, [](const Tensor& t) { return pad(t, {0, 0}); });                  // a copy
  check_same_on_device(x, [](const Tensor& t) { return pad(t, {-2, -1}); });                // crop only
  check_same_on_device(x, [](const Tensor& t) { return pad(t, {1, 1, 1, 1, 1, 1}); });      // three dims
  // Non-contiguous input (a transposed view) and a size-1 dim.
  check_same_on_device(randn({3, 1, 6}, gen), [](const Tensor& t) { return pad(t.transpose(0, 2), {2, 1, 1, 0}); });
  // Empty: a dim of 0 padded to something, and a result with 0 elements.
  check_same_on_device(randn({2, 0, 3}, gen), [](const Tensor& t) { return pad(t, {1, 1, 2, 0}, "constant", -1.0); });
  check_same_on_device(randn({2, 3}, gen), [](const Tensor& t) { return pad(t, {-3, 0}); });
}

TEST_CASE("pad on a device: reflect, replicate and circular equal the CPU") {
  Generator gen(2);
  const Tensor x = randn({2, 3, 5, 6}, gen);
  for (const char* mode : {"reflect", "replicate", "circular"}) {
    INFO(mode);
    check_same_on_device(x, [&](const Tensor& t) { return pad(t, {2, 3, 4, 1}, mode); });
    check_same_on_device(x.slice(3, 0, 6, 2), [&](const Tensor& t) { return pad(t, {1, 2, 1, 0}, mode); });
  }
  check_same_on_device(x, [](const Tensor& t) { return pad(t, {-1, 2, 3, -2}, "circular"); });
}

TEST_CASE("pad on a device: the argument errors are the CPU's") {
  test::CpuMirrorInstalled fake;
  const Tensor x = zeros({2, 3}, DType::f32, kDev);
  CHECK_THROWS_WITH_AS(pad(x, {1}), doctest::Contains("pad: pads must hold (before, after) pairs"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(pad(x, {3, 0}, "reflect"), doctest::Contains("reflect padding must be smaller"),
                       std::invalid_argument);
}

TEST_CASE("flip on a device equals the CPU (one or several dims, strided, empty)") {
  Generator gen(3);
  const Tensor x = randn({2, 3, 4, 5}, gen);
  check_same_on_device(x, [](const Tensor& t) { return flip(t, {3}); });
  check_same_on_device(x, [](const Tensor& t) { return flip(t, {0, 2, -1}); });
  check_same_on_device(x, [](const Tensor& t) { return flip(t, {}); });
  check_same_on_device(x.transpose(1, 3), [](const Tensor& t) { return flip(t, {1}); });
  check_same_on_device(randn({3, 0, 2}, gen), [](const Tensor& t) { return flip(t, {1, 2}); });
}

TEST_CASE("roll on a device equals the CPU (Swin's shifted windows; several dims, negative, flat)") {
  Generator gen(5);
  const Tensor x = randn({2, 7, 6, 3}, gen);
  check_same_on_device(x, [](const Tensor& t) { return roll(t, {-3, -3}, {1, 2}); });  // Swin: (B, H, W, C)
  check_same_on_device(x, [](const Tensor& t) { return roll(t, {3, 3}, {1, 2}); });
  check_same_on_device(x, [](const Tensor& t) { return roll(t, {13, 1}, {1, 1}); });    // a dim twice, beyond n
  check_same_on_device(x, [](const Tensor& t) { return roll(t, {7}, {1}); });           // a whole turn: a copy
  check_same_on_device(x.transpose(1, 2), [](const Tensor& t) { return roll(t, {2}, {-1}); });
  check_same_on_device(x, [](const Tensor& t) { return roll(t, {5}, {}); });            // flattened
}

TEST_CASE("a Swin UperNet training step on a device equals the CPU (losses and gradients)") {
  models::seg::UperNetConfig c;
  c.backbone.name = "tiny_swin";
  c.backbone.arch = "swin";
  c.backbone.pos_embed = "rope_mixed";
  c.backbone.patch_size = 4;
  c.backbone.embed_dim = 8;
  c.backbone.depths = {2, 2, 2, 2};
  c.backbone.num_heads = {1, 1, 2, 2};
  c.backbone.window_size = 4;
  c.backbone.mlp_ratio = 1.0;
  c.backbone.norm_eps = 1e-5;
  c.backbone.num_classes = 0;
  c.backbone.img_h = c.backbone.img_w = 64;
  c.num_classes = 3;
  c.channels = 8;
  c.aux_channels = 4;
  c.seed = 5;
  models::seg::UperNet cpu_net(c), dev_net(c);
  Generator gen(6);
  const Tensor x = randn({2, 3, 64, 64}, gen);
  Tensor labels = empty({2, 64, 64}, DType::u8);
  for (int64_t i = 0; i < labels.numel(); ++i) labels.data<uint8_t>()[i] = uint8_t(i % 11 == 0 ? 255 : (i / 64) % 3);
  test::CpuMirrorInstalled fake;
  dev_net.to(kDev);
  cpu_net.train(true);
  dev_net.train(true);
  const models::seg::SegLosses a = cpu_net.loss(x, labels), b = dev_net.loss(x.to(kDev), labels.to(kDev));
  CHECK(b.total.device() == kDev);
  CHECK(b.decode.item() == doctest::Approx(a.decode.item()).epsilon(1e-5));
  CHECK(b.aux.item() == doctest::Approx(a.aux.item()).epsilon(1e-5));
  a.total.backward();
  b.total.backward();
  const auto pa = cpu_net.named_parameters(), pb = dev_net.named_parameters();
  REQUIRE(pa.size() == pb.size());
  for (size_t i = 0; i < pa.size(); ++i) {
    INFO(pa[i].first);
    REQUIRE(pb[i].second.grad().defined());
    CHECK(pb[i].second.grad().device() == kDev);
    RV_EXPECT_CLOSE(pb[i].second.grad().cpu(), pa[i].second.grad(), 1e-4, 1e-6);
  }
}

TEST_CASE("cross_entropy on a device takes u8 and i32 class maps (widened to int64 there)") {
  Generator gen(4);
  const Tensor logits = randn({2, 5, 3, 4}, gen);
  Tensor labels = empty({2, 3, 4}, DType::u8);
  for (int64_t i = 0; i < labels.numel(); ++i) labels.data<uint8_t>()[i] = uint8_t(i % 7 == 3 ? 255 : (i * 3) % 5);
  for (DType dt : {DType::u8, DType::i32, DType::i64}) {
    INFO(dtype_name(dt));
    const Tensor t = labels.to(dt);
    for (Reduction r : {Reduction::none, Reduction::mean}) {
      check_same_on_device(logits, [&](const Tensor& x) {
        const Tensor target = x.device().is_cpu() ? t : t.to(kDev);
        return cross_entropy(x, target, {.ignore_index = 255, .reduction = r});
      }, {.rtol = 1e-6, .atol = 1e-7});
    }
  }
}
