// rope.cpp: rotary position embedding: the angle table (rope_angles), the rotation (rope_apply),
// their backward passes, and the frequency tables of RoPE-Axial and RoPE-Mixed.
//
// Shapes: x (B, NH, N, HD), angles (NH or 1, N - skip, HD/2), freqs (A, NH, HD/2), pos (N, A).
// Kernels compute in f32 or f64 (bf16/f16 are widened to f32 and rounded back once).
#include "engine/ops/rope.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/autograd.h"
#include "engine/backend.h"
#include "engine/cpu/dense.h"
#include "engine/cpu/dispatch.h"
#include "engine/cpu/elementwise_kernel.h"
#include "engine/cpu/parallel.h"

namespace rv {

using autograd::Grads;
using autograd::Needs;

namespace {

void check_float(const Tensor& t, const char* op, const char* arg) {
  if (!is_floating(t.dtype()))
    throw std::invalid_argument(std::string(op) + ": expected `" + arg + "` to be a float tensor, got " +
                                dtype_name(t.dtype()));
}

// The angle sum. fp-contract is off here so that the compiler cannot fuse a product into the
// following add (an FMA would skip the rounding of the product that the reference does).
#if defined(__clang__)
#define RV_NO_FP_CONTRACT
#elif defined(__GNUC__)
#define RV_NO_FP_CONTRACT __attribute__((optimize("fp-contract=off")))
#else
#define RV_NO_FP_CONTRACT
#endif

template <class T>
RV_NO_FP_CONTRACT void angles_kernel(const T* freqs, const T* pos, T* out, int64_t A, int64_t NH, int64_t N,
                                     int64_t P) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
  // out[h, n, j] = sum_a fl(pos[n, a] * freqs[a, h, j])
  cpu::parallel_for(NH * N, std::max<int64_t>(1, 4096 / std::max<int64_t>(1, P)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t h = r / N, n = r % N;
      T* o = out + r * P;
      for (int64_t j = 0; j < P; ++j) o[j] = T(0);
      for (int64_t a = 0; a < A; ++a) {
        const T t = pos[n * A + a];
        const T* f = freqs + (a * NH + h) * P;
        for (int64_t j = 0; j < P; ++j) {
          T prod = t * f[j];
          o[j] = o[j] + prod;
        }
      }
    }
  });
}

// dfreqs[a, h, j] = sum_n pos[n, a] g[h, n, j];  dpos[n, a] = sum_{h, j} freqs[a, h, j] g[h, n, j].
// Accumulated in double, each output written by one thread.
template <class T>
void angles_backward_kernel(const T* g, const T* freqs, const T* pos, T* dfreqs, T* dpos, int64_t A, int64_t NH,
                            int64_t N, int64_t P) {
  if (dfreqs) {
    cpu::parallel_for(A * NH, 1, [&](int64_t t0, int64_t t1) {
      std::vector<double> acc(P);
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t a = t / NH, h = t % NH;
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t n = 0; n < N; ++n) {
          const double pn = double(pos[n * A + a]);
          const T* gr = g + (h * N + n) * P;
          for (int64_t j = 0; j < P; ++j) acc[j] += pn * double(gr[j]);
        }
        for (int64_t j = 0; j < P; ++j) dfreqs[t * P + j] = T(acc[j]);
      }
    });
  }
  if (dpos) {
    cpu::parallel_for(N, 64, [&](int64_t n0, int64_t n1) {
      for (int64_t n = n0; n < n1; ++n)
        for (int64_t a = 0; a < A; ++a) {
          double acc = 0;
          for (int64_t h = 0; h < NH; ++h) {
            const T* gr = g + (h * N + n) * P;
            const T* f = freqs + (a * NH + h) * P;
            for (int64_t j = 0; j < P; ++j) acc += double(f[j]) * double(gr[j]);
          }
          dpos[n * A + a] = T(acc);
        }
    });
  }
}

// Where rope_apply reads x: element (b, h, n, d) sits at base + b*sb + h*sh + n*sn + d.
struct RowLayout {
  int64_t sb, sh, sn;
};

