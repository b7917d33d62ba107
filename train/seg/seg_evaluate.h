// seg_evaluate.h: evaluation of a segmenter as mmseg's test loop does it: every image of the
// evaluation split once, its prediction at the label map's original size, the per-class areas
// summed over the set (data/metrics/segmentation.h), then mIoU / mAcc / aAcc overall and IoU /
// Acc per class.
//
//   per image: the eval pipeline's image (3, h, w) (Resize to the eval scale, keep ratio)
//     single scale: UperNet::predict (whole image or sliding window of seg.crop every
//                   seg.stride, optionally + flip) resized to the label map's size, argmax
//     multi-scale:  the same image resized at every ratio of seg.scales (one eval data set per
//                   ratio, mmseg's TTA Resize), UperNet::predict_multi_scale (softmax averaged)
//   then data::seg_areas(pred, label) added up; the metrics once at the end.
//   With settings.pred_dir, each prediction is also written as PNGs (seg_predictions.h: the
//   label map in ADE20k's format and a colour overlay on the original image).
// Images are run one at a time (batch 1, as mmseg's test loader), in eval mode without a graph,
// on the device of the model's weights (the CPU or a GPU); the class map comes back to the host,
// where the areas are counted and the PNGs written.
//
// Files (write_seg_eval_files): <run>/seg_eval.json {"mIoU", "mAcc", "aAcc" (percent), "per_class":
// [{"class", "IoU", "Acc"}], and the settings}; <run>/seg_eval.csv "class,IoU,Acc", one row per
// class, then "mean,<mIoU>,<mAcc>" and "all pixels,,<aAcc>"; percentages with 2 decimals, NaN
// (a class absent from labels and predictions) written as "nan" (CSV) / null (JSON).
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "data/metrics/segmentation.h"
#include "models/seg/upernet.h"
#include "train/config/train_config.h"
#include "train/distributed/communicator.h"

namespace rv::train::seg {

struct SegEvalSettings {
  std::string mode = "whole";       // whole | slide
  int64_t crop = 512, stride = 341;  // slide window and step
  std::vector<double> scales;       // [] = single scale
  bool flip = false;
  int64_t max_images = 0;           // 0 = all (tests and quick looks)
  std::string pred_dir;             // "": none; else the prediction PNGs (seg_predictions.h) go there
  // From the config's seg.* section.
  static SegEvalSettings from_config(const config::TrainConfig& cfg);
};

struct SegEvalResult {
  data::SegAreas areas;
  data::SegMetrics metrics;
  std::vector<std::string> class_names;
  int64_t images = 0;
  double seconds = 0.0;
  double miou() const { return 100.0 * metrics.miou; }  // percent, as mmseg prints
  double macc() const { return 100.0 * metrics.macc; }
  double aacc() const { return 100.0 * metrics.aacc; }
};

// The model's training mode is restored afterwards.
// With `comm` of W > 1 ranks (collective: every rank calls it with the same arguments), rank r
// runs images r, r + W, r + 2W, ... and the per-class areas are summed over the ranks (in
// integers, so the metrics are exactly the one-process ones: every image counted once, none
// padded); with pred_dir each rank writes the PNGs of its own images (distinct files).
SegEvalResult evaluate_segmentation(models::seg::UperNet& net, const config::TrainConfig& cfg,
                                    const SegEvalSettings& settings, dist::Communicator* comm = nullptr);

// The per-class table and the overall line, as mmseg's log prints them.
std::string format_seg_table(const SegEvalResult& r, const std::string& title);

// Writes <run_dir>/<stem>.json and <stem>.csv; `info` (model, checkpoint, ...) goes into the JSON.
void write_seg_eval_files(const std::string& run_dir, const SegEvalResult& r, const SegEvalSettings& s,
                          const nlohmann::json& info, const std::string& stem = "seg_eval");

}  // namespace rv::train::seg
