// IDX reader (data/idx.h) and the Fashion-MNIST view on it: small files made here byte by byte
// (every type code, plain and gzip, and every way a file can be wrong), the fuzz corpus
// (tests/fuzz/corpus_idx) and systematic mutations through the fuzzer's own property check, and
// the real Debian files when dataset-fashion-mnist is installed.
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/fashion_mnist.h"
#include "data/gzip.h"
#include "data/idx.h"
#include "tests/fuzz/idx_fuzz_check.h"
#include "tests/support/check.h"

using namespace rv;
using namespace rv::data;
namespace fs = std::filesystem;

namespace {

const fs::path kCorpus = fs::path(RV_SOURCE_DIR) / "tests" / "fuzz" / "corpus_idx";

std::string be(uint64_t v, int bytes) {
  std::string s;
  for (int i = bytes - 1; i >= 0; --i) s.push_back(char((v >> (8 * i)) & 0xff));
  return s;
}

std::string header(uint8_t code, const std::vector<uint32_t>& dims) {
  std::string s = {'\0', '\0', char(code), char(dims.size())};
  for (uint32_t d : dims) s += be(d, 4);
  return s;
}

// A gzip file made by hand with one "stored" (uncompressed) deflate block, so the test needs no
// compressor: header 1f 8b 08 ..., block 01 LEN ~LEN data, trailer CRC-32 and length (LE).
uint32_t crc32(const std::string& s) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}
std::string le(uint32_t v, int bytes) {
  std::string s;
  for (int i = 0; i < bytes; ++i) s.push_back(char((v >> (8 * i)) & 0xff));
  return s;
}
std::string gzip_stored(const std::string& data) {
  REQUIRE(data.size() < 65536);
  std::string s("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10);
  s += '\x01';
  s += le(uint32_t(data.size()), 2) + le(uint32_t(~data.size()) & 0xffff, 2);
  s += data;
  s += le(crc32(data), 4) + le(uint32_t(data.size()), 4);
  return s;
}

Tensor parse(const std::string& b) { return parse_idx(b.data(), b.size(), "test.idx"); }

// The error message parse() gives, "" when it loads.
std::string error_of(const std::string& b) {
  try {
    parse(b);
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("rv_test_idx_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write_file(const fs::path& p, const std::string& b) {
  std::ofstream(p, std::ios::binary) << b;
}

const std::string kU8 = header(0x08, {2, 3}) + std::string("\x00\x01\x7f\x80\xfe\xff", 6);

}  // namespace

TEST_CASE("u8 images load with their shape and values, row-major") {
  Tensor t = parse(kU8);
  CHECK(t.dtype() == DType::u8);
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.is_contiguous());
  CHECK(t.to_vector<uint8_t>() == std::vector<uint8_t>{0, 1, 127, 128, 254, 255});
}

TEST_CASE("every type code: big-endian values become host values, i8 and i16 widen to i32") {
  SUBCASE("i8") {
    Tensor t = parse(header(0x09, {3}) + std::string("\x80\x00\x7f", 3));
    CHECK(t.dtype() == DType::i32);
    CHECK(t.to_vector<int32_t>() == std::vector<int32_t>{-128, 0, 127});
  }
  SUBCASE("i16") {
    Tensor t = parse(header(0x0B, {2, 1}) + be(uint16_t(int16_t(-300)), 2) + be(12345, 2));
    CHECK(t.dtype() == DType::i32);
    CHECK(t.shape() == Shape{2, 1});
    CHECK(t.to_vector<int32_t>() == std::vector<int32_t>{-300, 12345});
  }
  SUBCASE("i32") {
    Tensor t = parse(header(0x0C, {2}) + be(uint32_t(-70000), 4) + be(0x7fffffff, 4));
    CHECK(t.to_vector<int32_t>() == std::vector<int32_t>{-70000, 2147483647});
  }
  SUBCASE("f32") {
    uint32_t a, b;
    float fa = 1.5f, fb = -0.25f;
    std::memcpy(&a, &fa, 4);
    std::memcpy(&b, &fb, 4);
    Tensor t = parse(header(0x0D, {1, 1, 2}) + be(a, 4) + be(b, 4));
    CHECK(t.dtype() == DType::f32);
    CHECK(t.shape() == Shape{1, 1, 2});
    CHECK(t.to_vector<float>() == std::vector<float>{1.5f, -0.25f});
  }
  SUBCASE("f64") {
    uint64_t a;
    double da = -3.0625;
    std::memcpy(&a, &da, 8);
    Tensor t = parse(header(0x0E, {1}) + be(a, 8));
    CHECK(t.dtype() == DType::f64);
    CHECK(t.to_vector<double>() == std::vector<double>{-3.0625});
  }
}

TEST_CASE("a size-0 dimension gives an empty tensor of that shape") {
  Tensor t = parse(header(0x08, {0, 28, 28}));
  CHECK(t.shape() == Shape{0, 28, 28});
  CHECK(t.numel() == 0);
  Tensor one = parse(header(0x08, {1, 1, 1, 1}) + "\x2a");
  CHECK(one.shape() == Shape{1, 1, 1, 1});
  CHECK(one.item() == 42);
}

TEST_CASE("every malformed header or length is refused with a message naming the file and the rule") {
  struct Bad { const char* what; std::string bytes; const char* says; };
  const std::vector<Bad> cases = {
      {"empty file", "", "truncated: expected a 4-byte magic number, found 0 bytes"},
      {"3 bytes", std::string("\x00\x00\x08", 3), "found 3 bytes"},
      {"magic not 00 00", std::string("\x01\x00\x08\x01", 4) + be(1, 4) + "x", "must start with 00 00, found 01 00 08 01"},
      {"unknown type 0A", header(0x0A, {1}) + "x", "unknown data type code 0x0a"},
      {"0 dimensions", header(0x08, {}), "expected 1 to 8 dimensions, the header says 0"},
      {"9 dimensions", header(0x08, std::vector<uint32_t>(9, 1)) + "x", "the header says 9"},
      {"header cut in a size", header(0x08, {3, 3}).substr(0, 10), "truncated header: 2 dimensions need 12 header bytes, the file has 10"},
      {"data one byte short", kU8.substr(0, kU8.size() - 1), "truncated: shape [2, 3] of u8 needs 6 data bytes after the 12-byte header, the file has 5"},
      {"one trailing byte", kU8 + "x", "needs 6 data bytes, but 1 more bytes follow"},
      {"f64 data short", header(0x0E, {2}) + std::string(12, '\0'), "of f64 needs 16 data bytes"},
      {"sizes beyond 2^60 elements", header(0x0E, {0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF}), "more than 2^60 elements"},
  };
  for (const Bad& c : cases) {
    INFO("case: " << std::string(c.what));
    std::string msg = error_of(c.bytes);
    REQUIRE_MESSAGE(!msg.empty(), "was accepted");
    CHECK_MESSAGE(msg.find("IDX file 'test.idx'") == 0, msg);
    CHECK_MESSAGE(msg.find(c.says) != std::string::npos, msg);
  }
}

TEST_CASE("gzip input: a hand-made stored-block file loads like the plain one") {
  if (!gzip_supported()) {
    MESSAGE("this build has no zlib: checking the refusal instead");
    CHECK(error_of(gzip_stored(kU8)).find("no zlib") != std::string::npos);
    return;
  }
  const std::string gz = gzip_stored(kU8);
  Tensor t = parse(gz);
  CHECK(t.shape() == Shape{2, 3});
  CHECK(t.to_vector<uint8_t>() == parse(kU8).to_vector<uint8_t>());
  // The committed seed was made by Python's gzip (real deflate compression).
  Tensor s = parse(read_bytes(kCorpus / "valid_gzip_u8"));
  CHECK(s.to_vector<uint8_t>() == std::vector<uint8_t>{0, 1, 2, 3, 4, 5});
}

TEST_CASE("gzip input: truncation, a bad CRC, trailing bytes and lying headers are refused") {
  if (!gzip_supported()) return;
  const std::string gz = gzip_stored(kU8);
  for (size_t len = 0; len < gz.size(); ++len) {  // every truncation of the compressed file
    INFO("truncated to " << len << " bytes");
    std::string msg = error_of(gz.substr(0, len));
    CHECK(!msg.empty());
  }
  std::string bad_crc = gz;
  bad_crc[bad_crc.size() - 8] ^= 1;
  CHECK(error_of(bad_crc).find("corrupt compressed data") != std::string::npos);
  CHECK(error_of(gz + "junk").find("4 bytes follow the end of the gzip stream") != std::string::npos);
  CHECK(error_of(gzip_stored(kU8.substr(0, kU8.size() - 2))).find("after decompression") != std::string::npos);
  CHECK(error_of(gzip_stored(kU8 + "ab")).find("more bytes follow them after decompression") != std::string::npos);
  // A 30-byte file cannot hold 2^40 bytes: refused before anything is allocated.
  std::string bomb = gzip_stored(header(0x08, {1u << 20, 1u << 20}));
  CHECK(error_of(bomb).find("more than a gzip file of") != std::string::npos);
}

TEST_CASE("read_idx names the path, and says why a file cannot be read") {
  fs::path dir = temp_dir("read");
  write_file(dir / "a.idx", kU8);
  CHECK(read_idx((dir / "a.idx").string()).shape() == Shape{2, 3});
  write_file(dir / "short.idx", kU8.substr(0, 13));
  try {
    read_idx((dir / "short.idx").string());
    FAIL("accepted a truncated file");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()).find((dir / "short.idx").string()) != std::string::npos);
  }
  CHECK_THROWS_WITH_AS(read_idx((dir / "missing.idx").string()),
                       doctest::Contains("cannot open: No such file or directory"), std::runtime_error);
  CHECK_THROWS_WITH_AS(read_idx(dir.string()), doctest::Contains("read error"), std::runtime_error);
  fs::remove_all(dir);
}

