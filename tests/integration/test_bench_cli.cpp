// test_bench_cli.cpp: `ropevit bench ops` run as a user runs it (the built program, through a
// shell), checking what scripts/bench and tools/bench_table.py rely on: the exit code, the
// case keys of --list, the printed table's header, the JSON lines of --out (and the torch
// ratio read from --torch), and that bad arguments fail with a message naming the argument.
// One filtered run with a tiny budget keeps it to a couple of seconds; --list must be quick
// because it builds no input (cases are lazy, train/bench/bench_harness.h). `bench data` runs
// on a small Fashion-MNIST split written here as plain IDX files.
#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/cli_run.h"

namespace {

namespace fs = std::filesystem;

using Run = rv::test::CliRun;
using rv::test::contains;
using rv::test::lines;
using rv::test::read_file;

// A scratch folder for this process, removed at exit.
const rv::test::TempDir& tmp() {
  static rv::test::TempDir d("rv_bench_cli");
  return d;
}

Run ropevit(const std::string& args) { return rv::test::ropevit(args); }

}  // namespace

TEST_CASE("bench ops --list prints every case key once, instantly, and honours --group and --filter") {
  Run all = ropevit("bench ops --list");
  INFO("stderr: " << all.err);
  REQUIRE(all.code == 0);
  std::vector<std::string> keys = lines(all.out);
  CHECK(keys.size() >= 40);
  std::set<std::string> unique(keys.begin(), keys.end());
  CHECK(unique.size() == keys.size());
  for (const std::string& k : keys) {
    INFO("key: " << k);
    CHECK((k.rfind("vit_s16/", 0) == 0 || k.rfind("swin_t/", 0) == 0));
  }
  CHECK(unique.count("vit_s16/add residual (32,197,384)") == 1);
  CHECK(unique.count("swin_t/add residual (32,3136,96)") == 1);
  CHECK(unique.count("vit_s16/linear qkv (6304x384)->1152 backward") == 1);
  // Building every input took over 10 s on 2 cores; listing builds none.
  CHECK(all.seconds < 3.0);

  Run swin = ropevit("bench ops --list --group swin_t");
  REQUIRE(swin.code == 0);
  for (const std::string& k : lines(swin.out)) CHECK(k.rfind("swin_t/", 0) == 0);
  CHECK(lines(swin.out).size() < keys.size());

  Run add = ropevit("bench ops --list --filter 'add residual'");
  REQUIRE(add.code == 0);
  CHECK(lines(add.out) ==
        std::vector<std::string>{"vit_s16/add residual (32,197,384)", "swin_t/add residual (32,3136,96)"});
}

TEST_CASE("bench ops --filter runs the selected cases, prints the table and writes JSON lines") {
  const fs::path out = tmp().path / "bench.jsonl", torch = tmp().path / "torch.json";
  {  // PyTorch times for one of the two cases, as tools/bench_torch_ops.py writes them
    std::ofstream t(torch);
    t << R"j({"ms": {"vit_s16/add residual (32,197,384)": 2.5}, "torch": "x", "threads": 2, "blas": "x"})j";
  }
  Run r = ropevit("bench ops --filter 'add residual' --budget 0.01 --out '" + out.string() + "' --torch '" +
                  torch.string() + "'");
  INFO("stdout: " << r.out);
  INFO("stderr: " << r.err);
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, "measured peaks:"));
  bool header = false;
  for (const std::string& l : lines(r.out))
    if (l.rfind("case ", 0) == 0)
      header = contains(l, " ms") && contains(l, "GFLOP/s") && contains(l, "GB/s") && contains(l, "%peak") &&
               contains(l, "ref ms") && contains(l, "torch ms") && contains(l, "pt/us");
  CHECK(header);
  CHECK(contains(r.out, "-- vit_s16"));
  CHECK(contains(r.out, "-- swin_t"));
  CHECK(contains(r.out, "add residual (32,197,384)"));
  CHECK_FALSE(contains(r.out, "gelu"));  // the filter left the other cases out

  std::vector<std::string> jl = lines(read_file(out));
  REQUIRE(jl.size() == 2);
  std::vector<std::string> cases;
  for (const std::string& l : jl) {
    INFO("line: " << l);
    nlohmann::json j = nlohmann::json::parse(l);
    for (const char* field : {"case", "ms", "gflops", "gbps", "peak_fraction", "threads"})
      CHECK_MESSAGE(j.contains(field), "missing field " << field);
    cases.push_back(j["case"].get<std::string>());
    CHECK(j["ms"].get<double>() > 0);
    CHECK(j["gbps"].get<double>() > 0);
    CHECK(j["peak_fraction"].get<double>() > 0);
    CHECK(j["threads"].get<int>() >= 1);
    CHECK_FALSE(j.contains("reference_ms"));  // an add has no BLAS reference
    if (j["case"] == "vit_s16/add residual (32,197,384)")
      CHECK(j.value("torch_ms", 0.0) == 2.5);
    else
      CHECK_FALSE(j.contains("torch_ms"));
  }
  CHECK(cases == std::vector<std::string>{"vit_s16/add residual (32,197,384)", "swin_t/add residual (32,3136,96)"});
}

