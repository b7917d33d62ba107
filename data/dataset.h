// dataset.h: data::Dataset, what the loader asks of every data set (Fashion-MNIST, ImageFolder, ...).
//
//   Dataset  --get(i, gen)-->  Sample {image (C, H, W) f32, label}  --Loader-->  Batch (B, C, H, W)
//
// get() is a pure function of (index, generator state): all augmentation randomness comes from
// the Philox generator the loader hands in, keyed by (seed, epoch, sample index) (see loader.h),
// never from a shared or thread-local RNG. That is what makes a batch independent of the number
// of worker threads and of timing, and lets a resumed run see exactly the batches it would have.
// get() is called from several worker threads at once, so it must not mutate shared state.
//
// The loader does not call get() itself when it can avoid it: it allocates the batch tensor
// once and calls get_into(), which writes the sample straight into its row of the batch, so a
// sample's pixels are written exactly once (no per-sample tensor, no copy into the batch). A
// data set that only implements get() still works: the default get_into() copies get()'s image.
// SampleRequest carries what the loader decides per batch rather than per sample: the output
// size for multi-resolution training (equal within a batch, see LoaderOptions::resolutions).
//
// Detection samples have different sizes and carry boxes: they set Sample::targets, and the
// loader, given LoaderOptions::pad, pads them into one batch (pad_batch.h) and hands the targets
// on in Batch::targets.
//
// Dense labels (semantic segmentation): a data set whose has_label_maps() is true gives each
// sample a uint8 (H, W) label map as well (class per pixel, 255 = ignore), and the loader
// batches them into Batch::label_maps (B, H, W), allocated once per batch like the images and
// filled by get_into_with_label_map(). Its `label` is unused (0).
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace rv::data {

struct DetTarget;  // data/det_target.h: boxes, labels, ignore regions, image meta

struct Sample {
  Tensor image;       // (C, H, W) float32, normalised, ready for the model
  int64_t label = 0;  // class index in [0, num_classes) (0 for detection and segmentation)
  std::shared_ptr<const DetTarget> targets = nullptr;  // detection only, else null
  Tensor label_map = Tensor();  // (H, W) uint8 class per pixel, 255 = ignore; only where has_label_maps()
};

// The loader's per-batch request. height = width = 0: the data set's own output size.
struct SampleRequest {
  int64_t height = 0, width = 0;
  bool has_size() const { return height > 0 || width > 0; }
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

  // The (C, H, W) shape every sample has under `req`, or {} when it is only known once a
  // sample is made (the loader then makes the batch's first sample with get()). The default
  // is {}.
  virtual Shape sample_shape(const SampleRequest& req) const;
  // Writes sample `index` (the same pixels as get(index, gen) at the requested size) into
  // `out`, a contiguous f32 (C, H, W) view of one batch row of shape sample_shape(req), and
  // returns its label. The default calls get() and copies; it refuses a request with a size,
  // because get() has no way to honour it.
  virtual int64_t get_into(int64_t index, Generator& gen, const SampleRequest& req, const Tensor& out) const;

  // Dense labels (see above). The default: none.
  virtual bool has_label_maps() const { return false; }
  // The (H, W) shape of every label map under `req`, or {} when only known once a sample is
  // made (then the loader makes the batch's first sample with get()). The default is {}.
  virtual Shape label_map_shape(const SampleRequest& req) const;
  // get_into that also writes the sample's label map into `label_map_out`, a contiguous u8
  // (H, W) view of its batch row of shape label_map_shape(req). The default calls get() and
  // copies both, refusing a request with a size as get_into does.
  virtual int64_t get_into_with_label_map(int64_t index, Generator& gen, const SampleRequest& req, const Tensor& out,
                                          const Tensor& label_map_out) const;
};

}  // namespace rv::data
