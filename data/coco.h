// coco.h: data::CocoInstances, a COCO 2017 "instances" annotation file (instances_val2017.json)
// read and checked, with what training and evaluation each take from it.
//
//   CocoInstances coco = CocoInstances::read("coco/annotations/instances_val2017.json");
//   coco_evaluate_bbox(coco.image_ids(), coco.category_ids(), coco.ground_truth(), dets);  // eval
//   CocoTargets t = coco.targets(i);   // image i's boxes x1 y1 x2 y2 + contiguous labels (training)
//
// Fields read (everything else, e.g. license, coco_url, segmentation, is ignored):
//   images[]:      id (int), file_name (non-empty string), width, height (ints > 0)
//   annotations[]: id, image_id, category_id (ints), bbox [x, y, w, h] (4 finite numbers, w, h >= 0),
//                  area (finite number >= 0), iscrowd (0 / 1 or a bool; absent = 0)
//   categories[]:  id (int), name (string), supercategory (string, optional)
// Every malformed field is a std::runtime_error naming the file, the item (its index and id)
// and the key: "instances_val2017.json: annotations[3] (id 17): 'bbox': expected 4 numbers,
// got 3". Ids must be unique per list, an annotation's image_id and category_id must exist (a
// wrong category mapping is the commonest cause of an AP of 0, so it is refused here, not
// skipped as pycocotools does).
//
// Category ids (1..90 with gaps in COCO) map to contiguous labels 0..K-1 in sorted-id order and
// back (mmdet's cat2label); results are written with the original ids.
//
// Training targets follow mmdet's CocoDataset.parse_data_info: an annotation is dropped when its
// box does not overlap the image, its area <= 0, or w < 1 or h < 1; a crowd box (iscrowd 1) is
// not a target but an ignore region, kept apart. mmdet's filter_empty_gt (training only) keeps
// the images with at least one annotation (any, crowd included, before the box filters: its
// cat_img_map) whose shorter side is >= min_size; evaluation keeps every image.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

#include "data/metrics/coco_bbox.h"

namespace rv::data {

struct CocoImage {
  int64_t id = 0;
  std::string file_name;
  int64_t width = 0, height = 0;
};

struct CocoCategory {
  int64_t id = 0;
  std::string name, supercategory;
};

struct CocoAnnotation {
  int64_t id = 0, image_id = 0, category_id = 0;
  std::array<double, 4> bbox{};  // x, y, w, h in pixels, origin top-left
  double area = 0;               // the mask area (eval's small / medium / large split)
  bool iscrowd = false;
};

// One image's training targets, boxes as x1 y1 x2 y2 (x2 = x + w: no +1).
struct CocoTargets {
  std::vector<std::array<double, 4>> boxes;         // (K, 4) non-crowd, after mmdet's filters
  std::vector<int64_t> labels;                      // (K,) contiguous labels 0..K-1
  std::vector<std::array<double, 4>> crowd_boxes;   // ignore regions (iscrowd 1), same filters
};

class CocoInstances {
 public:
  // `label` names the source in errors (a file name).
  static CocoInstances parse(const std::string& json_text, const std::string& label);
  static CocoInstances read(const std::string& path);

  const std::vector<CocoImage>& images() const { return images_; }            // in file order
  const std::vector<CocoCategory>& categories() const { return categories_; }  // sorted by id
  const std::vector<CocoAnnotation>& annotations() const { return annotations_; }  // in file order
  int64_t num_classes() const { return int64_t(categories_.size()); }

  // Contiguous label of a category id (throws std::out_of_range naming the id) and back.
  int64_t label_of(int64_t category_id) const;
  int64_t category_id_of(int64_t label) const;
  // Index into images() of an image id (throws std::out_of_range naming the id).
  int64_t image_index_of(int64_t image_id) const;
  // Indices into annotations() of image `image_index`'s annotations, in file order.
  const std::vector<int64_t>& annotations_of(int64_t image_index) const { return per_image_.at(size_t(image_index)); }

  CocoTargets targets(int64_t image_index) const;
  // Indices of the images training uses (filter_empty_gt with shorter side >= min_size).
  std::vector<int64_t> train_image_indices(int64_t min_size = 32) const;

  // For coco_evaluate_bbox: every image id, every category id, and all annotations.
  std::vector<int64_t> image_ids() const;
  std::vector<int64_t> category_ids() const;
  std::vector<CocoGroundTruth> ground_truth() const;

  // "label 0 = id 1 'person', label 1 = id 2 'bicycle', ...": the map, for the run's log.
  std::string describe_categories() const;

 private:
  std::string label_;
  std::vector<CocoImage> images_;
  std::vector<CocoCategory> categories_;
  std::vector<CocoAnnotation> annotations_;
  std::vector<std::vector<int64_t>> per_image_;
  std::unordered_map<int64_t, int64_t> image_index_, category_label_;
};

}  // namespace rv::data
