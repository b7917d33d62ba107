// seg_trainer.cpp: the segmentation training loop (see seg_trainer.h).
#include "train/seg/seg_trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <stdexcept>

#include "data/loader.h"
#include "engine/autograd.h"
#include "engine/io/safetensors.h"
#include "engine/nn/dropout.h"
#include "engine/nn/sync_batch_norm.h"
#include "engine/ops/elementwise.h"
#include "engine/optim/clip.h"
#include "models/pretrained.h"
#include "train/checkpoint.h"
#include "train/distributed/grad_sync.h"
#include "train/distributed/replica_group.h"
#include "train/ema.h"
#include "train/log/csv_summary.h"
#include "train/log/event_writer.h"
#include "train/log/jsonl_log.h"
#include "train/schedule.h"
#include "train/seg/seg_evaluate.h"
#include "train/seg/seg_setup.h"
#include "train/train_device.h"

namespace rv::train::seg {
namespace fs = std::filesystem;
using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {
// Dropout and drop path of the whole segmenter draw from Generator(seed, kSegDropoutStream); its
// offset is saved in checkpoints, so a resumed run draws the same masks.
constexpr uint64_t kSegDropoutStream = 3;

double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }
}  // namespace

struct SegTrainer::State {
  config::ResolvedConfig rc;
  const config::TrainConfig& cfg;
  RunPlan plan;
  std::shared_ptr<dist::Communicator> comm;  // the ranks (LocalCommunicator when alone)
  bool lead = true;                          // rank 0: the one that writes files and prints
  std::unique_ptr<dist::GradientSync> grad_sync;
  bool sync_bn = false;                      // model.sync_bn, resolved
  std::shared_ptr<models::seg::UperNet> net;
  Device device;  // where the weights, their gradients, the optimizer state and each batch live
  std::unique_ptr<ModuleEma<models::seg::UperNet>> ema;  // train.ema_decay > 0
  std::shared_ptr<Generator> dropout_gen;
  TrainParamGroups groups;
  std::unique_ptr<optim::Optimizer> opt;
  std::vector<Tensor> params;
  LrSchedule sched;
  std::unique_ptr<data::Loader> loader;
  std::unique_ptr<runlog::JsonlLog> log;
  std::unique_ptr<runlog::EventFileWriter> tb;
  std::unique_ptr<runlog::SummaryCsv> csv;
  int64_t step = 0, epoch = 0, epoch_batches = 0, nan_skipped = 0;
  double last_loss = 0.0, train_seconds = 0.0;
  int64_t timed_images = 0;
  // Evaluation during training (eval.interval iterations): the best ckpt.best_metric so far and
  // the step it was reached at (-1: none yet), and the step losses since the last evaluation
  // (summary.csv's train_loss). All four are saved in checkpoints, in the fields the
  // classification trainer keeps per epoch (best_epoch holds the step here).
  double best_metric = 0.0;
  int64_t best_step = -1;
  double interval_loss_sum = 0.0;
  int64_t interval_loss_steps = 0;
  std::optional<SegEvalResult> last_val, last_val_ema;  // the newest evaluation during training (whole image)
  int64_t last_val_step = -1;

  State(const config::ResolvedConfig& r, const RunPlan& p, std::shared_ptr<dist::Communicator> c)
      : rc(r), cfg(rc.config), plan(p), comm(c ? std::move(c) : std::make_shared<dist::LocalCommunicator>()),
        lead(comm->rank() == 0) {}

  std::string ckpt_path(const std::string& name) const { return checkpoints_dir(plan.dir) + "/" + name + ".safetensors"; }

  void message(const std::string& line) {
    if (lead) std::cerr << line << "\n";  // the console is rank 0's
  }

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
    m.nan_skipped = nan_skipped;
    m.best_metric = best_metric;
    m.best_epoch = best_step;
    m.epoch_loss_sum = interval_loss_sum;
    m.epoch_loss_steps = interval_loss_steps;
    m.config = rc.json;
    return m;
  }

  const nn::Module* ema_module() const { return ema ? &ema->model() : nullptr; }

  // Rank 0 writes; every rank waits until the file is whole (as the classification trainer).
  void save(const std::string& name, const std::string& kind) {
    if (lead) save_checkpoint(ckpt_path(name), *net, ema_module(), opt.get(), meta(kind));
    comm->barrier();
  }

  // evaluate_segmentation over every rank: each takes its share of the images, the areas are
  // summed (so the metrics are exact, every image counted once). Collective.
  SegEvalResult evaluate(models::seg::UperNet& m, const SegEvalSettings& settings) {
    return evaluate_segmentation(m, cfg, settings, comm.get());
  }

  double pick_metric(const SegEvalResult& r) const {
    return cfg.ckpt.best_metric == "mAcc" ? r.macc() : cfg.ckpt.best_metric == "aAcc" ? r.aacc() : r.miou();
  }

  void setup();
  void resume(const std::string& path);
  void one_step();
  void validate();
};

