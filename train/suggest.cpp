// suggest.cpp: edit distance and the close-match list behind "did you mean ...?".
#include "train/suggest.h"

#include <algorithm>
#include <utility>

namespace rv {

size_t edit_distance(std::string_view a, std::string_view b) {
  // Three rows of the classic table: d[i][j] = distance between a[:i] and b[:j].
  const size_t n = a.size(), m = b.size();
  std::vector<size_t> prev2(m + 1), prev(m + 1), cur(m + 1);
  for (size_t j = 0; j <= m; ++j) prev[j] = j;
  for (size_t i = 1; i <= n; ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= m; ++j) {
      const size_t sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) cur[j] = std::min(cur[j], prev2[j - 2] + 1);
    }
    std::swap(prev2, prev);
    std::swap(prev, cur);
  }
  return prev[m];
}

std::vector<std::string> close_matches(const std::string& word, const std::vector<std::string>& candidates,
                                       size_t limit) {
  const size_t budget = std::max<size_t>(1, word.size() / 3);
  std::vector<std::pair<size_t, std::string>> scored;
  for (const std::string& c : candidates) {
    const size_t d = edit_distance(word, c);
    if (d <= budget) scored.emplace_back(d, c);
  }
  std::sort(scored.begin(), scored.end());
  std::vector<std::string> out;
  for (size_t i = 0; i < scored.size() && out.size() < limit; ++i)
    if (out.empty() || out.back() != scored[i].second) out.push_back(scored[i].second);
  return out;
}

std::string did_you_mean(const std::vector<std::string>& matches) {
  if (matches.empty()) return "";
  std::string s = " (did you mean ";
  for (size_t i = 0; i < matches.size(); ++i) {
    if (i > 0) s += i + 1 == matches.size() ? " or " : ", ";
    s += matches[i];
  }
  return s + "?)";
}

}  // namespace rv
