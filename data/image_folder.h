// image_folder.h: data::ImageFolder, the ImageNet layout as a Dataset.
//
//   root/<class>/<image>     e.g. imagenet/train/n01440764/n01440764_10026.JPEG
//
// Classes are the sub-folders of root in sorted (byte / code point) order, as torchvision's
// ImageFolder and every timm checkpoint assume (n01440764 = 0); a class-map file (one name per
// line, line number = index, timm's --class-map) fixes another order or a subset. Files are those
// with an image extension (.jpg .jpeg .png .bmp .gif .ppm .pgm, any case), found recursively in
// torchvision's order (folders by path string, files sorted in each); the format is sniffed from
// the bytes. A symlink loop among the folders is the caller's problem, as in os.walk(followlinks).
//
// File index cache: listing 1.28M files costs minutes on a network disk, so the list is stored in
// <cache_dir>/imagefolder-<hash of the root path>.idx (binary, see image_folder.cpp) together with
// the modification time of root and of every class folder. Adding or removing a file changes its
// folder's mtime, which invalidates the cache; a valid cache means the listing is not redone.
// (A change deep inside nested sub-folders is not seen: ImageNet has none; delete the cache.)
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/image_pipeline.h"

namespace rv::data {

struct ImageFolderIndex {
  std::vector<std::string> classes;  // index = label
  std::vector<std::string> files;    // relative to root
  std::vector<int32_t> labels;
};

// Lists root (no cache). class_map: "" for the sorted folders.
ImageFolderIndex scan_image_folder(const std::string& root, const std::string& class_map = "");
// The index from the cache when it is valid, else a scan that is then cached (best effort: an
// unwritable cache dir only costs the next start a rescan). from_cache says which happened.
ImageFolderIndex load_image_folder_index(const std::string& root, const std::string& cache_dir,
                                         const std::string& class_map = "", bool* from_cache = nullptr);
// $ROPEVIT_CACHE_DIR, else $XDG_CACHE_HOME/ropevit, else $HOME/.cache/ropevit.
std::string default_cache_dir();

struct ImageFolderOptions {
  std::string root;        // the split folder: imagenet/train or imagenet/val
  bool train = true;       // train: train_tf (random); else eval_tf
  TrainTransformOptions train_tf;
  EvalTransformOptions eval_tf;
  std::string cache_dir;   // "" = default_cache_dir()
  std::string class_map;   // "" = sorted sub-folders
  // Keep only `subset` files (0 = all), spread evenly over the sorted index: file
  // floor(i * N / subset) for i = 0 .. subset-1. The index is sorted by class, so "the first N"
  // would be class 0 alone; an even spread keeps every class in proportion, and it is still a
  // pure function of the folder's contents (no seed). The class list stays the full one.
  int64_t subset = 0;
};

class ImageFolder : public Dataset {
 public:
  explicit ImageFolder(ImageFolderOptions opt);
  int64_t size() const override { return int64_t(index_.files.size()); }
  int64_t num_classes() const override { return int64_t(index_.classes.size()); }
  // Reads, decodes and transforms file `index`; errors name the file.
  Sample get(int64_t index, Generator& gen) const override;
  std::string describe() const override;
  // (3, S, S) with S the transform's size, or the request's size (square requests only: the
  // transforms make square images).
  Shape sample_shape(const SampleRequest& req) const override;
  // get() written straight into the loader's batch row (the same pixels for the same draws).
  int64_t get_into(int64_t index, Generator& gen, const SampleRequest& req, const Tensor& out) const override;

  const ImageFolderIndex& index() const { return index_; }
  std::string path(int64_t index) const;
  bool index_from_cache() const { return from_cache_; }

 private:
  int output_size(const SampleRequest& req) const;

  ImageFolderOptions opt_;
  ImageFolderIndex index_;
  int64_t listed_ = 0;  // files in the folder before opt_.subset
  std::unique_ptr<RandAugment> ra_;
  bool from_cache_ = false;
};

}  // namespace rv::data
