// Optimizers (AdamW, SGD, LAMB) against PyTorch trajectories, parameter groups, the optimizer
// state_dict round trip, the weight-decay split, and gradient clipping against torch.
#include <cmath>
#include <limits>
#include <memory>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "engine/autograd.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/reduce.h"
#include "engine/optim/adamw.h"
#include "engine/optim/clip.h"
#include "engine/optim/lamb.h"
#include "engine/optim/sgd.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::optim;

namespace {

// ---- reference data ------------------------------------------------------------------------------
// Made by a scratch script with python3 + PyTorch 2.15 (CPU, foreach=False): the problem below
// (same formulas for w, b, A, C, D), 5 steps of `zero_grad(); loss.backward(); step()`, then
// w.flatten() followed by b. LAMB is timm's Lamb (timm/optim/lamb.py, single-tensor path)
// re-implemented in that script, since timm was not installed. f32 values are printed with 9
// significant digits, f64 with 17.
//   adamw_groups:  AdamW([{w}, {b, lr=0.05, weight_decay=0}], lr=0.1, weight_decay=0.1)
//   adamw_amsgrad: AdamW([w, b], lr=0.2, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.05, amsgrad=True)
//   sgd_groups:    SGD([{w}, {b, lr=0.02, momentum=0.5}], lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)
//   sgd_nesterov:  SGD([w, b], lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05)
//   sgd_plain:     SGD([w, b], lr=0.1)
//   lamb_groups:   Lamb([{w}, {b, weight_decay=0}], lr=0.05)     (timm defaults otherwise)
//   lamb_variants: Lamb([{w}, {b, weight_decay=0, lr=0.02}], lr=0.05, weight_decay=0.1, bias_correction=False,
//                       grad_averaging=False, max_grad_norm=None, trust_clip=True, always_adapt=True)
// adamw_groups f32
const std::vector<double> k_adamw_groups_f32 = {-0.274376988, 0.00201217085, -0.117573068, -0.382727444, 0.504434645, 0.20675692, -0.222287089, -0.630521536, 0.375786424, -0.114679098, -0.00737983733, 0.718645155, -0.875982642, 0.875982642, -0.0612232387, -0.624864876};
// adamw_groups f64
const std::vector<double> k_adamw_groups_f64 = {-0.27437694293007286, 0.0020121664645058462, -0.1175730568606474, -0.38272742741684262, 0.50443465299945567, 0.20675689070196834, -0.22228708581297507, -0.63052150900855664, 0.37578640123656737, -0.11467909816761417, -0.0073798489955889945, 0.71864514414708291, -0.87598265918934715, 0.87598265615243176, -0.061223243868795074, -0.62486486747473824};
// adamw_amsgrad f32
const std::vector<double> k_adamw_amsgrad_f32 = {0.198061496, 0.382158339, -0.160723597, -0.761503875, 0.447160155, -0.0111143589, -0.0946850032, -0.490181029, 0.682064176, 0.0192032158, -0.448333979, 0.766988099, -1.55560362, 1.55560303, -0.729973197, -1.29371667};
// adamw_amsgrad f64
const std::vector<double> k_adamw_amsgrad_f64 = {0.19806139334051737, 0.38215829245258126, -0.16072359948727508, -0.76150389722278777, 0.44716017716532303, -0.01111437639777399, -0.094684954477727734, -0.49018099528798886, 0.68206411482321561, 0.019203221710799294, -0.44833394876568039, 0.76698816489419919, -1.5556036650567724, 1.5556029089140457, -0.72997312798206715, -1.2937165971894864};
// sgd_groups f32
const std::vector<double> k_sgd_groups_f32 = {0.189307034, 0.0778084844, -0.119100101, -0.392686814, 0.479723632, 0.422578156, -0.393055588, -0.537829518, 0.285697311, 0.0354422033, -0.104637362, 0.733068407, -0.679018974, 0.660100639, 0.121381536, -0.380780488};
// sgd_groups f64
const std::vector<double> k_sgd_groups_f64 = {0.18930711622354909, 0.077808527255382037, -0.11910008418500088, -0.39268686254483354, 0.47972365419879393, 0.42257814827138307, -0.39305556063447128, -0.53782948620333182, 0.28569731584671548, 0.035442200948643289, -0.10463736915211372, 0.73306833349439926, -0.67901897953568358, 0.66010065485494662, 0.12138154072927496, -0.38078048562100841};
// sgd_nesterov f32
const std::vector<double> k_sgd_nesterov_f32 = {0.445469469, 0.199492157, -0.103008211, -0.500168324, 0.483395487, 0.337866187, -0.317610979, -0.54834038, 0.370402187, 0.00342496345, -0.261496335, 0.700516701, -0.967460155, 0.823783278, 0.102023199, -0.395447016};
// sgd_nesterov f64
const std::vector<double> k_sgd_nesterov_f64 = {0.44546951238922189, 0.19949218780762942, -0.10300819684192215, -0.50016835772991197, 0.48339546948683504, 0.33786620156074249, -0.31761093733182932, -0.54834040483000135, 0.37040222632884989, 0.0034249647810317314, -0.26149630512927974, 0.7005166666229149, -0.96746019814089368, 0.82378321116921971, 0.10202319920092007, -0.39544703980532009};
// sgd_plain f32
const std::vector<double> k_sgd_plain_f32 = {-0.0628819987, -0.0839069262, -0.144065768, -0.262072206, 0.458178818, 0.49524495, -0.480605483, -0.497884929, 0.18336086, 0.0836423934, 0.0495389737, 0.754608035, -0.849754751, 0.762377083, 0.114105701, -0.397081703};
// sgd_plain f64
const std::vector<double> k_sgd_plain_f64 = {-0.062882000000000063, -0.083906942399999934, -0.14406576384, -0.26207219712000007, 0.45817880576000003, 0.49524499999999994, -0.48060547872000003, -0.49788491327999995, 0.18336084991999999, 0.08364238848000001, 0.049539, 0.7546080300800001, -0.84975477046507752, 0.7623770288215429, 0.11410570302736897, -0.39708170959593803};
// lamb_groups f32
const std::vector<double> k_lamb_groups_f32 = {-0.674048066, -0.374634415, -0.0890073627, -0.0248571951, 0.513844848, 0.574659407, -0.574844539, -0.520477951, 0.0247285049, 0.0772346631, 0.374520361, 0.689759791, -0.875766933, 0.875766158, -0.062160477, -0.62435174};
// lamb_groups f64
const std::vector<double> k_lamb_groups_f64 = {-0.6740480522694714, -0.3746344352419585, -0.089007355389438519, -0.024857198142686495, 0.51384481775300217, 0.57465943836400857, -0.5748445572488271, -0.52047791222130713, 0.024728512091759604, 0.077234657347083027, 0.37452037963243145, 0.68975974872833745, -0.87576693139947259, 0.87576609606812972, -0.062160459120286664, -0.62435166699765854};
// lamb_variants f32
const std::vector<double> k_lamb_variants_f32 = {-0.674280703, -0.374625206, -0.0891017467, -0.0252502393, 0.514151871, 0.574895799, -0.575109422, -0.520944655, 0.0250953529, 0.0772155672, 0.374486655, 0.690234303, -0.675342143, 0.675340712, 0.076231055, -0.425375104};
// lamb_variants f64
const std::vector<double> k_lamb_variants_f64 = {-0.6742806892704245, -0.37462522964488343, -0.089101747875948503, -0.025250237040437905, 0.51415187525668482, 0.57489585046958236, -0.57510937102018145, -0.52094466019939734, 0.025095350806934077, 0.077215558670347559, 0.37448667652546075, 0.69023425487901047, -0.67534215024588418, 0.67534073162744002, 0.076231059273046423, -0.42537508004503022};

// torch.nn.utils.clip_grad_norm_([p1, p2], max_norm, norm_type) on float64 gradients
// g1[i] = ((i*13) % 9 - 4) / 3 (shape (3, 4)) and g2 = (2.5, -0.5, 1.5):
// {norm_type, max_norm, returned total, clipped g1 then g2}.
struct ClipCase {
  double norm_type, max_norm, total;
  std::vector<double> grads;
};
const std::vector<ClipCase> k_clip_cases = {
{2.0, 1.0, 4.3557114484573267, {-0.30611142243918399, 0, 0.30611142243918399, -0.076527855609795997, 0.22958356682938802, -0.15305571121959199, 0.15305571121959199, -0.22958356682938802, 0.076527855609795997, -0.30611142243918399, 0, 0.30611142243918399, 0.57395891707347002, -0.11479178341469401, 0.34437535024408206}},
{2.0, 100.0, 4.3557114484573267, {-1.3333333333333333, 0, 1.3333333333333333, -0.33333333333333331, 1, -0.66666666666666663, 0.66666666666666663, -1, 0.33333333333333331, -1.3333333333333333, 0, 1.3333333333333333, 2.5, -0.5, 1.5}},
{1.0, 1.0, 13.833333333333334, {-0.096385535201045647, 0, 0.096385535201045647, -0.024096383800261412, 0.072289151400784235, -0.048192767600522823, 0.048192767600522823, -0.072289151400784235, 0.024096383800261412, -0.096385535201045647, 0, 0.096385535201045647, 0.18072287850196059, -0.036144575700392118, 0.10843372710117635}},
{1.0, 100.0, 13.833333333333334, {-1.3333333333333333, 0, 1.3333333333333333, -0.33333333333333331, 1, -0.66666666666666663, 0.66666666666666663, -1, 0.33333333333333331, -1.3333333333333333, 0, 1.3333333333333333, 2.5, -0.5, 1.5}},
{kInfNorm, 1.0, 2.5, {-0.53333312000008526, 0, 0.53333312000008526, -0.13333328000002131, 0.399999840000064, -0.26666656000004263, 0.26666656000004263, -0.399999840000064, 0.13333328000002131, -0.53333312000008526, 0, 0.53333312000008526, 0.99999960000015997, -0.199999920000032, 0.59999976000009603}},
{kInfNorm, 100.0, 2.5, {-1.3333333333333333, 0, 1.3333333333333333, -0.33333333333333331, 1, -0.66666666666666663, 0.66666666666666663, -1, 0.33333333333333331, -1.3333333333333333, 0, 1.3333333333333333, 2.5, -0.5, 1.5}},
{3.0, 1.0, 3.1505801618274516, {-0.4232023442176463, 0, 0.4232023442176463, -0.10580058605441157, 0.31740175816323474, -0.21160117210882315, 0.21160117210882315, -0.31740175816323474, 0.10580058605441157, -0.4232023442176463, 0, 0.4232023442176463, 0.79350439540808682, -0.15870087908161737, 0.47610263724485213}},
{3.0, 100.0, 3.1505801618274516, {-1.3333333333333333, 0, 1.3333333333333333, -0.33333333333333331, 1, -0.66666666666666663, 0.66666666666666663, -1, 0.33333333333333331, -1.3333333333333333, 0, 1.3333333333333333, 2.5, -0.5, 1.5}},
};

// The problem: loss = sum(A*w*w + C*w) + sum(D*b*b*b), w: (3, 4), b: (4).
struct Problem {
  Tensor w, b, A, C, D;
  explicit Problem(DType dt) {
    std::vector<double> wv, bv, av, cv;
    for (int i = 0; i < 12; ++i) {
      wv.push_back(((i * 37) % 17 - 8) / 10.0);
      av.push_back(0.5 + 0.1 * ((i * 7) % 5));
      cv.push_back(((i * 3) % 11 - 5) / 5.0);
    }
    for (int i = 0; i < 4; ++i) bv.push_back(((i * 5) % 7 - 2.5) / 4.0);
    w = from_vector(wv, {3, 4}, dt).requires_grad_();
    b = from_vector(bv, {4}, dt).requires_grad_();
    A = from_vector(av, {3, 4}, dt);
    C = from_vector(cv, {3, 4}, dt);
    D = from_vector({0.3, -0.2, 0.5, 0.1}, {4}, dt);
  }
  Tensor loss() const { return sum(A * w * w + C * w) + sum(D * b * b * b); }
  std::vector<double> values() const {
    std::vector<double> v = w.to_double_vector(), bv = b.to_double_vector();
    v.insert(v.end(), bv.begin(), bv.end());
    return v;
  }
  void train(Optimizer& opt, int steps) const {
    for (int s = 0; s < steps; ++s) {
      opt.zero_grad();
      loss().backward();
      opt.step();
    }
  }
};

void check_values(const std::vector<double>& got, const std::vector<double>& want, double rtol, double atol) {
  REQUIRE(got.size() == want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    INFO("element " << i << ": got " << got[i] << ", want " << want[i]);
    CHECK(std::abs(got[i] - want[i]) <= atol + rtol * std::abs(want[i]));
  }
}

using Make = std::function<std::unique_ptr<Optimizer>(const Problem&)>;

// 5 steps in float32 and float64 against PyTorch's values.
void check_trajectory(const Make& make, const std::vector<double>& want_f32, const std::vector<double>& want_f64) {
  {
    Problem pb(DType::f32);
    auto opt = make(pb);
    pb.train(*opt, 5);
    INFO("float32");
    check_values(pb.values(), want_f32, 2e-6, 2e-7);
  }
  {
    Problem pb(DType::f64);
    auto opt = make(pb);
    pb.train(*opt, 5);
    INFO("float64");
    check_values(pb.values(), want_f64, 1e-12, 1e-14);
  }
}

Make adamw_groups = [](const Problem& pb) {
  ParamGroup bias({pb.b});
  bias.lr = 0.05;
  bias.weight_decay = 0.0;
  return std::make_unique<AdamW>(std::vector<ParamGroup>{ParamGroup({pb.w}), bias},
                                 AdamWOptions{.lr = 0.1, .weight_decay = 0.1});
};
Make adamw_amsgrad = [](const Problem& pb) {
  return std::make_unique<AdamW>(std::vector<ParamGroup>{{{pb.w, pb.b}}},
                                 AdamWOptions{.lr = 0.2, .beta1 = 0.8, .beta2 = 0.9, .eps = 1e-6, .weight_decay = 0.05,
                                              .amsgrad = true});
};
Make sgd_groups = [](const Problem& pb) {
  auto opt = std::make_unique<SGD>(std::vector<ParamGroup>{ParamGroup({pb.w})},
                                   SGDOptions{.lr = 0.05, .momentum = 0.9, .dampening = 0.1, .weight_decay = 0.01});
  ParamGroup bias({pb.b});
  bias.lr = 0.02;
  opt->add_param_group(bias);
  opt->options(1).momentum = 0.5;  // any hyper-parameter can differ per group
  return opt;
};
Make sgd_nesterov = [](const Problem& pb) {
  return std::make_unique<SGD>(std::vector<ParamGroup>{{{pb.w, pb.b}}},
                               SGDOptions{.lr = 0.05, .momentum = 0.9, .weight_decay = 0.05, .nesterov = true});
};
Make sgd_plain = [](const Problem& pb) {
  return std::make_unique<SGD>(std::vector<ParamGroup>{{{pb.w, pb.b}}}, SGDOptions{.lr = 0.1});
};
Make lamb_groups = [](const Problem& pb) {
  ParamGroup bias({pb.b});
  bias.weight_decay = 0.0;
  return std::make_unique<Lamb>(std::vector<ParamGroup>{ParamGroup({pb.w}), bias}, LambOptions{.lr = 0.05});
};
Make lamb_variants = [](const Problem& pb) {
  ParamGroup bias({pb.b});
  bias.weight_decay = 0.0;
  bias.lr = 0.02;
  return std::make_unique<Lamb>(std::vector<ParamGroup>{ParamGroup({pb.w}), bias},
                                LambOptions{.lr = 0.05, .weight_decay = 0.1, .bias_correction = false,
                                            .grad_averaging = false, .trust_clip = true, .always_adapt = true,
                                            .max_grad_norm = 0.0});
};

}  // namespace

