// test_seg_dist.cpp: data-parallel segmentation training as users launch it: 2 processes of
// `ropevit train` with torchrun's variables (TCP rendezvous on 127.0.0.1, set by the test) train
// the tiny scenes UperNet for 3 iterations with 2 crops per rank, and one process trains it
// with the whole global batch of 4:
//   - with model.sync_bn (the default with 2 ranks) the weights, BatchNorm running statistics and
//     optimizer state after the run equal the one-process ones to 1e-6, and so do the logged
//     losses; rank 0 alone writes the run folder;
//   - with model.sync_bn = false they differ: each rank normalises with its own 2 crops'
//     statistics, which is not what one process with 4 crops computes;
//   - the evaluation (5 validation images: shares of 3 and 2, no padding) gives the same mIoU,
//     mAcc and aAcc on 2 ranks as on 1, every image counted once;
//   - `mpirun -np 2` (the MPI communicator) ends where the TCP pair does (skipped with a warning
//     without mpirun or in a build without MPI).
// For the equality, dropout (seg.dropout) is 0 (ranks draw their own masks) and the loss is the
// mean over all pixels (seg.avg_non_ignore = false, mmseg's default): with the valid-pixel mean,
// each rank would divide by its own count of non-ignored pixels, and the average over ranks of
// those means is not the global one. The optimizer is SGD with momentum: AdamW divides each
// gradient by its own running RMS, which turns float rounding into full-size steps on parameters
// whose true gradient is zero (a bias in front of a BatchNorm, e.g. backbone.fpn2.0.bias, whose
// per-channel shift the BN removes): with AdamW the two runs differed by 3.7e-6 there, with SGD
// by 1.2e-7 at most (one f32 step of a BN running variance); without sync_bn by 0.35.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/io/safetensors.h"
#include "tests/support/cli_run.h"
#include "train/distributed/mpi_communicator.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using rv::test::read_file;

const rv::test::TempDir& tmp() {
  static rv::test::TempDir d("rv_seg_dist");
  return d;
}

std::string bin() {
  std::string quoted = "'";
  quoted += rv::test::ropevit_path();
  quoted += "'";
  return quoted;
}

// A shell script's stdout (exit codes echoed by it) and the test's view of the processes.
std::string shell(const std::string& script) {
  const std::string cmd = "cd '" + std::string(RV_SOURCE_DIR) + "' && " + script;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  pclose(p);
  return out;
}

// The scenes once per process: 8 training and 5 validation images of 64 px.
const fs::path& scenes() {
  static const fs::path root = [] {
    const fs::path out = tmp().path / "scenes";
    const std::string code = shell(bin() + " make-scenes --out '" + out.string() +
                                   "' --images 8 --val-images 5 --size 64 --items shapes >/dev/null 2>&1; echo $?");
    REQUIRE(code == "0\n");
    return out / "ADEChallengeData2016";
  }();
  return root;
}

int free_master_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port) - 1;  // the rendezvous listens on MASTER_PORT + 1
}

// The tiny run: ViT width 32, depth 4, heads of 16 / 8 channels, crop 64, `batch` crops per rank,
// SGD (see the top of the file), 3 iterations (the 8 images are 2 global batches: the third step
// starts the next epoch), an evaluation at step 2 and at the end, a recovery checkpoint at step 2.
fs::path write_config(const std::string& name, int64_t batch, const json& extra = json::object()) {
  json c = {{"include", std::string(RV_SOURCE_DIR) + "/configs/scenes_upernet_vit_tiny_rope_mixed.json"},
            {"model", {{"embed_dim", 32}, {"depth", {4}}, {"num_heads", {2}}}},
            {"data", {{"root", scenes().string()}, {"workers", 0}}},
            {"sched", {{"warmup_iters", 1}}},
            {"optim", {{"name", "sgd"}, {"momentum", 0.9}}},
            {"train", {{"iters", 3}, {"batch_size", batch}, {"out_dir", (tmp().path / "runs").string()},
                       {"run_name", name}}},
            {"seg", {{"crop", 64}, {"channels", 16}, {"aux_channels", 8}, {"stride", 43}, {"dropout", 0.0},
                     {"avg_non_ignore", false}}},
            {"log", {{"interval", 1}, {"tensorboard", false}}},
            {"eval", {{"interval", 2}}},
            {"ckpt", {{"recovery_steps", 2}}},
            {"dist", {{"timeout_s", 60}}}};
  c.merge_patch(extra);
  const fs::path p = tmp().path / (name + ".json");
  std::ofstream(p) << c.dump(2);
  return p;
}

