// attention_fused.cpp: flash-attention style CPU kernels (Dao et al. 2022, "FlashAttention").
//
// Forward, one task per (batch, head, block of BQ queries): the queries are scaled once, then the
// keys stream through in blocks of BK. For each block the scores S = q k^T live only in a BQ x BK
// tile; an online softmax keeps per row the running max m and sum l, and rescales the output
// accumulator whenever m grows:
//   m' = max(m, max_j S_j),  l' = l e^(m - m') + sum_j e^(S_j - m'),  O' = O e^(m - m') + sum_j e^(S_j - m') v_j
// At the end out = O / l and the row's logsumexp m + log l is kept (B*NH*Nq numbers).
//
// Backward recomputes P = e^(S - lse) tile by tile, with D_i = rowsum(dout_i * out_i) standing in
// for rowsum(P * dP) (they are equal), so dS = P * (dP - D). It runs in two passes so that every
// gradient element has one owner and the result does not depend on the thread count:
//   pass 1, one task per (batch, head, key block): dk and dv of those keys, looping over all queries;
//   pass 2, one task per (batch, head, query block): dq of those queries, looping over all keys,
//           and the bias gradient. Queries that share bias entries (a bias broadcast over batch or
//           heads) are grouped into one task so their contributions are summed in a fixed order.
// This recomputes S and dP twice (7 tile products instead of 5) in exchange for no atomics.
//
// Tiles are row-major float arrays with a fixed width BK, so the inner loops run over a
// compile-time length the compiler vectorises; the k tile is stored transposed (HD x BK) so that
// S = q k^T is a sum of rows (no horizontal reductions).
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "engine/cpu/attention_kernel.h"
#include "engine/cpu/fast_exp.h"
#include "engine/cpu/parallel.h"

