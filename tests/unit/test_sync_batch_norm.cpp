// test_sync_batch_norm.cpp: SyncBatchNorm against BatchNorm on the concatenated batch.
//
// W ranks (threads of this process over real TCP communicators, tests/support/tcp_ranks.h; and
// this executable again under `mpirun -np 2`) each hold a shard of one batch X (B, C, H, W).
// Rank r runs sync_batch_norm on its shard and backward of sum(y_r * G_r) (G: a fixed upstream
// gradient). One process runs batch_norm on all of X with sum(y * G). Then:
//   outputs and input gradients: rank r's = the rows of the full-batch ones;
//   weight / bias gradients: the sum over ranks of each rank's share = the full-batch ones;
//   running stats: on every rank = the full-batch update (global mean, unbiased global variance);
// in f64 to 1e-12 and f32 to 1e-5, for equal and unequal shards (one of them empty), strided
// inputs, and no affine / no running stats. Also: the composed (device) implementation run on
// CPU tensors, the nn module and convert_sync_batchnorm (names, mode, typed handles), and the
// errors.
#include <doctest/doctest.h>

#include <cstdlib>
#include <numeric>
#include <string>
#include <unistd.h>
#include <vector>

#include "engine/autograd.h"
#include "engine/nn/layers.h"
#include "engine/nn/sync_batch_norm.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/norm.h"
#include "engine/ops/norm_device.h"
#include "engine/ops/reduce.h"
#include "engine/ops/shape.h"
#include "tests/support/check.h"
#include "tests/support/tcp_ranks.h"
#include "train/distributed/launch_env.h"
#include "train/distributed/mpi_communicator.h"
#include "train/distributed/replica_group.h"

