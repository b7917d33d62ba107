// idx.h: the IDX file format (LeCun's MNIST format, also used by Fashion-MNIST), plain or
// gzip-compressed.
//
// Layout (all integers big-endian):
//   00 00 | type code (1 byte) | ndims (1 byte) | ndims x u32 sizes | data, row-major
// type codes: 08 u8, 09 i8, 0B i16, 0C i32, 0D f32, 0E f64.
//
// The reader trusts nothing in the file: it checks the two zero bytes of the magic, the type
// code, the number of dimensions (1 to kIdxMaxDims), and that the data is exactly as long as the
// sizes say (a truncated file and trailing bytes are both errors). Every error is a
// std::runtime_error that names the file and says what was expected and what was found.
// Compressed input is recognised by its gzip magic, not by the file name.
//
// The result is a contiguous tensor in host byte order: u8 stays u8; i8, i16 and i32 become i32
// (ropevit has no 8- or 16-bit integer dtype); f32 and f64 stay as they are.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/tensor.h"

namespace rv::data {

inline constexpr int kIdxMaxDims = 8;  // real files have 1 (labels) to 4; more is a corrupt header

// What an IDX header says, after validation.
struct IdxHeader {
  uint8_t type_code = 0;  // 0x08 .. 0x0E
  Shape shape;            // the sizes, outermost first
  size_t header_bytes() const { return 4 + 4 * shape.size(); }
  size_t item_bytes() const;          // bytes per element in the file
  uint64_t data_bytes() const;        // numel * item_bytes (checked against overflow at parse time)
  DType dtype() const;                // the tensor's dtype (see above)
};

// The type code's name in the format ("u8", "i8", "i16", "i32", "f32", "f64"); nullptr when the
// code is not one of the six.
const char* idx_type_name(uint8_t type_code);

// Reads and validates a whole file (plain or gzip).
Tensor read_idx(const std::string& path);
// The same over bytes in memory; errors name `label` where they would name the file.
Tensor parse_idx(const void* data, size_t size, const std::string& label = "<buffer>");

}  // namespace rv::data
