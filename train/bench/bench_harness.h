// bench_harness.h: timing and machine peaks for `ropevit bench`.
//
// A benchmark case is a name, the work it does (flops and bytes moved), and a factory that
// builds its inputs and returns the closures to time. Inputs are built only when the case runs
// (time_case calls the factory) and freed when it returns, so listing or filtering the cases
// builds nothing, and the process holds one case's inputs at a time. The harness runs the
// case a few times to warm caches and threads, then times repeats until a time budget is
// spent, and reports the median. A case may have a `prepare` closure that runs, untimed,
// before every timed call: backward cases use it to record a fresh forward graph, so that only
// the backward pass is timed (tools/bench_torch_ops.py does the same). Peaks are measured on
// this machine at start-up (an FMA loop for FLOP/s, a large copy for bytes/s), so "percent of
// peak" needs no table of CPU models.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

namespace rv::bench {

// What a case's factory returns: closures that own (capture) the case's inputs.
struct CaseFns {
  std::function<void()> run;
  std::function<void()> reference = {};  // optional: the same work done by a reference library
  std::function<void()> prepare = {};    // optional: untimed set-up before every call of `run`
};

struct Case {
  std::string name;      // e.g. "matmul qkv (6272x384)x(384x1152)"
  std::string group;     // e.g. "vit_s16"
  double flops = 0;      // floating-point operations per call (0 if memory-bound)
  double bytes = 0;      // bytes read + written per call
  std::string reference_name = {};  // e.g. "cblas_sgemm"; empty when the case has no reference
  std::function<CaseFns()> make;    // builds the inputs; called by time_case only
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

// For steps that take seconds (a whole model): `warmup` untimed calls, then exactly `iters`
// timed ones, each preceded by an untimed `prepare` (if any); `progress(i, seconds)` runs after
// timed call i (0-based), e.g. to print to stderr. Returns the times in call order.
std::vector<double> time_calls(const std::function<void()>& f, const std::function<void()>& prepare, int warmup,
                               int iters, const std::function<void(int, double)>& progress = {});
// The median as median_seconds takes it (and tools/bench_torch_*.py): sorted[n / 2].
double median_of(std::vector<double> times);
// Builds the case's inputs (c.make()), times `run` and the reference, and frees the inputs.
Result time_case(const Case& c, const Peaks& peaks, double budget_s = 0.5);

// The PyTorch timings a tools/bench_torch_*.py script wrote (`tool` names it in errors): its
// "ms" object ({case key: median ms}); `device`, when given, receives its "device" field ("" when
// absent). Errors name --torch and the file.
std::map<std::string, double> read_torch_timings(const std::string& path, const std::string& tool,
                                                 std::string* device = nullptr);
// --budget's value: seconds, a finite number >= 0 (0 still times the minimum number of calls).
double parse_budget_seconds(const std::string& v);

}  // namespace rv::bench