TEST_CASE("AdamW follows torch.optim.AdamW, with per-group lr and weight decay, and amsgrad") {
  check_trajectory(adamw_groups, k_adamw_groups_f32, k_adamw_groups_f64);
  check_trajectory(adamw_amsgrad, k_adamw_amsgrad_f32, k_adamw_amsgrad_f64);
}

TEST_CASE("SGD follows torch.optim.SGD: momentum + dampening, nesterov, plain, per-group options") {
  check_trajectory(sgd_groups, k_sgd_groups_f32, k_sgd_groups_f64);
  check_trajectory(sgd_nesterov, k_sgd_nesterov_f32, k_sgd_nesterov_f64);
  check_trajectory(sgd_plain, k_sgd_plain_f32, k_sgd_plain_f64);
}

TEST_CASE("Lamb follows timm's Lamb: global clipping, trust ratio, no adaptation without decay, variants") {
  check_trajectory(lamb_groups, k_lamb_groups_f32, k_lamb_groups_f64);
  check_trajectory(lamb_variants, k_lamb_variants_f32, k_lamb_variants_f64);
  // The problem's gradient norm is above max_grad_norm = 1 at the first step, so clipping was
  // part of the trajectory above.
  Problem pb(DType::f64);
  auto opt = lamb_groups(pb);
  pb.train(*opt, 1);
  CHECK(dynamic_cast<Lamb&>(*opt).last_grad_norm() > 1.0);
}

