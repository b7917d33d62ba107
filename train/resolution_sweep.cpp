// resolution_sweep.cpp: evaluation across input sizes and its files (see resolution_sweep.h).
#include "train/resolution_sweep.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "data/loader.h"
#include "engine/io/atomic_file.h"
#include "models/registry.h"
#include "train/checkpoint.h"
#include "train/datasets.h"
#include "train/log/csv_summary.h"

namespace rv::train {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

void write_text(const std::string& path, const std::string& text) {
  AtomicFileWriter f(path);
  f.write(text.data(), text.size());
  f.commit();
}

}  // namespace

std::vector<ResolutionRow> evaluate_resolutions(models::Model& model, const config::TrainConfig& cfg,
                                                const std::vector<int64_t>& sizes,
                                                const std::vector<ResolutionRow>& known) {
  const models::ModelConfig& mc = model.config();
  std::vector<ResolutionRow> rows;
  for (int64_t size : sizes) {
    const auto same =
        std::find_if(known.begin(), known.end(), [&](const ResolutionRow& r) { return r.img_size == size; });
    if (same != known.end()) {
      rows.push_back(*same);
      continue;
    }
    models::Model* m = &model;
    std::shared_ptr<models::Model> resized;
    if (mc.arch == "vit") {
      if (size % mc.patch_size != 0)
        throw std::invalid_argument("eval: image size " + std::to_string(size) + " is not a multiple of the patch (" +
                                    std::to_string(mc.patch_size) + ")");
    } else if (size != mc.img_h || size != mc.img_w) {
      models::ModelConfig c = mc;
      c.img_h = c.img_w = size;
      resized = models::create_model(c);
      if (std::string why = state_mismatch(model.state_dict(), *resized); !why.empty())
        throw std::invalid_argument("eval: the " + mc.arch + " model built for " + std::to_string(size) +
                                    " px does not take these weights:" + why);
      resized->load_state_dict(model.state_dict());
      m = resized.get();
    }
    data::Loader loader(make_eval_dataset(cfg, size), {.batch_size = cfg.eval.batch_size,
                                                       .shuffle = false,
                                                       .workers = int(cfg.data.workers),
                                                       .seed = uint64_t(cfg.train.seed)});
    rows.push_back({size, evaluate(*m, loader)});
  }
  return rows;
}

std::string format_resolution_table(const std::vector<ResolutionRow>& rows, const std::string& title) {
  std::string out = title + "\n  img_size    top1    top5    loss  samples\n";
  char line[128];
  for (const auto& r : rows) {
    std::snprintf(line, sizeof line, "  %8lld  %6.2f  %6.2f  %6.4f  %7lld\n", (long long)r.img_size, r.result.top1(),
                  r.result.top5(), r.result.loss(), (long long)r.result.counts.total);
    out += line;
  }
  return out;
}

void write_resolution_files(const std::string& run_dir, const std::vector<ResolutionRow>& rows, const json& info) {
  fs::create_directories(run_dir);
  std::string csv = runlog::csv_line({"img_size", "top1", "top5", "loss", "samples"});
  json j = info;
  j["rows"] = json::array();
  for (const auto& r : rows) {
    const json row = {{"img_size", r.img_size},
                      {"top1", r.result.top1()},
                      {"top5", r.result.top5()},
                      {"loss", r.result.loss()},
                      {"samples", r.result.counts.total},
                      {"top1_correct", r.result.counts.top1},
                      {"top5_correct", r.result.counts.top5}};
    j["rows"].push_back(row);
    using OJ = nlohmann::ordered_json;
    csv += runlog::csv_line({runlog::csv_cell(OJ(r.img_size)), runlog::csv_cell(OJ(r.result.top1())),
                             runlog::csv_cell(OJ(r.result.top5())), runlog::csv_cell(OJ(r.result.loss())),
                             runlog::csv_cell(OJ(r.result.counts.total))});
  }
  write_text((fs::path(run_dir) / "eval_resolutions.csv").string(), csv);
  write_text((fs::path(run_dir) / "eval_resolutions.json").string(), j.dump(2) + "\n");
}

std::vector<std::pair<int64_t, double>> read_resolution_file(const std::string& run_dir) {
  const std::string path = (fs::path(run_dir) / "eval_resolutions.json").string();
  std::ifstream in(path);
  if (!in) throw std::runtime_error("'" + path + "' not found: run `ropevit eval " + run_dir + "` first");
  std::vector<std::pair<int64_t, double>> out;
  try {
    const json j = json::parse(in);
    for (const auto& r : j.at("rows")) out.emplace_back(r.at("img_size").get<int64_t>(), r.at("top1").get<double>());
  } catch (const json::exception& e) {
    throw std::runtime_error("'" + path + "' is not an eval_resolutions file: " + e.what());
  }
  return out;
}

}  // namespace rv::train
