// train_config.h: TrainConfig, the typed form of a resolved training config (`ropevit train`,
// `ropevit eval`, `ropevit config`). One nested struct per group of keys: `optim.lr` is
// TrainConfig::optim.lr. The member initialisers ARE the defaults; the keys, their help text
// and their ranges are listed once, in train/config/train_schema.cpp, next to these members.
//
// Model fields are overrides of the registered model named by model.name (models/registry.h):
// std::nullopt keeps the registered value, as timm's create_model(name, **kwargs) does.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "models/model_config.h"

namespace rv::config {

struct ModelSection {
  std::string name = "vit_small_patch16_rope_mixed_224";
  std::optional<std::vector<int64_t>> img_size;  // [S] or [H, W]
  std::optional<int64_t> in_chans, patch_size, embed_dim, window_size;
  std::optional<std::vector<int64_t>> depth, num_heads;  // ViT: one entry; Swin: one per stage
  std::optional<double> mlp_ratio, layer_scale_init, norm_eps;
  std::optional<double> drop_rate, attn_drop_rate, proj_drop_rate, drop_path_rate;
  std::optional<double> rope_theta, rope_mixed_theta;
  std::optional<std::string> pos_embed, global_pool;
  std::optional<bool> qkv_bias, ape_on_cls, ape_antialias, class_token;
  // Pretrained weights (models/pretrained.h: timm or official names, resized to the model's
  // resolution): a .safetensors path, "" = train from the initialisation.
  std::string pretrained;
  bool pretrained_skip_head = true;  // a head of another num_classes keeps its init (timm's behaviour)
  // Segmentation: the segmenter's BatchNorm layers as SyncBatchNorm (statistics over every
  // data-parallel rank, engine/nn/sync_batch_norm.h); unset = on when the world size is > 1.
  std::optional<bool> sync_bn;
};

struct DataSection {
  std::string dataset = "imagefolder";  // imagefolder | fashion_mnist (classification); ade20k | scenes (segmentation)
  std::string root;                     // the data set's folder
  std::string train_split = "train", val_split = "val";
  int64_t num_classes = 1000;  // also the model's head size
  int64_t workers = 4;
  int64_t aug_repeats = 0;     // repeated augmentation (DeiT's RASampler); 0 = off
  int64_t train_subset = 0;    // use only N training images (see train/datasets.h); 0 = all
  int64_t val_subset = 0;      // evaluate on N images (see train/datasets.h); 0 = all
  std::vector<double> mean = {0.485, 0.456, 0.406}, std = {0.229, 0.224, 0.225};
  std::string interpolation = "bicubic";
  std::string resize = "fast";  // training crops' resize: exact (Pillow's bytes) | fast (within 1 level; data/pil_resize.h)
  std::string on_bad_sample = "stop";  // a training sample that fails to load: stop | skip (data/loader.h)
  double max_bad_fraction = 0.01;      // skip: more failures per epoch than this share stop the run
};

struct AugSection {
  bool three_augment = false;  // DeiT-III: one of grayscale / solarize / blur per image
  std::string randaugment;     // timm's string, e.g. "rand-m9-mstd0.5-inc1"; "" = off
  double color_jitter = 0.4;
  double hflip = 0.5;
  std::vector<double> scale = {0.08, 1.0};        // RandomResizedCrop area fraction
  std::vector<double> ratio = {3.0 / 4, 4.0 / 3};  // RandomResizedCrop aspect ratio
  double reprob = 0.0;          // random erasing probability
  std::string remode = "pixel";  // const | rand | pixel
  double mixup = 0.0, cutmix = 0.0;  // Beta alphas; 0 = off
  double mixup_prob = 1.0, mixup_switch_prob = 0.5;
  std::string mixup_mode = "batch";  // batch | pair | elem
};

struct OptimSection {
  std::string name = "adamw";  // adamw | lamb | sgd
  double lr = 5e-4;            // base LR, before optim.lr_scale
  double weight_decay = 0.05;
  std::vector<double> betas = {0.9, 0.999};
  double eps = 1e-8;
  double momentum = 0.9;  // sgd
  bool nesterov = false;  // sgd
  double layer_decay = 1.0;  // layer-wise LR decay; 1 = off
  std::string lr_scale = "none";  // none | linear (by global batch / lr_base_batch)
  int64_t lr_base_batch = 512;
};

struct SchedSection {
  std::string name = "cosine";  // cosine | constant | poly
  double warmup_epochs = 5;
  int64_t warmup_iters = 0;  // with train.iters: warmup length in optimizer steps (mmseg's LinearLR end)
  double power = 1.0;        // poly: lr = min_lr + (base - min_lr) * (1 - t)^power
  double warmup_lr = 1e-6;
  double min_lr = 1e-5;
};

struct TrainSection {
  int64_t epochs = 300;
  // > 0: the run is this many optimizer steps instead of train.epochs (mmseg counts iterations:
  // 160k for ADE20k); the loader restarts a new epoch whenever one ends. 0 = epochs.
  int64_t iters = 0;
  int64_t batch_size = 128;  // per process
  int64_t grad_accum = 1;
  double clip_grad = 0.0;  // max grad norm; 0 = off
  std::string loss = "ce";  // ce | bce
  double label_smoothing = 0.0;
  double ema_decay = 0.0;  // 0 = no EMA
  std::string amp = "auto";  // auto | off | bf16
  std::string nan_policy = "stop";  // stop | skip
  int64_t seed = 0;
  std::string device = "auto";  // auto | cpu | cuda
  // Progressive resizing (EfficientNetV2's progressive learning, FixRes's low-resolution
  // training): the epochs are split into equal stages, stage i trains at progressive_sizes[i]
  // px; the last size must be the model's img_size. Empty = every epoch at the model's size.
  std::vector<int64_t> progressive_sizes;
  std::string out_dir = "runs";
  std::string run_name;  // "" = the config file's name
};

struct EvalSection {
  std::vector<int64_t> img_sizes;  // resolutions to evaluate at; empty = the training one
  int64_t interval = 1;            // epochs (task = segmentation: iterations)
  int64_t batch_size = 128;
  double crop_pct = 0.875;
};

struct LogSection {
  int64_t interval = 50;  // steps
  bool tensorboard = true;
  std::string progress = "auto";  // auto | bar | plain
};

struct CkptSection {
  int64_t every_epochs = 0;     // a kept checkpoint every N epochs; 0 = only last and best
  int64_t keep = 3;             // how many of those to keep; 0 = all
  int64_t recovery_steps = 0;   // a recovery checkpoint every N steps; 0 = off
  std::string best_metric = "top1";  // top1 | top5 | loss; segmentation: mIoU | mAcc | aAcc
  std::string resume;           // "" | auto | a checkpoint path
  std::string init_from;        // weights-only start
};

// Segmentation (task = segmentation): UperNet (models/seg/upernet.h) on the backbone model.name.
struct SegSection {
  int64_t crop = 512;          // training crop S (mmseg's ADE20k: 512), resize scale (4 S, S)
  int64_t channels = 512;      // UPerHead width
  int64_t aux_channels = 256;  // auxiliary FCNHead width
  double aux_weight = 0.4;     // auxiliary loss weight; 0 = no auxiliary head
  double dropout = 0.1;        // Dropout2d before both classifiers
  bool avg_non_ignore = false; // loss averaged over valid pixels only (mmseg's default: false)
  std::string mode = "whole";  // inference: whole | slide
  int64_t stride = 341;        // slide: window step (the window is seg.crop)
  std::vector<double> scales;  // multi-scale test: ratios of the eval scale; [] = single scale
  bool flip = false;           // test-time horizontal flip (averaged softmax)
};

struct DistSection {
  std::string backend = "auto";  // auto | nccl | mpi | none
  double timeout_s = 600;        // a collective that takes longer is an error
  bool overlap = true;           // gradient buckets all-reduced during the backward (grad_sync.h)
};

struct TrainConfig {
  std::string task = "classification";  // classification | segmentation
  ModelSection model;
  DataSection data;
  AugSection aug;
  OptimSection optim;
  SchedSection sched;
  TrainSection train;
  EvalSection eval;
  LogSection log;
  CkptSection ckpt;
  DistSection dist;
  SegSection seg;
  nlohmann::json meta = nlohmann::json::object();  // free-form notes (target accuracy, source)

  // The model fields that are set, as models::apply_override key/value text, plus num_classes
  // from data.num_classes (the head always matches the data set) and seed from train.seed.
  std::map<std::string, std::string> model_overrides() const;
  // The registered model.name with those overrides applied and validated; throws naming the
  // model and the field (an unknown name lists the registered ones that share its first word).
  models::ModelConfig model_config() const;
};

}  // namespace rv::config
