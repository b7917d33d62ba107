// datasets.h: the data sets a config names (data.dataset), for training and for evaluation at
// a given image size.
//
//   fashion_mnist  the IDX files in data.root (data/fashion_mnist.h), data.train_split /
//                  data.val_split "train" or "test"
//   imagefolder    the ImageNet layout, data.root/<data.train_split>/<class>/<images> and
//                  data.root/<data.val_split>/<class>/<images> (data/image_folder.h; the file list
//                  is cached). Training: RandomResizedCrop at the model's img_size (aug.scale,
//                  aug.ratio, data.interpolation), flip (aug.hflip), then 3-Augment
//                  (aug.three_augment) or RandAugment (aug.randaugment; timm then ignores
//                  aug.color_jitter, and so do we) or colour jitter alone, normalise (data.mean /
//                  data.std), random erasing (aug.reprob / aug.remode). Evaluation: resize to
//                  img_size / eval.crop_pct, centre crop img_size. The class folders of the
//                  evaluation split must be those of the training split (checked when the
//                  training split is present: `ropevit eval` may run on a copy of val alone).
//   scenes         not wired in (segmentation / detection, its own issue): an error that says so
// data.train_subset / data.val_subset: 0 = all. Fashion-MNIST keeps the first N images (the
// files are in random order); imagefolder keeps N files spread evenly over its sorted index
// (file floor(i * total / N)), since its first N would all be class 0.
// Keys the data set does not implement (Fashion-MNIST: RandAugment, 3-Augment, colour jitter;
// imagefolder: one-channel mean/std, in_chans != 3, 3-Augment together with RandAugment) are
// refused with an error naming them rather than silently ignored.
#pragma once
#include <cstdint>
#include <memory>

#include "data/dataset.h"
#include "train/config/train_config.h"

namespace rv::train {

// The training split with the training transforms at img_size x img_size (0 = the model's
// image size; train.progressive_sizes passes each stage's size).
std::shared_ptr<const data::Dataset> make_train_dataset(const config::TrainConfig& cfg, int64_t img_size = 0);
// The evaluation split with the evaluation transforms at img_size x img_size.
std::shared_ptr<const data::Dataset> make_eval_dataset(const config::TrainConfig& cfg, int64_t img_size);

}  // namespace rv::train
