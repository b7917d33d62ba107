// pil_resize.cpp: Pillow-compatible separable resampling (see pil_resize.h for the maths).
#include "data/pil_resize.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <vector>

#if defined(__SSE4_1__)
#include <immintrin.h>
#endif

#include "engine/cpu/parallel.h"

namespace rv::data {

const char* interp_name(Interp i) { return i == Interp::bilinear ? "bilinear" : "bicubic"; }
Interp interp_from_name(const std::string& name) {
  if (name == "bilinear") return Interp::bilinear;
  if (name == "bicubic") return Interp::bicubic;
  throw std::invalid_argument("interpolation: expected \"bilinear\" or \"bicubic\", got \"" + name + "\"");
}

const char* resize_mode_name(ResizeMode m) { return m == ResizeMode::exact ? "exact" : "fast"; }
ResizeMode resize_mode_from_name(const std::string& name) {
  if (name == "exact") return ResizeMode::exact;
  if (name == "fast") return ResizeMode::fast;
  throw std::invalid_argument("resize mode: expected \"exact\" (Pillow's bytes) or \"fast\" (16-bit weights, within 1 level), got \"" +
                              name + "\"");
}

ImageView view_of(const Image& im) {
  return {im.pixels.data(), im.height, im.width, im.channels, size_t(im.width) * im.channels};
}

ImageView crop_view(const Image& im, int top, int left, int height, int width) {
  if (top < 0 || left < 0 || height < 0 || width < 0 || top + height > im.height || left + width > im.width)
    throw std::out_of_range("crop: rectangle (top " + std::to_string(top) + ", left " + std::to_string(left) + ", " +
                            std::to_string(height) + "x" + std::to_string(width) + ") is not inside the " +
                            std::to_string(im.height) + "x" + std::to_string(im.width) + " image");
  return {im.pixels.data() + (size_t(top) * im.width + left) * im.channels, height, width, im.channels,
          size_t(im.width) * im.channels};
}

namespace {

constexpr int kPrecisionBits = 32 - 8 - 2;  // 22: 8 bits of value, 2 of headroom for negative lobes

double bilinear_kernel(double x) {
  x = std::fabs(x);
  return x < 1.0 ? 1.0 - x : 0.0;
}
double bicubic_kernel(double x) {
  constexpr double a = -0.5;
  x = std::fabs(x);
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
  if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
  return 0.0;
}

// The taps of one axis: output i reads inputs first[i] .. first[i] + count[i] - 1 with
// fixed-point weights w[i * taps + k] of `prec` fractional bits (22 exact; <= 22 and each
// weight an int16 in fast mode).
struct Taps {
  int taps = 0;
  int prec = kPrecisionBits;
  std::vector<int> first, count;
  std::vector<int32_t> w;
  std::vector<double> norm;  // the normalised double weights w was rounded from (the fast path's error bound)
};

// Round half away from zero into `prec`-bit fixed point (Pillow's rounding).
int32_t to_fixed(double v, int prec) {
  const double s = double(1 << prec);
  return int32_t(v < 0 ? -0.5 + v * s : 0.5 + v * s);
}

// fast mode: P is also at most max_prec (the 16-bit-intermediate vertical pass needs F + P <= 22).
// [in0, in1): the source interval mapped onto the output (Pillow's resize box along this axis;
// the whole axis: 0, in_size). Taps reach past it where the filter does, up to the image's
// edges, as in Pillow.
Taps make_taps(int in_size, int out_size, Interp interp, ResizeMode mode, int max_prec, float in0, float in1) {
  const double support0 = interp == Interp::bilinear ? 1.0 : 2.0;
  double (*kernel)(double) = interp == Interp::bilinear ? bilinear_kernel : bicubic_kernel;
  // The scale is computed from float box edges, as Pillow's (float in0, in1) arguments.
  const double scale = (double(in1) - double(in0)) / out_size;
  const double filterscale = std::max(scale, 1.0);
  const double support = support0 * filterscale;
  Taps t;
  t.taps = int(std::ceil(support)) * 2 + 1;
  t.first.resize(out_size);
  t.count.resize(out_size);
  t.w.assign(size_t(out_size) * t.taps, 0);
  std::vector<double> k(t.taps);
  std::vector<double>& norm = t.norm;
  norm.assign(size_t(out_size) * t.taps, 0.0);
  for (int i = 0; i < out_size; ++i) {
    const double center = double(in0) + (i + 0.5) * scale;
    // Pillow truncates (center -/+ support + 0.5) toward zero, then clamps to the image.
    const int lo = std::max(int(center - support + 0.5), 0);
    const int hi = std::min(int(center + support + 0.5), in_size);
    const int n = hi - lo;
    double sum = 0.0;
    for (int j = 0; j < n; ++j) {
      k[j] = kernel((j + lo - center + 0.5) / filterscale);
      sum += k[j];
    }
    for (int j = 0; j < n; ++j) norm[size_t(i) * t.taps + j] = sum != 0.0 ? k[j] / sum : k[j];
    t.first[i] = lo;
    t.count[i] = n;
  }
  if (mode == ResizeMode::fast) {
    // Pillow-SIMD's choice: the most fractional bits at which every weight is an int16 (the
    // largest |weight| sets it; weights <= 1, so P >= 14). The int32 sums cannot overflow:
    // |sum| <= 255 * sum|w| * 2^P + 2^(P-1) < 255 * 2 * 2^22 + 2^21 < 2^31 (sum|w| < 2 for these kernels).
    double max_w = 0.0;
    for (double v : norm) max_w = std::max(max_w, std::fabs(v));
    int prec = 0;
    while (prec < max_prec) {
      const int32_t hi = to_fixed(max_w, prec + 1);
      if (hi > 32767) break;
      ++prec;
    }
    t.prec = prec;
  }
  for (size_t i = 0; i < norm.size(); ++i) t.w[i] = to_fixed(norm[i], t.prec);
  return t;
}

inline uint8_t clip8(int32_t acc, int prec = kPrecisionBits) {
  const int32_t v = acc >> prec;  // arithmetic shift: negative sums stay negative
  return uint8_t(v < 0 ? 0 : v > 255 ? 255 : v);
}

// One output row of the horizontal pass: C channels interleaved.
template <int C>
void horizontal_row(const uint8_t* in, uint8_t* out, int out_w, const Taps& t) {
  for (int x = 0; x < out_w; ++x) {
    const int32_t* w = t.w.data() + size_t(x) * t.taps;
    const uint8_t* p = in + size_t(t.first[x]) * C;
    int32_t acc[C];
    for (int c = 0; c < C; ++c) acc[c] = 1 << (t.prec - 1);
    for (int k = 0; k < t.count[x]; ++k)
      for (int c = 0; c < C; ++c) acc[c] += int32_t(p[k * C + c]) * w[k];
    for (int c = 0; c < C; ++c) out[x * C + c] = clip8(acc[c], t.prec);
  }
}

// ---- fast mode's 16-bit intermediate (the proof is in pil_resize.h) ----
// The horizontal pass keeps F = 7 fraction bits below Pillow's byte: mid = clip(round(sum *
// 2^F), 0, 255 * 2^F), an int16. The vertical pass then reads it with P <= 22 - F bits of
// weight, so that its int32 sums hold 255 * 2^F * sum|w| * 2^P < 2^31 (checked per resize).
constexpr int kMidFracBits = 7;
constexpr int32_t kMidMax = 255 << kMidFracBits;  // 32640: still an int16
constexpr int kMidVerticalMaxPrec = kPrecisionBits - kMidFracBits;  // 15

// One output row of the horizontal pass into the 16-bit intermediate, plainly (grey images,
// and RGB without AVX2): the weights of `t` have t.prec > F bits, rounded off to F.
template <int C>
void horizontal_row_mid16(const uint8_t* in, int16_t* out, int out_w, const Taps& t) {
  const int shift = t.prec - kMidFracBits;
  for (int x = 0; x < out_w; ++x) {
    const int32_t* w = t.w.data() + size_t(x) * t.taps;
    const uint8_t* p = in + size_t(t.first[x]) * C;
    const int count = t.count[x];
    int32_t acc[C];
    for (int c = 0; c < C; ++c) acc[c] = 1 << (shift - 1);
    for (int k = 0; k < count; ++k)
      for (int c = 0; c < C; ++c) acc[c] += int32_t(p[k * C + c]) * w[k];
    for (int c = 0; c < C; ++c) out[x * C + c] = int16_t(std::clamp(acc[c] >> shift, 0, kMidMax));
  }
}

// Outputs i0 .. n - 1 of one row of the vertical pass from the 16-bit intermediate, plainly:
// `shift` = F + P, the bits of the intermediate plus those of the weights.
void vertical_row_mid16(const int16_t* mid, size_t stride, int first, int count, const int32_t* w, int shift, uint8_t* o,
                        int i0, int n) {
  for (int i = i0; i < n; ++i) {
    int32_t acc = 1 << (shift - 1);
    for (int k = 0; k < count; ++k) acc += int32_t(mid[size_t(first + k) * stride + i]) * w[k];
    o[i] = clip8(acc, shift);
  }
}

// Whether the 16-bit-intermediate path keeps every byte within 1 grey level of Pillow's for
// these taps (the inequality of pil_resize.h, evaluated on the actual weights), and whether its
// vertical int32 sums cannot overflow. h: the horizontal taps (16-bit weights); v: the vertical
// ones (16-bit weights, P <= 15). Both hold for every RandomResizedCrop to 224 (the bound is
// <= 0.69 there); a shrink by ~50x or more (hundreds of vertical taps) fails the first, and
// the caller then takes the 8-bit-intermediate path.
bool mid16_within_one_level(const Taps& h, const Taps& v) {
  const double s22 = double(1 << kPrecisionBits);
  // max over outputs of sum_k |fixed_k / 2^P - exact_k|: the weights' own rounding error.
  auto rounding = [](const Taps& t, int prec, bool use_w) {
    double worst = 0;
    for (size_t i = 0; i < t.first.size(); ++i) {
      double e = 0;
      for (int k = 0; k < t.count[i]; ++k) {
        const double d = t.norm[i * t.taps + k];
        const double q = use_w ? double(t.w[i * t.taps + k]) : double(to_fixed(d, prec));
        e += std::fabs(q / double(1 << prec) - d);
      }
      worst = std::max(worst, e);
    }
    return worst;
  };
  const double e22_h = rounding(h, kPrecisionBits, false), e16_h = rounding(h, h.prec, true);
  double sum_abs22_v = 0, e_v = 0;  // max over outputs of sum |u_j| and of sum |u_j - v_j| (u: Pillow's 22-bit weights)
  int64_t sum_abs_v = 0;
  for (size_t i = 0; i < v.first.size(); ++i) {
    double a = 0, e = 0;
    int64_t b = 0;
    for (int k = 0; k < v.count[i]; ++k) {
      const int32_t u = to_fixed(v.norm[i * v.taps + k], kPrecisionBits), q = v.w[i * v.taps + k];
      a += std::fabs(double(u)) / s22;
      e += std::fabs(double(u) / s22 - double(q) / double(1 << v.prec));
      b += std::abs(int64_t(q));
    }
    sum_abs22_v = std::max(sum_abs22_v, a), e_v = std::max(e_v, e), sum_abs_v = std::max(sum_abs_v, b);
  }
  const double mid_gap = 0.5 + 1.0 / double(2 << kMidFracBits) + 255 * (e22_h + e16_h);
  const bool bound = mid_gap * sum_abs22_v + 255 * e_v < 1.0;
  const bool no_overflow = int64_t(kMidMax) * sum_abs_v + (int64_t(1) << (kMidFracBits + v.prec - 1)) < (int64_t(1) << 31);
  return bound && no_overflow && h.prec > kMidFracBits;
}

// The RGB case with 4 lanes per tap: R, G, B and the next pixel's R (computed, never stored),
// so that each tap is one 4 x int32 multiply-add the compiler can vectorise instead of three
// scalar ones. `in` must have one readable byte past the row: the caller pads it. The portable
// path (no AVX2).
void horizontal_row_rgb(const uint8_t* in, uint8_t* out, int out_w, const Taps& t) {
  for (int x = 0; x < out_w; ++x) {
    const int32_t* w = t.w.data() + size_t(x) * t.taps;
    const uint8_t* p = in + size_t(t.first[x]) * 3;
    const int count = t.count[x];  // a local: `out` (uint8_t) may alias the taps for all the compiler knows
    const int32_t half = 1 << (t.prec - 1);
#if defined(__SSE4_1__)
    // GCC does not find this on its own: 4 bytes -> 4 x int32, times the broadcast weight. Two
    // accumulators (even and odd taps) halve the chain of dependent multiply-adds.
    auto tap = [&](int k) {
      int32_t four;
      std::memcpy(&four, p + k * 3, 4);
      return _mm_mullo_epi32(_mm_cvtepu8_epi32(_mm_cvtsi32_si128(four)), _mm_set1_epi32(w[k]));
    };
    __m128i a = _mm_setr_epi32(half, half, half, 0), b = _mm_setzero_si128();
    int k = 0;
    for (; k + 1 < count; k += 2) {
      a = _mm_add_epi32(a, tap(k));
      b = _mm_add_epi32(b, tap(k + 1));
    }
    if (k < count) a = _mm_add_epi32(a, tap(k));
    a = _mm_add_epi32(a, b);
    alignas(16) int32_t acc[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(acc), a);
#else
    int32_t acc[4] = {half, half, half, 0};
    for (int k = 0; k < count; ++k)
      for (int c = 0; c < 4; ++c) acc[c] += int32_t(p[k * 3 + c]) * w[k];
#endif
    for (int c = 0; c < 3; ++c) out[x * 3 + c] = clip8(acc[c], t.prec);
  }
}

#if defined(__AVX2__)
// The AVX2 RGB path, still exact. A 16-bit multiply-add (vpmaddwd: two u8 x i16 products summed
// into one i32, 16 of them per instruction) is 4x the work per instruction of the 32-bit
// multiply above, but the weights have 22 bits. So each weight is split exactly into
//   w = 256 * hi + lo,   hi = w >> 8 (|hi| < 2^15),  lo = w & 255,
// and sum(p * w) = 256 * sum(p * hi) + sum(p * lo): two 16-bit multiply-adds give the same int32
// sum as Pillow's (no term overflows: |p * hi| < 2^23, p * lo < 2^16).
//
// One step handles 4 taps of one output pixel: the 16 bytes from pixel k (R0 G0 B0 R1 ... B3
// and 4 spare bytes) are loaded into both 128-bit halves; the low half is shuffled into the
// int16 pairs (R0 R1 G0 G1 B0 B1 0 0), the high half into (R2 R3 G2 G3 B2 B3 0 0), and the
// weights of the step are laid out to match (hi of taps k, k+1 four times, then of k+2, k+3).
// Taps past the pixel's count have weight 0 (the bytes they read are padding or neighbours).
//
// When every weight already fits an int16 (fast mode; or exact mode on a strong shrink, where
// all weights are < 2^-7), there is no split: `hi` holds the weights, one multiply-add per step.
struct TapsAvx2 {
  int steps = 0;                 // ceil(max count / 4)
  bool split = true;             // w = 256 * hi + lo; false: w = hi
  std::vector<int16_t> hi, lo;   // 16 per step: [(x * steps + s) * 16 + lane]
};

bool make_taps_avx2(const Taps& t, TapsAvx2& out) {
  int max_count = 0;
  for (int c : t.count) max_count = std::max(max_count, c);
  out.steps = (max_count + 3) / 4;
  out.split = false;
  for (int32_t w : t.w) out.split = out.split || w > 32767 || w < -32768;
  const size_t n = t.first.size();
  out.hi.assign(n * out.steps * 16, 0);
  out.lo.assign(n * out.steps * 16, 0);
  for (size_t x = 0; x < n; ++x)
    for (int s = 0; s < out.steps; ++s) {
      int16_t* hi = out.hi.data() + (x * out.steps + s) * 16;
      int16_t* lo = out.lo.data() + (x * out.steps + s) * 16;
      for (int j = 0; j < 4; ++j) {
        const int k = s * 4 + j;
        if (k >= t.count[x]) continue;
        const int32_t w = t.w[x * t.taps + k];
        const int32_t h = out.split ? w >> 8 : w;  // arithmetic: floor, so lo = w - 256 * h is in 0..255
        if (h > 32767 || h < -32768) return false;
        const int half = j / 2, odd = j % 2;  // 128-bit half of the vector, place in the pair
        for (int c = 0; c < 4; ++c) {
          hi[half * 8 + c * 2 + odd] = int16_t(h);
          lo[half * 8 + c * 2 + odd] = int16_t(w - 256 * h);
        }
      }
    }
  return true;
}

// R rows at once (Pillow-SIMD's trick): the rows share every output pixel's weights, so each
// weight load serves R rows, and the R sums are finished together. `in[r]` are padded rows.
// OutT = uint8_t: Pillow's byte; int16_t: fast mode's 16-bit intermediate (F fraction bits,
// clipped to 0 .. 255 * 2^F), written 4 elements at a time (RGB and a 0 that the next pixel
// overwrites: each `out[r]` row needs one element of slack after its last pixel).
template <int R, bool Split, typename OutT = uint8_t>
void horizontal_rows_rgb_avx2(const uint8_t* const* in, OutT* const* out, int out_w, const Taps& t, const TapsAvx2& ta) {
  constexpr bool kMid16 = std::is_same_v<OutT, int16_t>;
  // Low half: pixels 0, 1 of the step; high half (bytes 6.. of the same 16): pixels 2, 3.
  // -1 (0x80) zero-fills the high byte of each int16 and the unused fourth channel.
  const __m256i shuffle = _mm256_setr_epi8(0, -1, 3, -1, 1, -1, 4, -1, 2, -1, 5, -1, -1, -1, -1, -1,  //
                                           6, -1, 9, -1, 7, -1, 10, -1, 8, -1, 11, -1, -1, -1, -1, -1);
  const int out_shift = kMid16 ? t.prec - kMidFracBits : t.prec;
  const __m128i half = _mm_set1_epi32(1 << (out_shift - 1));
  const __m128i shift = _mm_cvtsi32_si128(out_shift);
  const int steps = ta.steps;
  for (int x = 0; x < out_w; ++x) {
    const size_t off = size_t(t.first[x]) * 3;
    const int16_t* wh = ta.hi.data() + size_t(x) * steps * 16;
    const int16_t* wl = ta.lo.data() + size_t(x) * steps * 16;
    __m256i acc_hi[R], acc_lo[R];
    for (int r = 0; r < R; ++r) acc_hi[r] = acc_lo[r] = _mm256_setzero_si256();
    for (int s = 0; s < steps; ++s) {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wh + s * 16));
      for (int r = 0; r < R; ++r) {
        const __m256i px = _mm256_shuffle_epi8(
            _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(in[r] + off + s * 12))), shuffle);
        acc_hi[r] = _mm256_add_epi32(acc_hi[r], _mm256_madd_epi16(px, h));
        if constexpr (Split) {
          const __m256i l = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(wl + s * 16));
          acc_lo[r] = _mm256_add_epi32(acc_lo[r], _mm256_madd_epi16(px, l));
        }
      }
    }
    // sum = 256 * hi + lo (or hi); the two 128-bit halves hold taps (0, 1) and (2, 3) of each step.
    __m256i sum[R];
    for (int r = 0; r < R; ++r) sum[r] = Split ? _mm256_add_epi32(_mm256_slli_epi32(acc_hi[r], 8), acc_lo[r]) : acc_hi[r];
    if constexpr (R == 4) {
      // Rows finished two per vector: [row 0 | row 1] and [row 2 | row 3], then packed together.
      const __m256i half8 = _mm256_broadcastsi128_si256(half);
      __m256i u01 = _mm256_add_epi32(_mm256_permute2x128_si256(sum[0], sum[1], 0x20), _mm256_permute2x128_si256(sum[0], sum[1], 0x31));
      __m256i u23 = _mm256_add_epi32(_mm256_permute2x128_si256(sum[2], sum[3], 0x20), _mm256_permute2x128_si256(sum[2], sum[3], 0x31));
      u01 = _mm256_sra_epi32(_mm256_add_epi32(u01, half8), shift);
      u23 = _mm256_sra_epi32(_mm256_add_epi32(u23, half8), shift);
      if constexpr (kMid16) {
        const __m256i zero = _mm256_setzero_si256(), top = _mm256_set1_epi32(kMidMax);
        u01 = _mm256_min_epi32(_mm256_max_epi32(u01, zero), top);
        u23 = _mm256_min_epi32(_mm256_max_epi32(u23, zero), top);
        // packs: int16 lanes [r0 r2 | r1 r3], 4 per row (RGB and the spare 0).
        const __m256i p = _mm256_packs_epi32(u01, u23);
        const __m128i p02 = _mm256_castsi256_si128(p), p13 = _mm256_extracti128_si256(p, 1);
        const uint64_t q[4] = {uint64_t(_mm_cvtsi128_si64(p02)), uint64_t(_mm_cvtsi128_si64(p13)),
                               uint64_t(_mm_extract_epi64(p02, 1)), uint64_t(_mm_extract_epi64(p13, 1))};
        for (int r = 0; r < R; ++r) std::memcpy(out[r] + size_t(x) * 3, &q[r], 8);
      } else {
        // packs: lanes [r0 r2 | r1 r3] as int16; packus clips to 0..255: bytes [r0 r2 r0 r2 | r1 r3 r1 r3].
        const __m256i p = _mm256_packus_epi16(_mm256_packs_epi32(u01, u23), _mm256_setzero_si256());
        const uint64_t lo02 = uint64_t(_mm_cvtsi128_si64(_mm256_castsi256_si128(p)));
        const uint64_t lo13 = uint64_t(_mm_cvtsi128_si64(_mm256_extracti128_si256(p, 1)));
        const uint32_t rgbx[4] = {uint32_t(lo02), uint32_t(lo13), uint32_t(lo02 >> 32), uint32_t(lo13 >> 32)};
        for (int r = 0; r < R; ++r) {
          uint8_t* o = out[r] + size_t(x) * 3;
          o[0] = uint8_t(rgbx[r]), o[1] = uint8_t(rgbx[r] >> 8), o[2] = uint8_t(rgbx[r] >> 16);
        }
      }
    } else {
      for (int r = 0; r < R; ++r) {
        __m128i acc = _mm_add_epi32(_mm_add_epi32(_mm256_castsi256_si128(sum[r]), _mm256_extracti128_si256(sum[r], 1)), half);
        acc = _mm_sra_epi32(acc, shift);
        if constexpr (kMid16) {
          acc = _mm_min_epi32(_mm_max_epi32(acc, _mm_setzero_si128()), _mm_set1_epi32(kMidMax));
          const uint64_t q = uint64_t(_mm_cvtsi128_si64(_mm_packs_epi32(acc, acc)));
          std::memcpy(out[r] + size_t(x) * 3, &q, 8);
        } else {
          acc = _mm_packus_epi16(_mm_packs_epi32(acc, acc), acc);  // clip to 0..255 (packs then packus)
          const uint32_t rgbx = uint32_t(_mm_cvtsi128_si32(acc));
          uint8_t* o = out[r] + size_t(x) * 3;
          o[0] = uint8_t(rgbx), o[1] = uint8_t(rgbx >> 8), o[2] = uint8_t(rgbx >> 16);
        }
      }
    }
  }
}

