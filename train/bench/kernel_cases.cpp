// kernel_cases.cpp: the cases of `ropevit bench kernels` (see kernel_cases.h). Shapes: ViT-S/16
// (C = 384, 6 heads) and ViT-B/16 (C = 768, 12 heads), batch B = 256 at 224x224, N = 197 tokens,
// head dim 64. Bytes count what the kernel must read and write at least (each input once, each
// output once), so GB/s is comparable with the device copy.
#include "train/bench/kernel_cases.h"

#include <cstdio>
#include <exception>
#include <memory>
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/ops/conv.h"
#include "engine/rng.h"
#include "engine/tensor.h"

namespace rv::bench {

namespace {

constexpr int64_t kBatch = 256, kTokens = 197;

struct VitShape {
  const char* group;
  int64_t channels, heads;
};
constexpr VitShape kVits[] = {{"vit_s16", 384, 6}, {"vit_b16", 768, 12}};

// A random f32 tensor on `device`, made on the host once per case.
Tensor device_randn(const Shape& shape, uint64_t seed, Device device) {
  Generator g(seed);
  return randn(shape, g).to(device);
}

std::string dims(const Shape& s) {
  std::string out = "(";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(s[i]);
  }
  return out + ")";
}

double f32_tensor_bytes(const Shape& s, double copies) { return double(shape_numel(s)) * 4 * copies; }

Case make_case(std::string group, std::string name, double flops, double bytes, std::function<CaseFns()> make) {
  Case c;
  c.group = std::move(group);
  c.name = std::move(name);
  c.flops = flops;
  c.bytes = bytes;
  c.make = std::move(make);
  return c;
}

// The residual add x + y of a block, (B*N, C): the simplest memory-bound kernel.
void add_elementwise_cases(std::vector<Case>& cases, Device dev) {
  for (const VitShape& v : kVits) {
    const Shape s = {kBatch * kTokens, v.channels};
    cases.push_back(make_case(v.group, "add " + dims(s), 0, f32_tensor_bytes(s, 3), [s, dev] {
      Tensor a = device_randn(s, 1, dev), b = device_randn(s, 2, dev);
      backend::DeviceBackend& be = backend::get(dev);
      return CaseFns{.run = [a, b, &be] { be.binary(backend::BinaryOp::add, a, b); }};
    }));
  }
  const Shape s = {kBatch * kTokens, 384};
  cases.push_back(make_case("vit_s16", "sum_all " + dims(s), 0, f32_tensor_bytes(s, 1), [s, dev] {
    Tensor a = device_randn(s, 3, dev);
    backend::DeviceBackend& be = backend::get(dev);
    return CaseFns{.run = [a, &be] { be.sum_all(a); }};
  }));
}

// Attention-score softmax: one row of N = 197 per (image, head, query); backward fused.
void add_softmax_cases(std::vector<Case>& cases, Device dev) {
  for (const VitShape& v : kVits) {
    const Shape s = {kBatch * v.heads * kTokens, kTokens};
    cases.push_back(make_case(v.group, "softmax fwd " + dims(s), 0, f32_tensor_bytes(s, 2), [s, dev] {
      Tensor x = device_randn(s, 4, dev);
      backend::DeviceBackend& be = backend::get(dev);
      return CaseFns{.run = [x, &be] { be.softmax_last_dim(x, false); }};
    }));
    cases.push_back(make_case(v.group, "softmax bwd " + dims(s), 0, f32_tensor_bytes(s, 3), [s, dev] {
      backend::DeviceBackend& be = backend::get(dev);
      Tensor y = be.softmax_last_dim(device_randn(s, 4, dev), false), dy = device_randn(s, 5, dev);
      return CaseFns{.run = [y, dy, &be] { be.softmax_last_dim_backward(dy, y, false); }};
    }));
  }
}

// The classifier loss at batch 256 over 1000 classes: forward (loss, lse) then backward.
void add_cross_entropy_cases(std::vector<Case>& cases, Device dev) {
  const Shape s = {kBatch, 1000};
  cases.push_back(make_case("vit_s16", "cross_entropy fwd+bwd " + dims(s), 0, f32_tensor_bytes(s, 3), [s, dev] {
    Tensor logits = device_randn(s, 17, dev);
    std::vector<double> t(static_cast<size_t>(kBatch));
    for (size_t i = 0; i < t.size(); ++i) t[i] = double((i * 7919) % 1000);
    Tensor target = from_vector(t, {kBatch}, DType::i64).to(dev);
    Tensor one = full({}, 1.0, DType::f32, dev);
    backend::DeviceBackend& be = backend::get(dev);
    using R = backend::DeviceBackend::LossReduction;
    return CaseFns{.run = [logits, target, one, &be] {
      Tensor lse, count;
      be.cross_entropy(logits, target, -100, 0.1, R::mean, lse, count);
      be.cross_entropy_backward(one, logits, target, lse, count, -100, 0.1, R::mean);
    }};
  }));
}

// LayerNorm of the tokens (B*N, C) with weight and bias; backward gives dx, dweight, dbias.
void add_layernorm_cases(std::vector<Case>& cases, Device dev) {
  for (const VitShape& v : kVits) {
    const Shape s = {kBatch * kTokens, v.channels};
    const double rows = double(s[0]);
    cases.push_back(make_case(v.group, "layernorm fwd " + dims(s), 0, f32_tensor_bytes(s, 2) + rows * 8, [s, dev] {
      Tensor x = device_randn(s, 6, dev), w = device_randn({s[1]}, 7, dev), b = device_randn({s[1]}, 8, dev);
      backend::DeviceBackend& be = backend::get(dev);
      return CaseFns{.run = [x, w, b, &be] {
        Tensor mean, rstd;
        be.layer_norm_forward(x, x.size(1), w, b, 1e-6, mean, rstd);
      }};
    }));
    cases.push_back(make_case(v.group, "layernorm bwd " + dims(s), 0, f32_tensor_bytes(s, 3) + rows * 8, [s, dev] {
      Tensor x = device_randn(s, 6, dev), w = device_randn({s[1]}, 7, dev), b = device_randn({s[1]}, 8, dev);
      Tensor dy = device_randn(s, 9, dev), mean, rstd;
      backend::DeviceBackend& be = backend::get(dev);
      be.layer_norm_forward(x, x.size(1), w, b, 1e-6, mean, rstd);
      return CaseFns{.run = [x, w, b, dy, mean, rstd, &be] {
        Tensor dx, dw, db;
        be.layer_norm_backward(dy, x, x.size(1), w, b, mean, rstd, true, true, true, dx, dw, db);
      }};
    }));
  }
}

// The MLP's GELU on (B*N, 4C); its backward reads x and dy.
void add_gelu_cases(std::vector<Case>& cases, Device dev) {
  using A = backend::DeviceBackend::Activation;
  for (const VitShape& v : kVits) {
    const Shape s = {kBatch * kTokens, 4 * v.channels};
    cases.push_back(make_case(v.group, "gelu fwd " + dims(s), 0, f32_tensor_bytes(s, 2), [s, dev] {
      Tensor x = device_randn(s, 10, dev);
      backend::DeviceBackend& be = backend::get(dev);
      return CaseFns{.run = [x, &be] { be.activation_forward(A::gelu, x); }};
    }));
    cases.push_back(make_case(v.group, "gelu bwd " + dims(s), 0, f32_tensor_bytes(s, 3), [s, dev] {
      Tensor x = device_randn(s, 10, dev), dy = device_randn(s, 11, dev);
      backend::DeviceBackend& be = backend::get(dev);
      return CaseFns{.run = [x, dy, &be] { be.activation_backward(A::gelu, x, dy); }};
    }));
  }
}

// RoPE on q and k together, CLS skipped, per-head angles (RoPE-Mixed): forward is one rotation
// of each; backward is the inverse rotation of both gradients plus the angles' gradient.
void add_rope_cases(std::vector<Case>& cases, Device dev) {
  for (const VitShape& v : kVits) {
    const Shape s = {kBatch, v.heads, kTokens, 64};
    const Shape a = {v.heads, kTokens - 1, 32};
    cases.push_back(make_case(v.group, "rope qk fwd " + dims(s), 0, f32_tensor_bytes(s, 4), [s, a, dev] {
      Tensor q = device_randn(s, 12, dev), k = device_randn(s, 13, dev), ang = device_randn(a, 14, dev);
      backend::DeviceBackend& be = backend::get(dev);
      return CaseFns{.run = [q, k, ang, &be] {
        Tensor qo, ko;
        be.rope_rotate_qk(q, k, ang, 1, false, qo, ko);
      }};
    }));
    // dq, dk: read gq, gk, write dq, dk; the angles' gradient reads gq, q, gk, k.
    cases.push_back(make_case(v.group, "rope qk bwd " + dims(s), 0, f32_tensor_bytes(s, 8), [s, a, dev] {
      Tensor q = device_randn(s, 12, dev), k = device_randn(s, 13, dev), ang = device_randn(a, 14, dev);
      Tensor gq = device_randn(s, 15, dev), gk = device_randn(s, 16, dev);
      backend::DeviceBackend& be = backend::get(dev);
      return CaseFns{.run = [q, k, ang, gq, gk, &be] {
        Tensor dq, dk;
        be.rope_rotate_qk(gq, gk, ang, 1, true, dq, dk);
        be.rope_angles_grad_qk(gq, q, gk, k, ang, 1);
      }};
    }));
  }
}

// ViT-S/16 RoPE-Mixed's parameter shapes in model order (tools/bench_torch_kernels.py has the
// same list): patch embedding, CLS, 12 blocks, final norm, head.
std::vector<Shape> vit_s_param_shapes() {
  const int64_t C = 384, H = 6, hidden = 1536;
  std::vector<Shape> s = {{C, 3, 16, 16}, {C}, {1, 1, C}};
  for (int b = 0; b < 12; ++b) {
    for (const Shape& t : std::vector<Shape>{{C}, {C}, {3 * C, C}, {3 * C}, {C, C}, {C}, {2, H, 32}, {C}, {C},
                                             {hidden, C}, {hidden}, {C, hidden}, {C}})
      s.push_back(t);
  }
  for (const Shape& t : std::vector<Shape>{{C}, {C}, {1000, C}, {1000}}) s.push_back(t);
  return s;
}

// One fused AdamW step over all of ViT-S's parameters, and the global gradient norm.
void add_optimizer_cases(std::vector<Case>& cases, Device dev) {
  const std::vector<Shape> shapes = vit_s_param_shapes();
  double numel = 0;
  for (const Shape& s : shapes) numel += double(shape_numel(s));
  char name[96];
  std::snprintf(name, sizeof name, "adamw step (%zu tensors, %.1fM floats)", shapes.size(), numel / 1e6);
  struct State {
    std::vector<Tensor> p, g, m, v;
  };
  auto make_state = [shapes, dev] {
    auto st = std::make_shared<State>();
    for (size_t i = 0; i < shapes.size(); ++i) {
      st->p.push_back(device_randn(shapes[i], 20 + i, dev));
      st->g.push_back(device_randn(shapes[i], 500 + i, dev));
      st->m.push_back(zeros(shapes[i], DType::f32, dev));
      st->v.push_back(zeros(shapes[i], DType::f32, dev));
    }
    return st;
  };
  cases.push_back(make_case("vit_s16", name, 0, numel * 4 * 7, [make_state, dev] {
    auto st = make_state();
    backend::DeviceBackend& be = backend::get(dev);
    auto step = std::make_shared<int64_t>(0);
    return CaseFns{.run = [st, step, &be] {
      std::vector<backend::DeviceBackend::AdamWParam> ps(st->p.size());
      ++*step;
      for (size_t i = 0; i < ps.size(); ++i)
        ps[i] = {.param = &st->p[i], .grad = &st->g[i], .exp_avg = &st->m[i], .exp_avg_sq = &st->v[i],
                 .lr = 1e-3, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.05, .step = *step};
      be.adamw_step(ps);
    }};
  }));
  std::snprintf(name, sizeof name, "grad l2 norm (%zu tensors, %.1fM floats)", shapes.size(), numel / 1e6);
  cases.push_back(make_case("vit_s16", name, 0, numel * 4, [make_state, dev] {
    auto st = make_state();
    backend::DeviceBackend& be = backend::get(dev);
    return CaseFns{.run = [st, &be] { be.l2_norm_multi(st->g); }};
  }));
}

// One fp32 GEMM (no TF32): ours, with cuBLAS SGEMM as the reference on the same operands. The
// switch is process-wide, so each closure sets it and puts "ours" back for the next case.
Case gemm_case(std::string group, std::string name, int64_t M, int64_t K, int64_t N, Device dev) {
  const double flops = 2.0 * double(M) * double(N) * double(K);
  const double bytes = 4.0 * (double(M) * K + double(K) * N + double(M) * N);
  Case c = make_case(std::move(group), std::move(name), flops, bytes, [M, K, N, dev] {
    // a (1, M, K) rows; b (1, K, N) as linear passes it: a transposed view of the (N, K) weight
    Tensor a = device_randn({1, M, K}, 30, dev), w = device_randn({N, K}, 31, dev);
    Tensor b = w.t().unsqueeze(0);
    using Impl = backend::DeviceBackend::MatmulImpl;
    backend::DeviceBackend& be = backend::get(dev);
    return CaseFns{.run = [a, b, &be] {
                     be.set_matmul_impl(Impl::ours);
                     be.gemm(a, b, Tensor(), false);
                   },
                   .reference = [a, b, &be] {
                     be.set_matmul_impl(Impl::cublas);
                     be.gemm(a, b, Tensor(), false);
                     be.set_matmul_impl(Impl::ours);
                   }};
  });
  c.reference_name = "cuBLAS SGEMM";
  return c;
}

void add_matmul_cases(std::vector<Case>& cases, Device dev) {
  for (const VitShape& v : kVits) {
    const int64_t C = v.channels, M = kBatch * kTokens;
    const struct {
      const char* label;
      int64_t K, N;
    } layers[] = {{"qkv", C, 3 * C}, {"proj", C, C}, {"fc1", C, 4 * C}, {"fc2", 4 * C, C}};
    for (const auto& l : layers) {
      char name[96];
      std::snprintf(name, sizeof name, "matmul %s (%lldx%lld)x(%lldx%lld)", l.label, (long long)M, (long long)l.K,
                    (long long)l.K, (long long)l.N);
      cases.push_back(gemm_case(v.group, name, M, l.K, l.N, dev));
    }
  }
  cases.push_back(gemm_case("square", "sgemm (4096x4096)x(4096x4096)", 4096, 4096, 4096, dev));
}

// One convolution through the engine's conv2d op: ours (ROPEVIT_CONV=ours: the patch path or
// im2col + our GEMM) timed, cuDNN (FP32 FMA, no TF32) as the reference when the build has it.
// `with_backward`: forward and backward (dx and dweight) of one step. The switch is
// process-wide, so each closure sets it and puts "ours" back for the next case.
Case conv_case(std::string group, std::string label, const Shape& xs, const Shape& ws, int64_t stride, int64_t pad,
               bool with_backward, Device dev) {
  const int64_t Ho = (xs[2] + 2 * pad - ws[2]) / stride + 1, Wo = (xs[3] + 2 * pad - ws[3]) / stride + 1;
  const Shape ys{xs[0], ws[0], Ho, Wo};
  const double macs = double(shape_numel(ys)) * double(ws[1] * ws[2] * ws[3]);
  const double passes = with_backward ? 3 : 1;  // forward, input gradient, weight gradient
  const double bytes = f32_tensor_bytes(xs, passes == 1 ? 1 : 2) + f32_tensor_bytes(ws, passes == 1 ? 1 : 2) +
                       f32_tensor_bytes(ys, passes == 1 ? 1 : 2);
  char name[160];
  std::snprintf(name, sizeof name, "conv2d %s %s %sx%s/%lld", label.c_str(), with_backward ? "fwd+bwd" : "fwd",
                dims(xs).c_str(), dims(ws).c_str(), (long long)stride);
  using Impl = backend::DeviceBackend::ConvImpl;
  bool have_cudnn = false;
  if (!dev.is_cpu()) {
    try {
      backend::get(dev).set_conv_impl(Impl::cudnn);
      backend::get(dev).set_conv_impl(Impl::ours);
      have_cudnn = true;
    } catch (const std::exception&) {  // no cuDNN in this build: no reference column
    }
  }
  Case c = make_case(std::move(group), name, 2 * macs * passes, bytes, [xs, ws, ys, stride, pad, with_backward, dev,
                                                                       have_cudnn] {
    Tensor x = device_randn(xs, 40, dev), w = device_randn(ws, 41, dev), gy = device_randn(ys, 42, dev);
    if (with_backward) w.requires_grad_(), x.requires_grad_();
    backend::DeviceBackend& be = backend::get(dev);
    auto step = [x, w, gy, stride, pad, with_backward]() mutable {
      if (!with_backward) {
        autograd::NoGradGuard ng;
        conv2d(x, w, Tensor(), {stride, stride}, {pad, pad});
        return;
      }
      x.zero_grad();  // fresh gradients each call: no accumulation pass in the timing
      w.zero_grad();
      conv2d(x, w, Tensor(), {stride, stride}, {pad, pad}).backward(gy);
    };
    CaseFns f{.run = [step, &be]() mutable {
      be.set_conv_impl(Impl::ours);
      step();
    }};
    if (have_cudnn)
      f.reference = [step, &be]() mutable {
        be.set_conv_impl(Impl::cudnn);
        step();
        be.set_conv_impl(Impl::ours);
      };
    return f;
  });
  if (have_cudnn) c.reference_name = "cuDNN";
  return c;
}

// ViT-B/16's patch embedding (kernel == stride: our patch path) and a UperNet 3x3 convolution
// (512 channels at 1/8 of a 512x512 ADE20K crop, batch 8: im2col + GEMM), forward and training step.
void add_conv_cases(std::vector<Case>& cases, Device dev) {
  for (bool bwd : {false, true}) {
    cases.push_back(conv_case("vit_b16", "patch_embed", {kBatch, 3, 224, 224}, {768, 3, 16, 16}, 16, 0, bwd, dev));
    cases.push_back(conv_case("upernet", "3x3", {8, 512, 64, 64}, {512, 512, 3, 3}, 1, 1, bwd, dev));
  }
}

}  // namespace

std::vector<Case> kernel_cases(Device device) {
  std::vector<Case> cases;
  add_elementwise_cases(cases, device);
  add_softmax_cases(cases, device);
  add_cross_entropy_cases(cases, device);
  add_layernorm_cases(cases, device);
  add_gelu_cases(cases, device);
  add_rope_cases(cases, device);
  add_optimizer_cases(cases, device);
  add_matmul_cases(cases, device);
  add_conv_cases(cases, device);
  return cases;
}

}  // namespace rv::bench
