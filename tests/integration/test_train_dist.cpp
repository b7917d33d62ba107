// test_train_dist.cpp: data-parallel `ropevit train` as users launch it, on a tiny ViT and 128
// Fashion-MNIST images (global batch 16 = 2 ranks x 8, 2 micro-batches per step, 2 epochs):
//   - `mpirun -np 2` and a torchrun-style launch (RANK / WORLD_SIZE / MASTER_ADDR / MASTER_PORT
//     set by the test, 2 and 4 processes over the TCP rendezvous) end with the same weights, EMA and
//     optimizer state as one process with the whole batch, to 1e-6, and log the same losses;
//   - a rank killed mid-run (RV_TEST_EXIT_AFTER_STEP + RV_TEST_EXIT_RANK) ends the other with a
//     clear error, well within dist.timeout_s;
//   - a 2-rank checkpoint resumes on 1 rank, and a 1-rank one on 2 ranks, to the same end;
//   - the gradient all-reduce overlapped with the backward (dist.overlap, the default) and after it
//     give the same bits;
//   - `ropevit bench comm` prints its all-reduce table and the step time with and without overlap
//     from rank 0.
// Evaluation uses 101 images, so the ranks' shares differ by one (no padding, counts summed).
// Without mpirun (or in a build without MPI) the mpirun cases are skipped with a warning saying so.
// Needs the Fashion-MNIST files (Debian's dataset-fashion-mnist), as test_train_cli does.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/fashion_mnist.h"
#include "engine/io/safetensors.h"
#include "tests/support/cli_run.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

using rv::test::contains;
using rv::test::read_file;

const rv::test::TempDir& tmp() {
  static rv::test::TempDir d("rv_train_dist");
  return d;
}

bool have_data() {
  return !rv::data::FashionMnist::find_file(rv::data::FashionMnist::kDebianDir, "train-images-idx3-ubyte").empty();
}

bool have_mpirun() { return std::system("command -v mpirun >/dev/null 2>&1") == 0; }

// A free port for MASTER_PORT (the rendezvous listens on MASTER_PORT + 1).
int free_master_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port) - 1;
}

// The tiny run; `name` is the run folder under the temp dir. One thread per process: two ranks
// share the machine's cores, and the results do not depend on the thread count.
fs::path write_config(const std::string& name) {
  json c = {{"include", std::string(RV_SOURCE_DIR) + "/configs/fmnist_base.json"},
            {"model", {{"name", "vit_tiny_patch16_rope_mixed_224"}, {"embed_dim", 32}, {"depth", {2}},
                       {"num_heads", {2}}}},
            {"data", {{"train_subset", 128}, {"val_subset", 101}, {"workers", 0}}},
            {"train", {{"epochs", 2}, {"batch_size", 16}, {"grad_accum", 2}, {"ema_decay", 0.9},
                       {"out_dir", tmp().path.string()}, {"run_name", name}}},
            {"eval", {{"img_sizes", json::array()}, {"batch_size", 30}}},
            {"log", {{"interval", 1}, {"progress", "plain"}, {"tensorboard", false}}},
            {"ckpt", {{"recovery_steps", 2}}},
            {"dist", {{"timeout_s", 30}}}};
  const fs::path p = tmp().path / (name + ".json");
  std::ofstream(p) << c.dump(2);
  return p;
}

struct Run {
  std::vector<int> codes;  // exit status of each process (mpirun: one)
  std::string err;         // their stderr, concatenated
  double seconds = 0;
};