TEST_CASE("every corpus file is refused cleanly or loads and round-trips") {
  REQUIRE(fs::is_directory(kCorpus));
  int valid = 0, bad = 0;
  for (const auto& e : fs::directory_iterator(kCorpus)) {
    const std::string name = e.path().filename().string();
    const std::string b = read_bytes(e.path());
    INFO("corpus file " << name);
    CHECK(fuzz::idx_check_one(reinterpret_cast<const uint8_t*>(b.data()), b.size()) == "");
    const bool gz = is_gzip(b.data(), b.size());
    if (gz && !gzip_supported()) continue;
    if (name.rfind("valid_", 0) == 0) {
      CHECK(error_of(b) == "");
      ++valid;
    } else if (name.rfind("bad_", 0) == 0) {
      CHECK(error_of(b) != "");
      ++bad;
    }
  }
  CHECK(valid >= (gzip_supported() ? 10 : 8));
  CHECK(bad >= (gzip_supported() ? 17 : 10));
}

TEST_CASE("truncations and byte mutations of valid files never misbehave") {
  const unsigned char replacements[] = {0x00, 0x01, 0x08, 0x0e, 0x7f, 0x80, 0xff};
  size_t inputs = 0;
  for (const char* seed : {"valid_u8", "valid_i16", "valid_f64", "valid_empty", "valid_gzip_u8"}) {
    const std::string base = read_bytes(kCorpus / seed);
    REQUIRE(!base.empty());
    INFO("seed " << seed);
    for (size_t len = 0; len <= base.size(); ++len) {
      std::string r = fuzz::idx_check_one(reinterpret_cast<const uint8_t*>(base.data()), len);
      CHECK_MESSAGE(r == "", "truncated to " << len << ": " << r);
      ++inputs;
    }
    for (size_t pos = 0; pos < base.size(); ++pos)
      for (unsigned char c : replacements) {
        std::string b = base;
        b[pos] = char(c);
        std::string r = fuzz::idx_check_one(reinterpret_cast<const uint8_t*>(b.data()), b.size());
        CHECK_MESSAGE(r == "", "byte " << pos << " set to " << int(c) << ": " << r);
        ++inputs;
      }
  }
  CHECK(inputs > 500);
}

