// coco_detection.cpp: CocoDetectionDataset, file -> transformed, normalised image + targets.
#include "data/coco_detection.h"

#include <filesystem>
#include <stdexcept>

#include "data/decode_image.h"
#include "data/det_target.h"

namespace rv::data {

namespace fs = std::filesystem;

CocoDetectionDataset::CocoDetectionDataset(CocoDetectionOptions options) : opt_(std::move(options)) {
  if (opt_.split.empty()) throw std::invalid_argument("CocoDetectionDataset: split: expected a name such as 'train' or 'val'");
  if (opt_.annotation_file.empty())
    opt_.annotation_file = (fs::path(opt_.root) / "annotations" / ("instances_" + opt_.split + "2017.json")).string();
  if (opt_.image_dir.empty()) opt_.image_dir = (fs::path(opt_.root) / (opt_.split + "2017")).string();
  if (!fs::is_directory(opt_.image_dir))
    throw std::runtime_error("CocoDetectionDataset: image folder '" + opt_.image_dir + "' does not exist");
  {
    DetTransformOptions t = opt_.transform;  // checks the transform options once, here
    Generator g(0, 0);
    det_params(1, 1, t, g);
  }
  coco_ = std::make_shared<const CocoInstances>(CocoInstances::read(opt_.annotation_file));
  if (opt_.train) {
    kept_ = coco_->train_image_indices(opt_.min_size);
  } else {
    kept_.resize(coco_->images().size());
    for (size_t i = 0; i < kept_.size(); ++i) kept_[i] = int64_t(i);
  }
}

int64_t CocoDetectionDataset::image_index(int64_t index) const {
  if (index < 0 || index >= size())
    throw std::out_of_range("CocoDetectionDataset: index " + std::to_string(index) + " is outside 0 .. " +
                            std::to_string(size() - 1));
  return kept_[size_t(index)];
}

std::string CocoDetectionDataset::image_path(int64_t index) const {
  return (fs::path(opt_.image_dir) / coco_->images()[size_t(image_index(index))].file_name).string();
}

Tensor normalize_det_image(const Image& im, const std::array<float, 3>& mean, const std::array<float, 3>& stdev) {
  if (im.channels != 3)
    throw std::invalid_argument("normalize_det_image: image: expected 3 channels, got " + std::to_string(im.channels));
  const int H = im.height, W = im.width;
  Tensor t = empty({3, H, W}, DType::f32);
  float* d = t.data<float>();
  for (int c = 0; c < 3; ++c) {
    const float m = mean[size_t(c)], s = stdev[size_t(c)];
    float* dc = d + size_t(c) * H * W;
    const uint8_t* src = im.pixels.data() + c;
    for (size_t i = 0, n = size_t(H) * W; i < n; ++i) dc[i] = (float(src[i * 3]) - m) / s;
  }
  return t;
}

Sample CocoDetectionDataset::get(int64_t index, Generator& gen) const {
  const int64_t ii = image_index(index);
  const CocoImage& info = coco_->images()[size_t(ii)];
  const std::string path = image_path(index);
  DetImage d;
  d.image = read_image(path);  // errors name the file
  if (d.image.height != info.height || d.image.width != info.width)
    throw std::runtime_error("CocoDetectionDataset: " + path + " decodes to " + std::to_string(d.image.height) + "x" +
                             std::to_string(d.image.width) + " but its annotation (image id " + std::to_string(info.id) +
                             ") says " + std::to_string(info.height) + "x" + std::to_string(info.width));
  CocoTargets t = coco_->targets(ii);
  d.boxes = std::move(t.boxes);
  d.labels = std::move(t.labels);
  d.crowd_boxes = std::move(t.crowd_boxes);
  const DetParams p = det_params(d.image.height, d.image.width, opt_.transform, gen);
  auto target = std::make_shared<DetTarget>();
  DetImage r = apply_det_transform(d, p, opt_.transform, &target->meta);
  target->meta.image_id = info.id;
  target->meta.ori_height = info.height;
  target->meta.ori_width = info.width;
  target->boxes = std::move(r.boxes);
  target->labels = std::move(r.labels);
  target->crowd_boxes = std::move(r.crowd_boxes);
  Sample s;
  s.image = normalize_det_image(r.image, opt_.mean, opt_.std);
  s.label = 0;
  s.targets = std::move(target);
  return s;
}

std::string CocoDetectionDataset::describe() const {
  return "coco " + opt_.split + " (" + opt_.annotation_file + "), " + std::to_string(size()) + " of " +
         std::to_string(coco_->images().size()) + " images" + (opt_.train ? " (filter_empty_gt)" : "") + ", " +
         std::to_string(num_classes()) + " classes, " + det_augment_name(opt_.transform.augment);
}

}  // namespace rv::data
