// proto_wire.h: the few pieces of the protobuf wire format that TensorBoard's Event message
// needs, written by hand so that ropevit links no protobuf library.
//
// A message is a sequence of fields; each starts with a key = (field_number << 3) | wire_type:
//   0 varint (int64, enum)   1 fixed 8 bytes LE (double)   2 length-delimited (string, message)
//   5 fixed 4 bytes LE (float)
// Varints hold 7 bits per byte, low group first, high bit set on every byte but the last; a
// negative int64 is its two's complement as uint64 (always 10 bytes).
#pragma once
#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>

namespace rv::runlog::proto {

enum WireType : uint32_t { kVarint = 0, kFixed64 = 1, kLengthDelimited = 2, kFixed32 = 5 };

inline void put_varint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(char(uint8_t(v) | 0x80));
    v >>= 7;
  }
  out.push_back(char(uint8_t(v)));
}
inline void put_key(std::string& out, uint32_t field, WireType type) { put_varint(out, (uint64_t(field) << 3) | type); }
inline void put_int64(std::string& out, uint32_t field, int64_t v) {
  put_key(out, field, kVarint);
  put_varint(out, uint64_t(v));
}
inline void put_double(std::string& out, uint32_t field, double v) {
  put_key(out, field, kFixed64);
  char b[8];
  std::memcpy(b, &v, 8);  // the engine targets little-endian hosts only (x86-64, aarch64)
  out.append(b, 8);
}
inline void put_float(std::string& out, uint32_t field, float v) {
  put_key(out, field, kFixed32);
  char b[4];
  std::memcpy(b, &v, 4);
  out.append(b, 4);
}
inline void put_bytes(std::string& out, uint32_t field, std::string_view bytes) {
  put_key(out, field, kLengthDelimited);
  put_varint(out, bytes.size());
  out.append(bytes);
}

// Reads one message's fields in order. `what` names the message in error messages.
class Reader {
 public:
  Reader(std::string_view bytes, const char* what) : p_(bytes), what_(what) {}

  struct Field {
    uint32_t number = 0;
    WireType type = kVarint;
    uint64_t varint = 0;    // kVarint
    uint64_t fixed = 0;     // kFixed64 / kFixed32 raw bits
    std::string_view data;  // kLengthDelimited
    double as_double() const { double d; std::memcpy(&d, &fixed, 8); return d; }
    float as_float() const { uint32_t u = uint32_t(fixed); float f; std::memcpy(&f, &u, 4); return f; }
  };

  // The next field, or false at the end of the message. Throws on malformed bytes.
  bool next(Field& f) {
    if (pos_ == p_.size()) return false;
    uint64_t key = varint();
    f.number = uint32_t(key >> 3);
    f.type = WireType(key & 7);
    switch (f.type) {
      case kVarint: f.varint = varint(); break;
      case kFixed64: f.fixed = fixed(8); break;
      case kFixed32: f.fixed = fixed(4); break;
      case kLengthDelimited: {
        uint64_t n = varint();
        if (n > p_.size() - pos_) fail("a length-delimited field runs past the end");
        f.data = p_.substr(pos_, size_t(n));
        pos_ += size_t(n);
        break;
      }
      default: fail("unsupported wire type " + std::to_string(int(f.type)));
    }
    return true;
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw std::runtime_error(std::string("protobuf ") + what_ + ": " + why + " (byte " + std::to_string(pos_) + ")");
  }
  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
      if (pos_ == p_.size()) fail("a varint runs past the end");
      uint8_t b = uint8_t(p_[pos_++]);
      v |= uint64_t(b & 0x7F) << shift;
      if (!(b & 0x80)) return v;
    }
    fail("a varint is longer than 10 bytes");
  }
  uint64_t fixed(size_t n) {
    if (n > p_.size() - pos_) fail("a fixed-width field runs past the end");
    uint64_t v = 0;
    std::memcpy(&v, p_.data() + pos_, n);
    pos_ += n;
    return v;
  }
  std::string_view p_;
  size_t pos_ = 0;
  const char* what_;
};

}  // namespace rv::runlog::proto