TEST_CASE("bench: bad arguments exit non-zero with a message naming the argument") {
  struct Bad {
    const char* args;
    std::vector<const char*> message;  // parts stderr must contain
  };
  const Bad bad[] = {
      {"bench ops --group nope", {"--group", "nope"}},
      {"bench ops --frobnicate", {"--frobnicate"}},
      {"bench ops --filter", {"--filter", "needs a value"}},
      {"bench ops --list --out", {"--out", "needs a value"}},
      {"bench ops --budget abc", {"--budget", "abc"}},
      {"bench ops --budget -1", {"--budget", "-1"}},
      {"bench ops --torch /nonexistent/torch.json", {"--torch", "/nonexistent/torch.json"}},
      {"bench nope", {"nope"}},
      {"bench kernels --device cpu", {"--device", "expected cuda:N"}},
      {"bench kernels --device gpu7", {"gpu7", "expected cpu, cuda or cuda:N"}},
      {"bench kernels --budget x", {"--budget", "x"}},
      {"bench kernels --bogus", {"--bogus"}},
  };
  for (const Bad& b : bad) {
    Run r = ropevit(b.args);
    INFO("ropevit " << b.args << "\nstdout: " << r.out << "\nstderr: " << r.err);
    CHECK(r.code > 0);
    for (const char* part : b.message) CHECK(contains(r.err, part));
    CHECK_FALSE(contains(r.out, "measured peaks"));  // failed before timing anything
  }
  // Without a GPU (CI), bench kernels says why it cannot time anything; --list needs no GPU.
  Run kernels = ropevit("bench kernels");
  CHECK(kernels.code > 0);
  CHECK(contains(kernels.err, "cuda:0:"));
  Run list = ropevit("bench kernels --list");
  CHECK(list.code == 0);
  CHECK(contains(list.out, "vit_s16/add (50432,384)"));
  Run none = ropevit("bench");  // no bench named: the usage, and a failure
  CHECK(none.code > 0);
  CHECK(contains(none.out + none.err, "usage: ropevit bench ops"));
}

namespace {

// A Fashion-MNIST "train" split of n images in plain (uncompressed) IDX files under `dir`.
void write_fashion_split(const fs::path& dir, uint32_t n) {
  fs::create_directories(dir);
  auto be32 = [](std::string& s, uint32_t v) {
    for (int i = 3; i >= 0; --i) s.push_back(char((v >> (8 * i)) & 0xff));
  };
  std::string images = {'\0', '\0', '\x08', '\x03'}, labels = {'\0', '\0', '\x08', '\x01'};
  be32(images, n), be32(images, 28), be32(images, 28), be32(labels, n);
  for (uint32_t i = 0; i < n * 28 * 28; ++i) images.push_back(char((i * 7) & 0xff));
  for (uint32_t i = 0; i < n; ++i) labels.push_back(char(i % 10));
  std::ofstream(dir / "train-images-idx3-ubyte", std::ios::binary) << images;
  std::ofstream(dir / "train-labels-idx1-ubyte", std::ios::binary) << labels;
}

}  // namespace

TEST_CASE("bench data: images per second through the loader, and its argument errors") {
  const fs::path dir = tmp().path / "fashion";
  write_fashion_split(dir, 64);
  Run r = ropevit("bench data --dataset fashion-mnist --data-dir '" + dir.string() +
                  "' --workers 2 --batch 16 --img-size 24 --seconds 0.2");
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  REQUIRE(r.code == 0);
  CHECK(contains(r.out, "fashion-mnist train, 64 images, 28x28 -> 24x24 (augmented)"));
  CHECK(contains(r.out, "batch 16, 2 workers"));
  CHECK(contains(r.out, " images/s, "));
  Run eval = ropevit("bench data --dataset fashion-mnist --data-dir '" + dir.string() +
                     "' --workers 0 --batch 64 --eval --seconds 0");
  CHECK(eval.code == 0);
  CHECK(contains(eval.out, "28x28 -> 32x32\n"));

  const std::string d = " --data-dir '" + dir.string() + "'";
  struct Bad {
    std::string args;
    std::vector<std::string> message;
  };
  const Bad bad[] = {
      {"bench data --workers 2", {"expected --dataset fashion-mnist"}},
      {"bench data --dataset imagenet", {"unknown data set 'imagenet'"}},
      {"bench data --dataset fashion-mnist --workers -1" + d, {"--workers", "-1"}},
      {"bench data --dataset fashion-mnist --batch 0" + d, {"--batch", "'0'"}},
      {"bench data --dataset fashion-mnist --reprob 2" + d, {"--reprob", "'2'"}},
      {"bench data --dataset fashion-mnist --split val" + d, {"--split", "'val'"}},
      {"bench data --dataset fashion-mnist --batch 65" + d, {"--batch 65 is larger than the data set"}},
      {"bench data --dataset fashion-mnist --split test" + d, {"t10k-images-idx3-ubyte"}},
      {"bench data --dataset fashion-mnist --frobnicate", {"--frobnicate"}},
  };
  for (const Bad& b : bad) {
    Run e = ropevit(b.args);
    INFO("ropevit " << b.args << "\nstdout: " << e.out << "\nstderr: " << e.err);
    CHECK(e.code > 0);
    for (const std::string& part : b.message) CHECK(contains(e.err, part));
    CHECK_FALSE(contains(e.out, "images/s"));
  }
}