TEST_CASE("FashionMnist: a split made of hand-made files, and what it refuses") {
  fs::path dir = temp_dir("fmnist");
  std::string pixels(3 * 28 * 28, '\0');
  for (size_t i = 0; i < pixels.size(); ++i) pixels[i] = char(i * 7 % 256);
  write_file(dir / "t10k-images-idx3-ubyte", header(0x08, {3, 28, 28}) + pixels);
  write_file(dir / "t10k-labels-idx1-ubyte", header(0x08, {3}) + std::string("\x09\x00\x03", 3));
  FashionMnist ds = FashionMnist::open(dir.string(), FashionMnist::Split::test);
  CHECK(ds.size() == 3);
  CHECK(ds.images().shape() == Shape{3, 28, 28});
  CHECK(ds.images().dtype() == DType::u8);
  CHECK(ds.images().data<uint8_t>()[100] == uint8_t(700 % 256));
  CHECK(ds.labels().dtype() == DType::i64);
  CHECK(ds.labels().to_vector<int64_t>() == std::vector<int64_t>{9, 0, 3});
  CHECK(std::string(FashionMnist::kClassNames[9]) == "Ankle boot");
  CHECK(FashionMnist::find_file(dir.string(), "t10k-images-idx3-ubyte") == (dir / "t10k-images-idx3-ubyte").string());

  // the train split is absent
  CHECK_THROWS_WITH_AS(FashionMnist::open(dir.string(), FashionMnist::Split::train),
                       doctest::Contains("neither train-images-idx3-ubyte.gz nor train-images-idx3-ubyte"),
                       std::runtime_error);
  // a label out of range, a count mismatch, images of the wrong size
  write_file(dir / "t10k-labels-idx1-ubyte", header(0x08, {3}) + std::string("\x09\x0a\x03", 3));
  CHECK_THROWS_WITH_AS(FashionMnist::open(dir.string(), FashionMnist::Split::test),
                       doctest::Contains("label 1 is 10, expected 0..9"), std::runtime_error);
  write_file(dir / "t10k-labels-idx1-ubyte", header(0x08, {2}) + std::string("\x09\x00", 2));
  CHECK_THROWS_WITH_AS(FashionMnist::open(dir.string(), FashionMnist::Split::test),
                       doctest::Contains("has 2 labels but"), std::runtime_error);
  write_file(dir / "t10k-images-idx3-ubyte", header(0x08, {3, 28, 27}) + pixels.substr(0, 3 * 28 * 27));
  CHECK_THROWS_WITH_AS(FashionMnist::open(dir.string(), FashionMnist::Split::test),
                       doctest::Contains("should hold u8 images of shape (N, 28, 28), it holds uint8 [3, 28, 27]"),
                       std::runtime_error);
  // the .gz is preferred when both exist
  if (gzip_supported()) {
    write_file(dir / "t10k-images-idx3-ubyte.gz", gzip_stored(header(0x08, {2, 28, 28}) + pixels.substr(0, 2 * 784)));
    write_file(dir / "t10k-labels-idx1-ubyte", header(0x08, {2}) + std::string("\x01\x02", 2));
    FashionMnist gz = FashionMnist::open(dir.string(), FashionMnist::Split::test);
    CHECK(gz.size() == 2);
  }
  fs::remove_all(dir);
}