// One output row of the vertical pass when every weight is an int16: taps paired, so that one
// vpmaddwd gives a[i] * w[k] + b[i] * w[k + 1] for 8 outputs (the two rows' bytes interleaved and
// widened to int16). The int32 sum is the plain loop's exactly (each product < 255 * 2^15), so
// the bytes are the same; the plain loop's int32 multiplies are what this saves.
void vertical_row_madd(const uint8_t* mid, size_t stride, int first, int count, const int32_t* w, int prec, uint8_t* o,
                       int n) {
  const __m256i half = _mm256_set1_epi32(1 << (prec - 1));
  const __m128i shift = _mm_cvtsi32_si128(prec);
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i acc0 = half, acc1 = half;  // outputs i .. i + 7, i + 8 .. i + 15
    for (int k = 0; k < count; k += 2) {
      const uint8_t* ra = mid + size_t(first + k) * stride + i;
      const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i*>(ra));
      const bool pair = k + 1 < count;
      const __m128i b = pair ? _mm_loadu_si128(reinterpret_cast<const __m128i*>(ra + stride)) : _mm_setzero_si128();
      const uint32_t w2 = uint32_t(uint16_t(int16_t(w[k]))) | uint32_t(pair ? uint16_t(int16_t(w[k + 1])) : 0u) << 16;
      const __m256i wv = _mm256_set1_epi32(int32_t(w2));
      acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, b)), wv));
      acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_cvtepu8_epi16(_mm_unpackhi_epi8(a, b)), wv));
    }
    acc0 = _mm256_sra_epi32(acc0, shift);
    acc1 = _mm256_sra_epi32(acc1, shift);
    // packs interleaves the 128-bit lanes: [0..3 8..11 | 4..7 12..15]; the permute restores the order.
    const __m256i w16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(acc0, acc1), 0xD8);
    const __m128i bytes = _mm_packus_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1));  // clip 0..255
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + i), bytes);
  }
  for (; i < n; ++i) {
    int32_t acc = 1 << (prec - 1);
    for (int k = 0; k < count; ++k) acc += int32_t(mid[size_t(first + k) * stride + i]) * w[k];
    o[i] = clip8(acc, prec);
  }
}

