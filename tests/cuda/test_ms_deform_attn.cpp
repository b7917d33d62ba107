// test_ms_deform_attn.cpp: multi-scale deformable attention on cuda against the CPU op, forward and
// the three gradients through autograd (value, sampling_locations, attention_weights), f32 and f64,
// on odd shapes: 1 to 4 levels of odd sizes (7x5, 3x1, 1x1, 13x9), head dims 1, 7, 32, 33 and 64
// (fewer and more channels than a warp has lanes), query counts 1, 197 and 1000, 4097 points, no
// queries, locations outside [0, 1], non-contiguous inputs; the gradients of locations and weights
// are the same bits on two runs; the mmcv module on cuda against the CPU; errors (mixed devices,
// bf16). Skipped (exit 77) without a GPU.
//
// Tolerances: the forward sums the taps in the CPU's order but may fuse multiply-adds: f32 rtol 1e-5,
// atol 1e-6; f64 1e-12. The location and weight gradients reduce over the channels in a warp
// butterfly (another order than the CPU's), and the value gradient adds with atomics in scheduling
// order: f32 rtol 1e-4, atol 1e-5 (the location gradient scales with W_l: sums of up to HD products
// of values ~1 times ~10); f64 1e-10.
#include <doctest/doctest.h>

#include <vector>

#include "engine/autograd.h"
#include "engine/ops/ms_deform_attn.h"
#include "models/det/ms_deform_attn_module.h"
#include "tests/support/check.h"
#include "tests/support/same_bits.h"

using namespace rv;

namespace {

using Levels = std::vector<std::pair<int64_t, int64_t>>;

struct Inputs {
  Tensor value, loc, attn, shapes, starts;
};

Inputs make_inputs(const Levels& lv, int64_t B, int64_t Q, int64_t NH, int64_t HD, int64_t P, DType dt, uint64_t seed) {
  int64_t S = 0;
  for (auto [h, w] : lv) S += h * w;
  const int64_t L = int64_t(lv.size());
  return {test::test_tensor({B, S, NH, HD}, seed, dt), test::test_tensor({B, Q, NH, L, P, 2}, seed + 1, dt, -0.2, 1.2),
          test::test_tensor({B, Q, NH, L, P}, seed + 2, dt, 0.0, 1.0), ms_deform_attn_spatial_shapes(lv),
          ms_deform_attn_level_start(lv)};
}

struct Result {
  Tensor out, dvalue, dloc, dattn;  // on the host
};

// noncontig: the device copies are stored in another order and viewed back.
Result run(const Inputs& in, Device device, const Tensor& g, bool noncontig = false) {
  auto place = [&](const Tensor& t) {
    if (!noncontig || t.dim() < 2) return t.to(device);
    return t.transpose(0, 1).contiguous().to(device).transpose(0, 1);
  };
  Tensor v = place(in.value).detach().requires_grad_(), l = place(in.loc).detach().requires_grad_();
  Tensor a = place(in.attn).detach().requires_grad_();
  Tensor out = ms_deform_attn(v, in.shapes, in.starts, l, a);
  out.backward(g.to(device));
  return {out.cpu(), v.grad().cpu(), l.grad().cpu(), a.grad().cpu()};
}

void compare(const Levels& lv, int64_t B, int64_t Q, int64_t NH, int64_t HD, int64_t P, uint64_t seed,
             bool noncontig = false) {
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(dtype_name(dt));
    CAPTURE(lv.size());
    CAPTURE(Q);
    CAPTURE(HD);
    const Inputs in = make_inputs(lv, B, Q, NH, HD, P, dt, seed);
    const Tensor g = test::test_tensor({B, Q, NH * HD}, seed + 3, dt);
    const Result want = run(in, cpu_device(), g);
    const Result got = run(in, cuda_device(0), g, noncontig);
    const bool f32 = dt == DType::f32;
    const test::Tol out_tol = f32 ? test::Tol{1e-5, 1e-6} : test::Tol{1e-12, 1e-12};
    const test::Tol grad_tol = f32 ? test::Tol{1e-4, 1e-5} : test::Tol{1e-10, 1e-10};
    RV_EXPECT_CLOSE(got.out, want.out, out_tol.rtol, out_tol.atol);
    RV_EXPECT_CLOSE(got.dvalue, want.dvalue, grad_tol.rtol, grad_tol.atol);
    RV_EXPECT_CLOSE(got.dloc, want.dloc, grad_tol.rtol, grad_tol.atol);
    RV_EXPECT_CLOSE(got.dattn, want.dattn, grad_tol.rtol, grad_tol.atol);
  }
}

}  // namespace

TEST_CASE("ms_deform_attn on cuda equals the CPU: 1 to 4 odd levels, head dims around a warp") {
  compare({{7, 5}}, 2, 5, 3, 7, 3, 1);
  compare({{7, 5}, {3, 1}}, 1, 197, 2, 32, 4, 2);
  compare({{7, 5}, {3, 1}, {1, 1}}, 2, 1, 4, 33, 2, 3);
  compare({{13, 9}, {7, 5}, {3, 1}, {1, 1}}, 1, 1000, 2, 64, 4, 4);
  compare({{7, 5}, {1, 1}}, 3, 9, 2, 1, 1, 5);
}

