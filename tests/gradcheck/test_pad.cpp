// pad: backward of every mode against f64 central finite differences, including negative
// pads (crops) and pads wide enough that an input element is read several times.
#include "engine/ops/pad.h"
#include "tests/support/check.h"

using namespace rv;

TEST_CASE("gradcheck pad, every mode") {
  struct Case {
    Shape shape;
    std::vector<int64_t> pads;
    const char* mode;
  };
  std::vector<Case> cases = {
      {{2, 3, 5}, {-1, 3, 2, 0}, "constant"}, {{2, 2, 3, 4}, {2, 1, 1, 2, 0, 1}, "constant"},
      {{2, 3, 5}, {4, 2}, "reflect"},         {{1, 2, 4, 5}, {3, -1, 2, 3}, "reflect"},
      {{1, 2, 3, 3, 4}, {1, 2, 2, 0, 1, 1}, "reflect"},
      {{2, 3, 4}, {6, 1}, "replicate"},       {{1, 2, 3, 4}, {2, -2, 3, 1}, "replicate"},
      {{2, 3, 5}, {5, 3}, "circular"},        {{1, 2, 4, 5}, {-2, 3, 4, 1}, "circular"},
  };
  uint64_t seed = 11;
  for (const Case& c : cases) {
    CAPTURE(c.mode);
    auto f = [&](const std::vector<Tensor>& in) { return pad(in[0], c.pads, c.mode, 0.3); };
    std::vector<Tensor> inputs = {test::grad_input(c.shape, seed++)};
    RV_GRADCHECK(f, inputs);
  }
}