// One output row of the vertical pass from fast mode's 16-bit intermediate: two rows' int16
// values interleaved, one vpmaddwd gives a[i] * w[k] + b[i] * w[k + 1] for 8 outputs (no
// widening: the intermediate already is int16). The int32 sums are the plain loop's exactly
// (mid16_within_one_level checks that they cannot overflow), so are the bytes.
void vertical_row_mid16_avx2(const int16_t* mid, size_t stride, int first, int count, const int32_t* w, int shift, uint8_t* o,
                             int n) {
  const __m256i half = _mm256_set1_epi32(1 << (shift - 1));
  const __m128i sh = _mm_cvtsi32_si128(shift);
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    __m256i acc0 = half, acc1 = half;  // per 128-bit lane: outputs [0..3 | 8..11] and [4..7 | 12..15]
    for (int k = 0; k < count; k += 2) {
      const int16_t* ra = mid + size_t(first + k) * stride + i;
      const __m256i a = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ra));
      const bool pair = k + 1 < count;
      const __m256i b = pair ? _mm256_loadu_si256(reinterpret_cast<const __m256i*>(ra + stride)) : _mm256_setzero_si256();
      const uint32_t w2 = uint32_t(uint16_t(int16_t(w[k]))) | uint32_t(pair ? uint16_t(int16_t(w[k + 1])) : 0u) << 16;
      const __m256i wv = _mm256_set1_epi32(int32_t(w2));
      acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), wv));
      acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), wv));
    }
    // packs per lane: [0..3 4..7 | 8..11 12..15], in order; packus clips to 0..255.
    const __m256i w16 = _mm256_packs_epi32(_mm256_sra_epi32(acc0, sh), _mm256_sra_epi32(acc1, sh));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o + i), _mm_packus_epi16(_mm256_castsi256_si128(w16), _mm256_extracti128_si256(w16, 1)));
  }
  vertical_row_mid16(mid, stride, first, count, w, shift, o, i, n);
}
#endif

}  // namespace

