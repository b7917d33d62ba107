// crc.cpp: table-driven CRC-32C / CRC-32 (one byte per step, a 256-entry table built once),
// the SSE4.2 CRC-32C, and Adler-32.
#include "train/log/crc.h"

#include <array>
#include <cstring>

#if defined(__SSE4_2__)
#include <nmmintrin.h>
#endif

namespace rv::runlog {

namespace {

// Table for a reflected CRC: entry b is the CRC register after shifting byte b through it.
std::array<uint32_t, 256> make_table(uint32_t poly) {
  std::array<uint32_t, 256> t{};
  for (uint32_t b = 0; b < 256; ++b) {
    uint32_t c = b;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ poly : c >> 1;
    t[b] = c;
  }
  return t;
}

uint32_t table_crc(const std::array<uint32_t, 256>& t, const void* data, size_t n, uint32_t crc) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t c = ~crc;  // the register starts at 0xFFFFFFFF; a continued crc is un-finalised first
  for (size_t i = 0; i < n; ++i) c = t[(c ^ p[i]) & 0xFF] ^ (c >> 8);
  return ~c;
}

const std::array<uint32_t, 256>& castagnoli_table() {
  static const auto t = make_table(0x82F63B78u);
  return t;
}
const std::array<uint32_t, 256>& iso_table() {
  static const auto t = make_table(0xEDB88320u);
  return t;
}

}  // namespace

uint32_t crc32c_table(const void* data, size_t n, uint32_t crc) {
  return table_crc(castagnoli_table(), data, n, crc);
}

bool crc32c_has_hardware() {
#if defined(__SSE4_2__)
  return true;
#else
  return false;
#endif
}

uint32_t crc32c(const void* data, size_t n, uint32_t crc) {
#if defined(__SSE4_2__)
  // The crc32 instruction implements exactly the Castagnoli register update (reflected), so
  // the same init / final xor apply. 8 bytes per instruction, then the tail byte by byte.
  const auto* p = static_cast<const unsigned char*>(data);
  uint64_t c = uint32_t(~crc);
  for (; n >= 8; n -= 8, p += 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);  // unaligned-safe load
    c = _mm_crc32_u64(c, w);
  }
  uint32_t c32 = uint32_t(c);
  for (; n > 0; --n, ++p) c32 = _mm_crc32_u8(c32, *p);
  return ~c32;
#else
  return crc32c_table(data, n, crc);
#endif
}

uint32_t crc32(const void* data, size_t n, uint32_t crc) { return table_crc(iso_table(), data, n, crc); }

uint32_t adler32(const void* data, size_t n, uint32_t adler) {
  const auto* p = static_cast<const unsigned char*>(data);
  uint32_t a = adler & 0xFFFF, b = adler >> 16;
  // 5552 is the largest run for which b cannot overflow 32 bits before the modulo (zlib's NMAX).
  while (n > 0) {
    size_t run = n < 5552 ? n : 5552;
    n -= run;
    for (size_t i = 0; i < run; ++i) {
      a += p[i];
      b += a;
    }
    p += run;
    a %= 65521;
    b %= 65521;
  }
  return (b << 16) | a;
}

}  // namespace rv::runlog
