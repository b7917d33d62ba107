// tfrecord.cpp: writing and checking TFRecord frames (see tfrecord.h for the layout).
#include "train/log/tfrecord.h"

#include <cstring>
#include <stdexcept>

#include "train/log/crc.h"

namespace rv::runlog {

namespace {
void put_u32(std::string& out, uint32_t v) {
  char b[4];
  std::memcpy(b, &v, 4);  // little-endian hosts only, as the rest of the engine
  out.append(b, 4);
}
uint32_t get_u32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
}  // namespace

void append_record(std::string& out, std::string_view payload) {
  char len[8];
  uint64_t n = payload.size();
  std::memcpy(len, &n, 8);
  out.append(len, 8);
  put_u32(out, masked_crc32c(crc32c(len, 8)));
  out.append(payload);
  put_u32(out, masked_crc32c(crc32c(payload.data(), payload.size())));
}

RecordScan scan_records(std::string_view bytes, const std::string& name) {
  RecordScan scan;
  size_t pos = 0;
  while (pos < bytes.size()) {
    if (bytes.size() - pos < 12) {
      scan.truncated_tail = true;
      break;
    }
    const char* head = bytes.data() + pos;
    if (masked_crc32c(crc32c(head, 8)) != get_u32(head + 8))
      throw std::runtime_error("event file '" + name + "': the length CRC of the record at byte " +
                               std::to_string(pos) + " does not match (corrupt file)");
    uint64_t n;
    std::memcpy(&n, head, 8);
    if (n > bytes.size() - pos - 12 || bytes.size() - pos - 12 - n < 4) {
      scan.truncated_tail = true;
      break;
    }
    std::string_view payload = bytes.substr(pos + 12, size_t(n));
    if (masked_crc32c(crc32c(payload.data(), payload.size())) != get_u32(head + 12 + n))
      throw std::runtime_error("event file '" + name + "': the data CRC of the record at byte " +
                               std::to_string(pos) + " does not match (corrupt file)");
    scan.payloads.emplace_back(payload);
    pos += 12 + size_t(n) + 4;
    scan.valid_bytes = pos;
  }
  return scan;
}

}  // namespace rv::runlog
