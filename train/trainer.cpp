// trainer.cpp: the training loop (see trainer.h for the order of things and the resume rule).
#include "train/trainer.h"

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>

#include "data/loader.h"
#include "data/mixup.h"
#include "engine/autocast.h"
#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/io/safetensors.h"
#include "engine/nn/dropout.h"
#include "engine/ops/elementwise.h"
#include "engine/optim/adamw.h"
#include "engine/optim/clip.h"
#include "engine/optim/lamb.h"
#include "engine/optim/sgd.h"
#include "models/pretrained.h"
#include "models/registry.h"
#include "train/checkpoint.h"
#include "train/criterion.h"
#include "train/datasets.h"
#include "train/distributed/grad_sync.h"
#include "train/distributed/nccl_communicator.h"
#include "train/ema.h"
#include "train/evaluate.h"
#include "train/log/csv_summary.h"
#include "train/log/event_writer.h"
#include "train/log/jsonl_log.h"
#include "train/log/progress.h"
#include "train/log/run_plots.h"
#include "train/param_groups.h"
#include "train/resolution_sweep.h"
#include "train/schedule.h"
#include "train/test_hooks.h"
#include "train/train_device.h"

namespace rv::train {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

// Mixup draws come from Generator(seed ^ kMixupKey, stream = epoch << 32 | batch): a key of
// their own, so they never share numbers with the data augmentation streams of the same seed.
constexpr uint64_t kMixupKey = 0x6d69787570ULL;  // "mixup"
// Dropout / drop path: Generator(seed, kDropoutStream), as the models make by default.
constexpr uint64_t kDropoutStream = 1;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

void check_dist_backend(const config::TrainConfig& cfg) {
  if (cfg.dist.backend == "nccl" && !dist::nccl_compiled_in())
    throw std::invalid_argument("dist.backend = nccl: this build has no NCCL (it comes with the CUDA backend when "
                                "CMake finds NCCL); use auto (MPI under mpirun, TCP under torchrun / srun) or none");
}

// Whether `auto` means bf16 on a GPU. Not yet: the CUDA matmul / linear / attention kernels take
// f32 only (engine/ops/matmul.cpp require_device_f32), so a bf16 region on the GPU would stop at
// its first product. Flip this (and drop the refusal in resolve_amp) when the bf16 kernels of
// issue 8 land.
constexpr bool kAutoBf16OnGpu = false;

// train.amp: the dtype the forward pass and the loss autocast to, or none (fp32).
//   off  -> fp32;  bf16 -> bf16 autocast (on the CPU it checks the numerics a GPU run will have;
//   it is not faster there, as every bf16 op computes in f32 and rounds; on a GPU it is refused
//   until the bf16 kernels exist); auto -> bf16 on a GPU (see kAutoBf16OnGpu), fp32 on the CPU.
std::optional<DType> resolve_amp(const config::TrainConfig& cfg, Device dev) {
  if (cfg.train.amp == "bf16" && dev.is_cuda() && !kAutoBf16OnGpu)
    throw std::invalid_argument("train.amp = bf16 on " + dev.str() +
                                ": the bf16 GPU kernels (matmul, attention) are not implemented yet (issue 8); "
                                "use train.amp = off or auto (fp32 on the GPU for now)");
  if (cfg.train.amp == "bf16") return DType::bf16;
  if (cfg.train.amp == "auto" && dev.is_cuda() && kAutoBf16OnGpu) return DType::bf16;
  return std::nullopt;
}

bool better(const std::string& metric, double a, double b) { return metric == "loss" ? a < b : a > b; }

}  // namespace

struct Trainer::State {
  config::ResolvedConfig rc;
  const config::TrainConfig& cfg;
  RunPlan plan;
  TestHooks hooks = TestHooks::from_env();
  std::shared_ptr<dist::Communicator> comm;  // the ranks (LocalCommunicator when alone)
  bool lead = true;                          // rank 0: the one that writes files and prints
  std::unique_ptr<dist::GradientSync> grad_sync;

  std::shared_ptr<models::Model> model;
  Device device;  // where the model, its gradients, the optimizer state and each batch live
  std::optional<DType> amp;  // autocast dtype of forward + loss (train.amp), none = fp32
  std::unique_ptr<ModelEma> ema;
  std::shared_ptr<Generator> dropout_gen;
  std::unique_ptr<data::Loader> train_loader, val_loader;
  int64_t train_size = 0;  // the image size train_loader makes (train.progressive_sizes changes it)
  TrainParamGroups groups;
  std::vector<Tensor> params;  // every trained parameter (for clipping)
  std::unique_ptr<optim::Optimizer> opt;
  LrSchedule sched;
  int64_t steps_per_epoch = 0, micro = 1;
  std::unique_ptr<Criterion> criterion;
  std::unique_ptr<data::Mixup> mixup;

