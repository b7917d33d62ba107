// scene_files.cpp: writes the scenes as COCO and ADE20k files: images and label maps in
// parallel (each scene is independent), the two JSON files in image order afterwards.
#include "data/scene_files.h"

#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "data/fashion_mnist.h"
#include "data/image_encode.h"
#include "engine/cpu/parallel.h"

namespace rv::data {

namespace {

namespace fs = std::filesystem;
using ordered_json = nlohmann::ordered_json;

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), std::streamsize(bytes.size()));
  f.close();
  if (!f) throw std::runtime_error("make-scenes: cannot write " + path.string());
}

void make_dir(const fs::path& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  if (ec) throw std::runtime_error("make-scenes: cannot create " + p.string() + ": " + ec.message());
}

std::string numbered(const char* fmt, int64_t n) {
  char buf[64];
  std::snprintf(buf, sizeof buf, fmt, static_cast<long long>(n));
  return buf;
}

// One annotation as written, without its mask (kept small while the images are made).
struct Ann {
  int64_t label;
  bool crowd;
  std::array<int64_t, 4> box;
  int64_t area;
  std::vector<int64_t> rle;
};
struct ImageRecord {
  int64_t height = 0, width = 0;
  std::vector<Ann> anns;
};

ordered_json categories_json() {
  ordered_json cats = ordered_json::array();
  for (size_t k = 0; k < kSceneCategoryIds.size(); ++k)
    cats.push_back({{"id", kSceneCategoryIds[k]}, {"name", FashionMnist::kClassNames[k]}, {"supercategory", "fashion"}});
  return cats;
}

}  // namespace

std::vector<int64_t> mask_to_rle(const std::vector<uint8_t>& mask, int64_t height, int64_t width) {
  std::vector<int64_t> counts;
  uint8_t cur = 0;
  int64_t run = 0;
  for (int64_t x = 0; x < width; ++x)
    for (int64_t y = 0; y < height; ++y) {
      const uint8_t v = mask[size_t(y * width + x)] ? 1 : 0;
      if (v != cur) {
        counts.push_back(run);
        run = 0;
        cur = v;
      }
      ++run;
    }
  counts.push_back(run);
  return counts;
}

std::vector<uint8_t> rle_to_mask(const std::vector<int64_t>& counts, int64_t height, int64_t width) {
  std::vector<uint8_t> mask(size_t(height * width), 0);
  int64_t pos = 0;
  uint8_t v = 0;
  for (int64_t c : counts) {
    if (c < 0 || pos + c > height * width)
      throw std::invalid_argument("rle_to_mask: counts exceed " + std::to_string(height) + "x" + std::to_string(width));
    for (int64_t i = 0; i < c; ++i, ++pos) mask[size_t((pos % height) * width + pos / height)] = v;
    v ^= 1;
  }
  if (pos != height * width)
    throw std::invalid_argument("rle_to_mask: counts add up to " + std::to_string(pos) + ", expected " +
                                std::to_string(height * width));
  return mask;
}

SceneSetReport write_scene_sets(const SceneGenerator& train, const SceneGenerator& val, const SceneSetOptions& opt) {
  if (opt.out_dir.empty()) throw std::invalid_argument("make-scenes: --out: expected a folder");
  if (opt.train_images < 1 || opt.val_images < 1)
    throw std::invalid_argument("make-scenes: expected at least one train and one val image");
  if (!have_jpeg_encoder()) (void)encode_rgb_jpeg(nullptr, 1, 1);  // throws, naming the package
  const fs::path root(opt.out_dir), coco = root / "coco", ade = root / "ADEChallengeData2016";
  SceneSetReport rep;
  make_dir(coco / "annotations");
  for (int split = 0; split < 2; ++split) {
    const SceneGenerator& gen = split == 0 ? train : val;
    const int64_t n = split == 0 ? opt.train_images : opt.val_images;
    const std::string coco_split = split == 0 ? "train2017" : "val2017";
    const std::string ade_split = split == 0 ? "training" : "validation";
    const char* ade_fmt = split == 0 ? "ADE_train_%08lld" : "ADE_val_%08lld";
    make_dir(coco / coco_split);
    make_dir(ade / "images" / ade_split);
    make_dir(ade / "annotations" / ade_split);

    std::vector<ImageRecord> records(static_cast<size_t>(n));
    std::mutex err_mu;
    std::exception_ptr err;
    cpu::parallel_for(n, 1, [&](int64_t b, int64_t e) {
      try {
        for (int64_t i = b; i < e; ++i) {
          const Scene s = gen.make(opt.seed, split, i);
          const std::string jpg = encode_rgb_jpeg(s.rgb.data(), s.height, s.width, opt.jpeg_quality);
          write_bytes(coco / coco_split / (numbered("%012lld", i + 1) + ".jpg"), jpg);
          const std::string stem = numbered(ade_fmt, i + 1);
          write_bytes(ade / "images" / ade_split / (stem + ".jpg"), jpg);
          write_bytes(ade / "annotations" / ade_split / (stem + ".png"), encode_grey_png(s.label_map.data(), s.height, s.width));
          ImageRecord& r = records[size_t(i)];
          r.height = s.height;
          r.width = s.width;
          for (const SceneObject& o : s.objects)
            r.anns.push_back({o.label, o.crowd, o.box, o.area, mask_to_rle(o.mask, s.height, s.width)});
        }
      } catch (...) {
        std::lock_guard<std::mutex> lock(err_mu);
        if (!err) err = std::current_exception();
      }
    });
    if (err) std::rethrow_exception(err);

    ordered_json doc;
    doc["info"] = {{"description", "ropevit make-scenes: Fashion-MNIST items on textured backgrounds"},
                   {"version", "1.0"},
                   {"seed", opt.seed}};
    doc["licenses"] = ordered_json::array();
    doc["images"] = ordered_json::array();
    doc["annotations"] = ordered_json::array();
    int64_t ann_id = 1;
    for (int64_t i = 0; i < n; ++i) {
      const ImageRecord& r = records[size_t(i)];
      doc["images"].push_back(
          {{"id", i + 1}, {"file_name", numbered("%012lld", i + 1) + ".jpg"}, {"width", r.width}, {"height", r.height}});
      if (r.anns.empty()) ++rep.empty_images[split];
      for (const Ann& a : r.anns) {
        doc["annotations"].push_back({{"id", ann_id++},
                                      {"image_id", i + 1},
                                      {"category_id", kSceneCategoryIds[size_t(a.label)]},
                                      {"bbox", {a.box[0], a.box[1], a.box[2], a.box[3]}},
                                      {"area", a.area},
                                      {"iscrowd", a.crowd ? 1 : 0},
                                      {"segmentation", {{"size", {r.height, r.width}}, {"counts", a.rle}}}});
        ++rep.annotations[split];
        rep.crowd[split] += a.crowd;
      }
    }
    doc["categories"] = categories_json();
    const fs::path json_path = coco / "annotations" / ("instances_" + coco_split + ".json");
    write_bytes(json_path, doc.dump());
    rep.images[split] = n;
    rep.files.push_back(json_path.string());
    rep.files.push_back((coco / coco_split).string());
    rep.files.push_back((ade / "images" / ade_split).string());
    rep.files.push_back((ade / "annotations" / ade_split).string());
  }
  return rep;
}

}  // namespace rv::data