// out[b, h, n] = rotate(x[b, h, n], angle row of (h, n - skip)) for n >= skip, else a copy.
// The tables are per channel, each pair's entries repeated: cw = (cos a_j, cos a_j) and
// sw = (-sin a_j, +sin a_j), so that with x' = x with each pair swapped,
//   out = x * cw + sign * x' * sw
// is a straight multiply-add per channel that the compiler vectorises without splitting the pairs
// into cos/sin halves; the kernel then runs at about the speed of a copy (it is memory-bound).
// `sign` = +1 rotates by +a (forward), -1 by -a (the backward w.r.t. x).
template <class T>
void rotate_kernel(const T* x, RowLayout lx, const T* cw, const T* sw, T* out, int64_t B, int64_t NH, int64_t N,
                   int64_t HD, int64_t skip, bool shared_heads, T sign) {
  const int64_t Nr = N - skip;
  cpu::parallel_for(B * NH * N, std::max<int64_t>(1, 8192 / std::max<int64_t>(1, HD)), [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      const int64_t n = r % N, h = (r / N) % NH, b = r / (N * NH);
      const T* __restrict xr = x + b * lx.sb + h * lx.sh + n * lx.sn;
      T* __restrict o = out + r * HD;
      if (n < skip) {
        for (int64_t d = 0; d < HD; ++d) o[d] = xr[d];
        continue;
      }
      const int64_t row = ((shared_heads ? 0 : h) * Nr + (n - skip)) * HD;
      const T* __restrict c = cw + row;
      const T* __restrict s = sw + row;
      if (sign > 0) {
        for (int64_t d = 0; d < HD; d += 2) {
          o[d] = xr[d] * c[d] + xr[d + 1] * s[d];
          o[d + 1] = xr[d + 1] * c[d + 1] + xr[d] * s[d + 1];
        }
      } else {
        for (int64_t d = 0; d < HD; d += 2) {
          o[d] = xr[d] * c[d] - xr[d + 1] * s[d];
          o[d + 1] = xr[d + 1] * c[d + 1] - xr[d] * s[d + 1];
        }
      }
    }
  });
}

// dangles[h', n, j] = sum over b (and over h when the angles are shared by all heads) of
//   g[2j] * d out[2j]/da + g[2j+1] * d out[2j+1]/da = -g[2j] out[2j+1] + g[2j+1] out[2j].
// Each output row (h', n) is owned by one thread and summed in a fixed order (b, then h) in double.
// Why b is the outer loop: a task holds the double sums of its whole range of rows (small:
// rows * HD/2 doubles) and sweeps g and out once, front to back, a contiguous (N, HD) block per
// (b, h). Walking b innermost instead jumped NH*N*HD elements per step, which the prefetcher does
// not follow: the loads stalled on memory (3% of a tiny-ViT training step, one thread).
template <class T>
void angle_grad_kernel(const T* g, const T* out, T* dang, int64_t B, int64_t NH, int64_t N, int64_t HD, int64_t skip,
                       bool shared_heads) {
  const int64_t P = HD / 2, Nr = N - skip, NHa = shared_heads ? 1 : NH;
  cpu::parallel_for(NHa * Nr, 16, [&](int64_t r0, int64_t r1) {
    std::vector<double> acc(size_t((r1 - r0) * P), 0.0);  // row r at acc[(r - r0) * P]
    for (int64_t b = 0; b < B; ++b)
      for (int64_t h = 0; h < NH; ++h) {
        // Rows of this task that head h contributes to: all when shared, else those with h' = h.
        const int64_t lo = shared_heads ? r0 : std::max(r0, h * Nr);
        const int64_t hi = shared_heads ? r1 : std::min(r1, (h + 1) * Nr);
        for (int64_t r = lo; r < hi; ++r) {
          const int64_t n = r % Nr + skip;
          const int64_t off = ((b * NH + h) * N + n) * HD;
          const T* gr = g + off;
          const T* orow = out + off;
          double* a = acc.data() + (r - r0) * P;
          for (int64_t j = 0; j < P; ++j)
            a[j] += double(gr[2 * j + 1]) * double(orow[2 * j]) - double(gr[2 * j]) * double(orow[2 * j + 1]);
        }
      }
    for (int64_t r = r0; r < r1; ++r)
      for (int64_t j = 0; j < P; ++j) dang[r * P + j] = T(acc[(r - r0) * P + j]);
  });
}

// The rotation with the per-channel tables already made (see rotate_kernel): out = R(sign * a) x.
Tensor rotate(const Tensor& x_ct, const Tensor& cos_t, const Tensor& sin_t, int64_t skip, bool shared_heads,
              double sign) {
  Tensor x = x_ct;
  if (x.stride(3) != 1 && x.size(3) > 1) x = x.contiguous();
  const int64_t B = x.size(0), NH = x.size(1), N = x.size(2), HD = x.size(3);
  Tensor out = empty({B, NH, N, HD}, x.dtype());
  RowLayout lx{x.stride(0), x.stride(1), x.stride(2)};
  cpu::dispatch_float(x.dtype(), "rope_apply", [&]<class T>() {
    rotate_kernel<T>(x.data<T>(), lx, cos_t.data<T>(), sin_t.data<T>(), out.data<T>(), B, NH, N, HD, skip,
                     shared_heads, T(sign));
  });
  return out;
}

