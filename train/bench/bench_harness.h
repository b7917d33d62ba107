// bench_harness.h: timing and machine peaks for `ropevit bench`.
//
// A benchmark case is a named closure plus the work it does (flops and bytes moved). The
// harness runs it a few times to warm caches and threads, then times repeats until a time
// budget is spent, and reports the median. A case may have a `prepare` closure that runs,
// untimed, before every timed call: backward cases use it to record a fresh forward graph, so
// that only the backward pass is timed (tools/bench_torch_ops.py does the same). Peaks are measured on this machine at start-up
// (an FMA loop for FLOP/s, a large copy for bytes/s), so "percent of peak" needs no table of
// CPU models.
#pragma once
#include <functional>
#include <string>
#include <vector>

namespace rv::bench {

struct Case {
  std::string name;      // e.g. "matmul qkv (6272x384)x(384x1152)"
  std::string group;     // e.g. "vit_s16"
  double flops = 0;      // floating-point operations per call (0 if memory-bound)
  double bytes = 0;      // bytes read + written per call
  std::function<void()> run;
  std::function<void()> reference = {};  // optional: the same work done by a reference library
  std::string reference_name = {};  // e.g. "cblas_sgemm"
  std::function<void()> prepare = {};    // optional: untimed set-up before every call of `run`
};

struct Result {
  std::string name, group;
  double ms = 0;         // median wall time per call
  double gflops = 0, gbps = 0;
  double peak_fraction = 0;  // of FLOP/s peak (compute-bound) or of DRAM copy bandwidth (memory-
                             // bound; above 100% when the data stays in cache)
  double reference_ms = 0;   // 0 when the case has no reference
};

struct Peaks {
  double gflops = 0;     // f32 FMA throughput, all threads
  double gbps = 0;       // copy bandwidth, all threads
};

Peaks measure_peaks();
Result time_case(const Case& c, const Peaks& peaks, double budget_s = 0.5);

}  // namespace rv::bench