namespace {

// `out` takes the H x W x C shape, keeping its buffer when it is large enough (its old bytes
// stay: every byte is overwritten by the caller).
void reshape(Image& out, int h, int w, int c) {
  out.height = h, out.width = w, out.channels = c;
  out.pixels.resize(size_t(h) * w * c);
}

// Fast mode with the 16-bit intermediate (pil_resize.h): both passes with 16-bit weights, one
// multiply-add per tap pair in each. `h` and `v` passed mid16_within_one_level.
void resize_mid16(const ImageView& src, const Taps& h, const Taps& v, Image& out) {
  const int C = src.channels, out_w = int(h.first.size()), out_h = int(v.first.size());
  // Per-thread scratch, reused from image to image; each row has slack for the 4-element stores.
  thread_local std::vector<int16_t> mid_scratch;
  const size_t stride = size_t(out_w) * C + 4;
  if (mid_scratch.size() < size_t(src.height) * stride) mid_scratch.resize(size_t(src.height) * stride);
  int16_t* mid = mid_scratch.data();
  size_t pad = 1;
#if defined(__AVX2__)
  TapsAvx2 ta;
  const bool avx2 = C == 3 && make_taps_avx2(h, ta);  // no split: every weight is an int16
  if (avx2) pad = size_t(ta.steps) * 12 + 16;         // the last step's reads past the row (as resize_into)
#endif
  cpu::parallel_for(src.height, 64, [&](int64_t y0, int64_t y1) {
    int64_t y = y0;
#if defined(__AVX2__)
    if (avx2) {
      constexpr int R = 4;
      thread_local std::vector<uint8_t> padded;
      const size_t pstride = size_t(src.width) * 3 + pad;
      if (padded.size() < pstride * R) padded.resize(pstride * R);
      const uint8_t* in[R];
      int16_t* o[R];
      for (; y < y1; y += R) {
        const int rows = int(std::min<int64_t>(R, y1 - y));
        for (int r = 0; r < rows; ++r) {
          std::memcpy(padded.data() + r * pstride, src.row(int(y + r)), size_t(src.width) * 3);
          in[r] = padded.data() + r * pstride;
          o[r] = mid + size_t(y + r) * stride;
        }
        if (rows == R) horizontal_rows_rgb_avx2<R, false, int16_t>(in, o, out_w, h, ta);
        else
          for (int r = 0; r < rows; ++r) horizontal_rows_rgb_avx2<1, false, int16_t>(in + r, o + r, out_w, h, ta);
      }
    }
#endif
    for (; y < y1; ++y) {
      if (C == 3) horizontal_row_mid16<3>(src.row(int(y)), mid + size_t(y) * stride, out_w, h);
      else horizontal_row_mid16<1>(src.row(int(y)), mid + size_t(y) * stride, out_w, h);
    }
  });
  reshape(out, out_h, out_w, C);
  const int n = out_w * C, shift = kMidFracBits + v.prec;
  cpu::parallel_for(out_h, 32, [&](int64_t y0, int64_t y1) {
    for (int64_t y = y0; y < y1; ++y) {
      const int32_t* w = v.w.data() + size_t(y) * v.taps;
#if defined(__AVX2__)
      vertical_row_mid16_avx2(mid, stride, v.first[y], v.count[y], w, shift, out.row(int(y)), n);
#else
      vertical_row_mid16(mid, stride, v.first[y], v.count[y], w, shift, out.row(int(y)), 0, n);
#endif
    }
  });
}

}  // namespace