Run shell(const std::string& script, int processes, const std::vector<fs::path>& err_files) {
  const auto t0 = Clock::now();
  const std::string cmd = "cd '" + std::string(RV_SOURCE_DIR) + "' && " + script;
  FILE* p = popen(cmd.c_str(), "r");
  REQUIRE(p != nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
  pclose(p);
  Run r;
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  std::istringstream in(out);
  for (int i = 0, c; i < processes && in >> c; ++i) r.codes.push_back(c);
  for (const auto& f : err_files) r.err += read_file(f);
  return r;
}

// Built with += rather than "'" + path + "'": GCC 12 warns -Wrestrict on that concatenation
// (a false positive in its std::string inlining, GCC bug 105329).
std::string bin() {
  std::string quoted = "'";
  quoted += rv::test::ropevit_path();
  quoted += "'";
  return quoted;
}

// One process: `env ropevit train CFG args`.
Run single(const fs::path& cfg, const std::string& args, const std::string& env = "") {
  const fs::path e = tmp().path / "single.err";
  return shell("env OMP_NUM_THREADS=1 " + env + " " + bin() + " train '" + cfg.string() + "' " + args + " >/dev/null 2>'" +
                   e.string() + "'; echo $?",
               1, {e});
}

// `world` processes of `ropevit <command>` with torchrun's variables, started by the test;
// rendezvous over TCP. stdout goes to out.txt (rank 0's is what bench comm prints).
Run torchrun_command(int world, const std::string& command, const std::string& env = "") {
  const int port = free_master_port();
  std::string script = "(";
  std::vector<fs::path> errs;
  for (int r = 0; r < world; ++r) {
    errs.push_back(tmp().path / ("rank" + std::to_string(r) + ".err"));
    script += "env OMP_NUM_THREADS=1 RANK=" + std::to_string(r) + " WORLD_SIZE=" + std::to_string(world) +
              " LOCAL_RANK=" + std::to_string(r) + " LOCAL_WORLD_SIZE=" + std::to_string(world) +
              " MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(port) + " " + env + " " + bin() + " " + command +
              (r == 0 ? " >'" + (tmp().path / "out.txt").string() + "'" : std::string(" >/dev/null")) + " 2>'" +
              errs.back().string() + "' & p" + std::to_string(r) + "=$!; ";
  }
  for (int r = 0; r < world; ++r) script += "wait $p" + std::to_string(r) + "; echo $?; ";
  return shell(script + ")", world, errs);
}

Run torchrun_style(int world, const fs::path& cfg, const std::string& args, const std::string& env = "") {
  return torchrun_command(world, "train '" + cfg.string() + "' " + args, env);
}

Run mpirun(int world, const fs::path& cfg, const std::string& args, const std::string& env_names = "") {
  const fs::path e = tmp().path / "mpirun.err";
  std::string x = " -x OMP_NUM_THREADS=1";
  std::istringstream names(env_names);
  for (std::string n; names >> n;) x += " -x " + n;
  return shell("env OMP_NUM_THREADS=1 mpirun --allow-run-as-root --oversubscribe -np " + std::to_string(world) + x +
                   " " + bin() + " train '" + cfg.string() + "' " + args + " >/dev/null 2>'" + e.string() +
                   "'; echo $?",
               1, {e});
}

// Every tensor of two checkpoints (model, EMA, optimizer state) within `tol`.
void expect_same_state(const fs::path& a, const fs::path& b, double tol = 1e-6) {
  const rv::SafetensorsFile fa = rv::SafetensorsFile::open(a.string()), fb = rv::SafetensorsFile::open(b.string());
  REQUIRE(fa.names() == fb.names());
  double worst = 0;
  std::string worst_name;
  for (const auto& name : fa.names()) {
    const std::vector<double> x = fa.tensor(name).to_double_vector(), y = fb.tensor(name).to_double_vector();
    REQUIRE(x.size() == y.size());
    for (size_t i = 0; i < x.size(); ++i)
      if (std::abs(x[i] - y[i]) > worst) worst = std::abs(x[i] - y[i]), worst_name = name;
  }
  MESSAGE("largest difference " << worst << " (" << worst_name << ")");
  CHECK(worst <= tol);
}

std::vector<json> records(const fs::path& run, const std::string& kind) {
  std::vector<json> out;
  std::istringstream in(read_file(run / "log.jsonl"));
  for (std::string line; std::getline(in, line);)
    if (json j = json::parse(line); j.value("kind", "") == kind) out.push_back(j);
  return out;
}

// The logged training losses (global means) and evaluation counts of two runs agree.
void expect_same_log(const fs::path& a, const fs::path& b) {
  const auto ta = records(a, "train"), tb = records(b, "train");
  REQUIRE(ta.size() == 8);  // one line per step: rank 0 alone logs
  REQUIRE(tb.size() == ta.size());
  for (size_t i = 0; i < ta.size(); ++i) {
    CHECK(ta[i]["step"] == tb[i]["step"]);
    CHECK(std::abs(ta[i]["loss"].get<double>() - tb[i]["loss"].get<double>()) < 1e-6);
  }
  const auto ea = records(a, "eval"), eb = records(b, "eval");
  REQUIRE(ea.size() == 2);
  REQUIRE(eb.size() == 2);
  for (size_t i = 0; i < ea.size(); ++i) {
    CHECK(eb[i]["samples"] == 101);  // every validation image once (uneven shares), summed over the ranks
    CHECK(ea[i]["top1"] == eb[i]["top1"]);
    CHECK(std::abs(ea[i]["loss"].get<double>() - eb[i]["loss"].get<double>()) < 1e-5);
  }
}

fs::path last(const std::string& run) { return tmp().path / run / "checkpoints" / "last.safetensors"; }

// The reference: one process, the whole global batch of 16.
const fs::path& reference_run() {
  static const fs::path dir = [] {
    Run r = single(write_config("ref"), "train.batch_size=16");
    INFO(r.err);
    REQUIRE(r.codes == std::vector<int>{0});
    return tmp().path / "ref";
  }();
  return dir;
}

}  // namespace

