// bench_comm.cpp: `ropevit bench comm` times Communicator::all_reduce_sum (train/distributed/) on
// f32 buffers from 4 KB to 64 MB (25 MB is a gradient bucket) and prints, per size, the median
// time and two bandwidths as nccl-tests defines them:
//   algbw = bytes / time                  what one rank's buffer sees
//   busbw = algbw * 2 (W - 1) / W          the link load of an ideal ring, comparable across W
// Then it times a data-parallel training step of a model (bench_comm_step.h): compute only, the
// all-reduce after the backward, and the all-reduce overlapped with it (dist.overlap), and prints
// how much of the communication time the overlap hides.
// Run it under the launcher you train with, e.g.
//   mpirun -np 2 ropevit bench comm        torchrun --no-python --nproc-per-node 2 ropevit bench comm
// Rank 0 prints; with one process there is nothing to time and it says so.
#include "train/bench/bench_comm.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "train/bench/bench_comm_step.h"
#include "train/distributed/communicator.h"

namespace rv::bench {

int bench_comm(int argc, char** argv) {
  double timeout_s = 600;
  int64_t max_bytes = int64_t(64) << 20;
  int iters = 10;
  StepBenchOptions step;
  bool with_step = true;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      std::printf(
          "usage: <launcher> ropevit bench comm [options]\n"
          "  --max-mb N      largest message in MB (default 64; sizes go up by 4x from 4 KB)\n"
          "  --iters N       timed all-reduces per size (default 10; the median is printed)\n"
          "  --timeout S     dist.timeout_s for the collectives (default 600)\n"
          "then a training step, with the all-reduce after the backward and overlapped with it:\n"
          "  --model NAME    model (default %s)\n"
          "  --batch N       images per rank (default %lld)\n"
          "  --img-size N    image side (default %lld)\n"
          "  --steps N       timed steps per mode (default %d; the median is printed)\n"
          "  --no-step       only the all-reduce table\n",
          step.model.c_str(), (long long)step.batch, (long long)step.img_size, step.iters);
      return 0;
    } else if (a == "--max-mb") {
      max_bytes = int64_t(std::stod(value()) * (1 << 20));
    } else if (a == "--iters") {
      iters = std::max(1, std::stoi(value()));
    } else if (a == "--timeout") {
      timeout_s = std::stod(value());
    } else if (a == "--model") {
      step.model = value();
    } else if (a == "--batch") {
      step.batch = std::max<int64_t>(1, std::stoll(value()));
    } else if (a == "--img-size") {
      step.img_size = std::max<int64_t>(16, std::stoll(value()));
    } else if (a == "--steps") {
      step.iters = std::max(1, std::stoi(value()));
    } else if (a == "--no-step") {
      with_step = false;
    } else {
      throw std::runtime_error("unknown option '" + a + "' (see ropevit bench comm --help)");
    }
  }
  config::DistSection cfg;
  cfg.timeout_s = timeout_s;
  auto comm = train::dist::make_communicator(cfg);
  const int w = comm->world_size();
  if (w == 1) {
    std::printf("bench comm: one process, nothing to time; launch it with mpirun -np N or torchrun "
                "--nproc-per-node N (--no-python)\n");
    return 0;
  }
  if (comm->rank() == 0)
    std::printf("all_reduce_sum f32 over %s, %d ranks, median of %d\n%12s %12s %12s %12s\n", comm->name().c_str(), w,
                iters, "bytes", "time_ms", "algbw_GB/s", "busbw_GB/s");
  std::vector<float> buf(size_t(max_bytes / 4) + 1);
  for (int64_t bytes = 4096; bytes <= max_bytes; bytes *= 4) {
    const int64_t n = bytes / 4;
    std::fill_n(buf.begin(), n, 1.0f);
    comm->all_reduce_sum(buf.data(), n, DType::f32);  // warm-up (connections, page faults)
    std::vector<double> ms;
    for (int it = 0; it < iters; ++it) {
      comm->barrier();
      const auto t0 = std::chrono::steady_clock::now();
      comm->all_reduce_sum(buf.data(), n, DType::f32);
      ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    }
    // Rank 0's median is the one printed; the barrier above keeps the ranks in step.
    std::sort(ms.begin(), ms.end());
    const double t = ms[ms.size() / 2];
    const double alg = double(bytes) / (t * 1e-3) / 1e9;
    if (comm->rank() == 0)
      std::printf("%12lld %12.3f %12.3f %12.3f\n", (long long)bytes, t, alg, alg * 2.0 * (w - 1) / w);
  }
  std::fflush(stdout);
  if (with_step) bench_comm_step(*comm, step);
  return 0;
}

}  // namespace rv::bench
