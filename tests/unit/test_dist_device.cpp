// test_dist_device.cpp: the device side of train/distributed/ on any machine: GradientSync and
// broadcast_state with parameters on a "cuda" device whose memory is host memory
// (tests/support/host_memory_backend.h), over 2 TCP ranks run as threads, both ways a device run
// can go:
//   - a device communicator (as NCCL: device_collectives() is true): the bucket is packed into a
//     device buffer and that buffer's device pointer is what the communicator receives;
//   - a host communicator (MPI / TCP): the bucket goes through a host copy and back.
// Either way the gradients must equal, bit for bit, those the CPU path gives for the same
// values (missing gradients, non-contiguous ones, a 0-d parameter), and stay on the device.
// With overlap (the default) the buckets a backward completes go out before finish(): to a device
// communicator as deferred collectives, waited for once. Also: pick_local_gpu's choice and its
// error, and make_communicator's NCCL refusals.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "engine/backend.h"
#include "engine/tensor.h"
#include "tests/support/host_memory_backend.h"
#include "train/distributed/communicator.h"
#include "train/distributed/grad_sync.h"
#include "train/distributed/nccl_communicator.h"
#include "train/distributed/tcp_communicator.h"

using namespace rv;
using namespace rv::train::dist;

namespace {

const Device kDev = cuda_device(0);

// Host memory as a device, plus the one op GradientSync's device path computes (x * s).
class FakeDevice final : public test::HostMemoryBackend {
 public:
  std::atomic<int> scale_calls{0};
  void* allocate(size_t n, int index) override {
    void* p = HostMemoryBackend::allocate(n, index);
    std::lock_guard<std::mutex> lock(mu_);
    live_[static_cast<char*>(p)] = n;
    return p;
  }
  void deallocate(void* p, int index) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_.erase(static_cast<char*>(p));
    }
    HostMemoryBackend::deallocate(p, index);
  }
  // Whether p points into a live "device" block (a bucket is a slice of one flat buffer).
  bool is_device(const void* p) {
    std::lock_guard<std::mutex> lock(mu_);
    const char* c = static_cast<const char*>(p);
    auto it = live_.upper_bound(const_cast<char*>(c));
    if (it == live_.begin()) return false;
    --it;
    return c < it->first + it->second;
  }
  Tensor unary(UnaryOp op, const Tensor& x, double a, double b) override {
    // Runs on the rank threads: a plain exception (doctest's REQUIRE must not leave a thread).
    if (op != UnaryOp::mul_scalar || x.dtype() != DType::f32 || !x.is_contiguous())
      throw std::runtime_error(std::string("fake device: unexpected unary ") + unary_op_name(op));
    ++scale_calls;
    Tensor z = empty(x.shape(), DType::f32, x.device());
    const auto* xp = static_cast<const float*>(x.device_data());
    auto* zp = static_cast<float*>(z.device_data());
    for (int64_t i = 0; i < x.numel(); ++i) zp[i] = xp[i] * float(a);
    return z;
  }

 private:
  std::mutex mu_;
  std::map<char*, size_t> live_;  // block start -> bytes
};

FakeDevice* g_fake = nullptr;  // the installed one, for DeviceTcp's bookkeeping

struct Installed {
  FakeDevice dev;
  backend::DeviceBackend* previous = nullptr;
  Installed() {
    previous = backend::set_backend(DeviceType::cuda, &dev);
    g_fake = &dev;
  }
  ~Installed() {
    backend::set_backend(DeviceType::cuda, previous);
    g_fake = nullptr;
  }
};

// A TCP communicator that says it takes device pointers (the fake device's memory is host
// memory, so it can serve them) and counts the f32 all-reduces it got on each side.
class DeviceTcp final : public Communicator {
 public:
  DeviceTcp(TcpCommunicator& inner, bool device) : inner_(inner), device_(device) {}
  int rank() const override { return inner_.rank(); }
  int world_size() const override { return inner_.world_size(); }
  int local_rank() const override { return inner_.local_rank(); }
  std::string name() const override { return "device tcp"; }
  bool device_collectives() const override { return device_; }
  void all_reduce_sum(void* d, int64_t n, DType t) override {
    if (t == DType::f32) ++(g_fake && g_fake->is_device(d) ? device_reduces : host_reduces);
    inner_.all_reduce_sum(d, n, t);
  }
  void all_reduce_sum_deferred(void* d, int64_t n, DType t) override {
    ++deferred;
    all_reduce_sum(d, n, t);  // the fake device's "stream" is the host: done on return
  }
  void wait_deferred() override { ++waits; }
  void broadcast(void* d, int64_t n, int root) override {
    broadcast_on_device = g_fake && g_fake->is_device(d);
    inner_.broadcast(d, n, root);
  }
  void all_gather(const void* in, int64_t n, void* out) override { inner_.all_gather(in, n, out); }
  void reduce_scatter_sum(const void* in, void* out, int64_t n, DType t) override {
    inner_.reduce_scatter_sum(in, out, n, t);
  }
  void barrier() override { inner_.barrier(); }
  int device_reduces = 0, host_reduces = 0;
  int deferred = 0, waits = 0;  // overlapped device buckets; the compute stream's waits for them
  bool broadcast_on_device = false;