struct Run {
  std::vector<int> codes;
  std::string err;
};

Run single(const std::string& name, const json& extra = json::object()) {
  const fs::path cfg = write_config(name, 4, extra), e = tmp().path / (name + ".err");
  const std::string out = shell("env OMP_NUM_THREADS=1 " + bin() + " train '" + cfg.string() + "' >/dev/null 2>'" +
                                e.string() + "'; echo $?");
  Run r;
  std::istringstream in(out);
  for (int c; in >> c;) r.codes.push_back(c);
  r.err = read_file(e);
  return r;
}

// Two processes with torchrun's variables, 2 crops each.
Run two_ranks(const std::string& name, const json& extra = json::object()) {
  const fs::path cfg = write_config(name, 2, extra);
  const int port = free_master_port();
  std::string script = "(";
  std::vector<fs::path> errs;
  for (int r = 0; r < 2; ++r) {
    errs.push_back(tmp().path / (name + ".rank" + std::to_string(r) + ".err"));
    script += "env OMP_NUM_THREADS=1 RANK=" + std::to_string(r) + " WORLD_SIZE=2 LOCAL_RANK=" + std::to_string(r) +
              " LOCAL_WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " + bin() +
              " train '" + cfg.string() + "' >/dev/null 2>'" + errs.back().string() + "' & p" + std::to_string(r) +
              "=$!; ";
  }
  script += "wait $p0; echo $?; wait $p1; echo $?; )";
  const std::string out = shell(script);
  Run r;
  std::istringstream in(out);
  for (int c; in >> c;) r.codes.push_back(c);
  for (const auto& f : errs) r.err += read_file(f);
  return r;
}

// Two processes under mpirun, 2 crops each.
Run mpirun_two(const std::string& name) {
  const fs::path cfg = write_config(name, 2), e = tmp().path / (name + ".err");
  const std::string out = shell("env OMP_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe -np 2 -x "
                                "OMP_NUM_THREADS " + bin() + " train '" + cfg.string() + "' >/dev/null 2>'" +
                                e.string() + "'; echo $?");
  Run r;
  std::istringstream in(out);
  for (int c; in >> c;) r.codes.push_back(c);
  r.err = read_file(e);
  return r;
}

fs::path run_dir(const std::string& name) { return tmp().path / "runs" / name; }

// The largest difference over every tensor of two checkpoints (model, optimizer state, buffers).
double largest_difference(const fs::path& a, const fs::path& b, std::string& where) {
  const rv::SafetensorsFile fa = rv::SafetensorsFile::open(a.string()), fb = rv::SafetensorsFile::open(b.string());
  REQUIRE(fa.names() == fb.names());
  double worst = 0;
  for (const auto& name : fa.names()) {
    const std::vector<double> x = fa.tensor(name).to_double_vector(), y = fb.tensor(name).to_double_vector();
    REQUIRE(x.size() == y.size());
    for (size_t i = 0; i < x.size(); ++i)
      if (std::abs(x[i] - y[i]) > worst) worst = std::abs(x[i] - y[i]), where = name;
  }
  return worst;
}

std::vector<json> records(const fs::path& run, const std::string& kind) {
  std::vector<json> out;
  std::istringstream in(read_file(run / "log.jsonl"));
  for (std::string line; std::getline(in, line);)
    if (json j = json::parse(line); j.value("kind", "") == kind) out.push_back(j);
  return out;
}

// The three runs, once per process.
struct Runs {
  Run one, sync, local;
};
const Runs& runs() {
  static const Runs r = [] {
    Runs x;
    x.one = single("one");
    x.sync = two_ranks("sync");                                   // model.sync_bn unset: on with 2 ranks
    x.local = two_ranks("local", {{"model", {{"sync_bn", false}}}});  // each rank its own statistics
    return x;
  }();
  return r;
}

bool all_zero(const Run& r) {
  if (r.codes.empty()) return false;
  for (int c : r.codes)
    if (c != 0) return false;
  return true;
}

}  // namespace

