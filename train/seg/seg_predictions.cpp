// seg_predictions.cpp: label-map and overlay PNGs of segmentation predictions (see seg_predictions.h).
#include "train/seg/seg_predictions.h"

#include <filesystem>
#include <stdexcept>

#include "data/image_encode.h"
#include "engine/io/atomic_file.h"

namespace rv::train::seg {
namespace fs = std::filesystem;

namespace {

// pred as a contiguous (H, W) i64 tensor, checked.
Tensor checked_pred(const Tensor& pred, const char* op) {
  if (pred.dim() != 2)
    throw std::invalid_argument(std::string(op) + ": pred must be (H, W), got " + std::to_string(pred.dim()) + " dims");
  if (pred.dtype() != DType::i64)
    throw std::invalid_argument(std::string(op) + ": pred must hold i64 class indices");
  return pred.contiguous();
}

void write_atomic(const std::string& path, const std::string& bytes) {
  AtomicFileWriter f(path);
  f.write(bytes.data(), bytes.size());
  f.commit();
}

}  // namespace

data::Image prediction_to_ade20k(const Tensor& pred, int64_t num_classes) {
  const Tensor p = checked_pred(pred, "prediction_to_ade20k");
  if (num_classes < 1 || num_classes > 254)
    throw std::invalid_argument("prediction_to_ade20k: num_classes must be in 1..254 (class i is written as i + 1 in "
                                "an 8-bit PNG, 255 means ignore), got " + std::to_string(num_classes));
  const int64_t H = p.size(0), W = p.size(1);
  data::Image out(int(H), int(W), 1);
  const int64_t* src = p.data<int64_t>();
  for (int64_t i = 0; i < H * W; ++i) {
    if (src[i] < 0 || src[i] >= num_classes)
      throw std::out_of_range("prediction_to_ade20k: class " + std::to_string(src[i]) + " at pixel " +
                              std::to_string(i) + " is outside 0.." + std::to_string(num_classes - 1));
    out.pixels[size_t(i)] = uint8_t(src[i] + 1);
  }
  return out;
}

data::Image prediction_overlay(const data::Image& image, const Tensor& pred, const std::vector<data::Rgb>& palette) {
  const Tensor p = checked_pred(pred, "prediction_overlay");
  if (image.channels != 3) throw std::invalid_argument("prediction_overlay: the image must be RGB (3 channels)");
  if (p.size(0) != image.height || p.size(1) != image.width)
    throw std::invalid_argument("prediction_overlay: the prediction is " + std::to_string(p.size(0)) + "x" +
                                std::to_string(p.size(1)) + ", the image " + std::to_string(image.height) + "x" +
                                std::to_string(image.width));
  data::Image out(image.height, image.width, 3);
  const int64_t* src = p.data<int64_t>();
  const int64_t n = int64_t(image.height) * image.width, K = int64_t(palette.size());
  for (int64_t i = 0; i < n; ++i) {
    if (src[i] < 0 || src[i] >= K)
      throw std::out_of_range("prediction_overlay: class " + std::to_string(src[i]) + " has no colour (palette of " +
                              std::to_string(K) + ")");
    const data::Rgb& c = palette[size_t(src[i])];
    // 0.5 * a + 0.5 * b is exact in float, so mmseg's uint8 truncation of it is (a + b) >> 1.
    for (int ch = 0; ch < 3; ++ch) out.pixels[size_t(3 * i + ch)] = uint8_t((image.pixels[size_t(3 * i + ch)] + c[ch]) >> 1);
  }
  return out;
}

SegPredictionWriter::SegPredictionWriter(std::string dir, const std::vector<std::string>& class_names)
    : dir_(std::move(dir)), num_classes_(int64_t(class_names.size())), palette_(data::seg_palette(class_names)) {
  if (dir_.empty()) throw std::invalid_argument("SegPredictionWriter: empty output folder");
  fs::create_directories(labels_dir());
  fs::create_directories(overlays_dir());
}

void SegPredictionWriter::write(const std::string& image_path, const Tensor& pred, const data::Image& image) const {
  if (pred.dim() != 2 || pred.size(0) != image.height || pred.size(1) != image.width)
    throw std::invalid_argument("SegPredictionWriter: the prediction for '" + image_path + "' is not at the image's " +
                                std::to_string(image.height) + "x" + std::to_string(image.width) + " pixels");
  const std::string name = fs::path(image_path).stem().string() + ".png";
  const data::Image labels = prediction_to_ade20k(pred, num_classes_);
  write_atomic(labels_dir() + "/" + name, data::encode_grey_png(labels.pixels.data(), labels.height, labels.width));
  const data::Image over = prediction_overlay(image, pred, palette_);
  write_atomic(overlays_dir() + "/" + name, data::encode_rgb_png(over.pixels.data(), over.height, over.width));
}

}  // namespace rv::train::seg
