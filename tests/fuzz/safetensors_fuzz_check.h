// safetensors_fuzz_check.h: the property the safetensors fuzzer checks on every input, shared by
// the libFuzzer target (fuzz_safetensors.cpp) and the CTest regression test that replays the
// corpus without clang (tests/unit/test_safetensors_hostile.cpp).
//
// For any bytes:
//   - SafetensorsFile::from_buffer either throws std::runtime_error or returns a file
//     (anything else, a crash or a sanitizer report, is a bug);
//   - every entry of an accepted file can be read: supported dtypes give a tensor whose bytes are
//     all touched here (ASan sees any out-of-bounds read), unsupported ones a runtime_error;
//     a BOOL tensor may also be refused for holding bytes other than 0 and 1;
//   - what was read survives a round trip: our writer's bytes for the tensors load back to the
//     same names, dtypes, shapes, bytes and metadata.
// Returns "" when all holds, else what went wrong.
#pragma once
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>

#include "engine/io/safetensors.h"

namespace rv::fuzz {

inline std::string safetensors_check_one(const uint8_t* data, size_t size) {
  std::optional<SafetensorsFile> f;
  try {
    f.emplace(SafetensorsFile::from_buffer(data, size));
  } catch (const std::runtime_error&) {
    return "";  // a clean refusal
  }
  NamedTensors loaded;
  for (const std::string& name : f->names()) {
    const SafetensorsEntry& e = f->entry(name);
    if (!e.supported()) {
      try {
        (void)f->tensor(name);
        return "tensor '" + name + "' of unsupported dtype " + e.dtype_name + " loaded without an error";
      } catch (const std::runtime_error&) {
        continue;
      }
    }
    Tensor t;
    try {
      t = f->tensor(name);
    } catch (const std::runtime_error& err) {
      if (e.dtype_name == "BOOL") continue;
      return "tensor '" + name + "' passed validation but tensor() threw: " + err.what();
    }
    size_t nbytes = size_t(t.numel()) * t.itemsize();
    if (nbytes != e.end - e.begin) return "tensor '" + name + "' byte size differs from its data_offsets";
    const volatile uint8_t* p = static_cast<const uint8_t*>(t.raw_data());
    unsigned sum = 0;
    for (size_t i = 0; i < nbytes; ++i) sum += p[i];
    (void)sum;
    loaded.emplace_back(name, t);
  }

  std::map<std::string, std::string> meta = f->metadata();
  meta.erase("format");  // our writer always writes "pt"
  std::string bytes = safetensors_bytes(loaded, meta);
  SafetensorsFile g = SafetensorsFile::from_buffer(bytes.data(), bytes.size(), "<round trip>");
  if (g.size() != loaded.size()) return "round trip changed the number of tensors";
  for (const auto& [name, t] : loaded) {
    if (!g.contains(name)) return "round trip lost tensor '" + name + "'";
    Tensor u = g.tensor(name);
    if (u.dtype() != t.dtype() || u.shape() != t.shape()) return "round trip changed tensor '" + name + "'";
    if (t.numel() && std::memcmp(u.raw_data(), t.raw_data(), size_t(t.numel()) * t.itemsize()) != 0)
      return "round trip changed the bytes of tensor '" + name + "'";
  }
  meta["format"] = "pt";
  if (g.metadata() != meta) return "round trip changed the metadata";
  return "";
}

}  // namespace rv::fuzz
