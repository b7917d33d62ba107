// bench_ops_swin.cpp: op cases on the shapes of Swin-T's first stage at 224, batch 32: 56x56
// tokens of C=96, 7x7 windows (64 per image, 2048 in all) of N=49 tokens, NH=3 heads of HD=32,
// MLP hidden 384, so the linear layers see M = 32*3136 = 100352 rows. The shifted block adds a
// relative-position bias (NH, N, N) and the shift mask (nW, N, N): one (nW*NH, N, N) bias for
// q laid out (B, nW*NH, N, HD). Names are the keys tools/bench_torch_ops.py uses too
// ("swin_t/<name>"): change them in both places.
#include <memory>

#include "engine/ops/activation.h"
#include "engine/ops/attention.h"
#include "engine/ops/conv.h"
#include "engine/ops/elementwise.h"
#include "engine/ops/layernorm.h"
#include "engine/ops/math.h"
#include "engine/ops/matmul.h"
#include "engine/ops/rope.h"
#include "engine/ops/shape.h"
#include "engine/ops/softmax.h"
#include "train/bench/bench_cases.h"

namespace rv::bench {

// Named, not anonymous: bench_ops_vit.cpp has its own B, N, C, ... and a unity build compiles both
// files as one (cmake/Unity.cmake).
namespace swin_t_shapes {

constexpr const char* G = "swin_t";
constexpr int64_t B = 32, H = 56, W = 56, C = 96, WS = 7, N = WS * WS, NH = 3, HD = 32, MLP = 384;
constexpr int64_t NW = (H / WS) * (W / WS), BW = B * NW;  // 64 windows per image, 2048 in all
constexpr int64_t L = H * W;                              // 3136 tokens per image

}  // namespace swin_t_shapes

void add_swin_cases(std::vector<Case>& cases) {
  using namespace swin_t_shapes;
  const Shape x_shape{B, L, C}, h_shape{B, L, MLP}, img_shape{B, H, W, C};
  const double x_n = double(shape_numel(x_shape)), h_n = double(shape_numel(h_shape));

  // ---- linear layers of a block (on windows (2048, 49, C) or tokens: the same rows) ------------
  struct Lin {
    const char* name;
    int64_t in, out;
  };
  const Lin lins[] = {{"qkv", C, 3 * C}, {"proj", C, C}, {"fc1", C, MLP}, {"fc2", MLP, C}};
  for (Lin l : lins) {
    std::string shape = "(100352x" + std::to_string(l.in) + ")->" + std::to_string(l.out);
    cases.push_back(linear_case(G, std::string("linear ") + l.name + " " + shape, {B, L, l.in}, l.out, true, 10));
  }
  for (Lin l : lins) {
    std::string shape = "(100352x" + std::to_string(l.in) + ")->" + std::to_string(l.out);
    cases.push_back(
        linear_backward_case(G, std::string("linear ") + l.name + " " + shape + " backward", {B, L, l.in}, l.out, true, 20));
  }
  // patch merging's reduction: (B, 28*28, 4C) -> 2C, no bias
  cases.push_back(linear_case(G, "linear merge reduction (25088x384)->192", {B, L / 4, 4 * C}, 2 * C, false, 25));

  // ---- the unfused window attention's two products ---------------------------------------------
  cases.push_back(batched_matmul_case(G, "matmul q.kT (2048,3,49,32)x(32,49)", {BW, NH}, N, HD, N, true, 30));
  cases.push_back(batched_matmul_case(G, "matmul p.v (2048,3,49,49)x(49,32)", {BW, NH}, N, N, HD, false, 32));

  // ---- patch embedding: conv 3 -> 96, kernel = stride = 4 --------------------------------------
  cases.push_back(forward_case(G, "conv2d patch embed 3->96 k4 s4 (32,3,224,224)", 2.0 * B * L * C * 48,
                               f32_bytes({{B, 3, 224, 224}, {C, 3, 4, 4}, {B, C, H, W}}), [] {
                                 Tensor img = bench_input({B, 3, 224, 224}, 40), w = bench_input({C, 3, 4, 4}, 41);
                                 Tensor b = bench_input({C}, 42);
                                 return [=] { conv2d(img, w, b, {4, 4}); };
                               }));

  // ---- layer norm over C = 96 --------------------------------------------------------------------
  cases.push_back(forward_case(G, "layer_norm (32,3136,96)", 7 * x_n, f32_bytes({x_shape, x_shape}), [=] {
    Tensor x = bench_input(x_shape, 50), w = bench_input({C}, 51), b = bench_input({C}, 52);
    return [=] { layer_norm(x, {C}, w, b); };
  }));
  cases.push_back(backward_case(G, "layer_norm (32,3136,96) backward", 11 * x_n,
                                f32_bytes({x_shape, x_shape, x_shape}), [=] {
                                  Tensor xl = bench_leaf(x_shape, 50), wl = bench_leaf({C}, 51);
                                  Tensor bl = bench_leaf({C}, 52);
                                  return BackwardSetup{{xl, wl, bl}, [=] { return layer_norm(xl, {C}, wl, bl); }};
                                }));

  // ---- softmax over 49 keys ----------------------------------------------------------------------
  {
    const Shape s{BW, NH, N, N};
    const double n = double(shape_numel(s));
    cases.push_back(forward_case(G, "softmax (2048,3,49,49)", 5 * n, f32_bytes({s, s}), [=] {
      Tensor x = bench_input(s, 60);
      return [=] { softmax(x, -1); };
    }));
    cases.push_back(backward_case(G, "softmax (2048,3,49,49) backward", 4 * n, f32_bytes({s, s, s}), [=] {
      Tensor xl = bench_leaf(s, 60);
      return BackwardSetup{{xl}, [=] { return softmax(xl, -1); }};
    }));
  }

  // ---- GELU on the MLP hidden --------------------------------------------------------------------
  cases.push_back(forward_case(G, "gelu (32,3136,384)", 5 * h_n, f32_bytes({h_shape, h_shape}), [=] {
    Tensor h = bench_input(h_shape, 70);
    return [=] { gelu(h); };
  }));
  cases.push_back(
      backward_case(G, "gelu (32,3136,384) backward", 8 * h_n, f32_bytes({h_shape, h_shape, h_shape}), [=] {
        Tensor hl = bench_leaf(h_shape, 70);
        return BackwardSetup{{hl}, [=] { return gelu(hl); }};
      }));

  // ---- residual add ------------------------------------------------------------------------------
  cases.push_back(
      forward_case(G, "add residual (32,3136,96)", x_n, f32_bytes({x_shape, x_shape, x_shape}), [=] {
        Tensor a = bench_input(x_shape, 1), b = bench_input(x_shape, 2);
        return [=] { add(a, b); };
      }));

  // ---- RoPE in windows: every token rotated by its window-local position, per head -------------
  {
    const Shape q_shape{BW, NH, N, HD}, a_shape{NH, N, HD / 2};
    const double pairs = double(BW * NH * N * HD / 2);
    cases.push_back(forward_case(G, "rope_apply q view (2048,3,49,32) angles (3,49,16)",
                                 6 * pairs + 2 * double(shape_numel(a_shape)), f32_bytes({q_shape, a_shape, q_shape}),
                                 [=] {
                                   Tensor qkv = bench_input({BW, N, 3, NH, HD}, 80);
                                   Tensor q = qkv.permute({2, 0, 3, 1, 4}).select(0, 0);  // (2048, NH, N, HD), strided
                                   Tensor angles = bench_input(a_shape, 81);
                                   return [=] { rope_apply(q, angles, 0); };
                                 }));
    cases.push_back(backward_case(G, "rope_apply (2048,3,49,32) backward", 10 * pairs,
                                  f32_bytes({q_shape, q_shape, a_shape, q_shape, a_shape}), [=] {
                                    Tensor ql = bench_leaf(q_shape, 82), al = bench_leaf(a_shape, 81);
                                    return BackwardSetup{{ql, al}, [=] { return rope_apply(ql, al, 0); }};
                                  }));
  }

  // ---- fused window attention with relative-position bias + shift mask -------------------------
  {
    const Shape s{B, NW * NH, N, HD}, bias_shape{NW * NH, N, N};
    const double qk = 2.0 * B * NW * NH * N * N * HD;
    const double scores = double(B * NW * NH * N * N);
    // relative-position bias (NH, N, N) + mask (nW, 1, N, N) of 0 / -100 -> (nW*NH, N, N)
    auto make_bias = [bias_shape] {
      Tensor rel = bench_input({1, NH, N, N}, 93);
      Tensor mask = mul(gt(bench_input({NW, 1, N, N}, 94), 0.0).to(DType::f32), -100.0);
      return add(rel, mask).reshape(bias_shape).contiguous();
    };
    cases.push_back(forward_case(G, "sdpa fused bias+mask (32,192,49,32)", 2 * qk + 6 * scores,
                                 f32_bytes({s, s, s, bias_shape, s}), [=] {
                                   Tensor q = bench_input(s, 90), k = bench_input(s, 91), v = bench_input(s, 92);
                                   Tensor bias = make_bias();
                                   return [=] {
                                     scaled_dot_product_attention(q, k, v, bias, Tensor(), std::nullopt,
                                                                  AttentionImpl::fused);
                                   };
                                 }));
    // the 4 products and dS; dBias = sum over B of dS (1 per score)
    cases.push_back(backward_case(G, "sdpa fused bias+mask (32,192,49,32) backward", 4 * qk + 4 * scores,
                                  f32_bytes({s, s, s, s, s, s, s, s, bias_shape, bias_shape}), [=] {
                                    Tensor ql = bench_leaf(s, 90), kl = bench_leaf(s, 91), vl = bench_leaf(s, 92);
                                    Tensor bl = make_bias();
                                    bl.requires_grad_(true);
                                    return BackwardSetup{{ql, kl, vl, bl}, [=] {
                                                           return scaled_dot_product_attention(
                                                               ql, kl, vl, bl, Tensor(), std::nullopt,
                                                               AttentionImpl::fused);
                                                         }};
                                  }));
  }

  // ---- the shifted-window data movement --------------------------------------------------------
  {
    const double bytes = f32_bytes({img_shape, img_shape});
    cases.push_back(forward_case(G, "roll -3,-3 (32,56,56,96)", 0, bytes, [=] {
      Tensor x = bench_input(img_shape, 140);
      return [=] { roll(x, {-3, -3}, {1, 2}); };
    }));
    cases.push_back(forward_case(G, "window_partition 7 (32,56,56,96)", 0, bytes, [=] {
      Tensor x = bench_input(img_shape, 140);
      return [=] { window_partition(x, WS); };
    }));
    cases.push_back(forward_case(G, "window_reverse 7 (2048,49,96)", 0, bytes, [] {
      Tensor win = bench_input({BW, N, C}, 141);
      return [=] { window_reverse(win, WS, H, W); };
    }));
    // patch merging: the four 2x2 neighbours side by side in channels -> (32, 28, 28, 384)
    cases.push_back(forward_case(G, "patch merging cat (32,56,56,96)->(32,28,28,384)", 0, bytes, [=] {
      Tensor x = bench_input(img_shape, 140);
      Tensor x0 = x.slice(1, 0, H, 2).slice(2, 0, W, 2), x1 = x.slice(1, 1, H, 2).slice(2, 0, W, 2);
      Tensor x2 = x.slice(1, 0, H, 2).slice(2, 1, W, 2), x3 = x.slice(1, 1, H, 2).slice(2, 1, W, 2);
      return [=] { cat({x0, x1, x2, x3}, -1); };
    }));
  }
}

}  // namespace rv::bench
