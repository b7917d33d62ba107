// Gradients of conv2d and conv_transpose2d (x, weight and bias) against f64 central finite
// differences: stride, padding, dilation, groups, depthwise, 1x1, the patch-embedding path and
// output padding.
#include "engine/ops/conv.h"
#include "tests/support/check.h"

using namespace rv;
using test::grad_input;

TEST_CASE("gradcheck conv2d") {
  struct Case {
    Shape x, w;
    Pair stride, padding, dilation;
    int64_t groups;
  };
  const Case cases[] = {
      {{2, 2, 5, 4}, {3, 2, 3, 2}, {1, 1}, {0, 0}, {1, 1}, 1},
      {{1, 4, 6, 5}, {4, 2, 3, 3}, {2, 1}, {1, 2}, {1, 2}, 2},  // stride, padding, dilation, groups
      {{2, 3, 5, 5}, {3, 1, 3, 3}, {2, 2}, {1, 1}, {1, 1}, 3},  // depthwise
      {{2, 3, 3, 4}, {2, 3, 1, 1}, {1, 1}, {0, 0}, {1, 1}, 1},  // 1x1
      {{2, 2, 5, 6}, {3, 2, 2, 2}, {2, 2}, {0, 0}, {1, 1}, 1},  // patch embed (row 5 unused)
      // patch embed, the direct kernel (O a multiple of the f64 vector width: 8 on AVX-512)
      {{2, 2, 5, 7}, {8, 2, 2, 3}, {2, 3}, {0, 0}, {1, 1}, 1},
      {{1, 3, 4, 9}, {16, 3, 2, 2}, {2, 2}, {0, 0}, {1, 1}, 1},  // column 8 unused
  };
  for (const Case& c : cases) {
    INFO("x ", shape_str(c.x), " w ", shape_str(c.w));
    RV_GRADCHECK([&](const std::vector<Tensor>& in) {
                   return conv2d(in[0], in[1], in[2], c.stride, c.padding, c.dilation, c.groups);
                 },
                 (std::vector<Tensor>{grad_input(c.x, 1), grad_input(c.w, 2), grad_input({c.w[0]}, 3)}));
  }
}

TEST_CASE("gradcheck conv_transpose2d") {
  struct Case {
    Shape x, w;
    Pair stride, padding, output_padding, dilation;
    int64_t groups;
  };
  const Case cases[] = {
      {{2, 2, 3, 4}, {2, 3, 3, 2}, {1, 1}, {0, 0}, {0, 0}, {1, 1}, 1},
      {{1, 4, 3, 3}, {4, 2, 3, 3}, {2, 2}, {1, 0}, {1, 1}, {1, 1}, 2},  // output padding, groups
      {{1, 2, 3, 3}, {2, 2, 2, 3}, {1, 2}, {0, 1}, {1, 0}, {2, 1}, 1},  // dilation
  };
  for (const Case& c : cases) {
    INFO("x ", shape_str(c.x), " w ", shape_str(c.w));
    RV_GRADCHECK([&](const std::vector<Tensor>& in) {
                   return conv_transpose2d(in[0], in[1], in[2], c.stride, c.padding, c.output_padding, c.dilation,
                                           c.groups);
                 },
                 (std::vector<Tensor>{grad_input(c.x, 4), grad_input(c.w, 5), grad_input({c.w[1] * c.groups}, 6)}));
  }
}
