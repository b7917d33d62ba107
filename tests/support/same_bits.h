// same_bits.h: same_bits(actual, expected), "" when two tensors have the same shape, dtype and
// element bytes (NaN payloads, -0 and bool/integer values included), else a report naming the
// first differing element. For kernels that must equal the CPU bit for bit (conversions,
// selects, comparisons, max/min, dropout masks). Either tensor may live on a device.
#pragma once
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>

#include "engine/tensor.h"

namespace rv::test {

inline std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

inline std::string same_bits(const Tensor& actual, const Tensor& expected) {
  if (actual.shape() != expected.shape() || actual.dtype() != expected.dtype())
    return "shape/dtype differ: " + shape_str(actual.shape()) + " " + dtype_name(actual.dtype()) + " vs " +
           shape_str(expected.shape()) + " " + dtype_name(expected.dtype());
  const Tensor a = actual.detach().cpu().contiguous(), e = expected.detach().cpu().contiguous();
  const size_t w = a.itemsize();
  const auto* pa = static_cast<const unsigned char*>(a.raw_data());
  const auto* pe = static_cast<const unsigned char*>(e.raw_data());
  for (int64_t i = 0; i < a.numel(); ++i) {
    if (std::memcmp(pa + size_t(i) * w, pe + size_t(i) * w, w) == 0) continue;
    uint64_t ba = 0, be = 0;
    std::memcpy(&ba, pa + size_t(i) * w, w);
    std::memcpy(&be, pe + size_t(i) * w, w);
    const double va = a.reshape({-1}).slice(0, i, i + 1).to(DType::f64).item();
    const double ve = e.reshape({-1}).slice(0, i, i + 1).to(DType::f64).item();
    return "element " + std::to_string(i) + " of " + std::to_string(a.numel()) + " differs: bits " + hex(ba) +
           " vs " + hex(be) + " (as f64: " + std::to_string(va) + " vs " + std::to_string(ve) + ")";
  }
  return "";
}

#define RV_EXPECT_SAME_BITS(actual, expected)                                   \
  do {                                                                         \
    std::string rv_report_ = ::rv::test::same_bits((actual), (expected));      \
    CHECK_MESSAGE(rv_report_.empty(), rv_report_);                             \
  } while (0)

}  // namespace rv::test
