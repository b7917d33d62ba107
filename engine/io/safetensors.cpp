// safetensors.cpp: the safetensors reader (mmap, validation, zero-copy tensors).
//
// The file is untrusted input. `parse` checks, in order:
//   1. at least 8 bytes; header length N <= 100,000,000 and 8 + N <= file size;
//   2. the header starts with '{', holds no NUL byte, is valid UTF-8 JSON (nlohmann checks UTF-8
//      inside strings and rejects any byte outside them that is not JSON), nests at most kMaxDepth deep, and has no
//      key twice in any object (nlohmann would silently keep the last one, so a parse callback
//      records every object's keys);
//   3. every entry is an object with "dtype" (a known safetensors dtype string), "shape" (array
//      of non-negative integers whose product fits in int64) and "data_offsets" ([begin, end],
//      begin <= end), and end - begin is exactly the byte size of the shape; keys it does not
//      know are ignored, as the reference reader does;
//   4. "__metadata__", if present, maps strings to strings;
//   5. sorted by offset, the tensors tile the data buffer from 0 with no hole and no overlap, and
//      the last end + 8 + N is the file size.
// All arithmetic on numbers from the file is checked 64-bit arithmetic, so after parse() every
// entry's bytes lie inside the buffer and tensor() can read them without further checks.
#include "engine/io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <stdexcept>

