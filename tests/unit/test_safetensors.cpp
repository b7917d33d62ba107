// safetensors reader and writer: files written by PyTorch's safetensors (tests/fixtures/data/
// safetensors, made by tools/make_safetensors_fixtures.py), the anchors' 104-byte test vector,
// round trips of every dtype, byte-identity with the reference writer, and every malformed-file
// rule with its error message.
#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/autograd.h"
#include "engine/io/atomic_file.h"
#include "engine/io/safetensors.h"
#include "tests/support/check.h"

using namespace rv;
namespace fs = std::filesystem;

namespace {

const std::string kDir = std::string(RV_FIXTURE_DIR) + "/safetensors/";

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  REQUIRE_MESSAGE(in.good(), "cannot read " << path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A fresh directory for this test process, removed at exit.
struct TmpDir {
  fs::path path = fs::temp_directory_path() / ("ropevit_safetensors_" + std::to_string(::getpid()));
  TmpDir() { fs::create_directories(path); }
  ~TmpDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};
const fs::path& tmp_dir() {
  static TmpDir dir;
  return dir.path;
}

// ---- the fixture formulas (tools/make_safetensors_fixtures.py) --------------------------------

Tensor formula(DType dt, const Shape& shape) {
  Tensor t = empty(shape, dt);
  int64_t n = t.numel();
  for (int64_t i = 0; i < n; ++i) {
    float f32 = (float(i) - 6.0f) / 3.0f;
    switch (dt) {
      case DType::f32: t.data<float>()[i] = f32; break;
      case DType::f64: t.data<double>()[i] = (double(i) - 6.0) / 3.0; break;
      case DType::bf16: t.data<bf16_t>()[i] = bf16_t{float_to_bf16(f32)}; break;
      case DType::f16: t.data<f16_t>()[i] = f16_t{float_to_f16(f32)}; break;
      case DType::i32: t.data<int32_t>()[i] = int32_t((i - 3) * 1000003); break;
      case DType::i64: t.data<int64_t>()[i] = (i - 3) * 3000000019LL; break;
      case DType::u8: t.data<uint8_t>()[i] = uint8_t((i * 37) % 256); break;
      case DType::boolean: t.data<bool>()[i] = i % 3 == 0; break;
    }
  }
  return t;
}

const std::vector<std::tuple<std::string, DType, Shape>> kFormulaTensors = {
    {"f32", DType::f32, {2, 3, 4}},  {"f64", DType::f64, {5}},      {"bf16", DType::bf16, {3, 7}},
    {"f16", DType::f16, {2, 2, 3}},  {"i32", DType::i32, {6}},      {"i64", DType::i64, {4, 2}},
    {"u8", DType::u8, {17}},         {"bool", DType::boolean, {3, 3}},
};

// Same dtype, shape and bytes (bitwise, so NaN and -0.0 compare as written).
void check_identical(const Tensor& got, const Tensor& want, const std::string& name) {
  INFO("tensor " << name);
  REQUIRE(got.dtype() == want.dtype());
  REQUIRE(got.shape() == want.shape());
  Tensor g = got.contiguous(), w = want.contiguous();
  size_t n = size_t(g.numel()) * g.itemsize();
  CHECK(std::memcmp(g.raw_data(), w.raw_data(), n) == 0);
}

std::vector<float> specials() {
  return {INFINITY, -INFINITY, NAN, -0.0f, 1e-45f, 3.4028235e38f};
}

// ---- hand-made files ----------------------------------------------------------------------------

std::string u64le(uint64_t n) {
  std::string s(8, '\0');
  for (int i = 0; i < 8; ++i) s[i] = char((n >> (8 * i)) & 0xff);
  return s;
}
// N + header + data; `n` overrides the length field.
std::string file_bytes(const std::string& header, const std::string& data = "", std::optional<uint64_t> n = {}) {
  return u64le(n.value_or(header.size())) + header + data;
}
SafetensorsFile open_bytes(const std::string& b) { return SafetensorsFile::from_buffer(b.data(), b.size()); }

// The error a reader gives for `bytes` ("(accepted)" if none); only runtime_error counts.
std::string reject_message(const std::string& bytes) {
  try {
    open_bytes(bytes);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "(accepted)";
}

// Every reader error starts with the file's name and contains `fragment`.
#define CHECK_REJECTS(bytes, fragment)                                                          \
  do {                                                                                          \
    std::string m_ = reject_message(bytes);                                                     \
    CHECK_MESSAGE(m_.rfind("safetensors file '<buffer>': ", 0) == 0, m_);                       \
    CHECK_MESSAGE(m_.find(fragment) != std::string::npos, "expected \"" << (fragment) << "\" in: " << m_); \
  } while (0)

const std::string kW8 = R"("w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})";
const std::string kData8 = std::string("\x00\x00\x80\x3f\x00\x00\x00\x40", 8);  // 1.0f, 2.0f

}  // namespace

