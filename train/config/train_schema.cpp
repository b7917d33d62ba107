// train_schema.cpp: every key of a training config, its allowed values and its help, grouped as
// `ropevit config --keys` prints them. Defaults are TrainConfig's member initialisers
// (train/config/train_config.h). Names follow timm's train.py flags where one exists
// (--smoothing -> train.label_smoothing, --reprob -> aug.reprob, --aa -> aug.randaugment), so
// timm and DeiT recipes carry over.
#include <cctype>
#include <charconv>
#include <sstream>

#include "models/registry.h"
#include "train/config/schema.h"

namespace rv::config {
namespace {

using nlohmann::json;

// timm's RandAugment string: "rand" then "-"-separated settings, each a letter code and a number
// (m9, n2, mstd0.5, mmax10, inc1, p0.5, w0). "" turns RandAugment off.
std::string check_randaugment(const json& v) {
  const std::string s = v.get<std::string>();
  if (s.empty()) return "";
  std::istringstream in(s);
  std::string part;
  std::getline(in, part, '-');
  if (part != "rand") return v.dump() + " is not a RandAugment string (expected e.g. \"rand-m9-mstd0.5-inc1\")";
  while (std::getline(in, part, '-')) {
    size_t n = 0;
    while (n < part.size() && std::isalpha(static_cast<unsigned char>(part[n]))) ++n;
    const std::string code = part.substr(0, n), number = part.substr(n);
    double x = 0;
    auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), x);
    const bool known = code == "m" || code == "n" || code == "mstd" || code == "mmax" || code == "inc" ||
                       code == "p" || code == "w";
    if (!known || number.empty() || ec != std::errc() || end != number.data() + number.size())
      return v.dump() + ": '" + part + "' is not a RandAugment setting (m, n, mstd, mmax, inc, p or w, then a number)";
  }
  return "";
}