void SegTrainer::State::setup() {
  device = resolve_train_device(cfg, *comm);  // a missing GPU is an error naming why
  if (cfg.train.amp == "bf16")
    throw std::runtime_error("train.amp = bf16: autocast is not wired into segmentation training yet; use off or auto");
  if (cfg.aug.mixup > 0 || cfg.aug.cutmix > 0)
    throw std::invalid_argument("aug.mixup / aug.cutmix do not apply to segmentation; set them to 0");
  if (cfg.train.loss != "ce" || cfg.train.label_smoothing != 0)
    throw std::invalid_argument("train.loss / train.label_smoothing: segmentation uses plain CE with ignore 255 "
                                "(seg.aux_weight, seg.avg_non_ignore); keep ce and 0");
  net = std::make_shared<models::seg::UperNet>(seg_model_config(cfg));
  const int world = comm->world_size();
  if (!cfg.model.pretrained.empty()) {
    // The backbone's classification weights (timm names); its head, if any, has no place here.
    for (const auto& note : models::load_pretrained(*net->backbone->model(), cfg.model.pretrained,
                                                    {.skip_mismatched_head = true}))
      message("pretrained: " + note);
  }
  if (!cfg.ckpt.init_from.empty()) {
    LoadedCheckpoint c = read_checkpoint(cfg.ckpt.init_from);
    if (std::string why = state_mismatch(c.model, *net); !why.empty())
      throw std::runtime_error("ckpt.init_from '" + cfg.ckpt.init_from + "' does not fit this UperNet:" + why);
    net->load_state_dict(c.model);
  }
  // Every rank starts from rank 0's weights (the same seed makes them equal already; a
  // pretrained file read differently, or a bug, would not).
  dist::broadcast_state(net->state_dict(), *comm);
  // model.sync_bn (default: on with several ranks, as mmseg's UperNet configs use SyncBN): every
  // BatchNorm2d of the decoder, the auxiliary head and the backbone's neck becomes a
  // SyncBatchNorm on the same tensors, so the state dict (and checkpoints) do not change.
  sync_bn = cfg.model.sync_bn.value_or(world > 1);
  if (sync_bn) nn::convert_sync_batchnorm(*net, dist::make_replica_group(comm));
  // Rank r > 0 draws its dropout masks from a stream of its own (rank in bits 40..60, as the
  // classification trainer), so ranks do not drop the same units; rank 0 keeps the single-process one.
  dropout_gen = std::make_shared<Generator>(uint64_t(cfg.train.seed),
                                            kSegDropoutStream | (uint64_t(comm->rank()) << 40));
  nn::set_generator(*net, dropout_gen);
  net->train(true);
  // On a GPU the weights (backbone, decode and auxiliary heads, BatchNorm statistics) move before
  // the EMA copy and the optimizer are made, so that their state is created on the device too.
  if (!device.is_cpu()) net->to(device);
  // The EMA copy starts from the starting weights (a resume then loads its own, below).
  if (cfg.train.ema_decay > 0) {
    auto ema_net = std::make_shared<models::seg::UperNet>(seg_model_config(cfg));
    if (!device.is_cpu()) ema_net->to(device);
    ema = std::make_unique<ModuleEma<models::seg::UperNet>>(ema_net, *net, cfg.train.ema_decay);
  }
  groups = seg_param_groups(*net, cfg.optim.weight_decay, cfg.optim.layer_decay);
  opt = make_optimizer(cfg, groups);
  for (const auto& [name, p] : net->named_parameters())
    if (p.requires_grad()) params.push_back(p);
  sched = make_schedule_iters(cfg);
  // SyncBatchNorm's backward runs collectives on this thread; buckets all-reduced by GradientSync's
  // communication thread during that same backward could interleave with them differently on
  // different ranks (one communicator, one order), so with SyncBN the buckets wait for finish().
  grad_sync = std::make_unique<dist::GradientSync>(params, *comm, dist::kDefaultBucketBytes,
                                                   cfg.dist.overlap && !sync_bn);

  auto train_set = seg_dataset(cfg, true);
  loader = std::make_unique<data::Loader>(
      train_set, data::LoaderOptions{.batch_size = cfg.train.batch_size,
                                     .shuffle = true,
                                     .drop_last = true,
                                     .pad_to_equal = true,  // every rank runs the same steps
                                     .workers = int(cfg.data.workers),
                                     .seed = uint64_t(cfg.train.seed),
                                     .rank = comm->rank(),
                                     .world_size = world,
                                     .on_bad_sample = data::parse_on_bad_sample(cfg.data.on_bad_sample),
                                     .max_bad_fraction = cfg.data.max_bad_fraction,
                                     .log = [this](const std::string& m) { message(m); },
                                     // page-locked batches: one asynchronous copy to the GPU each
                                     .pin_memory = device.is_cuda()});
  if (loader->batches_per_epoch() < 1)
    throw std::invalid_argument("segmentation: the training split has " + std::to_string(train_set->size()) +
                                " images, fewer than train.batch_size = " + std::to_string(cfg.train.batch_size));

  if (lead) fs::create_directories(checkpoints_dir(plan.dir));
  if (plan.resume) resume(*plan.resume);  // every rank reads the file (a shared file system)
  if (!lead) {                            // the run folder, logs and console are rank 0's
    loader->start_epoch(epoch, epoch_batches);
    return;
  }
  {
    std::ofstream out(fs::path(plan.dir) / "config.json");
    out << rc.json.dump(2) << "\n";
    if (!out) throw std::runtime_error("cannot write " + plan.dir + "/config.json");
  }
  const bool resumed = plan.resume.has_value();
  log = std::make_unique<runlog::JsonlLog>((fs::path(plan.dir) / "log.jsonl").string(),
                                           resumed ? std::optional<int64_t>(step) : std::nullopt);
  csv = std::make_unique<runlog::SummaryCsv>((fs::path(plan.dir) / "summary.csv").string(),
                                             resumed ? std::optional<int64_t>(step) : std::nullopt);
  if (cfg.log.tensorboard) {
    tb = std::make_unique<runlog::EventFileWriter>((fs::path(plan.dir) / "tb").string());
    if (resumed) tb->mark_restart(step + 1);
  }
  message("run folder: " + plan.dir);
  message("device: " + device.str());
  message("model: UperNet on " + cfg.model.name + " (" + net->config().backbone.pos_embed + "), " +
          std::to_string(net->num_parameters(true)) + " trainable parameters, " +
          std::to_string(cfg.data.num_classes) + " classes");
  message("data: " + loader->describe());
  if (world > 1)
    message("data-parallel: " + std::to_string(world) + " ranks over " + comm->name() + ", " +
            std::to_string(cfg.train.batch_size) + " crops per rank and micro-batch (global batch " +
            std::to_string(cfg.train.batch_size * cfg.train.grad_accum * world) + "), BatchNorm " +
            (sync_bn ? "synchronised over the ranks (model.sync_bn)" : "per rank (model.sync_bn = false)"));
  message("schedule: " + sched.name + " over " + std::to_string(sched.total_steps) + " steps, warmup " +
          std::to_string(sched.warmup_steps));
  loader->start_epoch(epoch, epoch_batches);
}

