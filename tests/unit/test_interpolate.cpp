// interpolate: every mode against plain 2-D reference loops written from the definitions
// (f64, odd sizes, up and down, align_corners, antialias, scale factors, non-contiguous,
// bf16), against values printed by PyTorch, and errors.
#include <cmath>
#include <functional>

#include "engine/autograd.h"
#include "engine/ops/interpolate.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

Tensor smooth(const Shape& s, double a, double b, DType dt = DType::f32) {
  std::vector<double> v(static_cast<size_t>(shape_numel(s)));
  for (size_t i = 0; i < v.size(); ++i) v[i] = std::sin(a * double(i)) + b * double(i);
  return from_vector(v, s, dt);
}

// 1-D weights of the reference: weights[o][i] for every input index i (dense, in double).
using Dense = std::vector<std::vector<double>>;

double keys(double x, double A) {  // Keys' cubic convolution kernel
  x = std::fabs(x);
  if (x <= 1) return (A + 2) * x * x * x - (A + 3) * x * x + 1;
  if (x < 2) return A * x * x * x - 5 * A * x * x + 8 * A * x - 4 * A;
  return 0;
}

Dense ref_weights(const std::string& mode, int64_t in, int64_t out, bool align, bool aa, double scale_factor) {
  Dense w(size_t(out), std::vector<double>(size_t(in), 0.0));
  double scale = align ? (out > 1 ? double(in - 1) / double(out - 1) : 0.0)
                       : (scale_factor > 0 ? 1.0 / scale_factor : double(in) / double(out));
  for (int64_t o = 0; o < out; ++o) {
    if (mode == "nearest") {
      w[o][std::min<int64_t>(int64_t(std::floor(double(o) * scale)), in - 1)] = 1;
    } else if (aa) {
      // filter centred at (o + 0.5) * scale in pixel-edge coordinates, widened when shrinking
      const bool cubic = mode == "bicubic";
      const double stretch = std::max(scale, 1.0), centre = (double(o) + 0.5) * scale;
      double total = 0;
      for (int64_t i = 0; i < in; ++i) {
        double d = (double(i) + 0.5 - centre) / stretch;
        double v = cubic ? keys(d, -0.5) : std::max(0.0, 1 - std::fabs(d));
        if (std::fabs(double(i) + 0.5 - centre) >= (cubic ? 2 : 1) * stretch + 0.5) v = 0;
        w[o][i] = v;
        total += v;
      }
      for (auto& v : w[o]) v /= total;
    } else if (mode == "bicubic") {
      double src = align ? double(o) * scale : (double(o) + 0.5) * scale - 0.5;
      double f0 = std::floor(src);
      for (int j = -1; j <= 2; ++j)  // 4 taps around floor(src), clamped to the border
        w[o][std::clamp<int64_t>(int64_t(f0) + j, 0, in - 1)] += keys(src - (f0 + j), -0.75);
    } else {  // linear
      double src = align ? double(o) * scale : std::max((double(o) + 0.5) * scale - 0.5, 0.0);
      if (in == out && !align) src = double(o);
      int64_t i0 = std::min<int64_t>(int64_t(std::floor(src)), in - 1);
      double l = std::min(std::max(src - double(i0), 0.0), 1.0);
      w[o][i0] += 1 - l;
      w[o][std::min(i0 + 1, in - 1)] += l;
    }
  }
  return w;
}

// y[p][oh][ow] = sum_{h,w} Wh[oh][h] * Ww[ow][w] * x[p][h][w], the plain 2-D definition.
Tensor ref_resize(const Tensor& x, const Dense& wh, const Dense& ww) {
  const int64_t H = int64_t(wh[0].size()), W = int64_t(ww[0].size()), OH = int64_t(wh.size()), OW = int64_t(ww.size());
  const int64_t P = x.numel() / (H * W);
  std::vector<double> xv = x.to_double_vector(), yv;
  for (int64_t p = 0; p < P; ++p)
    for (int64_t oh = 0; oh < OH; ++oh)
      for (int64_t ow = 0; ow < OW; ++ow) {
        double s = 0;
        for (int64_t h = 0; h < H; ++h)
          for (int64_t w = 0; w < W; ++w) s += wh[oh][h] * ww[ow][w] * xv[p * H * W + h * W + w];
        yv.push_back(s);
      }
  Shape os = x.shape();
  os[os.size() - 1] = OW;
  if (x.dim() == 4) os[2] = OH;
  return from_vector(yv, os, DType::f64);
}

}  // namespace

