// test_select_ops_device_path.cpp: the engine side of dtype conversion, the comparisons, where,
// masked_fill, max / min / argmax / argmin along a dim and dropout / drop_path on a device, on any
// machine. A fake "cuda" backend keeps its memory on the host and implements the entries these
// ops use with the CPU ops themselves (copying its tensors to the host and back), so the test
// checks the routing: that device tensors reach convert / compare / where / minmax_dim(_backward)
// / dropout_apply with the arguments the CPU path uses (compare dtype, promoted where operands,
// the fill value, the Philox seed / stream / offset / keep / group), that gradients flow back on
// the device, and the device-only errors. The real kernels are checked against the CPU by
// tests/cuda/test_{convert,compare_where,minmax,dropout}.cpp on a GPU.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops/dropout.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/mask.h"
#include "engine/ops/math.h"
#include "engine/ops/reduce.h"
#include "engine/rng.h"
#include "engine/tensor.h"
#include "tests/support/check.h"
#include "tests/support/host_memory_backend.h"
#include "tests/support/same_bits.h"

using namespace rv;

namespace {

const Device kDev = cuda_device(0);
using CompareOp = backend::DeviceBackend::CompareOp;

class FakeBackend final : public test::HostMemoryBackend {
 public:
  std::map<std::string, int> calls;
  std::vector<DType> compared_dtypes;
  struct DropoutCall {
    uint64_t seed, stream, offset;
    double keep;
    int64_t group;
  };
  std::vector<DropoutCall> dropout_calls;

  void fill(const Tensor& dst, double value) override {
    const Tensor v = scalar_tensor(value, dst.dtype()).cuda();
    copy_strided(dst, v);
  }
  Tensor binary(backend::BinaryOp op, const Tensor& a, const Tensor& b) override {
    const Tensor x = a.cpu(), y = b.cpu();
    switch (op) {
      case backend::BinaryOp::add: return add(x, y).cuda();
      case backend::BinaryOp::sub: return sub(x, y).cuda();
      case backend::BinaryOp::mul: return mul(x, y).cuda();
      case backend::BinaryOp::div: return div(x, y).cuda();
    }
    return Tensor();
  }
  Tensor sum_all(const Tensor& x) override { return sum(x.cpu()).cuda(); }
  Tensor sum_dims(const Tensor& x, const std::vector<bool>& reduced, bool keepdim) override {
    std::vector<int64_t> dims;
    for (size_t d = 0; d < reduced.size(); ++d)
      if (reduced[d]) dims.push_back(int64_t(d));
    return sum(x.cpu(), dims, keepdim).cuda();
  }

  // ---- the entries under test, computed by the CPU ops ----
  void convert(const Tensor& dst, const Tensor& src) override {
    ++calls["convert"];
    REQUIRE(dst.dtype() != src.dtype());
    copy_strided(dst, src.cpu().to(dst.dtype()).cuda());
  }
  Tensor compare(CompareOp op, const Tensor& a, const Tensor& b) override {
    ++calls[compare_op_name(op)];
    REQUIRE(a.dtype() == b.dtype());
    compared_dtypes.push_back(a.dtype());
    const Tensor x = a.cpu(), y = b.cpu();
    switch (op) {
      case CompareOp::eq: return eq(x, y).cuda();
      case CompareOp::ne: return ne(x, y).cuda();
      case CompareOp::lt: return lt(x, y).cuda();
      case CompareOp::le: return le(x, y).cuda();
      case CompareOp::gt: return gt(x, y).cuda();
      case CompareOp::ge: return ge(x, y).cuda();
    }
    return Tensor();
  }
  Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) override {
    ++calls["where"];
    REQUIRE(a.dtype() == b.dtype());
    return rv::where(cond.cpu(), a.cpu(), b.cpu()).cuda();
  }
  void minmax_dim(const Tensor& x, int64_t dim, bool keepdim, bool is_max, bool want_values, Tensor& values,
                  Tensor& indices) override {
    ++calls[is_max ? "max_dim" : "min_dim"];
    REQUIRE(dim >= 0);
    const ValuesIndices r = is_max ? max(x.cpu(), dim, keepdim) : min(x.cpu(), dim, keepdim);
    indices = r.indices.cuda();
    values = want_values ? r.values.cuda() : Tensor();
  }
  Tensor minmax_dim_backward(const Tensor& g, const Tensor& indices, const std::vector<int64_t>& in_shape,
                             int64_t dim) override {
    ++calls["minmax_dim_backward"];
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < dim; ++d) outer *= in_shape[size_t(d)];
    for (size_t d = size_t(dim) + 1; d < in_shape.size(); ++d) inner *= in_shape[d];
    const int64_t len = in_shape[size_t(dim)];
    Tensor grad = zeros(in_shape, DType::f64);
    const Tensor gh = g.cpu().to(DType::f64).contiguous(), ih = indices.cpu().contiguous();
    for (int64_t o = 0; o < outer * inner; ++o)
      grad.data<double>()[(o / inner * len + ih.data<int64_t>()[o]) * inner + o % inner] = gh.data<double>()[o];
    return grad.to(g.dtype()).cuda();
  }
  // The reference rule of engine/ops/dropout.h as a plain loop (f64 only), not the CPU op: it
  // also checks that the spec the front-end passes reproduces the CPU's mask.
  Tensor dropout_apply(const Tensor& x, uint64_t seed, uint64_t stream, uint64_t offset, double keep,
                       int64_t group) override {
    ++calls["dropout_apply"];
    dropout_calls.push_back({seed, stream, offset, keep, group});
    REQUIRE(x.dtype() == DType::f64);
    const Tensor h = x.cpu().contiguous();
    Tensor y = empty(h.shape(), DType::f64);
    const float threshold = float(std::ceil(keep * 16777216.0) / 16777216.0);
    for (int64_t i = 0; i < h.numel(); ++i) {
      const bool kept = group == 1 ? word_to_uniform(philox_word(seed, stream, offset + uint64_t(i))) < threshold
                                   : double(philox_uniform(seed, stream, offset + uint64_t(i / group))) < keep;
      y.data<double>()[i] = kept ? h.data<double>()[i] * (1.0 / keep) : 0.0;
    }
    return y.cuda();
  }
};