std::vector<Field> fields() {
  return {
      RV_FIELD(task, "what is trained: classification (the model's head on data.dataset's classes) or "
                     "segmentation (UperNet on the backbone model.name, train/seg/)")
          .one_of({"classification", "segmentation"}),

      // ---- model: a registered name, then overrides of its fields (models/model_config.h)
      RV_FIELD(model.name, "registered model name (models/registry.h), e.g. vit_small_patch16_rope_mixed_224"),
      RV_FIELD(model.img_size, "training input size: [S] or [H, W]; unset = the model's").length(1, 2).above(0),
      RV_FIELD(model.in_chans, "input channels (1 for Fashion-MNIST)").above(0),
      RV_FIELD(model.patch_size, "patch size in pixels (ViT 16, Swin 4)").above(0),
      RV_FIELD(model.embed_dim, "width C (Swin: of stage 0)").above(0),
      RV_FIELD(model.depth, "blocks: [L] for ViT, one per stage for Swin").length(1, 8).at_least(0),
      RV_FIELD(model.num_heads, "attention heads: [NH] for ViT, one per stage for Swin").length(1, 8).above(0),
      RV_FIELD(model.mlp_ratio, "MLP hidden width / C").above(0),
      RV_FIELD(model.qkv_bias, "bias on the qkv projection"),
      RV_FIELD(model.layer_scale_init, "LayerScale init (ViT); 0 = no LayerScale").at_least(0),
      RV_FIELD(model.norm_eps, "LayerNorm eps").above(0),
      RV_FIELD(model.drop_rate, "dropout before the head").at_least(0).below(1),
      RV_FIELD(model.attn_drop_rate, "dropout on attention weights").at_least(0).below(1),
      RV_FIELD(model.proj_drop_rate, "dropout after the attention and MLP projections").at_least(0).below(1),
      RV_FIELD(model.drop_path_rate, "stochastic depth rate of the last block (linear over blocks)").at_least(0).below(1),
      RV_FIELD(model.rope_theta, "RoPE-Axial frequency base (ViT 100, Swin 50)").above(0),
      RV_FIELD(model.rope_mixed_theta, "RoPE-Mixed init frequency base").above(0),
      RV_FIELD(model.window_size, "Swin window; 0 = img_size / 32").at_least(0),
      RV_FIELD(model.pos_embed, "position embedding")
          .one_of({"ape", "rope_axial", "rope_mixed", "rope_axial_ape", "rope_mixed_ape", "rpb"}),
      RV_FIELD(model.ape_on_cls, "APE also covers the CLS token (original ViT; ViT only)"),
      RV_FIELD(model.ape_antialias, "antialias when resampling APE to a smaller grid (ViT only)"),
      RV_FIELD(model.class_token, "a CLS token (ViT only; false needs global_pool avg)"),
      RV_FIELD(model.global_pool, "what the head reads: token (the CLS) or avg (mean of the patch tokens, "
                                  "then fc_norm; ViT only)")
          .one_of({"token", "avg"}),
      RV_FIELD(model.pretrained, "pretrained weights: a .safetensors file (timm or official names; "
                                 "`ropevit convert` makes one from a .pth); \"\" = none"),
      RV_FIELD(model.pretrained_skip_head, "with model.pretrained: a head of another num_classes keeps its "
                                           "initialisation (as timm) instead of failing"),
      RV_FIELD(model.sync_bn, "segmentation: the UperNet's BatchNorm layers (decoder, auxiliary head, ViT neck) as "
                              "SyncBatchNorm, with statistics over every data-parallel rank (mmseg's SyncBN); unset = "
                              "true when the world size is > 1. The state dict is the same either way"),

      // ---- data
      RV_FIELD(data.dataset, "data set kind: imagefolder, fashion_mnist (classification); ade20k, scenes "
                              "(segmentation: the ADEChallengeData2016 layout, 150 or 10 classes)")
          .one_of({"imagefolder", "fashion_mnist", "ade20k", "scenes"}),
      RV_FIELD(data.root, "the data set's folder (imagefolder: holds train/ and val/)"),
      RV_FIELD(data.train_split, "split to train on (a subfolder for imagefolder)"),
      RV_FIELD(data.val_split, "split to evaluate on"),
      RV_FIELD(data.num_classes, "classes; also the model's head size").above(0),
      RV_FIELD(data.workers, "loader threads").at_least(0),
      RV_FIELD(data.aug_repeats, "repeated augmentation count (DeiT's RA: 3); 0 = off").at_least(0),
      RV_FIELD(data.train_subset, "train on N images of the split only (fashion_mnist: the first N; imagefolder: N "
                                  "spread evenly over the sorted files); 0 = all (quick runs, tests)")
          .at_least(0),
      RV_FIELD(data.val_subset, "evaluate on N images of the split only (chosen as data.train_subset); 0 = all")
          .at_least(0),
      RV_FIELD(data.mean, "normalisation mean per channel").length(1, 4),
      RV_FIELD(data.std, "normalisation std per channel").length(1, 4).above(0),
      RV_FIELD(data.interpolation, "resize interpolation").one_of({"bilinear", "bicubic"}),
      RV_FIELD(data.resize, "the training crop's resize arithmetic: exact = Pillow's bytes (timm's), fast = 16-bit "
                            "weights as Pillow-SIMD (every byte within 1 grey level of Pillow's, ~2x faster). "
                            "Evaluation always resizes exactly")
          .one_of({"exact", "fast"}),
      RV_FIELD(data.on_bad_sample, "a training image that fails to load (corrupt, truncated): stop the run naming "
                                   "the file, or skip it (logged once, counted per epoch; its row takes the next "
                                   "sample of the epoch's order). Evaluation always stops")
          .one_of({"stop", "skip"}),
      RV_FIELD(data.max_bad_fraction, "with data.on_bad_sample = skip: more failed images per epoch than this "
                                      "share of it (at least 1) still stop the run")
          .at_least(0)
          .at_most(1),

      // ---- aug: training augmentation (timm's names)
      RV_FIELD(aug.three_augment, "DeiT-III 3-Augment: one of grayscale, solarize, blur per image"),
      RV_FIELD(aug.randaugment, "RandAugment as timm's --aa (\"rand-m9-mstd0.5-inc1\"); \"\" = off")
          .with_rule("\"\" or \"rand-...\"", check_randaugment),
      RV_FIELD(aug.color_jitter, "color jitter strength; 0 = off").at_least(0),
      RV_FIELD(aug.hflip, "horizontal flip probability").at_least(0).at_most(1),
      RV_FIELD(aug.scale, "RandomResizedCrop area range [lo, hi]").length(2, 2).above(0).at_most(1),
      RV_FIELD(aug.ratio, "RandomResizedCrop aspect ratio range [lo, hi]").length(2, 2).above(0),
      RV_FIELD(aug.reprob, "random erasing probability").at_least(0).at_most(1),
      RV_FIELD(aug.remode, "random erasing fill").one_of({"const", "rand", "pixel"}),
      RV_FIELD(aug.mixup, "Mixup Beta alpha; 0 = off").at_least(0),
      RV_FIELD(aug.cutmix, "CutMix Beta alpha; 0 = off").at_least(0),
      RV_FIELD(aug.mixup_prob, "probability of mixing a batch").at_least(0).at_most(1),
      RV_FIELD(aug.mixup_switch_prob, "probability of CutMix when both are on").at_least(0).at_most(1),
      RV_FIELD(aug.mixup_mode, "what one mixing draw covers").one_of({"batch", "pair", "elem"}),

      // ---- optim
      RV_FIELD(optim.name, "optimizer").one_of({"adamw", "lamb", "sgd"}),
      RV_FIELD(optim.lr, "base learning rate (before optim.lr_scale)").above(0),
      RV_FIELD(optim.weight_decay, "decoupled weight decay (none on norms, biases, tokens, pos tables)").at_least(0),
      RV_FIELD(optim.betas, "Adam/LAMB betas [beta1, beta2]").length(2, 2).at_least(0).below(1),
      RV_FIELD(optim.eps, "Adam/LAMB eps").above(0),
      RV_FIELD(optim.momentum, "SGD momentum").at_least(0).below(1),
      RV_FIELD(optim.nesterov, "SGD Nesterov momentum"),
      RV_FIELD(optim.layer_decay, "layer-wise LR decay per block from the top (fine-tuning); 1 = off")
          .above(0).at_most(1),
      RV_FIELD(optim.lr_scale,
               "linear: optim.lr, sched.warmup_lr and sched.min_lr times global batch / optim.lr_base_batch")
          .one_of({"none", "linear"}),
      RV_FIELD(optim.lr_base_batch, "the batch the base LRs are given for (optim.lr_scale = linear)").above(0),

      // ---- sched: LR per step
      RV_FIELD(sched.name, "LR schedule after warmup (poly: mmseg's PolyLR)").one_of({"cosine", "constant", "poly"}),
      RV_FIELD(sched.warmup_iters, "with train.iters: linear warmup in optimizer steps (mmseg: 1500)").at_least(0),
      RV_FIELD(sched.power, "poly: the power of (1 - progress)").above(0),
      RV_FIELD(sched.warmup_epochs, "linear warmup length (fractions allowed)").at_least(0),
      RV_FIELD(sched.warmup_lr, "LR at step 0 of the warmup").at_least(0),
      RV_FIELD(sched.min_lr, "LR the cosine ends at").at_least(0),

      // ---- train: the loop
      RV_FIELD(train.epochs, "epochs to train").above(0),
      RV_FIELD(train.iters, "> 0: train this many optimizer steps instead of train.epochs (mmseg's iterations; "
                            "warmup then in sched.warmup_iters); 0 = epochs")
          .at_least(0),
      RV_FIELD(train.batch_size, "images per step per process (before train.grad_accum)").above(0),
      RV_FIELD(train.grad_accum, "micro-batches summed per optimizer step").above(0),
      RV_FIELD(train.clip_grad, "max global grad norm; 0 = no clipping").at_least(0),
      RV_FIELD(train.loss, "loss: ce = softmax cross-entropy, bce = binary CE on (mixed) targets").one_of({"ce", "bce"}),
      RV_FIELD(train.label_smoothing, "label smoothing").at_least(0).below(1),
      RV_FIELD(train.ema_decay, "EMA of weights per step (e.g. 0.9998), evaluated too; 0 = off").at_least(0).below(1),
      RV_FIELD(train.amp, "autocast of forward + loss: off = fp32; bf16 = bf16 mixed precision (fp32 master weights; on the CPU for checking numerics, not speed); auto = off on the CPU, and on the GPU until its bf16 kernels land").one_of({"auto", "off", "bf16"}),
      RV_FIELD(train.nan_policy, "on a NaN/Inf loss: stop (naming the step) or skip the step").one_of({"stop", "skip"}),
      RV_FIELD(train.seed, "seed of weights, data order, augmentation and dropout").at_least(0),
      RV_FIELD(train.device, "where to train").one_of({"auto", "cpu", "cuda"}),
      RV_FIELD(train.progressive_sizes, "progressive resizing: the epochs split into equal stages, stage i trains at "
                                        "size i (px); the last must be model.img_size; [] = off")
          .above(0),
      RV_FIELD(train.out_dir, "folder that holds run folders"),
      RV_FIELD(train.run_name, "run folder name under train.out_dir; \"\" = the config file's name"),

      // ---- eval
      RV_FIELD(eval.img_sizes, "resolutions to evaluate at; [] = the training one").above(0),
      RV_FIELD(eval.interval, "evaluate every N epochs (segmentation: every N iterations, mmseg's val_interval)").above(0),
      RV_FIELD(eval.batch_size, "images per evaluation step").above(0),
      RV_FIELD(eval.crop_pct, "center crop fraction (resize to size / crop_pct, crop size)").above(0).at_most(1),

      // ---- log
      RV_FIELD(log.interval, "log a line every N optimizer steps").above(0),
      RV_FIELD(log.tensorboard, "write TensorBoard event files in the run folder"),
      RV_FIELD(log.progress, "console: bar on a terminal, plain lines otherwise (auto)").one_of({"auto", "bar", "plain"}),

      // ---- ckpt
      RV_FIELD(ckpt.every_epochs, "keep a checkpoint every N epochs; 0 = only last and best").at_least(0),
      RV_FIELD(ckpt.keep, "how many of the every-N-epochs checkpoints to keep; 0 = all").at_least(0),
      RV_FIELD(ckpt.recovery_steps, "write a recovery checkpoint every N steps; 0 = off").at_least(0),
      RV_FIELD(ckpt.best_metric, "metric that picks the best checkpoint (segmentation: mIoU, mAcc or aAcc)")
          .one_of({"top1", "top5", "loss", "mIoU", "mAcc", "aAcc"}),
      RV_FIELD(ckpt.resume, "continue a run: \"\" = no, auto = the newest valid checkpoint, or a path"),
      RV_FIELD(ckpt.init_from, "start from these weights only (a checkpoint or .safetensors); \"\" = from scratch"),

      // ---- seg: segmentation (task = segmentation)
      RV_FIELD(seg.crop, "training crop and pad size S (resize scale 4S x S, mmseg's ADE20k at 512)").above(0),
      RV_FIELD(seg.channels, "UPerHead channels").above(0),
      RV_FIELD(seg.aux_channels, "auxiliary FCNHead channels").above(0),
      RV_FIELD(seg.aux_weight, "auxiliary FCN head loss weight; 0 = no auxiliary head").at_least(0),
      RV_FIELD(seg.dropout, "Dropout2d before the classifiers").at_least(0).below(1),
      RV_FIELD(seg.avg_non_ignore, "loss divided by valid pixels (true) or all pixels (mmseg's default)"),
      RV_FIELD(seg.mode, "inference: whole image or sliding window of seg.crop").one_of({"whole", "slide"}),
      RV_FIELD(seg.stride, "sliding-window step (mmseg's ADE20k: 341 for crop 512)").above(0),
      RV_FIELD(seg.scales, "multi-scale test ratios of the eval scale (mmseg: 0.5 .. 1.75); [] = single scale")
          .above(0),
      RV_FIELD(seg.flip, "test-time horizontal flip, softmax averaged"),

      // ---- dist
      RV_FIELD(dist.backend, "communication between processes").one_of({"auto", "nccl", "mpi", "none"}),
      RV_FIELD(dist.timeout_s, "a collective that takes longer stops the run, naming rank and step").above(0),
      RV_FIELD(dist.overlap, "all-reduce each gradient bucket as soon as the backward has finished it, while the "
                             "rest of the backward runs (false: all buckets after the backward; same bits)"),

      // ---- meta: anything (a recipe's source, its target accuracy); any keys allowed
      RV_FIELD(meta, "free-form notes kept with the run (e.g. meta.target_top1); any keys"),
  };
}