void SegTrainer::State::resume(const std::string& path) {
  LoadedCheckpoint c = read_checkpoint(path);
  if (std::string why = state_mismatch(c.model, *net); !why.empty())
    throw std::runtime_error("checkpoint '" + path + "' (model " + c.meta.model + ") does not fit this UperNet on " +
                             cfg.model.name + ":" + why);
  if (c.optimizer.empty()) throw std::runtime_error("checkpoint '" + path + "' has no optimizer state to resume from");
  if (ema) {
    if (c.ema.empty())
      throw std::runtime_error("checkpoint '" + path + "' has no EMA weights (ema.*), but this run keeps an EMA "
                               "(train.ema_decay > 0)");
    if (std::string why = state_mismatch(c.ema, ema->model()); !why.empty())
      throw std::runtime_error("checkpoint '" + path + "': its EMA weights do not fit this UperNet:" + why);
  }
  net->load_state_dict(c.model);
  if (ema) ema->model().load_state_dict(c.ema);
  opt->load_state_dict(c.optimizer);
  step = c.meta.step;
  epoch = c.meta.epoch;
  // The position is global (samples of all ranks); in this run's micro-batches per rank:
  const int64_t per_batch = cfg.train.batch_size * comm->world_size();
  const int64_t samples = c.meta.epoch_samples >= 0 ? c.meta.epoch_samples : c.meta.epoch_batches * cfg.train.batch_size;
  if (samples % per_batch != 0)
    throw std::runtime_error("checkpoint '" + path + "' stopped after " + std::to_string(samples) + " samples of its "
                             "epoch (" + std::to_string(c.meta.world_size) + " rank(s)), which is not a whole number "
                             "of this run's micro-batches (train.batch_size " + std::to_string(cfg.train.batch_size) +
                             " x " + std::to_string(comm->world_size()) + " ranks): keep the global batch of that run");
  epoch_batches = samples / per_batch;
  nan_skipped = c.meta.nan_skipped;
  best_metric = c.meta.best_metric;
  best_step = c.meta.best_epoch;
  interval_loss_sum = c.meta.epoch_loss_sum;
  interval_loss_steps = c.meta.epoch_loss_steps;
  dropout_gen->set_offset(c.meta.dropout_offset);
  message("resumed from " + path + " at step " + std::to_string(step));
}