// ==== reading files written by the reference implementation ====================================

TEST_CASE("reads every supported dtype written by torch + safetensors") {
  SafetensorsFile f = SafetensorsFile::open(kDir + "torch_dtypes.safetensors");
  for (const auto& [name, dt, shape] : kFormulaTensors) check_identical(f.tensor(name), formula(dt, shape), name);

  Tensor s = f.tensor("scalar");
  CHECK(s.dim() == 0);
  CHECK(s.item() == 3.5);
  CHECK(f.tensor("empty").shape() == Shape{0, 4});
  CHECK(f.tensor("empty").numel() == 0);
  CHECK(f.tensor("empty_i64").shape() == Shape{3, 0});
  CHECK(f.tensor("empty_i64").dtype() == DType::i64);
  check_identical(f.tensor("specials"), from_vector(specials(), {6}), "specials");
  CHECK(f.tensor("blocks.0.ñorm.weight").to_vector<float>() == std::vector<float>{1.0f, -2.0f});
  CHECK(f.tensor("日本語").to_vector<int32_t>() == std::vector<int32_t>{7});

  CHECK(f.metadata() == std::map<std::string, std::string>{
                            {"format", "pt"}, {"source", "make_safetensors_fixtures.py"}, {"note", "ünïcødé ✓"}});
  CHECK(f.size() == 14);
  CHECK(f.names().front() == "bf16");  // sorted by name
  CHECK(f.dtype("bf16") == DType::bf16);
  CHECK(f.shape("f16") == Shape{2, 2, 3});
  CHECK(f.entry("u8").dtype_name == "U8");

  auto all = load_safetensors(kDir + "torch_dtypes.safetensors");
  CHECK(all.size() == 14);
  check_identical(all.at("i64"), formula(DType::i64, {4, 2}), "i64");
}

TEST_CASE("valid dtypes ropevit cannot hold: the file opens, the others load, those say why") {
  SafetensorsFile f = SafetensorsFile::open(kDir + "torch_unsupported.safetensors");
  CHECK(f.tensor("ok").to_vector<float>() == std::vector<float>{1, 2, 3});
  for (const char* name : {"i8", "i16", "u16", "u32", "u64", "f8_e4m3", "f8_e5m2", "c64"}) {
    INFO(name);
    CHECK_FALSE(f.entry(name).supported());
    CHECK_THROWS_WITH_AS(f.tensor(name), doctest::Contains("not supported by ropevit"), std::runtime_error);
    CHECK_THROWS_WITH_AS(f.tensor(name), doctest::Contains(("tensor '" + std::string(name) + "'").c_str()), std::runtime_error);
  }
  CHECK_THROWS_WITH_AS(f.tensor("f8_e4m3"), doctest::Contains("has dtype F8_E4M3"), std::runtime_error);
  CHECK_THROWS_WITH_AS(load_safetensors(kDir + "torch_unsupported.safetensors"),
                       doctest::Contains("torch_unsupported.safetensors"), std::runtime_error);
  CHECK_THROWS_WITH_AS(f.tensor("nope"), doctest::Contains("has no tensor 'nope' (it holds 9 tensors: 'c64'"),
                       std::runtime_error);
}