namespace {

using namespace rv;
using train::dist::Communicator;

struct Options {
  bool affine = true;
  bool track = true;
  bool strided = false;  // each shard a non-contiguous view
  bool composed = false; // sync_batch_norm_composed_on_device instead of the CPU kernel
};

// Everything one process with the whole batch computes.
struct Full {
  Tensor y, dx, dw, db, rm, rv;
};

constexpr double kMomentum = 0.3, kEps = 1e-5;

Tensor channel_values(int64_t C, uint64_t seed, DType dt, double lo, double hi) {
  return test::test_tensor({C}, seed, dt, lo, hi);
}

// The batch and its upstream gradient: values around 3 with spread 1 (|mean| > std, as features).
Tensor batch(const Shape& s, DType dt) { return test::test_tensor(s, 7, dt, 2.0, 4.0); }
Tensor upstream(const Shape& s, DType dt) { return test::test_tensor(s, 8, dt); }

Full full_batch(const Shape& s, DType dt, const Options& o) {
  const int64_t C = s[1];
  Tensor x = batch(s, dt).requires_grad_(true);
  Tensor w = o.affine ? channel_values(C, 9, dt, 0.5, 1.5).requires_grad_(true) : Tensor();
  Tensor b = o.affine ? channel_values(C, 10, dt, -0.5, 0.5).requires_grad_(true) : Tensor();
  Tensor rm = o.track ? channel_values(C, 11, dt, -1, 1) : Tensor();
  Tensor rv = o.track ? channel_values(C, 12, dt, 0.5, 2) : Tensor();
  Tensor y = batch_norm(x, rm, rv, w, b, true, kMomentum, kEps);
  sum(mul(y, upstream(s, dt))).backward();
  return {y.detach(), x.grad(), o.affine ? w.grad() : Tensor(), o.affine ? b.grad() : Tensor(), rm, rv};
}

// Rank r's part of the same computation, on rows [start, start + rows) of the batch.
struct Shard {
  Tensor y, dx, dw, db, rm, rv;
};

Shard run_shard(const std::shared_ptr<ReplicaGroup>& group, const Shape& s, int64_t start, int64_t rows, DType dt,
                const Options& o) {
  const int64_t C = s[1];
  Tensor x = batch(s, dt).narrow(0, start, rows);
  if (o.strided) {  // the same values as a non-contiguous view: H and W swapped in memory
    x = x.transpose(2, 3).contiguous().transpose(2, 3);
    CHECK((rows == 0 || !x.is_contiguous()));  // CHECK: this runs on a rank's thread
  } else {
    x = x.contiguous();
  }
  x.requires_grad_(true);
  Tensor w = o.affine ? channel_values(C, 9, dt, 0.5, 1.5).requires_grad_(true) : Tensor();
  Tensor b = o.affine ? channel_values(C, 10, dt, -0.5, 0.5).requires_grad_(true) : Tensor();
  Tensor rm = o.track ? channel_values(C, 11, dt, -1, 1) : Tensor();
  Tensor rv = o.track ? channel_values(C, 12, dt, 0.5, 2) : Tensor();
  Tensor y = o.composed ? sync_batch_norm_composed_on_device(x, rm, rv, w, b, kMomentum, kEps, group)
                        : sync_batch_norm(x, rm, rv, w, b, group, kMomentum, kEps);
  sum(mul(y, upstream(s, dt).narrow(0, start, rows))).backward();
  Tensor dx = x.grad().defined() ? x.grad() : zeros_like(x);
  return {y.detach(), dx, o.affine ? w.grad() : Tensor(), o.affine ? b.grad() : Tensor(), rm, rv};
}

// Shards of `sizes` rows over len(sizes) TCP ranks, checked against the full batch.
void check_against_full(const std::vector<int64_t>& sizes, Shape s_rest, DType dt, const Options& o) {
  const int world = int(sizes.size());
  const int64_t B = std::accumulate(sizes.begin(), sizes.end(), int64_t(0));
  Shape s{B};
  s.insert(s.end(), s_rest.begin(), s_rest.end());
  const Full ref = full_batch(s, dt, o);
  std::vector<Shard> got(sizes.size());
  auto errors = test::run_tcp_ranks(world, [&](std::shared_ptr<Communicator> c) {
    const int r = c->rank();
    const int64_t start = std::accumulate(sizes.begin(), sizes.begin() + r, int64_t(0));
    got[size_t(r)] = run_shard(train::dist::make_replica_group(c), s, start, sizes[size_t(r)], dt, o);
  });
  for (int r = 0; r < world; ++r) REQUIRE_MESSAGE(errors[size_t(r)].empty(), "rank ", r, ": ", errors[size_t(r)]);
  const double rtol = dt == DType::f64 ? 1e-12 : 1e-5, atol = dt == DType::f64 ? 1e-12 : 1e-5;
  std::vector<Tensor> ys, dxs;
  for (const Shard& g : got) ys.push_back(g.y), dxs.push_back(g.dx);
  RV_EXPECT_CLOSE(cat(ys, 0), ref.y, rtol, atol);
  RV_EXPECT_CLOSE(cat(dxs, 0), ref.dx, rtol, atol);
  if (o.affine) {
    Tensor dw = zeros_like(ref.dw), db = zeros_like(ref.db);
    for (const Shard& g : got) dw = add(dw, g.dw), db = add(db, g.db);
    RV_EXPECT_CLOSE(dw, ref.dw, rtol, atol);
    RV_EXPECT_CLOSE(db, ref.db, rtol, atol);
  }
  if (o.track)
    for (const Shard& g : got) {
      RV_EXPECT_CLOSE(g.rm, ref.rm, rtol, atol);
      RV_EXPECT_CLOSE(g.rv, ref.rv, rtol, atol);
      // Every rank holds the same bits (rank-order sums, the same merge on every rank).
      CHECK(g.rm.to_double_vector() == got[0].rm.to_double_vector());
      CHECK(g.rv.to_double_vector() == got[0].rv.to_double_vector());
    }
}

}  // namespace