// ---- device path (tensors on cuda): the backend's kernels, forward and backward --------------------

void check_same_device(const Tensor& a, const Tensor& b, const char* op, const char* an, const char* bn) {
  if (a.device() != b.device())
    throw std::invalid_argument(std::string(op) + ": `" + an + "` is on " + a.device().str() + " but `" + bn +
                                "` is on " + b.device().str() + "; move one with .to(device)");
}

Tensor rope_angles_device(const Tensor& freqs, const Tensor& pos) {
  check_same_device(freqs, pos, "rope_angles", "freqs", "pos");
  Tensor out = backend::get(freqs.device()).rope_angles(freqs.detach(), pos.detach());
  if (auto rec = autograd::Recorder("rope_angles", {freqs, pos})) {
    Tensor sf = rec.save(freqs), sp = rec.save(pos);
    rec.finish(out, [=](const Tensor& g, const Needs& need) -> Grads {
      Tensor df, dp;
      backend::get(g.device()).rope_angles_backward(g, sf, sp, need[0] ? &df : nullptr, need[1] ? &dp : nullptr);
      return {df, dp};
    });
  }
  return out;
}

// Backward on the device too: dx = the gradient turned by -a (CLS rows passed through), and the
// angle gradient recomputed from the saved x (the kernel rotates it again; no output is kept).
Tensor rope_apply_device(const Tensor& x, const Tensor& angles, int64_t skip_tokens) {
  check_same_device(x, angles, "rope_apply", "x", "angles");
  Tensor out = backend::get(x.device()).rope_rotate(x.detach(), angles.detach(), skip_tokens, false);
  if (auto rec = autograd::Recorder("rope_apply", {x, angles})) {
    Tensor sa = rec.save(angles);
    Tensor sx = rec.needs(1) ? rec.save(x) : Tensor();
    rec.finish(out, [=](const Tensor& g, const Needs& need) -> Grads {
      backend::DeviceBackend& be = backend::get(g.device());
      Tensor dx = need[0] ? be.rope_rotate(g, sa, skip_tokens, true) : Tensor();
      Tensor dang = need[1] ? be.rope_angles_grad(g, sx, sa, skip_tokens) : Tensor();
      return {dx, dang};
    });
  }
  return out;
}

}  // namespace

Tensor rope_angles(const Tensor& freqs, const Tensor& pos) {
  check_float(freqs, "rope_angles", "freqs");
  check_float(pos, "rope_angles", "pos");
  if (freqs.dim() != 3)
    throw std::invalid_argument("rope_angles: expected `freqs` of shape (A, NH, HD/2), got " +
                                shape_str(freqs.shape()));
  if (pos.dim() != 2 || pos.size(1) != freqs.size(0))
    throw std::invalid_argument("rope_angles: expected `pos` of shape (N, " + std::to_string(freqs.size(0)) +
                                ") to match `freqs` " + shape_str(freqs.shape()) + ", got " +
                                shape_str(pos.shape()));
  if (!freqs.device().is_cpu() || !pos.device().is_cpu()) return rope_angles_device(freqs, pos);
  const DType ct = cpu::compute_dtype(promote_types(freqs.dtype(), pos.dtype()));
  const int64_t A = freqs.size(0), NH = freqs.size(1), P = freqs.size(2), N = pos.size(0);
  Tensor f = cpu::dense(freqs, ct), p = cpu::dense(pos, ct);
  Tensor out = empty({NH, N, P}, ct);
  cpu::dispatch_float(ct, "rope_angles", [&]<class T>() {
    angles_kernel<T>(f.data<T>(), p.data<T>(), out.data<T>(), A, NH, N, P);
  });
  const DType out_dt = promote_types(freqs.dtype(), pos.dtype());
  if (out_dt != ct) out = out.to(out_dt);
  if (auto rec = autograd::Recorder("rope_angles", {freqs, pos})) {
    Tensor sf = rec.needs(1) ? rec.save(f) : Tensor();
    Tensor sp = rec.needs(0) ? rec.save(p) : Tensor();
    DType fdt = freqs.dtype(), pdt = pos.dtype();
    rec.finish(out, [=](const Tensor& g_in, const Needs& need) -> Grads {
      Tensor g = cpu::dense(g_in, ct);
      Tensor df = need[0] ? empty({A, NH, P}, ct) : Tensor();
      Tensor dp = need[1] ? empty({N, A}, ct) : Tensor();
      cpu::dispatch_float(ct, "rope_angles backward", [&]<class T>() {
        angles_backward_kernel<T>(g.data<T>(), sf.defined() ? sf.data<T>() : nullptr,
                                  sp.defined() ? sp.data<T>() : nullptr, df.defined() ? df.data<T>() : nullptr,
                                  dp.defined() ? dp.data<T>() : nullptr, A, NH, N, P);
      });
      return {df.defined() ? df.to(fdt) : Tensor(), dp.defined() ? dp.to(pdt) : Tensor()};
    });
  }
  return out;
}