TEST_CASE("loaded tensors share the mapping, outlive the file object and copy-on-write") {
  fs::path p = tmp_dir() / "cow.safetensors";
  save_safetensors(p.string(), NamedTensors{{"a", formula(DType::f32, {3, 5})}, {"b", formula(DType::i64, {4})}});
  Tensor a;
  {
    SafetensorsFile f = SafetensorsFile::open(p.string());
    a = f.tensor("a");
    Tensor a2 = f.tensor("a");
    CHECK(a2.storage() == a.storage());  // one storage per entry: handles alias like views
    CHECK(f.tensor("b").storage() != a.storage());
  }  // the SafetensorsFile is gone; the storage keeps the mapping alive
  check_identical(a, formula(DType::f32, {3, 5}), "a");
  a.fill_(9.0);  // private mapping: changes this process's copy only
  CHECK(a.to_vector<float>()[7] == 9.0f);
  check_identical(SafetensorsFile::open(p.string()).tensor("a"), formula(DType::f32, {3, 5}), "a (reopened)");
}

TEST_CASE("misaligned data (other writers, odd N) is copied and reads correctly") {
  // N = 9 (legal, not padded): the F32 data starts at file offset 17, misaligned for float.
  std::string header = R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[1,9]},"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})";
  header += std::string((8 - (header.size() + 1) % 8) % 8 + 1, ' ');  // 8 + N + 1 is odd
  REQUIRE((8 + header.size() + 1) % 4 != 0);
  std::string bytes = file_bytes(header, std::string(1, '\x05') + kData8);
  SafetensorsFile f = open_bytes(bytes);
  Tensor w = f.tensor("w");
  CHECK(reinterpret_cast<uintptr_t>(w.raw_data()) % alignof(float) == 0);
  CHECK(w.to_vector<float>() == std::vector<float>{1.0f, 2.0f});
  CHECK(f.tensor("b").to_vector<uint8_t>() == std::vector<uint8_t>{5});
}

TEST_CASE("accepts what the format allows") {
  SUBCASE("no tensors") { CHECK(open_bytes(file_bytes("{}")).size() == 0); }
  SUBCASE("only metadata, padded") { CHECK(open_bytes(file_bytes(R"({"__metadata__":{}}      )")).metadata().empty()); }
  SUBCASE("unknown keys in an entry are ignored, as the reference reader does") {
    auto f = open_bytes(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"extra":[1,{"x":2}]}})", kData8));
    CHECK(f.tensor("w").to_vector<float>() == std::vector<float>{1, 2});
  }
  SUBCASE("zero-element tensors at the same offset as others") {
    auto f = open_bytes(file_bytes(
        R"({"z":{"dtype":"F64","shape":[0,5],"data_offsets":[8,8]},"e":{"dtype":"I32","shape":[0],"data_offsets":[0,0]},)" + kW8 + "}",
        kData8));
    CHECK(f.tensor("z").shape() == Shape{0, 5});
    CHECK(f.tensor("w").to_vector<float>() == std::vector<float>{1, 2});
  }
  SUBCASE("a zero dim next to huge ones") {
    auto f = open_bytes(file_bytes(R"({"z":{"dtype":"F32","shape":[0,4611686018427387904],"data_offsets":[0,0]}})"));
    CHECK(f.tensor("z").numel() == 0);
  }
  SUBCASE("sub-byte dtypes that fill whole bytes") {
    auto f = open_bytes(file_bytes(R"({"q":{"dtype":"F4","shape":[4],"data_offsets":[0,2]}})", "ab"));
    CHECK_THROWS_WITH_AS(f.tensor("q"), doctest::Contains("F4, which is valid safetensors but not supported"),
                         std::runtime_error);
  }
}

// ==== rejecting malformed files ==================================================================

