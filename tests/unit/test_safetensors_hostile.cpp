// Hostile safetensors input without clang: replays the fuzz corpus (tests/fuzz/corpus) and
// systematic mutations of valid files through the fuzzer's own property check
// (tests/fuzz/safetensors_fuzz_check.h): every input must be refused with a runtime_error or load
// cleanly and survive a write/read round trip. Seeds named valid_* must load, bad_* must be
// refused (at open, or for bad_bool_byte when the tensor is read).
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/fuzz/safetensors_fuzz_check.h"
#include "tests/support/check.h"

using namespace rv;
namespace fs = std::filesystem;

namespace {

const fs::path kCorpus = fs::path(RV_SOURCE_DIR) / "tests" / "fuzz" / "corpus";

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string check(const std::string& b) {
  return fuzz::safetensors_check_one(reinterpret_cast<const uint8_t*>(b.data()), b.size());
}

// True when the bytes open and every supported tensor reads.
bool loads(const std::string& b) {
  try {
    SafetensorsFile f = SafetensorsFile::from_buffer(b.data(), b.size());
    for (const auto& name : f.names())
      if (f.entry(name).supported()) (void)f.tensor(name);
    return true;
  } catch (const std::runtime_error&) {
    return false;
  }
}

}  // namespace

TEST_CASE("every corpus file is refused cleanly or loads and round-trips") {
  REQUIRE(fs::is_directory(kCorpus));
  int valid = 0, bad = 0;
  for (const auto& e : fs::directory_iterator(kCorpus)) {
    std::string name = e.path().filename().string();
    std::string b = read_bytes(e.path());
    INFO("corpus file " << name);
    CHECK(check(b) == "");
    if (name.rfind("valid_", 0) == 0) {
      CHECK(loads(b));
      ++valid;
    } else if (name.rfind("bad_", 0) == 0) {
      CHECK_FALSE(loads(b));
      ++bad;
    }
  }
  CHECK(valid >= 8);
  CHECK(bad >= 20);
}

TEST_CASE("truncations and byte mutations of valid files never misbehave") {
  size_t inputs = 0, accepted = 0;
  const unsigned char replacements[] = {0x00, 0xff, 0x20, '"', '{', '}', '[', ']', '0', '9', '-', ',', ':', 0x80};
  for (const char* seed : {"valid_test_vector", "valid_misaligned", "valid_unsupported_dtypes", "valid_zero_size",
                           "valid_torch_dtypes"}) {
    const std::string base = read_bytes(kCorpus / seed);
    REQUIRE(!base.empty());
    INFO("seed " << seed);
    for (size_t len = 0; len < base.size(); ++len) {  // every truncation
      std::string b = base.substr(0, len);
      std::string r = check(b);
      CHECK_MESSAGE(r == "", "truncated to " << len << ": " << r);
      ++inputs;
    }
    for (size_t pos = 0; pos < base.size(); ++pos) {  // every byte, several replacements
      for (unsigned char c : replacements) {
        if (static_cast<unsigned char>(base[pos]) == c) continue;
        std::string b = base;
        b[pos] = char(c);
        std::string r = check(b);
        if (!r.empty()) FAIL_CHECK("byte " << pos << " set to " << int(c) << ": " << r);
        accepted += loads(b);
        ++inputs;
      }
    }
  }
  MESSAGE(inputs << " mutated inputs, " << accepted << " of them still valid files");
  CHECK(inputs > 10000);
}

TEST_CASE("header length field: every power of two and its neighbours") {
  const std::string base = read_bytes(kCorpus / "valid_test_vector");
  for (int bit = 0; bit < 64; ++bit) {
    for (int64_t d : {-1, 0, 1}) {
      uint64_t n = (uint64_t(1) << bit) + uint64_t(d);
      std::string b = base;
      for (int i = 0; i < 8; ++i) b[i] = char((n >> (8 * i)) & 0xff);
      INFO("N = " << n);
      CHECK(check(b) == "");
      if (n != 88) CHECK_FALSE(loads(b));
    }
  }
}
