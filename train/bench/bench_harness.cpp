// bench_harness.cpp: median timing and peak measurement.
#include "train/bench/bench_harness.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/cpu/parallel.h"

namespace rv::bench {

namespace {

double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// GCC and Clang prefer 256-bit vectors even where AVX-512 exists, which would measure half the
// FMA peak that the GEMM micro-kernel (compiled for 512 bits, engine/cpu/gemm.cpp) reaches; ask
// for 512-bit vectors here too, so "% of peak" is against what the hardware can do.
#if defined(__AVX512F__) && defined(__clang__)
#define RV_PEAK_TARGET __attribute__((noinline, min_vector_width(512)))
#elif defined(__AVX512F__)
#define RV_PEAK_TARGET __attribute__((noinline, target("prefer-vector-width=512")))
#else
#define RV_PEAK_TARGET __attribute__((noinline))
#endif

// 16 independent FMA chains of 16 floats: enough to fill two FMA pipes of 512-bit lanes
// (latency 4 x 2 pipes x 2 vectors of 8/16 floats) so the loop runs at the issue limit.
RV_PEAK_TARGET float fma_kernel(int64_t iters, float seed) {
  constexpr int kChains = 16, kLanes = 16;
  float acc[kChains][kLanes];
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < kLanes; ++l) acc[c][l] = seed + float(c * kLanes + l) * 1e-7f;
  const float a = 0.999999f, b = 1e-7f;
  for (int64_t i = 0; i < iters; ++i)
    for (int c = 0; c < kChains; ++c)
#pragma omp simd
      for (int l = 0; l < kLanes; ++l) acc[c][l] = acc[c][l] * a + b;
  float s = 0;
  for (int c = 0; c < kChains; ++c)
    for (int l = 0; l < kLanes; ++l) s += acc[c][l];
  return s;
}

}  // namespace

Peaks measure_peaks() {
  Peaks p;
  const int threads = cpu::num_threads();
  // FLOP/s: each thread runs the FMA loop; 2 flops per FMA.
  const int64_t iters = 2000000;
  double best = 1e30;
  volatile float sink = 0;
  for (int rep = 0; rep < 3; ++rep) {
    double t0 = now_s();
    cpu::parallel_for(threads, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) sink = sink + fma_kernel(iters, float(t));
    });
    best = std::min(best, now_s() - t0);
  }
  p.gflops = double(threads) * double(iters) * 16 * 16 * 2 / best / 1e9;
  // bytes/s: copy 256 MiB (read + write), far beyond any cache.
  const size_t n = size_t(64) << 20;  // floats
  std::unique_ptr<float[]> src(new float[n]), dst(new float[n]);
  cpu::parallel_for(int64_t(n), 1 << 16, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) src[i] = float(i), dst[i] = 0;
  });
  best = 1e30;
  for (int rep = 0; rep < 3; ++rep) {
    double t0 = now_s();
    cpu::parallel_for(int64_t(n), 1 << 16, [&](int64_t b, int64_t e) {
      std::memcpy(dst.get() + b, src.get() + b, size_t(e - b) * sizeof(float));
    });
    best = std::min(best, now_s() - t0);
  }
  p.gbps = 2.0 * double(n) * sizeof(float) / best / 1e9;
  return p;
}

// Median of repeated calls of f, each preceded by an untimed call of `prepare` (if any).
double median_seconds(const std::function<void()>& f, const std::function<void()>& prepare, double budget_s) {
  for (int i = 0; i < 2; ++i) {  // warm-up: caches, page faults, thread pool
    if (prepare) prepare();
    f();
  }
  std::vector<double> times;
  double start = now_s();
  while (times.size() < 3 || (now_s() - start < budget_s && times.size() < 200)) {
    if (prepare) prepare();
    double t0 = now_s();
    f();
    times.push_back(now_s() - t0);
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

std::vector<double> time_calls(const std::function<void()>& f, const std::function<void()>& prepare, int warmup,
                               int iters, const std::function<void(int, double)>& progress) {
  for (int i = 0; i < warmup; ++i) {
    if (prepare) prepare();
    f();
  }
  std::vector<double> times;
  for (int i = 0; i < iters; ++i) {
    if (prepare) prepare();
    double t0 = now_s();
    f();
    times.push_back(now_s() - t0);
    if (progress) progress(i, times.back());
  }
  return times;
}

double median_of(std::vector<double> times) {
  if (times.empty()) throw std::invalid_argument("median_of: no times");
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

Result time_case(const Case& c, const Peaks& peaks, double budget_s) {
  Result r;
  r.name = c.name;
  r.group = c.group;
  if (!c.make) throw std::logic_error("bench case '" + c.name + "' has no factory");
  const CaseFns f = c.make();  // the inputs live until f goes out of scope, at return
  double s = median_seconds(f.run, f.prepare, budget_s);
  if (f.reference) r.reference_ms = median_seconds(f.reference, {}, budget_s) * 1e3;
  r.ms = s * 1e3;
  r.gflops = c.flops / s / 1e9;
  r.gbps = c.bytes / s / 1e9;
  // Compute-bound if the arithmetic intensity is above the machine balance point.
  bool compute_bound = c.flops > 0 && (c.bytes == 0 || c.flops / c.bytes > peaks.gflops / peaks.gbps);
  r.peak_fraction = compute_bound ? r.gflops / peaks.gflops : r.gbps / peaks.gbps;
  return r;
}

std::map<std::string, double> read_torch_timings(const std::string& path, const std::string& tool,
                                                 std::string* device) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("--torch: cannot open '" + path + "'");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const std::exception& e) {
    throw std::runtime_error("--torch: '" + path + "' is not valid JSON: " + e.what());
  }
  if (!j.contains("ms") || !j["ms"].is_object())
    throw std::runtime_error("--torch: '" + path + "' has no \"ms\" object (expected the output of " + tool + ")");
  if (device) *device = j.contains("device") && j["device"].is_string() ? j["device"].get<std::string>() : "";
  std::map<std::string, double> out;
  for (auto& [k, v] : j["ms"].items()) out[k] = v.get<double>();
  return out;
}

double parse_budget_seconds(const std::string& v) {
  char* end = nullptr;
  const double b = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(b) || b < 0)
    throw std::runtime_error("--budget: expected seconds (a number >= 0), got '" + v + "'");
  return b;
}

}  // namespace rv::bench