TEST_CASE("rejects malformed framing") {
  CHECK_REJECTS(std::string("\x01\x02\x03\x04\x05", 5), "is 5 bytes long");
  CHECK_REJECTS(std::string(), "is 0 bytes long");
  CHECK_REJECTS(file_bytes("{}", "", 100'000'001), "header length N = 100000001 exceeds the format's limit");
  CHECK_REJECTS(file_bytes("{}", "", ~uint64_t(0)), "exceeds the format's limit");
  CHECK_REJECTS(file_bytes("{}", "", 3), "header length N = 3 runs past the end of the file (10 bytes, so N can be at most 2)");
  CHECK_REJECTS(file_bytes(""), "header must start with '{', found nothing");
  CHECK_REJECTS(file_bytes(" {}"), "header must start with '{', found byte 0x20");
  CHECK_REJECTS(file_bytes("[]"), "found byte 0x5b");
}

TEST_CASE("rejects a header that is not UTF-8 JSON, or nests, or repeats a key") {
  CHECK_REJECTS(file_bytes(R"({"w":)"), "header is not valid UTF-8 JSON");
  CHECK_REJECTS(file_bytes("{} x"), "header is not valid UTF-8 JSON");
  CHECK_REJECTS(file_bytes(std::string("{}\0\0", 4)), "header is not valid UTF-8 JSON: NUL byte at header offset 2");
  CHECK_REJECTS(file_bytes(std::string("{\"a\0\":1}", 8)), "NUL byte at header offset 3");
  CHECK_REJECTS(file_bytes(std::string("{\"\xff\":1}")), "header is not valid UTF-8 JSON");
  CHECK_REJECTS(file_bytes(std::string("{\"\xc3\x28\":1}")), "header is not valid UTF-8 JSON");  // bad continuation
  CHECK_REJECTS(file_bytes("{/*c*/}"), "header is not valid UTF-8 JSON");
  CHECK_REJECTS(file_bytes("{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}"), "nests deeper than 64");
  CHECK_REJECTS(file_bytes("{" + kW8 + "," + kW8 + "}", kData8 + kData8), "tensor name 'w' appears twice in the top-level object");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}})", kData8),
                "key 'dtype' appears twice in object 'w'");
  CHECK_REJECTS(file_bytes(R"({"__metadata__":{"a":"1","a":"2"}})"), "key 'a' appears twice in object '__metadata__'");
}

TEST_CASE("rejects malformed entries, naming the tensor") {
  CHECK_REJECTS(file_bytes(R"({"w":5})"), "tensor 'w': entry must be an object, found a non-negative integer");
  CHECK_REJECTS(file_bytes(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", kData8), "tensor 'w': entry has no \"dtype\"");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", kData8), "tensor 'w': entry has no \"shape\"");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F32","shape":[2]}})", kData8), "tensor 'w': entry has no \"data_offsets\"");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":4,"shape":[2],"data_offsets":[0,8]}})", kData8),
                "tensor 'w': \"dtype\" must be a string, found a non-negative integer");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}})", kData8),
                "tensor 'w': unknown dtype \"F33\" (safetensors dtypes: BOOL U8");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"f32","shape":[2],"data_offsets":[0,8]}})", kData8), "unknown dtype \"f32\"");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F32","shape":2,"data_offsets":[0,8]}})", kData8),
                "tensor 'w': \"shape\" must be an array, found a non-negative integer");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", kData8),
                "tensor 'w': \"shape\"[0] must be a non-negative integer, found a negative integer -2");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", kData8),
                "\"shape\"[0] must be a non-negative integer, found a floating-point number 2.0");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F32","shape":["2"],"data_offsets":[0,8]}})", kData8), "tensor 'w': \"shape\"[0] must be a non-negative integer, found string \"2\"");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,8]}})", kData8),
                "tensor 'w': shape [4294967296,4294967296] has more elements than int64 can count");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F32","shape":[18446744073709551615],"data_offsets":[0,8]}})", kData8),
                "more elements than int64 can count");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F32","shape":[18446744073709551616],"data_offsets":[0,8]}})", kData8),
                "found a floating-point number");  // beyond u64: nlohmann reads it as a double
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}})", kData8),
                "tensor 'w': shape [4611686018427387904] of F64 is too large to address");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}})", "ab"),
                "tensor 'w': shape [3] of F4 (4-bit) does not fill whole bytes");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", kData8),
                "tensor 'w': \"data_offsets\" must be [begin, end], found [0]");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":{"a":1}}})", kData8), "must be [begin, end]");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}})", kData8),
                "\"data_offsets\" end must be a non-negative integer, found a negative integer -8");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", kData8),
                "tensor 'w': \"data_offsets\" [8, 0] has begin > end");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", kData8),
                "tensor 'w': \"data_offsets\" [0, 8] span 8 bytes, but shape [3] of F32 needs 12");
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F32","shape":[],"data_offsets":[0,8]}})", kData8),
                "span 8 bytes, but shape [] of F32 needs 4");
}

