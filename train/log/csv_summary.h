// csv_summary.h: `summary.csv`, one row per epoch, as timm writes it (epoch, train_loss,
// eval_top1, ..., lr), for spreadsheets and pandas.
//
//   runlog::SummaryCsv csv(run_dir + "/summary.csv");                  // a new run
//   runlog::SummaryCsv csv(run_dir + "/summary.csv", /*keep_through=*/E); // resumed: rows with epoch <= E stay
//   csv.write_row({{"epoch", 3}, {"train_loss", 2.1}, {"eval_top1", 61.5}, {"lr", 4e-4}});
//
// Rules (docs/formats.md):
// - The first column is the key (the epoch): an integer, used by the resume cut.
// - The header is written once, with the columns of the first row, in its order. A later row
//   may leave a column out (empty cell). A later row with a NEW column is handled, not refused:
//   the column is appended to the header and the file is rewritten atomically (temp file +
//   rename; earlier rows get an empty cell), so the file always has one consistent header.
// - Cells: integers as integers, doubles in shortest round-trip form, non-finite as nan / inf /
//   -inf (what pandas and spreadsheets read), strings quoted as RFC 4180 when they hold a comma,
//   a quote, a line break or edge spaces (quotes doubled), booleans as true / false, null empty.
// - Resume: rows whose key is > keep_through are dropped (and a half-written last row), the
//   header is read back from the file and never written twice.
// - Each row is one write() call (see append_file.h); lines end with "\r\n" as RFC 4180 says.
#pragma once
#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "train/log/append_file.h"

namespace rv::runlog {

class SummaryCsv {
 public:
  explicit SummaryCsv(const std::string& path, std::optional<int64_t> keep_through = std::nullopt);

  // `row` is an ordered object (key order = column order on the first row). Throws
  // std::invalid_argument if it is not an object, its key column is missing or not an integer,
  // or a cell is an array/object.
  void write_row(const nlohmann::ordered_json& row);
  void close() { file_.close(); }
  const std::vector<std::string>& columns() const { return columns_; }

 private:
  void rewrite(const std::vector<std::vector<std::string>>& rows);
  std::string path_;
  std::vector<std::string> columns_;
  std::vector<std::vector<std::string>> rows_;  // cells as text, kept for a header rewrite (one per epoch: small)
  AppendFile file_;
};

// RFC 4180 pieces, exposed for tests and readers.
std::string csv_cell(const nlohmann::ordered_json& value);        // one value as cell text (unquoted)
std::string csv_quote(const std::string& cell);                   // quoted only if needed
std::string csv_line(const std::vector<std::string>& cells);      // quoted cells, comma-joined, "\r\n"
struct CsvTable {
  std::vector<std::vector<std::string>> rows;  // header first; cells unquoted
  bool partial_tail = false;                   // the text ends inside a row (no final line break)
};
CsvTable parse_csv(const std::string& text);  // throws std::runtime_error on a malformed quote

}  // namespace rv::runlog
