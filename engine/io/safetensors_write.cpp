// safetensors_write.cpp: the safetensors writer.
//
// What it writes, for {"w": f32 [2] = {1, 2}} (the 104-byte test vector of the UX anchors):
//   58 00 00 00 00 00 00 00                                   N = 88
//   {"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}
//   + 3 spaces                                                header padded to a multiple of 8
//   00 00 80 3f 00 00 00 40                                   1.0f, 2.0f little-endian
// Tensors go in the reference writer's order (dtype descending in its enum order, then name; see
// reference_rank), which for our dtypes puts wider element types first. Since N is a multiple of
// 8 and every block's size is a multiple of its element size, each tensor then starts at a file
// offset aligned for its type, so our reader maps all of them zero-copy.
#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

#include "engine/autograd.h"
#include "engine/io/atomic_file.h"
#include "engine/io/safetensors.h"

namespace rv {

using json = nlohmann::json;

namespace {

// A JSON string literal for `s`; refuses bytes that are not UTF-8 (the format requires UTF-8).
std::string quote(const std::string& s, const std::string& what, const std::string& where) {
  try {
    return json(s).dump();
  } catch (const json::exception&) {
    throw std::invalid_argument("save_safetensors " + where + ": " + what + " is not valid UTF-8");
  }
}

// The bytes of `t`'s storage that its elements touch, as [lo, hi); empty for numel == 0.
struct Extent {
  const Storage* storage;
  int64_t lo, hi;
  size_t index;
};

Extent extent_of(const Tensor& t, size_t index) {
  int64_t lo = t.offset(), hi = t.offset();
  for (int64_t d = 0; d < t.dim(); ++d) {
    int64_t span = (t.size(d) - 1) * t.stride(d);
    if (span < 0) lo += span;
    else hi += span;
  }
  int64_t item = int64_t(t.itemsize());
  return {t.storage().get(), lo * item, (hi + 1) * item, index};
}

// The position of a dtype in the reference implementation's Dtype enum (safetensors/src/
// tensor.rs: BOOL F4 F6_E2M3 F6_E3M2 U8 I8 F8_E5M2 F8_E4M3 F8_E8M0 I16 U16 F16 BF16 I32 U32 F32
// C64 F64 I64 U64). Its writer sorts tensors by that position, descending, then by name; using the
// same order makes our files byte-identical to safetensors.torch.save_file's for the same input.
// For our dtypes it also puts wider types first, which is what keeps every tensor aligned.
int reference_rank(DType dt) {
  switch (dt) {
    case DType::boolean: return 0;
    case DType::u8: return 4;
    case DType::f16: return 11;
    case DType::bf16: return 12;
    case DType::i32: return 13;
    case DType::f32: return 15;
    case DType::f64: return 17;
    case DType::i64: return 18;
  }
  return 0;
}

}  // namespace

void write_safetensors(const std::function<void(const void*, size_t)>& sink, const NamedTensors& tensors,
                       const std::map<std::string, std::string>& metadata, const std::string& what) {
  const std::string where = "'" + what + "'";
  auto fail = [&](const std::string& msg) { return std::invalid_argument("save_safetensors " + where + ": " + msg); };

  // ---- check the inputs --------------------------------------------------------------------
  std::set<std::string> seen;
  std::vector<Extent> extents;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const auto& [name, t] = tensors[i];
    if (name == "__metadata__") throw fail("\"__metadata__\" is reserved and cannot name a tensor");
    if (!seen.insert(name).second) throw fail("tensor name '" + name + "' is given twice");
    if (!t.defined()) throw fail("tensor '" + name + "' is undefined");
    if (!t.device().is_cpu())
      throw fail("tensor '" + name + "' is on " + t.device().str() + "; copy it to the CPU first");
    if (t.numel() > 0) extents.push_back(extent_of(t, i));
  }
  // Aliasing: two entries over the same bytes would be stored twice and load back untied, so
  // refuse them as PyTorch's safetensors does. Views of disjoint parts of one storage are fine.
  std::sort(extents.begin(), extents.end(), [](const Extent& a, const Extent& b) {
    return a.storage != b.storage ? std::less<const Storage*>()(a.storage, b.storage) : a.lo < b.lo;
  });
  for (size_t i = 1; i < extents.size(); ++i) {
    const Extent& a = extents[i - 1];
    const Extent& b = extents[i];
    if (a.storage == b.storage && b.lo < a.hi)
      throw fail("tensors '" + tensors[a.index].first + "' and '" + tensors[b.index].first +
                 "' share memory; safetensors stores each tensor once, so untie them (clone one) "
                 "or save one and record the tie in the metadata");
  }
  for (const auto& [k, v] : metadata)
    if (k == "format" && v != "pt")
      throw fail("metadata \"format\" must be \"pt\" (transformers rejects other values), got \"" + v + "\"");

