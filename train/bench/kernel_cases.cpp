// kernel_cases.cpp: the cases of `ropevit bench kernels` (see kernel_cases.h). Shapes: ViT-S/16
// (C = 384, 6 heads) and ViT-B/16 (C = 768, 12 heads), batch B = 256 at 224x224, N = 197 tokens,
// head dim 64. Bytes count what the kernel must read and write at least (each input once, each
// output once), so GB/s is comparable with the device copy.
#include "train/bench/kernel_cases.h"

#include <string>

#include "engine/backend.h"
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

double f32_bytes(const Shape& s, double copies) { return double(shape_numel(s)) * 4 * copies; }

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
    cases.push_back(make_case(v.group, "add " + dims(s), 0, f32_bytes(s, 3), [s, dev] {
      Tensor a = device_randn(s, 1, dev), b = device_randn(s, 2, dev);
      backend::DeviceBackend& be = backend::get(dev);
      return CaseFns{.run = [a, b, &be] { be.binary(backend::BinaryOp::add, a, b); }};
    }));
  }
  const Shape s = {kBatch * kTokens, 384};
  cases.push_back(make_case("vit_s16", "sum_all " + dims(s), 0, f32_bytes(s, 1), [s, dev] {
    Tensor a = device_randn(s, 3, dev);
    backend::DeviceBackend& be = backend::get(dev);
    return CaseFns{.run = [a, &be] { be.sum_all(a); }};
  }));
}

// Attention-score softmax: one row of N = 197 per (image, head, query); backward fused.
void add_softmax_cases(std::vector<Case>& cases, Device dev) {
  for (const VitShape& v : kVits) {
    const Shape s = {kBatch * v.heads * kTokens, kTokens};
    cases.push_back(make_case(v.group, "softmax fwd " + dims(s), 0, f32_bytes(s, 2), [s, dev] {
      Tensor x = device_randn(s, 4, dev);
      backend::DeviceBackend& be = backend::get(dev);
      return CaseFns{.run = [x, &be] { be.softmax_last_dim(x, false); }};
    }));
    cases.push_back(make_case(v.group, "softmax bwd " + dims(s), 0, f32_bytes(s, 3), [s, dev] {
      backend::DeviceBackend& be = backend::get(dev);
      Tensor y = be.softmax_last_dim(device_randn(s, 4, dev), false), dy = device_randn(s, 5, dev);
      return CaseFns{.run = [y, dy, &be] { be.softmax_last_dim_backward(dy, y, false); }};
    }));
  }
}

// The classifier loss at batch 256 over 1000 classes: forward (loss, lse) then backward.
void add_cross_entropy_cases(std::vector<Case>& cases, Device dev) {
  const Shape s = {kBatch, 1000};
  cases.push_back(make_case("vit_s16", "cross_entropy fwd+bwd " + dims(s), 0, f32_bytes(s, 3), [s, dev] {
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

}  // namespace

std::vector<Case> kernel_cases(Device device) {
  std::vector<Case> cases;
  add_elementwise_cases(cases, device);
  add_softmax_cases(cases, device);
  add_cross_entropy_cases(cases, device);
  return cases;
}

}  // namespace rv::bench