TEST_CASE("optimizer state_dict round trip continues exactly") {
  for (auto [label, make] : std::vector<std::pair<const char*, Make>>{
           {"AdamW amsgrad", adamw_amsgrad}, {"SGD groups", sgd_groups}, {"Lamb", lamb_groups}}) {
    INFO(label);
    Problem straight(DType::f32);
    auto a = make(straight);
    straight.train(*a, 5);

    Problem first(DType::f32);
    auto b = make(first);
    first.train(*b, 3);
    StateDict saved = b->state_dict().clone();
    std::vector<double> at3 = first.values();
    // A fresh model with the step-3 values and a fresh optimizer (with a different lr, which
    // the loaded state must override).
    Problem resumed(DType::f32);
    {
      autograd::NoGradGuard ng;
      resumed.w.copy_(first.w.detach());
      resumed.b.copy_(first.b.detach());
    }
    auto c = make(resumed);
    c->set_lr(123.0);
    c->load_state_dict(saved);
    CHECK(c->lr(0) == b->lr(0));
    resumed.train(*c, 2);
    CHECK(resumed.values() == straight.values());  // bit for bit
    CHECK(resumed.values() != at3);
  }
}

TEST_CASE("optimizer state_dict contents and load errors") {
  Problem pb(DType::f32);
  auto opt = adamw_groups(pb);
  StateDict empty = opt->state_dict();
  CHECK(empty.contains("param_groups.1.lr"));
  CHECK(empty.at("param_groups.1.lr").item() == 0.05);
  CHECK(empty.at("param_groups.0.amsgrad").item() == 0.0);
  CHECK(!empty.contains("state.0.step"));  // nothing before the first step
  pb.train(*opt, 2);
  StateDict sd = opt->state_dict();
  CHECK(sd.at("state.1.step").item() == 2.0);
  CHECK(sd.at("state.0.exp_avg").shape() == Shape{3, 4});
  CHECK(sd.at("state.1.exp_avg_sq").shape() == Shape{4});

  StateDict bad = sd.clone();
  bad.set("state.0.exp_avg", zeros({4, 3}));
  bad.erase("param_groups.0.beta1");
  bad.insert("state.0.bogus_extra", zeros({2}));
  bad.insert("something", zeros({1}));
  Tensor before = opt->state_dict().at("state.1.exp_avg").clone();
  std::string msg;
  try {
    opt->load_state_dict(bad);
  } catch (const std::runtime_error& e) {
    msg = e.what();
  }
  CHECK(msg.find("Error(s) in loading state_dict for AdamW:") == 0);
  CHECK(msg.find("\"state.0.exp_avg\" should be float32 of shape [3, 4]") != std::string::npos);
  CHECK(msg.find("\"state.0.bogus_extra\" should be") != std::string::npos);
  CHECK(msg.find("missing key \"param_groups.0.beta1\"") != std::string::npos);
  CHECK(msg.find("unexpected key \"something\"") != std::string::npos);
  CHECK(opt->state_dict().at("state.1.exp_avg").to_double_vector() == before.to_double_vector());

  // An optimizer over different groups refuses the state.
  Problem other(DType::f32);
  AdamW single({ParamGroup({other.w, other.b})});
  CHECK_THROWS_WITH(single.load_state_dict(sd), doctest::Contains("group 0 has 2 parameters, the saved state has 1"));
}