TEST_CASE("FashionMnist: Debian's dataset-fashion-mnist files, when installed") {
  const std::string dir = FashionMnist::kDebianDir;
  if (FashionMnist::find_file(dir, "t10k-labels-idx1-ubyte").empty()) {
    MESSAGE("skipped: " << dir << " has no Fashion-MNIST files (apt-get install dataset-fashion-mnist)");
    return;
  }
  if (!gzip_supported() && FashionMnist::find_file(dir, "t10k-labels-idx1-ubyte").ends_with(".gz")) {
    MESSAGE("skipped: the Debian files are gzip-compressed and this build has no zlib");
    return;
  }
  // Reference numbers from Python's gzip + numpy on the same files.
  struct Expect { FashionMnist::Split split; int64_t n; std::vector<int64_t> first; int64_t pixel_sum, first_sum; };
  for (const Expect& e : {Expect{FashionMnist::Split::train, 60000, {9, 0, 0, 3, 0, 2, 7, 2, 5, 5}, 3431114169, 76247},
                          Expect{FashionMnist::Split::test, 10000, {9, 2, 1, 1, 6, 1, 4, 6, 5, 7}, 573469082, 33456}}) {
    FashionMnist ds = FashionMnist::open(dir, e.split);
    REQUIRE(ds.size() == e.n);
    CHECK(ds.images().shape() == Shape{e.n, 28, 28});
    std::vector<int64_t> labels = ds.labels().to_vector<int64_t>();
    CHECK(std::vector<int64_t>(labels.begin(), labels.begin() + 10) == e.first);
    std::vector<int64_t> per_class(10, 0);
    for (int64_t y : labels) ++per_class[size_t(y)];
    CHECK(per_class == std::vector<int64_t>(10, e.n / 10));  // balanced: 6000 / 1000 of each
    const uint8_t* px = ds.images().data<uint8_t>();
    int64_t sum = 0, first = 0;
    for (int64_t i = 0; i < ds.images().numel(); ++i) sum += px[i];
    for (int64_t i = 0; i < 784; ++i) first += px[i];
    CHECK(sum == e.pixel_sum);
    CHECK(first == e.first_sum);
  }
}
