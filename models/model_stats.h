// model_stats.h: what `ropevit info MODEL` reports about a model, measured by running it:
// parameters, multiply-adds per image and the memory a training step needs at a batch size.
//
//   ModelStats s = measure_model(*model, 224, 224);
//   s.macs / 1e9                          // GMACs per image (ViT-S/16 at 224: about 4.6)
//   TrainingMemory m = training_memory(s, 32);
//   m.total() / 1e9                       // GB to train at batch 32 with AdamW
//
// MACs count products only, as fvcore / timm's GMACs column (engine/profile/op_counter.h): one
// forward at batch 1, eval mode, no grad.
// Memory (engine/profile/memory_stats.h): activations are what a training-mode forward with
// autograd recording leaves alive (the tensors saved for backward, and the output), measured at
// batch 1 and batch 2 and extrapolated linearly: per_image = m(2) - m(1), fixed = m(1) - per_image.
// The same is done for the peak of a whole forward + backward step, which also holds the
// gradients and the backward's temporaries. Parameters, gradients and AdamW's two moments are
// counted from the parameters' sizes and dtypes.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "models/model.h"

namespace rv::models {

struct ModelStats {
  int64_t img_h = 0, img_w = 0, in_chans = 0;
  int64_t params = 0, trainable = 0;             // elements (shared tensors once)
  int64_t param_bytes = 0, trainable_bytes = 0;  // their storage, in their dtypes
  int64_t macs = 0;                              // forward, per image
  std::vector<std::pair<std::string, int64_t>> macs_by_op;  // (op, MACs per image)
  // Bytes that grow with the batch, per image, and the part that does not (e.g. tables built
  // once per forward). Negative differences (noise from a cache) are clamped to 0.
  int64_t activation_bytes_per_image = 0, activation_bytes_fixed = 0;
  int64_t step_peak_bytes_per_image = 0, step_peak_bytes_fixed = 0;  // fwd + bwd, above the model
};

// Runs the model three times at batch 1 and twice at batch 2 on N(0,1) images (in_chans from
// its config) of img_h x img_w, then restores its training mode and drops its gradients.
// The model's parameters must require grad for the activation measurement to mean anything.
ModelStats measure_model(Model& model, int64_t img_h, int64_t img_w);

// Memory to train at `batch` with AdamW, from the measured stats.
struct TrainingMemory {
  int64_t params = 0, grads = 0, adamw_moments = 0;  // grads and moments: trainable params only
  int64_t activations = 0;                           // saved by the forward (extrapolated)
  int64_t step_peak = 0;                              // measured peak of fwd+bwd above the params
                                                      // (extrapolated): activations, grads, temporaries
  int64_t total() const { return params + grads + adamw_moments + activations; }
  int64_t total_from_peak() const { return params + adamw_moments + step_peak; }
};
TrainingMemory training_memory(const ModelStats& s, int64_t batch);

}  // namespace rv::models
