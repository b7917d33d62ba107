// seg_setup.h: what a segmentation run builds from its config (task = segmentation): the UperNet
// (models/seg/upernet.h), the ADE20k-layout data sets with mmseg's pipelines (data/seg_dataset.h)
// and the optimizer's parameter groups. Shared by the trainer (seg_trainer.h) and `ropevit eval`.
//
//   model   upernet_ade20k_config(model.name, seg.crop), then the model.* overrides on the
//           backbone (depth, embed_dim, pos_embed, ...: any registered ViT or Swin and any position
//           embedding), seg.channels / aux_channels / aux_weight / dropout / avg_non_ignore on the
//           heads, data.num_classes classes, train.seed. ViT's four feature blocks follow the depth
//           (default_vit_out_indices: 2, 5, 8, 11 of 12).
//   data    data.dataset = ade20k (150 classes) or scenes (10, `ropevit make-scenes`), both the
//           ADEChallengeData2016 layout under data.root with splits data.train_split /
//           data.val_split (ADE20k's are "training" / "validation"); mmseg's transforms at
//           SegTransform::for_size(seg.crop); the eval scale times a ratio for multi-scale tests.
//   groups  weight decay off for 1-D tensors, biases and the backbone's no_weight_decay() names
//           (pos_embed, cls_token, rope.freqs, RPB tables); with optim.layer_decay < 1 the
//           backbone's parameters get layer_decay ^ (L + 1 - layer id) (param_groups.h's ids) and
//           the neck and both heads the full LR (mmseg's LayerDecayOptimizerConstructor).
#pragma once
#include <memory>

#include "data/seg_dataset.h"
#include "models/seg/upernet.h"
#include "train/config/train_config.h"
#include "train/param_groups.h"

namespace rv::train::seg {

models::seg::UperNetConfig seg_model_config(const config::TrainConfig& cfg);

// The training split (train = true, random pipeline) or the evaluation split (eval pipeline at
// scale_ratio x the eval scale (4 S, S)). data.train_subset / data.val_subset are refused (not
// implemented for segmentation) rather than ignored.
std::shared_ptr<data::SegmentationDataset> seg_dataset(const config::TrainConfig& cfg, bool train,
                                                       double scale_ratio = 1.0);

TrainParamGroups seg_param_groups(const models::seg::UperNet& net, double weight_decay, double layer_decay);

}  // namespace rv::train::seg
