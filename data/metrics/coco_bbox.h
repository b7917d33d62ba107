// coco_bbox.h: COCO box detection metrics, by the rules of pycocotools' COCOeval with
// iouType 'bbox' (cocoapi:PythonAPI/pycocotools/cocoeval.py), giving its 12 summary numbers.
//
// The rules, in the order COCOeval applies them:
//  - Images and categories are the ground truth's lists (sorted ids). Each (image, category)
//    pair with ground truth or detections is evaluated on its own; pairs with neither are skipped.
//  - Detections of a pair are sorted by score, highest first, with a stable sort (equal scores
//    keep the order they were given in), and only the first maxDets[-1] = 100 are kept.
//  - IoU of detection d and ground truth g, boxes [x, y, w, h]:
//      inter / (area_d + area_g - inter), or inter / area_d when g is a crowd region
//    (areas here are w*h of the boxes; boxes that do not overlap have IoU 0).
//  - For each area range (all [0, 1e10], small [0, 32^2], medium [32^2, 96^2], large
//    [96^2, 1e10], bounds inclusive) a ground truth is "ignored" when it is a crowd or its
//    `area` field (the mask area, not the box's) is outside the range. Ignored ground truth
//    goes last (stable).
//  - For each IoU threshold t in .50, .55, ..., .95, detections in score order take the
//    ground truth of the highest IoU >= t (ties go to the later one) that is not taken yet; a
//    crowd can be taken any number of times; once a detection holds a non-ignored ground truth it
//    stops looking at ignored ones. A detection matched to an ignored ground truth is ignored;
//    an unmatched detection is ignored when its own box area w*h is outside the range.
//  - Per category, area range and maxDets (1, 10, 100: the first that many detections of each
//    image, from the matching above): all images' detections are sorted by score (stable, in
//    image-id order), ignored ones dropped, and with npig = the number of non-ignored ground
//    truth (the category is skipped when npig = 0):
//      recall = TP / npig,  precision = TP / (TP + FP + 2^-52),
//    precision is made non-increasing from the right and read at the 101 recall points
//    0, .01, ..., 1 (the first detection reaching each recall; 0 beyond the last recall);
//    the final recall is the category's recall.
//  - AP is the mean of the precision entries over thresholds, recall points and categories, AR
//    the mean of the recalls over thresholds and categories, skipping categories that were
//    skipped above; a number with nothing to average is -1.
//
// The ground truth's `ignore` field: pycocotools overwrites it with `iscrowd` for 'bbox', so by
// default it has no effect here either. CocoEvalOptions::use_ignore_field makes a ground truth
// with ignore = true count as ignored (without the crowd IoU rule), as some data sets intend.
//
// Inputs are validated (a box with negative size, an id that is not among the images or
// categories, a NaN score, duplicate image or category ids) and refused with a
// std::invalid_argument naming the item. pycocotools itself rejects detections on unknown
// images, but silently drops those of unknown categories; we refuse both, since a wrong
// category-id mapping is the commonest cause of a surprising AP of 0.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace rv::data {

struct CocoGroundTruth {
  int64_t image_id = 0;
  int64_t category_id = 0;
  std::array<double, 4> bbox{};  // x, y, w, h in pixels
  double area = 0;               // the annotation's area (mask area in COCO), for the area ranges
  bool iscrowd = false;
  bool ignore = false;           // see use_ignore_field above
};

struct CocoDetection {
  int64_t image_id = 0;
  int64_t category_id = 0;
  std::array<double, 4> bbox{};  // x, y, w, h
  double score = 0;
};

struct CocoEvalOptions {
  bool use_ignore_field = false;  // false: pycocotools' behaviour
};

struct CocoBboxResult {
  // AP, AP50, AP75, APs, APm, APl, AR1, AR10, AR100, ARs, ARm, ARl, in pycocotools' order.
  std::array<double, 12> stats{};
  static const std::array<const char*, 12> kNames;  // "AP", "AP50", ...
  // AP over thresholds .50:.95 (area all, 100 detections) per category, in the order of the
  // category ids given; -1 for a category without non-ignored ground truth.
  std::vector<double> per_category_ap;
  // The summary as pycocotools prints it, one line per number.
  std::string summary() const;
};

// image_ids and category_ids are the ground truth's images and categories (any order, no
// duplicates); images without ground truth and categories without annotations count as in
// COCOeval (an image without ground truth still contributes false positives).
CocoBboxResult coco_evaluate_bbox(const std::vector<int64_t>& image_ids, const std::vector<int64_t>& category_ids,
                                  const std::vector<CocoGroundTruth>& ground_truth,
                                  const std::vector<CocoDetection>& detections, const CocoEvalOptions& options = {});

}  // namespace rv::data
