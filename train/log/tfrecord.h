// tfrecord.h: TFRecord framing, the container of a TensorBoard event file.
//
//   u64 LE length | u32 LE masked_crc32c(the 8 length bytes) | payload[length] | u32 LE masked_crc32c(payload)
//
// The length has its own CRC so that a reader never trusts a corrupt length (and never tries to
// allocate 2^60 bytes).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rv::runlog {

// Appends one framed record holding `payload` to `out`.
void append_record(std::string& out, std::string_view payload);

struct RecordScan {
  std::vector<std::string> payloads;  // every complete record, in file order
  bool truncated_tail = false;        // the bytes end inside a record (a writer that died mid-write)
  uint64_t valid_bytes = 0;           // bytes up to the end of the last complete record
};

// Splits `bytes` into records, checking both CRCs of each. A CRC mismatch throws
// std::runtime_error naming `name` and the byte offset; an incomplete last record only sets
// truncated_tail, since it is what a crash mid-write leaves (TensorBoard skips it too).
RecordScan scan_records(std::string_view bytes, const std::string& name);

}  // namespace rv::runlog