TEST_CASE("parameters without a gradient are skipped; a step invalidates graphs that saved the parameter") {
  Problem pb(DType::f32);
  Tensor unused = ones({2}).requires_grad_();
  AdamW opt({ParamGroup({pb.w, pb.b, unused})}, {.lr = 0.1});
  pb.train(opt, 1);
  CHECK(unused.to_vector<float>() == std::vector<float>{1, 1});
  CHECK(!opt.state_dict().contains("state.2.step"));
  CHECK(opt.state_dict().contains("state.1.step"));

  Tensor loss = pb.loss();  // saves w and b for backward
  opt.step();
  CHECK_THROWS_WITH(loss.backward(), doctest::Contains("modified in place"));
}

TEST_CASE("parameter groups: LR-free groups take the defaults; set_lr; validation errors") {
  Problem pb(DType::f32);
  ParamGroup g1({pb.w});  // no lr, no weight decay: the optimizer's defaults
  ParamGroup g2({pb.b});
  g2.weight_decay = 0.0;
  AdamW opt({g1, g2}, {.lr = 0.3, .weight_decay = 0.07});
  CHECK(opt.num_groups() == 2);
  CHECK(opt.lr(0) == 0.3);
  CHECK(opt.lr(1) == 0.3);
  CHECK(opt.weight_decay(0) == 0.07);
  CHECK(opt.weight_decay(1) == 0.0);
  opt.set_lr(1, 0.01);
  CHECK(opt.options(1).lr == 0.01);
  opt.set_lr(0.5);
  CHECK(opt.lr(0) == 0.5);
  CHECK(opt.lr(1) == 0.5);
  opt.set_hyper(0, "amsgrad", 1.0);
  CHECK(opt.options(0).amsgrad);
  CHECK_THROWS_WITH(opt.hyper(0, "momentum"), doctest::Contains("no hyper-parameter \"momentum\""));
  CHECK_THROWS_WITH(opt.lr(5), doctest::Contains("no parameter group 5"));
  CHECK_THROWS_WITH(opt.set_lr(0, -1.0), doctest::Contains("lr must be >= 0"));

  // lr = 0 with SGD: nothing moves.
  SGD frozen({ParamGroup({pb.w})}, {.lr = 0.0, .momentum = 0.9});
  std::vector<double> before = pb.values();
  pb.train(frozen, 2);
  CHECK(pb.values() == before);

  CHECK_THROWS_WITH(AdamW({ParamGroup({pb.w, pb.w})}), doctest::Contains("appears more than once"));
  CHECK_THROWS_WITH(AdamW({ParamGroup({pb.w}), ParamGroup({pb.w})}), doctest::Contains("appears more than once"));
  CHECK_THROWS_WITH(SGD({ParamGroup({ones({2}, DType::bf16)})}), doctest::Contains("float32 or float64"));
  CHECK_THROWS_WITH(SGD({ParamGroup({pb.w * 2.0})}), doctest::Contains("not a leaf"));
  CHECK_THROWS_WITH(SGD({ParamGroup({ones({2, 3}).t()})}), doctest::Contains("not contiguous"));
  ParamGroup named = ParamGroup::from_named({{"a", pb.w}}, 0.1);
  named.names.push_back("extra");
  CHECK_THROWS_WITH(SGD({named}), doctest::Contains("1 parameters"));
  SGD nesterov({ParamGroup({pb.w})}, {.lr = 0.1, .nesterov = true});
  pb.loss().backward();
  CHECK_THROWS_WITH(nesterov.step(), doctest::Contains("nesterov momentum needs momentum > 0"));
  AdamW bad_beta({ParamGroup({pb.w})}, {.beta1 = 1.0});
  CHECK_THROWS_WITH(bad_beta.step(), doctest::Contains("beta1 must be in [0"));
  // A gradient whose dtype differs from the parameter's is refused by name.
  AdamW named_opt({ParamGroup::from_named({{"blocks.0.w", pb.w}})});
  pb.w.set_grad(zeros({3, 4}, DType::f64));
  CHECK_THROWS_WITH(named_opt.step(), doctest::Contains("\"blocks.0.w\" is float64"));
}

