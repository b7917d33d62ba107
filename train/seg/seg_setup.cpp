// seg_setup.cpp: UperNet, data sets and parameter groups of a segmentation run (see seg_setup.h).
#include "train/seg/seg_setup.h"

#include <cmath>
#include <map>
#include <set>
#include <stdexcept>

#include "data/ade20k.h"
#include "engine/optim/optimizer.h"
#include "models/model_config.h"
#include "models/seg/vit_seg_backbone.h"

namespace rv::train::seg {

models::seg::UperNetConfig seg_model_config(const config::TrainConfig& cfg) {
  models::seg::UperNetConfig u = models::seg::upernet_ade20k_config(cfg.model.name, cfg.seg.crop);
  std::map<std::string, std::string> o = cfg.model_overrides();
  o.erase("num_classes");  // the backbone has no head; the classes go to the decode heads
  if (cfg.model.img_size)
    throw std::invalid_argument("segmentation: model.img_size is not used (the backbone is built for seg.crop = " +
                                std::to_string(cfg.seg.crop) + "); remove it");
  models::apply_overrides(u.backbone, o);
  u.backbone.num_classes = 0;
  models::validate(u.backbone);
  if (u.backbone.arch == "vit") u.vit_out_indices = models::seg::default_vit_out_indices(u.backbone.depth());
  u.num_classes = cfg.data.num_classes;
  u.channels = cfg.seg.channels;
  u.aux_channels = cfg.seg.aux_channels;
  u.aux_loss_weight = cfg.seg.aux_weight;
  u.dropout_ratio = cfg.seg.dropout;
  u.avg_non_ignore = cfg.seg.avg_non_ignore;
  u.seed = uint64_t(cfg.train.seed);
  return u;
}

std::shared_ptr<data::SegmentationDataset> seg_dataset(const config::TrainConfig& cfg, bool train,
                                                       double scale_ratio) {
  const auto& d = cfg.data;
  if (d.dataset != "ade20k" && d.dataset != "scenes")
    throw std::invalid_argument("segmentation: data.dataset must be ade20k or scenes, got '" + d.dataset + "'");
  if (d.train_subset != 0 || d.val_subset != 0)
    throw std::invalid_argument("segmentation: data.train_subset / data.val_subset are not implemented for "
                                "ade20k / scenes; make a smaller set instead (ropevit make-scenes)");
  if (d.root.empty()) throw std::invalid_argument("segmentation: data.root is empty (the ADEChallengeData2016 folder)");
  if (!(scale_ratio > 0)) throw std::invalid_argument("seg_dataset: scale_ratio must be > 0");
  data::Ade20kOptions opt;
  if (d.dataset == "scenes") opt.class_names = data::scene_class_names();
  data::SegTransform tf = data::SegTransform::for_size(cfg.seg.crop, train);
  if (!train && scale_ratio != 1.0)  // mmseg's TTA: Resize(scale = ratio x (2048, 512), keep_ratio)
    for (auto& s : tf.scale) s = int64_t(std::llround(double(s) * scale_ratio));
  if (train) tf.hflip = cfg.aug.hflip;
  return data::SegmentationDataset::open(d.root, train ? d.train_split : d.val_split, tf, opt);
}

TrainParamGroups seg_param_groups(const models::seg::UperNet& net, double weight_decay, double layer_decay) {
  if (!(layer_decay > 0.0 && layer_decay <= 1.0))
    throw std::invalid_argument("seg_param_groups: optim.layer_decay must be in (0, 1], got " +
                                std::to_string(layer_decay));
  const models::Model& backbone_model = *net.backbone->model();
  const models::ModelConfig& bc = net.config().backbone;
  std::set<std::string> patterns = backbone_model.no_weight_decay();
  for (const auto& p : optim::default_no_weight_decay()) patterns.insert(p);
  const int64_t top = bc.depth() + 1;
  const std::string prefix = "backbone.";
  std::map<std::pair<int64_t, bool>, std::vector<nn::NamedTensor>> buckets;
  for (const auto& [name, p] : net.named_parameters()) {
    if (!p.requires_grad()) continue;
    const bool in_backbone = name.rfind(prefix, 0) == 0;
    const std::string local = in_backbone ? name.substr(prefix.size()) : name;
    bool decays = !(p.dim() <= 1 || name.ends_with(".bias"));
    if (decays && in_backbone)
      for (const auto& pattern : patterns)
        if (optim::name_matches(local, pattern)) decays = false;
    // layer_id gives L + 1 to names outside the blocks (ViT's fpn neck, Swin's norm0..3).
    const int64_t id = layer_decay < 1.0 && in_backbone ? layer_id(local, bc) : top;
    buckets[{id, decays}].emplace_back(name, p);
  }
  TrainParamGroups out;
  for (const auto& [key, named] : buckets) {
    out.groups.push_back(optim::ParamGroup::from_named(named, std::nullopt, key.second ? weight_decay : 0.0));
    out.lr_scale.push_back(std::pow(layer_decay, double(top - key.first)));
    out.layer_id.push_back(key.first);
  }
  return out;
}

}  // namespace rv::train::seg
