// dataset.cpp: the default Dataset::sample_shape / get_into, for data sets that only make
// whole samples with get().
#include "data/dataset.h"

#include <stdexcept>

namespace rv::data {

Shape Dataset::sample_shape(const SampleRequest&) const { return {}; }

int64_t Dataset::get_into(int64_t index, Generator& gen, const SampleRequest& req, const Tensor& out) const {
  if (req.has_size())
    throw std::invalid_argument("Dataset::get_into: " + describe() + " cannot resize its samples to " +
                                std::to_string(req.height) + "x" + std::to_string(req.width) +
                                " (it has no get_into override); leave LoaderOptions::resolutions empty");
  Sample s = get(index, gen);
  // copy_ would broadcast a smaller image silently; a data set whose sample sizes vary needs a
  // resize in its transform, and this says so instead of filling a batch row with repeats.
  if (!s.image.defined() || s.image.shape() != out.shape())
    throw std::runtime_error("Dataset::get_into: sample " + std::to_string(index) + " has image shape " +
                             (s.image.defined() ? shape_str(s.image.shape()) : std::string("<undefined>")) +
                             " but its batch row is " + shape_str(out.shape()) +
                             " (all samples of a batch must have the same shape)");
  Tensor row = out;  // a handle copy: copy_ writes through to the batch's storage
  row.copy_(s.image);
  return s.label;
}

Shape Dataset::label_map_shape(const SampleRequest&) const { return {}; }

int64_t Dataset::get_into_with_label_map(int64_t index, Generator& gen, const SampleRequest& req, const Tensor& out,
                                         const Tensor& label_map_out) const {
  if (req.has_size())
    throw std::invalid_argument("Dataset::get_into_with_label_map: " + describe() + " cannot resize its samples to " +
                                std::to_string(req.height) + "x" + std::to_string(req.width) +
                                " (it has no override); leave LoaderOptions::resolutions empty");
  Sample s = get(index, gen);
  auto check = [&](const Tensor& t, const Tensor& row, const char* what) {
    if (!t.defined() || t.shape() != row.shape() || t.dtype() != row.dtype())
      throw std::runtime_error("Dataset::get_into_with_label_map: sample " + std::to_string(index) + " has " + what +
                               " " + (t.defined() ? shape_str(t.shape()) + " " + dtype_name(t.dtype()) : std::string("<undefined>")) +
                               " but its batch row is " + shape_str(row.shape()) + " " + dtype_name(row.dtype()) +
                               " (all samples of a batch must have the same shapes)");
  };
  check(s.image, out, "image");
  check(s.label_map, label_map_out, "label map");
  Tensor row = out, lrow = label_map_out;  // handle copies: copy_ writes through to the batch
  row.copy_(s.image);
  lrow.copy_(s.label_map);
  return s.label;
}

}  // namespace rv::data