TEST_CASE("2 TCP ranks with SyncBatchNorm train the scenes UperNet as one process with the global batch") {
  const Runs& r = runs();
  REQUIRE_MESSAGE(all_zero(r.one), r.one.err);
  REQUIRE_MESSAGE(r.sync.codes.size() == 2, r.sync.err);
  REQUIRE_MESSAGE(all_zero(r.sync), r.sync.err);
  CHECK(r.sync.err.find("BatchNorm synchronised over the ranks") != std::string::npos);
  std::string where;
  const double d = largest_difference(run_dir("one") / "checkpoints" / "last.safetensors",
                                      run_dir("sync") / "checkpoints" / "last.safetensors", where);
  MESSAGE("sync_bn: largest difference " << d << " (" << where << ")");
  CHECK(d <= 1e-6);
  // The logged losses are the global means; one line per step (rank 0 alone logs).
  const auto ta = records(run_dir("one"), "train"), tb = records(run_dir("sync"), "train");
  REQUIRE(ta.size() == 3);
  REQUIRE(tb.size() == 3);
  for (size_t i = 0; i < ta.size(); ++i)
    CHECK(std::abs(ta[i]["loss"].get<double>() - tb[i]["loss"].get<double>()) < 1e-6);
  for (const char* f : {"config.json", "model.safetensors", "checkpoints/recovery.safetensors",
                        "checkpoints/best.safetensors", "seg_eval.json", "summary.csv"})
    CHECK_MESSAGE(fs::exists(run_dir("sync") / f), f);
}

TEST_CASE("without sync_bn the 2 ranks' BatchNorm statistics are per rank, so the weights differ") {
  const Runs& r = runs();
  REQUIRE_MESSAGE(all_zero(r.one), r.one.err);
  REQUIRE_MESSAGE(all_zero(r.local), r.local.err);
  CHECK(r.local.err.find("BatchNorm per rank (model.sync_bn = false)") != std::string::npos);
  std::string where;
  const double d = largest_difference(run_dir("one") / "checkpoints" / "last.safetensors",
                                      run_dir("local") / "checkpoints" / "last.safetensors", where);
  MESSAGE("no sync_bn: largest difference " << d << " (" << where << ")");
  CHECK(d > 1e-4);
}

TEST_CASE("evaluation on 2 ranks counts every validation image once and gives the 1-rank mIoU") {
  const Runs& r = runs();
  REQUIRE(all_zero(r.one));
  REQUIRE(all_zero(r.sync));
  const auto va = records(run_dir("one"), "val"), vb = records(run_dir("sync"), "val");
  REQUIRE(va.size() == 2);  // steps 2 and 3
  REQUIRE(vb.size() == 2);
  for (size_t i = 0; i < va.size(); ++i) {
    CHECK(vb[i]["images"] == 5);  // shares of 3 and 2, summed
    for (const char* k : {"mIoU", "mAcc", "aAcc"}) {
      INFO(k);
      CHECK(va[i][k].get<double>() == doctest::Approx(vb[i][k].get<double>()).epsilon(1e-9));
    }
  }
  const json ja = json::parse(read_file(run_dir("one") / "seg_eval.json"));
  const json jb = json::parse(read_file(run_dir("sync") / "seg_eval.json"));
  CHECK(jb["images"] == 5);
  CHECK(ja["mIoU"] == jb["mIoU"]);
  CHECK(ja["per_class"] == jb["per_class"]);
}

TEST_CASE("mpirun -np 2 with SyncBatchNorm ends where one process does") {
  if (!rv::train::dist::mpi_compiled_in() || std::system("command -v mpirun >/dev/null 2>&1") != 0) {
    WARN_MESSAGE(false, "skipped: this build has no MPI, or mpirun is not installed (libopenmpi-dev, openmpi-bin)");
    return;
  }
  const Runs& r = runs();
  REQUIRE_MESSAGE(all_zero(r.one), r.one.err);
  const Run m = mpirun_two("mpi");
  REQUIRE_MESSAGE(all_zero(m), m.err);
  CHECK(m.err.find("ranks over mpi") != std::string::npos);
  std::string where;
  const double d = largest_difference(run_dir("one") / "checkpoints" / "last.safetensors",
                                      run_dir("mpi") / "checkpoints" / "last.safetensors", where);
  MESSAGE("mpirun: largest difference " << d << " (" << where << ")");
  CHECK(d <= 1e-6);
}