  std::unique_ptr<runlog::JsonlLog> log;
  std::unique_ptr<runlog::SummaryCsv> csv;
  std::unique_ptr<runlog::EventFileWriter> tb;
  std::unique_ptr<runlog::ProgressDisplay> progress;

  // Where the run is (saved in checkpoints).
  int64_t epoch = 0, epoch_batches = 0, step = 0, nan_skipped = 0, best_epoch = -1;
  double best_metric = 0.0, epoch_loss_sum = 0.0;
  int64_t epoch_loss_steps = 0;
  std::string last_checkpoint;  // "" until one is written or loaded

  // Throughput of this process.
  double train_seconds = 0.0;
  int64_t timed_images = 0;
  double last_loss = 0.0;

  // The last epoch's evaluation of the weights the resolution sweep measures (the EMA's when there
  // is one) at the training size: finish_run() reuses it as that size's row instead of
  // evaluating the same weights on the same images again. Only on one process (with several
  // ranks the loss is summed in another order) and for a square training size.
  std::optional<ResolutionRow> final_eval;

  State(const config::ResolvedConfig& r, const RunPlan& p, std::shared_ptr<dist::Communicator> c)
      : rc(r), cfg(rc.config), plan(p), comm(c ? std::move(c) : std::make_shared<dist::LocalCommunicator>()),
        lead(comm->rank() == 0) {}

  std::string ckpt_path(const std::string& name) const { return checkpoints_dir(plan.dir) + "/" + name + ".safetensors"; }

  CheckpointMeta meta(const std::string& kind) const {
    CheckpointMeta m;
    m.kind = kind;
    m.model = cfg.model.name;
    m.epoch = epoch;
    m.epoch_batches = epoch_batches;
    m.epoch_samples = epoch_batches * cfg.train.batch_size * comm->world_size();
    m.world_size = comm->world_size();
    m.step = step;
    m.seed = uint64_t(cfg.train.seed);
    m.dropout_offset = dropout_gen->offset();
    m.best_metric = best_metric;
    m.best_epoch = best_epoch;
    m.nan_skipped = nan_skipped;
    m.epoch_loss_sum = epoch_loss_sum;
    m.epoch_loss_steps = epoch_loss_steps;
    m.config = rc.json;
    return m;
  }

  // Rank 0 writes; every rank waits until the file is whole (a rank that went on and died
  // could otherwise leave the others resuming from an older checkpoint than it believed).
  void save(const std::string& name, const std::string& kind) {
    const std::string path = ckpt_path(name);
    if (lead) save_checkpoint(path, *model, ema ? &ema->model() : nullptr, opt.get(), meta(kind));
    comm->barrier();
    last_checkpoint = path;
  }

  void message(const std::string& line) {
    if (progress) progress->message(line);
  }

  // evaluate() on this rank's shard of the validation set, counts and loss summed over ranks.
  EvalResult evaluate_all_ranks(models::Model& m) {
    EvalResult r = evaluate(m, *val_loader);
    int64_t counts[3] = {r.counts.top1, r.counts.top5, r.counts.total};
    comm->all_reduce_sum(counts, 3, DType::i64);
    comm->all_reduce_sum(&r.loss_sum, 1, DType::f64);
    r.counts = {counts[0], counts[1], counts[2]};
    return r;
  }

  void setup();
  void resume(const std::string& path);
  void open_logs(bool resumed);
  void train_epoch();
  // train.progressive_sizes: the image size of epoch e (the model's when the list is empty).
  int64_t epoch_train_size(int64_t e) const;
  void check_progressive_sizes(const models::ModelConfig& mc) const;
  // (Re)builds train_loader for images of `size` px; returns its data set.
  std::shared_ptr<const data::Dataset> make_train_loader(int64_t size);
  void one_step();
  void end_epoch(int64_t finished_epoch);
  void finish_run();
};