TEST_CASE("sync_batch_norm on 2 and 3 TCP ranks equals batch_norm on the concatenated batch (f64, 1e-12)") {
  SUBCASE("2 ranks, equal shards") { check_against_full({2, 2}, {3, 4, 5}, DType::f64, {}); }
  SUBCASE("2 ranks, unequal shards") { check_against_full({3, 1}, {3, 4, 5}, DType::f64, {}); }
  SUBCASE("3 ranks, one shard empty, 1x1 spatial") { check_against_full({2, 0, 3}, {5, 1, 1}, DType::f64, {}); }
  SUBCASE("3 ranks, strided shards") { check_against_full({1, 2, 2}, {2, 3, 6}, DType::f64, {.strided = true}); }
  SUBCASE("2 ranks, no affine, no running stats") {
    check_against_full({2, 3}, {3, 2, 3}, DType::f64, {.affine = false, .track = false});
  }
}

TEST_CASE("sync_batch_norm in f32 (1e-5), and the composed (device) implementation on CPU tensors") {
  SUBCASE("f32, 2 ranks, unequal") { check_against_full({3, 2}, {4, 5, 3}, DType::f32, {}); }
  SUBCASE("f32, 3 ranks, strided") { check_against_full({2, 1, 2}, {3, 4, 4}, DType::f32, {.strided = true}); }
  SUBCASE("composed, f64, 2 ranks, unequal") { check_against_full({1, 3}, {3, 4, 5}, DType::f64, {.composed = true}); }
  SUBCASE("composed, f64, 3 ranks, one empty") {
    check_against_full({0, 2, 2}, {2, 3, 3}, DType::f64, {.composed = true});
  }
  SUBCASE("composed, f32, no affine") {
    check_against_full({2, 2}, {3, 2, 2}, DType::f32, {.affine = false, .composed = true});
  }
}

TEST_CASE("sync_batch_norm: one value per channel over all ranks fails on every rank, naming the op") {
  auto errors = test::run_tcp_ranks(2, [&](std::shared_ptr<Communicator> c) {
    Tensor x = c->rank() == 0 ? test::test_tensor({1, 3, 1, 1}, 1, DType::f64) : zeros({0, 3, 1, 1}, DType::f64);
    sync_batch_norm(x, {}, {}, {}, {}, train::dist::make_replica_group(c));
  });
  for (const auto& e : errors) CHECK_MESSAGE(e.find("sync_batch_norm: expected more than 1 value per channel over all "
                                                    "ranks") != std::string::npos, e);
}

TEST_CASE("sync_batch_norm with no group or one rank is batch_norm bit for bit") {
  const Shape s{3, 4, 2, 5};
  Tensor x = test::test_tensor(s, 1, DType::f32);
  Tensor rm1 = zeros({4}), rv1 = ones({4}), rm2 = zeros({4}), rv2 = ones({4});
  Tensor a = batch_norm(x, rm1, rv1, {}, {}, true, 0.1, 1e-5);
  Tensor b = sync_batch_norm(x, rm2, rv2, {}, {}, nullptr, 0.1, 1e-5);
  CHECK(a.to_vector<float>() == b.to_vector<float>());
  CHECK(rv1.to_vector<float>() == rv2.to_vector<float>());
  auto errors = test::run_tcp_ranks(1, [&](std::shared_ptr<Communicator> c) {
    Tensor rm3 = zeros({4}), rv3 = ones({4});
    Tensor y = sync_batch_norm(x, rm3, rv3, {}, {}, train::dist::make_replica_group(c), 0.1, 1e-5);
    CHECK(y.to_vector<float>() == a.to_vector<float>());
    CHECK(rm3.to_vector<float>() == rm1.to_vector<float>());
  });
  CHECK(errors[0].empty());
}

// ---- the module ----------------------------------------------------------------------------------

