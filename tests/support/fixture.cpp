// fixture.cpp: loading PyTorch fixtures and checking an op against them.
#include "tests/support/fixture.h"

#include "engine/io/safetensors.h"

namespace rv::test {

FixtureFile::FixtureFile(const std::string& family) {
  path_ = std::string(RV_FIXTURE_DIR) + "/ops_" + family + ".safetensors";
  SafetensorsFile f = SafetensorsFile::open(path_);
  tensors_ = f.tensors();
  auto it = f.metadata().find("cases");
  if (it == f.metadata().end()) throw std::runtime_error(path_ + ": no \"cases\" metadata entry");
  cases_ = nlohmann::json::parse(it->second);
}

std::vector<std::string> FixtureFile::cases() const {
  std::vector<std::string> out;
  for (auto& [k, v] : cases_.items()) out.push_back(k);
  return out;
}

const Args& FixtureFile::args(const std::string& name) const {
  if (!cases_.contains(name)) throw std::runtime_error(path_ + ": no case '" + name + "'");
  return cases_.at(name);
}

std::vector<std::string> FixtureFile::not_run() const {
  std::vector<std::string> out;
  for (const std::string& c : cases())
    if (!run_.count(c)) out.push_back(c);
  return out;
}

std::string FixtureFile::run(const std::string& name, const std::function<Tensor(Inputs&, const Args&)>& op,
                             Tol out_tol, Tol grad_tol) const {
  const Args& a = args(name);
  run_.insert(name);
  const std::string prefix = name + ".";
  Inputs in;
  std::map<std::string, Tensor> want_grad;
  for (auto& [key, t] : tensors_) {
    if (key.rfind(prefix + "in.", 0) == 0) {
      std::string arg = key.substr(prefix.size() + 3);
      Tensor leaf = t.clone();  // own memory: the mapped file stays untouched
      if (tensors_.count(prefix + "grad." + arg)) {
        leaf.requires_grad_(true);
        want_grad[arg] = tensors_.at(prefix + "grad." + arg);
      }
      in[arg] = leaf;
    }
  }
  Inputs leaves = in;  // op may replace entries; keep the leaves
  Tensor out = op(in, a);
  std::string report;
  std::string r = compare(out, tensors_.at(prefix + "out"), out_tol);
  if (!r.empty()) report += "output: " + r + "\n";
  auto g = tensors_.find(prefix + "gout");
  if (g != tensors_.end() && !want_grad.empty()) {
    out.backward(g->second);
    for (auto& [arg, expected] : want_grad) {
      Tensor got = leaves.at(arg).grad();
      if (!got.defined()) {
        report += "grad." + arg + ": no gradient\n";
        continue;
      }
      r = compare(got, expected, grad_tol);
      if (!r.empty()) report += "grad." + arg + ": " + r + "\n";
    }
  }
  return report;
}

}  // namespace rv::test
