// datasets.cpp: data.dataset -> a data::Dataset (see datasets.h); Fashion-MNIST here, the
// ImageNet-style folders in datasets_imagefolder.cpp (one data set's config checks per file).
#include "train/datasets.h"

#include <stdexcept>

#include "data/fashion_mnist_dataset.h"
#include "train/datasets_imagefolder.h"

namespace rv::train {
namespace {

void require(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("data.dataset = fashion_mnist: " + what);
}


data::FashionMnist::Split fmnist_split(const std::string& key, const std::string& split) {
  if (split == "train") return data::FashionMnist::Split::train;
  if (split == "test" || split == "val") return data::FashionMnist::Split::test;
  throw std::invalid_argument(key + " = '" + split + "': Fashion-MNIST has the splits train and test");
}

std::shared_ptr<const data::Dataset> fashion_mnist(const config::TrainConfig& cfg, bool train, int64_t img_size) {
  const auto& d = cfg.data;
  const auto& a = cfg.aug;
  require(d.mean.size() == 1 && d.std.size() == 1, "data.mean and data.std need one value (grey images)");
  if (train) {
    require(!a.three_augment, "aug.three_augment is not implemented for Fashion-MNIST; set it false");
    require(a.randaugment.empty(), "aug.randaugment is not implemented for Fashion-MNIST; set it to \"\"");
    require(a.color_jitter == 0.0, "aug.color_jitter is meaningless on grey images; set it to 0");
  } else {
    require(cfg.eval.crop_pct == 1.0, "eval.crop_pct must be 1 (the whole 28x28 image is resized, no crop)");
  }
  data::FashionMnistTransform tf;
  tf.resolution = img_size;
  tf.train = train;
  tf.resize.interp = d.interpolation == "bicubic" ? data::chw::Interp::bicubic : data::chw::Interp::bilinear;
  tf.crop.scale_min = a.scale[0], tf.crop.scale_max = a.scale[1];
  tf.crop.ratio_min = a.ratio[0], tf.crop.ratio_max = a.ratio[1];
  tf.hflip = a.hflip;
  tf.erase.probability = a.reprob;
  tf.erase_mode = data::chw::erase_mode_from_name(a.remode);
  tf.mean = d.mean[0];
  tf.std = d.std[0];
  const std::string key = train ? "data.train_split" : "data.val_split";
  const auto split = fmnist_split(key, train ? d.train_split : d.val_split);
  const std::string root = d.root.empty() ? data::FashionMnist::kDebianDir : d.root;
  data::FashionMnist files = data::FashionMnist::open(root, split);
  const int64_t limit = train ? d.train_subset : d.val_subset;
  int64_t n = files.size();
  if (limit > 0) {
    if (limit > n)
      throw std::invalid_argument(std::string(train ? "data.train_subset" : "data.val_subset") + " = " +
                                  std::to_string(limit) + " but the split has " + std::to_string(n) + " images");
    n = limit;
  }
  std::string name = std::string("fashion-mnist ") + (split == data::FashionMnist::Split::train ? "train" : "test");
  if (n < files.size()) name += " (first " + std::to_string(n) + ")";
  return std::make_shared<data::FashionMnistDataset>(files.images().narrow(0, 0, n), files.labels().narrow(0, 0, n),
                                                     tf, name);
}

std::invalid_argument unavailable(const std::string& kind) {
  return std::invalid_argument("data.dataset = " + kind +
                               ": a segmentation data set (task = segmentation, train/seg/seg_data.h); classification uses "
                               "imagefolder or fashion_mnist");
}

}  // namespace

std::shared_ptr<const data::Dataset> make_train_dataset(const config::TrainConfig& cfg, int64_t img_size) {
  const auto mc = cfg.model_config();
  if (cfg.data.dataset == "fashion_mnist") return fashion_mnist(cfg, true, img_size > 0 ? img_size : mc.img_h);
  if (cfg.data.dataset == "imagefolder") {
    if (img_size > 0) return make_image_folder_dataset(cfg, true, img_size);
    if (mc.img_h != mc.img_w)
      throw std::invalid_argument("data.dataset = imagefolder: model.img_size " + std::to_string(mc.img_h) + "x" +
                                  std::to_string(mc.img_w) + " is not square (RandomResizedCrop makes square images)");
    return make_image_folder_dataset(cfg, true, mc.img_h);
  }
  throw unavailable(cfg.data.dataset);
}

std::shared_ptr<const data::Dataset> make_eval_dataset(const config::TrainConfig& cfg, int64_t img_size) {
  if (cfg.data.dataset == "fashion_mnist") return fashion_mnist(cfg, false, img_size);
  if (cfg.data.dataset == "imagefolder") return make_image_folder_dataset(cfg, false, img_size);
  throw unavailable(cfg.data.dataset);
}

}  // namespace rv::train