TEST_CASE("interpolate matches the 2-D reference loop in every mode (f64)") {
  struct C { Shape in; int64_t oh, ow; const char* mode; bool align, aa; };
  std::vector<C> cases;
  for (const char* mode : {"nearest", "bilinear", "bicubic"})
    for (auto [oh, ow] : std::vector<std::pair<int64_t, int64_t>>{{9, 4}, {3, 2}, {5, 11}, {1, 1}, {5, 7}, {13, 16}})
      for (bool align : {false, true})
        for (bool aa : {false, true}) {
          if (std::string(mode) == "nearest" && (align || aa)) continue;
          cases.push_back({{2, 3, 5, 7}, oh, ow, mode, align, aa});
        }
  uint64_t seed = 1;
  for (const C& c : cases) {
    CAPTURE(c.mode);
    CAPTURE(c.oh);
    CAPTURE(c.ow);
    CAPTURE(c.align);
    CAPTURE(c.aa);
    Tensor x = test::test_noncontiguous(c.in, seed++, DType::f64);
    InterpolateOptions o{.size = {c.oh, c.ow}, .mode = c.mode, .antialias = c.aa};
    if (std::string(c.mode) != "nearest") o.align_corners = c.align;
    Tensor y = interpolate(x, o);
    Dense wh = ref_weights(c.mode, 5, c.oh, c.align, c.aa, 0), ww = ref_weights(c.mode, 7, c.ow, c.align, c.aa, 0);
    RV_EXPECT_CLOSE(y, ref_resize(x, wh, ww), .rtol = 1e-12, .atol = 1e-12);
    // backward is the transpose: <y, g> = <x, grad x> for every x
    Tensor xg = x.contiguous().detach().requires_grad_();
    Tensor g = test::test_tensor(y.shape(), seed + 500, DType::f64);
    interpolate(xg, o).backward(g);
    std::vector<double> gv = g.to_double_vector(), expect(size_t(x.numel()), 0.0);
    const int64_t OH = c.oh, OW = c.ow;
    for (int64_t p = 0; p < 6; ++p)
      for (int64_t oh = 0; oh < OH; ++oh)
        for (int64_t ow = 0; ow < OW; ++ow)
          for (int64_t h = 0; h < 5; ++h)
            for (int64_t w = 0; w < 7; ++w) expect[p * 35 + h * 7 + w] += wh[oh][h] * ww[ow][w] * gv[(p * OH + oh) * OW + ow];
    RV_EXPECT_CLOSE(xg.grad(), from_vector(expect, x.shape(), DType::f64), .rtol = 1e-12, .atol = 1e-12);
  }
}