namespace {

// conv -> bn (a typed member, as models/seg's ConvModule) and a Sequential with a BatchNorm2d inside.
struct Net : nn::UnaryModule {
  std::shared_ptr<nn::Conv2d> conv;
  std::shared_ptr<nn::BatchNorm2d> bn;
  std::shared_ptr<nn::Sequential> tail;
  explicit Net(Generator& gen) {
    conv = register_module("conv", std::make_shared<nn::Conv2d>(2, 3, Pair{3, 3}, gen,
                                                                nn::Conv2dOptions{.padding = {1, 1}}));
    bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(3));
    tail = register_module("tail", std::make_shared<nn::Sequential>());
    tail->push_back(std::make_shared<nn::BatchNorm2d>(3, 1e-3, std::nullopt));
  }
  Tensor forward(const Tensor& x) override { return tail->forward(bn->forward(conv->forward(x))); }

 protected:
  void child_replaced(const std::string& name, const std::shared_ptr<nn::Module>& now) override {
    if (name == "bn") bn = std::dynamic_pointer_cast<nn::BatchNorm2d>(now);
  }
};

// The same, without updating its typed member: the conversion must refuse it.
struct StaleNet : nn::UnaryModule {
  std::shared_ptr<nn::BatchNorm2d> bn;
  StaleNet() { bn = register_module("bn", std::make_shared<nn::BatchNorm2d>(3)); }
  Tensor forward(const Tensor& x) override { return bn->forward(x); }
};

}  // namespace

TEST_CASE("convert_sync_batchnorm: same state dict names and tensors, typed members re-pointed, stale ones refused") {
  Generator gen(5, 0);
  Net net(gen);
  const nn::StateDict before = net.state_dict();
  const Tensor w_before = net.bn->weight;
  auto errors = test::run_tcp_ranks(1, [&](std::shared_ptr<Communicator> c) {
    CHECK(nn::convert_sync_batchnorm(net, train::dist::make_replica_group(c)) == 2);
  });
  REQUIRE(errors[0].empty());
  CHECK(dynamic_cast<nn::SyncBatchNorm*>(net.bn.get()) != nullptr);
  CHECK(dynamic_cast<nn::SyncBatchNorm*>(net.tail->operator[](0).get()) != nullptr);
  CHECK(net.bn->type_name() == "SyncBatchNorm");
  CHECK(net.bn->weight.same(w_before));  // the very same tensors: optimizers built before still fit
  const nn::StateDict after = net.state_dict();
  REQUIRE(after.size() == before.size());
  std::vector<std::string> names_before, names_after;
  for (const auto& [name, t] : before) names_before.push_back(name);
  for (const auto& [name, t] : after) names_after.push_back(name);
  CHECK(names_after == names_before);
  auto tail_bn = std::dynamic_pointer_cast<nn::SyncBatchNorm>(net.tail->operator[](0));
  CHECK(!tail_bn->momentum().has_value());  // settings carried over
  CHECK(tail_bn->eps() == 1e-3);

  StaleNet stale;
  CHECK_THROWS_WITH_AS(nn::convert_sync_batchnorm(stale, nullptr),
                       doctest::Contains("the BatchNorm2d 'bn' is still held elsewhere"), std::logic_error);
}

TEST_CASE("SyncBatchNorm module: 2 ranks train like one BatchNorm2d on the whole batch; eval is BatchNorm2d") {
  const Shape s{4, 3, 3, 3};
  Tensor X = test::test_tensor(s, 21, DType::f64, -1, 3);
  nn::BatchNorm2d ref(3, 1e-5, std::nullopt);  // cumulative average: num_batches_tracked matters
  ref.to(DType::f64);
  Tensor yref;
  for (int step = 0; step < 2; ++step) yref = ref.forward(X);
  std::vector<Tensor> y(2), rm(2), rv(2), nbt(2), yeval(2);
  auto errors = test::run_tcp_ranks(2, [&](std::shared_ptr<Communicator> c) {
    const int r = c->rank();
    nn::SyncBatchNorm m(3, train::dist::make_replica_group(c), 1e-5, std::nullopt);
    m.to(DType::f64);
    CHECK(m.synchronised());
    Tensor x = X.narrow(0, 2 * r, 2);
    for (int step = 0; step < 2; ++step) y[size_t(r)] = m.forward(x);
    rm[size_t(r)] = m.running_mean, rv[size_t(r)] = m.running_var, nbt[size_t(r)] = m.num_batches_tracked;
    m.eval();
    CHECK(!m.synchronised());
    yeval[size_t(r)] = m.forward(x);  // no collective in eval: ranks could even run different counts
  });
  REQUIRE(errors[0].empty());
  REQUIRE(errors[1].empty());
  RV_EXPECT_CLOSE(cat(y, 0), yref, 1e-12, 1e-12);
  for (int r = 0; r < 2; ++r) {
    RV_EXPECT_CLOSE(rm[size_t(r)], ref.running_mean, 1e-12, 1e-12);
    RV_EXPECT_CLOSE(rv[size_t(r)], ref.running_var, 1e-12, 1e-12);
    CHECK(nbt[size_t(r)].item() == 2);
  }
  ref.eval();
  RV_EXPECT_CLOSE(cat(yeval, 0), ref.forward(X), 1e-12, 1e-12);
}