TEST_CASE("weight_decay_groups: timm's rule plus the RoPE / Swin names") {
  std::vector<NamedTensor> named = {
      {"cls_token", zeros({1, 1, 4}).requires_grad_()},
      {"pos_embed", zeros({1, 5, 4}).requires_grad_()},
      {"freqs", zeros({2, 2, 4}).requires_grad_()},
      {"patch_embed.proj.weight", zeros({4, 3, 2, 2}).requires_grad_()},
      {"blocks.0.norm1.weight", zeros({4}).requires_grad_()},
      {"blocks.0.attn.qkv.weight", zeros({12, 4}).requires_grad_()},
      {"blocks.0.attn.qkv.bias", zeros({12}).requires_grad_()},
      {"blocks.0.attn.rope.freqs", zeros({2, 2, 2}).requires_grad_()},
      {"layers.0.blocks.1.attn.rope_freqs", zeros({2, 2, 2}).requires_grad_()},
      {"layers.0.blocks.1.attn.relative_position_bias_table", zeros({9, 2}).requires_grad_()},
      {"layers.0.blocks.1.attn.my_freqs_table", zeros({9, 2}).requires_grad_()},  // not a listed name
      {"frozen.weight", zeros({3, 3})},                                             // no grad: left out
      {"head.weight", zeros({10, 4}).requires_grad_()},
  };
  auto groups = weight_decay_groups(named, 0.05);
  REQUIRE(groups.size() == 2);
  CHECK(groups[0].weight_decay == 0.0);
  CHECK(!groups[0].lr.has_value());
  CHECK(groups[0].names == std::vector<std::string>{"cls_token", "pos_embed", "freqs", "blocks.0.norm1.weight",
                                                    "blocks.0.attn.qkv.bias", "blocks.0.attn.rope.freqs",
                                                    "layers.0.blocks.1.attn.rope_freqs",
                                                    "layers.0.blocks.1.attn.relative_position_bias_table"});
  CHECK(groups[1].weight_decay == 0.05);
  CHECK(groups[1].names == std::vector<std::string>{"patch_embed.proj.weight", "blocks.0.attn.qkv.weight",
                                                    "layers.0.blocks.1.attn.my_freqs_table", "head.weight"});
  CHECK(groups[1].params[3].same(named[12].second));
  // A custom list with a glob.
  auto custom = weight_decay_groups(named, 0.1, {"blocks.*.attn.qkv.weight"});
  CHECK(custom[0].names == std::vector<std::string>{"blocks.0.norm1.weight", "blocks.0.attn.qkv.weight",
                                                    "blocks.0.attn.qkv.bias"});  // 1-D ones and the glob
  CHECK(name_matches("blocks.11.attn.qkv.weight", "blocks.*.qkv.weight"));
  CHECK(!name_matches("blocks.1.attn.qkv.weight", "blocks.?.qkv.weight"));
  CHECK(name_matches("a.b.pos_embed", "pos_embed"));
  CHECK(!name_matches("a.b.my_pos_embed", "pos_embed"));
  // Only decayed parameters: one group.
  auto only = weight_decay_groups({{"w", zeros({2, 2}).requires_grad_()}}, 0.1);
  REQUIRE(only.size() == 1);
  CHECK(only[0].weight_decay == 0.1);
  // The groups feed an optimizer directly.
  AdamW opt(groups, {.lr = 1e-3, .weight_decay = 0.3});
  CHECK(opt.weight_decay(0) == 0.0);
  CHECK(opt.weight_decay(1) == 0.05);
  CHECK(opt.names(1)[0] == "patch_embed.proj.weight");
}