TEST_CASE("ms_deform_attn on cuda: 4097 points, no queries, non-contiguous inputs") {
  compare({{13, 9}}, 1, 4097, 1, 8, 1, 6);       // 4097 points: not a multiple of the 8 warps of a block
  compare({{7, 5}, {3, 1}}, 2, 0, 2, 4, 2, 7);    // empty output, zero value gradient
  compare({{7, 5}, {3, 1}}, 2, 6, 3, 5, 2, 8, true);
}

TEST_CASE("ms_deform_attn on cuda: the location and weight gradients are the same bits on every run") {
  const Inputs in = make_inputs({{13, 9}, {7, 5}}, 2, 300, 4, 32, 4, DType::f32, 11);
  const Tensor g = test::test_tensor({2, 300, 128}, 12);
  const Result a = run(in, cuda_device(0), g), b = run(in, cuda_device(0), g);
  RV_EXPECT_SAME_BITS(a.out, b.out);
  RV_EXPECT_SAME_BITS(a.dloc, b.dloc);
  RV_EXPECT_SAME_BITS(a.dattn, b.dattn);
}

TEST_CASE("MultiScaleDeformableAttention on cuda equals the CPU: points and boxes, padding mask") {
  for (int64_t rdim : {2, 4}) {
    CAPTURE(rdim);
    const Levels lv = {{7, 5}, {3, 1}};
    models::det::MSDeformAttnOptions o;
    o.embed_dims = 32, o.num_heads = 4, o.num_levels = 2, o.num_points = 3, o.dropout = 0.0;
    Generator gen(3);
    models::det::MultiScaleDeformableAttention cpu_m(o, gen), gpu_m(o, gen);
    // Random weights everywhere (the init zeroes the offset and weight projections).
    {
      autograd::NoGradGuard ng;
      uint64_t seed = 20;
      for (auto& [name, p] : cpu_m.named_parameters()) p.copy_(test::test_tensor(p.shape(), seed++, DType::f32, -0.3, 0.3));
    }
    gpu_m.load_state_dict(cpu_m.state_dict());
    gpu_m.to(cuda_device(0));
    const Tensor query = test::test_tensor({2, 6, 32}, 30), value = test::test_tensor({2, 38, 32}, 31);
    const Tensor ref = rdim == 2 ? test::test_tensor({2, 6, 2, 2}, 32, DType::f32, 0.1, 0.9)
                                 : test::test_tensor({2, 6, 2, 4}, 32, DType::f32, 0.2, 0.6);
    std::vector<double> mask = test::test_tensor({2, 38}, 33).to_double_vector();
    for (double& m : mask) m = m > 0.4 ? 1.0 : 0.0;  // about 30% of the value tokens are padding
    models::det::MSDeformAttnExtras ex_cpu, ex_gpu;
    ex_cpu.key_padding_mask = from_vector(mask, {2, 38}, DType::boolean);
    ex_gpu.key_padding_mask = ex_cpu.key_padding_mask.to(cuda_device(0));
    Tensor qc = query.detach().requires_grad_(), qg = query.to(cuda_device(0)).detach().requires_grad_();
    Tensor oc = cpu_m.forward(qc, value, ref, ms_deform_attn_spatial_shapes(lv), ms_deform_attn_level_start(lv), ex_cpu);
    Tensor og = gpu_m.forward(qg, value.to(cuda_device(0)), ref.to(cuda_device(0)), ms_deform_attn_spatial_shapes(lv),
                              ms_deform_attn_level_start(lv), ex_gpu);
    RV_EXPECT_CLOSE(og.cpu(), oc, 1e-5, 1e-5);
    const Tensor g = test::test_tensor(oc.shape(), 34);
    oc.backward(g);
    og.backward(g.to(cuda_device(0)));
    RV_EXPECT_CLOSE(qg.grad().cpu(), qc.grad(), 1e-4, 1e-5);
    RV_EXPECT_CLOSE(gpu_m.sampling_offsets->weight.grad().cpu(), cpu_m.sampling_offsets->weight.grad(), 1e-4, 1e-5);
    RV_EXPECT_CLOSE(gpu_m.value_proj->weight.grad().cpu(), cpu_m.value_proj->weight.grad(), 1e-4, 1e-5);
  }
}

TEST_CASE("ms_deform_attn on cuda: mixed devices and bf16 are refused with clear errors") {
  const Inputs in = make_inputs({{7, 5}}, 1, 2, 2, 4, 2, DType::f32, 41);
  CHECK_THROWS_WITH_AS(ms_deform_attn(in.value.to(cuda_device(0)), in.shapes, in.starts, in.loc, in.attn),
                       doctest::Contains("`value` is on cuda:0 but `sampling_locations` is on cpu"),
                       std::invalid_argument);
  CHECK_THROWS_WITH(ms_deform_attn(in.value.to(DType::bf16).to(cuda_device(0)), in.shapes, in.starts,
                                   in.loc.to(DType::bf16).to(cuda_device(0)), in.attn.to(DType::bf16).to(cuda_device(0))),
                    doctest::Contains("ms_deform_attn: dtype bfloat16 is not implemented on cuda:0 yet"));
  // The int64 level tables may live on the device too.
  const Tensor out = ms_deform_attn(in.value.to(cuda_device(0)), in.shapes.to(cuda_device(0)),
                                    in.starts.to(cuda_device(0)), in.loc.to(cuda_device(0)), in.attn.to(cuda_device(0)));
  RV_EXPECT_CLOSE(out.cpu(), ms_deform_attn(in.value, in.shapes, in.starts, in.loc, in.attn), 1e-5, 1e-6);
}
