// dataset.h: data::Dataset, what the loader asks of every data set (Fashion-MNIST, ImageFolder, ...).
//
//   Dataset  --get(i, gen)-->  Sample {image (C, H, W) f32, label}  --Loader-->  Batch (B, C, H, W)
//
// get() is a pure function of (index, generator state): all augmentation randomness comes from
// the Philox generator the loader hands in, keyed by (seed, epoch, sample index) (see loader.h),
// never from a shared or thread-local RNG. That is what makes a batch independent of the number
// of worker threads and of timing, and lets a resumed run see exactly the batches it would have.
// get() is called from several worker threads at once, so it must not mutate shared state.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace rv::data {

struct Sample {
  Tensor image;       // (C, H, W) float32, normalised, ready for the model
  int64_t label = 0;  // class index in [0, num_classes)
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual int64_t num_classes() const = 0;
  // Sample `index` (0 <= index < size()), augmented with draws from `gen` only.
  virtual Sample get(int64_t index, Generator& gen) const = 0;
  // A short description for logs ("fashion-mnist train, 60000 images, 28x28 -> 32x32").
  virtual std::string describe() const = 0;
};

}  // namespace rv::data