void SegTrainer::State::one_step() {
  const auto t_step = Clock::now();
  comm->set_step(step + 1);
  const int64_t micro = cfg.train.grad_accum;
  double loss_sum = 0.0, decode_sum = 0.0, aux_sum = 0.0, data_ms = 0.0, bad_value = 0.0;
  bool bad = false;
  for (int64_t m = 0; m < micro; ++m) {
    const auto t_data = Clock::now();
    std::optional<data::Batch> batch = loader->next();
    if (!batch) {  // the epoch ended: the next one, in its own order (mmseg's InfiniteSampler)
      loader->start_epoch(++epoch);
      epoch_batches = 0;
      batch = loader->next();
      if (!batch) throw std::runtime_error("train: the loader gave no batch at the start of epoch " + std::to_string(epoch));
    }
    data_ms += ms_since(t_data);
    ++epoch_batches;
    Tensor images = batch->images, labels = batch->label_maps;  // (B, 3, S, S) f32, (B, S, S) u8
    if (!device.is_cpu()) {  // queued copies; the loader never writes a batch it handed out
      images = images.to(device, /*non_blocking=*/true);
      labels = labels.to(device, /*non_blocking=*/true);  // u8: a quarter of int64's bytes over the bus
    }
    models::seg::SegLosses l = net->loss(images, labels);  // the loss on the model's device
    const double v = l.total.item();
    bool skip = !std::isfinite(v);
    if (sync_bn && comm->world_size() > 1) {
      // SyncBatchNorm's backward is a collective: the ranks must agree on running it, so one
      // rank's non-finite loss makes every rank skip this backward (the step is then skipped).
      double flag = skip ? 1.0 : 0.0;
      comm->all_reduce_sum(&flag, 1, DType::f64);
      skip = flag > 0;
    }
    if (skip) {
      if (!bad) bad_value = std::isfinite(v) ? std::nan("") : v;  // NaN: another rank's
      bad = true;
      continue;
    }
    loss_sum += v;
    decode_sum += l.decode.item();
    if (l.aux.defined()) aux_sum += l.aux.item();
    // The last micro-step's backward sends each complete gradient bucket (grad_sync.h).
    grad_sync->prepare_backward(/*last=*/m + 1 == micro);
    (micro > 1 ? mul(l.total, 1.0 / double(micro)) : l.total).backward();
  }
  if (comm->world_size() > 1) {
    // Waits for the buckets in flight and averages; on every rank, even one that skipped its
    // backward (its peers' buckets may be on the wire already; the step is then dropped below).
    grad_sync->finish();
    // The global mean losses, and whether any rank saw a non-finite one: then every rank skips
    // (with SyncBN a rank that skipped its backward would also leave the others waiting).
    double sums[4] = {loss_sum, decode_sum, aux_sum, bad ? 1.0 : 0.0};
    comm->all_reduce_sum(sums, 4, DType::f64);
    const double inv = 1.0 / double(comm->world_size());
    loss_sum = sums[0] * inv, decode_sum = sums[1] * inv, aux_sum = sums[2] * inv;
    if (sums[3] > 0 && !bad) bad = true, bad_value = std::nan("");
  }
  const double lr = sched.lr_at(step);
  for (size_t g = 0; g < opt->num_groups(); ++g) opt->set_lr(g, lr * groups.lr_scale[g]);
  double grad_norm = NAN;
  if (!bad && cfg.train.clip_grad > 0) {
    grad_norm = optim::clip_grad_norm_(params, cfg.train.clip_grad);
    if (!std::isfinite(grad_norm)) bad = true, bad_value = grad_norm;
  }
  ++step;
  if (bad) {
    opt->zero_grad();
    if (lead)
      log->write({{"kind", "train"}, {"step", step}, {"epoch", epoch}, {"loss", bad_value}, {"lr", lr}, {"skipped", true}});
    if (cfg.train.nan_policy != "skip")
      throw std::runtime_error("step " + std::to_string(step) + ": the loss or gradient norm is not finite; stopping "
                               "(train.nan_policy = stop). Try a lower optim.lr, train.clip_grad, or "
                               "train.nan_policy = skip.");
    ++nan_skipped;
    message("step " + std::to_string(step) + ": non-finite loss, update skipped");
    return;
  }
  opt->step();
  opt->zero_grad();
  if (ema) ema->update(*net);
  last_loss = loss_sum / double(micro);
  interval_loss_sum += last_loss;
  ++interval_loss_steps;
  const double step_ms = ms_since(t_step);
  const int64_t images = cfg.train.batch_size * micro * comm->world_size();
  if (step > 1) train_seconds += step_ms / 1000.0, timed_images += images;
  if (step % cfg.log.interval == 0 || step == sched.total_steps) {
    json rec = {{"kind", "train"},
                {"step", step},
                {"epoch", epoch},
                {"loss", last_loss},
                {"decode_loss", decode_sum / double(micro)},
                {"lr", lr},
                {"img_per_s", images / (step_ms / 1000.0)},
                {"data_ms", data_ms},
                {"step_ms", step_ms}};
    if (net->auxiliary_head) rec["aux_loss"] = aux_sum / double(micro);
    if (cfg.train.clip_grad > 0) rec["grad_norm"] = grad_norm;
    if (lead) log->write(rec);
    if (tb) tb->add_scalars(step, {{"train/loss", float(last_loss)}, {"train/lr", float(lr)}});
    char line[200];
    std::snprintf(line, sizeof line, "step %lld/%lld  loss %.4f  lr %.3g  %.1f ms/step", (long long)step,
                  (long long)sched.total_steps, last_loss, lr, step_ms);
    message(line);
  }
  // Evaluate before the recovery checkpoint of the same step, so that the file holds the best
  // metric this step may have set (a resumed run does not evaluate that step again).
  if (step % cfg.eval.interval == 0 || step == sched.total_steps) validate();
  if (cfg.ckpt.recovery_steps > 0 && step % cfg.ckpt.recovery_steps == 0 && step < sched.total_steps)
    save("recovery", "recovery");
}