TEST_CASE("interpolate: scale factors, 1-D linear and nearest, bf16") {
  Tensor x = test::test_tensor({2, 3, 5, 7}, 9, DType::f64);
  // scale_factor is used as 1/scale for the source coordinate unless recompute_scale_factor is set
  Tensor y = interpolate(x, {.scale_factor = {1.7, 0.6}, .mode = "bilinear"});
  CHECK(y.shape() == Shape{2, 3, 8, 4});
  RV_EXPECT_CLOSE(y, ref_resize(x, ref_weights("bilinear", 5, 8, false, false, 1.7), ref_weights("bilinear", 7, 4, false, false, 0.6)),
                  .rtol = 1e-12, .atol = 1e-12);
  Tensor yr = interpolate(x, {.scale_factor = {1.7, 0.6}, .mode = "bilinear", .recompute_scale_factor = true});
  RV_EXPECT_CLOSE(yr, interpolate(x, {.size = {8, 4}, .mode = "bilinear"}), .rtol = 0, .atol = 0);
  Tensor yn = interpolate(x, {.scale_factor = {1.7}});
  RV_EXPECT_CLOSE(yn, ref_resize(x, ref_weights("nearest", 5, 8, false, false, 1.7), ref_weights("nearest", 7, 11, false, false, 1.7)),
                  .rtol = 0, .atol = 0);
  // 1-D: (B, C, L)
  Tensor s = test::test_noncontiguous({2, 3, 7}, 10, DType::f64);
  for (bool align : {false, true})
    for (int64_t L : {12, 4, 1}) {
      Dense one = {{1.0}};
      RV_EXPECT_CLOSE(interpolate(s, {.size = {L}, .mode = "linear", .align_corners = align}),
                      ref_resize(s, one, ref_weights("bilinear", 7, L, align, false, 0)), .rtol = 1e-12, .atol = 1e-12);
    }
  RV_EXPECT_CLOSE(interpolate(s, {.size = {12}}), ref_resize(s, {{1.0}}, ref_weights("nearest", 7, 12, false, false, 0)),
                  .rtol = 0, .atol = 0);
  // bf16 computes in f32 and rounds once
  Tensor xb = test::test_tensor({1, 2, 5, 7}, 11, DType::bf16);
  Tensor yb = interpolate(xb, {.size = {9, 4}, .mode = "bicubic"});
  CHECK(yb.dtype() == DType::bf16);
  RV_EXPECT_CLOSE(yb, interpolate(xb.to(DType::f32), {.size = {9, 4}, .mode = "bicubic"}).to(DType::bf16), .rtol = 0, .atol = 0);
  // area = adaptive average pooling; empty batch
  Tensor ya = interpolate(x, {.size = {3, 4}, .mode = "area"});
  CHECK(ya.shape() == Shape{2, 3, 3, 4});
  CHECK(interpolate(zeros({0, 3, 5, 7}), {.size = {2, 2}, .mode = "bilinear"}).shape() == Shape{0, 3, 2, 2});
}

