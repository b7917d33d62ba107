// fixture.h: runs an op on the inputs PyTorch saw and compares with PyTorch's answers.
//
// tools/make_op_fixtures.py writes tests/fixtures/data/ops_<family>.safetensors; each case has
// inputs "<case>.in.<name>", the output "<case>.out", the output gradient "<case>.gout", and
// the input gradients "<case>.grad.<name>"; the metadata entry "cases" maps each case to the
// keyword arguments PyTorch was called with. A test names the case and gives the op call:
//
//   FixtureFile f("index");
//   f.check("gather", [](Inputs& in, const Args& a) { return gather(in["input"], a["dim"], in["index"]); });
//
// check() makes every float input with a stored gradient a leaf that requires grad, runs the
// op, compares the output, runs backward with the stored gout, and compares every gradient.
#pragma once
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/check.h"

namespace rv::test {

using Inputs = std::map<std::string, Tensor>;
using Args = nlohmann::json;

class FixtureFile {
 public:
  explicit FixtureFile(const std::string& family);
  std::vector<std::string> cases() const;
  const Args& args(const std::string& name) const;
  // Returns "" when output and gradients match within the tolerances, else a report.
  std::string run(const std::string& name, const std::function<Tensor(Inputs&, const Args&)>& op, Tol out_tol,
                  Tol grad_tol) const;

 private:
  std::string path_;
  std::map<std::string, Tensor> tensors_;
  Args cases_;
};

// f32 tolerances: PyTorch and we round differently in long sums, so allow a few ulps.
#define RV_CHECK_FIXTURE(file, name, op, ...)                                                  \
  do {                                                                                        \
    std::string rv_report_ = (file).run((name), (op), ::rv::test::Tol{1e-5, 1e-6}, ::rv::test::Tol{__VA_ARGS__}); \
    CHECK_MESSAGE(rv_report_.empty(), "case " << (name) << ": " << rv_report_);                \
  } while (0)

}  // namespace rv::test