TEST_CASE("rejects metadata that is not strings") {
  CHECK_REJECTS(file_bytes(R"({"__metadata__":{"epoch":3}})"),
                "\"__metadata__\" value for key 'epoch' must be a string, found a non-negative integer 3");
  CHECK_REJECTS(file_bytes(R"({"__metadata__":{"a":null}})"), "value for key 'a' must be a string, found null");
  CHECK_REJECTS(file_bytes(R"({"__metadata__":["pt"]})"), "\"__metadata__\" must be an object of strings, found array");
}

TEST_CASE("rejects data buffers that are not tiled exactly") {
  const std::string a4 = R"("a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]})";
  CHECK_REJECTS(file_bytes(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", kData8 + "1234"),
                "tensor 'w' starts at data byte 4, expected 0: the first tensor must start at byte 0 (a hole)");
  CHECK_REJECTS(file_bytes("{" + a4 + R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", kData8 + "1234"),
                "tensor 'b' starts at data byte 8, expected 4: after tensor 'a' ends at byte 4 (a hole)");
  CHECK_REJECTS(file_bytes("{" + kW8 + R"(,"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", kData8),
                "tensor 'b' starts at data byte 4, expected 8: after tensor 'w' ends at byte 8 (an overlap)");
  CHECK_REJECTS(file_bytes("{" + kW8 + "}", kData8.substr(0, 7)),
                "the header's tensors end at data byte 8, but the file holds 7 data bytes (file size 69 = 8 + N 54 + "
                "data); the file is truncated (incomplete metadata)");
  CHECK_REJECTS(file_bytes("{" + kW8 + "}", kData8 + "x"), "file holds 9 data bytes (file size 71 = 8 + N 54 + data); there are trailing bytes");
  CHECK_REJECTS(file_bytes("{}", "x"), "the header's tensors end at data byte 0, but the file holds 1 data bytes");
}

TEST_CASE("a BOOL tensor must hold 0 or 1") {
  auto f = open_bytes(file_bytes(R"({"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]}})", std::string("\x01\x02\x00", 3)));
  CHECK_THROWS_WITH_AS(f.tensor("m"),
                       doctest::Contains("safetensors file '<buffer>': tensor 'm' is BOOL but element 1 holds byte 2, expected 0 or 1"),
                       std::runtime_error);
}

TEST_CASE("file errors name the path") {
  std::string missing = (tmp_dir() / "missing.safetensors").string();
  CHECK_THROWS_WITH_AS(SafetensorsFile::open(missing),
                       doctest::Contains(("safetensors file '" + missing + "': cannot open: No such file").c_str()), std::runtime_error);
  CHECK_THROWS_WITH_AS(SafetensorsFile::open(tmp_dir().string()), doctest::Contains("not a regular file"), std::runtime_error);
  fs::path p = tmp_dir() / "short.safetensors";
  std::ofstream(p, std::ios::binary) << "abc";
  CHECK_THROWS_WITH_AS(SafetensorsFile::open(p.string()),
                       doctest::Contains(("safetensors file '" + p.string() + "': is 3 bytes long").c_str()), std::runtime_error);
  std::ofstream(p, std::ios::binary | std::ios::trunc).write("", 0);
  CHECK_THROWS_WITH_AS(SafetensorsFile::open(p.string()), doctest::Contains("is 0 bytes long"), std::runtime_error);
}

// ==== writing ====================================================================================

