// run_dir.cpp: naming the run folder and picking the checkpoint to resume from (see run_dir.h).
#include "train/run_dir.h"

#include <ctime>
#include <filesystem>
#include <stdexcept>

#include "train/checkpoint.h"

namespace rv::train {
namespace fs = std::filesystem;

namespace {

std::string timestamp() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  localtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return buf;
}

// The newest "<stem>-*" run folder under out_dir that holds a valid checkpoint.
std::optional<fs::path> newest_run_with_checkpoint(const fs::path& out_dir, const std::string& stem) {
  if (!fs::is_directory(out_dir)) return std::nullopt;
  std::optional<fs::path> best;
  for (const auto& e : fs::directory_iterator(out_dir)) {
    const std::string name = e.path().filename().string();
    if (!e.is_directory() || name.rfind(stem + "-", 0) != 0) continue;
    if (!find_latest_checkpoint(checkpoints_dir(e.path().string()))) continue;
    if (!best || name > best->filename().string()) best = e.path();  // the timestamp sorts as text
  }
  return best;
}

}  // namespace

std::string checkpoints_dir(const std::string& run_dir) { return (fs::path(run_dir) / "checkpoints").string(); }

RunPlan plan_run(const config::TrainConfig& cfg, const std::string& config_path, const std::string& resume,
                 bool named) {
  const fs::path out_dir = cfg.train.out_dir;
  const std::string stem = fs::path(config_path).stem().string();
  RunPlan plan;
  if (resume.empty() || resume == "auto") {
    if (named && !cfg.train.run_name.empty()) {
      plan.dir = (out_dir / cfg.train.run_name).string();
    } else if (resume == "auto") {
      if (auto found = newest_run_with_checkpoint(out_dir, stem)) plan.dir = found->string();
    }
    if (plan.dir.empty()) plan.dir = (out_dir / (stem + "-" + timestamp())).string();
    if (resume == "auto") {
      std::vector<std::string> skipped;
      plan.resume = find_latest_checkpoint(checkpoints_dir(plan.dir), &skipped);
      for (const auto& s : skipped) plan.note += "skipped invalid checkpoint " + s + "\n";
      plan.note += plan.resume ? "resuming from " + *plan.resume : "--resume auto: no checkpoint in " + plan.dir +
                                                                       ", starting a new run";
    }
    return plan;
  }
  const fs::path p = resume;
  if (fs::is_directory(p)) {
    const std::string ck = fs::is_directory(p / "checkpoints") ? checkpoints_dir(p.string()) : p.string();
    std::vector<std::string> skipped;
    plan.resume = find_latest_checkpoint(ck, &skipped);
    if (!plan.resume) {
      std::string why;
      for (const auto& s : skipped) why += "\n  " + s;
      throw std::runtime_error("--resume " + resume + ": no valid checkpoint in " + ck + why);
    }
    plan.dir = fs::path(ck).filename() == "checkpoints" ? fs::path(ck).parent_path().string() : p.string();
  } else {
    if (!fs::exists(p)) throw std::runtime_error("--resume: '" + resume + "' does not exist");
    plan.resume = resume;
    const fs::path parent = p.parent_path();
    plan.dir = parent.filename() == "checkpoints" ? parent.parent_path().string() : parent.string();
  }
  plan.note = "resuming from " + *plan.resume;
  return plan;
}

}  // namespace rv::train