void Trainer::State::setup() {
  check_dist_backend(cfg);
  device = resolve_train_device(cfg, *comm);
  amp = resolve_amp(cfg, device);
  const models::ModelConfig mc = cfg.model_config();
  if (mc.img_h != mc.img_w)
    throw std::invalid_argument("model.img_size: training needs a square size here, got " + std::to_string(mc.img_h) +
                                "x" + std::to_string(mc.img_w));
  model = models::create_model(mc);
  model->train();
  // Starting weights (not when resuming: the checkpoint has them): model.pretrained (timm or
  // official names, models/pretrained.h), then ckpt.init_from (a ropevit checkpoint's model
  // weights, or any weights file load_pretrained takes).
  std::vector<std::string> notes;
  if (!plan.resume) {
    const models::PretrainedOptions po{.skip_mismatched_head = cfg.model.pretrained_skip_head};
    if (!cfg.model.pretrained.empty())
      for (auto& n : models::load_pretrained(*model, cfg.model.pretrained, po)) notes.push_back("pretrained: " + n);
    if (!cfg.ckpt.init_from.empty()) {
      if (SafetensorsFile::open(cfg.ckpt.init_from).metadata().count(kCheckpointMetaKey)) {
        const LoadedCheckpoint c = read_checkpoint(cfg.ckpt.init_from);
        if (std::string why = state_mismatch(c.model, *model); !why.empty())
          throw std::runtime_error("ckpt.init_from '" + cfg.ckpt.init_from + "' does not fit model " +
                                   cfg.model.name + ":" + why);
        model->load_state_dict(c.model);
        notes.push_back("weights from " + cfg.ckpt.init_from + " (step " + std::to_string(c.meta.step) + ")");
      } else {
        for (auto& n : models::load_pretrained(*model, cfg.ckpt.init_from, po)) notes.push_back("init_from: " + n);
      }
    }
  }
  // Every rank starts from rank 0's weights (the same seed makes them equal already; a
  // pretrained file read differently, or a bug, would not).
  dist::broadcast_state(model->state_dict(), *comm);
  // Rank r > 0 draws its dropout masks from a stream of its own (rank in bits 40..60: clear of
  // the loader's streams, data/sampler.h), so ranks do not drop the same units; rank 0 keeps
  // the single-process stream.
  dropout_gen = std::make_shared<Generator>(uint64_t(cfg.train.seed),
                                            kDropoutStream | (uint64_t(comm->rank()) << 40));
  nn::set_generator(*model, dropout_gen);
  // On a GPU the weights move before the optimizer and the EMA copy are made, so their state
  // is created on the device too.
  if (!device.is_cpu()) model->to(device);
  if (cfg.train.ema_decay > 0) {
    std::shared_ptr<models::Model> ema_model = models::create_model(mc);
    if (!device.is_cpu()) ema_model->to(device);
    ema = std::make_unique<ModelEma>(ema_model, *model, cfg.train.ema_decay);
  }

  check_progressive_sizes(mc);
  auto train_ds = make_train_loader(epoch_train_size(0));
  val_loader = std::make_unique<data::Loader>(make_eval_dataset(cfg, mc.img_h),
                                              data::LoaderOptions{.batch_size = cfg.eval.batch_size,
                                                                  .shuffle = false,
                                                                  .workers = int(cfg.data.workers),
                                                                  .seed = uint64_t(cfg.train.seed),
                                                                  .rank = comm->rank(),
                                                                  .world_size = comm->world_size(),
                                                                  .pin_memory = device.is_cuda()});
  micro = cfg.train.grad_accum;
  steps_per_epoch = train::steps_per_epoch(train_loader->batches_per_epoch(), micro);
  sched = make_schedule(cfg, steps_per_epoch, comm->world_size());

  groups = make_param_groups(*model, cfg.optim.weight_decay, cfg.optim.layer_decay);
  for (const auto& g : groups.groups) params.insert(params.end(), g.params.begin(), g.params.end());
  opt = make_optimizer(cfg, groups);
  grad_sync = std::make_unique<dist::GradientSync>(params, *comm, dist::kDefaultBucketBytes, cfg.dist.overlap);
  criterion = std::make_unique<Criterion>(cfg.train.loss, cfg.train.label_smoothing, cfg.data.num_classes);
  mixup = std::make_unique<data::Mixup>(data::MixupOptions{.mixup_alpha = cfg.aug.mixup,
                                                           .cutmix_alpha = cfg.aug.cutmix,
                                                           .prob = cfg.aug.mixup_prob,
                                                           .switch_prob = cfg.aug.mixup_switch_prob,
                                                           .mode = cfg.aug.mixup_mode,
                                                           .label_smoothing = cfg.train.label_smoothing,
                                                           .num_classes = cfg.data.num_classes});
  if (mixup->enabled() && cfg.train.batch_size % 2 != 0)
    throw std::invalid_argument("aug.mixup / aug.cutmix need an even train.batch_size, got " +
                                std::to_string(cfg.train.batch_size));

  if (lead) fs::create_directories(checkpoints_dir(plan.dir));
  if (plan.resume) resume(*plan.resume);  // every rank reads the file (a shared file system)
  if (!lead) return;                       // the run folder, logs and console are rank 0's
  {  // the resolved config, as `ropevit config` prints it
    std::ofstream out(fs::path(plan.dir) / "config.json");
    out << rc.json.dump(2) << "\n";
    if (!out) throw std::runtime_error("cannot write " + plan.dir + "/config.json");
  }
  open_logs(plan.resume.has_value());
  message("run folder: " + plan.dir);
  for (const auto& n : notes) message(n);
  message("model: " + cfg.model.name + ", " + std::to_string(model->num_parameters(true)) + " trainable parameters");
  message("device: " + (device.is_cpu() ? std::string("cpu") : device.str() + " (" + backend::get(device).device_name(device.index) + ")"));
  message(amp ? std::string("amp: bf16 autocast of forward + loss (fp32 master weights, gradients and optimizer)") +
                    (device.is_cpu() ? "; on the CPU this checks numerics, it is not faster" : "")
              : std::string("amp: off (fp32)") + (cfg.train.amp == "auto" ? ", from train.amp = auto" : ""));
  message("data: " + train_ds->describe() + "; " + std::to_string(steps_per_epoch) + " steps per epoch");
  if (comm->world_size() > 1)
    message("data-parallel: " + std::to_string(comm->world_size()) + " ranks over " + comm->name() + ", " +
            std::to_string(cfg.train.batch_size) + " images per rank and micro-batch (global batch " +
            std::to_string(cfg.train.batch_size * micro * comm->world_size()) + "), " +
            std::to_string(grad_sync->num_buckets()) + " gradient bucket(s) of up to 25 MB, " +
            (grad_sync->overlapped() ? "all-reduced during the backward (dist.overlap)"
                                     : cfg.dist.overlap ? "all-reduced after the backward (this MPI cannot be called "
                                                          "from a second thread)"
                                                        : "all-reduced after the backward (dist.overlap = false)"));
}