TEST_CASE("writer reproduces the anchors' 104-byte test vector") {
  std::string b = safetensors_bytes({{"w", from_vector(std::vector<float>{1.0f, 2.0f}, {2})}});
  std::string header = R"({"__metadata__":{"format":"pt"},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
  REQUIRE(header.size() == 85);
  std::string want = std::string("\x58\0\0\0\0\0\0\0", 8) + header + "   " + kData8;
  CHECK(want.size() == 104);
  CHECK(b == want);
  fs::path p = tmp_dir() / "vector.safetensors";
  save_safetensors(p.string(), NamedTensors{{"w", from_vector(std::vector<float>{1.0f, 2.0f}, {2})}});
  CHECK(read_bytes(p.string()) == want);
}

TEST_CASE("writer output is byte-identical to the reference writer's") {
  // torch_plain.safetensors = torch_dtypes' tensors saved by safetensors.torch.save_file with
  // metadata {"format": "pt"}: same order, same header text, same padding.
  auto tensors = load_safetensors(kDir + "torch_dtypes.safetensors");
  CHECK(safetensors_bytes(NamedTensors(tensors.begin(), tensors.end())) == read_bytes(kDir + "torch_plain.safetensors"));
}

TEST_CASE("round trips every dtype, views and odd shapes through a file") {
  NamedTensors in;
  for (const auto& [name, dt, shape] : kFormulaTensors) in.emplace_back(name, formula(dt, shape));
  Tensor big = formula(DType::f64, {6, 5});
  in.emplace_back("transposed", formula(DType::f64, {6, 5}).t());  // non-contiguous
  in.emplace_back("narrowed", big.narrow(0, 2, 3));       // a window of a bigger storage
  in.emplace_back("row0", big.select(0, 0));              // disjoint from "narrowed": allowed
  in.emplace_back("scalar", scalar_tensor(-1.5, DType::bf16));
  in.emplace_back("empty", empty({4, 0, 2}, DType::i32));
  in.emplace_back("odd.u8", formula(DType::u8, {3}));
  in.emplace_back("after_odd", formula(DType::f16, {1}));
  Tensor g = formula(DType::f32, {3});
  g.requires_grad_();
  in.emplace_back("leaf", g);
  std::map<std::string, std::string> meta = {{"epoch", "7"}, {"ünï", "cødé"}};

  fs::path p = tmp_dir() / "roundtrip.safetensors";
  save_safetensors(p.string(), in, meta);
  SafetensorsFile f = SafetensorsFile::open(p.string());
  CHECK(f.size() == in.size());
  for (const auto& [name, t] : in) {
    check_identical(f.tensor(name), t.detach(), name);
    // Our writer aligns every tensor, so all of them are zero-copy views of the mapping.
    CHECK(reinterpret_cast<uintptr_t>(f.tensor(name).raw_data()) % f.tensor(name).itemsize() == 0);
  }
  CHECK(f.metadata() == std::map<std::string, std::string>{{"format", "pt"}, {"epoch", "7"}, {"ünï", "cødé"}});
  // The same bytes from memory, and from the map overload.
  CHECK(safetensors_bytes(in, meta) == read_bytes(p.string()));
  std::map<std::string, Tensor> as_map(in.begin(), in.end());
  fs::path p2 = tmp_dir() / "roundtrip_map.safetensors";
  save_safetensors(p2.string(), as_map, meta);
  CHECK(read_bytes(p2.string()) == read_bytes(p.string()));
  CHECK(SafetensorsFile::open(p.string()).metadata().at("format") == "pt");
  auto header_len = read_bytes(p.string()).substr(0, 8);
  CHECK((uint8_t(header_len[0]) % 8) == 0);
}

