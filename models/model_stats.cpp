// model_stats.cpp: measure_model (parameters, MACs, activation memory) and training_memory.
#include "models/model_stats.h"

#include <algorithm>
#include <stdexcept>
#include <tuple>

#include "engine/autograd.h"
#include "engine/ops/reduce.h"
#include "engine/profile/memory_stats.h"
#include "engine/profile/op_counter.h"
#include "engine/rng.h"

namespace rv::models {

namespace {

Tensor images(int64_t batch, const ModelStats& s) {
  Generator gen(/*seed=*/1234);
  return randn({batch, s.in_chans, s.img_h, s.img_w}, gen);
}

// Bytes still alive after a recorded forward at `batch`, and the peak above the start of a
// forward + backward at `batch` (the input is made before either is measured: it is the
// loader's, not the model's).
std::pair<int64_t, int64_t> measure_batch(Model& model, int64_t batch, const ModelStats& s) {
  Tensor x = images(batch, s);
  model.zero_grad();
  const int64_t before = profile::memory_stats().live_bytes;
  profile::reset_peak_memory();
  Tensor out = model.forward(x);
  const int64_t saved = profile::memory_stats().live_bytes - before;
  if (out.requires_grad()) sum(out).backward();  // the gradient of every output element is 1
  out = Tensor();
  const int64_t peak = profile::memory_stats().peak_bytes - before;
  model.zero_grad();
  return {saved, peak};
}

// (fixed, per image) from measurements m1 at batch 1 and m2 at batch 2.
std::pair<int64_t, int64_t> extrapolate(int64_t m1, int64_t m2) {
  const int64_t per_image = std::max<int64_t>(0, m2 - m1);
  return {std::max<int64_t>(0, m1 - per_image), per_image};
}

}  // namespace

ModelStats measure_model(Model& model, int64_t img_h, int64_t img_w) {
  if (img_h <= 0 || img_w <= 0)
    throw std::invalid_argument("measure_model: image size must be positive, got " + std::to_string(img_h) + "x" +
                                std::to_string(img_w));
  ModelStats s;
  s.img_h = img_h;
  s.img_w = img_w;
  s.in_chans = model.config().in_chans;
  s.params = model.num_parameters();
  s.trainable = model.num_parameters(/*trainable_only=*/true);
  for (const Tensor& p : model.parameters()) {  // each tensor once
    const int64_t bytes = p.numel() * int64_t(p.itemsize());
    s.param_bytes += bytes;
    if (p.requires_grad()) s.trainable_bytes += bytes;
  }
  const bool was_training = model.is_training();

  {  // MACs: one image, inference
    model.eval();
    autograd::NoGradGuard no_grad;
    Tensor x = images(1, s);
    profile::OpCounter counter;
    model.forward(x);
    s.macs = counter.macs();
    s.macs_by_op = counter.by_op();
  }

  // Memory: training mode with autograd. A first untimed step at batch 1 builds anything the
  // model caches on first use, so that it is not counted as batch-1 activations.
  model.train();
  measure_batch(model, 1, s);
  auto [saved1, peak1] = measure_batch(model, 1, s);
  auto [saved2, peak2] = measure_batch(model, 2, s);
  std::tie(s.activation_bytes_fixed, s.activation_bytes_per_image) = extrapolate(saved1, saved2);
  std::tie(s.step_peak_bytes_fixed, s.step_peak_bytes_per_image) = extrapolate(peak1, peak2);
  model.train(was_training);
  return s;
}

TrainingMemory training_memory(const ModelStats& s, int64_t batch) {
  if (batch <= 0) throw std::invalid_argument("training_memory: batch must be positive, got " + std::to_string(batch));
  TrainingMemory m;
  m.params = s.param_bytes;
  m.grads = s.trainable_bytes;
  m.adamw_moments = 2 * s.trainable_bytes;  // exp_avg and exp_avg_sq, in the parameters' dtype
  m.activations = s.activation_bytes_fixed + batch * s.activation_bytes_per_image;
  m.step_peak = s.step_peak_bytes_fixed + batch * s.step_peak_bytes_per_image;
  return m;
}

}  // namespace rv::models
