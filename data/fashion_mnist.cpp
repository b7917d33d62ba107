// fashion_mnist.cpp: finds a split's two IDX files and checks that they form a data set.
#include "data/fashion_mnist.h"

#include <filesystem>
#include <stdexcept>

#include "data/idx.h"

namespace rv::data {

std::string FashionMnist::find_file(const std::string& dir, const std::string& stem) {
  namespace fs = std::filesystem;
  std::error_code ec;
  for (const std::string& name : {stem + ".gz", stem}) {
    fs::path p = fs::path(dir) / name;
    if (fs::is_regular_file(p, ec)) return p.string();
  }
  return "";
}

FashionMnist FashionMnist::open(const std::string& dir, Split split) {
  const std::string prefix = split == Split::train ? "train" : "t10k";
  auto locate = [&](const std::string& stem) {
    std::string p = find_file(dir, stem);
    if (p.empty())
      throw std::runtime_error("FashionMnist: neither " + stem + ".gz nor " + stem + " is in '" + dir +
                               "' (Debian's dataset-fashion-mnist installs them in " + kDebianDir + ")");
    return p;
  };
  const std::string image_path = locate(prefix + "-images-idx3-ubyte");
  const std::string label_path = locate(prefix + "-labels-idx1-ubyte");

  FashionMnist ds;
  ds.split_ = split;
  ds.images_ = read_idx(image_path);
  if (ds.images_.dtype() != DType::u8 || ds.images_.dim() != 3 || ds.images_.size(1) != kSide ||
      ds.images_.size(2) != kSide)
    throw std::runtime_error("FashionMnist: '" + image_path + "' should hold u8 images of shape (N, 28, 28), it holds " +
                             dtype_name(ds.images_.dtype()) + " " + shape_str(ds.images_.shape()));
  Tensor raw = read_idx(label_path);
  if (raw.dtype() != DType::u8 || raw.dim() != 1)
    throw std::runtime_error("FashionMnist: '" + label_path + "' should hold u8 labels of shape (N,), it holds " +
                             dtype_name(raw.dtype()) + " " + shape_str(raw.shape()));
  if (raw.size(0) != ds.images_.size(0))
    throw std::runtime_error("FashionMnist: '" + label_path + "' has " + std::to_string(raw.size(0)) + " labels but '" +
                             image_path + "' has " + std::to_string(ds.images_.size(0)) + " images");
  ds.labels_ = empty({raw.size(0)}, DType::i64);
  const uint8_t* src = raw.data<uint8_t>();
  int64_t* dst = ds.labels_.data<int64_t>();
  for (int64_t i = 0; i < raw.size(0); ++i) {
    if (src[i] >= kClasses)
      throw std::runtime_error("FashionMnist: '" + label_path + "': label " + std::to_string(i) + " is " +
                               std::to_string(src[i]) + ", expected 0..9");
    dst[i] = src[i];
  }
  return ds;
}

}  // namespace rv::data
