// bench_kernels.cpp: `ropevit bench kernels`, the timer for GPU work and the table it prints.
//
// Timing a GPU from the host: a launch returns at once, so timing one call measures the launch,
// not the kernel. We synchronise, launch a batch of k calls back to back (k chosen so that a
// batch lasts about 20 ms, which hides the launch cost of kernels of 10 us or more), synchronise
// again and divide by k; the result is the median over several batches. tools/bench_torch_kernels.py
// times PyTorch the same way, so the two are comparable.
//
// The limits a figure is put against: "copy GB/s" is a device-to-device copy of 1 GiB measured
// at start-up (bytes read + written), the practical ceiling of a memory-bound kernel; the FP32
// peak is SMs x FP32 lanes x 2 x boost clock from the driver (no tensor cores, no TF32).
#include "train/bench/bench_kernels.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/backend.h"
#include "engine/tensor.h"
#include "train/bench/kernel_cases.h"

namespace rv::bench {

namespace {

void print_kernels_usage() {
  std::printf(
      "usage: ropevit bench kernels [options]\n"
      "  --device DEV     cuda:N (default cuda:0)\n"
      "  --filter TEXT    only cases whose key (<group>/<name>) contains TEXT\n"
      "  --torch FILE     PyTorch timings from tools/bench_torch_kernels.py, shown as ratios\n"
      "  --out FILE       also write one JSON line per case\n"
      "  --budget SEC     timing budget per case and per implementation (default 0.3)\n"
      "  --list           print the keys of the cases and exit (needs no GPU)\n"
      "ratios are the other side's time over ours: above 1.00 we are faster.\n");
}

using Clock = std::chrono::steady_clock;

// Median seconds per call of `launch` (see the file comment).
double device_seconds(const std::function<void()>& launch, const std::function<void()>& sync, double budget_s) {
  launch();  // warm-up: first-touch allocations, lazy module loading, cuBLAS handles
  sync();
  auto t0 = Clock::now();
  launch();
  sync();
  const double one = std::chrono::duration<double>(Clock::now() - t0).count();
  const int k = int(std::clamp(std::ceil(0.02 / std::max(one, 1e-7)), 1.0, 2000.0));
  std::vector<double> per_call;
  const auto start = Clock::now();
  while (per_call.size() < 3 ||
         (std::chrono::duration<double>(Clock::now() - start).count() < budget_s && per_call.size() < 50)) {
    sync();
    t0 = Clock::now();
    for (int i = 0; i < k; ++i) launch();
    sync();
    per_call.push_back(std::chrono::duration<double>(Clock::now() - t0).count() / k);
  }
  std::sort(per_call.begin(), per_call.end());
  return per_call[per_call.size() / 2];
}

}  // namespace

int bench_kernels(int argc, char** argv) {
  std::string device_str = "cuda:0", filter, torch_path, out_path;
  double budget = 0.3;
  bool list = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      print_kernels_usage();
      return 0;
    } else if (a == "--device") device_str = value();
    else if (a == "--filter") filter = value();
    else if (a == "--torch") torch_path = value();
    else if (a == "--out") out_path = value();
    else if (a == "--budget") budget = parse_budget_seconds(value());
    else if (a == "--list") list = true;
    else throw std::runtime_error("unknown option '" + a + "' (see ropevit bench kernels --help)");
  }
  const Device device = parse_device(device_str);
  if (!device.is_cuda()) throw std::runtime_error("--device: expected cuda:N, got '" + device_str + "'");
  const std::vector<Case> cases = kernel_cases(device);
  auto selected = [&](const Case& c) {
    return filter.empty() || (c.group + "/" + c.name).find(filter) != std::string::npos;
  };
  if (list) {
    for (const Case& c : cases)
      if (selected(c)) std::printf("%s/%s\n", c.group.c_str(), c.name.c_str());
    return 0;
  }

  backend::DeviceBackend& be = backend::get(device);  // throws, saying why, without CUDA or a GPU
  const backend::DeviceProperties props = be.properties(device.index);
  auto sync = [&be, &device] { be.synchronize(device.index); };

  std::string torch_device;
  std::map<std::string, double> torch_ms;
  if (!torch_path.empty()) torch_ms = read_torch_timings(torch_path, "tools/bench_torch_kernels.py", &torch_device);
  std::ofstream out;
  if (!out_path.empty()) {
    out.open(out_path);
    if (!out) throw std::runtime_error("--out: cannot write '" + out_path + "'");
  }

  // The practical bandwidth ceiling: a 1 GiB device-to-device copy.
  double copy_gbps = 0;
  {
    const int64_t n = int64_t(1) << 28;  // floats
    Tensor a = zeros({n}, DType::f32, device), b = zeros({n}, DType::f32, device);
    const double s = device_seconds(
        [&] { be.copy_on_device(b.device_data(), a.device_data(), size_t(n) * 4, device.index); }, sync, budget);
    copy_gbps = 2.0 * double(n) * 4 / s / 1e9;
  }
  std::printf("ropevit bench kernels on %s (%s, sm_%d%d, %d SMs, %.2f GHz)\n", device.str().c_str(),
              props.name.c_str(), props.major, props.minor, props.multiprocessors, props.sm_clock_ghz);
  std::printf("limits: device copy %.0f GB/s (theoretical DRAM %.0f GB/s), FP32 FMA peak %.1f TFLOP/s\n",
              copy_gbps, props.memory_gbps, props.fp32_tflops);
  if (!torch_device.empty() && torch_device != props.name)
    std::printf("warning: the PyTorch timings were taken on '%s', not on this card\n", torch_device.c_str());
  std::printf("\n%-46s %9s %9s %8s %7s %10s %6s %9s %6s\n", "case", "ms", "TFLOP/s", "GB/s", "%limit", "ref ms",
              "ref/us", "torch ms", "pt/us");
  std::string last_group;
  for (const Case& c : cases) {
    if (!selected(c)) continue;
    if (c.group != last_group) {
      std::printf("-- %s\n", c.group.c_str());
      last_group = c.group;
    }
    const std::string key = c.group + "/" + c.name;
    double ms = 0, ref_ms = 0;
    try {
      const CaseFns f = c.make();  // inputs live until f goes out of scope
      ms = device_seconds(f.run, sync, budget) * 1e3;
      if (f.reference) ref_ms = device_seconds(f.reference, sync, budget) * 1e3;
    } catch (const std::exception& e) {
      // A kernel that is not there yet says so in its row; the other rows still run.
      std::printf("%-46s  not run: %s\n", c.name.c_str(), e.what());
      if (out) out << nlohmann::json{{"case", key}, {"error", e.what()}}.dump() << "\n";
      continue;
    }
    const double s = ms * 1e-3;
    const double tflops = c.flops / s / 1e12, gbps = c.bytes / s / 1e9;
    // Compute-bound cases are put against the FP32 peak, memory-bound ones against the copy.
    const bool compute_bound = c.flops > 0 && c.flops / std::max(c.bytes, 1.0) > props.fp32_tflops * 1e3 / copy_gbps;
    const double limit = compute_bound ? (props.fp32_tflops > 0 ? tflops / props.fp32_tflops : 0) : gbps / copy_gbps;
    char ref[32] = "", ref_ratio[32] = "", pt[32] = "", pt_ratio[32] = "";
    if (ref_ms > 0) {
      std::snprintf(ref, sizeof ref, "%.3f", ref_ms);
      std::snprintf(ref_ratio, sizeof ref_ratio, "%.2f", ref_ms / ms);
    }
    auto it = torch_ms.find(key);
    if (it != torch_ms.end()) {
      std::snprintf(pt, sizeof pt, "%.3f", it->second);
      std::snprintf(pt_ratio, sizeof pt_ratio, "%.2f", it->second / ms);
    }
    std::printf("%-46s %9.3f %9.2f %8.0f %6.1f%% %10s %6s %9s %6s\n", c.name.c_str(), ms, tflops, gbps, 100 * limit,
                ref, ref_ratio, pt, pt_ratio);
    std::fflush(stdout);
    if (out) {
      nlohmann::json j = {{"case", key},   {"ms", ms},           {"tflops", tflops},   {"gbps", gbps},
                          {"limit", limit}, {"device", props.name}, {"copy_gbps", copy_gbps}};
      if (ref_ms > 0) j["reference_ms"] = ref_ms, j["reference"] = c.reference_name;
      if (it != torch_ms.end()) j["torch_ms"] = it->second;
      out << j.dump() << "\n";
    }
  }
  std::printf("\n%%limit: of the FP32 peak for compute-bound cases, of the device copy for memory-bound ones.\n"
              "ref/us and pt/us: the reference's (cuBLAS's) and PyTorch's time over ours: above 1.00 we are faster.\n");
  return 0;
}

}  // namespace rv::bench