TEST_CASE("bench data --dataset imagefolder: the bar's pipeline (no jitter) and DeiT III's recipe (jitter 0.3) side by side") {
  const std::string base = "bench data --dataset imagefolder --synthetic 64x48 --count 4 --workers 1 --batch 2 --img-size 32 --seconds 0";
  Run r = ropevit(base);
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  if (contains(r.err, "without TurboJPEG")) {
    MESSAGE("skipped: built without TurboJPEG");
    return;
  }
  REQUIRE(r.code == 0);
  // Both pipelines named in full, each with its 1-thread chain, its loader row and its verdict.
  CHECK(contains(r.out, "pipeline 1: bar pipeline (issue 5): RandomResizedCrop 32 + flip + 3-Augment + normalise, no ColorJitter\n"));
  CHECK(contains(r.out, "pipeline 2: DeiT III recipe: RandomResizedCrop 32 + flip + 3-Augment + ColorJitter 0.3 + normalise\n"));
  CHECK(contains(r.out, "bar pipeline (pipeline 1):\n  decode + augment + normalise, 1 thread"));
  CHECK(contains(r.out, "DeiT III recipe (pipeline 2):\n  decode + augment + normalise, 1 thread"));
  CHECK(contains(r.out, "(the same with data.resize = exact)"));
  CHECK(contains(r.out, "  full loader, 1 workers, batch 2"));
  CHECK(contains(r.out, "  bar pipeline:"));
  CHECK(contains(r.out, "  DeiT III recipe:"));
  // --jitter 0: the bar's pipeline alone; another strength is named by its value.
  Run one = ropevit(base + " --jitter 0");
  CHECK(one.code == 0);
  CHECK(contains(one.out, "pipeline 1: bar pipeline"));
  CHECK_FALSE(contains(one.out, "pipeline 2"));
  Run j4 = ropevit(base + " --jitter 0.4");
  CHECK(j4.code == 0);
  CHECK(contains(j4.out, "pipeline 2: with jitter: RandomResizedCrop 32 + flip + 3-Augment + ColorJitter 0.4 + normalise"));
  // RandAugment has no jitter in timm: one pipeline.
  Run ra = ropevit(base + " --aa rand-m9-mstd0.5-inc1");
  CHECK(ra.code == 0);
  CHECK(contains(ra.out, "pipeline 1: RandomResizedCrop 32 + flip + rand-m9-mstd0.5-inc1 + normalise\n"));
  CHECK_FALSE(contains(ra.out, "pipeline 2"));
  Run bad = ropevit(base + " --jitter 1.5");
  CHECK(bad.code > 0);
  CHECK(contains(bad.err, "--jitter: expected a jitter strength in [0, 1], got '1.5'"));
}

TEST_CASE("bench decode: the image pipeline table on synthetic JPEGs and on a folder; bad options") {
  Run r = ropevit("bench decode --count 2 --size 32 --budget 0");
  INFO("stdout: " << r.out << "\nstderr: " << r.err);
  if (contains(r.err, "without TurboJPEG")) {
    MESSAGE("skipped: built without TurboJPEG");
    return;
  }
  CHECK(r.code == 0);
  for (const char* row : {"decode (full size)", "train: RRC + flip + 3-Augment", "RandAugment", "eval: resize"})
    CHECK(contains(r.out, row));
  Run d = ropevit(std::string("bench decode --dir '") + RV_SOURCE_DIR + "/tests/fixtures/data/images' --count 3 --size 16 --budget 0");
  CHECK(d.code == 0);
  CHECK(contains(d.out, "3 images"));
  for (const char* args : {"bench decode --count 0", "bench decode --size x", "bench decode --budget", "bench decode --frob"}) {
    Run b = ropevit(args);
    CHECK(b.code > 0);
    CHECK(contains(b.err, std::string(args).substr(13, 6)));
  }
}