namespace rv::cpu {

namespace {

constexpr int64_t BQ = 64;  // queries per tile
constexpr int64_t BK = 64;  // keys per tile

template <class T>
constexpr T neg_inf() {
  return -std::numeric_limits<T>::infinity();
}

// Per-task scratch: tiles for one (query block, key block) pair.
template <class T>
struct Tiles {
  std::vector<T> qs, kt, vt, s, dp;
  Tiles(int64_t HD, int64_t HDv) : qs(BQ * HD), kt(HD * BK), vt(HDv * BK), s(BQ * BK), dp(BQ * BK) {}
};

// qs[r][:] = scale * q[i0 + r][:] for r < rows.
template <class T>
void load_scaled_queries(const AttentionArgs<T>& a, const T* q, int64_t i0, int64_t rows, T* qs) {
  for (int64_t r = 0; r < rows; ++r) {
    const T* src = q + (i0 + r) * a.sq.sn;
    T* dst = qs + r * a.HD;
    for (int64_t d = 0; d < a.HD; ++d) dst[d] = src[d] * a.scale;
  }
}

// dst[d][c] = src[j0 + c][d] for c < cols, 0 for the padding columns cols..BK-1.
template <class T>
void load_transposed(const T* src, int64_t sn, int64_t j0, int64_t cols, int64_t width, T* dst) {
  for (int64_t d = 0; d < width; ++d) std::fill(dst + d * BK + cols, dst + (d + 1) * BK, T(0));
  for (int64_t c = 0; c < cols; ++c) {
    const T* row = src + (j0 + c) * sn;
    for (int64_t d = 0; d < width; ++d) dst[d * BK + c] = row[d];
  }
}

// s[r][:] = qs[r] . kt (+ bias, masked -> -inf, padding columns -> -inf).
template <class T>
void score_tile(const AttentionArgs<T>& a, int64_t b, int64_t h, int64_t i0, int64_t rows, int64_t j0, int64_t cols,
                const T* qs, const T* kt, T* s) {
  for (int64_t r = 0; r < rows; ++r) {
    T acc[BK] = {};
    const T* qr = qs + r * a.HD;
    for (int64_t d = 0; d < a.HD; ++d) {
      const T qv = qr[d];
      const T* kr = kt + d * BK;
      for (int64_t c = 0; c < BK; ++c) acc[c] += qv * kr[c];
    }
    T* sr = s + r * BK;
    for (int64_t c = 0; c < BK; ++c) sr[c] = acc[c];
    const int64_t i = i0 + r;
    if (a.bias) {
      const T* br = a.bias + b * a.bias_s[0] + h * a.bias_s[1] + i * a.bias_s[2] + j0 * a.bias_s[3];
      if (a.bias_s[3] == 1) {
        for (int64_t c = 0; c < cols; ++c) sr[c] += br[c];
      } else {
        for (int64_t c = 0; c < cols; ++c) sr[c] += br[c * a.bias_s[3]];
      }
    }
    if (a.mask) {
      const bool* mr = a.mask + b * a.mask_s[0] + h * a.mask_s[1] + i * a.mask_s[2] + j0 * a.mask_s[3];
      for (int64_t c = 0; c < cols; ++c)
        if (!mr[c * a.mask_s[3]]) sr[c] = neg_inf<T>();
    }
    for (int64_t c = cols; c < BK; ++c) sr[c] = neg_inf<T>();
  }
}

// s[r][c] <- P = exp(s - lse_r), the recomputed probabilities (lse = +inf gives 0).
template <class T>
void probs_tile(int64_t rows, const T* lse, T* s) {
  for (int64_t r = 0; r < rows; ++r) {
    T* sr = s + r * BK;
    const T l = lse[r];
    for (int64_t c = 0; c < BK; ++c) sr[c] = fast_exp(sr[c] - l);
  }
}

// dp[r][c] = dout[r] . v[c]  (vt is the transposed v tile), then dS = P * (dP - D_r) in place.
template <class T>
void dscores_tile(const AttentionArgs<T>& a, int64_t rows, const T* go, const T* vt, const T* P, const T* Drow, T* dp) {
  for (int64_t r = 0; r < rows; ++r) {
    T acc[BK] = {};
    const T* gr = go + r * a.HDv;
    for (int64_t d = 0; d < a.HDv; ++d) {
      const T gv = gr[d];
      const T* vr = vt + d * BK;
      for (int64_t c = 0; c < BK; ++c) acc[c] += gv * vr[c];
    }
    const T* pr = P + r * BK;
    T* dr = dp + r * BK;
    const T D = Drow[r];
    for (int64_t c = 0; c < BK; ++c) dr[c] = pr[c] * (acc[c] - D);
  }
}

}  // namespace

template <class T>
void attention_fused_forward(const AttentionArgs<T>& a, T* out, T* lse) {
  const int64_t nqb = (a.Nq + BQ - 1) / BQ, HD = a.HD, HDv = a.HDv;
  parallel_for(a.B * a.NH * nqb, 1, [&](int64_t t0, int64_t t1) {
    Tiles<T> tl(HD, HDv);
    std::vector<T> o(BQ * HDv), m(BQ), l(BQ);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t qb = t % nqb, h = (t / nqb) % a.NH, b = t / (nqb * a.NH);
      const int64_t i0 = qb * BQ, rows = std::min(BQ, a.Nq - i0);
      const T* q = a.q + b * a.sq.sb + h * a.sq.sh;
      const T* k = a.k + b * a.sk.sb + h * a.sk.sh;
      const T* v = a.v + b * a.sv.sb + h * a.sv.sh;
      load_scaled_queries(a, q, i0, rows, tl.qs.data());
      std::fill(o.begin(), o.end(), T(0));
      std::fill(m.begin(), m.end(), neg_inf<T>());
      std::fill(l.begin(), l.end(), T(0));
      for (int64_t j0 = 0; j0 < a.Nk; j0 += BK) {
        const int64_t cols = std::min(BK, a.Nk - j0);
        load_transposed(k, a.sk.sn, j0, cols, HD, tl.kt.data());
        score_tile(a, b, h, i0, rows, j0, cols, tl.qs.data(), tl.kt.data(), tl.s.data());
        for (int64_t r = 0; r < rows; ++r) {
          T* sr = tl.s.data() + r * BK;
          T tile_max = neg_inf<T>();
          for (int64_t c = 0; c < BK; ++c) tile_max = std::max(tile_max, sr[c]);
          const T m_new = std::max(m[r], tile_max);
          if (m_new == neg_inf<T>()) continue;  // every key so far masked: nothing to add
          const T corr = fast_exp(m[r] - m_new);   // 0 on the first unmasked tile
          T sum = 0;
          for (int64_t c = 0; c < BK; ++c) {
            sr[c] = fast_exp(sr[c] - m_new);
            sum += sr[c];
          }
          l[r] = l[r] * corr + sum;
          m[r] = m_new;
          T* orow = o.data() + r * HDv;
          if (corr != T(1))
            for (int64_t d = 0; d < HDv; ++d) orow[d] *= corr;
          for (int64_t c = 0; c < cols; ++c) {
            const T p = sr[c];
            const T* vr = v + (j0 + c) * a.sv.sn;
            for (int64_t d = 0; d < HDv; ++d) orow[d] += p * vr[d];
          }
        }
      }
      const int64_t row0 = (b * a.NH + h) * a.Nq + i0;
      for (int64_t r = 0; r < rows; ++r) {
        T* dst = out + (row0 + r) * HDv;
        if (l[r] == T(0)) {  // every key masked
          std::fill(dst, dst + HDv, T(0));
          lse[row0 + r] = std::numeric_limits<T>::infinity();
          continue;
        }
        const T inv = T(1) / l[r];
        for (int64_t d = 0; d < HDv; ++d) dst[d] = o[r * HDv + d] * inv;
        lse[row0 + r] = m[r] + std::log(l[r]);
      }
    }
  });
}

