// test_nccl.cpp: the NCCL communicator (train/distributed/nccl_communicator.h) on cuda:0, in a
// world of one rank: all_reduce, broadcast, all_gather and reduce_scatter on device buffers
// written and read by ordinary device ops (so the fences between the compute stream and the
// communication stream are exercised: a collective that ran before its input was written, or an
// op that read before the collective finished, would show wrong values), f32 / f64 / i64, empty
// and odd sizes; host pointers served by the bootstrap communicator; a mixed call refused.
//
// Only one rank: NCCL cannot run two ranks on one GPU, and our GPU machines have one, so the
// multi-rank sums (and NCCL's ring / tree order) are not tested here; the multi-rank logic
// around them (buckets, id exchange over MPI / TCP, the averaging) is tested on the CPU by
// tests/unit/test_dist*.cpp. With one rank every collective is a copy, so results are exact.
// Skipped (exit 77) without a GPU; without NCCL in the build the cases say so and pass.
#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "engine/ops/elementwise.h"
#include "engine/tensor.h"
#include "tests/support/check.h"
#include "train/distributed/communicator.h"
#include "train/distributed/nccl_communicator.h"

using namespace rv;
using namespace rv::train::dist;

namespace {

const Device kDev = cuda_device(0);

std::shared_ptr<Communicator> world_of_one() {
  return make_nccl_communicator(std::make_shared<LocalCommunicator>(), 0);
}

// A device tensor whose values come from a kernel on the compute stream (x * 3 + 1), so it is
// only complete once that kernel ran.
Tensor computed(const Shape& shape, DType dt, uint64_t seed) {
  return add(mul(test::test_tensor(shape, seed, dt, -2.0, 2.0).to(kDev), 3.0), 1.0);
}

}  // namespace

TEST_CASE("nccl (1 rank): all_reduce / broadcast / all_gather / reduce_scatter on device buffers") {
  if (!nccl_compiled_in()) {
    WARN_MESSAGE(false, "NCCL is not in this build (cmake/Nccl.cmake did not find it): nothing to test");
    return;
  }
  auto comm = world_of_one();
  CHECK(comm->world_size() == 1);
  CHECK(comm->device_collectives());
  for (int64_t n : {int64_t(1), int64_t(7), int64_t(197), int64_t(4097), int64_t(1) << 20}) {
    CAPTURE(n);
    for (DType dt : {DType::f32, DType::f64}) {
      CAPTURE(dtype_name(dt));
      const Tensor x = computed({n}, dt, uint64_t(n));
      const std::vector<double> expect = x.cpu().to_double_vector();
      Tensor y = x.clone();
      comm->all_reduce_sum(y.device_data(), n, dt);  // in place; the sum over one rank
      Tensor z = mul(y, 1.0);                         // a compute-stream op after the collective
      CHECK(z.cpu().to_double_vector() == expect);

      Tensor b = x.clone();
      comm->broadcast(b.device_data(), n * int64_t(dtype_size(dt)), 0);
      CHECK(b.cpu().to_double_vector() == expect);

      Tensor g = empty({n}, dt, kDev);
      comm->all_gather(x.device_data(), n * int64_t(dtype_size(dt)), g.device_data());
      CHECK(g.cpu().to_double_vector() == expect);

      Tensor s = empty({n}, dt, kDev);
      comm->reduce_scatter_sum(x.device_data(), s.device_data(), n, dt);
      CHECK(s.cpu().to_double_vector() == expect);
    }
  }
  // int64 (step counters, histograms) through all_reduce
  Tensor k = arange(int64_t(1001)).to(kDev);  // 0 .. 1000
  comm->all_reduce_sum(k.device_data(), 1001, DType::i64);
  CHECK(k.cpu().to_vector<int64_t>()[1000] == 1000);
  // empty buffers are fine
  Tensor e = empty({0}, DType::f32, kDev);
  comm->all_reduce_sum(e.device_data(), 0, DType::f32);
  comm->barrier();  // waits for the comm stream, then the host barrier
}

TEST_CASE("nccl (1 rank): host pointers go to the bootstrap communicator; mixed calls and bad dtypes refused") {
  if (!nccl_compiled_in()) return;
  auto comm = world_of_one();
  std::vector<int64_t> counts = {3, 5, 7}, gathered(3);
  comm->all_reduce_sum(counts.data(), 3, DType::i64);
  CHECK(counts == std::vector<int64_t>{3, 5, 7});
  comm->all_gather(counts.data(), 24, gathered.data());
  CHECK(gathered == counts);
  CHECK(broadcast_string(*comm, "abc") == "abc");
  Tensor d = zeros({3}, DType::i64, kDev);
  CHECK_THROWS_WITH_AS(comm->all_gather(counts.data(), 24, d.device_data()),
                       doctest::Contains("one buffer is in device memory and the other in host memory"),
                       std::invalid_argument);
  Tensor h = zeros({4}, DType::bf16, kDev);
  CHECK_THROWS_WITH_AS(comm->all_reduce_sum(h.device_data(), 4, DType::bf16), doctest::Contains("all_reduce: dtype"),
                       std::invalid_argument);
}
