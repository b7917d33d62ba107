// datasets.h: the data sets a config names (data.dataset), for training and for evaluation at
// a given image size.
//
//   fashion_mnist  the IDX files in data.root (data/fashion_mnist.h), data.train_split /
//                  data.val_split "train" or "test"
//   imagefolder, scenes   not wired in yet (data/image_folder.h exists; connecting its transform
//                  options to the aug.* keys is its own issue): asking for them is an error that says so
// data.train_subset / data.val_subset keep the first N images of the split (0 = all).
// Keys the data set does not implement (Fashion-MNIST: RandAugment, 3-Augment, colour jitter)
// are refused with an error naming them rather than silently ignored.
#pragma once
#include <cstdint>
#include <memory>

#include "data/dataset.h"
#include "train/config/train_config.h"

namespace rv::train {

// The training split with the training transforms at the model's image size.
std::shared_ptr<const data::Dataset> make_train_dataset(const config::TrainConfig& cfg);
// The evaluation split with the evaluation transforms at img_size x img_size.
std::shared_ptr<const data::Dataset> make_eval_dataset(const config::TrainConfig& cfg, int64_t img_size);

}  // namespace rv::train
