// seg_evaluate.cpp: mIoU / mAcc / aAcc of a UperNet over an evaluation split (see seg_evaluate.h).
#include "train/seg/seg_evaluate.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "data/decode_image.h"
#include "engine/autograd.h"
#include "engine/ops/reduce.h"
#include "engine/rng.h"
#include "train/seg/seg_predictions.h"
#include "train/seg/seg_setup.h"

namespace rv::train::seg {
namespace fs = std::filesystem;
using nlohmann::json;

SegEvalSettings SegEvalSettings::from_config(const config::TrainConfig& cfg) {
  SegEvalSettings s;
  s.mode = cfg.seg.mode;
  s.crop = cfg.seg.crop;
  s.stride = cfg.seg.stride;
  s.scales = cfg.seg.scales;
  s.flip = cfg.seg.flip;
  return s;
}

SegEvalResult evaluate_segmentation(models::seg::UperNet& net, const config::TrainConfig& cfg,
                                    const SegEvalSettings& s, dist::Communicator* comm) {
  if (s.mode != "whole" && s.mode != "slide")
    throw std::invalid_argument("evaluate_segmentation: mode must be whole or slide, got '" + s.mode + "'");
  if (s.stride <= 0 || s.crop <= 0 || s.stride > s.crop)
    throw std::invalid_argument("evaluate_segmentation: expected 0 < stride <= crop, got stride " +
                                std::to_string(s.stride) + ", crop " + std::to_string(s.crop));
  const auto t0 = std::chrono::steady_clock::now();
  // One data set per test scale (single scale: ratio 1); all list the same files in one order.
  std::vector<std::shared_ptr<data::SegmentationDataset>> sets;
  for (double r : s.scales.empty() ? std::vector<double>{1.0} : s.scales) sets.push_back(seg_dataset(cfg, false, r));
  const int64_t K = net.config().num_classes;
  if (sets[0]->num_classes() != K)
    throw std::invalid_argument("evaluate_segmentation: the data set has " + std::to_string(sets[0]->num_classes()) +
                                " classes, the model " + std::to_string(K));
  models::seg::SegInferenceOptions opt;
  opt.mode = s.mode;
  opt.crop = {s.crop, s.crop};
  opt.stride = {s.stride, s.stride};
  opt.flip = s.flip;

  // The model's device: each image goes there, the class map comes back (H x W int64) and the
  // per-class areas are counted on the host, as the prediction PNGs are written from it.
  const std::vector<Tensor> params = net.parameters();
  const Device dev = params.empty() ? cpu_device() : params.front().device();
  auto to_model = [&](const Tensor& image) { return image.unsqueeze(0).to(dev); };  // (1, 3, h, w)
  const bool was_training = net.is_training();
  net.train(false);
  autograd::NoGradGuard no_grad;
  SegEvalResult r;
  r.areas = data::SegAreas(K);
  r.class_names = sets[0]->files().class_names();
  int64_t n = sets[0]->size();
  if (s.max_images > 0 && s.max_images < n) n = s.max_images;
  std::optional<SegPredictionWriter> writer;
  if (!s.pred_dir.empty()) writer.emplace(s.pred_dir, r.class_names);
  const int64_t world = comm ? comm->world_size() : 1, rank = comm ? comm->rank() : 0;
  for (int64_t i = rank; i < n; i += world) {  // this rank's share (all of them when alone)
    Generator gen(0, 0);  // the eval pipeline draws nothing
    data::Sample first = sets[0]->get(i, gen);
    const Tensor& label = first.label_map;  // (H, W) u8 at the original size
    opt.out_size = {label.size(0), label.size(1)};
    Tensor pred;  // (1, H, W) i64
    if (sets.size() == 1) {
      pred = net.predict_labels(to_model(first.image), opt);
    } else {
      std::vector<Tensor> scaled = {to_model(first.image)};
      for (size_t k = 1; k < sets.size(); ++k) scaled.push_back(to_model(sets[k]->get(i, gen).image));
      pred = argmax(net.predict_multi_scale(scaled, opt), 1);
    }
    pred = pred.cpu();  // (1, H, W) i64 on the host (itself when it already is)
    r.areas += data::seg_areas(pred.select(0, 0), label, K);
    if (writer) {  // the original file again: the eval sample's image is resized and normalised
      const std::string& path = sets[0]->files().image_path(i);
      writer->write(path, pred.select(0, 0), data::read_image(path));
    }
  }
  net.train(was_training);
  if (world > 1) {  // the areas of every rank's images, summed exactly (int64)
    const size_t k = size_t(K);
    std::vector<int64_t> all(4 * k);
    for (size_t c = 0; c < k; ++c) {
      all[c] = r.areas.intersect[c], all[k + c] = r.areas.union_[c];
      all[2 * k + c] = r.areas.pred[c], all[3 * k + c] = r.areas.label[c];
    }
    comm->all_reduce_sum(all.data(), int64_t(all.size()), DType::i64);
    for (size_t c = 0; c < k; ++c) {
      r.areas.intersect[c] = all[c], r.areas.union_[c] = all[k + c];
      r.areas.pred[c] = all[2 * k + c], r.areas.label[c] = all[3 * k + c];
    }
  }
  r.images = n;
  r.metrics = data::seg_metrics(r.areas);
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return r;
}

namespace {

std::string pct(double v) {
  if (std::isnan(v)) return "nan";
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", 100.0 * v);
  return b;
}

json pct_json(double v) { return std::isnan(v) ? json(nullptr) : json(std::round(10000.0 * v) / 100.0); }

std::string describe(const SegEvalSettings& s) {
  // Appended piece by piece: "slide " + std::to_string(...) trips GCC 12's false -Wrestrict
  // (bug 105329) in its std::string inlining.
  std::string d = "whole";
  if (s.mode == "slide") {
    d = "slide ";
    d += std::to_string(s.crop);
    d += "/";
    d += std::to_string(s.stride);
  }
  if (!s.scales.empty()) {
    d += ", scales";
    for (double r : s.scales) d += " " + json(r).dump();
  }
  if (s.flip) d += ", flip";
  return d;
}

}  // namespace

std::string format_seg_table(const SegEvalResult& r, const std::string& title) {
  std::ostringstream o;
  size_t w = 5;
  for (const auto& c : r.class_names) w = std::max(w, c.size());
  o << title << "\n";
  o << "class" << std::string(w - 5 + 2, ' ') << "   IoU    Acc\n";
  for (size_t c = 0; c < r.class_names.size(); ++c) {
    const std::string iou = pct(r.metrics.iou[c]), acc = pct(r.metrics.acc[c]);
    o << r.class_names[c] << std::string(w - r.class_names[c].size() + 2, ' ') << std::string(6 - std::min<size_t>(6, iou.size()), ' ')
      << iou << " " << std::string(6 - std::min<size_t>(6, acc.size()), ' ') << acc << "\n";
  }
  o << "mIoU " << pct(r.metrics.miou) << "  mAcc " << pct(r.metrics.macc) << "  aAcc " << pct(r.metrics.aacc) << "  ("
    << r.images << " images)\n";
  return o.str();
}

void write_seg_eval_files(const std::string& run_dir, const SegEvalResult& r, const SegEvalSettings& s,
                          const json& info, const std::string& stem) {
  fs::create_directories(run_dir);
  json per_class = json::array();
  for (size_t c = 0; c < r.class_names.size(); ++c)
    per_class.push_back({{"class", r.class_names[c]}, {"IoU", pct_json(r.metrics.iou[c])},
                         {"Acc", pct_json(r.metrics.acc[c])}});
  json j = info;
  j["mIoU"] = pct_json(r.metrics.miou);
  j["mAcc"] = pct_json(r.metrics.macc);
  j["aAcc"] = pct_json(r.metrics.aacc);
  j["images"] = r.images;
  j["mode"] = s.mode;
  j["inference"] = describe(s);
  j["scales"] = s.scales;
  j["flip"] = s.flip;
  if (!s.pred_dir.empty()) j["pred_dir"] = s.pred_dir;
  j["seconds"] = r.seconds;
  j["per_class"] = per_class;
  const fs::path d = run_dir;
  {
    std::ofstream out(d / (stem + ".json"));
    out << j.dump(2) << "\n";
    if (!out) throw std::runtime_error("cannot write " + (d / (stem + ".json")).string());
  }
  std::ofstream csv(d / (stem + ".csv"));
  csv << "class,IoU,Acc\n";
  for (size_t c = 0; c < r.class_names.size(); ++c) {
    std::string name = r.class_names[c];
    if (name.find_first_of(",\"") != std::string::npos) {  // CSV quoting ("bed " keeps its space)
      std::string q = "\"";
      for (char ch : name) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
      name = q + "\"";
    }
    csv << name << "," << pct(r.metrics.iou[c]) << "," << pct(r.metrics.acc[c]) << "\n";
  }
  csv << "mean," << pct(r.metrics.miou) << "," << pct(r.metrics.macc) << "\n";  // mIoU, mAcc
  csv << "all pixels,," << pct(r.metrics.aacc) << "\n";                            // aAcc
  if (!csv) throw std::runtime_error("cannot write " + (d / (stem + ".csv")).string());
}

}  // namespace rv::train::seg