Tensor rope_apply(const Tensor& x, const Tensor& angles, int64_t skip_tokens) {
  check_float(x, "rope_apply", "x");
  check_float(angles, "rope_apply", "angles");
  if (x.dim() != 4 || x.size(3) % 2 != 0)
    throw std::invalid_argument("rope_apply: expected `x` of shape (B, NH, N, HD) with HD even, got " +
                                shape_str(x.shape()));
  const int64_t B = x.size(0), NH = x.size(1), N = x.size(2), HD = x.size(3), P = HD / 2;
  if (skip_tokens < 0 || skip_tokens > N)
    throw std::invalid_argument("rope_apply: expected 0 <= skip_tokens <= N = " + std::to_string(N) + ", got " +
                                std::to_string(skip_tokens));
  const int64_t Nr = N - skip_tokens;
  if (angles.dim() != 3 || (angles.size(0) != NH && angles.size(0) != 1) || angles.size(1) != Nr ||
      angles.size(2) != P)
    throw std::invalid_argument("rope_apply: expected `angles` of shape (" + std::to_string(NH) + " or 1, " +
                                std::to_string(Nr) + ", " + std::to_string(P) + ") for x " + shape_str(x.shape()) +
                                " and skip_tokens " + std::to_string(skip_tokens) + ", got " +
                                shape_str(angles.shape()));
  if (!x.device().is_cpu() || !angles.device().is_cpu()) return rope_apply_device(x, angles, skip_tokens);
  const bool shared = angles.size(0) == 1 && NH != 1;
  const DType ct = cpu::compute_dtype(promote_types(x.dtype(), angles.dtype()));

  // cos and sin once per call, shared by every batch element (and kept for the backward pass),
  // laid out per channel: cos_t = (cos a_j, cos a_j), sin_t = (-sin a_j, sin a_j) for pair j.
  Tensor ang = cpu::dense(angles, ct);
  const Shape table_shape = {ang.size(0), ang.size(1), HD};
  Tensor cos_t = empty(table_shape, ct), sin_t = empty(table_shape, ct);
  cpu::dispatch_float(ct, "rope_apply", [&]<class T>() {
    const T* a = ang.data<T>();
    T* c = cos_t.data<T>();
    T* s = sin_t.data<T>();
    cpu::parallel_for(ang.numel(), 4096, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        const T ci = std::cos(a[i]), si = std::sin(a[i]);
        c[2 * i] = ci;
        c[2 * i + 1] = ci;
        s[2 * i] = -si;
        s[2 * i + 1] = si;
      }
    });
  });

  Tensor xd = x.detach();
  if (xd.dtype() != ct) xd = xd.to(ct);
  Tensor out_ct = rotate(xd, cos_t, sin_t, skip_tokens, shared, +1.0);
  Tensor out = x.dtype() == ct ? out_ct : out_ct.to(x.dtype());

  if (auto rec = autograd::Recorder("rope_apply", {x, angles})) {
    Tensor sc = rec.save(cos_t), ss = rec.save(sin_t);
    // d out / d a is the output turned by a quarter: keep the output (in the compute type).
    Tensor so = rec.needs(1) ? rec.save(out_ct) : Tensor();
    DType xdt = x.dtype(), adt = angles.dtype();
    Shape ashape = angles.shape();
    rec.finish(out, [=](const Tensor& g_in, const Needs& need) -> Grads {
      Tensor g = cpu::dense(g_in, ct);
      Tensor dx, dang;
      if (need[0]) {
        dx = rotate(g, sc, ss, skip_tokens, shared, -1.0);
        if (dx.dtype() != xdt) dx = dx.to(xdt);
      }
      if (need[1]) {
        dang = empty(ashape, ct);
        cpu::dispatch_float(ct, "rope_apply backward", [&]<class T>() {
          angle_grad_kernel<T>(g.data<T>(), so.data<T>(), dang.data<T>(), B, NH, N, HD, skip_tokens, shared);
        });
        if (dang.dtype() != adt) dang = dang.to(adt);
      }
      return {dx, dang};
    });
  }
  return out;
}