// ---- under mpirun --------------------------------------------------------------------------------

// Run by the next test under mpirun (a no-op otherwise): the unequal-shard check over MPI.
TEST_CASE("mpi child: sync_batch_norm over MPI equals batch_norm on the whole batch") {
  if (!std::getenv("OMPI_COMM_WORLD_SIZE")) return;
  std::shared_ptr<Communicator> c = train::dist::make_mpi_communicator(train::dist::read_launch_layout());
  const int r = c->rank(), world = c->world_size();
  std::vector<int64_t> sizes;
  for (int q = 0; q < world; ++q) sizes.push_back(q + 1);  // 1, 2, ...: unequal
  const int64_t B = std::accumulate(sizes.begin(), sizes.end(), int64_t(0));
  const int64_t start = std::accumulate(sizes.begin(), sizes.begin() + r, int64_t(0));
  const Shape s{B, 3, 4, 5};
  const Full ref = full_batch(s, DType::f64, {});
  const Shard got = run_shard(train::dist::make_replica_group(c), s, start, sizes[size_t(r)], DType::f64, {});
  const std::string y = test::compare(got.y, ref.y.narrow(0, start, sizes[size_t(r)]), {1e-12, 1e-12});
  const std::string dx = test::compare(got.dx, ref.dx.narrow(0, start, sizes[size_t(r)]), {1e-12, 1e-12});
  const std::string rv = test::compare(got.rv, ref.rv, {1e-12, 1e-12});
  REQUIRE_MESSAGE(y.empty(), y);
  REQUIRE_MESSAGE(dx.empty(), dx);
  REQUIRE_MESSAGE(rv.empty(), rv);
  std::vector<double> dw = got.dw.to_double_vector();  // the shares add up to the full-batch gradient
  c->all_reduce_sum(dw.data(), int64_t(dw.size()), DType::f64);
  const std::string w = test::compare(from_vector(dw, {3}, DType::f64), ref.dw, {1e-12, 1e-12});
  REQUIRE_MESSAGE(w.empty(), w);
}

TEST_CASE("mpi: sync_batch_norm under mpirun -np 2 (this executable, the test above)") {
  if (!train::dist::mpi_compiled_in() || std::system("command -v mpirun >/dev/null 2>&1") != 0) {
    WARN_MESSAGE(false, "skipped: this build has no MPI, or mpirun is not installed (libopenmpi-dev, openmpi-bin)");
    return;
  }
  if (std::getenv("OMPI_COMM_WORLD_SIZE")) return;  // already a child
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  REQUIRE(n > 0);
  self[n] = 0;
  const std::string cmd = "env OMP_NUM_THREADS=1 timeout 60 mpirun --allow-run-as-root --oversubscribe -np 2 '" +
                          std::string(self) + "' -tc='mpi child: *' > /dev/null 2>&1";
  CAPTURE(cmd);
  CHECK(std::system(cmd.c_str()) == 0);
}
