// bench_model.h: `ropevit bench model NAME`: a whole model's forward and training step, timed.
// NAME = upernet_<backbone> times the segmenter instead (bench_seg_model.h).
#pragma once
#include <string>

#include <nlohmann/json.hpp>

namespace rv::bench {

// argv[0] is "model". See the usage text in bench_model.cpp.
int bench_model(int argc, char** argv);

// Shared by the classifier's and the segmenter's bench (bench_model.cpp, bench_seg_model.cpp).
// `s` in single quotes for /bin/sh.
std::string shell_quote(const std::string& s);
// A JSON file (`what` names the option in errors).
nlohmann::json read_json_file(const std::string& path, const char* what);
// PyTorch's entry for `key` in tools/bench_torch_models.py's JSON, or null (with a note on
// stderr) when the file has none.
nlohmann::json torch_model_entry(const nlohmann::json& j, const std::string& key, const std::string& path);

}  // namespace rv::bench