 private:
  TcpCommunicator& inner_;
  bool device_;
};

int free_port_pair() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port) - 1;  // MASTER_PORT; the rendezvous binds MASTER_PORT + 1
}

LaunchLayout layout(int rank, int world, int port) {
  LaunchLayout l;
  l.launcher = Launcher::torchrun;
  l.rank = rank;
  l.world_size = world;
  l.local_rank = rank;
  l.local_world_size = world;
  l.master_port = port;
  return l;
}

// body(comm) on 2 threads, each with a DeviceTcp over its own TcpCommunicator.
std::vector<std::string> run_ranks(bool device, const std::function<void(DeviceTcp&)>& body) {
  const int port = free_port_pair();
  std::vector<std::string> errors(2);
  std::vector<std::thread> threads;
  for (int r = 0; r < 2; ++r)
    threads.emplace_back([&, r] {
      try {
        TcpCommunicator tcp(layout(r, 2, port), 10);
        DeviceTcp c(tcp, device);
        body(c);
      } catch (const std::exception& e) {
        errors[size_t(r)] = e.what();
      }
    });
  for (auto& t : threads) t.join();
  return errors;
}

const std::vector<Shape> kShapes = {{3}, {5}, {2}, {3, 2}, {}, {7}};

// Rank r's parameters on `dev`: p2 has no gradient anywhere, p1 only on rank 1, p3's gradient
// is non-contiguous (a transpose), p4 is 0-d.
std::vector<Tensor> make_params(int r, Device dev) {
  std::vector<Tensor> ps;
  for (size_t k = 0; k < kShapes.size(); ++k) {
    Tensor p = zeros(kShapes[k], DType::f32, dev);
    p.requires_grad_();
    if (k != 2 && !(k == 1 && r == 0)) {
      Shape gs = kShapes[k];
      if (k == 3) gs = {2, 3};
      Tensor g = empty(gs);
      for (int64_t i = 0; i < g.numel(); ++i) g.data<float>()[i] = float(std::sin(10.0 * r + i + 3.0 * k)) / 3.0f;
      Tensor gd = g.to(dev);
      p.set_grad(k == 3 ? gd.t() : gd);
    }
    ps.push_back(p);
  }
  return ps;
}

// The CPU path's result for the same values (the reference).
std::vector<std::vector<float>> cpu_reference() {
  std::vector<std::vector<Tensor>> params(2);
  auto errors = run_ranks(false, [&](DeviceTcp& c) {
    params[size_t(c.rank())] = make_params(c.rank(), cpu_device());
    GradientSync s(params[size_t(c.rank())], c, 32);  // buckets of at most 8 floats
    s.finish();
  });
  REQUIRE_MESSAGE(errors[0].empty(), errors[0]);
  REQUIRE_MESSAGE(errors[1].empty(), errors[1]);
  std::vector<std::vector<float>> out;
  for (const Tensor& p : params[0]) out.push_back(p.grad().defined() ? p.grad().contiguous().to_vector<float>()
                                                                     : std::vector<float>{});
  return out;
}

}  // namespace