int64_t Trainer::State::epoch_train_size(int64_t e) const {
  const auto& sizes = cfg.train.progressive_sizes;
  if (sizes.empty()) return cfg.model_config().img_h;
  // Equal stages: with 3 sizes and 10 epochs, epochs 0-3 | 4-6 | 7-9 (the last stage is never shorter).
  const int64_t n = int64_t(sizes.size());
  return sizes[size_t(std::min(n - 1, e * n / cfg.train.epochs))];
}

void Trainer::State::check_progressive_sizes(const models::ModelConfig& mc) const {
  const auto& sizes = cfg.train.progressive_sizes;
  if (sizes.empty()) return;
  const std::string key = "train.progressive_sizes";
  if (cfg.train.iters > 0)
    throw std::invalid_argument(key + " splits train.epochs into stages; it cannot be used with train.iters = " +
                                std::to_string(cfg.train.iters));
  if (int64_t(sizes.size()) > cfg.train.epochs)
    throw std::invalid_argument(key + " has " + std::to_string(sizes.size()) + " sizes but train.epochs = " +
                                std::to_string(cfg.train.epochs) + ": at most one size per epoch");
  if (mc.img_h != mc.img_w || sizes.back() != mc.img_h)
    throw std::invalid_argument(key + " must end with the model's image size " + std::to_string(mc.img_h) +
                                (mc.img_h != mc.img_w ? "x" + std::to_string(mc.img_w) + " (square sizes only)" : "") +
                                ", got " + std::to_string(sizes.back()) +
                                ": the last epochs train at the resolution the model is evaluated at");
  for (int64_t s : sizes)
    if (s % mc.patch_size != 0)
      throw std::invalid_argument(key + ": size " + std::to_string(s) + " is not a multiple of the patch size " +
                                  std::to_string(mc.patch_size));
}