TEST_CASE("interpolate matches PyTorch (f32)") {
  // Made with python3/PyTorch 2.x: x = sin(0.7 i) + 0.01 i (as float32) reshaped to the input
  // shape; y = F.interpolate(x, ...same options...); y.backward(g) with
  // g = sin(0.3 i) - 0.02 i (float32) over y; printed y (only `rows` for the 24x24 case) and
  // x.grad (empty = not checked).
  struct Lit {
    const char* name;
    Shape in;
    InterpolateOptions opt;
    Shape out;
    std::vector<int64_t> rows;
    std::vector<double> y, gx;
  };
  std::vector<Lit> lits = {
      {"5x7 -> 9x4 bilinear", {1, 1, 5, 7}, {.size = {9, 4}, .mode = "bilinear"}, {1, 1, 9, 4}, {},
       {0.245331615, 0.991419733, 0.439765811, -0.620028555, -0.0954482555, 0.723641574, 0.645017385, -0.197965309, -0.663414657, 0.277344793, 0.987103403, 0.505473435, -0.616197824, -0.238973767, 0.644579351, 0.832964301, -0.415185362, -0.772797644, 0.130903035, 1.06646824, 0.291035265, -0.462359011, -0.339525878, 0.513403356, 0.881150365, -0.0714290068, -0.635575414, -0.00435606856, 1.0068469, 0.64146781, -0.234109074, -0.380895793, 1.08226466, 1.06920528, 0.0067703547, -0.606819332},
       {0.390812308, 0.234487385, 0.788669705, 0.2485836, 0.951415479, 0.43631056, 0.727184236, 0.226890385, 0.136134237, -0.00654363167, -0.0518705659, -0.356550366, -0.301666111, -0.502776802, -1.20091844, -0.720551014, -1.63295817, -0.445988327, -1.48896015, -0.542188883, -0.903648078, -0.000273658748, -0.000164190031, 0.16887261, 0.0605470054, 0.254956424, 0.106028415, 0.176714018, -0.364422143, -0.218653277, -0.886861861, -0.308189243, -1.27046287, -0.698360264, -1.16393375}},
      {"5x7 -> 3x2 bilinear, antialias", {1, 1, 5, 7}, {.size = {3, 2}, .mode = "bilinear", .antialias = true}, {1, 1, 3, 2}, {},
       {0.302120626, 0.371926546, -0.285628229, 0.343430817, 0.634196222, -0.228903234},
       {0, 0, 0.0109841926, 0.0256297886, 0.04027538, 0.0475981757, 0.0329525843, 0.0244019739, 0.0352472961, 0.0492771454, 0.0643685162, 0.0794598833, 0.0842942297, 0.0583575442, 0.0610049404, 0.0881182477, 0.10259752, 0.112865455, 0.123133384, 0.121489018, 0.0841077864, 0.100830741, 0.145644411, 0.161287338, 0.167206705, 0.173126072, 0.164882347, 0.114149317, 0.101904988, 0.147196099, 0.160331056, 0.162747338, 0.165163577, 0.155048937, 0.107341573}},
      {"5x7 -> 9x4 bilinear, antialias (upsampling H)", {1, 1, 5, 7}, {.size = {9, 4}, .mode = "bilinear", .antialias = true}, {1, 1, 9, 4}, {},
       {0.328257531, 0.903776109, 0.384935796, -0.536161602, -0.0175357349, 0.654932797, 0.582598388, -0.122367382, -0.593857765, 0.240193903, 0.912036002, 0.567289591, -0.603008747, -0.222592175, 0.613299429, 0.837216496, -0.470367104, -0.69738996, 0.157519534, 1.00221097, 0.218705088, -0.39649111, -0.278664231, 0.437372029, 0.807496369, -0.0257098414, -0.556342006, -0.0769830868, 0.995166957, 0.624602258, -0.199997872, -0.38940528, 1.10776913, 1.01478899, 0.0138083277, -0.576858342},
       {0.327537894, 0.448252946, 0.49847132, 0.556827307, 0.620817065, 0.716106951, 0.609449625, 0.190155745, 0.154086292, 0.013398069, -0.116190068, -0.250199556, -0.426258475, -0.421374857, -1.00648391, -1.19673443, -1.06194222, -0.99901396, -0.953716993, -0.959978104, -0.757343054, -0.000229334284, 0.0384118035, 0.100337736, 0.135625288, 0.164980888, 0.179451093, 0.148103178, -0.305420429, -0.452600718, -0.554814875, -0.690343976, -0.843698561, -1.08851755, -0.975487292}},
      {"5x7 -> 9x4 bicubic, align_corners", {1, 1, 5, 7}, {.size = {9, 4}, .mode = "bicubic", .align_corners = true}, {1, 1, 9, 4}, {},
       {0, 1.00544977, 0.374988139, -0.81157577, -0.520536304, 0.642943561, 0.819504321, -0.250755191, -0.912452638, 0.1068139, 1.09816825, 0.449098349, -0.775216937, -0.502970219, 0.811748385, 1.01962078, -0.226479128, -0.819177747, 0.213623047, 1.19060731, 0.487735987, -0.693254471, -0.399684191, 0.91430217, 1.05574679, -0.152071416, -0.725625992, 0.320422679, 1.12906384, 0.554833353, -0.489645451, -0.237267703, 0.961963594, 1.13665569, -0.0775556862, -0.631798446},
       {0.490005881, 0, 0.813120782, 0, 1.05952656, 0, 1.20469999, 0.679810047, 0, 0.255330086, 0, -0.223613113, 0, -0.717977345, -2.23231149, 0, -2.15986109, 0, -1.95521927, 0, -1.64023888, 0.149169311, 0, 0.336724252, 0, 0.398676604, 0, 0.325751692, -0.603332102, 0, -1.03825259, 0, -1.46177244, 0, -1.83857226}},
      {"5x7 -> 9x4 bicubic", {1, 1, 5, 7}, {.size = {9, 4}, .mode = "bicubic"}, {1, 1, 9, 4}, {},
       {0.317277938, 1.10548508, 0.415841192, -0.803366005, -0.137810469, 0.826809704, 0.720102727, -0.288915336, -0.758155704, 0.359183699, 1.08703876, 0.478780419, -0.85490191, -0.351908416, 0.782904625, 1.05888546, -0.40191555, -0.793615341, 0.101914547, 1.11389685, 0.351455569, -0.708674848, -0.536942661, 0.663449526, 1.01103163, -0.093743287, -0.734989643, -0.0291177295, 1.10367465, 0.688677967, -0.268045276, -0.461175203, 1.10523188, 1.21061575, 0.100267805, -0.715126395},
       {0.448647559, 0.224444017, 0.945202589, 0.265538216, 1.13173699, 0.500313997, 0.888153732, 0.268294334, 0.182512745, -0.0721194521, -0.069004491, -0.462985456, -0.400743097, -0.660536349, -1.37045777, -0.764871478, -1.83978176, -0.451024741, -1.67859519, -0.526736021, -0.991050243, 0.0645206273, 0.0157395378, 0.355094403, 0.106103458, 0.485079885, 0.207425684, 0.369949728, -0.381133169, -0.175637871, -1.00032592, -0.307767183, -1.39209688, -0.760191679, -1.31203473}},
      {"5x7 -> 3x2 bicubic, antialias", {1, 1, 5, 7}, {.size = {3, 2}, .mode = "bicubic", .antialias = true}, {1, 1, 3, 2}, {},
       {0.307356864, 0.412700176, -0.402998149, 0.403340369, 0.700653493, -0.313990742},
       {-0.00748050166, -0.00714004599, 0.00217911485, 0.0196635742, 0.0357211977, 0.0405942351, 0.0310997199, 0.0174080506, 0.0284902696, 0.0436688066, 0.0646202788, 0.0808827356, 0.0814500079, 0.0602116361, 0.0602460653, 0.0879295319, 0.107333548, 0.124454923, 0.132545531, 0.123809099, 0.0892449692, 0.103600726, 0.148106307, 0.171850964, 0.185203344, 0.185116902, 0.166985288, 0.118859246, 0.0981750488, 0.139486089, 0.159305632, 0.167475075, 0.163492128, 0.145443946, 0.102990359}},
      {"5x7 -> 9x4 nearest", {1, 1, 5, 7}, {.size = {9, 4}}, {1, 1, 9, 4}, {},
       {0, 0.65421766, 0.893209338, -0.300783217, 0, 0.65421766, 0.893209338, -0.300783217, -0.912452638, -0.551266611, 0.756986618, 0.974598885, -0.912452638, -0.551266611, 0.756986618, 0.974598885, -0.226479128, -0.729695737, -0.448137105, 0.859569788, -0.226479128, -0.729695737, -0.448137105, 0.859569788, 1.05574679, 0.523118377, -0.647567034, -0.344832808, 1.05574679, 0.523118377, -0.647567034, -0.344832808, 0.961963594, 1.28276646, 0.597052634, -0.565187395},
       {0.852039099, 1.17301512, 0, 1.37849009, 0, 1.4465363, 0, -0.167057276, -0.700386286, 0, -1.21045578, 0, -1.65527582, 0, -1.9955802, -1.66900074, 0, -1.26122308, 0, -0.812245727, 0, 0.608266771, 0.520969212, 0, 0.290661812, 0, -0.0656557679, 0, -0.814326763, -1.11753595, 0, -1.37987471, 0, -1.5796957, 0}},
      {"5x7 scale (1.7, 0.6) nearest", {1, 1, 5, 7}, {.scale_factor = {1.7, 0.6}}, {1, 1, 8, 4}, {},
       {0, 0.65421766, 0.893209338, -0.300783217, 0, 0.65421766, 0.893209338, -0.300783217, -0.912452638, -0.551266611, 0.756986618, 0.974598885, -0.912452638, -0.551266611, 0.756986618, 0.974598885, -0.226479128, -0.729695737, -0.448137105, 0.859569788, -0.226479128, -0.729695737, -0.448137105, 0.859569788, 1.05574679, 0.523118377, -0.647567034, -0.344832808, 0.961963594, 1.28276646, 0.597052634, -0.565187395},
       {0.852039099, 1.17301512, 0, 1.37849009, 0, 1.4465363, 0, -0.167057276, -0.700386286, 0, -1.21045578, 0, -1.65527582, 0, -1.9955802, -1.66900074, 0, -1.26122308, 0, -0.812245727, 0, 0.313667864, 0.437999964, 0, 0.478543341, 0, 0.429889798, 0, 0.294598907, 0.0829692334, 0, -0.187881514, 0, -0.495545566, 0}},
      {"5x7 scale (1.7, 0.6) bilinear", {1, 1, 5, 7}, {.scale_factor = {1.7, 0.6}, .mode = "bilinear"}, {1, 1, 8, 4}, {},
       {0.218072534, 1.00544977, 0.547728598, -0.471047252, -0.168153614, 0.661853731, 0.714706838, 0.0147243617, -0.762347698, 0.133244291, 0.971596539, 0.762065291, -0.569735289, -0.410652071, 0.430420607, 0.894702315, -0.207096934, -0.721073806, -0.108823076, 0.809180617, 0.541386664, -0.328658223, -0.516259909, 0.166241214, 0.939899087, 0.264869809, -0.425602704, -0.273299128, 1.05207193, 1.02294469, 0.0725857392, -0.546422601},
       {0.360946745, 0.180473357, 0.837131202, 0.350095898, 0.700191319, 0.772603631, 0.386301249, 0.349980235, 0.174990088, 0.165131852, -0.0795750841, -0.159150064, -0.43582052, -0.217909932, -1.12257636, -0.561288118, -1.71602511, -0.547904551, -1.09580827, -0.984255254, -0.492126942, -0.303295463, -0.151647717, -0.178994998, 0.0153682185, 0.0307364184, 0.131537199, 0.0657684952, 0.246723831, 0.123361908, 0.217354327, -0.00549363066, -0.0109872501, -0.208492771, -0.104246244}},
      {"5x7 scale (1.7, 0.6) bilinear, recompute_scale_factor", {1, 1, 5, 7}, {.scale_factor = {1.7, 0.6}, .mode = "bilinear", .recompute_scale_factor = true}, {1, 1, 8, 4}, {},
       {0.245331615, 0.991419733, 0.439765811, -0.620028555, -0.201941907, 0.639960945, 0.70915848, -0.0660706088, -0.754393935, 0.1280303, 0.997731924, 0.672430277, -0.528254867, -0.472521693, 0.419846028, 0.935122252, -0.0179364569, -0.598176062, -0.133713111, 0.755369365, 0.776561379, -0.248932689, -0.66294539, 0.133171648, 0.983278751, 0.507799327, -0.309384197, -0.31029442, 1.08226466, 1.06920528, 0.00677035283, -0.606819272},
       {0.29954499, 0.179727003, 0.682815969, 0.223161623, 0.879315257, 0.423799574, 0.706332624, 0.401703894, 0.241022334, 0.287346274, 0.0358608365, -0.0363204479, -0.163860232, -0.273100406, -0.865214407, -0.519128621, -1.34012783, -0.389220923, -1.38441861, -0.575383067, -0.958971798, -0.56938982, -0.341633946, -0.509187937, -0.10587316, -0.231924117, 0.00310305972, 0.00517177861, 0.294398189, 0.176638901, 0.288176209, 0.0513304211, 0.0711367205, -0.0951497108, -0.158582836}},
      {"2x7 -> 12 linear", {1, 2, 7}, {.size = {12}, .mode = "linear"}, {1, 2, 12}, {},
       {0, 0.245331615, 0.626958549, 0.844468355, 0.991419733, 0.925946176, 0.742061555, 0.439765811, 0.0652598143, -0.322066158, -0.620028555, -0.81157577, -0.912452638, -0.777007878, -0.566316068, -0.194806442, 0.188085496, 0.567352831, 0.856497884, 1.05552053, 1.0415324, 0.952703118, 0.646161079, 0.449098349},
       {0.194060266, 0.937627256, 1.39910567, 1.43744063, 1.16105616, 0.451246232, -0.404238224, -1.32285678, -2.04454041, -2.21283531, -1.97985005, -1.51275599, -0.745957315, 0.0213537589}},
      {"2x7 -> 4 linear, align_corners", {1, 2, 7}, {.size = {4}, .mode = "linear", .align_corners = true}, {1, 2, 4}, {},
       {0, 1.00544977, 0.374988139, -0.81157577, -0.912452638, 0.1068139, 1.09816825, 0.449098349},
       {0, 0, 0.275520205, 0, 0.524642467, 0, 0.723326921, 0.852039099, 0, 0.897494972, 0, 0.853847623, 0, 0.723209381}},
      {"14x14 -> 9x9 bicubic", {1, 1, 14, 14}, {.size = {9, 9}, .mode = "bicubic"}, {1, 1, 9, 9}, {},
       {-0.0348116308, 0.424295634, 0.471902221, 0.0780018866, -0.323544741, -0.25887683, 0.184327334, 0.580803335, 0.473813355, 0.975878954, 1.01023579, 0.183523148, -0.502421141, -0.359477967, 0.535117745, 1.19879282, 0.93454355, 0.0562124252, 0.204296932, 0.0569121763, 0.411059141, 0.85955137, 0.96900636, 0.603998184, 0.200575128, 0.199680403, 0.628408492, -0.155468598, 0.731718957, 1.64083064, 1.5253334, 0.578399241, -0.172942936, 0.0627527013, 1.11822677, 1.76791728, 1.18010235, 1.20301151, 0.907065988, 0.662215352, 0.724841177, 1.06617272, 1.32174814, 1.23435891, 0.918851972, 1.15025365, 0.272320688, 0.362277776, 1.31244195, 2.14596915, 1.92116833, 0.971066058, 0.269073725, 0.676207662, 0.917595327, 1.07763743, 1.57445621, 1.8373462, 1.63670206, 1.17998552, 0.983088613, 1.28828835, 1.75926375, 2.29478097, 2.33062387, 1.50460052, 0.817759991, 0.959204614, 1.85335672, 2.51802921, 2.25525975, 1.37713265, 2.15534091, 1.73563385, 1.37540114, 1.51206946, 1.99697518, 2.32379627, 2.17661834, 1.69809067, 1.47033691},
       {}},
      {"14x14 -> 9x9 bicubic, antialias", {1, 1, 14, 14}, {.size = {9, 9}, .mode = "bicubic", .antialias = true}, {1, 1, 9, 9}, {},
       {-0.0515137762, 0.228956237, 0.348090947, 0.168181777, -0.0924629867, -0.132918507, 0.0953476802, 0.37389648, 0.419419795, 0.3853347, 0.348246872, 0.227393031, 0.171787679, 0.252741337, 0.404682517, 0.480670154, 0.411210179, 0.298377246, 0.4378362, 0.370404154, 0.429041594, 0.575265408, 0.669310868, 0.621856332, 0.505774736, 0.461968124, 0.54551965, 0.590988696, 0.728405058, 0.854030252, 0.837656975, 0.719827771, 0.642748535, 0.701915562, 0.857043087, 0.950978398, 1.02575397, 1.03355658, 0.930763364, 0.842699587, 0.876896441, 1.01870787, 1.13013434, 1.10525274, 0.998228312, 1.13669586, 1.03540564, 1.04540157, 1.18324554, 1.31593871, 1.31380057, 1.20170009, 1.11407959, 1.15665793, 1.2268163, 1.33436871, 1.4777683, 1.51094294, 1.42134202, 1.31895232, 1.32841849, 1.46255875, 1.58375776, 1.65897059, 1.71212041, 1.63497722, 1.52107394, 1.50732338, 1.63093495, 1.77166605, 1.7939713, 1.70055282, 1.92736304, 1.67363, 1.53399742, 1.69921196, 1.99921334, 2.12646818, 1.97145414, 1.70675552, 1.63734663},
       {}},
      {"14x14 -> 24x24 bicubic, rows 0, 11, 23", {1, 1, 14, 14}, {.size = {24, 24}, .mode = "bicubic"}, {1, 1, 24, 24}, {0, 11, 23},
       {-0.052986972, 0.272773445, 0.753464162, 1.08700657, 1.20226455, 1.15505397, 0.872228861, 0.513174474, 0.0126094436, -0.456691265, -0.836233258, -1.09527814, -1.14644659, -1.00620162, -0.693825066, -0.263813943, 0.264514476, 0.682269871, 1.08928037, 1.25705898, 1.29173863, 1.07796538, 0.681682765, 0.398819, 1.61240363, 1.46057951, 1.19225669, 0.87511301, 0.543198228, 0.308656842, 0.131311134, 0.111237511, 0.202847302, 0.43727842, 0.710807085, 1.08074319, 1.35409284, 1.62983406, 1.74013662, 1.76241505, 1.61130321, 1.40797591, 1.06789434, 0.78263545, 0.469729573, 0.28170076, 0.220260412, 0.21201396, 3.04870582, 2.92805266, 2.67530346, 2.27954197, 1.76665115, 1.34945285, 0.92665863, 0.736352921, 0.671521902, 0.858952999, 1.15013814, 1.65180802, 2.08161116, 2.59418082, 2.90425754, 3.11623979, 3.0794971, 2.91039777, 2.50643635, 2.09510636, 1.58001578, 1.16931343, 0.892622769, 0.755353093},
       {}},
  };
  for (const Lit& l : lits) {
    CAPTURE(l.name);
    Tensor x = smooth(l.in, 0.7, 0.01).requires_grad_();
    Tensor y = interpolate(x, l.opt);
    REQUIRE(y.shape() == l.out);
    if (!l.rows.empty()) {
      std::vector<double> picked;
      for (int64_t r : l.rows)
        for (double v : y.select(0, 0).select(0, 0).select(0, r).to_double_vector()) picked.push_back(v);
      RV_EXPECT_CLOSE(from_vector(picked, {int64_t(picked.size())}, DType::f64),
                      from_vector(l.y, {int64_t(l.y.size())}, DType::f64), .rtol = 1e-5, .atol = 1e-6);
    } else {
      RV_EXPECT_CLOSE(y, from_vector(l.y, l.out), .rtol = 1e-5, .atol = 1e-6);
    }
    if (l.gx.empty()) continue;
    y.backward(smooth(l.out, 0.3, -0.02));
    RV_EXPECT_CLOSE(x.grad(), from_vector(l.gx, l.in), .rtol = 1e-5, .atol = 1e-6);
  }
}

