// position_embedding.cpp: sine position embeddings (position_embedding.h).
//
// Both follow detrex's float32 arithmetic step by step (a cumulative sum, the normalisation, then
// one division per frequency), so the values agree with it to float rounding.
#include "models/det/position_embedding.h"

#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "engine/autograd.h"

namespace rv::models::det {

namespace {

// dim_t[i] = T^(2 floor(i / 2) / F), in f32 as detrex computes it.
std::vector<float> frequencies(int64_t F, double temperature) {
  std::vector<float> d(static_cast<size_t>(F));
  for (int64_t i = 0; i < F; ++i)
    d[size_t(i)] = std::pow(float(temperature), float(2 * (i / 2)) / float(F));
  return d;
}

}  // namespace

Tensor sine_position_embedding(const Tensor& mask, const SinePositionOptions& opt) {
  if (mask.dim() != 3 || mask.dtype() != DType::boolean)
    throw std::invalid_argument("sine_position_embedding: expected a bool padding mask (B, H, W), got " +
                                std::string(dtype_name(mask.dtype())) + " " + shape_str(mask.shape()));
  const int64_t F = opt.num_pos_feats;
  if (F <= 0 || F % 2 != 0)
    throw std::invalid_argument("sine_position_embedding: num_pos_feats must be positive and even, got " +
                                std::to_string(F));
  const Tensor m = mask.device().is_cpu() ? mask.contiguous() : mask.to(cpu_device()).contiguous();
  const int64_t B = m.size(0), H = m.size(1), W = m.size(2);
  const bool* mp = m.data<bool>();
  const std::vector<float> dim_t = frequencies(F, opt.temperature);
  Tensor out = empty({B, 2 * F, H, W}, DType::f32);
  float* op = out.data<float>();
  std::vector<float> ye(static_cast<size_t>(H * W)), xe(static_cast<size_t>(H * W));
  for (int64_t b = 0; b < B; ++b) {
    const bool* mb = mp + b * H * W;
    // cumulative counts of valid pixels down the columns (y) and along the rows (x)
    for (int64_t w = 0; w < W; ++w) {
      float acc = 0;
      for (int64_t h = 0; h < H; ++h) ye[size_t(h * W + w)] = acc += mb[h * W + w] ? 0.f : 1.f;
    }
    for (int64_t h = 0; h < H; ++h) {
      float acc = 0;
      for (int64_t w = 0; w < W; ++w) xe[size_t(h * W + w)] = acc += mb[h * W + w] ? 0.f : 1.f;
    }
    if (opt.normalize) {
      const float off = float(opt.offset), eps = float(opt.eps), sc = float(opt.scale);
      std::vector<float> ny(ye), nx(xe);
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) {
          ny[size_t(h * W + w)] = (ye[size_t(h * W + w)] + off) / (ye[size_t((H - 1) * W + w)] + eps) * sc;
          nx[size_t(h * W + w)] = (xe[size_t(h * W + w)] + off) / (xe[size_t(h * W + W - 1)] + eps) * sc;
        }
      ye.swap(ny);
      xe.swap(nx);
    }
    float* ob = op + b * 2 * F * H * W;
    for (int64_t i = 0; i < F; ++i)
      for (int64_t p = 0; p < H * W; ++p) {
        const float vy = ye[size_t(p)] / dim_t[size_t(i)], vx = xe[size_t(p)] / dim_t[size_t(i)];
        ob[i * H * W + p] = i % 2 == 0 ? std::sin(vy) : std::cos(vy);        // channels [0, F): y
        ob[(F + i) * H * W + p] = i % 2 == 0 ? std::sin(vx) : std::cos(vx);  // channels [F, 2F): x
      }
  }
  return mask.device().is_cpu() ? out : out.to(mask.device());
}

Tensor sine_embed_of_positions(const Tensor& pos, int64_t num_pos_feats, double temperature, bool exchange_xy) {
  if (pos.dim() != 3 || !is_floating(pos.dtype()))
    throw std::invalid_argument("sine_embed_of_positions: expected float positions (N, B, n), got " +
                                std::string(dtype_name(pos.dtype())) + " " + shape_str(pos.shape()));
  if (pos.requires_grad() && autograd::grad_enabled())
    throw std::invalid_argument("sine_embed_of_positions: not differentiable; pass detached positions (DINO "
                                "detaches its reference points before this embedding)");
  const int64_t F = num_pos_feats, N = pos.size(0), B = pos.size(1), n = pos.size(2);
  if (F <= 0 || F % 2 != 0)
    throw std::invalid_argument("sine_embed_of_positions: num_pos_feats must be positive and even, got " +
                                std::to_string(F));
  if (exchange_xy && n < 2)
    throw std::invalid_argument("sine_embed_of_positions: exchange_xy needs at least 2 coordinates, got " +
                                std::to_string(n));
  const std::vector<float> dim_t = frequencies(F, temperature);
  const Tensor p = pos.to(cpu_device()).to(DType::f32).contiguous();
  const float* pp = p.data<float>();
  Tensor out = empty({N, B, n * F}, DType::f32);
  float* op = out.data<float>();
  const float two_pi = 6.283185307179586f;
  for (int64_t r = 0; r < N * B; ++r)
    for (int64_t c = 0; c < n; ++c) {
      // output block of coordinate c: swapped with its neighbour for (x, y) -> (y, x)
      const int64_t blk = exchange_xy && c < 2 ? 1 - c : c;
      const float v = pp[r * n + c] * two_pi;
      for (int64_t i = 0; i < F; ++i) {
        const float a = v / dim_t[size_t(i)];
        op[r * n * F + blk * F + i] = i % 2 == 0 ? std::sin(a) : std::cos(a);
      }
    }
  if (pos.dtype() != DType::f32) out = out.to(pos.dtype());
  return pos.device().is_cpu() ? out : out.to(pos.device());
}

}  // namespace rv::models::det
