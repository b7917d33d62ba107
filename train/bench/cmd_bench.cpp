// cmd_bench.cpp: `ropevit bench ops` times every engine op on the shapes of real models and
// prints a table: time, GFLOP/s or GB/s, fraction of this machine's measured peak, the ratio
// to a reference library run in the same process (OpenBLAS for products), and the ratio to
// PyTorch's time on the same shapes and threads when given `--torch FILE` (written by
// tools/bench_torch_ops.py). Results are also written as JSON lines with --out.
// `ropevit bench model NAME` (a whole model's forward and training step) is in bench_model.cpp,
// `ropevit bench data` (the input pipeline in images/s) in bench_data.cpp, `ropevit bench decode`
// (per-image JPEG decode and augmentation cost on one thread) in bench_decode.cpp, `ropevit bench
// comm` (all-reduce bandwidth across the processes of a launch, and the step time with and without
// overlap) in bench_comm.cpp, `ropevit bench
// kernels` (the CUDA kernels against cuBLAS, PyTorch and the card's limits) in bench_kernels.cpp.
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>

#include <nlohmann/json.hpp>

#include "engine/cpu/parallel.h"
#include "engine/runtime_info.h"
#include "train/bench/bench_comm.h"
#include "train/bench/bench_data.h"
#include "train/bench/bench_decode.h"
#include "train/bench/bench_harness.h"
#include "train/bench/bench_kernels.h"
#include "train/bench/bench_model.h"
#include "train/bench/bench_ops.h"
#include "train/commands.h"

namespace rv {

namespace {

void bench_usage() {
  std::printf(
      "usage: ropevit bench ops [options]       (ropevit bench model --help: a whole model;\n"
      "                                          ropevit bench data --help: the input pipeline;\n"
      "                                          ropevit bench decode --help: JPEG decode + augment;\n"
      "                                          ropevit bench comm --help: all-reduce bandwidth,\n"
      "                                          step time with and without overlap;\n"
      "                                          ropevit bench kernels --help: CUDA kernels)\n"
      "  --group NAME     vit_s16 | swin_t | all (default all)\n"
      "  --filter TEXT    only cases whose name contains TEXT\n"
      "  --torch FILE     PyTorch timings from tools/bench_torch_ops.py, shown as ratios\n"
      "  --out FILE       also write one JSON line per case\n"
      "  --budget SEC     timing budget per case (default 0.5)\n"
      "  --list           print the keys (<group>/<name>) of the cases that would run, and exit\n"
      "Threads follow OMP_NUM_THREADS.\n");
}

}  // namespace

int cmd_bench(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    bench_usage();
    return argc < 2 ? 2 : 0;
  }
  if (!std::strcmp(argv[1], "model")) return bench::bench_model(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "data")) return bench::bench_data(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "decode")) return bench::bench_decode(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "comm")) return bench::bench_comm(argc - 1, argv + 1);
  if (!std::strcmp(argv[1], "kernels")) return bench::bench_kernels(argc - 1, argv + 1);
  if (std::strcmp(argv[1], "ops") != 0)
    throw std::runtime_error(std::string("unknown bench '") + argv[1] + "' (expected: ops, model, data, decode, comm or kernels)");
  std::string group = "all", filter, torch_path, out_path;
  double budget = 0.5;
  bool list = false;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--group") group = value();
    else if (a == "--filter") filter = value();
    else if (a == "--torch") torch_path = value();
    else if (a == "--out") out_path = value();
    else if (a == "--budget") budget = bench::parse_budget_seconds(value());
    else if (a == "--list") list = true;
    else throw std::runtime_error("unknown option '" + a + "' (see ropevit bench --help)");
  }
  if (group != "all" && group != "vit_s16" && group != "swin_t")
    throw std::runtime_error("--group: expected vit_s16, swin_t or all, got '" + group + "'");
  auto selected = [&](const bench::Case& c) {
    return (group == "all" || c.group == group) && (filter.empty() || c.name.find(filter) != std::string::npos);
  };
  if (list) {  // the keys tools/bench_torch_ops.py must use; builds no input (cases are lazy)
    for (const bench::Case& c : bench::op_cases())
      if (selected(c)) std::printf("%s/%s\n", c.group.c_str(), c.name.c_str());
    return 0;
  }
  std::map<std::string, double> torch_ms;
  if (!torch_path.empty()) torch_ms = bench::read_torch_timings(torch_path, "tools/bench_torch_ops.py");
  std::ofstream out;
  if (!out_path.empty()) {
    out.open(out_path);
    if (!out) throw std::runtime_error("--out: cannot write '" + out_path + "'");
  }

  std::printf("ropevit bench ops: %d threads, BLAS %s\n", cpu::num_threads(), runtime_blas_name());
  bench::Peaks peaks = bench::measure_peaks();
  std::printf("measured peaks: %.1f GFLOP/s (f32 FMA), %.1f GB/s (copy)\n\n", peaks.gflops, peaks.gbps);
  std::printf("%-52s %9s %9s %8s %6s %10s %7s %9s %7s\n", "case", "ms", "GFLOP/s", "GB/s", "%peak", "ref ms",
              "ref/us", "torch ms", "pt/us");
  std::string last_group;
  for (const bench::Case& c : bench::op_cases()) {
    if (!selected(c)) continue;
    if (c.group != last_group) {
      std::printf("-- %s\n", c.group.c_str());
      last_group = c.group;
    }
    bench::Result r = bench::time_case(c, peaks, budget);
    std::string key = c.group + "/" + c.name;
    char ref[32] = "", ref_ratio[32] = "", pt[32] = "", pt_ratio[32] = "";
    if (r.reference_ms > 0) {
      std::snprintf(ref, sizeof ref, "%.3f", r.reference_ms);
      std::snprintf(ref_ratio, sizeof ref_ratio, "%.2f", r.reference_ms / r.ms);
    }
    auto it = torch_ms.find(key);
    if (it != torch_ms.end()) {
      std::snprintf(pt, sizeof pt, "%.3f", it->second);
      std::snprintf(pt_ratio, sizeof pt_ratio, "%.2f", it->second / r.ms);
    }
    std::printf("%-52s %9.3f %9.1f %8.1f %5.1f%% %10s %7s %9s %7s\n", c.name.c_str(), r.ms, r.gflops, r.gbps,
                100 * r.peak_fraction, ref, ref_ratio, pt, pt_ratio);
    std::fflush(stdout);
    if (out) {
      nlohmann::json j = {{"case", key},          {"ms", r.ms},     {"gflops", r.gflops},
                          {"gbps", r.gbps},       {"peak_fraction", r.peak_fraction},
                          {"threads", cpu::num_threads()}};
      if (r.reference_ms > 0) j["reference_ms"] = r.reference_ms, j["reference"] = c.reference_name;
      if (it != torch_ms.end()) j["torch_ms"] = it->second;
      out << j.dump() << "\n";
    }
  }
  std::printf("\nref/us and pt/us are the reference's time over ours: above 1.00 we are faster.\n");
  return 0;
}

}  // namespace rv
