// bench_decode.cpp: `ropevit bench decode` times the image input pipeline on one thread, per image:
// the raw TurboJPEG decode (full size and DCT-scaled), then decode + each training augmentation
// chain and the eval chain, so the cost of augmentation is seen next to the cost of decoding.
// Images: a folder's JPEG / PNG files (--dir, e.g. an ImageNet class folder), or synthetic
// JPEGs made in memory (500 x 375 by default, ImageNet's most common size; quality 90). One
// thread, because the loader runs one image per worker thread: images/s here x workers is about
// the loader's ceiling. Scaled decode pays off on big photos (--image 1600x1200: about 2x).
#include "train/bench/bench_decode.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "data/decode_image.h"
#include "data/decode_jpeg.h"
#include "data/image_pipeline.h"

#ifdef _OPENMP
#include <omp.h>
#endif

namespace rv::bench {

namespace {

void print_decode_usage() {
  std::printf(
      "usage: ropevit bench decode [options]\n"
      "  --dir DIR       time the image files of DIR (recursively; default: synthetic 500x375 JPEGs)\n"
      "  --count N       images to cycle through (default 16)\n"
      "  --image WxH     synthetic image size (default 500x375, ImageNet's most common)\n"
      "  --size S        output size (default 224)\n"
      "  --budget SEC    time per case (default 1)\n"
      "One thread: multiply images/s by the loader's workers for its ceiling.\n");
}

// A photo-like synthetic image: smooth shading plus texture, so the JPEG is not trivially small.
data::Image synthetic_photo(int h, int w, uint64_t seed) {
  data::Image im(h, w, 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x)
      for (int c = 0; c < 3; ++c) {
        const double v = 128 + 60 * std::sin(0.02 * x * (c + 1) + seed) * std::cos(0.03 * y) + 30 * std::sin(0.7 * x + 0.9 * y * c);
        im.at(y, x, c) = uint8_t(std::clamp(v, 0.0, 255.0));
      }
  return im;
}

// The value of a numeric option; errors name the option and the text given.
double number(const std::string& opt, const std::string& v, double lo) {
  char* end = nullptr;
  const double x = std::strtod(v.c_str(), &end);
  if (v.empty() || *end != '\0' || !std::isfinite(x) || x < lo)
    throw std::runtime_error(opt + ": expected a number >= " + std::to_string(int(lo)) + ", got '" + v + "'");
  return x;
}

}  // namespace

int bench_decode(int argc, char** argv) {
  std::string dir;
  int count = 16, size = 224, img_w = 500, img_h = 375;
  double budget = 1.0;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error(a + " needs a value");
      return argv[++i];
    };
    if (a == "--help" || a == "-h") {
      print_decode_usage();
      return 0;
    } else if (a == "--dir") dir = value();
    else if (a == "--count") count = int(number(a, value(), 1));
    else if (a == "--size") size = int(number(a, value(), 1));
    else if (a == "--image") {
      const std::string v = value();
      const size_t x = v.find('x');
      if (x == std::string::npos) throw std::runtime_error("--image: expected WxH, got '" + v + "'");
      img_w = int(number(a, v.substr(0, x), 1));
      img_h = int(number(a, v.substr(x + 1), 1));
    }
    else if (a == "--budget") budget = number(a, value(), 0);
    else throw std::runtime_error("unknown option '" + a + "' (see ropevit bench decode --help)");
  }
  if (!data::have_jpeg_decoder())
    throw std::runtime_error("bench data: ropevit was built without TurboJPEG (install libturbojpeg0-dev and re-run cmake)");

  std::vector<std::string> files;
  std::string source;
  int skipped = 0;
  if (!dir.empty()) {
    for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
      if (!e.is_regular_file()) continue;
      std::string b = data::read_file_bytes(e.path().string());
      try {  // files that do not decode (not images, corrupt) are left out and counted
        data::decode_image(reinterpret_cast<const uint8_t*>(b.data()), b.size(), e.path().string());
      } catch (const std::exception&) {
        ++skipped;
        continue;
      }
      files.push_back(std::move(b));
      if (int(files.size()) == count) break;
    }
    if (files.empty()) throw std::runtime_error("bench data: no image files in " + dir);
    source = dir + (skipped ? ", " + std::to_string(skipped) + " files that do not decode left out" : "");
  } else {
    for (int i = 0; i < count; ++i) files.push_back(data::encode_jpeg(synthetic_photo(img_h, img_w, uint64_t(i)), 90));
    source = "synthetic " + std::to_string(img_w) + "x" + std::to_string(img_h) + " JPEG, quality 90";
  }
  double bytes = 0;
  for (const auto& f : files) bytes += double(f.size());
  std::printf("ropevit bench decode: %zu images (%s, %.0f KB on average), output %dx%d, 1 thread\n\n", files.size(),
              source.c_str(), bytes / files.size() / 1024, size, size);

  data::TrainTransformOptions tr;
  tr.size = size;
  data::RandAugment ra = data::RandAugment::parse(tr.rand_augment);
  ra.interpolation = tr.interp;
  data::EvalTransformOptions ev;
  ev.size = size;
  Generator gen(0);
  data::RandomDraws rd(gen);
  auto bytes_of = [&](size_t i) { return reinterpret_cast<const uint8_t*>(files[i % files.size()].data()); };
  auto len_of = [&](size_t i) { return files[i % files.size()].size(); };

  struct Row {
    const char* name;
    std::function<void(size_t)> f;
  };
  auto train = [&](data::TrainAugment aug, bool scaled, float erase) {
    return [&, aug, scaled, erase](size_t i) {
      data::TrainTransformOptions o = tr;
      o.augment = aug;
      o.scaled_decode = scaled;
      o.erasing.probability = erase;
      data::train_transform(bytes_of(i), len_of(i), "bench", o, &ra, rd);
    };
  };
  const std::vector<Row> rows = {
      {"decode (full size)", [&](size_t i) { data::decode_image(bytes_of(i), len_of(i), "bench"); }},
      {"decode (scaled: short side >= S)",
       [&](size_t i) {
         const data::ImageInfo info = data::peek_image(bytes_of(i), len_of(i), "bench");
         data::DecodeOptions o;
         (info.height < info.width ? o.min_height : o.min_width) = size;
         data::decode_image(bytes_of(i), len_of(i), "bench", o);
       }},
      {"train: RRC + flip + jitter 0.4", train(data::TrainAugment::none, false, 0)},
      {"train: same, scaled decode", train(data::TrainAugment::none, true, 0)},
      {"train: RRC + flip + 3-Augment (DeiT III)", train(data::TrainAugment::three_augment, true, 0)},
      {"train: RRC + flip + RandAugment m9 + erase", train(data::TrainAugment::rand_augment, true, 0.25f)},
      {"eval: resize S/0.875 + center crop (ref.)",
       [&](size_t i) {
         data::EvalTransformOptions o = ev;
         o.crop_pct = 0.875;
         data::eval_transform(bytes_of(i), len_of(i), "bench", o);
       }},
  };
  // One thread, as in a loader worker: OpenMP teams inside the ops (resize, ...) would otherwise
  // wake and wait on every image, which on a busy machine costs more than the work.
#ifdef _OPENMP
  omp_set_num_threads(1);
#endif
  std::printf("%-44s %10s %10s\n", "case", "ms/image", "images/s");
  for (const Row& r : rows) {
    for (size_t i = 0; i < files.size(); ++i) r.f(i);  // warm-up: every image once
    size_t n = 0;
    const auto t0 = std::chrono::steady_clock::now();
    double s = 0;
    do {
      r.f(n++);
      s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    } while (s < budget || n < files.size());
    std::printf("%-44s %10.3f %10.1f\n", r.name, 1e3 * s / n, n / s);
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace rv::bench
