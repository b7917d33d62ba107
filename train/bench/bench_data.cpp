// bench_data.cpp: `ropevit bench data`: how many images per second the input pipeline delivers,
// with nothing consuming them, so that a training run's data_ms can be read against it.
//
//   --dataset fashion-mnist   the loader over the IDX files (decode-free): batches per second.
//   --dataset imagefolder     JPEGs (--data-dir DIR, or --synthetic WxH made in memory), timed
//                             stage by stage on the same files, per core (images per CPU
//                             second: the wall clock of a shared machine counts other programs):
//       raw decode            TurboJPEG, whole image, full size, into a reused buffer (decode_jpeg_raw)
//       pipeline decode       header + crop draw + the decode the train chain does (scaled, region)
//       decode + augment      train_transform: RandomResizedCrop S + flip + 3-Augment (or --aa) +
//                             normalise, one thread
//       full loader           --workers N threads, batches of --batch, normalised tensors: images
//                             per CPU second of the whole process (and images/s of wall time)
//   the last two for two pipelines side by side: the bar's (issue 5: RRC + flip + 3-Augment +
//   normalise, no ColorJitter) and DeiT III's recipe (the same + ColorJitter 0.3; --jitter), and
//   each one's ratio full loader / raw decode per core against the bar (>= 0.90, issue 5).
// The imagefolder part is in bench_data_jpeg.cpp. Its files are read into memory first, so disk
// speed is not measured (the page cache hides it in a real run too, after the first epoch).
#include "train/bench/bench_data.h"

#include <chrono>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>

#include "data/fashion_mnist_dataset.h"
#include "data/loader.h"
#include "engine/cpu/parallel.h"
#include "train/cli_options.h"

namespace rv::bench {

namespace {

int bench_fashion_mnist(const std::string& dir, const std::string& split, int64_t workers, int64_t batch, int64_t size,
                        bool eval, double reprob, double seconds) {
  if (split != "train" && split != "test")
    throw cli::UsageError("--split: expected train or test, got '" + split + "'");
  data::FashionMnistTransform tf{.resolution = size > 0 ? size : 32, .train = !eval};
  tf.erase.probability = reprob;
  auto ds = data::FashionMnistDataset::open(
      dir.empty() ? data::FashionMnist::kDebianDir : dir,
      split == "train" ? data::FashionMnist::Split::train : data::FashionMnist::Split::test, tf);
  data::Loader loader(ds, {.batch_size = batch, .shuffle = true, .drop_last = true, .workers = int(workers), .seed = 0});
  if (loader.batches_per_epoch() == 0)
    throw cli::UsageError("bench data: --batch " + std::to_string(batch) + " is larger than the data set");
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

}  // namespace

int bench_data(int argc, char** argv) {
  std::string dataset, dir, split = "train", synth = "500x375", aa = "3a";
  int64_t workers = 4, batch = 256, size = 0, count = 64;
  double seconds = 3, reprob = 0, jitter = 0.3;
  bool eval = false;
  cli::Options opts("ropevit bench data", "images per second of the input pipeline (data set + transforms + loader)");
  opts.value("dataset", "NAME", "fashion-mnist | imagefolder", &dataset)
      .value("data-dir", "DIR", "fashion-mnist: its IDX files (default the Debian package's); imagefolder: a folder of JPEGs "
                                "(recursively; default: --synthetic)", &dir)
      .value("synthetic", "WxH", "imagefolder without --data-dir: JPEGs of this size made in memory", &synth)
      .value("count", "N", "imagefolder: JPEGs to use", &count)
      .value("split", "S", "fashion-mnist: train | test", &split)
      .value("workers", "N", "loader threads (0 = on the calling thread)", &workers)
      .value("batch", "B", "batch size", &batch)
      .value("img-size", "S", "output side (0: 32 for fashion-mnist, 224 for imagefolder)", &size)
      .value("aa", "NAME", "imagefolder augmentation: 3a (DeiT III 3-Augment), none (jitter only) or rand-m9-mstd0.5-inc1", &aa)
      .flag("eval", "fashion-mnist: the evaluation transform instead of training augmentation", &eval)
      .value("jitter", "J", "imagefolder: ColorJitter of the second pipeline (DeiT III: 0.3; 0: the bar's pipeline only, "
                            "which has none)", &jitter)
      .value("reprob", "P", "random erasing probability", &reprob)
      .value("seconds", "S", "time per measured stage, after a warm-up", &seconds);
  if (!opts.parse(argc, argv)) return 0;
  auto shortest = [](double v) {
    std::ostringstream o;
    o << v;  // 2 -> "2", 0.5 -> "0.5"
    return o.str();
  };
  // Each bad value is named with what was expected (the option parser has checked the types).
  auto require = [](bool ok, const std::string& flag, const std::string& expected, const std::string& got) {
    if (!ok) throw cli::UsageError("bench data: " + flag + ": expected " + expected + ", got '" + got + "'");
  };
  require(workers >= 0, "--workers", "an integer >= 0", std::to_string(workers));
  require(batch >= 1, "--batch", "an integer >= 1", std::to_string(batch));
  require(size >= 0, "--img-size", "an integer >= 0", std::to_string(size));
  require(count >= 1, "--count", "an integer >= 1", std::to_string(count));
  require(seconds >= 0, "--seconds", "a number >= 0", shortest(seconds));
  require(jitter >= 0 && jitter <= 1, "--jitter", "a jitter strength in [0, 1]", shortest(jitter));
  require(reprob >= 0 && reprob <= 1, "--reprob", "a probability in [0, 1]", shortest(reprob));
  if (dataset == "fashion-mnist") return bench_fashion_mnist(dir, split, workers, batch, size, eval, reprob, seconds);
  if (dataset == "imagefolder") return bench_imagefolder(dir, synth, count, workers, batch, size, aa, jitter, reprob, seconds);
  throw cli::UsageError(dataset.empty() ? "bench data: expected --dataset fashion-mnist or imagefolder"
                                        : "bench data: unknown data set '" + dataset + "' (expected fashion-mnist or imagefolder)");
}

}  // namespace rv::bench