TEST_CASE("interpolate errors name the op and the bad argument") {
  Tensor x = zeros({1, 2, 5, 7});
  CHECK_THROWS_WITH(interpolate(x, {.size = {3, 3}, .mode = "trilinear"}), doctest::Contains("interpolate: unknown mode 'trilinear'"));
  CHECK_THROWS_WITH(interpolate(zeros({5, 7}), {.size = {3}}), doctest::Contains("(B, C, L) or (B, C, H, W)"));
  CHECK_THROWS_WITH(interpolate(zeros({1, 2, 7}), {.size = {3}, .mode = "bilinear"}), doctest::Contains("needs a 4-d"));
  CHECK_THROWS_WITH(interpolate(x, {.size = {3}, .mode = "linear"}), doctest::Contains("needs a 3-d"));
  CHECK_THROWS_WITH(interpolate(x, {.size = {0, 3}, .mode = "bilinear"}), doctest::Contains("output size must be positive"));
  CHECK_THROWS_WITH(interpolate(x, {.size = {-2, 3}}), doctest::Contains("output size must be positive"));
  CHECK_THROWS_WITH(interpolate(x, {.scale_factor = {0.1}}), doctest::Contains("output size must be positive"));
  CHECK_THROWS_WITH(interpolate(x, {.scale_factor = {-2}}), doctest::Contains("scale_factor must be positive"));
  CHECK_THROWS_WITH(interpolate(x, {}), doctest::Contains("exactly one of size and scale_factor"));
  CHECK_THROWS_WITH(interpolate(x, {.size = {3, 3}, .scale_factor = {2}}), doctest::Contains("exactly one"));
  CHECK_THROWS_WITH(interpolate(x, {.size = {3, 3, 3}}), doctest::Contains("size has 3 values for 2 spatial dims"));
  CHECK_THROWS_WITH(interpolate(x, {.size = {3, 3}, .align_corners = true}), doctest::Contains("align_corners can only be set"));
  CHECK_THROWS_WITH(interpolate(x, {.size = {3, 3}, .antialias = true}), doctest::Contains("antialias needs mode"));
  CHECK_THROWS_WITH(interpolate(zeros({1, 0, 5, 7}), {.size = {3, 3}}), doctest::Contains("non-empty"));
  CHECK_THROWS_WITH(interpolate(zeros({1, 1, 5, 7}, DType::i64), {.size = {3, 3}}), doctest::Contains("float"));
}
