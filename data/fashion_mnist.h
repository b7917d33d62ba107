// fashion_mnist.h: the Fashion-MNIST data set (Zalando's 28x28 grey clothing images, 10 classes)
// read from its four IDX files, as Debian's dataset-fashion-mnist installs them:
//   <dir>/train-images-idx3-ubyte.gz  <dir>/train-labels-idx1-ubyte.gz   (60,000 images)
//   <dir>/t10k-images-idx3-ubyte.gz   <dir>/t10k-labels-idx1-ubyte.gz    (10,000 images)
// The uncompressed files (the same names without .gz) are used when the .gz ones are absent.
//
// The whole split is loaded at once (47 MB for train): a view of two tensors, the images u8
// (N, 28, 28) and the labels i64 (N,) (i64 because that is what cross_entropy takes as class
// indices). Opening checks what a training run would otherwise trip over later: the IDX types,
// the image size, equal counts, and every label in 0..9.
#pragma once
#include <array>
#include <cstdint>
#include <string>

#include "engine/tensor.h"

namespace rv::data {

class FashionMnist {
 public:
  enum class Split { train, test };
  static constexpr int64_t kSide = 28;
  static constexpr int64_t kClasses = 10;
  // The class names in label order, from the data set's README.
  static constexpr std::array<const char*, kClasses> kClassNames = {
      "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};
  // Where dataset-fashion-mnist puts the files.
  static constexpr const char* kDebianDir = "/usr/share/datasets/fashion-mnist";

  // Loads one split from `dir`. Throws std::runtime_error naming the file at fault.
  static FashionMnist open(const std::string& dir, Split split);
  // The path open() reads for a file stem such as "train-images-idx3-ubyte": the .gz when it
  // exists, else the plain file; "" when neither exists.
  static std::string find_file(const std::string& dir, const std::string& stem);

  int64_t size() const { return labels_.numel(); }
  const Tensor& images() const { return images_; }  // u8 (N, 28, 28)
  const Tensor& labels() const { return labels_; }  // i64 (N,), values 0..9
  Split split() const { return split_; }

 private:
  Tensor images_, labels_;
  Split split_ = Split::train;
};

}  // namespace rv::data
