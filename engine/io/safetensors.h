// safetensors.h: reading and writing the safetensors format (Hugging Face's weight files).
//
// Layout of a file:   u64 LE N | N bytes of UTF-8 JSON header | data buffer
//   header = {"__metadata__": {str: str}, "<name>": {"dtype": "F32", "shape": [..],
//                                                   "data_offsets": [begin, end]}, ...}
//   offsets count bytes from the start of the data buffer; data is little-endian, row-major.
//
// Reading memory-maps the file and hands out zero-copy tensors: each Tensor's Storage points
// into the mapping and keeps it alive, so the SafetensorsFile may be dropped while the tensors
// live on. The mapping is private copy-on-write, so an in-place op on a loaded tensor changes
// this process's copy only, never the file. A tensor whose bytes are not aligned for its
// element type (possible in files from other writers) is copied instead.
//
// The reader trusts nothing in the file: every rule of the format is checked when the file is
// opened (see safetensors.cpp), and every error is a std::runtime_error naming the file, the
// tensor where there is one, and what was expected versus found.
//
// Writing follows the reference writer: "__metadata__" first with "format": "pt", the header
// padded with spaces to a multiple of 8, tensors in the reference writer's order (by dtype, wider
// types first, then by name), so every tensor starts aligned for its type and the bytes match
// safetensors.torch.save_file's for the same tensors. Files are written atomically.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "engine/tensor.h"

namespace rv {

// One dtype string of the safetensors format. `bits` is the element width (4 and 6 for the
// packed sub-byte floats); `dtype` is ropevit's type, empty when ropevit cannot hold it.
struct SafetensorsDtype {
  const char* name;            // "F32", "BF16", "F8_E4M3", ...
  int bits;
  std::optional<DType> dtype;
};
// Looks up a dtype string; nullptr when it is not a safetensors dtype at all.
const SafetensorsDtype* find_safetensors_dtype(const std::string& name);
// The safetensors string for one of our dtypes ("F32" for DType::f32, ...).
const char* safetensors_dtype_name(DType dt);

// What the header says about one tensor, after validation.
struct SafetensorsEntry {
  std::string name;
  std::string dtype_name;      // as in the file, e.g. "F32" or "I8"
  const SafetensorsDtype* info = nullptr;
  Shape shape;
  uint64_t begin = 0, end = 0; // byte offsets into the data buffer
  int64_t numel() const;
  bool supported() const { return info->dtype.has_value(); }
};

class SafetensorsFile {
 public:
  // Memory-maps and validates `path`. Throws std::runtime_error on any malformed input.
  static SafetensorsFile open(const std::string& path);
  // Validates a copy of the bytes [data, data + size). Errors name `label`.
  static SafetensorsFile from_buffer(const void* data, size_t size, const std::string& label = "<buffer>");

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;                  // sorted by name
  bool contains(const std::string& name) const { return entries_.count(name) != 0; }
  size_t size() const { return entries_.size(); }
  const SafetensorsEntry& entry(const std::string& name) const;  // throws if absent
  const Shape& shape(const std::string& name) const { return entry(name).shape; }
  // Our dtype; throws "not supported by ropevit" for valid safetensors types we cannot hold.
  DType dtype(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

  // The tensor `name`, sharing the file's memory when the bytes are aligned (copied when not).
  // Asking twice gives two handles on the same Storage, as two views of one tensor would.
  Tensor tensor(const std::string& name) const;
  // Every tensor; throws on the first one whose dtype ropevit cannot hold.
  std::map<std::string, Tensor> tensors() const;

 private:
  struct Blob;    // the mapped (or copied) file bytes
  struct Cache;   // weak references to the storages handed out, one per tensor
  static SafetensorsFile parse(std::shared_ptr<Blob> blob, const std::string& label);
  std::string where() const;  // "safetensors file '<path>'"

  std::string path_;
  std::shared_ptr<Blob> blob_;
  std::shared_ptr<Cache> cache_;
  uint64_t data_start_ = 0;   // 8 + N
  std::map<std::string, SafetensorsEntry> entries_;
  std::map<std::string, std::string> metadata_;
};

// Opens `path` and returns all its tensors (zero-copy where aligned).
std::map<std::string, Tensor> load_safetensors(const std::string& path);

// Writes tensors (any layout, CPU) and string metadata. "format": "pt" is always written; a
// caller's "format" must be "pt". Refuses: duplicate names, "__metadata__" as a name, two
// entries whose memory overlaps (tied weights: untie them or record the tie in metadata),
// undefined tensors. The file appears under `path` only once it is complete (atomic rename).
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// The bytes save_safetensors would write, in memory (tests, the fuzzer, small payloads).
std::string safetensors_bytes(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata = {});

// The streaming core of both: emits the file through `sink` in order, holding at most one
// tensor's contiguous copy at a time. `what` names the destination in error messages.
void write_safetensors(const std::function<void(const void*, size_t)>& sink, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata, const std::string& what);

}  // namespace rv