namespace rv {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; a big-endian host would need byte swaps");

using json = nlohmann::json;

namespace {

constexpr uint64_t kMaxHeaderBytes = 100'000'000;  // the reference reader's limit
constexpr size_t kMaxDepth = 64;                   // a valid header nests 3 deep

// Every dtype string the format defines (safetensors/src/tensor.rs), with its width in bits.
const SafetensorsDtype kDtypes[] = {
    {"BOOL", 8, DType::boolean},   {"U8", 8, DType::u8},        {"I8", 8, std::nullopt},
    {"I16", 16, std::nullopt},     {"U16", 16, std::nullopt},   {"F16", 16, DType::f16},
    {"BF16", 16, DType::bf16},     {"I32", 32, DType::i32},     {"U32", 32, std::nullopt},
    {"F32", 32, DType::f32},       {"F64", 64, DType::f64},     {"I64", 64, DType::i64},
    {"U64", 64, std::nullopt},     {"C64", 64, std::nullopt},   {"F8_E5M2", 8, std::nullopt},
    {"F8_E4M3", 8, std::nullopt},  {"F8_E8M0", 8, std::nullopt}, {"F8_E4M3FNUZ", 8, std::nullopt},
    {"F8_E5M2FNUZ", 8, std::nullopt}, {"F4", 4, std::nullopt},  {"F6_E2M3", 6, std::nullopt},
    {"F6_E3M2", 6, std::nullopt},
};

// A short, printable rendering of a JSON value for error messages (hostile headers can hold
// megabytes in one value, so cut it).
std::string show(const json& v) {
  std::string s = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return s;
}

const char* json_type(const json& v) {
  if (v.is_number_unsigned()) return "a non-negative integer";
  if (v.is_number_integer()) return "a negative integer";
  if (v.is_number_float()) return "a floating-point number";
  return v.type_name();
}

// "a negative integer -2", "string \"2\"", "null".
std::string describe(const json& v) {
  if (v.is_null()) return "null";
  return std::string(json_type(v)) + " " + show(v);
}

}  // namespace

const SafetensorsDtype* find_safetensors_dtype(const std::string& name) {
  for (const auto& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const char* safetensors_dtype_name(DType dt) {
  switch (dt) {
    case DType::f32: return "F32";
    case DType::f64: return "F64";
    case DType::bf16: return "BF16";
    case DType::f16: return "F16";
    case DType::i32: return "I32";
    case DType::i64: return "I64";
    case DType::u8: return "U8";
    case DType::boolean: return "BOOL";
  }
  throw std::logic_error("safetensors_dtype_name: unknown dtype");
}

int64_t SafetensorsEntry::numel() const { return shape_numel(shape); }

// ---- the bytes: an mmap of the file, or a heap copy of a caller's buffer ---------------------

struct SafetensorsFile::Blob {
  uint8_t* data = nullptr;
  size_t size = 0;
  bool mapped = false;
  Blob() = default;
  Blob(const Blob&) = delete;
  Blob& operator=(const Blob&) = delete;
  ~Blob() {
    if (mapped) ::munmap(data, size);
    else std::free(data);
  }
};

struct SafetensorsFile::Cache {
  std::mutex mu;
  std::map<std::string, std::weak_ptr<Storage>> storages;
};

std::string SafetensorsFile::where() const { return "safetensors file '" + path_ + "'"; }

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  auto fail = [&](const std::string& what) -> std::runtime_error {
    return std::runtime_error("safetensors file '" + path + "': " + what);
  };
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw fail(std::string("cannot open: ") + std::strerror(errno));
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw fail(std::string("cannot stat: ") + std::strerror(err));
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    throw fail("not a regular file");
  }
  auto blob = std::make_shared<Blob>();
  blob->size = size_t(st.st_size);
  if (blob->size >= 8) {  // shorter files are rejected by parse(); mmap of 0 bytes would fail
    // MAP_PRIVATE + PROT_WRITE: copy-on-write, so in-place ops on loaded tensors work and never
    // reach the file. (If another process truncates the file while it is mapped, touching the
    // lost pages raises SIGBUS; that is the price of zero-copy loading.)
    void* p = ::mmap(nullptr, blob->size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      int err = errno;
      ::close(fd);
      throw fail(std::string("mmap failed: ") + std::strerror(err));
    }
    blob->data = static_cast<uint8_t*>(p);
    blob->mapped = true;
  }
  ::close(fd);  // the mapping stays valid without the descriptor
  return parse(std::move(blob), path);
}

SafetensorsFile SafetensorsFile::from_buffer(const void* data, size_t size, const std::string& label) {
  auto blob = std::make_shared<Blob>();
  // 64-byte aligned like Storage::allocate, so aligned offsets give zero-copy tensors here too.
  blob->data = static_cast<uint8_t*>(std::aligned_alloc(64, (size + 63) / 64 * 64 + 64));
  if (!blob->data) throw std::bad_alloc();
  blob->size = size;
  if (size) std::memcpy(blob->data, data, size);
  return parse(std::move(blob), label);
}

// ---- validation --------------------------------------------------------------------------------

namespace {

// Parses the header text, refusing duplicate keys and deep nesting on the way.
json parse_header_json(const char* begin, const char* end, const std::function<std::runtime_error(std::string)>& fail) {
  struct Open {
    std::set<std::string> keys;
    std::string last;
  };
  std::vector<Open> open;  // the objects being parsed, outermost first
  size_t depth = 0;
  auto path = [&] {
    std::string p;
    for (size_t i = 0; i + 1 < open.size(); ++i) p += (p.empty() ? "'" : ".'") + open[i].last + "'";
    return p.empty() ? std::string("the top-level object") : "object " + p;
  };
  json::parser_callback_t cb = [&](int, json::parse_event_t ev, json& parsed) -> bool {
    switch (ev) {
      case json::parse_event_t::object_start:
      case json::parse_event_t::array_start:
        if (++depth > kMaxDepth)
          throw fail("header JSON nests deeper than " + std::to_string(kMaxDepth) + " levels (a valid header nests 3)");
        if (ev == json::parse_event_t::object_start) open.emplace_back();
        break;
      case json::parse_event_t::object_end:
        --depth;
        open.pop_back();
        break;
      case json::parse_event_t::array_end: --depth; break;
      case json::parse_event_t::key: {
        const auto& k = parsed.get_ref<const std::string&>();
        if (!open.back().keys.insert(k).second)
          throw fail(std::string(open.size() == 1 ? "tensor name" : "key") + " '" + k + "' appears twice in " +
                     path() + " of the header");
        open.back().last = k;
        break;
      }
      case json::parse_event_t::value: break;
    }
    return true;
  };
  try {
    return json::parse(begin, end, cb, /*allow_exceptions=*/true, /*ignore_comments=*/false);
  } catch (const json::exception& e) {
    throw fail(std::string("header is not valid UTF-8 JSON: ") + e.what());
  }
}

// Reads a JSON non-negative integer, naming `what` in the error.
uint64_t get_u64(const json& v, const std::function<std::runtime_error(std::string)>& fail, const std::string& what) {
  if (!v.is_number_unsigned())
    throw fail(what + " must be a non-negative integer, found " + describe(v));
  return v.get<uint64_t>();
}

}  // namespace

SafetensorsFile SafetensorsFile::parse(std::shared_ptr<Blob> blob, const std::string& label) {
  SafetensorsFile f;
  f.path_ = label;
  f.blob_ = std::move(blob);
  f.cache_ = std::make_shared<Cache>();
  auto fail = [&](const std::string& what) { return std::runtime_error(f.where() + ": " + what); };
  const uint64_t size = f.blob_->size;
  const uint8_t* bytes = f.blob_->data;

  // 1. header length
  if (size < 8)
    throw fail("is " + std::to_string(size) + " bytes long; a safetensors file starts with an 8-byte header length");
  uint64_t n = 0;
  std::memcpy(&n, bytes, 8);  // little-endian host (static_assert above)
  if (n > kMaxHeaderBytes)
    throw fail("header length N = " + std::to_string(n) + " exceeds the format's limit of " +
               std::to_string(kMaxHeaderBytes) + " bytes (is this a safetensors file?)");
  if (n > size - 8)
    throw fail("header length N = " + std::to_string(n) + " runs past the end of the file (" + std::to_string(size) +
               " bytes, so N can be at most " + std::to_string(size - 8) + ")");
  f.data_start_ = 8 + n;

  // 2. header JSON
  const char* hb = reinterpret_cast<const char*>(bytes + 8);
  if (n == 0 || hb[0] != '{') {
    char found[16];
    std::snprintf(found, sizeof found, n == 0 ? "nothing" : "byte 0x%02x", n == 0 ? 0u : unsigned(uint8_t(hb[0])));
    throw fail(std::string("header must start with '{', found ") + found);
  }
  // nlohmann's lexer takes a NUL byte for the end of input and would accept "{}\0<anything>";
  // a NUL can appear nowhere in valid JSON text (inside strings it must be escaped), so refuse it.
  if (const void* nul = std::memchr(hb, 0, n))
    throw fail("header is not valid UTF-8 JSON: NUL byte at header offset " +
               std::to_string(static_cast<const char*>(nul) - hb));
  json header = parse_header_json(hb, hb + n, fail);
  if (!header.is_object()) throw fail(std::string("header must be a JSON object, found ") + json_type(header));

  // 3 + 4. entries and metadata
  std::vector<const SafetensorsEntry*> by_offset;
  for (auto it = header.begin(); it != header.end(); ++it) {
    const std::string& name = it.key();
    const json& v = it.value();
    if (name == "__metadata__") {
      if (!v.is_object())
        throw fail(std::string("\"__metadata__\" must be an object of strings, found ") + json_type(v));
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (!m.value().is_string())
          throw fail("\"__metadata__\" value for key '" + m.key() + "' must be a string, found " +
                     describe(m.value()));
        f.metadata_[m.key()] = m.value().get<std::string>();
      }
      continue;
    }
    auto efail = [&](const std::string& what) { return fail("tensor '" + name + "': " + what); };
    if (!v.is_object()) throw efail(std::string("entry must be an object, found ") + json_type(v));
    for (const char* key : {"dtype", "shape", "data_offsets"})
      if (!v.contains(key)) throw efail(std::string("entry has no \"") + key + "\"");
    SafetensorsEntry e;
    e.name = name;
    const json& jd = v["dtype"];
    if (!jd.is_string()) throw efail(std::string("\"dtype\" must be a string, found ") + json_type(jd));
    e.dtype_name = jd.get<std::string>();
    e.info = find_safetensors_dtype(e.dtype_name);
    if (!e.info)
      throw efail("unknown dtype \"" + e.dtype_name +
                  "\" (safetensors dtypes: BOOL U8 I8 I16 U16 F16 BF16 I32 U32 F32 F64 I64 U64 C64 F8_E5M2 F8_E4M3 "
                  "F8_E8M0 F8_E4M3FNUZ F8_E5M2FNUZ F4 F6_E2M3 F6_E3M2)");
    const json& js = v["shape"];
    if (!js.is_array()) throw efail(std::string("\"shape\" must be an array, found ") + json_type(js));
    // The product of the non-zero dims must fit in int64: it bounds the strides a Tensor of this
    // shape gets, even when a zero dim makes numel 0.
    int64_t extent = 1;
    bool empty = false;
    for (size_t i = 0; i < js.size(); ++i) {
      uint64_t d = get_u64(js[i], efail, "\"shape\"[" + std::to_string(i) + "]");
      if (d > uint64_t(std::numeric_limits<int64_t>::max()) ||
          (d > 0 && __builtin_mul_overflow(extent, int64_t(d), &extent)))
        throw efail("shape " + show(js) + " has more elements than int64 can count");
      if (d == 0) empty = true;
      e.shape.push_back(int64_t(d));
    }
    uint64_t numel = empty ? 0 : uint64_t(extent);
    const json& jo = v["data_offsets"];
    if (!jo.is_array() || jo.size() != 2)
      throw efail("\"data_offsets\" must be [begin, end], found " + show(jo));
    e.begin = get_u64(jo[0], efail, "\"data_offsets\" begin");
    e.end = get_u64(jo[1], efail, "\"data_offsets\" end");
    if (e.begin > e.end)
      throw efail("\"data_offsets\" [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                  "] has begin > end");
    uint64_t bits = 0;
    if (__builtin_mul_overflow(numel, uint64_t(e.info->bits), &bits))
      throw efail("shape " + shape_str(e.shape) + " of " + e.dtype_name + " is too large to address");
    if (bits % 8 != 0)
      throw efail("shape " + shape_str(e.shape) + " of " + e.dtype_name + " (" + std::to_string(e.info->bits) +
                  "-bit) does not fill whole bytes");
    uint64_t nbytes = bits / 8;
    if (e.end - e.begin != nbytes)
      throw efail("\"data_offsets\" [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "] span " +
                  std::to_string(e.end - e.begin) + " bytes, but shape " + shape_str(e.shape) + " of " +
                  e.dtype_name + " needs " + std::to_string(nbytes));
    auto [pos, inserted] = f.entries_.emplace(name, std::move(e));
    if (!inserted) throw efail("appears twice in the header");  // the parse callback catches this first
    by_offset.push_back(&pos->second);
  }

  // 5. the tensors tile the data buffer exactly
  std::sort(by_offset.begin(), by_offset.end(), [](const SafetensorsEntry* a, const SafetensorsEntry* b) {
    return a->begin != b->begin ? a->begin < b->begin : a->end < b->end;
  });
  uint64_t at = 0;
  const SafetensorsEntry* prev = nullptr;
  for (const SafetensorsEntry* e : by_offset) {
    if (e->begin != at) {
      std::string after = prev ? "after tensor '" + prev->name + "' ends at byte " + std::to_string(at)
                               : std::string("the first tensor must start at byte 0");
      throw fail("tensor '" + e->name + "' starts at data byte " + std::to_string(e->begin) + ", expected " +
                 std::to_string(at) + ": " + after + (e->begin > at ? " (a hole)" : " (an overlap)"));
    }
    at = e->end;
    prev = e;
  }
  uint64_t data_bytes = size - f.data_start_;
  if (at != data_bytes)
    throw fail("the header's tensors end at data byte " + std::to_string(at) + ", but the file holds " +
               std::to_string(data_bytes) + " data bytes (file size " + std::to_string(size) + " = 8 + N " +
               std::to_string(n) + " + data); " +
               (at > data_bytes ? "the file is truncated (incomplete metadata)" : "there are trailing bytes"));
  return f;
}

