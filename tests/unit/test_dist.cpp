// test_dist.cpp: train/distributed/ without a launcher: the launch layout read from torchrun /
// Open MPI / Slurm variables; the TCP communicator with its ranks as threads of this process
// (sums in rank order, bit for bit against a plain loop; broadcast from any root; all_gather;
// ranks that disagree; a dead peer; a rendezvous nobody answers); bucketed gradient averaging
// (the reverse-order buckets, the 1/W average, parameters with no gradient); reduce_scatter in
// rank order for every dtype, over TCP and over MPI (this executable run again under
// `mpirun -np 2` and `-np 3`); the watchdog ending a stuck collective (in a forked child, as it
// ends the process).
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <numeric>
#include <stdexcept>
#include <thread>
#include <type_traits>
#include <vector>

#include "engine/tensor.h"
#include "train/distributed/communicator.h"
#include "train/distributed/grad_sync.h"
#include "train/distributed/launch_env.h"
#include "train/distributed/mpi_communicator.h"
#include "train/distributed/tcp_communicator.h"
#include "train/distributed/watchdog.h"
#include "tests/support/tcp_ranks.h"

namespace {

using namespace rv;
using namespace rv::train::dist;
using Clock = std::chrono::steady_clock;

// The TCP ranks-as-threads helpers live in tests/support/tcp_ranks.h (unit_sync_batch_norm uses
// them too); these keep this file's short names.
int free_port_pair() { return rv::test::free_tcp_port_pair(); }
LaunchLayout layout(int rank, int world, int port) { return rv::test::tcp_layout(rank, world, port); }

// Runs body(comm) on `world` threads, one TcpCommunicator each; errors are collected per rank.
std::vector<std::string> run_ranks(int world, const std::function<void(Communicator&)>& body, double timeout = 10) {
  return rv::test::run_tcp_ranks(world, [&](std::shared_ptr<Communicator> c) { body(*c); }, timeout);
}

bool has(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("launch layout: torchrun, Open MPI and Slurm variables, with their precedence") {
  CHECK(read_launch_layout(std::map<std::string, std::string>{}).world_size == 1);
  LaunchLayout t = read_launch_layout({{"RANK", "3"}, {"WORLD_SIZE", "8"}, {"LOCAL_RANK", "1"},
                                       {"LOCAL_WORLD_SIZE", "2"}, {"MASTER_ADDR", "node7"}, {"MASTER_PORT", "1234"},
                                       {"OMPI_COMM_WORLD_SIZE", "4"}, {"SLURM_PROCID", "0"}, {"SLURM_NTASKS", "9"}});
  CHECK(t.launcher == Launcher::torchrun);
  CHECK(t.rank == 3);
  CHECK(t.world_size == 8);
  CHECK(t.local_rank == 1);
  CHECK(t.local_world_size == 2);
  CHECK(t.master_addr == "node7");
  CHECK(t.master_port == 1234);
  // mpirun inside a Slurm allocation: Open MPI's variables describe this process.
  LaunchLayout m = read_launch_layout({{"OMPI_COMM_WORLD_RANK", "1"}, {"OMPI_COMM_WORLD_SIZE", "2"},
                                       {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}, {"SLURM_PROCID", "0"},
                                       {"SLURM_NTASKS", "1"}});
  CHECK(m.launcher == Launcher::openmpi);
  CHECK(m.rank == 1);
  CHECK(m.world_size == 2);
  CHECK(m.local_rank == 1);
  LaunchLayout s = read_launch_layout({{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "16"}, {"SLURM_LOCALID", "1"},
                                       {"SLURM_NTASKS_PER_NODE", "4(x4)"}, {"SLURM_JOB_NODELIST", "gpu[07-10],cpu1"}});
  CHECK(s.launcher == Launcher::slurm);
  CHECK(s.rank == 5);
  CHECK(s.world_size == 16);
  CHECK(s.local_rank == 1);
  CHECK(s.local_world_size == 4);
  CHECK(s.master_addr == "gpu07");
  CHECK(s.master_port == 29500);
  CHECK(first_slurm_host("a,b") == "a");
  CHECK(first_slurm_host("n[3,5]") == "n3");
  CHECK(first_slurm_host("solo") == "solo");
  CHECK_THROWS_WITH_AS(read_launch_layout({{"RANK", "0"}}), doctest::Contains("RANK and WORLD_SIZE"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(read_launch_layout({{"RANK", "2"}, {"WORLD_SIZE", "2"}}), doctest::Contains("rank 2"),
                       std::invalid_argument);
  CHECK_THROWS_WITH_AS(read_launch_layout({{"RANK", "x"}, {"WORLD_SIZE", "2"}}), doctest::Contains("RANK='x'"),
                       std::invalid_argument);
}

TEST_CASE("make_communicator: one process is local; a launch this build cannot serve says why") {
  rv::config::DistSection cfg;
  CHECK(make_communicator(cfg, LaunchLayout{})->name() == "local");
  LaunchLayout two = layout(0, 2, 29500);
  cfg.backend = "nccl";  // on the CPU (more in test_dist_device.cpp)
  CHECK_THROWS_WITH(make_communicator(cfg, two), doctest::Contains("NCCL moves GPU memory"));
  cfg.backend = "none";
  CHECK_THROWS_WITH(make_communicator(cfg, two), doctest::Contains("dist.backend = none"));
  cfg.backend = "mpi";
  CHECK_THROWS_WITH(make_communicator(cfg, two), doctest::Contains("launch it with mpirun"));
  LocalCommunicator local;
  int64_t v[2] = {5, 7}, out[2] = {0, 0};
  local.all_reduce_sum(v, 2, DType::i64);
  local.all_gather(v, sizeof v, out);
  CHECK(out[1] == 7);
  CHECK_THROWS_WITH_AS(add_into(v, v, 1, DType::i32), doctest::Contains("int32"), std::invalid_argument);
}

TEST_CASE("tcp: all_reduce sums in rank order (bit for bit), broadcast from any root, all_gather, barrier") {
  const int world = 3;
  const int64_t n = 1001;  // odd; values with many significant bits, so the order shows
  auto value = [](int r, int64_t i) { return float(std::sin(double(i) * 0.37 + r)) * float(1 + r * 1e-3); };
  std::vector<std::vector<float>> sums(world);
  std::vector<std::vector<double>> gathered(world);
  std::vector<std::string> bcast(world);
  std::vector<int64_t> isum(world);
  auto errors = run_ranks(world, [&](Communicator& c) {
    const int r = c.rank();
    std::vector<float> x(n);
    for (int64_t i = 0; i < n; ++i) x[size_t(i)] = value(r, i);
    c.all_reduce_sum(x.data(), n, DType::f32);
    sums[size_t(r)] = x;
    int64_t k = 10 + r;
    c.all_reduce_sum(&k, 1, DType::i64);
    isum[size_t(r)] = k;
    std::vector<double> mine = {double(r), double(r) + 0.5}, all(2 * world);
    c.all_gather(mine.data(), int64_t(mine.size() * 8), all.data());
    gathered[size_t(r)] = all;
    bcast[size_t(r)] = broadcast_string(c, r == 2 ? "from rank 2" : "", 2);
    c.barrier();
    c.all_reduce_sum(x.data(), 0, DType::f64);  // empty: fine
  });
  for (int r = 0; r < world; ++r) REQUIRE_MESSAGE(errors[size_t(r)].empty(), errors[size_t(r)]);
  for (int64_t i = 0; i < n; ++i) {
    // Stored first, so the compiler cannot fuse value()'s product into the sum (FMA contraction).
    volatile float x0 = value(0, i), x1 = value(1, i), x2 = value(2, i);
    const float expect = (x0 + x1) + x2;  // ((x0 + x1) + x2)
    for (int r = 0; r < world; ++r) REQUIRE(sums[size_t(r)][size_t(i)] == expect);
  }
  for (int r = 0; r < world; ++r) {
    CHECK(isum[size_t(r)] == 33);
    CHECK(gathered[size_t(r)] == std::vector<double>{0, 0.5, 1, 1.5, 2, 2.5});
    CHECK(bcast[size_t(r)] == "from rank 2");
  }
}

namespace {
// Rank r's element i of the reduce_scatter input: many significant bits, so the order of the sum shows.
template <class T> T rs_value(int r, int64_t i) {
  if constexpr (std::is_same_v<T, int64_t>) return (int64_t(r) << 40) + i * 7919 - 3;
  // One correctly rounded division of two small integers: the same bits wherever it is inlined
  // (a product or sum here could be contracted into an FMA in one place and not in another).
  else return T((i * 7919 + r * 104729) % 2001 - 1000) / T(7 + 2 * r);
}

// reduce_scatter of `count` elements per rank over `world` TCP ranks, against the rank-order sum.
template <class T> void check_reduce_scatter(int world, int64_t count, DType dtype) {
  std::vector<std::vector<T>> outs(static_cast<size_t>(world));
  auto errors = run_ranks(world, [&](Communicator& c) {
    const int r = c.rank();
    std::vector<T> in(size_t(count * world));
    for (size_t i = 0; i < in.size(); ++i) in[i] = rs_value<T>(r, int64_t(i));
    std::vector<T> out(size_t(count), T(-1));
    c.reduce_scatter_sum(in.data(), out.data(), count, dtype);
    outs[size_t(r)] = out;
  });
  for (int r = 0; r < world; ++r) REQUIRE_MESSAGE(errors[size_t(r)].empty(), errors[size_t(r)]);
  for (int r = 0; r < world; ++r)
    for (int64_t i = 0; i < count; ++i) {
      const int64_t at = r * count + i;  // rank r holds chunk r
      // Every term stored before it is added: the compiler must not fuse rs_value's product
      // into the sum (FMA contraction), nor reorder.
      volatile T sum = rs_value<T>(0, at);
      for (int q = 1; q < world; ++q) {
        volatile T term = rs_value<T>(q, at);
        sum = sum + term;
      }
      REQUIRE(outs[size_t(r)][size_t(i)] == sum);
    }
}
}  // namespace

TEST_CASE("tcp: reduce_scatter gives rank r the rank-order sum of chunk r (2 and 3 ranks, every dtype)") {
  for (int world : {2, 3}) {
    CAPTURE(world);
    check_reduce_scatter<float>(world, 257, DType::f32);
    check_reduce_scatter<double>(world, 7, DType::f64);
    check_reduce_scatter<int64_t>(world, 1, DType::i64);
    check_reduce_scatter<float>(world, 0, DType::f32);  // empty chunks: fine
  }
  LocalCommunicator local;
  const float in[3] = {1.5f, 2.5f, -3.0f};
  float out[3] = {};
  local.reduce_scatter_sum(in, out, 3, DType::f32);
  CHECK(std::vector<float>(out, out + 3) == std::vector<float>{1.5f, 2.5f, -3.0f});
  CHECK_THROWS_WITH_AS(local.reduce_scatter_sum(in, out, 1, DType::bf16), doctest::Contains("reduce_scatter: dtype"),
                       std::invalid_argument);
  // Ranks that disagree on the size fail naming both calls (3 ranks' worth of 4 elements vs 2).
  auto errors = run_ranks(2, [](Communicator& c) {
    std::vector<float> in(8), out(4);
    c.reduce_scatter_sum(in.data(), out.data(), c.rank() == 0 ? 4 : 2, DType::f32);
  }, 2);
  CHECK_MESSAGE(has(errors[0], "rank 0 is in reduce_scatter of 32 bytes but rank 1 is in reduce_scatter of 16"),
                errors[0]);
}

// Run by the next test under mpirun (a no-op when this process was not started by mpirun):
// every collective of the MPI communicator against the same rank-order references.
TEST_CASE("mpi child: reduce_scatter and all_reduce in rank order") {
  if (!std::getenv("OMPI_COMM_WORLD_SIZE")) return;
  auto c = make_mpi_communicator(read_launch_layout());
  const int world = c->world_size(), r = c->rank();
  auto run = [&](auto zero, int64_t count, DType dtype) {
    using T = decltype(zero);
    std::vector<T> in(size_t(count * world)), out(size_t(count), T(-1));
    for (size_t i = 0; i < in.size(); ++i) in[i] = rs_value<T>(r, int64_t(i));
    c->reduce_scatter_sum(in.data(), out.data(), count, dtype);
    for (int64_t i = 0; i < count; ++i) {
      volatile T sum = rs_value<T>(0, r * count + i);
      for (int q = 1; q < world; ++q) {
        volatile T term = rs_value<T>(q, r * count + i);  // stored: no FMA contraction into the sum
        sum = sum + term;
      }
      REQUIRE(out[size_t(i)] == sum);
    }
    c->all_reduce_sum(in.data(), int64_t(in.size()), dtype);  // the all_reduce holds every chunk's sums
    for (int64_t i = 0; i < count; ++i) REQUIRE(in[size_t(r * count + i)] == out[size_t(i)]);
  };
  run(0.0f, 1001, DType::f32);
  run(0.0, 7, DType::f64);
  run(int64_t(0), 1, DType::i64);
  run(0.0f, 0, DType::f32);
}

TEST_CASE("mpi: reduce_scatter under mpirun -np 2 and -np 3 (this executable, the test above)") {
  if (!mpi_compiled_in() || std::system("command -v mpirun >/dev/null 2>&1") != 0) {
    WARN_MESSAGE(false, "skipped: this build has no MPI, or mpirun is not installed (libopenmpi-dev, openmpi-bin)");
    return;
  }
  if (std::getenv("OMPI_COMM_WORLD_SIZE")) return;  // already a child
  char self[4096];
  const ssize_t n = ::readlink("/proc/self/exe", self, sizeof self - 1);
  REQUIRE(n > 0);
  self[n] = 0;
  for (int world : {2, 3}) {
    // timeout: a rank that fails leaves its peers blocked in a collective.
    const std::string cmd = "env OMP_NUM_THREADS=1 timeout 60 mpirun --allow-run-as-root --oversubscribe -np " +
                            std::to_string(world) + " '" + self + "' -tc='mpi child: *' > /dev/null 2>&1";
    CAPTURE(cmd);
    CHECK(std::system(cmd.c_str()) == 0);
  }
}

TEST_CASE("tcp: ranks that disagree on the collective fail naming both calls") {
  auto errors = run_ranks(2, [](Communicator& c) {
    int64_t v = 1, out[2];
    if (c.rank() == 0) c.all_reduce_sum(&v, 1, DType::i64);
    else c.all_gather(&v, 8, out);
  }, 2);
  CHECK_MESSAGE(has(errors[1], "rank 0 closed its connection"), errors[1]);
  CHECK_MESSAGE(has(errors[0], "rank 0 is in all_reduce of 8 bytes but rank 1 is in all_gather"), errors[0]);
}

TEST_CASE("tcp: a peer that dies makes the others fail at once, naming it") {
  const auto t0 = Clock::now();
  auto errors = run_ranks(3, [](Communicator& c) {
    int64_t v = 1;
    c.all_reduce_sum(&v, 1, DType::i64);
    if (c.rank() == 2) return;  // its destructor closes the sockets: as a crashed process's kernel does
    for (int i = 0; i < 3; ++i) c.all_reduce_sum(&v, 1, DType::i64);
  }, 30);
  CHECK(std::chrono::duration<double>(Clock::now() - t0).count() < 10);  // not the 30 s timeout
  CHECK_MESSAGE(has(errors[0], "rank 2 closed its connection during all_reduce"), errors[0]);
  CHECK_MESSAGE(has(errors[1], "rank 0 closed its connection"), errors[1]);  // rank 0 gave up, so rank 1 learns
}

TEST_CASE("tcp: a rendezvous nobody answers ends with the address, within the timeout") {
  const int port = free_port_pair();
  const auto t0 = Clock::now();
  const std::string where = "could not reach rank 0 at 127.0.0.1:" + std::to_string(port + 1);
  CHECK_THROWS_WITH(TcpCommunicator(layout(1, 2, port), 0.5), doctest::Contains(where.c_str()));
  CHECK_THROWS_WITH(TcpCommunicator(layout(0, 3, port), 0.5),
                    doctest::Contains("for rank(s) 1, 2 to connect"));
  CHECK(std::chrono::duration<double>(Clock::now() - t0).count() < 5);
}

TEST_CASE("GradientSync: reverse-order buckets, the average over ranks, missing gradients") {
  auto make_params = [](int r) {
    std::vector<Tensor> ps;
    for (int64_t n : {3, 5, 2, 7}) {
      Tensor p = zeros({n});
      p.requires_grad_();
      if (!(n == 2) && !(n == 5 && r == 0)) {  // p[2] has no gradient anywhere, p[1] only on rank 1
        Tensor g = empty({n});
        for (int64_t i = 0; i < n; ++i) g.data<float>()[i] = float(10 * r + i + n);
        p.set_grad(g);
      }
      ps.push_back(p);
    }
    return ps;
  };
  {  // buckets of at most 8 floats: [p3 (7)], [p2 (2), p1 (5)], [p0 (3)]
    LocalCommunicator local;
    GradientSync s(make_params(0), local, 32);
    REQUIRE(s.num_buckets() == 3);
    CHECK(s.bucket(0) == std::vector<size_t>{3});
    CHECK(s.bucket(1) == std::vector<size_t>{2, 1});
    CHECK(s.bucket(2) == std::vector<size_t>{0});
  }
  std::vector<std::vector<Tensor>> params(2);
  auto errors = run_ranks(2, [&](Communicator& c) {
    params[size_t(c.rank())] = make_params(c.rank());
    GradientSync s(params[size_t(c.rank())], c, 32);
    s.finish();
  });
  REQUIRE(errors[0].empty());
  REQUIRE(errors[1].empty());
  for (int r = 0; r < 2; ++r) {
    const auto& ps = params[size_t(r)];
    CHECK_FALSE(ps[2].grad().defined());
    for (size_t k : {size_t(0), size_t(1), size_t(3)}) {
      const int64_t n = ps[k].numel();
      REQUIRE(ps[k].grad().defined());
      for (int64_t i = 0; i < n; ++i) {
        const float r0 = k == 1 ? 0.0f : float(i + n), r1 = float(10 + i + n);
        CHECK(ps[k].grad().data<float>()[i] == (r0 + r1) / 2.0f);
      }
    }
  }
  LocalCommunicator local;
  CHECK_THROWS_WITH_AS(GradientSync({zeros({2}, DType::f64)}, local), doctest::Contains("expected float32"),
                       std::invalid_argument);
}

TEST_CASE("broadcast_state: every rank takes rank 0's tensors") {
  std::vector<nn::StateDict> states(2);
  auto errors = run_ranks(2, [&](Communicator& c) {
    nn::StateDict sd;
    Tensor w = zeros({4}), step = zeros({1}, DType::i64);
    for (int i = 0; i < 4; ++i) w.data<float>()[i] = float(c.rank() * 100 + i);
    step.data<int64_t>()[0] = 7 + c.rank();
    sd.insert("w", w);
    sd.insert("step", step);
    broadcast_state(sd, c);
    states[size_t(c.rank())] = sd;
  });
  REQUIRE(errors[1].empty());
  CHECK(states[1].at("w").to_vector<float>() == std::vector<float>{0, 1, 2, 3});
  CHECK(states[1].at("step").to_vector<int64_t>() == std::vector<int64_t>{7});
}

namespace {
// A collective that never finishes (a peer that stopped answering).
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
  void barrier() override { throw std::runtime_error("peer gone"); }
};
}  // namespace

TEST_CASE("watchdog: a stuck collective ends the process naming it, the step and the rank") {
  {  // errors of the wrapped collective come back with the step and rank
    WatchedCommunicator w(std::make_shared<Stuck>(), 10);
    w.set_step(5);
    CHECK_THROWS_WITH(w.barrier(), doctest::Contains("barrier at step 5 failed on rank 1: peer gone"));
  }
  int pipe_fds[2];
  REQUIRE(::pipe(pipe_fds) == 0);
  const auto t0 = Clock::now();
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {  // the child: stderr into the pipe, then a collective that never ends
    ::dup2(pipe_fds[1], 2);
    ::close(pipe_fds[0]);
    WatchedCommunicator w(std::make_shared<Stuck>(), 0.3);
    w.set_step(12);
    float x[4] = {};
    w.all_reduce_sum(x, 4, DType::f32);
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
  CHECK_MESSAGE(has(err, "rank 1: all_reduce (16 bytes) at step 12 did not finish within 0.3 s (dist.timeout_s)"),
                err);
}