// The validation split, whole-image and single scale (the cheap mode, as mmseg's val loop during
// training), into log.jsonl, TensorBoard and summary.csv; checkpoints/best.safetensors when
// ckpt.best_metric improved (as the classification trainer keeps its best epoch).
void SegTrainer::State::validate() {
  SegEvalSettings whole;
  whole.crop = cfg.seg.crop;
  whole.stride = cfg.seg.stride;
  SegEvalResult r = evaluate(*net, whole);
  json rec = {{"kind", "val"}, {"step", step}, {"mode", "whole"}, {"mIoU", r.miou()}, {"mAcc", r.macc()},
              {"aAcc", r.aacc()}, {"images", r.images}, {"eval_s", r.seconds}};
  nlohmann::ordered_json row;
  row["step"] = step;
  row["train_loss"] = interval_loss_steps ? interval_loss_sum / double(interval_loss_steps) : NAN;
  row["mIoU"] = r.miou();
  row["mAcc"] = r.macc();
  row["aAcc"] = r.aacc();
  char line[300];
  int used = std::snprintf(line, sizeof line, "step %lld: mIoU %.2f  mAcc %.2f  aAcc %.2f  (whole, %lld images, %.1f s)",
                           (long long)step, r.miou(), r.macc(), r.aacc(), (long long)r.images, r.seconds);
  std::vector<runlog::Scalar> scalars = {
      {"val/mIoU", float(r.miou())}, {"val/mAcc", float(r.macc())}, {"val/aAcc", float(r.aacc())}};
  std::optional<SegEvalResult> e;
  if (ema) {  // the averaged weights, the same way (as the classification trainer's "EMA top1")
    e = evaluate(ema->model(), whole);
    rec["mIoU_ema"] = e->miou();
    rec["mAcc_ema"] = e->macc();
    rec["aAcc_ema"] = e->aacc();
    row["mIoU_ema"] = e->miou();
    row["mAcc_ema"] = e->macc();
    row["aAcc_ema"] = e->aacc();
    scalars.push_back({"val/mIoU_ema", float(e->miou())});
    std::snprintf(line + used, sizeof line - size_t(used), " | EMA mIoU %.2f", e->miou());
  }
  row["lr"] = sched.lr_at(std::min(step, sched.total_steps - 1));
  if (lead) log->write(rec), csv->write_row(row);
  if (tb) {
    tb->add_scalars(step, scalars);
    tb->flush();
  }
  message(line);
  interval_loss_sum = 0.0;
  interval_loss_steps = 0;
  const double metric = pick_metric(r);
  if (best_step < 0 || metric > best_metric) {  // all three are "higher is better"
    best_metric = metric;
    best_step = step;
    save("best", "best");
  }
  last_val = std::move(r);
  last_val_ema = std::move(e);
  last_val_step = step;
}