std::shared_ptr<const data::Dataset> Trainer::State::make_train_loader(int64_t size) {
  auto train_ds = make_train_dataset(cfg, size);
  if (train_ds->num_classes() != cfg.data.num_classes)
    throw std::invalid_argument("data.num_classes = " + std::to_string(cfg.data.num_classes) + " but " +
                                train_ds->describe() + " has " + std::to_string(train_ds->num_classes()) + " classes");
  train_loader = std::make_unique<data::Loader>(
      train_ds, data::LoaderOptions{.batch_size = cfg.train.batch_size,
                                    .shuffle = true,
                                    .drop_last = true,
                                    .pad_to_equal = true,  // every rank runs the same steps
                                    .repeated_augment = int(std::max<int64_t>(1, cfg.data.aug_repeats)),
                                    .workers = int(cfg.data.workers),
                                    .seed = uint64_t(cfg.train.seed),
                                    .rank = comm->rank(),
                                    .world_size = comm->world_size(),
                                    .on_bad_sample = data::parse_on_bad_sample(cfg.data.on_bad_sample),
                                    .max_bad_fraction = cfg.data.max_bad_fraction,
                                    // each skipped file's error, once (the loader calls this from next())
                                    .log = [this](const std::string& m) { message(m); },
                                    // page-locked batches: one asynchronous DMA to the GPU each
                                    .pin_memory = device.is_cuda()});
  train_size = size;
  return train_ds;
}

void Trainer::State::resume(const std::string& path) {
  LoadedCheckpoint c = read_checkpoint(path);
  if (c.meta.seed != uint64_t(cfg.train.seed))
    throw std::runtime_error("checkpoint '" + path + "' was trained with train.seed = " + std::to_string(c.meta.seed) +
                             ", this run has " + std::to_string(cfg.train.seed) + ": it would not continue exactly");
  restore_checkpoint(c, *model, ema ? &ema->model() : nullptr, opt.get());
  epoch = c.meta.epoch;
  // The position is global (samples of all ranks); in this run's micro-batches per rank:
  const int64_t per_batch = cfg.train.batch_size * comm->world_size();
  if (c.meta.epoch_samples % per_batch != 0)
    throw std::runtime_error("checkpoint '" + path + "' stopped after " + std::to_string(c.meta.epoch_samples) +
                             " samples of epoch " + std::to_string(c.meta.epoch) + " (" +
                             std::to_string(c.meta.world_size) + " rank(s)), which is not a whole number of this "
                             "run's micro-batches (train.batch_size " + std::to_string(cfg.train.batch_size) + " x " +
                             std::to_string(comm->world_size()) + " ranks): keep the global batch of that run");
  epoch_batches = c.meta.epoch_samples / per_batch;
  step = c.meta.step;
  dropout_gen->set_offset(c.meta.dropout_offset);
  best_metric = c.meta.best_metric;
  best_epoch = c.meta.best_epoch;
  nan_skipped = c.meta.nan_skipped;
  epoch_loss_sum = c.meta.epoch_loss_sum;
  epoch_loss_steps = c.meta.epoch_loss_steps;
  last_checkpoint = path;
  if (epoch_batches % micro != 0)
    throw std::runtime_error("checkpoint '" + path + "' stopped inside an accumulation (" +
                             std::to_string(epoch_batches) + " micro-batches, train.grad_accum = " +
                             std::to_string(micro) + "): was it written with another grad_accum?");
}

void Trainer::State::open_logs(bool resumed) {
  const fs::path d = plan.dir;
  const std::optional<int64_t> after = resumed ? std::optional<int64_t>(step) : std::nullopt;
  log = std::make_unique<runlog::JsonlLog>((d / "log.jsonl").string(), after);
  csv = std::make_unique<runlog::SummaryCsv>((d / "summary.csv").string(),
                                             resumed ? std::optional<int64_t>(epoch - 1) : std::nullopt);
  if (cfg.log.tensorboard) {
    tb = std::make_unique<runlog::EventFileWriter>((d / "tb").string());
    if (resumed) tb->mark_restart(step + 1);
  }
  const bool terminal = cfg.log.progress == "bar" ||
                        (cfg.log.progress == "auto" && runlog::ProgressDisplay::stderr_is_terminal());
  progress = std::make_unique<runlog::ProgressDisplay>(std::cerr, terminal,
                                                       runlog::ProgressOptions{.plain_every = cfg.log.interval});
}

