// datasets_imagefolder.cpp: data.dataset = imagefolder, the config keys -> data::ImageFolder's
// train / eval transform options, with the checks a user needs (see datasets.h).
#include "train/datasets_imagefolder.h"

#include <algorithm>
#include <array>
#include <filesystem>
#include <stdexcept>

#include "data/image_folder.h"

namespace rv::train {
namespace {

namespace fs = std::filesystem;

void require_if(bool ok, const std::string& what) {
  if (!ok) throw std::invalid_argument("data.dataset = imagefolder: " + what);
}

std::array<float, 3> three(const std::vector<double>& v) { return {float(v[0]), float(v[1]), float(v[2])}; }

// <data.root>/<split>, checked to be a folder, with an error that says which key to fix.
std::string split_dir(const config::TrainConfig& cfg, bool train) {
  const auto& d = cfg.data;
  const std::string key = train ? "data.train_split" : "data.val_split";
  const std::string split = train ? d.train_split : d.val_split;
  std::error_code ec;
  if (d.root.empty())
    throw std::invalid_argument("data.dataset = imagefolder: data.root is empty (expected the folder that holds " +
                                d.train_split + "/<class>/<images> and " + d.val_split + "/<class>/<images>)");
  if (!fs::is_directory(d.root, ec))
    throw std::invalid_argument("data.root = '" + d.root + "': no such folder (expected the ImageNet layout: " +
                                d.root + "/" + d.train_split + "/<class>/<images> and " + d.root + "/" + d.val_split +
                                "/<class>/<images>)");
  if (split.empty() || split.find('/') != std::string::npos)
    throw std::invalid_argument(key + " = '" + split + "': expected the name of a folder directly under data.root");
  const std::string dir = (fs::path(d.root) / split).string();
  if (!fs::is_directory(dir, ec))
    throw std::invalid_argument(key + " = '" + split + "': no folder " + dir + " (expected " + dir +
                                "/<class>/<image files>)");
  return dir;
}

// The first difference between the training and the evaluation class lists ("" if equal): the
// labels are indices into these lists, so they must be the same lists for top-1 to mean anything.
std::string class_difference(const std::vector<std::string>& train, const std::vector<std::string>& val) {
  for (size_t i = 0; i < std::min(train.size(), val.size()); ++i)
    if (train[i] != val[i])
      return "class " + std::to_string(i) + " is '" + train[i] + "' in training but '" + val[i] + "' here";
  if (train.size() != val.size())
    return std::to_string(train.size()) + " classes in training but " + std::to_string(val.size()) + " here (" +
           (train.size() > val.size() ? "'" + train[val.size()] + "' is missing" : "'" + val[train.size()] + "' is extra") +
           ")";
  return "";
}

}  // namespace

std::shared_ptr<const data::Dataset> make_image_folder_dataset(const config::TrainConfig& cfg, bool train, int64_t img_size) {
  const auto& d = cfg.data;
  const auto& a = cfg.aug;
  require_if(d.mean.size() == 3 && d.std.size() == 3, "data.mean and data.std need three values (RGB images)");
  const auto mc = cfg.model_config();
  require_if(mc.in_chans == 3, "model.in_chans = " + std::to_string(mc.in_chans) +
                                   ": the images are decoded to RGB, so the model needs in_chans = 3");
  data::ImageFolderOptions o;
  o.root = split_dir(cfg, train);
  o.train = train;
  o.subset = train ? d.train_subset : d.val_subset;
  const data::Interp interp = data::interp_from_name(d.interpolation);
  if (train) {
    require_if(!(a.three_augment && !a.randaugment.empty()),
               "aug.three_augment and aug.randaugment are both set; they are alternatives (DeiT III uses 3-Augment, "
               "DeiT and Swin RandAugment): turn one off");
    auto& t = o.train_tf;
    t.size = int(img_size);
    t.rrc.scale_min = a.scale[0], t.rrc.scale_max = a.scale[1];
    t.rrc.ratio_min = a.ratio[0], t.rrc.ratio_max = a.ratio[1];
    t.interp = interp;
    t.resize = data::resize_mode_from_name(d.resize);
    t.hflip = a.hflip;
    // As timm: with RandAugment on, colour jitter is not applied (aug.color_jitter is ignored).
    t.augment = a.three_augment         ? data::TrainAugment::three_augment
                : !a.randaugment.empty() ? data::TrainAugment::rand_augment
                                         : data::TrainAugment::none;
    t.rand_augment = a.randaugment.empty() ? t.rand_augment : a.randaugment;
    t.color_jitter = float(a.color_jitter);
    t.erasing.probability = a.reprob;
    t.erase_mode = data::chw::erase_mode_from_name(a.remode);
    t.mean = three(d.mean), t.std = three(d.std);
  } else {
    auto& e = o.eval_tf;
    e.size = int(img_size);
    e.crop_pct = cfg.eval.crop_pct;
    e.interp = interp;
    e.mean = three(d.mean), e.std = three(d.std);
  }
  std::shared_ptr<data::ImageFolder> ds;
  try {
    ds = std::make_shared<data::ImageFolder>(o);
  } catch (const std::exception& e) {  // an empty folder, a subset larger than it: say which keys led there
    const std::string split_key = train ? "data.train_split" : "data.val_split";
    const std::string subset_key = train ? "data.train_subset" : "data.val_subset";
    throw std::invalid_argument(split_key + " = '" + (train ? d.train_split : d.val_split) + "'" +
                                (o.subset > 0 ? ", " + subset_key + " = " + std::to_string(o.subset) : "") + ": " +
                                e.what());
  }
  if (!train) {
    // The labels of both splits index the training split's class list. `ropevit eval` on a copy
    // that holds only the evaluation split has nothing to compare with: num_classes still is.
    std::error_code ec;
    const fs::path train_dir = fs::path(d.root) / d.train_split;
    if (fs::is_directory(train_dir, ec)) {
      const auto train_index = data::load_image_folder_index(train_dir.string(), data::default_cache_dir());
      if (std::string diff = class_difference(train_index.classes, ds->index().classes); !diff.empty())
        throw std::invalid_argument("data.val_split = '" + d.val_split + "': the class folders of " + o.root +
                                    " differ from those of " + train_dir.string() + ": " + diff);
    }
    if (ds->num_classes() != d.num_classes)
      throw std::invalid_argument("data.num_classes = " + std::to_string(d.num_classes) + " but " + o.root + " has " +
                                  std::to_string(ds->num_classes()) + " class folders");
  }
  return ds;
}

}  // namespace rv::train
