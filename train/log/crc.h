// crc.h: the three checksums the run files need.
//   crc32c  CRC-32C (Castagnoli), framing TensorBoard event records (TFRecord format)
//   crc32   CRC-32 (ISO-HDLC, the zlib/PNG one), one per PNG chunk
//   adler32 Adler-32, the trailer of a zlib stream (PNG image data)
// Each has a plain table-driven version; crc32c also has an SSE4.2 path (one instruction per
// 8 bytes) when the compiler targets it, tested against the table version.
#pragma once
#include <cstddef>
#include <cstdint>

namespace rv::runlog {

// CRC-32C, reflected polynomial 0x82F63B78, init and final xor 0xFFFFFFFF.
// crc32c("123456789") == 0xE3069283. `crc` continues an earlier call (pass the previous result).
uint32_t crc32c(const void* data, size_t n, uint32_t crc = 0);
uint32_t crc32c_table(const void* data, size_t n, uint32_t crc = 0);  // the reference
bool crc32c_has_hardware();                                           // SSE4.2 compiled in

// TensorBoard stores CRCs "masked": a CRC of data that itself holds CRCs is otherwise easy to
// collide with, so the value is rotated right by 15 and offset by a constant.
inline uint32_t masked_crc32c(uint32_t crc) { return ((crc >> 15) | (crc << 17)) + 0xA282EAD8u; }

// CRC-32, reflected polynomial 0xEDB88320 (PNG, zlib, gzip). crc32("123456789") == 0xCBF43926.
uint32_t crc32(const void* data, size_t n, uint32_t crc = 0);

// Adler-32 (RFC 1950), starts at 1. adler32("Wikipedia") == 0x11E60398.
uint32_t adler32(const void* data, size_t n, uint32_t adler = 1);

}  // namespace rv::runlog
