// idx_fuzz_check.h: the property the IDX fuzzer checks on every input, shared by the libFuzzer
// target (fuzz_idx.cpp) and the CTest that replays the corpus without clang (tests/unit/test_idx.cpp).
//
// For any bytes (plain or gzip):
//   - parse_idx either throws std::runtime_error or returns a tensor (anything else, a crash, a
//     sanitizer report or another exception type, is a bug);
//   - an accepted plain input is exactly header + data: its length is 4 + 4 * ndims + the data
//     bytes of the tensor's shape and the header's type, and the dtype is the one the type maps to;
//   - the tensor's bytes are all readable (ASan sees any out-of-bounds access), and encoding the
//     tensor again as plain IDX with the same type code gives back the same tensor.
// Returns "" when all holds, else what went wrong.
#pragma once
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "data/gzip.h"
#include "data/idx.h"

namespace rv::fuzz {

// Plain IDX bytes for `t` (contiguous) under `type_code`; i8 / i16 data held as i32 is narrowed.
inline std::string idx_encode(const Tensor& t, uint8_t type_code) {
  std::string b = {'\0', '\0', char(type_code), char(t.dim())};
  auto put_be = [&b](uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; --i) b.push_back(char((v >> (8 * i)) & 0xff));
  };
  for (int64_t s : t.shape()) put_be(uint64_t(s), 4);
  const int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    switch (type_code) {
      case 0x08: b.push_back(char(t.data<uint8_t>()[i])); break;
      case 0x09: b.push_back(char(int8_t(t.data<int32_t>()[i]))); break;
      case 0x0B: put_be(uint16_t(int16_t(t.data<int32_t>()[i])), 2); break;
      case 0x0C: put_be(uint32_t(t.data<int32_t>()[i]), 4); break;
      case 0x0D: { uint32_t u; std::memcpy(&u, t.data<float>() + i, 4); put_be(u, 4); break; }
      case 0x0E: { uint64_t u; std::memcpy(&u, t.data<double>() + i, 8); put_be(u, 8); break; }
      default: throw std::logic_error("idx_encode: bad type code");
    }
  }
  return b;
}

inline std::string idx_check_one(const uint8_t* data, size_t size) {
  Tensor t;
  try {
    t = data::parse_idx(data, size, "<fuzz>");
  } catch (const std::runtime_error&) {
    return "";  // a clean refusal
  }
  if (!t.is_contiguous()) return "parse_idx returned a non-contiguous tensor";
  if (t.dim() < 1 || t.dim() > data::kIdxMaxDims) return "parse_idx returned a tensor of " + std::to_string(t.dim()) + " dims";
  const bool gz = data::is_gzip(data, size);
  // The type code is byte 2 of the (decompressed) header; for gzip take it from the dtype.
  uint8_t code = 0;
  if (!gz) {
    code = data[2];
    data::IdxHeader h;
    h.type_code = code;
    h.shape = t.shape();
    if (h.dtype() != t.dtype()) return "dtype does not match the type code";
    if (size != h.header_bytes() + h.data_bytes()) return "accepted a plain file whose length is not header + data";
  } else {
    code = t.dtype() == DType::u8 ? 0x08 : t.dtype() == DType::i32 ? 0x0C : t.dtype() == DType::f32 ? 0x0D : 0x0E;
  }
  const size_t nbytes = size_t(t.numel()) * t.itemsize();
  const volatile uint8_t* p = static_cast<const uint8_t*>(t.raw_data());
  unsigned sum = 0;
  for (size_t i = 0; i < nbytes; ++i) sum += p[i];
  (void)sum;
  std::string again = idx_encode(t, code);
  Tensor u = data::parse_idx(again.data(), again.size(), "<round trip>");
  if (u.dtype() != t.dtype() || u.shape() != t.shape()) return "round trip changed the dtype or shape";
  if (nbytes && std::memcmp(u.raw_data(), t.raw_data(), nbytes) != 0) return "round trip changed the values";
  return "";
}

}  // namespace rv::fuzz
