// datasets_imagefolder.h: data.dataset = imagefolder as a data::Dataset (train/datasets.h
// documents the keys; make_train_dataset / make_eval_dataset call this).
#pragma once
#include <cstdint>
#include <memory>

#include "data/dataset.h"
#include "train/config/train_config.h"

namespace rv::train {

// <data.root>/<data.train_split> with the training transforms (train = true) or
// <data.root>/<data.val_split> with the evaluation transforms, at img_size x img_size.
std::shared_ptr<const data::Dataset> make_image_folder_dataset(const config::TrainConfig& cfg, bool train,
                                                               int64_t img_size);

}  // namespace rv::train
