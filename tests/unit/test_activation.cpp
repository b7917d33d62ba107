// gelu (exact and tanh), relu, silu, sigmoid against plain loops (f32, f64, strided, bf16,
// empty), against PyTorch values pasted below, their gradients at fixed points, and errors.
#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>

#include "engine/autograd.h"
#include "engine/ops/activation.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

double ref_gelu(double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }
// PyTorch's formula, literally (in long double: 1 + tanh(u) cancels for x << 0).
double ref_gelu_tanh(double x) {
  const long double k = std::sqrt(2.0L / M_PI), xl = x;
  return double(0.5L * xl * (1.0L + std::tanh(k * (xl + 0.044715L * xl * xl * xl))));
}
double ref_sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }
double ref_silu(double x) { return x * ref_sigmoid(x); }
double ref_relu(double x) { return x > 0 ? x : 0.0; }

struct Act {
  const char* name;
  std::function<Tensor(const Tensor&)> op;
  double (*ref)(double);
  // Absolute tolerance of the f32 (and bf16) results: exact gelu's f32 normal CDF is accurate to
  // 2.5e-7 absolute (vec_math.h: normal_cdf_fast, PyTorch's accuracy class), so gelu's error is
  // up to |x| times that; the others are within a few ulp.
  double f32_atol = 1e-7;
};

std::vector<Act> acts() {
  return {{"gelu", [](const Tensor& x) { return gelu(x); }, ref_gelu, 1.1e-6},
          {"gelu tanh", [](const Tensor& x) { return gelu(x, "tanh"); }, ref_gelu_tanh},
          {"relu", [](const Tensor& x) { return relu(x); }, ref_relu},
          {"silu", [](const Tensor& x) { return silu(x); }, ref_silu},
          {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, ref_sigmoid}};
}

Tensor apply_ref(const Tensor& x, double (*f)(double), DType dt) {
  std::vector<double> v = x.to_double_vector();
  for (double& e : v) e = f(e);
  return from_vector(v, x.shape(), dt);
}

// The values of x = [-3, -1, -0.5, 0, 0.5, 1, 3] in float64, from PyTorch 2.x:
//   torch.nn.functional.gelu(x) / gelu(x, approximate='tanh') / silu(x) / torch.sigmoid(x),
// and their derivatives via torch.autograd.grad(y.sum(), x).
const std::vector<double> kX = {-3, -1, -0.5, 0, 0.5, 1, 3};
const std::vector<double> kGelu = {-0.00404969409489031, -0.15865525393145702, -0.15426876936299344, 0.0,
                                   0.34573123063700656,  0.841344746068543,    2.99595030590511};
const std::vector<double> kGeluGrad = {-0.01194564720418392, -0.08331547058768635, 0.13250487534383712, 0.5,
                                       0.8674951246561629,   1.0833154705876864,   1.011945647204184};
const std::vector<double> kGeluTanh = {-0.0036373920817729943, -0.15880800939172324, -0.15428599017485606, 0.0,
                                       0.34571400982514394,    0.8411919906082768,   2.996362607918227};
const std::vector<double> kGeluTanhGrad = {-0.011584166630969648, -0.08296408384578252, 0.13263009646535764, 0.5,
                                           0.8673699035346424,    1.0829640838457826,   1.0115841666309695};
const std::vector<double> kSilu = {-0.14227761953270035, -0.2689414213699951, -0.1887703343990727, 0.0,
                                   0.3112296656009273,   0.7310585786300049,  2.8577223804672998};
const std::vector<double> kSiluGrad = {-0.08810410601516962, 0.07232948812851325, 0.2600388126973482, 0.5,
                                       0.7399611873026519,   0.9276705118714869,  1.0881041060151693};
const std::vector<double> kSigmoid = {0.04742587317756678, 0.2689414213699951, 0.3775406687981454, 0.5,
                                      0.6224593312018546,  0.7310585786300049, 0.9525741268224334};
const std::vector<double> kSigmoidGrad = {0.04517665973091214, 0.19661193324148185, 0.2350037122015945, 0.25,
                                          0.2350037122015945,  0.19661193324148185, 0.045176659730912};

}  // namespace

TEST_CASE("activations match plain loops on f32, f64, strided, bf16 and empty inputs") {
  for (const Act& a : acts()) {
    CAPTURE(a.name);
    Tensor x = test::test_tensor({6, 9}, 1, DType::f32, -4, 4);
    RV_EXPECT_CLOSE(a.op(x), apply_ref(x, a.ref, DType::f32), .rtol = 2e-6, .atol = a.f32_atol);
    Tensor xt = test::test_noncontiguous({5, 3, 4}, 2);
    REQUIRE(!xt.is_contiguous());
    RV_EXPECT_CLOSE(a.op(xt), apply_ref(xt, a.ref, DType::f32), .rtol = 2e-6, .atol = a.f32_atol);
    Tensor x64 = test::test_tensor({17}, 3, DType::f64, -6, 6);
    // 1e-12: for x near -6 the reference's 1 + tanh(u) keeps only ~13 digits even in long double
    RV_EXPECT_CLOSE(a.op(x64), apply_ref(x64, a.ref, DType::f64), .rtol = 1e-12, .atol = 1e-16);
    Tensor xb = test::test_tensor({4, 8}, 4, DType::bf16, -4, 4);
    Tensor yb = a.op(xb);
    CHECK(yb.dtype() == DType::bf16);
    // one rounding of the f32 result: within half a bf16 ulp (2^-9 relative) of the exact value
    RV_EXPECT_CLOSE(yb, apply_ref(xb, a.ref, DType::f64), .rtol = 1.0 / 256, .atol = a.f32_atol > 1e-7 ? a.f32_atol : 1e-30);
    CHECK(a.op(empty({2, 0})).shape() == Shape{2, 0});
  }
}