void Trainer::State::one_step() {
  const auto t_step = Clock::now();
  comm->set_step(step + 1);
  double data_ms = 0.0, loss_sum = 0.0, bad_value = 0.0;
  bool bad = false, bad_grad = false;
  model->zero_grad();
  for (int64_t m = 0; m < micro; ++m) {
    const auto t_data = Clock::now();
    std::optional<data::Batch> batch = train_loader->next();
    data_ms += ms_since(t_data);
    if (!batch)
      throw std::runtime_error("train: the loader ended epoch " + std::to_string(epoch) + " after " +
                               std::to_string(epoch_batches) + " batches, expected " +
                               std::to_string(steps_per_epoch * micro));
    ++epoch_batches;
    Tensor images = batch->images, target = batch->labels;
    if (mixup->enabled()) {
      Generator g(uint64_t(cfg.train.seed) ^ kMixupKey, (uint64_t(epoch) << 32) | uint64_t(batch->step));
      data::MixedBatch mb = mixup->apply(images, target, g);
      images = mb.images;
      target = mb.targets;
    }
    if (!device.is_cpu()) {  // queued copies; the loader never writes a batch it handed out
      images = images.to(device, /*non_blocking=*/true);
      target = target.to(device, /*non_blocking=*/true);
    }
    Tensor loss;  // ()
    {  // forward + loss under autocast when train.amp asks for it; backward outside, as torch
      std::optional<autocast::AutocastGuard> amp_region;
      if (amp) amp_region.emplace(*amp);
      loss = (*criterion)(model->forward(images), target);
    }
    if (hooks.nan_at_step && *hooks.nan_at_step == step + 1) loss = mul(loss, std::nan(""));
    const double v = loss.item();
    if (!std::isfinite(v)) {
      if (!bad) bad_value = v;
      bad = true;
      continue;  // no backward: its gradients would poison the sum
    }
    loss_sum += v;
    // The last micro-step's backward sends each gradient bucket as soon as it is complete; the
    // earlier ones only accumulate (grad_sync.h).
    grad_sync->prepare_backward(/*last=*/m + 1 == micro);
    (micro > 1 ? mul(loss, 1.0 / double(micro)) : loss).backward();
  }
  if (comm->world_size() > 1) {
    // Waits for the buckets still in flight and averages. On every rank, even one whose loss was
    // not finite (its gradients are dropped below): its peers' buckets may be on the wire already.
    grad_sync->finish();
    // The global mean loss, and whether any rank saw a non-finite one: then every rank skips.
    double sums[2] = {loss_sum, bad ? 1.0 : 0.0};
    comm->all_reduce_sum(sums, 2, DType::f64);
    loss_sum = sums[0] / double(comm->world_size());
    if (sums[1] > 0 && !bad) bad = true, bad_value = std::nan("");
  }
  const double lr = sched.lr_at(step);
  for (size_t g = 0; g < opt->num_groups(); ++g) opt->set_lr(g, lr * groups.lr_scale[g]);
  double grad_norm = NAN;
  if (!bad && cfg.train.clip_grad > 0) {
    grad_norm = optim::clip_grad_norm_(params, cfg.train.clip_grad);
    if (!std::isfinite(grad_norm)) bad = bad_grad = true, bad_value = grad_norm;
  }
  const double loss_value = bad ? bad_value : loss_sum / double(micro);
  ++step;
  if (bad) {
    opt->zero_grad();
    json rec = {{"kind", "train"}, {"step", step}, {"epoch", epoch}, {"loss", loss_value}, {"lr", lr},
                {"skipped", true}, {"nan_skipped", nan_skipped + 1}};
    if (lead) log->write(rec);
    if (cfg.train.nan_policy != "skip") {
      const std::string v = std::isnan(loss_value) ? "nan" : loss_value > 0 ? "inf" : "-inf";
      throw std::runtime_error(
          "step " + std::to_string(step) + " (epoch " + std::to_string(epoch) + "): " +
          (bad_grad ? "the gradient norm" : "the loss") + " is " + v +
          "; stopping (train.nan_policy = stop). Last good checkpoint: " +
          (last_checkpoint.empty() ? "none yet" : last_checkpoint + " (continue with --resume auto)") +
          ". Try a lower optim.lr, train.clip_grad, or train.nan_policy = skip.");
    }
    ++nan_skipped;
    message("step " + std::to_string(step) + ": non-finite loss, update skipped (" + std::to_string(nan_skipped) +
            " so far)");
  } else {
    opt->step();
    opt->zero_grad();
    if (ema) ema->update(*model);
    epoch_loss_sum += loss_value;
    ++epoch_loss_steps;
    last_loss = loss_value;
  }

  const double step_ms = ms_since(t_step);
  const int64_t images = cfg.train.batch_size * micro * comm->world_size();
  const double img_per_s = images / (step_ms / 1000.0);
  if (step > 1) train_seconds += step_ms / 1000.0, timed_images += images;  // the first step warms caches
  const int64_t epoch_step = epoch_batches / micro;
  if (lead && !bad && (step % cfg.log.interval == 0 || epoch_step == steps_per_epoch)) {
    json rec = {{"kind", "train"}, {"step", step},       {"epoch", epoch},        {"loss", loss_value},
                {"lr", lr},        {"img_per_s", img_per_s}, {"data_ms", data_ms}, {"step_ms", step_ms}};
    if (cfg.train.clip_grad > 0) rec["grad_norm"] = grad_norm;
    if (nan_skipped > 0) rec["nan_skipped"] = nan_skipped;
    if (const int64_t b = train_loader->epoch_bad_samples(); b > 0) rec["bad_samples"] = b;
    log->write(rec);
    if (tb)
      tb->add_scalars(step, {{"train/loss", float(loss_value)}, {"train/lr", float(lr)},
                             {"perf/img_per_s", float(img_per_s)}});
  }
  runlog::ProgressState ps;
  ps.step = step;
  ps.total_steps = sched.total_steps;
  ps.epoch = epoch;
  ps.epoch_step = epoch_step;
  ps.steps_per_epoch = steps_per_epoch;
  ps.loss = loss_value;
  ps.loss_avg = epoch_loss_steps ? epoch_loss_sum / double(epoch_loss_steps) : loss_value;
  ps.lr = lr;
  ps.img_per_s = img_per_s;
  ps.data_ms = data_ms;
  ps.step_ms = step_ms;
  ps.bad_samples = train_loader->epoch_bad_samples();
  if (progress) progress->update(ps);

  // A recovery checkpoint mid-epoch (the end of an epoch writes `last` right after this).
  if (cfg.ckpt.recovery_steps > 0 && step % cfg.ckpt.recovery_steps == 0 && epoch_step < steps_per_epoch)
    save("recovery", "recovery");
  if (hooks.exit_after_step && step == *hooks.exit_after_step &&
      (!hooks.exit_rank || *hooks.exit_rank == comm->rank())) {
    std::fflush(nullptr);
    _exit(137);  // test hook: as if killed with SIGKILL here (test_hooks.h)
  }
}

