// bench_ops_vit.cpp: op cases on the shapes of ViT-S/16 at 224, batch 32, with RoPE-Mixed:
// B=32, N=197 tokens (196 patches + CLS), C=384, NH=6, HD=64, MLP hidden 1536, so the linear
// layers see M = B*N = 6304 rows. Names are the keys tools/bench_torch_ops.py uses too
// ("vit_s16/<name>"): change them in both places.
#include <cstdio>
#include <memory>
#include <vector>

#include "engine/ops/activation.h"
#include "engine/ops/attention.h"
#include "engine/ops/conv.h"
#include "engine/ops/dropout.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/interpolate.h"
#include "engine/ops/layernorm.h"
#include "engine/ops/loss.h"
#include "engine/ops/matmul.h"
#include "engine/ops/reduce.h"
#include "engine/ops/rope.h"
#include "engine/ops/shape.h"
#include "engine/ops/softmax.h"
#include "engine/optim/adamw.h"
#include "engine/rng.h"
#include "train/bench/bench_cases.h"

namespace rv::bench {

// Named, not anonymous: bench_ops_swin.cpp has its own B, N, C, ... and a unity build compiles both
// files as one (cmake/Unity.cmake).
namespace vit_s16_shapes {

constexpr const char* G = "vit_s16";
constexpr int64_t B = 32, N = 197, C = 384, NH = 6, HD = 64, MLP = 1536, IMG = 224, P = 16;
constexpr int64_t GRID = IMG / P, NP = GRID * GRID;  // 14 x 14 = 196 patches

// The shapes of ViT-S/16's parameters (about 22M), for the optimizer step.
std::vector<Shape> vit_s16_param_shapes() {
  std::vector<Shape> s = {{C, 3, P, P}, {C}, {1, 1, C}, {1, NP + 1, C}};  // patch embed, CLS, APE
  for (int blk = 0; blk < 12; ++blk) {
    for (const Shape& t : std::vector<Shape>{{C}, {C}, {3 * C, C}, {3 * C}, {C, C}, {C},  // norm1, qkv, proj
                                             {2, NH, HD / 2},                             // RoPE-Mixed freqs
                                             {C}, {C}, {MLP, C}, {MLP}, {C, MLP}, {C}})   // norm2, fc1, fc2
      s.push_back(t);
  }
  s.insert(s.end(), {{C}, {C}, {1000, C}, {1000}});  // final norm, head
  return s;
}

}  // namespace vit_s16_shapes

void add_vit_cases(std::vector<Case>& cases) {
  using namespace vit_s16_shapes;
  const Shape x_shape{B, N, C}, h_shape{B, N, MLP};
  const double x_n = double(shape_numel(x_shape)), h_n = double(shape_numel(h_shape));

  // ---- the four linear layers of a block, forward and backward ---------------------------------
  struct Lin {
    const char* name;
    int64_t in, out;
  };
  for (Lin l : {Lin{"qkv", C, 3 * C}, Lin{"proj", C, C}, Lin{"fc1", C, MLP}, Lin{"fc2", MLP, C}}) {
    std::string shape = "(6304x" + std::to_string(l.in) + ")->" + std::to_string(l.out);
    cases.push_back(linear_case(G, std::string("linear ") + l.name + " " + shape, {B, N, l.in}, l.out, true, 10));
  }
  for (Lin l : {Lin{"qkv", C, 3 * C}, Lin{"proj", C, C}, Lin{"fc1", C, MLP}, Lin{"fc2", MLP, C}}) {
    std::string shape = "(6304x" + std::to_string(l.in) + ")->" + std::to_string(l.out);
    cases.push_back(
        linear_backward_case(G, std::string("linear ") + l.name + " " + shape + " backward", {B, N, l.in}, l.out, true, 20));
  }

  // ---- the unfused attention's two products -----------------------------------------------------
  cases.push_back(batched_matmul_case(G, "matmul q.kT (32,6,197,64)x(64,197)", {B, NH}, N, HD, N, true, 30));
  cases.push_back(batched_matmul_case(G, "matmul p.v (32,6,197,197)x(197,64)", {B, NH}, N, N, HD, false, 32));

  // ---- patch embedding: conv 3 -> 384, kernel = stride = 16 ------------------------------------
  {
    const double flops = 2.0 * B * NP * C * (3 * P * P);
    cases.push_back(forward_case(G, "conv2d patch embed 3->384 k16 s16 (32,3,224,224)", flops,
                                 f32_bytes({{B, 3, IMG, IMG}, {C, 3, P, P}, {B, C, GRID, GRID}}), [] {
                                   Tensor img = bench_input({B, 3, IMG, IMG}, 40), w = bench_input({C, 3, P, P}, 41);
                                   Tensor b = bench_input({C}, 42);
                                   return [=] { conv2d(img, w, b, {P, P}); };
                                 }));
    // The image needs no gradient: dW = dYᵀ·patches (2 M K N) and db.
    cases.push_back(backward_case(G, "conv2d patch embed backward", flops + double(B * NP * C),
                                  f32_bytes({{B, C, GRID, GRID}, {B, 3, IMG, IMG}, {C, 3, P, P}}), [] {
                                    Tensor img = bench_input({B, 3, IMG, IMG}, 40);
                                    Tensor wl = bench_leaf({C, 3, P, P}, 41), bl = bench_leaf({C}, 42);
                                    return BackwardSetup{{wl, bl}, [=] { return conv2d(img, wl, bl, {P, P}); }};
                                  }));
  }

  // ---- layer norm over C -------------------------------------------------------------------------
  // forward: mean, var (3 per element), normalise and affine (4 per element)
  cases.push_back(forward_case(G, "layer_norm (32,197,384)", 7 * x_n, f32_bytes({x_shape, x_shape}), [=] {
    Tensor x = bench_input(x_shape, 50), w = bench_input({C}, 51), b = bench_input({C}, 52);
    return [=] { layer_norm(x, {C}, w, b); };
  }));
  // backward: x_hat, dy*w, two row sums, dx (about 8 per element) + dW, db (3 per element)
  cases.push_back(backward_case(G, "layer_norm (32,197,384) backward", 11 * x_n,
                                f32_bytes({x_shape, x_shape, x_shape}), [=] {
                                  Tensor xl = bench_leaf(x_shape, 50), wl = bench_leaf({C}, 51);
                                  Tensor bl = bench_leaf({C}, 52);
                                  return BackwardSetup{{xl, wl, bl}, [=] { return layer_norm(xl, {C}, wl, bl); }};
                                }));

  // ---- softmax over the keys of the unfused attention --------------------------------------------
  {
    const Shape s{B, NH, N, N};
    const double n = double(shape_numel(s));
    // max, subtract, exp, sum, scale
    cases.push_back(forward_case(G, "softmax (32,6,197,197)", 5 * n, f32_bytes({s, s}), [=] {
      Tensor x = bench_input(s, 60);
      return [=] { softmax(x, -1); };
    }));
    // dx = y * (dy - sum(dy * y)): 4 per element; reads y and dy, writes dx
    cases.push_back(backward_case(G, "softmax (32,6,197,197) backward", 4 * n, f32_bytes({s, s, s}), [=] {
      Tensor xl = bench_leaf(s, 60);
      return BackwardSetup{{xl}, [=] { return softmax(xl, -1); }};
    }));
  }

  // ---- GELU (erf) on the MLP hidden --------------------------------------------------------------
  // 0.5 x (1 + erf(x / sqrt 2)): 4 + erf
  cases.push_back(forward_case(G, "gelu (32,197,1536)", 5 * h_n, f32_bytes({h_shape, h_shape}), [=] {
    Tensor h = bench_input(h_shape, 70);
    return [=] { gelu(h); };
  }));
  // dy * (Phi(x) + x phi(x)): erf + exp + about 6
  cases.push_back(
      backward_case(G, "gelu (32,197,1536) backward", 8 * h_n, f32_bytes({h_shape, h_shape, h_shape}), [=] {
        Tensor hl = bench_leaf(h_shape, 70);
        return BackwardSetup{{hl}, [=] { return gelu(hl); }};
      }));

  // ---- elementwise: residual add, LayerScale-style mul -------------------------------------------
  cases.push_back(
      forward_case(G, "add residual (32,197,384)", x_n, f32_bytes({x_shape, x_shape, x_shape}), [=] {
        Tensor a = bench_input(x_shape, 1), b = bench_input(x_shape, 2);
        return [=] { add(a, b); };
      }));
  cases.push_back(
      forward_case(G, "mul by channel (32,197,384)*(384)", x_n, f32_bytes({x_shape, {C}, x_shape}), [=] {
        Tensor a = bench_input(x_shape, 1), g = bench_input({C}, 3);
        return [=] { mul(a, g); };
      }));

  // ---- RoPE-Mixed on q: a (B, NH, N, HD) view of the qkv projection, CLS skipped ---------------
  {
    const Shape q_shape{B, NH, N, HD}, a_shape{NH, NP, HD / 2};
    const double pairs = double(B * NH * NP * HD / 2);
    // per pair: 4 mul + 2 add; sin and cos once per angle
    cases.push_back(forward_case(G, "rope_apply q view (32,6,197,64) angles (6,196,32)",
                                 6 * pairs + 2 * double(shape_numel(a_shape)),
                                 f32_bytes({q_shape, a_shape, q_shape}), [=] {
                                   Tensor qkv = bench_input({B, N, 3, NH, HD}, 80);
                                   Tensor q = qkv.permute({2, 0, 3, 1, 4}).select(0, 0);  // (B, NH, N, HD), strided
                                   Tensor angles = bench_input(a_shape, 81);
                                   return [=] { rope_apply(q, angles, 1); };
                                 }));
    // backward w.r.t. q (a contiguous leaf here) and the angles (learned frequencies):
    // dx: a rotation by -a (6 per pair); da = sum over B of dy . (rotated x) (4 per pair)
    cases.push_back(backward_case(G, "rope_apply (32,6,197,64) backward", 10 * pairs,
                                  f32_bytes({q_shape, q_shape, a_shape, q_shape, a_shape}), [=] {
                                    Tensor ql = bench_leaf(q_shape, 82), al = bench_leaf(a_shape, 81);
                                    return BackwardSetup{{ql, al}, [=] { return rope_apply(ql, al, 1); }};
                                  }));
  }

  // ---- fused attention ---------------------------------------------------------------------------
  {
    const Shape s{B, NH, N, HD};
    const double qk = 2.0 * B * NH * N * N * HD;  // one of the products
    const double scores = double(B * NH * N * N);
    // q.kT and p.v, plus scale, max, exp, sum, divide on the scores
    cases.push_back(forward_case(G, "sdpa fused (32,6,197,64)", 2 * qk + 5 * scores, f32_bytes({s, s, s, s}), [=] {
      Tensor q = bench_input(s, 90), k = bench_input(s, 91), v = bench_input(s, 92);
      return [=] { scaled_dot_product_attention(q, k, v, Tensor(), Tensor(), std::nullopt, AttentionImpl::fused); };
    }));
    // dV = pT.dO, dP = dO.vT, dQ = dS.k, dK = dST.q (4 products) + dS = p * (dP - rowsum) (3)
    cases.push_back(backward_case(G, "sdpa fused (32,6,197,64) backward", 4 * qk + 3 * scores,
                                  f32_bytes({s, s, s, s, s, s, s, s}), [=] {
                                    Tensor ql = bench_leaf(s, 90), kl = bench_leaf(s, 91), vl = bench_leaf(s, 92);
                                    return BackwardSetup{{ql, kl, vl}, [=] {
                                                           return scaled_dot_product_attention(
                                                               ql, kl, vl, Tensor(), Tensor(), std::nullopt,
                                                               AttentionImpl::fused);
                                                         }};
                                  }));
  }

  // ---- regularisers: dropout and drop-path (training) --------------------------------------------
  cases.push_back(forward_case(G, "dropout p=0.1 (32,197,384)", 2 * x_n, f32_bytes({x_shape, x_shape}), [=] {
    Tensor x = bench_input(x_shape, 100);
    auto gen = std::make_shared<Generator>(7);
    return [=] { dropout(x, 0.1, true, *gen); };
  }));
  cases.push_back(forward_case(G, "drop_path p=0.1 (32,197,384)", x_n, f32_bytes({x_shape, x_shape}), [=] {
    Tensor x = bench_input(x_shape, 100);
    auto gen = std::make_shared<Generator>(7);
    return [=] { drop_path(x, 0.1, true, *gen); };
  }));

  // ---- loss --------------------------------------------------------------------------------------
  {
    const Shape s{B, 1000};
    auto targets = [] {  // fixed class indices
      std::vector<int64_t> t(B);
      for (int64_t i = 0; i < B; ++i) t[size_t(i)] = (i * 37) % 1000;
      return from_vector(t, {B});
    };
    // log_softmax (max, sub, exp, sum, log) and the pick
    cases.push_back(forward_case(G, "cross_entropy (32,1000)", 5.0 * shape_numel(s), f32_bytes({s}), [=] {
      Tensor logits = bench_input(s, 110), target = targets();
      return [=] { cross_entropy(logits, target); };
    }));
    cases.push_back(
        backward_case(G, "cross_entropy (32,1000) backward", 3.0 * shape_numel(s), f32_bytes({s, s}), [=] {
          Tensor ll = bench_leaf(s, 110), target = targets();
          return BackwardSetup{{ll}, [=] { return cross_entropy(ll, target); }};
        }));
  }

  // ---- reductions: the token mean of a pooled head; a sum over tokens ----------------------------
  cases.push_back(forward_case(G, "sum over tokens (32,197,384)", x_n, f32_bytes({x_shape, {B, C}}), [=] {
    Tensor x = bench_input(x_shape, 3);
    return [=] { sum(x, {1}); };
  }));
  cases.push_back(forward_case(G, "mean over tokens (32,197,384)", x_n, f32_bytes({x_shape, {B, C}}), [=] {
    Tensor x = bench_input(x_shape, 3);
    return [=] { mean(x, {1}); };
  }));

  // ---- CLS token prepended to the patch tokens ---------------------------------------------------
  cases.push_back(forward_case(G, "cat cls token (32,1,384)+(32,196,384)", 0,
                               f32_bytes({{B, 1, C}, {B, NP, C}, x_shape}), [] {
                                 Tensor cls = bench_input({1, 1, C}, 120), tokens = bench_input({B, NP, C}, 121);
                                 Tensor cls_b = cls.expand({B, 1, C});
                                 return [=] { cat({cls_b, tokens}, 1); };
                               }));

  // ---- absolute position embedding resized for 256x256 input: 14x14 -> 16x16 bicubic ----------
  // 16 taps per output, one multiply-add each
  cases.push_back(forward_case(G, "interpolate bicubic (1,384,14,14)->16x16", 2.0 * 16 * C * 16 * 16,
                               f32_bytes({{1, C, GRID, GRID}, {1, C, 16, 16}}), [] {
                                 Tensor pe = bench_input({1, C, GRID, GRID}, 130);
                                 return [=] { interpolate(pe, {.size = {16, 16}, .mode = "bicubic"}); };
                               }));

  // ---- AdamW step over ViT-S/16's parameters -----------------------------------------------------
  {
    double n = 0;
    for (const Shape& s : vit_s16_param_shapes()) n += double(shape_numel(s));
    // per element about 13 operations (decay, lerp, second moment, sqrt, divide, update);
    // reads p, g, m, v and writes p, m, v
    char name[64];
    std::snprintf(name, sizeof name, "adamw step ViT-S/16 params (%.1fM)", n / 1e6);
    cases.push_back(forward_case(G, name, 13 * n, 7 * 4 * n, [] {
      std::vector<Tensor> params;
      uint64_t seed = 200;
      for (const Shape& s : vit_s16_param_shapes()) {
        Tensor p = bench_leaf(s, seed++);
        p.set_grad(bench_input(s, seed++));
        params.push_back(p);
      }
      auto opt = std::make_shared<optim::AdamW>(std::vector<optim::ParamGroup>{optim::ParamGroup(params)},
                                                optim::AdamWOptions{.lr = 1e-4, .weight_decay = 0.05});
      return [opt] { opt->step(); };
    }));
  }
}

}  // namespace rv::bench