TEST_CASE("GradientSync with device parameters: device buffers to a device communicator, host copies otherwise") {
  const auto expect = cpu_reference();
  CHECK(expect[2].empty());        // no gradient anywhere: none after
  CHECK(expect[1].size() == 5u);   // rank 1's only: averaged with zeros
  Installed fake;
  for (auto [device, hooks] : {std::pair{true, false}, {false, false}, {true, true}, {false, true}}) {
    CAPTURE(device);
    CAPTURE(hooks);
    std::vector<std::vector<Tensor>> params(2);
    std::vector<int> device_reduces(2), host_reduces(2), deferred(2), waits(2);
    std::vector<size_t> launched(2);
    fake.dev.scale_calls = 0;
    auto errors = run_ranks(device, [&](DeviceTcp& c) {
      const int r = c.rank();
      params[size_t(r)] = make_params(r, kDev);
      GradientSync s(params[size_t(r)], c, 32);  // overlap on (the default)
      CHECK(s.num_buckets() == 3);  // [p5 (7), p4 (1)], [p3 (6), p2 (2)], [p1 (5), p0 (3)]
      if (hooks) {
        // The same gradients delivered by a backward (one per leaf, from the leaf itself, last
        // parameter first), so the post-accumulate hooks launch buckets before finish().
        std::vector<Tensor>& ps = params[size_t(r)];
        s.prepare_backward(true);
        for (size_t k = ps.size(); k-- > 0;) {
          const Tensor g = ps[k].grad();
          ps[k].zero_grad();
          if (g.defined()) ps[k].backward(g);
        }
      }
      s.finish();
      launched[size_t(r)] = s.launched_before_finish();
      device_reduces[size_t(r)] = c.device_reduces;
      host_reduces[size_t(r)] = c.host_reduces;
      deferred[size_t(r)] = c.deferred;
      waits[size_t(r)] = c.waits;
    });
    REQUIRE_MESSAGE(errors[0].empty(), errors[0]);
    REQUIRE_MESSAGE(errors[1].empty(), errors[1]);
    CHECK(fake.dev.scale_calls == 2 * 3);  // one scale per bucket and rank
    for (int r = 0; r < 2; ++r) {
      const auto& ps = params[size_t(r)];
      for (size_t k = 0; k < ps.size(); ++k) {
        CAPTURE(k);
        if (expect[k].empty()) {
          CHECK_FALSE(ps[k].grad().defined());
          continue;
        }
        REQUIRE(ps[k].grad().defined());
        CHECK(ps[k].grad().device() == kDev);
        CHECK(ps[k].grad().shape() == kShapes[k]);
        CHECK(ps[k].grad().cpu().contiguous().to_vector<float>() == expect[k]);  // bit for bit
      }
      // Each bucket reached the communicator once: as a device buffer for a device communicator,
      // as host memory for a host one.
      CHECK(device_reduces[size_t(r)] == (device ? 3 : 0));
      CHECK(host_reduces[size_t(r)] == (device ? 0 : 3));
      // Overlapped device buckets do not fence the compute stream one by one: once, in finish().
      CHECK(deferred[size_t(r)] == (device ? 3 : 0));
      CHECK(waits[size_t(r)] == (device ? 1 : 0));
      // With the backward: [p5, p4] went out during it; [p3, p2] waits for p2, which gets no
      // gradient, and [p1, p0] waits behind it (index order), so finish() sends those two.
      CHECK(launched[size_t(r)] == (hooks ? 1u : 0u));
    }
  }
}

TEST_CASE("broadcast_state with device tensors: rank 0's values on every rank, either communicator") {
  Installed fake;
  for (bool device : {true, false}) {
    CAPTURE(device);
    std::vector<std::vector<float>> got(2);
    auto errors = run_ranks(device, [&](DeviceTcp& c) {
      Tensor w = empty({4});
      for (int i = 0; i < 4; ++i) w.data<float>()[i] = float(c.rank() * 100 + i);
      Tensor wd = w.to(kDev);
      wd.requires_grad_();  // a parameter: the copy back must not be refused
      nn::StateDict sd;
      sd.insert("w", wd);
      broadcast_state(sd, c);
      got[size_t(c.rank())] = wd.detach().cpu().to_vector<float>();
      CHECK(c.broadcast_on_device == device);  // the device tensor itself, or a host copy
    });
    REQUIRE_MESSAGE(errors[0].empty(), errors[0]);
    REQUIRE_MESSAGE(errors[1].empty(), errors[1]);
    CHECK(got[1] == std::vector<float>{0, 1, 2, 3});
    CHECK(got[0] == std::vector<float>{0, 1, 2, 3});
  }
}

TEST_CASE("GradientSync refuses parameters on two devices") {
  Installed fake;
  LocalCommunicator local;
  CHECK_THROWS_WITH_AS(GradientSync({zeros({2}), zeros({2}, DType::f32, kDev)}, local),
                       doctest::Contains("parameter 1 is on cuda:0 but parameter 0 is on cpu"), std::invalid_argument);
}

TEST_CASE("pick_local_gpu: GPU = local rank, and a clear error when the node has fewer GPUs") {
  LaunchLayout l = layout(5, 8, 29500);
  l.local_rank = 1;
  l.local_world_size = 4;
  CHECK(pick_local_gpu(l, 4) == 1);
  l.local_rank = 3;
  CHECK_THROWS_WITH(pick_local_gpu(l, 2), doctest::Contains("would use GPU 3"));
  CHECK_THROWS_WITH(pick_local_gpu(l, 2), doctest::Contains("this node has 2 GPU(s)"));
}

TEST_CASE("make_communicator: dist.backend = nccl needs GPUs, and NCCL in the build") {
  rv::config::DistSection cfg;
  cfg.backend = "nccl";
  CHECK_THROWS_WITH(make_communicator(cfg, layout(0, 2, 29500), false),
                    doctest::Contains("this run trains on the CPU"));
  if (!nccl_compiled_in())
    CHECK_THROWS_WITH(make_communicator(cfg, layout(0, 2, 29500), true), doctest::Contains("this build has no NCCL"));
  CHECK(make_communicator(cfg, LaunchLayout{}, true)->name() == "local");  // one process: nothing to talk to
}
