// cmd_make_scenes.cpp: `ropevit make-scenes --out DIR [--images N] [--seed S] [--size 256]`,
// a small real COCO-format detection set and ADE20k-format segmentation set of synthetic scenes
// (Fashion-MNIST items on textured backgrounds; data/scenes.h, data/scene_files.h), so that the
// COCO / ADE20k readers, loaders and both task heads can be trained and tested on any machine.
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>

#include "data/fashion_mnist.h"
#include "data/image_encode.h"
#include "data/scene_files.h"
#include "train/cli_options.h"
#include "train/commands.h"

namespace rv {

int cmd_make_scenes(int argc, char** argv) {
  std::string out, items = "fashion-mnist", fm_dir = data::FashionMnist::kDebianDir;
  int64_t images = 200, val_images = 0, size = 256, seed = 0, quality = 90;
  cli::Options opts("ropevit make-scenes",
                    "Write a synthetic COCO 2017 detection set and ADE20k segmentation set: Fashion-MNIST items "
                    "pasted at random scales and places on textured backgrounds (the same scenes in both).");
  opts.value("out", "DIR", "the folder to write (DIR/coco, DIR/ADEChallengeData2016; required)", &out)
      .value("images", "N", "training scenes", &images)
      .value("val-images", "M", "validation scenes (default N / 4, at least 1)", &val_images)
      .value("seed", "S", "every file is a function of the seed", &seed)
      .value("size", "PX", "the longer image side (the other is 3/4..1 of it)", &size)
      .value("quality", "Q", "JPEG quality 1..100", &quality)
      .value("items", "SOURCE", "fashion-mnist, or shapes (ten drawn shapes; needs no data set)", &items)
      .value("fashion-mnist", "DIR", "where Fashion-MNIST's IDX files are", &fm_dir)
      .epilog(
          "layout (what mmdetection / mmsegmentation / detectron2 read):\n"
          "  DIR/coco/{train2017,val2017}/<12-digit id>.jpg, DIR/coco/annotations/instances_{train,val}2017.json\n"
          "  DIR/ADEChallengeData2016/{images,annotations}/{training,validation}/ADE_{train,val}_<8 digits>.{jpg,png}\n"
          "example:\n"
          "  ropevit make-scenes --out data/scenes --images 2000 --seed 0");
  if (!opts.parse(argc, argv)) return 0;
  if (out.empty()) throw cli::UsageError("--out DIR is required");
  if (images < 1) throw cli::UsageError("--images: expected >= 1, got " + std::to_string(images));
  if (val_images < 0) throw cli::UsageError("--val-images: expected >= 1, got " + std::to_string(val_images));
  if (seed < 0) throw cli::UsageError("--seed: expected >= 0, got " + std::to_string(seed));
  if (quality < 1 || quality > 100) throw cli::UsageError("--quality: expected 1..100, got " + std::to_string(quality));
  if (size < 64 || size > 4096) throw cli::UsageError("--size: expected 64..4096, got " + std::to_string(size));
  if (val_images == 0) val_images = std::max<int64_t>(1, images / 4);

  const data::SceneOptions so{.size = size};
  auto generator = [&](data::FashionMnist::Split split) {
    if (items == "shapes") {
      auto [im, lab] = data::shape_items(1000, uint64_t(seed) * 2 + (split == data::FashionMnist::Split::test));
      return data::SceneGenerator(im, lab, so);
    }
    if (items != "fashion-mnist") throw cli::UsageError("--items: expected fashion-mnist or shapes, got '" + items + "'");
    if (data::FashionMnist::find_file(fm_dir, "train-images-idx3-ubyte").empty())
      throw std::runtime_error("make-scenes: no Fashion-MNIST in " + fm_dir +
                               " (apt-get install dataset-fashion-mnist, or --fashion-mnist DIR, or --items shapes)");
    const data::FashionMnist fm = data::FashionMnist::open(fm_dir, split);
    return data::SceneGenerator(fm.images(), fm.labels(), so);
  };
  const data::SceneGenerator train = generator(data::FashionMnist::Split::train);
  const data::SceneGenerator val = generator(data::FashionMnist::Split::test);
  const data::SceneSetReport r = data::write_scene_sets(
      train, val, {.out_dir = out, .train_images = images, .val_images = val_images, .seed = uint64_t(seed),
                   .jpeg_quality = int(quality)});
  const char* names[2] = {"train", "val"};
  for (int s = 0; s < 2; ++s)
    std::printf("%-5s %6lld images (%lld without annotations), %lld annotations (%lld crowd)\n", names[s],
                static_cast<long long>(r.images[s]), static_cast<long long>(r.empty_images[s]),
                static_cast<long long>(r.annotations[s]), static_cast<long long>(r.crowd[s]));
  std::printf("items: %s, size %lld, seed %lld; JPEG by %s (quality %lld), PNG by %s\n", items.c_str(),
              static_cast<long long>(size), static_cast<long long>(seed), data::jpeg_encoder_name(),
              static_cast<long long>(quality), data::png_encoder_name());
  for (const std::string& f : r.files) std::printf("  %s\n", f.c_str());
  return 0;
}

}  // namespace rv