struct FakeInstalled {
  FakeBackend fake;
  backend::DeviceBackend* previous = nullptr;
  FakeInstalled() { previous = backend::set_backend(DeviceType::cuda, &fake); }
  ~FakeInstalled() { backend::set_backend(DeviceType::cuda, previous); }
};

}  // namespace

TEST_CASE("device path: to(dtype) and copy_ between dtypes reach convert; the gradient converts back on the device") {
  FakeInstalled inst;
  FakeBackend& f = inst.fake;
  const Tensor x = test::test_tensor({4, 5}, 1);
  RV_EXPECT_SAME_BITS(x.cuda().to(DType::bf16), x.to(DType::bf16));
  RV_EXPECT_SAME_BITS(x.cuda().t().to(DType::i32), x.t().to(DType::i32));
  CHECK(f.calls["convert"] == 2);
  Tensor d = zeros({4, 5}, DType::f64, kDev);
  d.copy_(x.cuda());
  RV_EXPECT_SAME_BITS(d, x.to(DType::f64));
  Tensor xr = x.cuda().requires_grad_();
  sum(xr.to(DType::f64)).backward();
  REQUIRE(xr.grad().defined());
  CHECK(xr.grad().device() == kDev);
  CHECK(xr.grad().dtype() == DType::f32);
  CHECK(xr.grad().cpu().to_double_vector() == std::vector<double>(20, 1.0));
}

TEST_CASE("device path: comparisons convert both sides to the CPU's compare dtype and reach compare") {
  FakeInstalled inst;
  FakeBackend& f = inst.fake;
  const Tensor a = test::test_tensor({3, 4}, 2), b = test::test_tensor({4}, 3, DType::bf16);
  RV_EXPECT_SAME_BITS(lt(a.cuda(), b.cuda()), lt(a, b));                   // f32 with bf16: f32
  RV_EXPECT_SAME_BITS(eq(a.to(DType::i32).cuda(), 0.0), eq(a.to(DType::i32), 0.0));  // integer, whole scalar: i64
  RV_EXPECT_SAME_BITS(ge(b.cuda(), 0.1), ge(b, 0.1));                      // bf16 scalar, compared in f32
  RV_EXPECT_SAME_BITS(logical_not(a.cuda()), logical_not(a));
  CHECK(f.calls["lt"] == 1);
  CHECK(f.calls["eq"] == 2);
  CHECK(f.calls["ge"] == 1);
  CHECK(f.compared_dtypes == std::vector<DType>{DType::f32, DType::i64, DType::f32, DType::f32});
  CHECK_THROWS_WITH_AS(lt(a, b.cuda()), doctest::Contains("lt: a on cpu, b on cuda:0"), std::invalid_argument);
}

