// ade20k.cpp: the ADE20k-layout reader (see ade20k.h): file listing and pairing, label decoding,
// reduce_zero_label, and the class lists.
#include "data/ade20k.h"

#include <algorithm>
#include <filesystem>
#include <stdexcept>

#include "data/decode_image.h"
#include "data/fashion_mnist.h"

namespace rv::data {

namespace fs = std::filesystem;

const std::vector<std::string>& ade20k_class_names() {
  static const std::vector<std::string> names = {
      "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed ", "windowpane", "grass", "cabinet",
      "sidewalk", "person", "earth", "door", "table", "mountain", "plant", "curtain", "chair", "car", "water",
      "painting", "sofa", "shelf", "house", "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk",
      "rock", "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column", "signboard",
      "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand",
      "path", "stairs", "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
      "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
      "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine", "hovel", "bus",
      "towel", "light", "truck", "tower", "chandelier", "awning", "streetlight", "booth", "television receiver",
      "airplane", "dirt track", "apparel", "pole", "land", "bannister", "escalator", "ottoman", "bottle",
      "buffet", "poster", "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
      "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike", "cradle", "oven",
      "ball", "food", "step", "tank", "trade name", "microwave", "pot", "animal", "bicycle", "lake",
      "dishwasher", "screen", "blanket", "sculpture", "hood", "sconce", "vase", "traffic light", "tray",
      "ashcan", "fan", "pier", "crt screen", "plate", "monitor", "bulletin board", "shower", "radiator", "glass",
      "clock", "flag"};
  return names;
}

const std::vector<std::string>& scene_class_names() {
  static const std::vector<std::string> names(FashionMnist::kClassNames.begin(), FashionMnist::kClassNames.end());
  return names;
}

Ade20k Ade20k::open(const std::string& root, const std::string& split, Ade20kOptions options) {
  if (options.class_names.empty() || options.class_names.size() > 255)
    throw std::invalid_argument("Ade20k::open: expected 1 .. 255 class names (label 255 is 'ignore'), got " +
                                std::to_string(options.class_names.size()));
  Ade20k d;
  d.root_ = root;
  d.split_ = split;
  d.opt_ = std::move(options);
  const fs::path img_dir = fs::path(root) / "images" / split, ann_dir = fs::path(root) / "annotations" / split;
  for (const fs::path& dir : {img_dir, ann_dir}) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
      throw std::runtime_error("Ade20k::open: " + dir.string() + " is not a directory (expected the ADEChallengeData2016 layout: " +
                               "ROOT/images/<split>/*.jpg and ROOT/annotations/<split>/*.png)");
  }
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(img_dir, ec), end; !ec && it != end; it.increment(ec)) {
    const fs::path& p = it->path();
    if (p.extension() == ".jpg" && it->is_regular_file(ec)) names.push_back(p.filename().string());
  }
  if (ec) throw std::runtime_error("Ade20k::open: cannot list " + img_dir.string() + ": " + ec.message());
  if (names.empty()) throw std::runtime_error("Ade20k::open: no *.jpg images in " + img_dir.string());
  std::sort(names.begin(), names.end());  // mmseg sorts by path: byte order
  for (const std::string& n : names) {
    const fs::path ann = ann_dir / (n.substr(0, n.size() - 4) + ".png");
    if (!fs::is_regular_file(ann, ec))
      throw std::runtime_error("Ade20k::open: image " + (img_dir / n).string() + " has no annotation " + ann.string());
    d.images_.push_back((img_dir / n).string());
    d.annotations_.push_back(ann.string());
  }
  return d;
}

void Ade20k::check_index(int64_t i) const {
  if (i < 0 || i >= size())
    throw std::out_of_range("Ade20k: index " + std::to_string(i) + " is outside 0 .. " + std::to_string(size() - 1) +
                            " (" + root_ + ", " + split_ + ")");
}

const std::string& Ade20k::image_path(int64_t i) const {
  check_index(i);
  return images_[size_t(i)];
}

const std::string& Ade20k::annotation_path(int64_t i) const {
  check_index(i);
  return annotations_[size_t(i)];
}

Image Ade20k::read_image(int64_t i) const { return data::read_image(image_path(i)); }

void Ade20k::reduce_zero_label_(Image& labels) {
  // mmseg: map[map == 0] = 255; map = map - 1 (uint8, wraps); map[map == 254] = 255.
  for (uint8_t& v : labels.pixels) v = (v == 0 || v == 255) ? uint8_t(255) : uint8_t(v - 1);
}

Image Ade20k::read_labels(int64_t i, int expect_h, int expect_w) const {
  const std::string& path = annotation_path(i);
  Image labels = read_png_indices(path);  // names the file on any decoding error
  if ((expect_h > 0 && labels.height != expect_h) || (expect_w > 0 && labels.width != expect_w))
    throw std::runtime_error("Ade20k: label map " + path + " is " + std::to_string(labels.height) + "x" +
                             std::to_string(labels.width) + " but its image " + images_[size_t(i)] + " is " +
                             std::to_string(expect_h) + "x" + std::to_string(expect_w));
  if (opt_.reduce_zero_label) reduce_zero_label_(labels);
  bool seen[256] = {};
  for (uint8_t v : labels.pixels) seen[v] = true;
  for (int v = int(num_classes()); v < 255; ++v)
    if (seen[v])
      throw std::runtime_error("Ade20k: label map " + path + " holds label " + std::to_string(v) +
                               (opt_.reduce_zero_label ? " (raw value " + std::to_string(v + 1) + ")" : std::string()) +
                               " but the data set has " + std::to_string(num_classes()) +
                               " classes (expected labels 0 .. " + std::to_string(num_classes() - 1) +
                               " or 255 = ignore; wrong class list or reduce_zero_label?)");
  return labels;
}

}  // namespace rv::data
