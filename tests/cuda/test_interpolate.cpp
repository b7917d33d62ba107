// test_interpolate.cpp: interpolate on cuda against the CPU op, every mode (nearest, linear,
// bilinear with and without align_corners, bicubic, antialiased bilinear and bicubic, area),
// forward and the input gradient through autograd, on odd shapes (planes not a multiple of the
// block, 1-pixel images, a dim that does not change, non-contiguous input, no planes).
// Skipped (exit 77) without a GPU.
//
// Tolerances: the kernels apply the CPU's own tap tables (the same weights, in the data's dtype)
// and add in the CPU's order, but nvcc contracts `acc + a * b` into fused multiply-adds, which
// round once where the CPU's loop may round twice: f64 within 1e-12, f32 within 1e-5 (relative
// to values of order 1; a handful of taps per cell).
#include <doctest/doctest.h>

#include "engine/autograd.h"
#include "engine/ops/interpolate.h"
#include "engine/tensor.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

struct Result {
  Tensor y, dx;
};

Result run(const InterpolateOptions& opt, const Tensor& x, Device device, bool transposed) {
  Tensor xd = transposed ? x.transpose(-1, -2).contiguous().to(device).transpose(-1, -2) : x.to(device);
  Tensor xl = xd.detach().requires_grad_();
  Tensor y = interpolate(xl, opt);
  const Tensor gy = test::test_tensor(y.shape(), 9, x.dtype());
  y.backward(gy.to(device));
  return {y.cpu(), xl.grad().cpu()};
}

void compare(const InterpolateOptions& opt, const Shape& shape, bool transposed = false) {
  for (DType dt : {DType::f32, DType::f64}) {
    CAPTURE(opt.mode);
    CAPTURE(shape_str(shape));
    CAPTURE(dtype_name(dt));
    const double tol = dt == DType::f64 ? 1e-12 : 1e-5;
    const Tensor x = test::test_tensor(shape, 1, dt);
    const Result want = run(opt, x, cpu_device(), false);
    const Result got = run(opt, x, cuda_device(0), transposed);
    RV_EXPECT_CLOSE(got.y, want.y, .rtol = tol, .atol = tol);
    RV_EXPECT_CLOSE(got.dx, want.dx, .rtol = tol, .atol = tol);
  }
}

}  // namespace

TEST_CASE("interpolate on cuda equals the CPU: nearest, linear, bilinear, bicubic") {
  compare({.size = {9, 13}, .mode = "nearest"}, {2, 3, 5, 6});
  compare({.size = {4, 3}, .mode = "nearest"}, {1, 2, 9, 7});
  compare({.size = {17}, .mode = "linear"}, {2, 3, 6});
  compare({.size = {5}, .mode = "linear", .align_corners = true}, {2, 3, 11});
  compare({.size = {11, 7}, .mode = "bilinear"}, {2, 3, 5, 6});
  compare({.size = {11, 7}, .mode = "bilinear", .align_corners = true}, {2, 3, 5, 6});
  compare({.scale_factor = {4}, .mode = "bilinear"}, {2, 64, 16, 16});    // UperNet's upsampling
  compare({.size = {128, 128}, .mode = "bilinear"}, {1, 19, 32, 32});     // logits to the image size
  compare({.size = {9, 9}, .mode = "bicubic"}, {1, 192, 7, 7});           // ViT position embeddings
  compare({.size = {5, 4}, .mode = "bicubic", .align_corners = true}, {2, 2, 8, 9});
  compare({.size = {6, 11}, .mode = "bilinear"}, {2, 3, 6, 5});            // height unchanged
  compare({.size = {12, 5}, .mode = "bicubic"}, {1, 2, 7, 5});             // width unchanged
  compare({.size = {7, 7}, .mode = "bilinear"}, {3, 1, 1, 1});             // 1-pixel images
  compare({.size = {10, 8}, .mode = "bilinear"}, {2, 3, 7, 6}, /*transposed=*/true);
  compare({.size = {3, 3}, .mode = "bilinear"}, {0, 3, 7, 6});             // no planes
}

TEST_CASE("interpolate on cuda equals the CPU: antialiased downscaling and area") {
  compare({.size = {4, 5}, .mode = "bilinear", .antialias = true}, {2, 3, 13, 17});
  compare({.size = {6, 3}, .mode = "bicubic", .antialias = true}, {1, 3, 14, 11});
  compare({.size = {7, 7}, .mode = "bicubic", .antialias = true}, {1, 4, 24, 24});
  compare({.size = {5, 3}, .mode = "area"}, {2, 3, 11, 7});
}
