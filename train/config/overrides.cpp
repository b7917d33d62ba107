// overrides.cpp: parsing `key.sub=value` and writing it into a config tree.
#include "train/config/overrides.h"

#include <cctype>
#include <stdexcept>

namespace rv::config {

Override parse_override(const std::string& arg) {
  const size_t eq = arg.find('=');
  if (eq == std::string::npos)
    throw std::invalid_argument("override '" + arg + "': expected key=value (e.g. optim.lr=1e-3)");
  Override o;
  o.key = arg.substr(0, eq);
  o.text = arg.substr(eq + 1);
  // A key is dot-separated words of letters, digits and '_': no empty part, no spaces.
  bool ok = !o.key.empty() && o.key.front() != '.' && o.key.back() != '.' && o.key.find("..") == std::string::npos;
  for (char c : o.key) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.');
  if (!ok)
    throw std::invalid_argument("override '" + arg + "': '" + o.key +
                                "' is not a key (expected dotted words such as optim.lr)");
  o.value = nlohmann::json::parse(o.text, nullptr, /*allow_exceptions=*/false);
  if (o.value.is_discarded()) o.value = o.text;
  return o;
}

void apply_overrides(SourcedJson& tree, const std::vector<Override>& overrides, const Schema& schema) {
  for (const Override& o : overrides) {
    nlohmann::json v = o.value;
    const Field* f = schema.find(o.key);
    if (f && f->kind == Kind::String && (v.is_number() || v.is_boolean())) v = o.text;
    try {
      tree.set(o.key, v, kFromCommandLine);
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string(kFromCommandLine) + ": " + e.what());
    }
  }
}

}  // namespace rv::config