void Trainer::State::train_epoch() {
  model->train();
  // Progressive resizing: a new stage's size gets a new loader (same order and draws per
  // (seed, epoch, index) as always: only the output size differs).
  if (const int64_t size = epoch_train_size(epoch); size != train_size) {
    make_train_loader(size);
    if (lead) message("epoch " + std::to_string(epoch) + ": training at " + std::to_string(size) + " px (train.progressive_sizes)");
  }
  train_loader->start_epoch(epoch, epoch_batches);
  while (epoch_batches / micro < steps_per_epoch) one_step();
}

void Trainer::State::end_epoch(int64_t finished) {
  const bool last_epoch = finished + 1 == cfg.train.epochs;
  nlohmann::ordered_json row;
  row["epoch"] = finished;
  row["train_loss"] = epoch_loss_steps ? epoch_loss_sum / double(epoch_loss_steps) : NAN;
  // Training samples skipped this epoch (data.on_bad_sample = skip; counted from the resume
  // batch on when the epoch was resumed). With several ranks this is rank 0's share: each rank
  // logs its own skipped files' errors as they happen.
  if (const int64_t bad = train_loader->epoch_bad_samples(); lead && bad > 0) {
    log->write({{"kind", "data"}, {"step", step}, {"epoch", finished}, {"bad_samples", bad},
                {"bad_samples_total", train_loader->bad_samples()}});
    message("epoch " + std::to_string(finished) + ": " + std::to_string(bad) +
            " training samples failed to load and were replaced (data.on_bad_sample = skip)");
  }
  const bool do_eval = (finished + 1) % cfg.eval.interval == 0 || last_epoch;
  if (do_eval) {
    const EvalResult r = evaluate_all_ranks(*model);
    json rec = {{"kind", "eval"}, {"step", step},       {"epoch", finished},
                {"top1", r.top1()}, {"top5", r.top5()}, {"loss", r.loss()}, {"samples", r.counts.total}};
    row["eval_loss"] = r.loss();
    row["eval_top1"] = r.top1();
    row["eval_top5"] = r.top5();
    std::string line = "epoch " + std::to_string(finished) + ": top1 " + std::to_string(r.top1()) + " top5 " +
                       std::to_string(r.top5()) + " loss " + std::to_string(r.loss());
    std::optional<EvalResult> e;
    if (ema) {
      e = evaluate_all_ranks(ema->model());
      rec["top1_ema"] = e->top1();
      rec["top5_ema"] = e->top5();
      rec["loss_ema"] = e->loss();
      row["eval_top1_ema"] = e->top1();
      line += " | EMA top1 " + std::to_string(e->top1());
    }
    const models::ModelConfig& mc = model->config();
    if (last_epoch && comm->world_size() == 1 && mc.img_h == mc.img_w) final_eval = ResolutionRow{mc.img_h, e ? *e : r};
    if (lead) log->write(rec);
    if (tb) tb->add_scalars(step, {{"val/top1", float(r.top1())}, {"val/top5", float(r.top5())},
                                   {"val/loss", float(r.loss())}});
    message(line);
    const double metric = cfg.ckpt.best_metric == "top1" ? r.top1() : cfg.ckpt.best_metric == "top5" ? r.top5() : r.loss();
    if (best_epoch < 0 || better(cfg.ckpt.best_metric, metric, best_metric)) {
      best_metric = metric;
      best_epoch = finished;
    }
  }
  row["lr"] = sched.lr_at(std::min(step, sched.total_steps - 1));
  if (lead) csv->write_row(row);

  // The state after this epoch: the next one starts from its first batch.
  epoch = finished + 1;
  epoch_batches = 0;
  epoch_loss_sum = 0.0;
  epoch_loss_steps = 0;
  save("last", "last");
  if (best_epoch == finished) save("best", "best");
  if (cfg.ckpt.every_epochs > 0 && epoch % cfg.ckpt.every_epochs == 0) {
    char name[32];
    std::snprintf(name, sizeof name, "epoch_%04lld", (long long)epoch);
    save(name, "epoch");
    if (cfg.ckpt.keep > 0) {  // drop the oldest kept ones beyond ckpt.keep
      const int64_t drop = epoch - cfg.ckpt.keep * cfg.ckpt.every_epochs;
      if (lead && drop > 0 && drop % cfg.ckpt.every_epochs == 0) {
        std::snprintf(name, sizeof name, "epoch_%04lld", (long long)drop);
        fs::remove(ckpt_path(name));
      }
    }
  }
  if (tb) tb->flush();
}