Image resize(const ImageView& src, int out_h, int out_w, Interp interp, ResizeMode mode) {
  Image out;
  resize_into(src, out_h, out_w, interp, out, mode);
  return out;
}

void resize_into(const ImageView& src, int out_h, int out_w, Interp interp, Image& out, ResizeMode mode) {
  resize_box_into(src, {0.0f, 0.0f, float(src.height), float(src.width)}, out_h, out_w, interp, out, mode);
}

void resize_box_into(const ImageView& src, const ResizeBox& box, int out_h, int out_w, Interp interp, Image& out,
                     ResizeMode mode) {
  if (!out.pixels.empty() && src.data >= out.pixels.data() && src.data < out.pixels.data() + out.pixels.size())
    throw std::invalid_argument("resize_into: the source is a view of the output image (resize in place is not supported)");
  if (out_h < 1 || out_w < 1 || src.height < 1 || src.width < 1)
    throw std::invalid_argument("resize: expected a non-empty image and output size, got " + std::to_string(src.height) + "x" +
                                std::to_string(src.width) + " -> " + std::to_string(out_h) + "x" + std::to_string(out_w));
  if (src.channels != 1 && src.channels != 3)
    throw std::invalid_argument("resize: expected 1 or 3 channels, got " + std::to_string(src.channels));
  if (!(box.top >= 0 && box.left >= 0 && box.bottom <= float(src.height) && box.right <= float(src.width) &&
        box.bottom > box.top && box.right > box.left))
    throw std::invalid_argument("resize: the box (top " + std::to_string(box.top) + ", left " + std::to_string(box.left) +
                                ", bottom " + std::to_string(box.bottom) + ", right " + std::to_string(box.right) +
                                ") must be a non-empty rectangle inside the " + std::to_string(src.height) + "x" +
                                std::to_string(src.width) + " image");
  const int C = src.channels;
  // An axis is resampled unless its output is the whole source axis at the same size.
  const bool whole_w = box.left == 0 && box.right == float(src.width), whole_h = box.top == 0 && box.bottom == float(src.height);
  const bool need_h = out_w != src.width || !whole_w, need_v = out_h != src.height || !whole_h;
  if (mode == ResizeMode::fast && need_h && need_v) {
    // Fast mode's main path: 16-bit weights in both passes and a 16-bit intermediate, where the
    // <= 1 level bound holds for these weights (every training crop near 224); else below.
    const Taps h = make_taps(src.width, out_w, interp, ResizeMode::fast, kPrecisionBits, box.left, box.right);
    const Taps v = make_taps(src.height, out_h, interp, ResizeMode::fast, kMidVerticalMaxPrec, box.top, box.bottom);
    if (mid16_within_one_level(h, v)) {
      resize_mid16(src, h, v, out);
      return;
    }
  }

  // Horizontal pass into `mid` (src.height x out_w): the output itself when there is no
  // vertical pass, else a per-thread scratch buffer reused from image to image (a loader
  // worker resizes one image after another: no allocation, no zero-fill, no page faults).
  // Without a horizontal pass the vertical one reads the source rows directly.
  thread_local std::vector<uint8_t> mid_scratch;
  const uint8_t* mid = src.data;
  size_t mid_stride = src.row_stride;
  if (need_h) {
    uint8_t* dst = nullptr;
    if (!need_v) {
      reshape(out, src.height, out_w, C);
      dst = out.pixels.data();
    } else {
      const size_t bytes = size_t(src.height) * out_w * C;
      if (mid_scratch.size() < bytes) mid_scratch.resize(bytes);
      dst = mid_scratch.data();
    }
    mid = dst, mid_stride = size_t(out_w) * C;
    // Always Pillow's 22-bit weights here, in fast mode too: the 8-bit intermediate is then
    // Pillow's own, so the vertical pass's 16-bit weights alone move a byte, by at most 1 (see
    // pil_resize.h). 16-bit weights here as well would let the intermediate differ by 1 and the
    // vertical pass's negative lobes (sum |w| up to ~1.14) carry that to 2 on rare pixels, as
    // Pillow-SIMD does; the tests found such a pixel on noise images.
    const Taps t = make_taps(src.width, out_w, interp, ResizeMode::exact, kPrecisionBits, box.left, box.right);
    size_t pad = 1;  // readable bytes past the row that the RGB paths may read (with weight 0)
#if defined(__AVX2__)
    TapsAvx2 ta;
    const bool avx2 = C == 3 && make_taps_avx2(t, ta);
    // An edge pixel has fewer taps than `steps * 4`: its last step may read up to 4 * steps
    // pixels (+ 4 bytes) past its first one, i.e. past the end of the row.
    if (avx2) pad = size_t(ta.steps) * 12 + 16;
#endif
    cpu::parallel_for(src.height, 64, [&](int64_t y0, int64_t y1) {
      constexpr int R = 4;  // rows per call of the AVX2 pass
      thread_local std::vector<uint8_t> padded;  // R rows, each + `pad` readable bytes
      const size_t pstride = size_t(src.width) * 3 + pad;
      if (C == 3 && padded.size() < pstride * R) padded.resize(pstride * R);
      int64_t y = y0;
#if defined(__AVX2__)
      if (avx2) {
        const uint8_t* in[R];
        uint8_t* o[R];
        for (; y + R <= y1; y += R) {
          for (int r = 0; r < R; ++r) {
            std::memcpy(padded.data() + r * pstride, src.row(int(y + r)), size_t(src.width) * 3);
            in[r] = padded.data() + r * pstride;
            o[r] = dst + size_t(y + r) * mid_stride;
          }
          if (ta.split) horizontal_rows_rgb_avx2<R, true>(in, o, out_w, t, ta);
          else horizontal_rows_rgb_avx2<R, false>(in, o, out_w, t, ta);
        }
        for (; y < y1; ++y) {
          std::memcpy(padded.data(), src.row(int(y)), size_t(src.width) * 3);
          in[0] = padded.data();
          o[0] = dst + size_t(y) * mid_stride;
          if (ta.split) horizontal_rows_rgb_avx2<1, true>(in, o, out_w, t, ta);
          else horizontal_rows_rgb_avx2<1, false>(in, o, out_w, t, ta);
        }
      }
#endif
      for (; y < y1; ++y) {
        uint8_t* o = dst + size_t(y) * mid_stride;
        if (C == 3) {
          std::memcpy(padded.data(), src.row(int(y)), size_t(src.width) * 3);
          horizontal_row_rgb(padded.data(), o, out_w, t);
        } else {
          horizontal_row<1>(src.row(int(y)), o, out_w, t);
        }
      }
    });
    if (!need_v) return;
  } else if (!need_v) {  // same size: a copy
    reshape(out, src.height, src.width, C);
    for (int y = 0; y < src.height; ++y) std::memcpy(out.row(y), src.row(y), size_t(out_w) * C);
    return;
  }

  // Vertical pass: each output row is a weighted sum of whole input rows, so the inner loop
  // runs along the contiguous row (all W * C bytes) and vectorises.
  const Taps t = make_taps(src.height, out_h, interp, mode, kPrecisionBits, box.top, box.bottom);
  reshape(out, out_h, out_w, C);
  const int row_len = out_w * C;
  bool w16 = true;  // every weight an int16: the multiply-add path (fast mode, or a strong shrink)
  for (int32_t w : t.w) w16 = w16 && w <= 32767 && w >= -32768;
  cpu::parallel_for(out_h, 32, [&](int64_t y0, int64_t y1) {
    // Locals and __restrict: the uint8_t rows may alias anything as far as the compiler knows
    // (char types), which would make it reload the bounds and give up vectorising.
    const int n = row_len;
    thread_local std::vector<int32_t> acc_buf;
    if (acc_buf.size() < size_t(n)) acc_buf.resize(size_t(n));
    int32_t* __restrict acc = acc_buf.data();
    const int prec = t.prec;
    for (int64_t y = y0; y < y1; ++y) {
      const int32_t* w = t.w.data() + size_t(y) * t.taps;
      const int count = t.count[y], first = t.first[y];
#if defined(__AVX2__)
      if (w16) {
        vertical_row_madd(mid, mid_stride, first, count, w, prec, out.row(int(y)), n);
        continue;
      }
#endif
      for (int i = 0; i < n; ++i) acc[i] = 1 << (prec - 1);
      for (int k = 0; k < count; ++k) {
        const uint8_t* __restrict in = mid + size_t(first + k) * mid_stride;
        const int32_t wk = w[k];
        for (int i = 0; i < n; ++i) acc[i] += int32_t(in[i]) * wk;
      }
      uint8_t* __restrict o = out.row(int(y));
      for (int i = 0; i < n; ++i) o[i] = clip8(acc[i], prec);
    }
  });
}

}  // namespace rv::data
