// Plots: the PNG writer (stored and zlib paths) against our chunk/CRC/IHDR checker and
// decoder, every row filter of the decoder on a hand-built file, the 5x7 font, nice ticks, and
// rendered plots of known data with pixels where they must be (a horizontal series at y = 0.5
// lands mid-height, a rising diagonal hits the corners, NaN breaks the line), and the run plots
// drawn from a log.jsonl.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "train/log/crc.h"
#include "train/log/image.h"
#include "train/log/jsonl_log.h"
#include "train/log/line_plot.h"
#include "train/log/png.h"
#include "train/log/run_plots.h"
#include "train/log/ticks.h"

using namespace rv::runlog;
namespace fs = std::filesystem;

namespace {

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct TmpDir {
  fs::path path;
  explicit TmpDir(const std::string& name)
      : path(fs::temp_directory_path() / ("ropevit_plot_" + name + "_" + std::to_string(::getpid()))) {
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TmpDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

Image noise_image(int w, int h) {
  Image img(w, h);
  uint32_t s = 12345;
  for (auto& b : img.rgb) b = uint8_t((s = s * 1664525u + 1013904223u) >> 24);
  return img;
}

void be32(std::string& o, uint32_t v) { o += char(v >> 24), o += char(v >> 16), o += char(v >> 8), o += char(v); }
void chunk(std::string& o, const std::string& type, const std::string& data) {
  be32(o, uint32_t(data.size()));
  std::string body = type + data;
  o += body;
  be32(o, crc32(body.data(), body.size()));
}

// Pixels of colour c in column x between rows y0..y1.
std::vector<int> rows_with(const Image& img, int x, int y0, int y1, Color c) {
  std::vector<int> r;
  for (int y = y0; y <= y1; ++y)
    if (img.at(x, y) == c) r.push_back(y);
  return r;
}

}  // namespace

TEST_CASE("png: encode -> decode is exact, stored and compressed, and the chunks are checked") {
  MESSAGE("zlib compiled in: " << png_has_zlib());
  for (bool compress : {false, true})
    for (auto [w, h] : {std::pair{1, 1}, {7, 3}, {300, 100}}) {  // 300x100 = 90100 raw bytes: two stored blocks
      Image img = noise_image(w, h);
      PngInfo info;
      std::string bytes = encode_png(img, compress);
      Image back = decode_png(bytes, &info);
      CHECK(back.rgb == img.rgb);
      CHECK(info.width == w);
      CHECK(info.height == h);
      CHECK(info.bit_depth == 8);
      CHECK(info.color_type == 2);
      CHECK(info.chunks == std::vector<std::string>{"IHDR", "IDAT", "IEND"});
      if (!compress || !png_has_zlib()) CHECK(bytes.size() > size_t(w * h * 3));  // stored: no smaller than the pixels
    }
  // A flat image compresses when zlib is there.
  Image flat(400, 300);
  if (png_has_zlib()) CHECK(encode_png(flat).size() < 5000);
  CHECK(encode_png(flat, false).size() > 360000);

  std::string good = encode_png(noise_image(5, 4), false);
  std::string bad = good;
  bad[8 + 8 + 3] ^= 1;  // a byte of IHDR's data
  CHECK_THROWS_WITH_AS(decode_png(bad), doctest::Contains("bad CRC in chunk IHDR"), std::runtime_error);
  bad = good;
  bad[good.size() - 30] ^= 1;  // inside IDAT
  CHECK_THROWS_WITH_AS(decode_png(bad), doctest::Contains("bad CRC in chunk IDAT"), std::runtime_error);
  bad = good;
  bad[1] = 'X';
  CHECK_THROWS_WITH_AS(decode_png(bad), doctest::Contains("signature"), std::runtime_error);
  CHECK_THROWS_WITH_AS(decode_png(good.substr(0, good.size() - 12)), doctest::Contains("before IEND"), std::runtime_error);
  CHECK_THROWS_AS(encode_png(Image()), std::invalid_argument);
}

TEST_CASE("png: the decoder undoes all five row filters (a hand-built RGB file)") {
  // 2x5 image; row r uses filter r (None, Sub, Up, Average, Paeth). Raw pixel values:
  const uint8_t px[5][6] = {{10, 20, 30, 40, 50, 60},
                            {15, 25, 35, 200, 100, 0},
                            {0, 255, 1, 2, 3, 4},
                            {90, 80, 70, 60, 50, 40},
                            {7, 8, 9, 250, 251, 252}};
  std::string raw;
  for (int r = 0; r < 5; ++r) {
    raw += char(r);
    for (int i = 0; i < 6; ++i) {
      int a = i >= 3 ? px[r][i - 3] : 0, b = r > 0 ? px[r - 1][i] : 0, c = (r > 0 && i >= 3) ? px[r - 1][i - 3] : 0;
      int pred = 0;
      if (r == 1) pred = a;
      if (r == 2) pred = b;
      if (r == 3) pred = (a + b) / 2;
      if (r == 4) {
        int p = a + b - c, pa = std::abs(p - a), pb = std::abs(p - b), pc = std::abs(p - c);
        pred = (pa <= pb && pa <= pc) ? a : (pb <= pc ? b : c);
      }
      raw += char(uint8_t(px[r][i] - pred));
    }
  }
  std::string z = "\x78\x01";
  z += char(1), z += char(raw.size()), z += char(0), z += char(~raw.size()), z += char(0xFF);
  z += raw;
  be32(z, adler32(raw.data(), raw.size()));
  std::string png = "\x89PNG\r\n\x1a\n", ihdr;
  be32(ihdr, 2), be32(ihdr, 5);
  ihdr += std::string("\x08\x02\x00\x00\x00", 5);
  chunk(png, "IHDR", ihdr);
  chunk(png, "tEXt", std::string("Comment\0hand made", 17));  // an ancillary chunk is skipped
  chunk(png, "IDAT", z.substr(0, 7));                         // image data split over two IDATs
  chunk(png, "IDAT", z.substr(7));
  chunk(png, "IEND", "");
  Image img = decode_png(png);
  for (int r = 0; r < 5; ++r)
    for (int x = 0; x < 2; ++x) CHECK(img.at(x, r) == Color{px[r][3 * x], px[r][3 * x + 1], px[r][3 * x + 2]});
}

TEST_CASE("font: every printable character has its own non-empty glyph inside 5x7") {
  std::set<std::string> seen;  // glyph rows as bytes
  for (char ch = 33; ch < 127; ++ch) {
    const uint8_t* g = glyph(ch);
    std::vector<uint8_t> rows(g, g + 7);
    CHECK_MESSAGE(std::any_of(rows.begin(), rows.end(), [](uint8_t r) { return r != 0; }), "empty glyph for '" << ch << "'");
    CHECK_MESSAGE(std::all_of(rows.begin(), rows.end(), [](uint8_t r) { return r < 32; }), "glyph wider than 5 for '" << ch << "'");
    CHECK_MESSAGE(seen.insert(std::string(rows.begin(), rows.end())).second, "glyph of '" << ch << "' repeats another");
  }
  CHECK(glyph('\n') == glyph('?'));
  // "1" drawn at scale 2: its stem (column 2 of the glyph) is a 2-px-wide bar over 7 rows.
  Image img(20, 20);
  draw_text(img, 1, 1, "1", {0, 0, 0}, 2);
  for (int y = 1 + 2 * 1; y < 1 + 2 * 7; ++y) CHECK(img.at(1 + 2 * 2, y) == Color{0, 0, 0});
  CHECK(img.at(0, 0) == Color{255, 255, 255});
  // turned text: "L" reads upward; its long stroke (glyph column 0) becomes the bottom row
  Image up(12, 12);
  draw_text_up(up, 0, 0, "L", {0, 0, 0});
  for (int x = 0; x < 7; ++x) CHECK(up.at(x, 5) == Color{0, 0, 0});
}

TEST_CASE("ticks: nice steps, widened ranges, labels") {
  Ticks t = nice_ticks(0.13, 0.87, 5);
  CHECK(t.step == doctest::Approx(0.2));
  CHECK(t.lo == doctest::Approx(0.0));
  CHECK(t.hi == doctest::Approx(1.0));
  REQUIRE(t.values.size() == 6);
  CHECK(t.values[3] == doctest::Approx(0.6));
  t = nice_ticks(0, 1000, 6);
  CHECK(t.step == 200);
  CHECK(t.values.back() == 1000);
  t = nice_ticks(-3.7, -1.2, 5, /*widen=*/false);
  CHECK(t.lo == -3.7);
  CHECK(t.step == 1);
  CHECK(t.values == std::vector<double>{-3, -2});
  t = nice_ticks(2, 2);
  CHECK(t.lo < 2);
  CHECK(t.hi > 2);
  t = nice_ticks(0, 0);
  CHECK(t.lo == doctest::Approx(-1.0));
  CHECK(nice_ticks(-1, 1).values[2] == 0.0);
  CHECK_FALSE(std::signbit(nice_ticks(-1, 1).values[2]));  // no "-0"
  CHECK_THROWS_AS(nice_ticks(0, NAN), std::invalid_argument);
  CHECK(format_tick(0.25, 0.05) == "0.25");
  CHECK(format_tick(1000, 200) == "1000");
  CHECK(format_tick(-3, 1) == "-3");
  CHECK(format_tick(1e-4, 1e-4) == "1e-04");
  CHECK(format_tick(2.5e6, 5e5) == "2.5e+06");
  CHECK(format_tick(0, 1e-4) == "0e+00");
}

TEST_CASE("plot: a horizontal series at y = 0.5 lands mid-height; a diagonal hits the corners") {
  LinePlot p;
  p.title = "known data";
  p.xlabel = "step";
  p.ylabel = "value";
  p.y_min = 0, p.y_max = 1;
  Series flat;
  flat.name = "flat";
  flat.x = {0, 100};
  flat.y = {0.5, 0.5};
  flat.color = Color{255, 0, 0};
  p.series.push_back(flat);
  PlotFrame f;
  Image img = render(p, &f);
  CHECK(img.width == 640);
  CHECK(img.height == 400);
  CHECK(f.x0 == 0);
  CHECK(f.x1 == 100);
  int mid = (f.top + f.bottom + 1) / 2;
  for (int x = f.left + 5; x < f.left + (f.right - f.left) / 2; x += 7) {
    std::vector<int> rows = rows_with(img, x, f.top + 1, f.bottom - 1, {255, 0, 0});
    REQUIRE(rows.size() == 2);  // a 2-px line
    CHECK(std::abs(rows[0] - mid) <= 1);
  }
  // nothing red in the top or bottom quarters of the data area (apart from the legend swatch)
  for (int y = f.top + (f.bottom - f.top) / 4 + 24; y < f.bottom - (f.bottom - f.top) / 4; y += 3)
    if (std::abs(y - mid) > 2) CHECK(img.at(f.left + 50, y) != Color{255, 0, 0});
  CHECK(rows_with(img, f.left + 50, f.bottom - (f.bottom - f.top) / 4, f.bottom - 1, {255, 0, 0}).empty());

  // Auto range from two series: 0.25..0.75 widens to 0.2..0.8 and 0.5 is still mid-height.
  LinePlot q;
  Series a, b;
  a.x = {0, 1}, a.y = {0.25, 0.75}, a.color = Color{0, 0, 255};
  b.x = {0, 1}, b.y = {0.5, 0.5}, b.color = Color{0, 160, 0};
  q.series = {a, b};
  Image qi = render(q, &f);
  CHECK(f.y0 == doctest::Approx(0.2));
  CHECK(f.y1 == doctest::Approx(0.8));
  auto green = rows_with(qi, f.left + 10, f.top + 1, f.bottom - 1, {0, 160, 0});
  REQUIRE_FALSE(green.empty());
  CHECK(std::abs(green[0] - (f.top + f.bottom + 1) / 2) <= 1);
  // the diagonal runs from (0, 0.25) to (1, 0.75): blue within a pixel of the exact point
  for (double x : {0.05, 0.3, 0.5, 0.7, 0.95}) {
    auto blue = rows_with(qi, f.px(x), f.top + 1, f.bottom - 1, {0, 0, 255});
    REQUIRE_FALSE(blue.empty());
    CHECK(std::abs(blue.front() - f.py(0.25 + 0.5 * x)) <= 1);
  }
}

TEST_CASE("plot: NaN breaks the line; out-of-range data is clipped to the frame; errors name the series") {
  LinePlot p;
  p.y_min = 0, p.y_max = 1;
  p.x_min = 0, p.x_max = 4;
  Series s;
  s.x = {0, 1, 2, 3, 4};
  s.y = {0.5, 0.5, NAN, 0.5, 5.0};  // a gap around x=2, then a segment leaving the top
  s.color = Color{255, 0, 0};
  p.series.push_back(s);
  PlotFrame f;
  Image img = render(p, &f);
  int mid = f.py(0.5);
  CHECK(img.at(f.px(0.5), mid) == Color{255, 0, 0});
  CHECK(img.at(f.px(2.0), mid) != Color{255, 0, 0});  // the gap
  CHECK(img.at(f.px(2.5), mid) != Color{255, 0, 0});
  for (int x = 0; x < img.width; ++x)
    for (int y = 0; y < f.top; ++y) REQUIRE(img.at(x, y) != Color{255, 0, 0});  // clipped at the top
  s.y.pop_back();
  p.series = {s};
  p.series[0].name = "short";
  CHECK_THROWS_WITH_AS(render(p), doctest::Contains("series 'short' has 5 x values and 4 y values"), std::invalid_argument);
  LinePlot tiny;
  tiny.width = 50;
  CHECK_THROWS_AS(render(tiny), std::invalid_argument);
  LinePlot empty;  // no data: still a frame
  CHECK(render(empty).width == 640);
}

TEST_CASE("run plots: loss / lr / accuracy from a log.jsonl, and the resolution sweep, as PNG files") {
  TmpDir dir("run");
  {
    JsonlLog log((dir.path / "log.jsonl").string());
    for (int s = 1; s <= 200; ++s)
      log.write({{"kind", "train"}, {"step", s}, {"loss", 3.0 * std::exp(-s / 80.0)}, {"lr", 1e-3 * std::min(1.0, s / 20.0)}});
    for (int e = 1; e <= 4; ++e) log.write({{"kind", "eval"}, {"step", 50 * e}, {"top1", 20.0 * e}, {"top5", 30.0 + 15 * e}});
    for (int size : {128, 224, 320, 448}) log.write({{"kind", "eval_res"}, {"step", 200}, {"img_size", size}, {"top1", 80.0 - std::abs(size - 224) / 20.0}});
  }
  auto files = plot_run(dir.path.string());
  REQUIRE(files.size() == 3);
  for (const auto& f : files) {
    PngInfo info;
    Image img = decode_png(read_bytes(f), &info);
    CHECK(info.width == 640);
    CHECK(std::count(img.rgb.begin(), img.rgb.end(), 255) < int64_t(img.rgb.size()));  // something was drawn
  }
  CHECK(fs::exists(dir.path / "plots" / "lr.png"));
  ResolutionSweep sweep = read_resolution_sweep(dir.path.string(), "rope-mixed");
  CHECK(sweep.img_size == std::vector<double>{128, 224, 320, 448});
  CHECK(sweep.top1[1] == 80.0);
  ResolutionSweep other = sweep;
  other.name = "ape";
  for (double& v : other.top1) v -= 5;
  plot_accuracy_vs_resolution({sweep, other}, (dir.path / "res.png").string());
  Image res = decode_png(read_bytes(dir.path / "res.png"));
  CHECK(res.height == 400);
  // a run without eval records gets no accuracy plot; a missing log is an error naming it
  TmpDir bare("bare");
  {
    JsonlLog log((bare.path / "log.jsonl").string());
    log.write({{"kind", "train"}, {"step", 1}, {"loss", 1.0}, {"lr", 0.1}});
  }
  CHECK(plot_run(bare.path.string()).size() == 2);
  CHECK_THROWS_WITH_AS(plot_run((bare.path / "nope").string()), doctest::Contains("log.jsonl"), std::runtime_error);
}