  // ---- order and header --------------------------------------------------------------------
  std::vector<size_t> order(tensors.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    int ra = reference_rank(tensors[a].second.dtype()), rb = reference_rank(tensors[b].second.dtype());
    return ra != rb ? ra > rb : tensors[a].first < tensors[b].first;
  });

  std::string header = "{\"__metadata__\":{\"format\":\"pt\"";
  for (const auto& [k, v] : metadata) {
    if (k == "format") continue;
    header += ',';
    header += quote(k, "metadata key '" + k + "'", where);
    header += ':';
    header += quote(v, "metadata value for '" + k + "'", where);
  }
  header += "}";
  uint64_t offset = 0;
  for (size_t i : order) {
    const auto& [name, t] = tensors[i];
    uint64_t nbytes = uint64_t(t.numel()) * t.itemsize();
    header += ',';
    header += quote(name, "tensor name '" + name + "'", where);
    header += ":{\"dtype\":\"";
    header += safetensors_dtype_name(t.dtype());
    header += "\",\"shape\":[";
    for (int64_t d = 0; d < t.dim(); ++d) {
      if (d) header += ',';
      header += std::to_string(t.size(d));
    }
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + nbytes) + "]}";
    offset += nbytes;
  }
  header += "}";
  header.append((8 - header.size() % 8) % 8, ' ');
  if (header.size() > 100'000'000)
    throw fail("header would be " + std::to_string(header.size()) + " bytes, over the format's 100,000,000 limit");

  // ---- bytes -------------------------------------------------------------------------------
  uint64_t n = header.size();
  unsigned char len[8];
  for (int i = 0; i < 8; ++i) len[i] = (unsigned char)(n >> (8 * i));
  sink(len, 8);
  sink(header.data(), header.size());
  autograd::NoGradGuard no_grad;
  for (size_t i : order) {
    const Tensor& t = tensors[i].second;
    if (t.numel() == 0) continue;
    Tensor c = t.detach().contiguous();  // a copy only when `t` is a non-contiguous view
    if (!c.device().is_cpu()) c = c.cpu();  // device tensors (a GPU run's checkpoint) come to the host
    sink(c.raw_data(), size_t(c.numel()) * c.itemsize());
  }
}

std::string safetensors_bytes(const NamedTensors& tensors, const std::map<std::string, std::string>& metadata) {
  std::string out;
  write_safetensors([&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); }, tensors, metadata,
                    "<buffer>");
  return out;
}

void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata) {
  // Check everything and build the header before creating any file, so a refused call leaves
  // nothing behind; then stream into the temporary file and rename it into place.
  std::optional<AtomicFileWriter> file;
  write_safetensors(
      [&](const void* p, size_t n) {
        if (!file) file.emplace(path);
        file->write(p, n);
      },
      tensors, metadata, path);
  if (!file) file.emplace(path);
  file->commit();
}

void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  save_safetensors(path, NamedTensors(tensors.begin(), tensors.end()), metadata);
}

}  // namespace rv
