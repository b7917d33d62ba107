// jsonl_log.h: `log.jsonl`, one JSON object per line, every scalar the run logs (TensorBoard
// keeps only a sample of 1000 points per tag by default; this file keeps them all).
//
//   runlog::JsonlLog log(run_dir + "/log.jsonl");                       // a new run
//   runlog::JsonlLog log(run_dir + "/log.jsonl", /*resume_after_step=*/S); // resumed after step S
//   log.write({{"kind", "train"}, {"step", 120}, {"epoch", 0}, {"loss", 2.31}, {"lr", 1e-3}});
//
// Rules (docs/formats.md):
// - Every record is an object with an integer "step"; it is written with one write() call as
//   one line, so each line is on disk (in the page cache) as soon as write() returns.
// - Numbers print so they read back to the same double (shortest round-trip form).
// - JSON has no NaN or Infinity: a non-finite number is written as null, and the record gets
//   "nonfinite": {"<key>": "nan" | "inf" | "-inf"} (nested keys joined with '.'), so a
//   diverged loss is visible instead of silently missing.
// - Resume: the file is cut to the records with step <= S (the checkpoint's step) before the
//   new run appends, so it reads as one clean run (the crashed run's later lines would
//   otherwise repeat steps). A half-written last line is dropped too. The cut is an atomic
//   rewrite (temp file + rename), so a crash during it leaves the old file.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "train/log/append_file.h"

namespace rv::runlog {

class JsonlLog {
 public:
  // Without resume_after_step an existing file is replaced (a fresh run starts a fresh log).
  explicit JsonlLog(const std::string& path, std::optional<int64_t> resume_after_step = std::nullopt);

  void write(nlohmann::json record);  // throws std::invalid_argument if not an object with an integer "step"
  void close() { file_.close(); }     // fsync + close (the destructor does it too)
  const std::string& path() const { return file_.path(); }

 private:
  AppendFile file_;
};

// Non-finite numbers -> null plus the "nonfinite" field (see above). Exposed for tests.
nlohmann::json json_safe_record(nlohmann::json record);

struct JsonlCut {
  int64_t kept = 0, dropped = 0;  // complete records kept / removed; a partial last line is not counted
  bool partial_tail = false;
};
// Keeps the records of `path` with step <= last_step (see "Resume"). A missing file is fine
// (nothing kept). A complete line that is not a JSON object with an integer step throws,
// naming the file and line: the log is not ours, and we refuse to cut it.
JsonlCut cut_jsonl_after_step(const std::string& path, int64_t last_step);

}  // namespace rv::runlog
