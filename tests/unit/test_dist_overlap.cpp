// test_dist_overlap.cpp: GradientSync with the all-reduce overlapped with the backward
// (grad_sync.h, dist.overlap). Over TCP ranks run as threads (2 and 3 ranks) and under
// `mpirun -np 2` (this executable again): a small network with gradient accumulation, a weight
// used twice, a parameter unused everywhere and one used on one rank in one micro-step only;
// the overlapped gradients must equal, bit for bit, the non-overlapped ones and a plain
// rank-order reference. With a single-process stand-in for two identical ranks: the buckets go
// out during the backward, on the communication thread, in bucket index order even when they
// complete out of order; nothing is sent on accumulation micro-steps; a second backward in one
// step is refused; a failing collective is rethrown by finish(); and a stuck one ends the
// process through the watchdog, naming the collective, the step and the rank.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/autograd_hooks.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/matmul.h"
#include "engine/ops/reduce.h"
#include "engine/tensor.h"
#include "tests/support/tcp_ranks.h"
#include "train/distributed/communicator.h"
#include "train/distributed/grad_sync.h"
#include "train/distributed/launch_env.h"
#include "train/distributed/mpi_communicator.h"
#include "train/distributed/tcp_communicator.h"
#include "train/distributed/watchdog.h"

namespace {

using namespace rv;
using namespace rv::train::dist;
using Clock = std::chrono::steady_clock;

// body(comm) on `world` TCP ranks that are threads (tests/support/tcp_ranks.h); errors per rank.
std::vector<std::string> run_ranks(int world, const std::function<void(Communicator&)>& body) {
  return rv::test::run_tcp_ranks(world, [&](std::shared_ptr<Communicator> c) { body(*c); }, 10);
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

// ---- the network ---------------------------------------------------------------------------
// Parameters, in model order:
//   p0 (7)    never used: no gradient on any rank
//   p1 (2)    used by rank 1 in micro-step 0 only: final before the last backward starts
//   p2 (3,4)  a weight used twice in each forward (two edges into one leaf)
//   p3 (4)    bias
//   p4 (4,5)  weight
//   p5 (5)    bias
// Buckets of 16 floats, reverse order: b0 [p5], b1 [p4], b2 [p3, p2], b3 [p1, p0]. In the last
// backward b0, b1, b2 complete (in that order); b3 never does (its parameters get nothing), so
// finish() sends it.
constexpr int64_t kBucketBytes = 64;
const std::vector<Shape> kShapes = {{7}, {2}, {3, 4}, {4}, {4, 5}, {5}};

// A value with many significant bits, the same wherever computed (one rounded division).
float val(int64_t a, int64_t b) { return float((a * 7919 + b * 104729) % 2001 - 1000) / 613.0f; }

std::vector<Tensor> make_params() {
  std::vector<Tensor> ps;
  for (size_t k = 0; k < kShapes.size(); ++k) {
    Tensor p = empty(kShapes[k]);
    for (int64_t i = 0; i < p.numel(); ++i) p.data<float>()[i] = val(int64_t(k), i);
    ps.push_back(p.requires_grad_());
  }
  return ps;
}

// One micro-step's loss on rank r; micro-step m of `micro`.
Tensor loss_of(const std::vector<Tensor>& p, int r, int m, int micro) {
  Tensor x = empty({2, 3});
  for (int64_t i = 0; i < 6; ++i) x.data<float>()[i] = val(100 + r, 10 * m + i);
  Tensor h = add(add(matmul(x, p[2]), matmul(x * 0.5, p[2])), p[3]);  // (2, 4); p2 twice
  h = mul(h, h);
  Tensor y = add(matmul(h, p[4]), p[5]);  // (2, 5)
  if (r == 1 && m == 0) y = add(y, sum(p[1]));
  return mul(sum(y), 1.0 / double(micro));
}

// Runs one step of `micro` micro-steps on rank `comm.rank()`, synced (overlapped or not), and
// returns the gradients (empty for none). launched: buckets sent before finish().
std::vector<std::vector<float>> synced_step(Communicator& comm, bool overlap, int micro, size_t* launched = nullptr) {
  std::vector<Tensor> p = make_params();
  GradientSync sync(p, comm, kBucketBytes, overlap);
  REQUIRE(sync.num_buckets() == 4);
  for (int m = 0; m < micro; ++m) {
    sync.prepare_backward(m + 1 == micro);
    loss_of(p, comm.rank(), m, micro).backward();
  }
  sync.finish();
  if (launched) *launched = sync.launched_before_finish();
  std::vector<std::vector<float>> out;
  for (const Tensor& t : p) out.push_back(t.grad().defined() ? t.grad().to_vector<float>() : std::vector<float>{});
  return out;
}

// The same step on rank r with no sync at all: the local gradients.
std::vector<std::vector<float>> local_grads(int r, int micro) {
  std::vector<Tensor> p = make_params();
  for (int m = 0; m < micro; ++m) loss_of(p, r, m, micro).backward();
  std::vector<std::vector<float>> out;
  for (const Tensor& t : p) out.push_back(t.grad().defined() ? t.grad().to_vector<float>() : std::vector<float>{});
  return out;
}

// The plain reference: ((g0 + g1) + g2) ... in rank order (zeros for a missing one), times 1/W
// in float; no gradient where no rank has one.
std::vector<std::vector<float>> reference(int world, int micro) {
  std::vector<std::vector<std::vector<float>>> g;
  for (int r = 0; r < world; ++r) g.push_back(local_grads(r, micro));
  const float inv = 1.0f / float(world);
  std::vector<std::vector<float>> out(kShapes.size());
  for (size_t k = 0; k < kShapes.size(); ++k) {
    bool any = false;
    for (int r = 0; r < world; ++r) any = any || !g[size_t(r)][k].empty();
    if (!any) continue;
    const size_t n = size_t(shape_numel(kShapes[k]));
    for (size_t i = 0; i < n; ++i) {
      volatile float s = g[0][k].empty() ? 0.0f : g[0][k][i];
      for (int r = 1; r < world; ++r) {
        volatile float term = g[size_t(r)][k].empty() ? 0.0f : g[size_t(r)][k][i];
        s = s + term;
      }
      volatile float avg = s * inv;
      out[k].push_back(float(avg));
    }
  }
  return out;
}

// ---- a single-process stand-in for two ranks holding the same values ------------------------
// all_reduce_sum doubles (the sum of two equal buffers), so averaged gradients equal the local
// ones exactly. Records every f32 all-reduce: its size, its thread and when it started.
class TwinRanks final : public Communicator {
 public:
  struct Call {
    int64_t count;
    std::thread::id thread;
    Clock::time_point start;
  };
  int rank() const override { return 0; }
  int world_size() const override { return 2; }
  int local_rank() const override { return 0; }
  std::string name() const override { return "twin"; }
  void all_reduce_sum(void* data, int64_t count, DType dtype) override {
    if (dtype == DType::f32) {
      {
        std::lock_guard<std::mutex> lock(mu);
        calls.push_back({count, std::this_thread::get_id(), Clock::now()});
      }
      if (fail_f32) throw std::runtime_error("twin: the peer went away");
      std::this_thread::sleep_for(delay);
      for (int64_t i = 0; i < count; ++i) static_cast<float*>(data)[i] *= 2.0f;
    } else if (dtype == DType::i64) {
      for (int64_t i = 0; i < count; ++i) static_cast<int64_t*>(data)[i] *= 2;
    }
  }
  void broadcast(void*, int64_t, int) override {}
  void all_gather(const void*, int64_t, void*) override {}
  void reduce_scatter_sum(const void*, void*, int64_t, DType) override {}
  void barrier() override {}

  std::mutex mu;
  std::vector<Call> calls;
  std::chrono::milliseconds delay{0};
  bool fail_f32 = false;
};

void check_equal(const std::vector<std::vector<float>>& got, const std::vector<std::vector<float>>& expect) {
  REQUIRE(got.size() == expect.size());
  for (size_t k = 0; k < got.size(); ++k) {
    CAPTURE(k);
    CHECK(got[k] == expect[k]);  // bit for bit (float ==, and no gradient where none is expected)
  }
}

}  // namespace

TEST_CASE("overlap: bit-identical to the non-overlapped path and the rank-order reference (TCP, 2 and 3 ranks)") {
  for (int world : {2, 3}) {
    for (int micro : {1, 2}) {
      CAPTURE(world);
      CAPTURE(micro);
      const auto expect = reference(world, micro);
      CHECK(expect[0].empty());           // p0: no gradient anywhere
      CHECK(expect[1].size() == 2u);      // p1: rank 1's only (micro-step 0), averaged with zeros
      std::vector<std::vector<std::vector<float>>> on(static_cast<size_t>(world)), off(static_cast<size_t>(world));
      std::vector<size_t> launched_on(static_cast<size_t>(world)), launched_off(static_cast<size_t>(world));
      auto errors = run_ranks(world, [&](Communicator& c) {
        const size_t r = size_t(c.rank());
        on[r] = synced_step(c, true, micro, &launched_on[r]);
        off[r] = synced_step(c, false, micro, &launched_off[r]);
      });
      for (int r = 0; r < world; ++r) REQUIRE_MESSAGE(errors[size_t(r)].empty(), errors[size_t(r)]);
      for (int r = 0; r < world; ++r) {
        CAPTURE(r);
        check_equal(on[size_t(r)], expect);
        check_equal(off[size_t(r)], expect);
        CHECK(launched_on[size_t(r)] == 3);   // b0, b1, b2 went out during the last backward
        CHECK(launched_off[size_t(r)] == 0);  // everything after it
      }
    }
  }
}

TEST_CASE("overlap: buckets go out during the backward, on the communication thread, in index order") {
  TwinRanks twin;
  twin.delay = std::chrono::milliseconds(20);
  std::vector<Tensor> p = make_params();
  const auto expect = local_grads(0, 1);  // two equal ranks: the average is the local gradient
  GradientSync sync(p, twin, kBucketBytes, true);
  CHECK(sync.overlapped());
  // A slow first layer of the backward's end: a hook on p2 (the earliest used parameter) that
  // takes a while, so the buckets before it are on the wire before backward() returns.
  auto slow = autograd::register_post_accumulate_grad_hook(
      p[2], [](const Tensor&) { std::this_thread::sleep_for(std::chrono::milliseconds(150)); });
  sync.prepare_backward(true);
  loss_of(p, 0, 0, 1).backward();
  const auto backward_done = Clock::now();
  sync.finish();
  CHECK(sync.launched_before_finish() == 3);
  check_equal([&] {
    std::vector<std::vector<float>> g;
    for (const Tensor& t : p) g.push_back(t.grad().defined() ? t.grad().to_vector<float>() : std::vector<float>{});
    return g;
  }(), expect);
  REQUIRE(twin.calls.size() == 4);
  const std::vector<int64_t> sizes = {5, 20, 4 + 12, 2 + 7};  // b0 .. b3, in index order
  for (size_t b = 0; b < 4; ++b) {
    CAPTURE(b);
    CHECK(twin.calls[b].count == sizes[b]);
    CHECK(twin.calls[b].thread != std::this_thread::get_id());  // the communication thread
  }
  CHECK(twin.calls[0].start < backward_done);  // overlapped: started inside backward()
  CHECK(twin.calls[1].start < backward_done);

  // Not overlapped: the same calls, all on this thread, after the backward.
  TwinRanks twin_off;
  std::vector<Tensor> q = make_params();
  GradientSync off(q, twin_off, kBucketBytes, false);
  CHECK_FALSE(off.overlapped());
  off.prepare_backward(true);
  loss_of(q, 0, 0, 1).backward();
  CHECK(twin_off.calls.empty());
  off.finish();
  REQUIRE(twin_off.calls.size() == 4);
  for (size_t b = 0; b < 4; ++b) {
    CHECK(twin_off.calls[b].count == sizes[b]);
    CHECK(twin_off.calls[b].thread == std::this_thread::get_id());
  }
}

TEST_CASE("overlap: a bucket that completes first waits for the ones before it") {
  // a (index 0, 1 element) and b (index 1, 4 elements), buckets of 4 floats: b0 [b], b1 [a].
  // y = sum((x * b) * a): the backward reaches a first, so b1 completes before b0; it must not
  // go out first (the other ranks would be in b0's all-reduce).
  TwinRanks twin;
  Tensor a = full({1}, 1.5).requires_grad_(), b = full({4}, 0.25).requires_grad_();
  GradientSync sync({a, b}, twin, 16, true);
  REQUIRE(sync.num_buckets() == 2);
  std::vector<size_t> launched_when_a_final;
  auto probe = autograd::register_post_accumulate_grad_hook(a, [&](const Tensor&) {
    std::lock_guard<std::mutex> lock(twin.mu);
    launched_when_a_final.push_back(twin.calls.size());
  });
  sync.prepare_backward(true);
  sum(mul(mul(arange(0.0, 4.0, 1.0), b), a)).backward();
  sync.finish();
  REQUIRE(twin.calls.size() == 2);
  CHECK(twin.calls[0].count == 4);  // b0 [b] first
  CHECK(twin.calls[1].count == 1);  // then b1 [a]
  CHECK(launched_when_a_final == std::vector<size_t>{0});
  CHECK(sync.launched_before_finish() == 2);
  CHECK(a.grad().to_vector<float>() == std::vector<float>{(0 + 1 + 2 + 3) * 0.25f});
}

TEST_CASE("overlap: accumulation micro-steps send nothing; a second backward in one step is refused") {
  TwinRanks twin;
  std::vector<Tensor> p = make_params();
  GradientSync sync(p, twin, kBucketBytes, true);
  sync.prepare_backward(false);
  loss_of(p, 0, 0, 2).backward();
  CHECK(twin.calls.empty());  // accumulating: no reduction
  sync.prepare_backward(true);
  loss_of(p, 0, 1, 2).backward();
  CHECK(sync.launched_before_finish() == 0);  // (set by finish)
  sync.finish();
  CHECK(sync.launched_before_finish() == 3);
  check_equal([&] {
    std::vector<std::vector<float>> g;
    for (const Tensor& t : p) g.push_back(t.grad().defined() ? t.grad().to_vector<float>() : std::vector<float>{});
    return g;
  }(), local_grads(0, 2));
  // A backward outside a step (after finish, before prepare_backward): the hooks stay quiet.
  const size_t calls = twin.calls.size();
  loss_of(p, 0, 0, 1).backward();
  CHECK(twin.calls.size() == calls);
  for (Tensor& t : p) t.zero_grad();
  // Two backward passes after prepare_backward(true): the second would change sent gradients.
  sync.prepare_backward(true);
  loss_of(p, 0, 0, 1).backward();
  CHECK_THROWS_WITH_AS(loss_of(p, 0, 0, 1).backward(), doctest::Contains("received a second final gradient"),
                       std::logic_error);
  CHECK_THROWS_WITH_AS(sync.prepare_backward(true), doctest::Contains("call finish() before the next step"),
                       std::logic_error);
  sync.finish();  // completes the step; the object stays usable
  sync.prepare_backward(true);
  loss_of(p, 0, 0, 1).backward();
  sync.finish();
}

TEST_CASE("overlap: a collective that fails on the communication thread is rethrown by finish()") {
  TwinRanks twin;
  twin.fail_f32 = true;
  std::vector<Tensor> p = make_params();
  GradientSync sync(p, twin, kBucketBytes, true);
  sync.prepare_backward(true);
  loss_of(p, 0, 0, 1).backward();  // buckets go out, and fail, meanwhile
  CHECK_THROWS_WITH_AS(sync.finish(), doctest::Contains("twin: the peer went away"), std::runtime_error);
  {
    std::lock_guard<std::mutex> lock(twin.mu);
    CHECK(twin.calls.size() == 1);  // after the first failure nothing more is sent
  }
}

namespace {
// A peer that stopped answering: every f32 all-reduce blocks.
class Stuck final : public Communicator {
 public:
  int rank() const override { return 1; }
  int world_size() const override { return 2; }
  int local_rank() const override { return 1; }
  std::string name() const override { return "stuck"; }
  void all_reduce_sum(void*, int64_t, DType) override { std::this_thread::sleep_for(std::chrono::seconds(30)); }
  void broadcast(void*, int64_t, int) override {}
  void all_gather(const void*, int64_t, void*) override {}
  void reduce_scatter_sum(const void*, void*, int64_t, DType) override {}
  void barrier() override {}
};
}  // namespace

TEST_CASE("overlap: the watchdog ends a bucket stuck on the communication thread, naming it, the step and the rank") {
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const auto t0 = Clock::now();
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {  // the child: stderr into the pipe, then a step whose first bucket never returns
    ::dup2(pipe_fds[1], 2);
    ::close(pipe_fds[0]);
    WatchedCommunicator w(std::make_shared<Stuck>(), 0.3);
    w.set_step(12);
    std::vector<Tensor> p = make_params();
    GradientSync sync(p, w, kBucketBytes, true);
    sync.prepare_backward(true);
    loss_of(p, 1, 1, 1).backward();
    sync.finish();
    ::_exit(0);  // not reached: the watchdog ends the process first
  }
  ::close(pipe_fds[1]);
  std::string err;
  char buf[512];
  for (ssize_t n; (n = ::read(pipe_fds[0], buf, sizeof buf)) > 0;) err.append(buf, size_t(n));
  ::close(pipe_fds[0]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  CHECK(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 124);
  CHECK(std::chrono::duration<double>(Clock::now() - t0).count() < 5);
  // b0 = p5, 5 floats: the first bucket, sent from the communication thread.
  CHECK_MESSAGE(has(err, "rank 1: all_reduce (20 bytes) at step 12 did not finish within 0.3 s (dist.timeout_s)"),
                err);
}

// Run by the next test under mpirun (a no-op otherwise): the same comparison over MPI.
TEST_CASE("mpi child: overlapped and non-overlapped gradients equal the rank-order reference") {
  if (!std::getenv("OMPI_COMM_WORLD_SIZE")) return;
  auto c = make_mpi_communicator(read_launch_layout());
  REQUIRE(c->any_thread());  // Open MPI gives MPI_THREAD_SERIALIZED
  for (int micro : {1, 2}) {
    const auto expect = reference(c->world_size(), micro);
    size_t launched = 0;
    const auto on = synced_step(*c, true, micro, &launched);
    REQUIRE(launched == 3);
    const auto off = synced_step(*c, false, micro);
    for (size_t k = 0; k < expect.size(); ++k) {
      REQUIRE(on[k] == expect[k]);
      REQUIRE(off[k] == expect[k]);
    }
  }
}

TEST_CASE("mpi: overlap under mpirun -np 2 (this executable, the test above)") {
  if (!mpi_compiled_in() || std::system("command -v mpirun >/dev/null 2>&1") != 0) {
    WARN_MESSAGE(false, "skipped: this build has no MPI, or mpirun is not installed (libopenmpi-dev, openmpi-bin)");
    return;
  }
  if (std::getenv("OMPI_COMM_WORLD_SIZE")) return;  // already a child
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  REQUIRE(n > 0);
  self[n] = 0;
  // timeout: a rank that fails leaves its peers blocked in a collective.
  const std::string cmd = std::string("env OMP_NUM_THREADS=1 timeout 60 mpirun --allow-run-as-root --oversubscribe ") +
                          "-np 2 '" + self + "' -tc='mpi child: *' > /dev/null 2>&1";
  CAPTURE(cmd);
  CHECK(std::system(cmd.c_str()) == 0);
}