TEST_CASE("clip_grad_norm_ matches torch for norms 2, 1, inf and 3") {
  for (const auto& c : k_clip_cases) {
    for (DType dt : {DType::f64, DType::f32}) {
      INFO("norm_type " << c.norm_type << ", max_norm " << c.max_norm << ", " << dtype_name(dt));
      std::vector<double> g1, g2 = {2.5, -0.5, 1.5};
      for (int i = 0; i < 12; ++i) g1.push_back(((i * 13) % 9 - 4) / 3.0);
      Tensor p1 = zeros({3, 4}, dt).requires_grad_(), p2 = zeros({3}, dt).requires_grad_(), p3 = zeros({2}, dt);
      p1.set_grad(from_vector(g1, {3, 4}, dt));
      p2.set_grad(from_vector(g2, {3}, dt));
      double total = clip_grad_norm_({p1, p2, p3}, c.max_norm, c.norm_type);
      double tol = dt == DType::f64 ? 1e-14 : 1e-6;
      CHECK(std::abs(total - c.total) <= tol * c.total);
      std::vector<double> got = p1.grad().to_double_vector(), got2 = p2.grad().to_double_vector();
      got.insert(got.end(), got2.begin(), got2.end());
      check_values(got, c.grads, tol, tol);
      CHECK(!p3.grad().defined());
    }
  }
}

