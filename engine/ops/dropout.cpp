// dropout.cpp: dropout and drop_path, forward and backward.
//
// The forward pass reserves a range of Philox offsets and derives the keep mask from it; the
// backward closure keeps only (seed, stream, offset, p) and regenerates the very same mask, so
// no mask tensor is stored between the passes. Dropout draws its words a tile at a time
// (philox_words: one Philox block per 4 elements) and applies them in a vectorised loop.
#include "engine/ops/dropout.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/cpu/parallel.h"

namespace rv {

namespace {

void check_args(const Tensor& x, double p, const char* op) {
  if (!(p >= 0.0 && p <= 1.0))
    throw std::invalid_argument(std::string(op) + ": expected a probability p in [0, 1], got " + std::to_string(p));
  if (!is_floating(x.dtype()))
    throw std::invalid_argument(std::string(op) + ": expected a float tensor, got " + dtype_name(x.dtype()));
}

// Which counter words the mask uses, and how to scale what is kept.
struct MaskSpec {
  uint64_t seed, stream, offset;
  double keep;          // 1 - p
  int64_t group;        // consecutive elements that share one draw (1 for dropout, a sample for drop_path)
};

// Dropout's keep test on one 32-bit Philox word, the same decision as the reference rule
// double(philox_uniform(...)) < keep, in f32: u = word_to_uniform(word) = k 2^-24 with k an
// integer below 2^24, and k 2^-24 < keep <=> k < K := ceil(keep 2^24) <=> u < K 2^-24, where
// K 2^-24 (K <= 2^24) is exact in float. So the mask is bit for bit the one the tests replay.
inline float keep_threshold(double keep) { return float(std::ceil(keep * 16777216.0) / 16777216.0); }

// y[i] = word(offset + i) kept ? x[i] * scale : 0 for i in [i0, i1). The words come a tile at a
// time from philox_words (each Philox block computed once for its 4 elements, several blocks
// side by side), then one plain loop, which vectorises, applies them.
template <class T>
void dropout_range(const T* xp, T* yp, int64_t i0, int64_t i1, const MaskSpec& m, T scale) {
  constexpr int64_t kTile = 1024;
  uint32_t words[kTile];
  const float thr = keep_threshold(m.keep);
  for (int64_t b = i0; b < i1; b += kTile) {
    const int64_t n = std::min(kTile, i1 - b);
    philox_words(m.seed, m.stream, m.offset + uint64_t(b), n, words);
    for (int64_t i = 0; i < n; ++i) {
      const T v = xp[b + i] * scale;  // loaded unconditionally: a select, not a masked load
      yp[b + i] = word_to_uniform(words[i]) < thr ? v : T(0);
    }
  }
}

// y[i] = keep(i / group) ? x[i] / keep : 0, for a contiguous x in f32/f64. On a device: the
// backend's kernel, which draws the same Philox words there (no mask crosses the bus).
Tensor apply_mask(const Tensor& x_in, const MaskSpec& m, const char* op) {
  if (!x_in.device().is_cpu())
    return backend::get(x_in.device()).dropout_apply(x_in.detach(), m.seed, m.stream, m.offset, m.keep, m.group);
  const DType ct = cpu::compute_dtype(x_in.dtype());
  Tensor x = x_in.detach();
  if (x.dtype() != ct) x = x.to(ct);
  x = x.contiguous();
  Tensor y = empty(x.shape(), ct);
  const int64_t n = x.numel();
  cpu::dispatch_float(ct, op, [&]<class T>() {
    const T* xp = x.data<T>();
    T* yp = y.data<T>();
    const T scale = m.keep > 0 ? T(1.0 / m.keep) : T(0);
    cpu::parallel_for(n, 16384, [&](int64_t i0, int64_t i1) {
      if (m.group == 1) {  // dropout: one word per element
        dropout_range(xp, yp, i0, i1, m, scale);
        return;
      }
      // drop_path: one draw per run of `group` elements (a sample), then a plain scaled copy
      // or a fill over the part of that run inside [i0, i1).
      for (int64_t i = i0; i < i1;) {
        const int64_t draw = i / m.group;
        const int64_t end = std::min(i1, (draw + 1) * m.group);
        const bool kept = double(philox_uniform(m.seed, m.stream, m.offset + uint64_t(draw))) < m.keep;
        if (kept)
          for (; i < end; ++i) yp[i] = xp[i] * scale;
        else
          for (; i < end; ++i) yp[i] = T(0);
      }
    });
  });
  return x_in.dtype() == ct ? y : y.to(x_in.dtype());
}

Tensor masked(const Tensor& x, double p, Generator& gen, int64_t draws, int64_t group, const char* op) {
  MaskSpec m{gen.seed(), gen.stream(), gen.reserve(uint64_t(draws)), 1.0 - p, group};
  Tensor out = apply_mask(x, m, op);
  if (auto rec = autograd::Recorder(op, {x})) {
    rec.finish(out, [m, op](const Tensor& g, const autograd::Needs&) -> autograd::Grads {
      return {apply_mask(g, m, op)};  // the same mask and scale
    });
  }
  return out;
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Generator& gen) {
  check_args(x, p, "dropout");
  if (!training || p == 0.0) return x;
  return masked(x, p, gen, x.numel(), 1, "dropout");
}

Tensor drop_path(const Tensor& x, double p, bool training, Generator& gen) {
  check_args(x, p, "drop_path");
  if (x.dim() == 0) throw std::invalid_argument("drop_path: expected a tensor with a leading (sample) dim, got a scalar");
  if (!training || p == 0.0) return x;
  const int64_t samples = x.size(0);
  const int64_t per_sample = samples ? x.numel() / samples : 0;
  return masked(x, p, gen, samples, per_sample > 0 ? per_sample : 1, "drop_path");
}

}  // namespace rv