// ---- access ------------------------------------------------------------------------------------

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(entries_.size());
  for (const auto& [k, _] : entries_) out.push_back(k);
  return out;
}

const SafetensorsEntry& SafetensorsFile::entry(const std::string& name) const {
  auto it = entries_.find(name);
  if (it == entries_.end()) {
    std::string some;
    size_t shown = 0;
    for (const auto& [k, _] : entries_) {
      if (shown++ == 8) {
        some += ", ...";
        break;
      }
      some += (shown > 1 ? ", '" : "'") + k + "'";
    }
    throw std::runtime_error(where() + ": has no tensor '" + name + "' (it holds " + std::to_string(entries_.size()) +
                             " tensors" + (some.empty() ? "" : ": " + some) + ")");
  }
  return it->second;
}

DType SafetensorsFile::dtype(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  if (!e.supported())
    throw std::runtime_error(where() + ": tensor '" + name + "' has dtype " + e.dtype_name +
                             ", which is valid safetensors but not supported by ropevit "
                             "(supported: F32 F64 BF16 F16 I32 I64 U8 BOOL)");
  return *e.info->dtype;
}

Tensor SafetensorsFile::tensor(const std::string& name) const {
  const SafetensorsEntry& e = entry(name);
  DType dt = dtype(name);
  const size_t nbytes = size_t(e.end - e.begin);
  uint8_t* src = blob_->data + data_start_ + e.begin;  // in bounds: parse() checked the tiling
  if (dt == DType::boolean) {
    // A C++ bool holding any byte but 0 or 1 is undefined behaviour, so check before exposing it.
    const uint8_t* bad = std::find_if(src, src + nbytes, [](uint8_t b) { return b > 1; });
    if (bad != src + nbytes) {
      size_t i = size_t(bad - src);
      throw std::runtime_error(where() + ": tensor '" + name + "' is BOOL but element " + std::to_string(i) +
                               " holds byte " + std::to_string(src[i]) + ", expected 0 or 1");
    }
  }

  std::shared_ptr<Storage> storage;
  {
    std::lock_guard<std::mutex> lock(cache_->mu);
    std::weak_ptr<Storage>& slot = cache_->storages[name];
    storage = slot.lock();
    if (!storage) {
      if (nbytes == 0) {
        storage = Storage::allocate(0);
      } else if (reinterpret_cast<uintptr_t>(src) % dtype_size(dt) == 0) {
        // Zero-copy: the storage's release function holds the mapping alive, and drops it when
        // the last tensor on this storage goes.
        std::shared_ptr<Blob> keep = blob_;
        storage = Storage::wrap(src, nbytes, [keep](void*) {});
      } else {
        // Misaligned for the element type (another writer's layout): reading it in place would be
        // undefined behaviour, so copy into aligned memory.
        storage = Storage::allocate(nbytes);
        std::memcpy(storage->data(), src, nbytes);
      }
      slot = storage;
    }
  }
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = e.shape;
  impl->strides = contiguous_strides(e.shape);
  impl->dtype = dt;
  return Tensor(impl);
}

std::map<std::string, Tensor> SafetensorsFile::tensors() const {
  std::map<std::string, Tensor> out;
  for (const auto& [name, _] : entries_) out.emplace(name, tensor(name));
  return out;
}

std::map<std::string, Tensor> load_safetensors(const std::string& path) { return SafetensorsFile::open(path).tensors(); }

}  // namespace rv