TEST_CASE("clip_grad_norm_: strided gradients, empty lists, non-finite totals; clip_grad_value_") {
  Tensor p = zeros({2, 3}).requires_grad_();
  p.set_grad(from_vector(std::vector<float>{3, 0, 0, 4, 0, 0}, {3, 2}).t());  // (2, 3) view [[3, 0, 0], [0, 4, 0]]
  double total = clip_grad_norm_({p}, 1.0);
  CHECK(total == doctest::Approx(5.0));
  CHECK(p.grad().is_contiguous());
  std::vector<float> g = p.grad().to_vector<float>();
  CHECK(g[0] == doctest::Approx(3.0 / (5.0 + 1e-6)));
  CHECK(g[4] == doctest::Approx(4.0 / (5.0 + 1e-6)));
  CHECK(clip_grad_norm_({zeros({2})}, 1.0) == 0.0);

  Tensor q = zeros({2}).requires_grad_();
  q.set_grad(from_vector(std::vector<float>{INFINITY, 1.0f}, {2}));
  CHECK(std::isinf(clip_grad_norm_({q}, 1.0)));
  q.set_grad(from_vector(std::vector<float>{NAN, 1.0f}, {2}));
  CHECK_THROWS_WITH(clip_grad_norm_({q}, 1.0, 2.0, /*error_if_nonfinite=*/true), doctest::Contains("non-finite"));
  CHECK(std::isnan(clip_grad_norm_({q}, 1.0, kInfNorm)));
  CHECK_THROWS_WITH(clip_grad_norm_({q}, 1.0, 0.0), doctest::Contains("norm_type must be > 0"));

  Tensor r = zeros({5}, DType::f64).requires_grad_();
  r.set_grad(from_vector({-3.0, -0.5, 0.0, 0.7, 9.0}, {5}, DType::f64));
  clip_grad_value_({r}, 0.6);
  CHECK(r.grad().to_double_vector() == std::vector<double>{-0.6, -0.5, 0.0, 0.6, 0.6});
  CHECK_THROWS_WITH(clip_grad_value_({r}, -1.0), doctest::Contains("clip_value must be >= 0"));
}

TEST_CASE("large updates and norms do not depend on the thread count") {
#ifdef _OPENMP
  const int saved = omp_get_max_threads();
  auto run = [](int threads) {
    omp_set_num_threads(threads);
    Tensor w = test::test_tensor({300, 301}, 42).requires_grad_();   // 90300 elements: many norm blocks
    Tensor b = test::test_tensor({301}, 43).requires_grad_();
    Lamb opt({ParamGroup({w, b})}, {.lr = 0.01, .max_grad_norm = 0.5});
    std::vector<double> norms;
    for (int s = 0; s < 2; ++s) {
      opt.zero_grad();
      sum(w * w * 0.5 + b).backward();
      opt.step();
      norms.push_back(opt.last_grad_norm());
    }
    w.set_grad(test::test_tensor({300, 301}, 44));
    norms.push_back(clip_grad_norm_({w}, 0.1));
    std::vector<double> v = w.to_double_vector();
    v.insert(v.end(), norms.begin(), norms.end());
    return v;
  };
  std::vector<double> one = run(1), two = run(2), three = run(3);
  omp_set_num_threads(saved);
  CHECK(one == two);
  CHECK(one == three);
#else
  MESSAGE("built without OpenMP: nothing to compare");
#endif
}