std::string list_text(const std::vector<int64_t>& v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i > 0) s += ',';
    s += std::to_string(v[i]);
  }
  return s;
}

}  // namespace

const Schema& train_schema() {
  static const Schema schema(fields());
  return schema;
}

std::map<std::string, std::string> TrainConfig::model_overrides() const {
  std::map<std::string, std::string> o;
  const ModelSection& m = model;
  // Numbers go through JSON's shortest round-trip text, so 0.1 stays "0.1".
  auto number = [&](const char* key, const std::optional<double>& v) {
    if (v) o[key] = json(*v).dump();
  };
  auto integer = [&](const char* key, const std::optional<int64_t>& v) {
    if (v) o[key] = std::to_string(*v);
  };
  auto boolean = [&](const char* key, const std::optional<bool>& v) {
    if (v) o[key] = *v ? "true" : "false";
  };
  if (m.img_size) o["img_size"] = m.img_size->size() == 1 ? std::to_string((*m.img_size)[0])
                                                          : std::to_string((*m.img_size)[0]) + "x" +
                                                                std::to_string((*m.img_size)[1]);
  integer("in_chans", m.in_chans);
  o["num_classes"] = std::to_string(data.num_classes);
  integer("patch_size", m.patch_size);
  integer("embed_dim", m.embed_dim);
  if (m.depth) o["depth"] = list_text(*m.depth);
  if (m.num_heads) o["num_heads"] = list_text(*m.num_heads);
  number("mlp_ratio", m.mlp_ratio);
  boolean("qkv_bias", m.qkv_bias);
  number("layer_scale_init", m.layer_scale_init);
  number("norm_eps", m.norm_eps);
  number("drop_rate", m.drop_rate);
  number("attn_drop_rate", m.attn_drop_rate);
  number("proj_drop_rate", m.proj_drop_rate);
  number("drop_path_rate", m.drop_path_rate);
  number("rope_theta", m.rope_theta);
  number("rope_mixed_theta", m.rope_mixed_theta);
  integer("window_size", m.window_size);
  if (m.pos_embed) o["pos_embed"] = *m.pos_embed;
  boolean("ape_on_cls", m.ape_on_cls);
  boolean("ape_antialias", m.ape_antialias);
  boolean("class_token", m.class_token);
  if (m.global_pool) o["global_pool"] = *m.global_pool;
  o["seed"] = std::to_string(train.seed);
  return o;
}

models::ModelConfig TrainConfig::model_config() const {
  models::ModelConfig cfg = models::model_config(model.name);
  models::apply_overrides(cfg, model_overrides());
  models::validate(cfg);
  return cfg;
}

}  // namespace rv::config
