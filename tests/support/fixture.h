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
// Each test file ends with RV_CHECK_EVERY_FIXTURE_RUN(f), so that a case added to the generator
// fails the test until some check runs it.
#pragma once
#include <functional>
#include <map>
#include <set>
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
  // The cases run() has been called on (each counted once), and those it has not.
  size_t run_count() const { return run_.size(); }
  std::vector<std::string> not_run() const;

 private:
  std::string path_;
  std::map<std::string, Tensor> tensors_;
  Args cases_;
  mutable std::set<std::string> run_;
};

// f32 tolerances: PyTorch and we round differently in long sums, so allow a few ulps.
#define RV_CHECK_FIXTURE(file, name, op, ...)                                                  \
  do {                                                                                        \
    std::string rv_report_ = (file).run((name), (op), ::rv::test::Tol{1e-5, 1e-6}, ::rv::test::Tol{__VA_ARGS__}); \
    CHECK_MESSAGE(rv_report_.empty(), "case " << std::string(name) << ": " << rv_report_);                \
  } while (0)

// The same with an output tolerance of its own (say why where it is used).
#define RV_CHECK_FIXTURE_TOLS(file, name, op, out_tol, grad_tol)                                 \
  do {                                                                                        \
    std::string rv_report_ = (file).run((name), (op), (out_tol), (grad_tol));                  \
    CHECK_MESSAGE(rv_report_.empty(), "case " << std::string(name) << ": " << rv_report_);                \
  } while (0)

// bf16 results: the reference and we both compute in f32 and round once, so where the f32
// values straddle the midpoint of two bf16 neighbours they round apart: one bf16 ulp, at most
// 2^-7 of the value (8 significant bits). atol covers the f32-level differences of sums that
// cancel to near 0, where the ulp budget vanishes.
inline constexpr Tol kBf16Tol{1.0 / 128, 1e-5};
#define RV_CHECK_FIXTURE_BF16(file, name, op)                                                   \
  do {                                                                                        \
    std::string rv_report_ = (file).run((name), (op), ::rv::test::kBf16Tol, ::rv::test::kBf16Tol); \
    CHECK_MESSAGE(rv_report_.empty(), "case " << std::string(name) << ": " << rv_report_);                \
  } while (0)

// Every case of the file was run by some check above (a new case cannot be skipped silently).
#define RV_CHECK_EVERY_FIXTURE_RUN(file)                                                         \
  do {                                                                                        \
    std::string rv_missing_;                                                                  \
    for (const std::string& rv_c_ : (file).not_run()) rv_missing_ += " " + rv_c_;              \
    CHECK_MESSAGE((file).run_count() == (file).cases().size(), "cases never checked:" << rv_missing_); \
  } while (0)

}  // namespace rv::test