void Trainer::State::finish_run() {
  if (!lead) {  // the files below are rank 0's; wait so no rank exits while rank 0 still works
    comm->barrier();
    return;
  }
  progress->finish();
  NamedTensors weights;
  for (const auto& [name, t] : model->state_dict()) weights.emplace_back(name, t.cpu());  // from the device, if there
  save_safetensors((fs::path(plan.dir) / "model.safetensors").string(), weights, {{"ropevit_model", cfg.model.name}});
  if (!cfg.eval.img_sizes.empty()) {
    models::Model& m = ema ? ema->model() : *model;
    std::vector<ResolutionRow> known;
    if (final_eval) known.push_back(*final_eval);
    auto rows = evaluate_resolutions(m, cfg, cfg.eval.img_sizes, known);
    for (const auto& r : rows)
      log->write({{"kind", "eval_res"}, {"step", step}, {"img_size", r.img_size}, {"top1", r.result.top1()},
                  {"top5", r.result.top5()}, {"loss", r.result.loss()}, {"ema", ema != nullptr}});
    write_resolution_files(plan.dir, rows, {{"model", cfg.model.name}, {"checkpoint", "final weights of the run"},
                                            {"ema", ema != nullptr}, {"step", step}});
    std::cerr << format_resolution_table(rows, "accuracy by resolution (" + cfg.model.name + ")");
    const std::string name = fs::path(plan.dir).filename().string();
    runlog::ResolutionSweep sweep{name, {}, {}};
    for (const auto& r : rows) sweep.img_size.push_back(double(r.img_size)), sweep.top1.push_back(r.result.top1());
    fs::create_directories(fs::path(plan.dir) / "plots");
    runlog::plot_accuracy_vs_resolution({sweep}, (fs::path(plan.dir) / "plots" / "acc_vs_res.png").string());
  }
  log->close();
  csv->close();
  if (tb) tb->close();
  runlog::plot_run(plan.dir);
  comm->barrier();
}

Trainer::Trainer(const config::ResolvedConfig& rc, const RunPlan& plan, std::shared_ptr<dist::Communicator> comm)
    : s_(std::make_unique<State>(rc, plan, std::move(comm))) {
  s_->setup();
}

Trainer::~Trainer() = default;

TrainSummary Trainer::fit() {
  State& s = *s_;
  while (s.epoch < s.cfg.train.epochs) {
    const int64_t e = s.epoch;
    s.train_epoch();
    s.end_epoch(e);
  }
  s.finish_run();
  return {s.step, s.last_loss, s.best_metric, s.nan_skipped,
          s.train_seconds > 0 ? double(s.timed_images) / s.train_seconds : 0.0};
}

}  // namespace rv::train
