// param_groups.h: the optimizer's parameter groups for a training run:
//   - weight decay: none on 1-D tensors (norms, biases, LayerScale), on `*.bias`, and on the
//     names the model lists in Model::no_weight_decay() (cls_token, pos_embed, rope.freqs,
//     relative_position_bias_table) plus optim::default_no_weight_decay(); timm's rule;
//   - layer-wise LR decay (optim.layer_decay < 1, BEiT / DeiT-III fine-tuning): parameter at
//     layer id l of L + 1 layers gets lr * layer_decay ^ (L + 1 - l), so the head trains at the
//     full LR and the patch embedding at the smallest.
//
// Layer ids (L = total blocks):
//   ViT:  cls_token, pos_embed, patch_embed.*, rope.freqs (position tables shared by all
//         blocks) -> 0;  blocks.i.* -> i + 1;  norm, fc_norm, head -> L + 1
//   Swin: patch_embed.* -> 0;  layers.s.blocks.b.* -> 1 + (blocks before stage s) + b;
//         layers.s.downsample.* (the merge at the start of stage s) -> (blocks before stage s);
//         norm, head -> L + 1
// One group per (layer id, decay or not) that has parameters; each group's LR multiplier is
// kept next to it, and the trainer sets group lr = schedule lr * multiplier every step.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <memory>

#include "engine/optim/optimizer.h"
#include "train/config/train_config.h"
#include "models/model.h"

namespace rv::train {

struct TrainParamGroups {
  std::vector<optim::ParamGroup> groups;  // weight_decay set on each; lr left to the schedule
  std::vector<double> lr_scale;           // one per group: layer_decay ^ (L + 1 - layer id)
  std::vector<int64_t> layer_id;          // one per group
};

// The layer id of a parameter name (see above); throws naming the parameter when a name does
// not fit the family's layout (e.g. blocks.99 in a 12-block ViT).
int64_t layer_id(const std::string& name, const models::ModelConfig& cfg);

// Trainable parameters of `model` split as above. layer_decay in (0, 1]; 1 = no LR decay (then
// only the decay / no-decay split, two groups at most).
TrainParamGroups make_param_groups(const models::Model& model, double weight_decay, double layer_decay);

// The optimizer optim.name (adamw | lamb | sgd) over the groups, with optim.* hyper-parameters;
// shared by the classification and segmentation trainers.
std::unique_ptr<optim::Optimizer> make_optimizer(const config::TrainConfig& cfg, const TrainParamGroups& pg);

}  // namespace rv::train