TEST_CASE("device path: where and masked_fill reach where; gradients are selects on the device") {
  FakeInstalled inst;
  FakeBackend& f = inst.fake;
  const Tensor c = gt(test::test_tensor({3, 4}, 4), 0.0);
  const Tensor a0 = test::test_tensor({4}, 5, DType::f64), b0 = test::test_tensor({3, 1}, 6);
  RV_EXPECT_SAME_BITS(where(c.cuda(), a0.cuda(), b0.cuda()), where(c, a0, b0));  // promoted to f64
  Tensor a = a0.cuda().requires_grad_(), b = b0.to(DType::f64).cuda().requires_grad_();
  sum(where(c.cuda(), a, b)).backward();
  Tensor ah = a0.clone().requires_grad_(), bh = b0.to(DType::f64).requires_grad_();
  sum(where(c, ah, bh)).backward();
  CHECK(a.grad().device() == kDev);
  RV_EXPECT_SAME_BITS(a.grad(), ah.grad());
  RV_EXPECT_SAME_BITS(b.grad(), bh.grad());
  f.calls.clear();
  const Tensor m = gt(test::test_tensor({4}, 7), 0.0);
  Tensor x = test::test_tensor({3, 4}, 8).cuda().requires_grad_();
  const Tensor y = masked_fill(x, m.cuda(), -1e9);
  RV_EXPECT_SAME_BITS(y, masked_fill(x.cpu(), m, -1e9));
  sum(y).backward();
  RV_EXPECT_SAME_BITS(x.grad(), masked_fill(ones({3, 4}), m, 0.0));
  CHECK(f.calls["where"] == 2);  // forward and backward
  CHECK_THROWS_WITH_AS(where(c, a0, b0.cuda()), doctest::Contains("all three must be on one device"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(masked_fill(x.detach(), m, 0.0), doctest::Contains("masked_fill: mask on cpu, x on cuda:0"),
                       std::invalid_argument);
}

TEST_CASE("device path: max / min / argmax along a dim reach minmax_dim; the backward reaches its scatter") {
  FakeInstalled inst;
  FakeBackend& f = inst.fake;
  const Tensor x0 = test::test_tensor({3, 5, 4}, 9, DType::f64);
  for (int64_t dim : {0, 1, -1}) {
    for (bool keepdim : {false, true}) {
      CAPTURE(dim);
      CAPTURE(keepdim);
      const ValuesIndices want = max(x0, dim, keepdim);
      Tensor x = x0.cuda().requires_grad_();
      const ValuesIndices got = max(x, dim, keepdim);
      RV_EXPECT_SAME_BITS(got.values, want.values);
      RV_EXPECT_SAME_BITS(got.indices, want.indices);
      RV_EXPECT_SAME_BITS(argmin(x0.cuda(), dim, keepdim), argmin(x0, dim, keepdim));
      sum(got.values).backward();
      Tensor xh = x0.clone().requires_grad_();
      sum(max(xh, dim, keepdim).values).backward();
      CHECK(x.grad().device() == kDev);
      RV_EXPECT_SAME_BITS(x.grad(), xh.grad());
    }
  }
  CHECK(f.calls["max_dim"] == 6);
  CHECK(f.calls["min_dim"] == 6);
  CHECK(f.calls["minmax_dim_backward"] == 6);
  // 0-d: reduced as one element
  Tensor s = scalar_tensor(2.5, DType::f64).cuda().requires_grad_();
  const ValuesIndices r = min(s, 0);
  CHECK(r.values.shape() == Shape{});
  CHECK(r.indices.cpu().item() == 0);
  sum(r.values).backward();
  CHECK(s.grad().cpu().item() == 1.0);
}

TEST_CASE("device path: dropout and drop_path pass the CPU's Philox spec and advance the Generator alike") {
  FakeInstalled inst;
  FakeBackend& f = inst.fake;
  const Tensor x0 = test::test_tensor({6, 7}, 10, DType::f64);
  Generator gc(21, 4), gd(21, 4);
  gc.set_offset(5);
  gd.set_offset(5);
  Tensor x = x0.cuda().requires_grad_();
  const Tensor y = drop_path(dropout(x, 0.3, true, gd), 0.5, true, gd);
  Tensor xh = x0.clone().requires_grad_();
  const Tensor yh = drop_path(dropout(xh, 0.3, true, gc), 0.5, true, gc);
  RV_EXPECT_SAME_BITS(y, yh);
  CHECK(gd.offset() == gc.offset());
  REQUIRE(f.dropout_calls.size() == 2);
  CHECK(f.dropout_calls[0].offset == 5);
  CHECK(f.dropout_calls[0].group == 1);
  CHECK(f.dropout_calls[0].seed == 21);
  CHECK(f.dropout_calls[0].stream == 4);
  CHECK(f.dropout_calls[0].keep == doctest::Approx(0.7));
  CHECK(f.dropout_calls[1].group == 7);
  sum(y).backward();
  sum(yh).backward();
  CHECK(f.calls["dropout_apply"] == 4);  // the backward regenerates both masks
  CHECK(x.grad().device() == kDev);
  RV_EXPECT_SAME_BITS(x.grad(), xh.grad());
}
