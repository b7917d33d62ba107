// suggest.h: "did you mean ...?" for a misspelt name: an option (--prnt-config) or a config key
// (optim.lr_min). Shared by the option parser (train/cli_options.h) and the config schema
// (train/config/schema.h), so both spell their suggestions the same way.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace rv {

// Edits (insert, delete, substitute, swap two neighbours) that turn a into b: the optimal string
// alignment distance. Swaps count once because "lr_mni" is one slip of the fingers, not two.
size_t edit_distance(std::string_view a, std::string_view b);

// The candidates within max(1, |word| / 3) edits of word, nearest first (ties by name), at most
// `limit` of them.
std::vector<std::string> close_matches(const std::string& word, const std::vector<std::string>& candidates,
                                       size_t limit = 3);

// " (did you mean a?)", " (did you mean a or b?)", " (did you mean a, b or c?)", or "" for none.
std::string did_you_mean(const std::vector<std::string>& matches);

}  // namespace rv