template <class T>
void attention_fused_backward(const AttentionArgs<T>& a, const T* out, const T* lse, const T* dout,
                              const AttentionGrads<T>& g) {
  const int64_t B = a.B, NH = a.NH, Nq = a.Nq, Nk = a.Nk, HD = a.HD, HDv = a.HDv;
  const int64_t nqb = (Nq + BQ - 1) / BQ, nkb = (Nk + BK - 1) / BK;

  // D_i = rowsum(dout_i * out_i) = rowsum(P_i * dP_i)
  std::vector<T> Dv(B * NH * Nq);
  parallel_for(B * NH * Nq, 256, [&](int64_t r0, int64_t r1) {
    for (int64_t r = r0; r < r1; ++r) {
      T acc = 0;
      for (int64_t d = 0; d < HDv; ++d) acc += dout[r * HDv + d] * out[r * HDv + d];
      Dv[r] = acc;
    }
  });

  // Pass 1: dk, dv per (batch, head, key block).
  if (g.dk || g.dv) {
    parallel_for(B * NH * nkb, 1, [&](int64_t t0, int64_t t1) {
      Tiles<T> tl(HD, HDv);
      std::vector<T> dk(BK * HD), dv(BK * HDv);
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t kb = t % nkb, h = (t / nkb) % NH, b = t / (nkb * NH);
        const int64_t j0 = kb * BK, cols = std::min(BK, Nk - j0);
        const T* q = a.q + b * a.sq.sb + h * a.sq.sh;
        const T* k = a.k + b * a.sk.sb + h * a.sk.sh;
        const T* v = a.v + b * a.sv.sb + h * a.sv.sh;
        const int64_t bh_rows = (b * NH + h) * Nq;
        load_transposed(k, a.sk.sn, j0, cols, HD, tl.kt.data());
        load_transposed(v, a.sv.sn, j0, cols, HDv, tl.vt.data());
        std::fill(dk.begin(), dk.end(), T(0));
        std::fill(dv.begin(), dv.end(), T(0));
        for (int64_t i0 = 0; i0 < Nq; i0 += BQ) {
          const int64_t rows = std::min(BQ, Nq - i0);
          const T* go = dout + (bh_rows + i0) * HDv;
          load_scaled_queries(a, q, i0, rows, tl.qs.data());
          score_tile(a, b, h, i0, rows, j0, cols, tl.qs.data(), tl.kt.data(), tl.s.data());
          probs_tile(rows, lse + bh_rows + i0, tl.s.data());
          // dv[c] += sum_r P[r][c] dout[r]
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) {
              const T p = tl.s[r * BK + c];
              if (p == T(0)) continue;
              T* dvr = dv.data() + c * HDv;
              const T* gr = go + r * HDv;
              for (int64_t d = 0; d < HDv; ++d) dvr[d] += p * gr[d];
            }
          dscores_tile(a, rows, go, tl.vt.data(), tl.s.data(), Dv.data() + bh_rows + i0, tl.dp.data());
          // dk[c] += sum_r dS[r][c] qs[r]   (qs already carries the scale)
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t c = 0; c < cols; ++c) {
              const T ds = tl.dp[r * BK + c];
              if (ds == T(0)) continue;
              T* dkr = dk.data() + c * HD;
              const T* qr = tl.qs.data() + r * HD;
              for (int64_t d = 0; d < HD; ++d) dkr[d] += ds * qr[d];
            }
        }
        const int64_t krow0 = (b * NH + h) * Nk + j0;
        if (g.dk) std::copy(dk.begin(), dk.begin() + cols * HD, g.dk + krow0 * HD);
        if (g.dv) std::copy(dv.begin(), dv.begin() + cols * HDv, g.dv + krow0 * HDv);
      }
    });
  }

  // Pass 2: dq (and dbias). A task owns one (b', h', query block') of the bias gradient, where a
  // dim the bias broadcasts along collapses to a single owner that loops over all its members.
  if (g.dq || g.dbias) {
    const bool own_b = !g.dbias || g.dbias_s[0] != 0, own_h = !g.dbias || g.dbias_s[1] != 0;
    const bool own_q = !g.dbias || g.dbias_s[2] != 0;
    const int64_t ob = own_b ? B : 1, oh = own_h ? NH : 1, oq = own_q ? nqb : 1;
    parallel_for(ob * oh * oq, 1, [&](int64_t t0, int64_t t1) {
      Tiles<T> tl(HD, HDv);
      std::vector<T> dq(BQ * HD);
      for (int64_t t = t0; t < t1; ++t) {
        const int64_t tq = t % oq, th = (t / oq) % oh, tb = t / (oq * oh);
        for (int64_t b = own_b ? tb : 0; b < (own_b ? tb + 1 : B); ++b)
          for (int64_t h = own_h ? th : 0; h < (own_h ? th + 1 : NH); ++h)
            for (int64_t qb = own_q ? tq : 0; qb < (own_q ? tq + 1 : nqb); ++qb) {
              const int64_t i0 = qb * BQ, rows = std::min(BQ, Nq - i0);
              const T* q = a.q + b * a.sq.sb + h * a.sq.sh;
              const T* k = a.k + b * a.sk.sb + h * a.sk.sh;
              const T* v = a.v + b * a.sv.sb + h * a.sv.sh;
              const int64_t bh_rows = (b * NH + h) * Nq;
              const T* go = dout + (bh_rows + i0) * HDv;
              load_scaled_queries(a, q, i0, rows, tl.qs.data());
              std::fill(dq.begin(), dq.end(), T(0));
              for (int64_t j0 = 0; j0 < Nk; j0 += BK) {
                const int64_t cols = std::min(BK, Nk - j0);
                load_transposed(k, a.sk.sn, j0, cols, HD, tl.kt.data());
                load_transposed(v, a.sv.sn, j0, cols, HDv, tl.vt.data());
                score_tile(a, b, h, i0, rows, j0, cols, tl.qs.data(), tl.kt.data(), tl.s.data());
                probs_tile(rows, lse + bh_rows + i0, tl.s.data());
                dscores_tile(a, rows, go, tl.vt.data(), tl.s.data(), Dv.data() + bh_rows + i0, tl.dp.data());
                // dq[r] += sum_c dS[r][c] k[c]   (scaled at the end)
                for (int64_t r = 0; r < rows; ++r)
                  for (int64_t c = 0; c < cols; ++c) {
                    const T ds = tl.dp[r * BK + c];
                    if (ds == T(0)) continue;
                    const T* kr = k + (j0 + c) * a.sk.sn;
                    T* dqr = dq.data() + r * HD;
                    for (int64_t d = 0; d < HD; ++d) dqr[d] += ds * kr[d];
                  }
                if (g.dbias) {
                  for (int64_t r = 0; r < rows; ++r) {
                    double* db = g.dbias + b * g.dbias_s[0] + h * g.dbias_s[1] + (i0 + r) * g.dbias_s[2] +
                                 j0 * g.dbias_s[3];
                    const T* dr = tl.dp.data() + r * BK;
                    for (int64_t c = 0; c < cols; ++c) db[c * g.dbias_s[3]] += double(dr[c]);
                  }
                }
              }
              if (g.dq) {
                T* dst = g.dq + (bh_rows + i0) * HD;
                for (int64_t e = 0; e < rows * HD; ++e) dst[e] = dq[e] * a.scale;
              }
            }
      }
    });
  }
}

template void attention_fused_forward<float>(const AttentionArgs<float>&, float*, float*);
template void attention_fused_forward<double>(const AttentionArgs<double>&, double*, double*);
template void attention_fused_backward<float>(const AttentionArgs<float>&, const float*, const float*, const float*,
                                              const AttentionGrads<float>&);
template void attention_fused_backward<double>(const AttentionArgs<double>&, const double*, const double*,
                                               const double*, const AttentionGrads<double>&);

}  // namespace rv::cpu