Tensor rope_grid_positions(int64_t gh, int64_t gw) {
  if (gh < 0 || gw < 0)
    throw std::invalid_argument("rope_grid_positions: expected a non-negative grid, got " + std::to_string(gh) +
                                " x " + std::to_string(gw));
  Tensor pos = empty({gh * gw, 2}, DType::f32);
  float* p = pos.data<float>();
  for (int64_t n = 0; n < gh * gw; ++n) {
    p[2 * n] = float(n % gw);
    p[2 * n + 1] = float(n / gw);
  }
  return pos;
}

namespace {

// m_k = 1 / theta^(4k / head_dim) for k < head_dim/4, each step in fp32 as the reference does
// (exponent arange(0, d, 4) / d, then pow, then reciprocal).
std::vector<float> rope_magnitudes(int64_t head_dim, double theta, const char* op) {
  if (head_dim <= 0 || head_dim % 4 != 0)
    throw std::invalid_argument(std::string(op) + ": expected head_dim to be a positive multiple of 4, got " +
                                std::to_string(head_dim));
  if (!(theta > 0))
    throw std::invalid_argument(std::string(op) + ": expected theta > 0, got " + std::to_string(theta));
  std::vector<float> m(head_dim / 4);
  for (int64_t k = 0; k < head_dim / 4; ++k) {
    const float e = float(4 * k) / float(head_dim);
    m[k] = 1.0f / std::pow(float(theta), e);
  }
  return m;
}

}  // namespace

Tensor rope_axial_freqs(int64_t num_heads, int64_t head_dim, double theta) {
  std::vector<float> m = rope_magnitudes(head_dim, theta, "rope_axial_freqs");
  if (num_heads <= 0)
    throw std::invalid_argument("rope_axial_freqs: expected num_heads > 0, got " + std::to_string(num_heads));
  const int64_t K = head_dim / 4, P = head_dim / 2;
  Tensor f = zeros({2, num_heads, P}, DType::f32);
  float* p = f.data<float>();
  for (int64_t h = 0; h < num_heads; ++h)
    for (int64_t k = 0; k < K; ++k) {
      p[(0 * num_heads + h) * P + k] = m[k];      // x on the first half of the pairs
      p[(1 * num_heads + h) * P + K + k] = m[k];  // y on the second half
    }
  return f;
}

Tensor rope_mixed_freqs_from_angles(const std::vector<float>& phis, int64_t head_dim, double theta) {
  std::vector<float> m = rope_magnitudes(head_dim, theta, "rope_mixed_freqs");
  const int64_t NH = int64_t(phis.size()), K = head_dim / 4, P = head_dim / 2;
  if (NH == 0) throw std::invalid_argument("rope_mixed_freqs: expected at least one head");
  const float half_pi = float(M_PI / 2);
  Tensor f = empty({2, NH, P}, DType::f32);
  float* p = f.data<float>();
  for (int64_t h = 0; h < NH; ++h) {
    const float phi = phis[h], phi2 = half_pi + phi;  // fp32 sum, as the reference
    const float c0 = std::cos(phi), s0 = std::sin(phi), c1 = std::cos(phi2), s1 = std::sin(phi2);
    for (int64_t k = 0; k < K; ++k) {
      p[(0 * NH + h) * P + k] = m[k] * c0;
      p[(1 * NH + h) * P + k] = m[k] * s0;
      p[(0 * NH + h) * P + K + k] = m[k] * c1;
      p[(1 * NH + h) * P + K + k] = m[k] * s1;
    }
  }
  return f;
}

Tensor rope_mixed_freqs(int64_t num_heads, int64_t head_dim, Generator& gen, double theta) {
  if (num_heads <= 0)
    throw std::invalid_argument("rope_mixed_freqs: expected num_heads > 0, got " + std::to_string(num_heads));
  // phi = U[0,1) * 2 * pi in fp32 (the reference: torch.rand(1) * 2 * torch.pi).
  std::vector<float> u = rand({num_heads}, gen, DType::f32).to_vector<float>();
  std::vector<float> phis(num_heads);
  for (int64_t h = 0; h < num_heads; ++h) phis[h] = (u[h] * 2.0f) * float(M_PI);
  return rope_mixed_freqs_from_angles(phis, head_dim, theta);
}

Tensor rope_swin_axial_freqs(int64_t num_heads, int64_t head_dim, double theta) {
  if (num_heads <= 0)
    throw std::invalid_argument("rope_swin_axial_freqs: expected num_heads > 0, got " + std::to_string(num_heads));
  return rope_mixed_freqs_from_angles(std::vector<float>(num_heads, 0.0f), head_dim, theta);
}

}  // namespace rv
