// csv_summary.cpp: summary.csv writing, resuming and the RFC 4180 quoting and parsing.
#include "train/log/csv_summary.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "engine/io/atomic_file.h"

namespace rv::runlog {

std::string csv_cell(const nlohmann::ordered_json& v) {
  if (v.is_null()) return "";
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_number_integer()) return v.dump();
  if (v.is_number_float()) {
    double d = v.get<double>();
    if (std::isnan(d)) return "nan";
    if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, d);  // shortest form that reads back exactly
    return std::string(buf, r.ptr);
  }
  if (v.is_string()) return v.get<std::string>();
  throw std::invalid_argument("summary.csv: a cell must be a number, string, bool or null, got " + v.dump());
}

std::string csv_quote(const std::string& cell) {
  bool needs = cell.find_first_of(",\"\r\n") != std::string::npos ||
               (!cell.empty() && (cell.front() == ' ' || cell.back() == ' '));
  if (!needs) return cell;
  std::string q = "\"";
  for (char c : cell) {
    if (c == '"') q += '"';  // a quote inside a quoted cell is doubled
    q += c;
  }
  return q + "\"";
}

std::string csv_line(const std::vector<std::string>& cells) {
  std::string line;
  for (size_t i = 0; i < cells.size(); ++i) {
    if (i) line += ',';
    line += csv_quote(cells[i]);
  }
  return line + "\r\n";
}

CsvTable parse_csv(const std::string& text) {
  CsvTable t;
  std::vector<std::string> row;
  std::string cell;
  bool in_quotes = false, row_open = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    row_open = true;
    if (in_quotes) {
      if (c == '"') {
        if (i + 1 < text.size() && text[i + 1] == '"') cell += '"', ++i;
        else in_quotes = false;
      } else {
        cell += c;
      }
    } else if (c == '"') {
      if (!cell.empty()) throw std::runtime_error("parse_csv: a quote inside an unquoted cell (row " + std::to_string(t.rows.size() + 1) + ")");
      in_quotes = true;
    } else if (c == ',') {
      row.push_back(std::move(cell));
      cell.clear();
    } else if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      row.push_back(std::move(cell));
      cell.clear();
      t.rows.push_back(std::move(row));
      row.clear();
      row_open = false;
    } else {
      cell += c;
    }
  }
  t.partial_tail = row_open;  // text after the last line break (or an open quote): a cut write
  return t;
}

SummaryCsv::SummaryCsv(const std::string& path, std::optional<int64_t> keep_through) : path_(path) {
  if (keep_through && std::filesystem::exists(path)) {
    std::ifstream in(path, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    CsvTable t = parse_csv(ss.str());
    bool changed = t.partial_tail;
    if (!t.rows.empty()) {
      columns_ = t.rows[0];
      for (size_t r = 1; r < t.rows.size(); ++r) {
        const std::string& key = t.rows[r].empty() ? std::string() : t.rows[r][0];
        int64_t k = 0;
        auto res = std::from_chars(key.data(), key.data() + key.size(), k);
        if (res.ec != std::errc() || res.ptr != key.data() + key.size())
          throw std::runtime_error("resume: '" + path + "' row " + std::to_string(r + 1) + " has key '" + key +
                                   "' in column '" + columns_[0] + "', expected an integer");
        if (k <= *keep_through) rows_.push_back(t.rows[r]);
        else changed = true;
      }
    }
    if (changed) rewrite(rows_);
    file_ = AppendFile(path, false);
    return;
  }
  std::error_code ec;
  std::filesystem::remove(path, ec);  // a fresh run: a fresh file
  file_ = AppendFile(path, false);
}

void SummaryCsv::rewrite(const std::vector<std::vector<std::string>>& rows) {
  std::string text = columns_.empty() ? "" : csv_line(columns_);
  for (const auto& r : rows) {
    std::vector<std::string> cells = r;
    cells.resize(columns_.size());  // rows from before a new column get an empty cell
    text += csv_line(cells);
  }
  bool reopen = file_.is_open();
  if (reopen) file_.close();
  AtomicFileWriter w(path_);
  w.write(text.data(), text.size());
  w.commit();
  if (reopen) file_ = AppendFile(path_, false);
}

void SummaryCsv::write_row(const nlohmann::ordered_json& row) {
  if (!row.is_object() || row.empty())
    throw std::invalid_argument("summary.csv: write_row expects a non-empty JSON object, got " + row.dump());
  std::string text;
  if (columns_.empty()) {
    for (auto it = row.begin(); it != row.end(); ++it) columns_.push_back(it.key());
    text = csv_line(columns_);
  }
  if (!row.contains(columns_[0]) || !row[columns_[0]].is_number_integer())
    throw std::invalid_argument("summary.csv: every row needs an integer '" + columns_[0] +
                                "' (the first column, the resume key), got " + row.dump());
  bool grew = false;
  for (auto it = row.begin(); it != row.end(); ++it)
    if (std::find(columns_.begin(), columns_.end(), it.key()) == columns_.end()) {
      columns_.push_back(it.key());
      grew = true;
    }
  std::vector<std::string> cells(columns_.size());
  for (size_t c = 0; c < columns_.size(); ++c)
    if (row.contains(columns_[c])) cells[c] = csv_cell(row[columns_[c]]);
  rows_.push_back(cells);
  if (grew) {
    rewrite(rows_);  // the new header and every row, this one included
    return;
  }
  text += csv_line(cells);
  file_.write(text);
}

}  // namespace rv::runlog