TEST_CASE("gelu f32: absolute error within PyTorch's own over a dense sweep, forward and derivative") {
  // PyTorch 2.x's float gelu on this sweep (linspace(-10, 10, 2^22) against float64 erfc):
  // max absolute error 1.3e-6 (at x = -5.6; its erf is Abramowitz-Stegun 7.1.26, 1 + erf cancels in
  // the lower tail as ours does). Ours: ~1e-6 forward (at x ~ 5, error of Phi times x), and the
  // derivative Phi + x phi within 5e-7. Bars: 1.2e-6 and 1e-6.
  const int64_t n = int64_t(1) << 22;
  std::vector<float> xs(n);
  for (int64_t i = 0; i < n; ++i) xs[i] = float(-10.0 + 20.0 * double(i) / double(n - 1));
  Tensor x = from_vector(xs, {n});
  const std::vector<float> y = gelu(x).to_vector<float>();
  Tensor xl = x.detach().clone().requires_grad_();
  sum(gelu(xl)).backward();
  const std::vector<float> dy = xl.grad().to_vector<float>();
  double worst = 0, worst_d = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double v = xs[i], cdf = 0.5 * std::erfc(-v / std::sqrt(2.0));
    const double pdf = std::exp(-0.5 * v * v) / std::sqrt(2.0 * M_PI);
    worst = std::max(worst, std::fabs(double(y[i]) - v * cdf));
    worst_d = std::max(worst_d, std::fabs(double(dy[i]) - (cdf + v * pdf)));
  }
  MESSAGE("gelu f32 max abs error " << worst << " (PyTorch 1.3e-6), derivative " << worst_d);
  CHECK(worst <= 1.2e-6);
  CHECK(worst_d <= 1e-6);
  // Far out: exactly x (x > 5.55) and exactly -0 / 0 (x < -5.55), never NaN for finite x.
  const std::vector<float> far = gelu(from_vector(std::vector<float>{-1e30f, -50.0f, -6.0f, 6.0f, 50.0f, 1e30f}, {6}))
                                     .to_vector<float>();
  CHECK(far == std::vector<float>{0.0f, 0.0f, 0.0f, 6.0f, 50.0f, 1e30f});
}

TEST_CASE("activations and their derivatives match PyTorch's float64 values") {
  struct Case {
    Act act;
    const std::vector<double>& y;
    const std::vector<double>& dy;
  };
  std::vector<Act> as = acts();
  const Case cases[] = {{as[0], kGelu, kGeluGrad},
                        {as[1], kGeluTanh, kGeluTanhGrad},
                        {as[3], kSilu, kSiluGrad},
                        {as[4], kSigmoid, kSigmoidGrad}};
  for (const Case& c : cases) {
    CAPTURE(c.act.name);
    Tensor x = from_vector(kX, {7}, DType::f64).requires_grad_();
    Tensor y = c.act.op(x);
    RV_EXPECT_CLOSE(y, from_vector(c.y, {7}, DType::f64), .rtol = 1e-14, .atol = 1e-16);
    sum(y).backward();
    RV_EXPECT_CLOSE(x.grad(), from_vector(c.dy, {7}, DType::f64), .rtol = 1e-13, .atol = 1e-16);
  }
}

TEST_CASE("relu: gradient 0 at 0 (as PyTorch), NaN passes through") {
  Tensor x = from_vector(std::vector<double>{-1, 0, 2}, {3}, DType::f64).requires_grad_();
  sum(relu(x)).backward();
  CHECK(x.grad().to_vector<double>() == std::vector<double>{0, 0, 1});
  CHECK(std::isnan(relu(scalar_tensor(std::numeric_limits<double>::quiet_NaN())).item()));
}

TEST_CASE("sigmoid and silu stay finite for large |x|") {
  Tensor x = from_vector(std::vector<double>{-200, -90, 90, 200}, {4});
  std::vector<float> s = sigmoid(x).to_vector<float>();
  CHECK(s[0] == 0.0f);
  CHECK(s[3] == 1.0f);
  std::vector<float> si = silu(x).to_vector<float>();
  CHECK(si[0] == 0.0f);  // -200 * 0 (not -200 * NaN)
  CHECK(si[2] == 90.0f);
  Tensor xg = x.detach().clone().requires_grad_();
  sum(silu(xg) + sigmoid(xg)).backward();
  for (float g : xg.grad().to_vector<float>()) CHECK(std::isfinite(g));
}

TEST_CASE("activation errors name the op and the argument") {
  CHECK_THROWS_WITH(gelu(ones({2}), "exact"), "gelu: approximate must be \"none\" or \"tanh\", got \"exact\"");
  CHECK_THROWS_WITH(relu(arange(3)), "relu: expected a float tensor, got int64");
  CHECK_THROWS_WITH(sigmoid(arange(3)), "sigmoid: expected a float tensor, got int64");
}