TEST_CASE("dist: 2 processes launched torchrun-style (TCP) train exactly as 1 process with the same global batch") {
  REQUIRE_MESSAGE(have_data(), "Fashion-MNIST is missing: apt-get install dataset-fashion-mnist");
  const fs::path ref = reference_run();
  Run r = torchrun_style(2, write_config("tcp"), "train.batch_size=8");
  INFO(r.err);
  REQUIRE(r.codes == std::vector<int>{0, 0});
  CHECK(contains(r.err, "data-parallel: 2 ranks over tcp 127.0.0.1:"));
  CHECK(contains(r.err, "all-reduced during the backward (dist.overlap)"));
  expect_same_state(last("ref"), last("tcp"));
  expect_same_log(ref, tmp().path / "tcp");
  // The all-reduce after the backward instead of during it: the same bits.
  Run off = torchrun_style(2, write_config("tcp_no_overlap"), "train.batch_size=8 dist.overlap=false");
  INFO(off.err);
  REQUIRE(off.codes == std::vector<int>{0, 0});
  CHECK(contains(off.err, "all-reduced after the backward (dist.overlap = false)"));
  expect_same_state(last("tcp"), last("tcp_no_overlap"), 0.0);
  // 4 ranks x 4: three peers summed in rank order on rank 0, a quarter each.
  Run four = torchrun_style(4, write_config("tcp4"), "train.batch_size=4");
  INFO(four.err);
  REQUIRE(four.codes == std::vector<int>{0, 0, 0, 0});
  expect_same_state(last("ref"), last("tcp4"));
  expect_same_log(ref, tmp().path / "tcp4");
}

TEST_CASE("dist: mpirun -np 2 trains exactly as 1 process with the same global batch") {
  REQUIRE_MESSAGE(have_data(), "Fashion-MNIST is missing: apt-get install dataset-fashion-mnist");
  if (!have_mpirun()) {
    WARN_MESSAGE(false, "skipped: mpirun is not installed (apt-get install openmpi-bin libopenmpi-dev)");
    return;
  }
  const fs::path ref = reference_run();
  Run r = mpirun(2, write_config("mpi"), "train.batch_size=8");
  INFO(r.err);
  if (contains(r.err, "this build has no MPI")) {
    WARN_MESSAGE(false, "skipped: this build has no MPI (CMake did not find it)");
    return;
  }
  REQUIRE(r.codes == std::vector<int>{0});
  CHECK(contains(r.err, "data-parallel: 2 ranks over mpi"));
  expect_same_state(last("ref"), last("mpi"));
  expect_same_log(ref, tmp().path / "mpi");
}

