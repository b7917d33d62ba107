// bench_comm_step.cpp: data-parallel step time with and without overlap (see bench_comm_step.h).
//
// Three ways to run the same step (zero_grad, forward, cross-entropy, backward), on every rank
// with its own random batch:
//   compute  no all-reduce at all: what the step would cost with free communication
//   after    GradientSync with dist.overlap = false: every bucket after the backward
//   overlap  GradientSync with dist.overlap = true: buckets sent during the backward
// The modes take turns step by step (compute, after, overlap, compute, ...), so a change in the
// machine's load during the run hits all three alike; each step starts at a barrier so the ranks
// are in step. The communication time is after - compute; the overlap hides
//   (after - overlap) / (after - compute)
// of it: 100% when the overlapped step costs no more than the compute alone.
#include "train/bench/bench_comm_step.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <vector>

#include "engine/cpu/parallel.h"
#include "engine/ops/loss.h"
#include "engine/rng.h"
#include "models/registry.h"
#include "train/bench/bench_harness.h"
#include "train/distributed/grad_sync.h"

namespace rv::bench {

void bench_comm_step(train::dist::Communicator& comm, const StepBenchOptions& o) {
  using Clock = std::chrono::steady_clock;
  const bool lead = comm.rank() == 0;
  auto model = models::create_model(o.model, {{"img_size", std::to_string(o.img_size)}});
  model->train();
  std::vector<Tensor> params;
  for (const Tensor& p : model->parameters())
    if (p.requires_grad()) params.push_back(p);
  Generator gen(/*seed=*/1, /*stream=*/uint64_t(comm.rank()));  // each rank its own batch
  Tensor x = randn({o.batch, 3, o.img_size, o.img_size}, gen);
  Tensor labels = empty({o.batch}, DType::i64);
  for (int64_t b = 0; b < o.batch; ++b) labels.data<int64_t>()[b] = (b * 7919 + comm.rank()) % 1000;
  train::dist::GradientSync after(params, comm, train::dist::kDefaultBucketBytes, /*overlap=*/false);
  train::dist::GradientSync overlap(params, comm, train::dist::kDefaultBucketBytes, /*overlap=*/true);
  int64_t numel = 0;
  for (const Tensor& p : params) numel += p.numel();
  if (lead) {
    std::printf("\nstep time of %s, %lld image(s) of %lldx%lld per rank, %lld parameters (%.1f MB of gradients in "
                "%zu bucket(s)), %d thread(s) per rank, median of %d\n",
                o.model.c_str(), (long long)o.batch, (long long)o.img_size, (long long)o.img_size, (long long)numel,
                double(numel) * 4 / 1e6, after.num_buckets(), cpu::num_threads(), o.iters);
    if (!overlap.overlapped())
      std::printf("  (this communicator cannot be called from a second thread: the overlapped mode is not overlapped)\n");
    std::fflush(stdout);
  }

  // One step; sync = nullptr: no all-reduce. Returns seconds.
  auto step = [&](train::dist::GradientSync* sync) {
    comm.barrier();
    const auto t0 = Clock::now();
    model->zero_grad();
    Tensor loss = cross_entropy(model->forward(x), labels);
    if (sync) sync->prepare_backward(true);
    loss.backward();
    if (sync) sync->finish();
    return std::chrono::duration<double>(Clock::now() - t0).count();
  };
  step(nullptr), step(&after), step(&overlap);  // warm-up: caches, allocator, connections
  std::vector<double> t_compute, t_after, t_overlap;
  for (int i = 0; i < o.iters; ++i) {
    t_compute.push_back(step(nullptr));
    t_after.push_back(step(&after));
    t_overlap.push_back(step(&overlap));
  }
  const double c = median_of(t_compute) * 1e3, a = median_of(t_after) * 1e3, v = median_of(t_overlap) * 1e3;
  if (!lead) return;
  std::printf("%-38s %10s\n", "", "ms/step");
  std::printf("%-38s %10.1f\n", "compute only (no all-reduce)", c);
  std::printf("%-38s %10.1f   communication adds %.1f ms\n", "all-reduce after the backward", a, a - c);
  std::printf("%-38s %10.1f   %zu of %zu bucket(s) sent during the backward\n", "all-reduce overlapped (dist.overlap)",
              v, overlap.launched_before_finish(), overlap.num_buckets());
  if (a - c > 0)
    std::printf("overlap hides %.0f%% of the communication time ((after - overlapped) / (after - compute))\n",
                100.0 * (a - v) / (a - c));
  else
    std::printf("overlap hides: no communication time to hide (after <= compute only)\n");
}

}  // namespace rv::bench
