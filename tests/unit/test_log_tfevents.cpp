// TensorBoard event files: the checksums (check values, SSE4.2 vs table), the anchors' test
// vectors byte for byte, the writer's file name / first event / flush policy / restart marker,
// and the reader (every CRC checked, every tag/step/value recovered, a truncated tail detected,
// a corrupt byte refused, TensorBoard's restart purge).
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <regex>
#include <sstream>

#include "train/log/crc.h"
#include "train/log/event_reader.h"
#include "train/log/event_writer.h"
#include "train/log/proto_wire.h"
#include "train/log/tf_event.h"
#include "train/log/tfrecord.h"

using namespace rv::runlog;
namespace fs = std::filesystem;

namespace {

std::string hex(const std::string& bytes) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (unsigned char c : bytes) s += {d[c >> 4], d[c & 15]};
  return s;
}
std::string unhex(std::string h) {
  std::erase(h, ' ');
  std::string out;
  for (size_t i = 0; i + 1 < h.size(); i += 2) out.push_back(char(std::stoi(h.substr(i, 2), nullptr, 16)));
  return out;
}
std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

struct TmpDir {
  fs::path path;
  explicit TmpDir(const std::string& name)
      : path(fs::temp_directory_path() / ("ropevit_tfevents_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TmpDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::vector<std::string> event_files(const fs::path& dir) {
  std::vector<std::string> v;
  for (auto& e : fs::directory_iterator(dir)) v.push_back(e.path().string());
  std::sort(v.begin(), v.end());
  return v;
}

// A bit-at-a-time CRC-32C straight from the definition, independent of the table code.
uint32_t crc32c_bitwise(const std::string& s) {
  uint32_t c = 0xFFFFFFFFu;
  for (unsigned char b : s) {
    c ^= b;
    for (int k = 0; k < 8; ++k) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
  }
  return ~c;
}

}  // namespace

TEST_CASE("checksums: published check values") {
  const std::string s = "123456789";
  CHECK(crc32c(s.data(), s.size()) == 0xE3069283u);
  CHECK(crc32c_table(s.data(), s.size()) == 0xE3069283u);
  CHECK(crc32(s.data(), s.size()) == 0xCBF43926u);
  CHECK(adler32("Wikipedia", 9) == 0x11E60398u);
  CHECK(crc32c("", 0) == 0u);
  CHECK(crc32("", 0) == 0u);
  CHECK(adler32("", 0) == 1u);
  // RFC 3720 (iSCSI) vector: 32 bytes of zeros.
  std::string zeros(32, '\0');
  CHECK(crc32c(zeros.data(), 32) == 0x8A9136AAu);
}

TEST_CASE("checksums: SSE4.2 path equals the table and the bitwise definition, any length and alignment") {
  MESSAGE("crc32c hardware path compiled in: " << crc32c_has_hardware());
  std::mt19937 rng(7);
  std::string buf(300, '\0');
  for (char& c : buf) c = char(rng());
  for (size_t off = 0; off < 9; ++off)
    for (size_t n : {0, 1, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200, 291}) {
      std::string piece = buf.substr(off, n);
      uint32_t want = crc32c_bitwise(piece);
      REQUIRE(crc32c_table(piece.data(), n) == want);
      REQUIRE(crc32c(piece.data(), n) == want);
      // continuing a CRC over two halves equals one pass
      size_t h = n / 3;
      CHECK(crc32c(piece.data() + h, n - h, crc32c(piece.data(), h)) == want);
      CHECK(crc32(piece.data() + h, n - h, crc32(piece.data(), h)) == crc32(piece.data(), n));
    }
  // Adler-32 over more than zlib's 5552-byte run, against the definition.
  std::string big(20000, '\xFF');
  uint64_t a = 1, b = 0;
  for (unsigned char c : big) a = (a + c) % 65521, b = (b + a) % 65521;
  CHECK(adler32(big.data(), big.size()) == uint32_t((b << 16) | a));
}

TEST_CASE("tfevents: the anchors' test vectors, byte for byte") {
  Event version;
  version.wall_time = 1.7e9;
  version.file_version = "brain.Event:2";
  std::string rec;
  append_record(rec, encode_event(version));
  CHECK(hex(rec) == "1800000000000000a37f4b220900000040fc54d9411a0d627261696e2e4576656e743a32eced8f9d");

  Event scalar;
  scalar.wall_time = 1.7e9;
  scalar.step = 10;
  scalar.scalars = {{"train/loss", 0.5f}};
  rec.clear();
  append_record(rec, encode_event(scalar));
  CHECK(hex(rec) ==
        "2000000000000000"
        "29eda950"
        "0900000040fc54d941100a2a130a110a0a747261696e2f6c6f7373150000003f"
        "9d95a30d");

  Event restart;
  restart.step = 1234;
  restart.session = SessionStatus::start;
  std::string payload = encode_event(restart);
  CHECK(hex(payload).ends_with("3a020801"));  // session_log{status: START}
  CHECK(hex(payload) == "10d2093a020801");     // step 1234 = varint d2 09
}

TEST_CASE("tfevents: encode/decode round trip, several values, negative and large steps") {
  Event e;
  e.wall_time = 1712345678.25;
  e.step = -3;  // int64 varints of negatives take 10 bytes
  e.scalars = {{"train/loss", 2.5f}, {"train/lr", 1e-4f}, {"perf/img_per_s", 0.0f}, {"x/nan", NAN}};
  Event d = decode_event(encode_event(e));
  CHECK(d.wall_time == e.wall_time);
  CHECK(d.step == -3);
  REQUIRE(d.scalars.size() == 4);
  for (size_t i = 0; i < 3; ++i) {
    CHECK(d.scalars[i].tag == e.scalars[i].tag);
    CHECK(d.scalars[i].value == e.scalars[i].value);
  }
  CHECK(std::isnan(d.scalars[3].value));
  e.step = int64_t(1) << 40;
  CHECK(decode_event(encode_event(e)).step == e.step);

  Event both;
  both.file_version = "brain.Event:2";
  both.session = SessionStatus::start;
  CHECK_THROWS_WITH_AS(encode_event(both), doctest::Contains("one of file_version"), std::invalid_argument);
  // malformed bytes: a length running past the end
  CHECK_THROWS_WITH_AS(decode_event(unhex("2a 10 0a")), doctest::Contains("past the end"), std::runtime_error);
}

TEST_CASE("tfevents: a value without simple_value (another writer's image or tensor) is skipped") {
  std::string value, summary, event;
  proto::put_bytes(value, 1, "img");
  proto::put_bytes(value, 4, "png bytes");  // Value.image
  proto::put_bytes(summary, 1, value);
  value.clear();
  proto::put_bytes(value, 1, "loss");
  proto::put_float(value, 2, 1.5f);
  proto::put_bytes(summary, 1, value);
  proto::put_int64(event, 2, 4);
  proto::put_bytes(event, 5, summary);
  proto::put_bytes(event, 6, "graph");  // an unknown field of Event
  Event d = decode_event(event);
  CHECK(d.step == 4);
  REQUIRE(d.scalars.size() == 1);
  CHECK(d.scalars[0].tag == "loss");
  CHECK(d.scalars[0].value == 1.5f);
}

TEST_CASE("tfevents: file name convention") {
  CHECK(event_file_name(1700000000, "node7", 4242, 0) == "events.out.tfevents.1700000000.node7.4242.0");
  CHECK(event_file_name(12345, "a/b", 1, 3) == "events.out.tfevents.0000012345.a_b.1.3");
  TmpDir dir("name");
  EventFileWriter w(dir.path.string() + "/tb");
  std::string base = fs::path(w.path()).filename().string();
  CHECK(std::regex_match(base, std::regex(R"(events\.out\.tfevents\.\d{10}\..+\.)" + std::to_string(::getpid()) + R"(\.\d+)")));
  EventFileWriter w2(dir.path.string() + "/tb");  // same second, same process: a distinct file
  CHECK(w2.path() != w.path());
}

TEST_CASE("tfevents: write, read back every tag/step/value; flush policy; fsync at close") {
  TmpDir dir("rw");
  std::string path;
  {
    EventFileWriter w(dir.path.string(), {.flush_every_s = 1e9, .host = "testhost"});
    path = w.path();
    // The first event is on disk at once: file_version "brain.Event:2".
    EventFile head = read_event_file(path);
    REQUIRE(head.events.size() == 1);
    CHECK(head.events[0].file_version == "brain.Event:2");
    CHECK(head.events[0].wall_time > 1.6e9);
    size_t header_bytes = fs::file_size(path);
    for (int step = 1; step <= 50; ++step)
      w.add_scalars(step, {{"train/loss", 1.0f / float(step)}, {"train/lr", 1e-3f * float(step)}});
    CHECK(fs::file_size(path) == header_bytes);  // interval not reached: still buffered
    w.flush();
    CHECK(fs::file_size(path) > header_bytes);
    w.add_scalar("val/top1", 50, 0.75f);
    w.close();
    CHECK_THROWS_AS(w.add_scalar("x", 1, 1.0f), std::logic_error);
  }
  EventFile f = read_event_file(path);
  CHECK_FALSE(f.truncated_tail);
  REQUIRE(f.events.size() == 52);
  for (int step = 1; step <= 50; ++step) {
    const Event& e = f.events[size_t(step)];
    CHECK(e.step == step);
    REQUIRE(e.scalars.size() == 2);
    CHECK(e.scalars[0].tag == "train/loss");
    CHECK(e.scalars[0].value == 1.0f / float(step));
    CHECK(e.scalars[1].tag == "train/lr");
    CHECK(e.scalars[1].value == 1e-3f * float(step));
  }
  CHECK(f.events[51].scalars[0].tag == "val/top1");

  // flush_every_s = 0: every add reaches the file at once.
  EventFileWriter eager(dir.path.string(), {.flush_every_s = 0, .host = "h"});
  size_t before = fs::file_size(eager.path());
  eager.add_scalar("a", 1, 1.0f);
  CHECK(fs::file_size(eager.path()) > before);
}

TEST_CASE("tfevents: a truncated final record is detected; a corrupt byte is refused with its offset") {
  TmpDir dir("trunc");
  std::string path;
  {
    EventFileWriter w(dir.path.string(), {.flush_every_s = 0, .host = "h"});
    path = w.path();
    for (int s = 0; s < 5; ++s) w.add_scalar("train/loss", s, float(s));
  }
  const std::string bytes = read_bytes(path);
  // Cut the file at every length inside the last record: the first 5 events always read back.
  RecordScan full = scan_records(bytes, path);
  REQUIRE(full.payloads.size() == 6);
  size_t last_start = bytes.size() - (12 + full.payloads.back().size() + 4);
  for (size_t cut = last_start + 1; cut < bytes.size(); ++cut) {
    write_bytes(path, bytes.substr(0, cut));
    EventFile f = read_event_file(path);
    REQUIRE(f.truncated_tail);
    REQUIRE(f.events.size() == 5);
  }
  write_bytes(path, bytes.substr(0, last_start));
  CHECK_FALSE(read_event_file(path).truncated_tail);

  // Flip one byte in a payload, then in a length: both CRCs are checked.
  std::string bad = bytes;
  bad[last_start + 20] ^= 0x01;
  write_bytes(path, bad);
  const std::string want = "data CRC of the record at byte " + std::to_string(last_start);
  CHECK_THROWS_WITH_AS(read_event_file(path), doctest::Contains(want.c_str()), std::runtime_error);
  bad = bytes;
  bad[last_start + 1] ^= 0x40;
  write_bytes(path, bad);
  CHECK_THROWS_WITH_AS(read_event_file(path), doctest::Contains("length CRC"), std::runtime_error);
}

TEST_CASE("tfevents: restart marker, and the reader purges the crashed run's later points as TensorBoard does") {
  TmpDir dir("restart");
  {
    EventFileWriter first(dir.path.string(), {.flush_every_s = 0, .host = "h"});
    for (int s = 1; s <= 10; ++s) first.add_scalars(s, {{"train/loss", float(s)}, {"train/lr", 0.1f}});
    first.add_scalar("val/top1", 10, 0.5f);
  }  // "crash" after step 10; the last checkpoint was taken after step 6
  // The resumed file must sort after the first: file names carry the second and the counter.
  {
    EventFileWriter resumed(dir.path.string(), {.flush_every_s = 0, .host = "h"});
    resumed.mark_restart(7);
    for (int s = 7; s <= 12; ++s) resumed.add_scalar("train/loss", s, 100.0f + float(s));
  }
  auto files = event_files(dir.path);
  REQUIRE(files.size() == 2);
  EventFile second = read_event_file(files[1]);
  REQUIRE(second.events.size() == 8);
  CHECK(second.events[1].session == SessionStatus::start);
  CHECK(second.events[1].step == 7);

  auto curves = read_scalars(dir.path.string());
  const auto& loss = curves.at("train/loss");
  REQUIRE(loss.size() == 12);
  for (int s = 1; s <= 12; ++s) {
    CHECK(loss[size_t(s - 1)].step == s);
    CHECK(loss[size_t(s - 1)].value == (s <= 6 ? float(s) : 100.0f + float(s)));
  }
  CHECK(curves.at("train/lr").size() == 6);
  CHECK(curves.at("val/top1").empty());  // logged at step 10 >= 7: dropped
}
