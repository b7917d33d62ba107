// log.jsonl and summary.csv: one record per line, numbers that round-trip, NaN/Inf as null plus
// a flag, RFC 4180 quoting (against a parser and hand-written expected bytes), the header
// written once, a new column handled, and the resume cut (later records and a half-written
// last line dropped, nothing duplicated).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>

#include "train/log/csv_summary.h"
#include "train/log/jsonl_log.h"

using namespace rv::runlog;
using nlohmann::json;
using nlohmann::ordered_json;
namespace fs = std::filesystem;

namespace {

std::string read_text(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void append_text(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary | std::ios::app) << s; }

std::vector<json> read_jsonl(const fs::path& p) {
  std::vector<json> out;
  std::istringstream in(read_text(p));
  std::string line;
  while (std::getline(in, line)) out.push_back(json::parse(line));
  return out;
}

struct TmpDir {
  fs::path path;
  explicit TmpDir(const std::string& name)
      : path(fs::temp_directory_path() / ("ropevit_records_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TmpDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

TEST_CASE("jsonl: one object per line, flushed per record, doubles round-trip exactly") {
  TmpDir dir("jsonl");
  fs::path p = dir.path / "log.jsonl";
  std::mt19937_64 rng(3);
  std::vector<double> values;
  JsonlLog log(p.string());
  for (int i = 0; i < 200; ++i) {
    uint64_t bits = rng();
    double d;
    std::memcpy(&d, &bits, 8);
    if (!std::isfinite(d)) d = 1.0 / 3.0;
    values.push_back(d);
    log.write({{"kind", "train"}, {"step", i}, {"v", d}});
    // no close, no flush call: the line is in the file already
    if (i == 0) CHECK(read_text(p).ends_with("\n"));
  }
  auto lines = read_jsonl(p);
  REQUIRE(lines.size() == 200);
  for (int i = 0; i < 200; ++i) {
    CHECK(lines[size_t(i)]["step"].get<int64_t>() == i);
    CHECK(lines[size_t(i)]["v"].get<double>() == values[size_t(i)]);  // bit-exact, not approximately
  }
  // shortest form: 0.1 prints as 0.1, not 0.10000000000000001
  JsonlLog small((dir.path / "s.jsonl").string());
  small.write({{"step", 1}, {"lr", 0.1}, {"n", 3}});
  CHECK(read_text(dir.path / "s.jsonl") == "{\"lr\":0.1,\"n\":3,\"step\":1}\n");
}

TEST_CASE("jsonl: NaN and Inf become null plus a 'nonfinite' flag; bad records are refused") {
  json r = json_safe_record({{"step", 5},
                             {"loss", std::numeric_limits<double>::quiet_NaN()},
                             {"grad", {{"norm", std::numeric_limits<double>::infinity()}}},
                             {"list", {1.0, -std::numeric_limits<double>::infinity()}},
                             {"ok", 1.5}});
  CHECK(r["loss"].is_null());
  CHECK(r["grad"]["norm"].is_null());
  CHECK(r["list"][1].is_null());
  CHECK(r["ok"] == 1.5);
  CHECK(r["nonfinite"] == json({{"loss", "nan"}, {"grad.norm", "inf"}, {"list.1", "-inf"}}));
  CHECK_FALSE(json_safe_record({{"step", 1}, {"a", 2.0}}).contains("nonfinite"));

  TmpDir dir("bad");
  JsonlLog log((dir.path / "log.jsonl").string());
  CHECK_THROWS_WITH_AS(log.write({{"loss", 1.0}}), doctest::Contains("integer \"step\""), std::invalid_argument);
  CHECK_THROWS_WITH_AS(log.write({{"step", 1.5}}), doctest::Contains("integer \"step\""), std::invalid_argument);
  CHECK_THROWS_AS(log.write(json::array({1, 2})), std::invalid_argument);
  log.write({{"step", 2}, {"loss", std::nan("")}});
  CHECK(read_text(dir.path / "log.jsonl") == "{\"loss\":null,\"nonfinite\":{\"loss\":\"nan\"},\"step\":2}\n");
}

TEST_CASE("jsonl: resume keeps steps <= the checkpoint's, drops later lines and a half-written tail") {
  TmpDir dir("resume");
  fs::path p = dir.path / "log.jsonl";
  {
    JsonlLog log(p.string());
    for (int s = 1; s <= 10; ++s) log.write({{"step", s}, {"loss", 10.0 - s}});
    log.write({{"step", 10}, {"kind", "eval"}, {"top1", 0.5}});
  }
  append_text(p, "{\"step\":11,\"lo");  // the crashed run died mid-line
  {
    JsonlLog log(p.string(), /*resume_after_step=*/6);
    for (int s = 7; s <= 8; ++s) log.write({{"step", s}, {"loss", 100.0 + s}});
  }
  auto lines = read_jsonl(p);
  REQUIRE(lines.size() == 8);
  for (int s = 1; s <= 8; ++s) {
    CHECK(lines[size_t(s - 1)]["step"] == s);
    CHECK(lines[size_t(s - 1)]["loss"].get<double>() == (s <= 6 ? 10.0 - s : 100.0 + s));
  }
  // the cut itself: counts, and a no-op when nothing is later
  CHECK(cut_jsonl_after_step(p.string(), 8).dropped == 0);
  JsonlCut c = cut_jsonl_after_step(p.string(), 3);
  CHECK(c.kept == 3);
  CHECK(c.dropped == 5);
  CHECK_FALSE(c.partial_tail);
  CHECK(cut_jsonl_after_step((dir.path / "missing.jsonl").string(), 3).kept == 0);
  // a foreign line is refused, not silently cut
  append_text(p, "not json\n");
  CHECK_THROWS_WITH_AS(cut_jsonl_after_step(p.string(), 1), doctest::Contains("line 4"), std::runtime_error);
  // a fresh run replaces the file
  JsonlLog fresh(p.string());
  fresh.close();
  CHECK(read_text(p).empty());
}

TEST_CASE("csv: RFC 4180 quoting, cell formats, and the parser reads back what the writer wrote") {
  CHECK(csv_quote("plain") == "plain");
  CHECK(csv_quote("a,b") == "\"a,b\"");
  CHECK(csv_quote("say \"hi\"") == "\"say \"\"hi\"\"\"");
  CHECK(csv_quote("two\nlines") == "\"two\nlines\"");
  CHECK(csv_quote(" edge") == "\" edge\"");
  CHECK(csv_quote("") == "");
  CHECK(csv_cell(3) == "3");
  CHECK(csv_cell(-2.5e-7) == "-2.5e-07");
  CHECK(csv_cell(0.1) == "0.1");
  CHECK(csv_cell(std::nan("")) == "nan");
  CHECK(csv_cell(-HUGE_VAL) == "-inf");
  CHECK(csv_cell(true) == "true");
  CHECK(csv_cell(nullptr) == "");
  CHECK_THROWS_AS(csv_cell(ordered_json::array({1})), std::invalid_argument);
  CHECK(csv_line({"a", "b,c", ""}) == "a,\"b,c\",\r\n");

  std::vector<std::string> tricky = {"x", "a,b", "q\"uote", "multi\r\nline", " pad ", ""};
  CsvTable t = parse_csv(csv_line(tricky) + csv_line({"1", "2", "3", "4", "5", "6"}));
  REQUIRE(t.rows.size() == 2);
  CHECK(t.rows[0] == tricky);
  CHECK_FALSE(t.partial_tail);
  CHECK(parse_csv("a,b\r\n1,").partial_tail);
  CHECK(parse_csv("a,\"open\r\n").partial_tail);
  CHECK_THROWS_AS(parse_csv("a,b\"c\r\n"), std::runtime_error);
  double d = 0.1 + 0.2;
  CHECK(std::stod(csv_cell(d)) == d);
}

TEST_CASE("csv: header once, columns fixed by the first row, a new column rewrites the header") {
  TmpDir dir("csv");
  fs::path p = dir.path / "summary.csv";
  SummaryCsv csv(p.string());
  csv.write_row({{"epoch", 0}, {"train_loss", 2.5}, {"eval_top1", 10.0}, {"note", "warm, up"}});
  csv.write_row({{"epoch", 1}, {"eval_top1", 20.0}, {"train_loss", 2.0}});  // other order, missing 'note'
  CHECK(read_text(p) ==
        "epoch,train_loss,eval_top1,note\r\n"
        "0,2.5,10,\"warm, up\"\r\n"
        "1,2,20,\r\n");
  csv.write_row({{"epoch", 2}, {"train_loss", 1.5}, {"eval_top1_ema", 31.0}});  // a new column
  CHECK(read_text(p) ==
        "epoch,train_loss,eval_top1,note,eval_top1_ema\r\n"
        "0,2.5,10,\"warm, up\",\r\n"
        "1,2,20,,\r\n"
        "2,1.5,,,31\r\n");
  csv.write_row({{"epoch", 3}, {"train_loss", 1.0}});
  CHECK(read_text(p).ends_with("2,1.5,,,31\r\n3,1,,,\r\n"));
  CHECK_THROWS_WITH_AS(csv.write_row({{"train_loss", 1.0}}), doctest::Contains("integer 'epoch'"), std::invalid_argument);
  CHECK_THROWS_AS(csv.write_row({{"epoch", 1.5}}), std::invalid_argument);
  CHECK_THROWS_AS(csv.write_row(ordered_json::object()), std::invalid_argument);
}

TEST_CASE("csv: resume keeps rows with epoch <= E, never writes the header twice, drops a half row") {
  TmpDir dir("csvresume");
  fs::path p = dir.path / "summary.csv";
  {
    SummaryCsv csv(p.string());
    for (int e = 0; e < 5; ++e) csv.write_row({{"epoch", e}, {"train_loss", 5.0 - e}, {"lr", 0.1}});
  }
  append_text(p, "5,0.");  // crashed mid-row
  {
    SummaryCsv csv(p.string(), /*keep_through=*/2);
    CHECK(csv.columns() == std::vector<std::string>{"epoch", "train_loss", "lr"});
    csv.write_row({{"epoch", 3}, {"train_loss", 9.0}, {"lr", 0.05}});
  }
  CHECK(read_text(p) ==
        "epoch,train_loss,lr\r\n"
        "0,5,0.1\r\n1,4,0.1\r\n2,3,0.1\r\n"
        "3,9,0.05\r\n");
  // resuming a run whose file is missing (crashed before the first epoch ended) starts it
  fs::remove(p);
  SummaryCsv again(p.string(), 0);
  again.write_row({{"epoch", 0}, {"x", 1}});
  CHECK(read_text(p) == "epoch,x\r\n0,1\r\n");
  // a row whose key is not an integer is refused on resume
  append_text(p, "zero,1\r\n");
  CHECK_THROWS_WITH_AS(SummaryCsv(p.string(), 5), doctest::Contains("expected an integer"), std::runtime_error);
}