SegTrainer::SegTrainer(const config::ResolvedConfig& rc, const RunPlan& plan, std::shared_ptr<dist::Communicator> comm)
    : s_(std::make_unique<State>(rc, plan, std::move(comm))) {
  s_->setup();
}

SegTrainer::~SegTrainer() = default;

TrainSummary SegTrainer::fit() {
  State& s = *s_;
  while (s.step < s.sched.total_steps) s.one_step();
  s.save("last", "last");
  // The final numbers (collective: every rank evaluates its share of the images).
  const SegEvalSettings settings = SegEvalSettings::from_config(s.cfg);
  const bool plain = settings.mode == "whole" && settings.scales.empty() && !settings.flip;
  SegEvalResult r = plain && s.last_val_step == s.step ? *s.last_val : s.evaluate(*s.net, settings);
  std::optional<SegEvalResult> re;  // the EMA's final numbers, into seg_eval_ema.json / .csv
  if (s.ema) re = plain && s.last_val_step == s.step ? *s.last_val_ema : s.evaluate(s.ema->model(), settings);
  TrainSummary out;
  out.steps = s.step;
  out.last_loss = s.last_loss;
  out.best_metric = s.best_metric;
  out.nan_skipped = s.nan_skipped;
  out.img_per_s = s.train_seconds > 0 ? double(s.timed_images) / s.train_seconds : 0.0;
  if (!s.lead) {  // the files below are rank 0's; wait so no rank exits while rank 0 still works
    s.comm->barrier();
    return out;
  }
  {  // the weights alone (UperNet's names: backbone.*, decode_head.*, auxiliary_head.*)
    NamedTensors w;
    for (const auto& [name, t] : s.net->state_dict()) w.emplace_back(name, t.cpu());  // from the device, if there
    save_safetensors((fs::path(s.plan.dir) / "model.safetensors").string(), w, {});
  }
  // The final numbers with the configured inference (seg.mode, seg.scales, seg.flip); the
  // last step's whole-image validation already is that when nothing else is asked for.
  write_seg_eval_files(s.plan.dir, r, settings,
                       {{"model", s.cfg.model.name}, {"checkpoint", s.ckpt_path("last")}, {"step", s.step},
                        {"best_step", s.best_step}, {"best_" + s.cfg.ckpt.best_metric, s.best_metric}});
  if (s.ema) {
    write_seg_eval_files(s.plan.dir, *re, settings,
                         {{"model", s.cfg.model.name}, {"checkpoint", s.ckpt_path("last")}, {"ema", true},
                          {"step", s.step}},
                         "seg_eval_ema");
  }
  if (!plain) {
    json rec = {{"kind", "val"}, {"step", s.step}, {"mode", settings.mode}, {"scales", settings.scales},
                {"flip", settings.flip}, {"mIoU", r.miou()}, {"mAcc", r.macc()}, {"aAcc", r.aacc()},
                {"images", r.images}, {"eval_s", r.seconds}};
    if (re) rec["mIoU_ema"] = re->miou(), rec["mAcc_ema"] = re->macc(), rec["aAcc_ema"] = re->aacc();
    s.log->write(rec);
  }
  if (s.tb) s.tb->close();
  s.log->close();
  s.csv->close();
  std::fputs(format_seg_table(r, "segmentation, step " + std::to_string(s.step) + " (" + settings.mode + ")").c_str(),
             stdout);
  s.comm->barrier();
  return out;
}

}  // namespace rv::train::seg