TEST_CASE("dist: a rank killed mid-run ends the other with a clear error, within the timeout") {
  REQUIRE_MESSAGE(have_data(), "Fashion-MNIST is missing: apt-get install dataset-fashion-mnist");
  const std::string kill = "RV_TEST_EXIT_AFTER_STEP=3 RV_TEST_EXIT_RANK=1";
  Run r = torchrun_style(2, write_config("killed_tcp"), "train.batch_size=8", kill);
  INFO(r.err);
  REQUIRE(r.codes.size() == 2);
  CHECK(r.codes[1] == 137);  // the hook's "kill -9"
  CHECK(r.codes[0] == 1);
  CHECK(contains(r.err, "ropevit train: rank 0 of 2: error:"));
  CHECK(contains(r.err, "at step 4 failed on rank 0: dist (tcp): rank 0: rank 1 closed its connection"));
  CHECK(r.seconds < 25);  // dist.timeout_s is 30: the closed socket is seen at once
  if (!have_mpirun()) {
    WARN_MESSAGE(false, "skipped (mpirun part): mpirun is not installed");
    return;
  }
  setenv("RV_TEST_EXIT_AFTER_STEP", "3", 1);
  setenv("RV_TEST_EXIT_RANK", "1", 1);
  Run m = mpirun(2, write_config("killed_mpi"), "train.batch_size=8", "RV_TEST_EXIT_AFTER_STEP RV_TEST_EXIT_RANK");
  unsetenv("RV_TEST_EXIT_AFTER_STEP");
  unsetenv("RV_TEST_EXIT_RANK");
  INFO(m.err);
  if (contains(m.err, "this build has no MPI")) return;
  REQUIRE(m.codes.size() == 1);
  CHECK(m.codes[0] != 0);  // mpirun ends the job when one of its processes dies
  CHECK(contains(m.err, "exited"));
  CHECK(m.seconds < 25);
}

TEST_CASE("dist: a 2-rank checkpoint resumes on 1 rank, and a 1-rank one on 2 ranks, to the same end") {
  REQUIRE_MESSAGE(have_data(), "Fashion-MNIST is missing: apt-get install dataset-fashion-mnist");
  reference_run();
  {  // 2 ranks x 8, killed after step 3 (the recovery checkpoint of step 2 survives), then 1 rank x 16
    const fs::path cfg = write_config("two_then_one");
    Run cut = torchrun_style(2, cfg, "train.batch_size=8", "RV_TEST_EXIT_AFTER_STEP=3");
    INFO(cut.err);
    REQUIRE(cut.codes == std::vector<int>{137, 137});
    // A global batch that does not divide the position (64 samples) is refused, naming both ...
    Run odd = single(cfg, "train.batch_size=24 --resume auto");
    CHECK(odd.codes == std::vector<int>{1});
    CHECK_MESSAGE(contains(odd.err, "stopped after 64 samples of epoch 0 (2 rank(s))"), odd.err);
    // ... the same global batch on 1 rank continues exactly.
    Run rest = single(cfg, "train.batch_size=16 --resume auto");
    INFO(rest.err);
    REQUIRE(rest.codes == std::vector<int>{0});
    CHECK(contains(rest.err, "recovery.safetensors"));
    expect_same_state(last("ref"), last("two_then_one"));
  }
  {  // 1 rank x 16 killed after step 3, then 2 ranks x 8
    const fs::path cfg = write_config("one_then_two");
    Run cut = single(cfg, "train.batch_size=16", "RV_TEST_EXIT_AFTER_STEP=3");
    REQUIRE(cut.codes == std::vector<int>{137});
    Run rest = torchrun_style(2, cfg, "train.batch_size=8 --resume auto");
    INFO(rest.err);
    REQUIRE(rest.codes == std::vector<int>{0, 0});
    expect_same_state(last("ref"), last("one_then_two"));
  }
}

TEST_CASE("dist: bench comm prints the all-reduce table and the step time with and without overlap from rank 0") {
  Run r = torchrun_command(2, "bench comm --max-mb 0.02 --iters 2 --model vit_tiny_patch16_rope_mixed_224 "
                              "--img-size 32 --batch 1 --steps 1");
  INFO(r.err);
  REQUIRE(r.codes == std::vector<int>{0, 0});
  const std::string out = read_file(tmp().path / "out.txt");
  INFO(out);
  CHECK(contains(out, "all_reduce_sum f32 over tcp 127.0.0.1:"));
  CHECK(contains(out, "busbw_GB/s"));
  CHECK(contains(out, "        4096 "));
  CHECK(contains(out, "       16384 "));
  CHECK(contains(out, "step time of vit_tiny_patch16_rope_mixed_224, 1 image(s) of 32x32 per rank"));
  CHECK(contains(out, "compute only (no all-reduce)"));
  CHECK(contains(out, "all-reduce after the backward"));
  CHECK(contains(out, "all-reduce overlapped (dist.overlap)"));
  CHECK(contains(out, "overlap hides"));
}