TEST_CASE("writer refuses duplicates, aliasing, reserved names and bad metadata") {
  Tensor a = formula(DType::f32, {4, 4});
  auto refuses = [](const NamedTensors& t, const std::string& fragment, std::map<std::string, std::string> meta = {}) {
    fs::path p = tmp_dir() / "refused.safetensors";
    CHECK_THROWS_WITH_AS(save_safetensors(p.string(), t, meta), doctest::Contains(fragment.c_str()), std::invalid_argument);
    CHECK_FALSE(fs::exists(p));  // nothing is created for a refused call
    CHECK_FALSE(fs::exists(p.string() + ".tmp." + std::to_string(::getpid())));
  };
  refuses({{"x", a}, {"x", a.clone()}}, "refused.safetensors': tensor name 'x' is given twice");
  refuses({{"x", a}, {"y", a}}, "tensors 'x' and 'y' share memory");
  refuses({{"x", a.narrow(0, 0, 2)}, {"y", a.narrow(0, 1, 2)}}, "share memory");   // overlapping rows
  refuses({{"x", a.t()}, {"y", a.select(1, 3)}}, "share memory");                // column inside the transpose
  refuses({{"__metadata__", a}}, "\"__metadata__\" is reserved");
  refuses({{"x", Tensor()}}, "tensor 'x' is undefined");
  refuses({{"x", a}}, "metadata \"format\" must be \"pt\"", {{"format", "tf"}});
  refuses({{std::string("bad\xff"), a}}, "is not valid UTF-8");
  refuses({{"x", a}}, "metadata value for 'k' is not valid UTF-8", {{"k", std::string("\xc3")}});
  // Disjoint windows of one storage are separate tensors and are fine.
  CHECK_NOTHROW(safetensors_bytes({{"x", a.narrow(0, 0, 2)}, {"y", a.narrow(0, 2, 2)}}));
  CHECK_NOTHROW(safetensors_bytes({{"x", a}}, {{"format", "pt"}}));
}

TEST_CASE("writes atomically: no temporary left, old file intact until the rename") {
  fs::path p = tmp_dir() / "atomic.safetensors";
  save_safetensors(p.string(), NamedTensors{{"v", formula(DType::f32, {3})}});
  std::string before = read_bytes(p.string());
  {
    AtomicFileWriter w(p.string());
    w.write("garbage", 7);
    CHECK(fs::exists(w.temp_path()));
    CHECK(read_bytes(p.string()) == before);  // the real name still shows the old file
  }  // destroyed without commit, as on an exception: the temporary goes, the file stays
  CHECK(read_bytes(p.string()) == before);
  for (const auto& e : fs::directory_iterator(tmp_dir()))
    CHECK_MESSAGE(e.path().string().find(".tmp.") == std::string::npos, e.path());
  save_safetensors(p.string(), NamedTensors{{"v", formula(DType::f32, {5})}});  // replaces
  CHECK(SafetensorsFile::open(p.string()).shape("v") == Shape{5});
  std::string bad = (tmp_dir() / "no_such_dir" / "x.safetensors").string();
  CHECK_THROWS_WITH_AS(save_safetensors(bad, NamedTensors{{"v", formula(DType::f32, {1})}}),
                       doctest::Contains(("cannot write '" + bad + "'").c_str()), std::runtime_error);
}

TEST_CASE("writer golden file, checked by the Python reference (tools/check_safetensors_roundtrip.py)") {
  // Keep in step with the `expected` dict of tools/check_safetensors_roundtrip.py.
  NamedTensors t;
  for (const auto& [name, dt, shape] : kFormulaTensors) t.emplace_back(name, formula(dt, shape));
  t.emplace_back("f32_transposed", formula(DType::f32, {4, 3}).t());
  t.emplace_back("scalar", scalar_tensor(-1.25, DType::f64));
  t.emplace_back("empty", empty({2, 0, 3}, DType::bf16));
  t.emplace_back("specials", from_vector(std::vector<float>{INFINITY, -INFINITY, NAN, -0.0f}, {4}));
  t.emplace_back("blocks.0.ñorm.weight", from_vector(std::vector<float>{1.0f, -2.0f}, {2}));
  std::map<std::string, std::string> meta = {{"model", "ropevit-test"}, {"ünï", "cødé ✓"}};
  std::string golden = kDir + "ropevit_written.safetensors";
  if (const char* up = std::getenv("RV_UPDATE_FIXTURES"); up && std::string(up) == "1") {
    save_safetensors(golden, t, meta);
    MESSAGE("rewrote " << golden);
  }
  CHECK(safetensors_bytes(t, meta) == read_bytes(golden));
}
