// coco_bbox.cpp: COCOeval's evaluate() + accumulate() + summarize() for boxes (rules in
// coco_bbox.h). The structure follows pycocotools so the two can be read side by side:
//   evaluate_pair  = evaluateImg for one (image, category) and every area range at once
//                    (the IoU matrix is computed once per pair, as computeIoU does);
//   accumulate     = the precision / recall tables per (threshold, category, area, maxDets);
//   the 12 numbers = summarize's means over the entries that are not -1.
// Floating-point details that decide ties are kept exactly: the IoU formula's order of
// operations (maskApi.c bbIou), numpy's linspace values for the thresholds and recall points,
// and stable sorts by score.
#include "data/metrics/coco_bbox.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <numeric>
#include <stdexcept>

namespace rv::data {
namespace {

constexpr int kT = 10;   // IoU thresholds
constexpr int kR = 101;  // recall points
constexpr int kA = 4;    // area ranges: all, small, medium, large
constexpr int kM = 3;    // maxDets: 1, 10, 100
constexpr int kMaxDets[kM] = {1, 10, 100};
constexpr double kAreaRange[kA][2] = {{0, 1e10}, {0, 32.0 * 32}, {32.0 * 32, 96.0 * 96}, {96.0 * 96, 1e10}};

// np.linspace(.5, .95, 10) and np.linspace(0, 1, 101): start + i * step, the last one exact.
double iou_threshold(int t) { return t == kT - 1 ? 0.95 : 0.5 + t * ((0.95 - 0.5) / 9); }
double recall_point(int r) { return r == kR - 1 ? 1.0 : r * (1.0 / 100); }

// maskApi.c bbIou, operation for operation.
double coco_box_iou(const std::array<double, 4>& d, const std::array<double, 4>& g, bool crowd) {
  const double da = d[2] * d[3], ga = g[2] * g[3];
  const double w = std::fmin(d[2] + d[0], g[2] + g[0]) - std::fmax(d[0], g[0]);
  if (w <= 0) return 0;
  const double h = std::fmin(d[3] + d[1], g[3] + g[1]) - std::fmax(d[1], g[1]);
  if (h <= 0) return 0;
  const double i = w * h, u = crowd ? da : da + ga - i;
  return i / u;
}

// evaluateImg's result for one (image, category, area range): detections in score order.
struct PairEval {
  std::vector<double> scores;             // (D,)
  std::vector<uint8_t> matched, ignored;  // (kT, D), row-major
  int64_t num_gt_kept = 0;                // ground truth not ignored in this area range
};

bool outside(double area, int a) { return area < kAreaRange[a][0] || area > kAreaRange[a][1]; }

// Matches one (image, category) pair for every area range. gts and dets are in input order.
void evaluate_pair(const std::vector<const CocoGroundTruth*>& gts, std::vector<const CocoDetection*> dets,
                   bool use_ignore_field, PairEval out[kA]) {
  std::stable_sort(dets.begin(), dets.end(),
                   [](const CocoDetection* a, const CocoDetection* b) { return a->score > b->score; });
  if (dets.size() > size_t(kMaxDets[kM - 1])) dets.resize(size_t(kMaxDets[kM - 1]));
  const size_t G = gts.size(), D = dets.size();
  std::vector<double> iou(D * G);  // (D, G), ground truth in input order
  for (size_t d = 0; d < D; ++d)
    for (size_t g = 0; g < G; ++g) iou[d * G + g] = coco_box_iou(dets[d]->bbox, gts[g]->bbox, gts[g]->iscrowd);

  std::vector<size_t> order(G);
  std::vector<uint8_t> gt_ignored(G), gt_taken(G);
  for (int a = 0; a < kA; ++a) {
    PairEval& e = out[a];
    e.scores.resize(D);
    for (size_t d = 0; d < D; ++d) e.scores[d] = dets[d]->score;
    e.matched.assign(kT * D, 0);
    e.ignored.assign(kT * D, 0);
    // Ignored ground truth last, stable (np.argsort(kind='mergesort') of the 0/1 flags).
    std::vector<uint8_t> flag(G);
    for (size_t g = 0; g < G; ++g)
      flag[g] = gts[g]->iscrowd || (use_ignore_field && gts[g]->ignore) || outside(gts[g]->area, a);
    std::iota(order.begin(), order.end(), size_t(0));
    std::stable_sort(order.begin(), order.end(), [&](size_t x, size_t y) { return flag[x] < flag[y]; });
    e.num_gt_kept = 0;
    for (size_t j = 0; j < G; ++j) {
      gt_ignored[j] = flag[order[j]];
      e.num_gt_kept += !gt_ignored[j];
    }
    if (D == 0 || G == 0) {
      // No IoUs: nothing matches (pycocotools skips the loop on an empty IoU matrix).
    } else {
      for (int t = 0; t < kT; ++t) {
        std::fill(gt_taken.begin(), gt_taken.end(), 0);
        for (size_t d = 0; d < D; ++d) {
          double best = std::min(iou_threshold(t), 1 - 1e-10);
          ptrdiff_t m = -1;
          for (size_t j = 0; j < G; ++j) {
            const size_t g = order[j];
            if (gt_taken[j] && !gts[g]->iscrowd) continue;            // taken, and not a crowd
            if (m > -1 && !gt_ignored[size_t(m)] && gt_ignored[j]) break;  // kept match; rest ignored
            if (iou[d * G + g] < best) continue;
            best = iou[d * G + g];  // ">=": a later ground truth of equal IoU wins
            m = ptrdiff_t(j);
          }
          if (m == -1) continue;
          e.ignored[size_t(t) * D + d] = gt_ignored[size_t(m)];
          e.matched[size_t(t) * D + d] = 1;
          gt_taken[size_t(m)] = 1;
        }
      }
    }
    // Unmatched detections whose own box area is outside the range are ignored.
    for (size_t d = 0; d < D; ++d) {
      const double area = dets[d]->bbox[2] * dets[d]->bbox[3];
      if (!outside(area, a)) continue;
      for (int t = 0; t < kT; ++t)
        if (!e.matched[size_t(t) * D + d]) e.ignored[size_t(t) * D + d] = 1;
    }
  }
}

void check_box(const std::array<double, 4>& b, const std::string& what) {
  for (double v : b)
    if (!std::isfinite(v)) throw std::invalid_argument("coco_evaluate_bbox: " + what + " has a non-finite bbox value");
  if (b[2] < 0 || b[3] < 0)
    throw std::invalid_argument("coco_evaluate_bbox: " + what + " has a negative bbox width or height");
}

std::map<int64_t, size_t> index_ids(std::vector<int64_t>& ids, const char* what) {
  std::sort(ids.begin(), ids.end());
  std::map<int64_t, size_t> index;
  for (size_t i = 0; i < ids.size(); ++i)
    if (!index.emplace(ids[i], i).second)
      throw std::invalid_argument(std::string("coco_evaluate_bbox: ") + what + " id " + std::to_string(ids[i]) +
                                  " is listed twice");
  return index;
}

}  // namespace

const std::array<const char*, 12> CocoBboxResult::kNames = {"AP",    "AP50", "AP75", "APs", "APm", "APl",
                                                             "AR1",   "AR10", "AR100", "ARs", "ARm", "ARl"};

std::string CocoBboxResult::summary() const {
  static const char* kLines[12] = {
      "Average Precision  (AP) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
      "Average Precision  (AP) @[ IoU=0.50      | area=   all | maxDets=100 ]",
      "Average Precision  (AP) @[ IoU=0.75      | area=   all | maxDets=100 ]",
      "Average Precision  (AP) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
      "Average Precision  (AP) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
      "Average Precision  (AP) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]",
      "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=  1 ]",
      "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets= 10 ]",
      "Average Recall     (AR) @[ IoU=0.50:0.95 | area=   all | maxDets=100 ]",
      "Average Recall     (AR) @[ IoU=0.50:0.95 | area= small | maxDets=100 ]",
      "Average Recall     (AR) @[ IoU=0.50:0.95 | area=medium | maxDets=100 ]",
      "Average Recall     (AR) @[ IoU=0.50:0.95 | area= large | maxDets=100 ]"};
  std::string s;
  char buf[128];
  for (int i = 0; i < 12; ++i) {
    std::snprintf(buf, sizeof buf, " %s = %.3f\n", kLines[i], stats[size_t(i)]);
    s += buf;
  }
  return s;
}

CocoBboxResult coco_evaluate_bbox(const std::vector<int64_t>& image_ids_in, const std::vector<int64_t>& category_ids_in,
                                  const std::vector<CocoGroundTruth>& ground_truth,
                                  const std::vector<CocoDetection>& detections, const CocoEvalOptions& options) {
  // ---- validate and index ---------------------------------------------------------------------
  std::vector<int64_t> image_ids = image_ids_in, category_ids = category_ids_in;
  const std::map<int64_t, size_t> image_index = index_ids(image_ids, "image");
  const std::map<int64_t, size_t> category_index = index_ids(category_ids, "category");
  const size_t I = image_ids.size(), K = category_ids.size();
  auto locate = [&](int64_t image_id, int64_t category_id, const std::string& what) {
    auto im = image_index.find(image_id);
    if (im == image_index.end())
      throw std::invalid_argument("coco_evaluate_bbox: " + what + " has image_id " + std::to_string(image_id) +
                                  ", which is not among the " + std::to_string(I) + " images");
    auto ca = category_index.find(category_id);
    if (ca == category_index.end())
      throw std::invalid_argument("coco_evaluate_bbox: " + what + " has category_id " + std::to_string(category_id) +
                                  ", which is not among the " + std::to_string(K) +
                                  " categories (are labels mapped back to the data set's category ids?)");
    return ca->second * I + im->second;  // pair index, category-major
  };
  // Ground truth and detections of each (category, image) pair, in input order.
  std::map<size_t, std::vector<const CocoGroundTruth*>> gt_of;
  std::map<size_t, std::vector<const CocoDetection*>> det_of;
  for (size_t n = 0; n < ground_truth.size(); ++n) {
    const CocoGroundTruth& g = ground_truth[n];
    const std::string what = "ground truth " + std::to_string(n);
    check_box(g.bbox, what);
    if (!(g.area >= 0)) throw std::invalid_argument("coco_evaluate_bbox: " + what + " has a negative or NaN area");
    gt_of[locate(g.image_id, g.category_id, what)].push_back(&g);
  }
  for (size_t n = 0; n < detections.size(); ++n) {
    const CocoDetection& d = detections[n];
    const std::string what = "detection " + std::to_string(n);
    check_box(d.bbox, what);
    if (std::isnan(d.score)) throw std::invalid_argument("coco_evaluate_bbox: " + what + " has a NaN score");
    det_of[locate(d.image_id, d.category_id, what)].push_back(&d);
  }

  // ---- evaluate each pair that has ground truth or detections ---------------------------------
  // evals[k * kA + a] lists the evaluated images of category k in image-id order.
  std::vector<std::vector<PairEval>> evals(K * kA);
  {
    std::vector<size_t> pairs;
    for (const auto& [p, v] : gt_of) pairs.push_back(p);
    for (const auto& [p, v] : det_of) pairs.push_back(p);
    std::sort(pairs.begin(), pairs.end());
    pairs.erase(std::unique(pairs.begin(), pairs.end()), pairs.end());  // category-major, then image order
    static const std::vector<const CocoGroundTruth*> kNoGt;
    static const std::vector<const CocoDetection*> kNoDet;
    for (size_t p : pairs) {
      auto gi = gt_of.find(p);
      auto di = det_of.find(p);
      PairEval e[kA];
      evaluate_pair(gi == gt_of.end() ? kNoGt : gi->second, di == det_of.end() ? kNoDet : di->second,
                    options.use_ignore_field, e);
      const size_t k = p / I;
      for (int a = 0; a < kA; ++a) evals[k * kA + size_t(a)].push_back(std::move(e[a]));
    }
  }

  // ---- accumulate: precision (kT, kR, K, kA, kM) and recall (kT, K, kA, kM), -1 when absent ----
  std::vector<double> precision(size_t(kT) * kR * K * kA * kM, -1.0), recall(size_t(kT) * K * kA * kM, -1.0);
  auto P = [&](int t, int r, size_t k, int a, int m) -> double& {
    return precision[(((size_t(t) * kR + size_t(r)) * K + k) * kA + size_t(a)) * kM + size_t(m)];
  };
  auto Rc = [&](int t, size_t k, int a, int m) -> double& {
    return recall[((size_t(t) * K + k) * kA + size_t(a)) * kM + size_t(m)];
  };
  const double eps = std::nextafter(1.0, 2.0) - 1.0;  // np.spacing(1) = 2^-52
  for (size_t k = 0; k < K; ++k) {
    for (int a = 0; a < kA; ++a) {
      const std::vector<PairEval>& E = evals[k * kA + size_t(a)];
      if (E.empty()) continue;
      int64_t npig = 0;
      for (const PairEval& e : E) npig += e.num_gt_kept;
      if (npig == 0) continue;
      for (int m = 0; m < kM; ++m) {
        // The first maxDet detections of each image, concatenated in image order, then
        // stably sorted by score: (image, position) of each in the global order.
        struct Ref { double score; uint32_t e; uint32_t d; };
        std::vector<Ref> all;
        for (size_t i = 0; i < E.size(); ++i) {
          const size_t n = std::min(E[i].scores.size(), size_t(kMaxDets[m]));
          for (size_t d = 0; d < n; ++d) all.push_back({E[i].scores[d], uint32_t(i), uint32_t(d)});
        }
        std::stable_sort(all.begin(), all.end(), [](const Ref& x, const Ref& y) { return x.score > y.score; });
        const size_t nd = all.size();
        std::vector<double> rc(nd), pr(nd);
        for (int t = 0; t < kT; ++t) {
          // Cumulative TP and FP over every position; ignored detections add to neither but
          // keep their position (as numpy's cumsum over the masked arrays does).
          double tp = 0, fp = 0;
          for (size_t j = 0; j < nd; ++j) {
            const PairEval& e = E[all[j].e];
            const size_t at = size_t(t) * e.scores.size() + all[j].d;
            if (!e.ignored[at]) (e.matched[at] ? tp : fp) += 1;
            rc[j] = tp / double(npig);
            pr[j] = tp / (fp + tp + eps);
          }
          Rc(t, k, a, m) = nd ? rc[nd - 1] : 0;
          for (size_t j = nd; j-- > 1;)  // precision envelope: non-increasing from the right
            if (pr[j] > pr[j - 1]) pr[j - 1] = pr[j];
          // For each recall point, the first position whose recall reaches it
          // (np.searchsorted(rc, recThrs, side='left')); 0 past the last position.
          size_t j = 0;
          for (int r = 0; r < kR; ++r) {
            const double want = recall_point(r);
            while (j < nd && rc[j] < want) ++j;
            P(t, r, k, a, m) = j < nd ? pr[j] : 0.0;
          }
        }
      }
    }
  }

  // ---- summarize --------------------------------------------------------------------------
  // Mean over the entries that are not -1 (pycocotools: np.mean(s[s > -1])), or -1.
  auto mean_ap = [&](int t_lo, int t_hi, int a, int m) {
    double s = 0;
    int64_t n = 0;
    for (int t = t_lo; t < t_hi; ++t)
      for (int r = 0; r < kR; ++r)
        for (size_t k = 0; k < K; ++k) {
          double v = P(t, r, k, a, m);
          if (v > -1) s += v, ++n;
        }
    return n ? s / double(n) : -1.0;
  };
  auto mean_ar = [&](int a, int m) {
    double s = 0;
    int64_t n = 0;
    for (int t = 0; t < kT; ++t)
      for (size_t k = 0; k < K; ++k) {
        double v = Rc(t, k, a, m);
        if (v > -1) s += v, ++n;
      }
    return n ? s / double(n) : -1.0;
  };
  CocoBboxResult res;
  res.stats = {mean_ap(0, kT, 0, 2), mean_ap(0, 1, 0, 2), mean_ap(5, 6, 0, 2),  // .50 and .75 are thresholds 0 and 5
               mean_ap(0, kT, 1, 2), mean_ap(0, kT, 2, 2), mean_ap(0, kT, 3, 2),
               mean_ar(0, 0),        mean_ar(0, 1),        mean_ar(0, 2),
               mean_ar(1, 2),        mean_ar(2, 2),        mean_ar(3, 2)};
  res.per_category_ap.resize(K);
  for (size_t k = 0; k < K; ++k) {
    double s = 0;
    int64_t n = 0;
    for (int t = 0; t < kT; ++t)
      for (int r = 0; r < kR; ++r) {
        double v = P(t, r, k, 0, 2);
        if (v > -1) s += v, ++n;
      }
    res.per_category_ap[k] = n ? s / double(n) : -1.0;
  }
  // per_category_ap follows the caller's order of category ids, not the sorted one.
  std::vector<double> in_order(K);
  for (size_t k = 0; k < K; ++k) in_order[k] = res.per_category_ap[category_index.at(category_ids_in[k])];
  res.per_category_ap = std::move(in_order);
  return res;
}

}  // namespace rv::data
