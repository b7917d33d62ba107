// bench_data.cpp: `ropevit bench data --dataset fashion-mnist --workers N`: how many images per
// second the loader delivers (decode + augment + batch), with nothing consuming them, so that a
// training run's data_ms can be read against it. JPEG data sets (ImageNet) come later.
#include "train/bench/bench_data.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>

#include "data/fashion_mnist_dataset.h"
#include "data/loader.h"
#include "engine/cpu/parallel.h"

namespace rv::bench {

namespace {

void usage() {
  std::printf(
      "usage: ropevit bench data --dataset fashion-mnist [options]\n"
      "  --dataset NAME    fashion-mnist (JPEG data sets come later)\n"
      "  --data-dir DIR    where its files are (default %s)\n"
      "  --split S         train | test (default train)\n"
      "  --workers N       loader threads (default 4; 0 = on the calling thread)\n"
      "  --batch B         batch size (default 256)\n"
      "  --img-size R      output side (default 32)\n"
      "  --eval            the evaluation transform (resize only) instead of training augmentation\n"
      "  --reprob P        random erasing probability (default 0)\n"
      "  --seconds S       how long to run after one warm-up batch (default 3)\n",
      data::FashionMnist::kDebianDir);
}

int64_t parse_int(const std::string& flag, const std::string& v, int64_t lo) {
  char* end = nullptr;
  const long long x = std::strtoll(v.c_str(), &end, 10);
  if (v.empty() || *end != '\0' || x < lo)
    throw std::invalid_argument(flag + ": expected an integer >= " + std::to_string(lo) + ", got '" + v + "'");
  return x;
}

double parse_double(const std::string& flag, const std::string& v, double lo, double hi) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !(x >= lo && x <= hi))
    throw std::invalid_argument(flag + ": expected a number in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                                "], got '" + v + "'");
  return x;
}

}  // namespace

int bench_data(int argc, char** argv) {
  std::string dataset, dir = data::FashionMnist::kDebianDir, split = "train";
  int64_t workers = 4, batch = 256, size = 32;
  double seconds = 3, reprob = 0;
  bool eval = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::invalid_argument(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      usage();
      return 0;
    }
    if (a == "--dataset") dataset = value();
    else if (a == "--data-dir") dir = value();
    else if (a == "--split") split = value();
    else if (a == "--workers") workers = parse_int(a, value(), 0);
    else if (a == "--batch") batch = parse_int(a, value(), 1);
    else if (a == "--img-size") size = parse_int(a, value(), 1);
    else if (a == "--seconds") seconds = parse_double(a, value(), 0, 1e6);
    else if (a == "--reprob") reprob = parse_double(a, value(), 0, 1);
    else if (a == "--eval") eval = true;
    else throw std::invalid_argument("unknown option '" + a + "' (see ropevit bench data --help)");
  }
  if (dataset != "fashion-mnist") {
    usage();
    throw std::invalid_argument(dataset.empty() ? "bench data: expected --dataset fashion-mnist"
                                                : "bench data: unknown data set '" + dataset +
                                                      "' (expected fashion-mnist; JPEG data sets come later)");
  }
  if (split != "train" && split != "test")
    throw std::invalid_argument("--split: expected train or test, got '" + split + "'");
  data::FashionMnistTransform tf{.resolution = size, .train = !eval};
  tf.erase.probability = reprob;
  auto ds = data::FashionMnistDataset::open(
      dir, split == "train" ? data::FashionMnist::Split::train : data::FashionMnist::Split::test, tf);
  data::Loader loader(ds, {.batch_size = batch, .shuffle = true, .drop_last = true, .workers = int(workers), .seed = 0});
  if (loader.batches_per_epoch() == 0)
    throw std::invalid_argument("bench data: --batch " + std::to_string(batch) + " is larger than the data set");
  std::printf("ropevit bench data: %s\n", ds->describe().c_str());
  std::printf("batch %lld, %lld workers (OpenMP threads on the calling thread: %d)\n", (long long)batch,
              (long long)workers, cpu::num_threads());
  using clock = std::chrono::steady_clock;
  int64_t epoch = 0, images = 0, batches = 0;
  loader.start_epoch(epoch);
  auto next = [&]() {
    auto b = loader.next();
    if (!b) {
      loader.start_epoch(++epoch);
      b = loader.next();
    }
    return b;
  };
  next();  // warm-up: threads started, first allocations made
  const auto t0 = clock::now();
  double elapsed = 0;
  do {
    auto b = next();
    images += b->labels.numel();
    ++batches;
    elapsed = std::chrono::duration<double>(clock::now() - t0).count();
  } while (elapsed < seconds);
  std::printf("%lld images in %lld batches, %.2f s: %.0f images/s, %.2f ms per batch\n", (long long)images,
              (long long)batches, elapsed, double(images) / elapsed, 1e3 * elapsed / double(batches));
  return 0;
}

}  // namespace rv::bench
