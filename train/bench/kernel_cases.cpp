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

}  // namespace

std::vector<Case> kernel_cases(Device device) {
  std::vector<Case> cases;
  add_elementwise_cases(cases, device);
  return cases;
}

}  // namespace rv::bench
