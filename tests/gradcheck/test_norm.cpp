// Gradients of batch_norm (training and eval mode), sync_batch_norm on one rank (both its CPU
// kernel and its composed device implementation) and group_norm w.r.t. x, weight and bias
// against f64 central finite differences.
#include <algorithm>
#include <memory>
#include <vector>

#include "engine/ops/norm.h"
#include "engine/ops/norm_device.h"
#include "tests/support/check.h"

using namespace rv;

namespace {
using Inputs = std::vector<Tensor>;
}  // namespace

TEST_CASE("gradcheck batch_norm in training mode: x, weight, bias") {
  for (const Shape& xs : {Shape{6, 3}, Shape{2, 3, 2, 3}, Shape{3, 2, 4}}) {
    CAPTURE(shape_str(xs));
    const int64_t C = xs[1];
    Tensor x = test::grad_input(xs, 1, -2.0, 2.0);
    Tensor w = test::grad_input({C}, 2), b = test::grad_input({C}, 3);
    Tensor rm = zeros({C}, DType::f64), rv = ones({C}, DType::f64);  // updated on every call; y ignores them
    RV_GRADCHECK([&](const Inputs& in) { return batch_norm(in[0], rm, rv, in[1], in[2], true, 0.1, 1e-5); },
                 (Inputs{x, w, b}));
    RV_GRADCHECK([&](const Inputs& in) { return batch_norm(in[0], {}, {}, {}, {}, true, 0.1, 1e-3); },
                 Inputs{x});
  }
}

TEST_CASE("gradcheck batch_norm in eval mode: x, weight, bias") {
  Tensor x = test::grad_input({3, 4, 5}, 10, -2.0, 2.0);
  Tensor w = test::grad_input({4}, 11), b = test::grad_input({4}, 12);
  Tensor rm = test::test_tensor({4}, 13, DType::f64), rv = test::test_tensor({4}, 14, DType::f64, 0.5, 2.0);
  RV_GRADCHECK([&](const Inputs& in) { return batch_norm(in[0], rm, rv, in[1], in[2], false); },
               (Inputs{x, w, b}));
  RV_GRADCHECK([&](const Inputs& in) { return batch_norm(in[0], rm, rv, {}, in[1], false); }, (Inputs{x, b}));
}

TEST_CASE("gradcheck group_norm: x, weight, bias") {
  struct Case { Shape shape; int64_t groups; };
  for (const Case& k : {Case{{2, 6, 3}, 3}, Case{{2, 4, 2, 2}, 1}, Case{{3, 4, 2}, 4}, Case{{2, 6}, 2}}) {
    CAPTURE(shape_str(k.shape));
    const int64_t C = k.shape[1];
    Tensor x = test::grad_input(k.shape, 20, -1.0, 2.0);
    Tensor w = test::grad_input({C}, 21), b = test::grad_input({C}, 22);
    RV_GRADCHECK([&](const Inputs& in) { return group_norm(in[0], k.groups, in[1], in[2]); }, (Inputs{x, w, b}));
    RV_GRADCHECK([&](const Inputs& in) { return group_norm(in[0], k.groups, {}, {}, 1e-3); }, Inputs{x});
  }
}

namespace {
// One rank: the collectives are copies. Drives the synchronised code paths without a network.
struct SoloGroup final : ReplicaGroup {
  int rank() const override { return 0; }
  int world_size() const override { return 1; }
  void all_gather(const double* in, int64_t count, double* out) override { std::copy(in, in + count, out); }
  void all_reduce_sum(double*, int64_t) override {}
};
}  // namespace

TEST_CASE("gradcheck sync_batch_norm on one rank (= batch_norm), and its written-out composed backward") {
  const auto solo = std::make_shared<SoloGroup>();
  for (const Shape& xs : {Shape{3, 2, 2, 3}, Shape{2, 3, 1, 1}, Shape{1, 2, 3, 2}}) {
    CAPTURE(shape_str(xs));
    const int64_t C = xs[1];
    Tensor x = test::grad_input(xs, 21, -2.0, 2.0);
    Tensor w = test::grad_input({C}, 22), b = test::grad_input({C}, 23);
    Tensor rm = zeros({C}, DType::f64), rv = ones({C}, DType::f64);
    RV_GRADCHECK([&](const Inputs& in) { return sync_batch_norm(in[0], rm, rv, in[1], in[2], nullptr); },
                 (Inputs{x, w, b}));
    RV_GRADCHECK([&](const Inputs& in) { return sync_batch_norm(in[0], rm, rv, in[1], in[2], solo); },
                 (Inputs{x, w, b}));
    // The device implementation (generic ops, so it runs on CPU tensors too): forward without a
    // graph, backward written out; checked here against finite differences.
    RV_GRADCHECK([&](const Inputs& in) {
      return sync_batch_norm_composed_on_device(in[0], rm, rv, in[1], in[2], 0.1, 1e-5, solo);
    }, (Inputs{x, w, b}));
    RV_GRADCHECK([&](const Inputs& in) {
      return sync_batch_norm_composed_on_device(in[0], {}, {}, {}, {}, 0.1, 1e-3, solo);
    }, (Inputs{x}));
  }
}
