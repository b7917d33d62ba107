// attention_fused.cpp: flash-attention style CPU kernels (after Dao et al. 2022, "FlashAttention"):
// softmax(q k^T * scale + bias) v without ever holding an Nq x Nk matrix, forward and backward.
//
// ---- What is computed -----------------------------------------------------------------------
// Forward, per (batch, head) and block of BQ = 48 queries:
//   S = (scale q) k^T + bias (masked -> -inf)     a BQ x Nk block, whole key rows
//   P = e^(S - m) with m the row max, l = rowsum P, out = (P v) / l, lse = m + log l
// Only lse (B*NH*Nq numbers) is kept. A block holds whole key rows, so the softmax is exact in one
// pass (no online rescaling); its memory is BQ x Nk per thread, O(N) like flash attention.
// Backward, per (batch, head): P = e^(S - lse) is recomputed block by block, D_i = rowsum(dout_i *
// out_i) stands for rowsum(P_i * dP_i) (they are equal), and
//   dv += P^T dout,  dP = dout v^T,  dS = P * (dP - D),  dk += dS^T (scale q),  dq = scale dS k.
// One task owns a whole head, so dq, dk and dv each have one writer and S is computed once per
// block: 5 tile products (the forward has 2), no atomics, nothing that depends on the thread count.
// Heads that share bias-gradient entries (a bias broadcast over batch or heads, as Swin's
// (nW*NH, N, N) or (NH, N, N)) sum into per-group f64 copies added in a fixed order at the end.
//
// ---- Napkin math (f32, 2 cores with AVX-512, measured FMA peak ~230 GFLOP/s for both) ---------
// ViT-S/16, batch 32: q, k, v (32, 6, 197, 64). Forward 4 * N^2 * HD = 9.9 MFLOP per head, 1.9
//   GFLOP for the 192 heads, plus 7.5 M exps; backward 2.5x that (5 products). The inputs and
//   output are 4 x 9.7 MB, read/written once (~2 ms of memory time): compute-bound, so the work is
//   in the tile products. Per head the packed k^T (64 x 208) and v (197 x 64) are 50 KB each and
//   stay in L2 (2 MB per core) for the head's five query blocks; a block's scores (48 x 208 x 4 B
//   = 40 KB) stay in L1/L2 between the two products that use them.
// Swin-T stage 1, batch 32: (2048, 3, 49, 32), bias (3, 49, 49). Also 1.9 GFLOP, but 6144 tiny
//   heads and 4 x 38.5 MB of inputs and output: a single pass over memory costs about as much as
//   the arithmetic, so everything for a head (k^T 8 KB, v 6 KB, scores 49 x 64 x 4 B = 12.5 KB)
//   is made in L1 from one read of q, k, v, and the output is written once. 49 keys are padded to
//   64 (a vector multiple), which wastes 23% of the q k^T product; p v and the backward products
//   that run over keys use the true 49.
//
// ---- Why this tiling --------------------------------------------------------------------------
// Every product is C (M x N) (+)= A (M x K) B (K x N) on packed, padded, aligned buffers
// (attention_tiles.h): the micro-kernel keeps a 6 x 64 block of C in 24 AVX-512 registers and per
// step of K loads 4 vectors of B and broadcasts 6 scalars of A (folded into the FMAs), so it is
// bound by the FMA units, not by loads. For HD = 64 the q k^T and p v products are 64-wide strips
// (6 rows per kernel call); for HD = 32 they are 32 wide with 12 rows per call; other head dims
// use 16-lane strips of 1-4 vectors, so there is no separate slow path. k is packed transposed
// (HD x Nk) so that S = q k^T is a row-times-matrix product with no horizontal sums; the backward's
// products with P^T and dS^T read A through strides instead of transposing. BQ = 48 is a multiple
// of both 6 and 12, and keeps the score block near L1 for ViT.
//
// ---- Parallel decomposition ----------------------------------------------------------------------
// Forward tasks: (batch, head, query block), split in contiguous runs across threads; a thread
// packs k and v once per head it meets (consecutive blocks of one head reuse them). Backward
// tasks: one per head (or per group of heads sharing bias-gradient entries). The shapes here have
// 192 and 6144 heads for 2 threads. Scratch is per thread, allocated once per call, not per tile.
// Each output row is computed by the same sequence of operations whatever the split, so results
// are bitwise independent of the thread count.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>
#include <vector>

#include "engine/cpu/attention_kernel.h"
#include "engine/cpu/attention_tiles.h"
#include "engine/cpu/fast_exp.h"
#include "engine/cpu/parallel.h"

namespace rv::cpu {

namespace {

using tiles::V;
using tiles::W;

constexpr int64_t BQ = 48;  // queries per block: a multiple of the micro-kernel's 6 and 12 rows
constexpr int64_t kMinWork = 32768;  // multiply-adds below which a parallel region does not pay

template <class T>
constexpr T neg_inf() {
  return -std::numeric_limits<T>::infinity();
}

// e^x on a vector: fast_exp's polynomial for f32, std::exp per lane for f64 (checks, not speed).
template <class T>
inline V<T> vexp(V<T> x) {
  if constexpr (std::is_same_v<T, float>) {
    return fast_exp_vec<V<float>, tiles::Vec<float>::itype>(x);
  } else {
    for (int64_t i = 0; i < W<T>; ++i) x[i] = std::exp(x[i]);
    return x;
  }
}

// Scores of rows i0 .. i0+rows-1 (row r at s + r*ld): + bias, masked -> -inf, and -inf on the
// padding columns Nk .. ld-1, so that they get probability 0.
template <class T>
void finish_scores(const AttentionArgs<T>& a, int64_t b, int64_t h, int64_t i0, int64_t rows, T* s, int64_t ld) {
  for (int64_t r = 0; r < rows; ++r) {
    T* sr = s + r * ld;
    const int64_t i = i0 + r;
    if (a.bias) {
      const T* br = a.bias + b * a.bias_s[0] + h * a.bias_s[1] + i * a.bias_s[2];
      const int64_t s3 = a.bias_s[3];
      if (s3 == 1) {
        for (int64_t c = 0; c < a.Nk; ++c) sr[c] += br[c];
      } else {
        for (int64_t c = 0; c < a.Nk; ++c) sr[c] += br[c * s3];
      }
    }
    if (a.mask) {
      const bool* mr = a.mask + b * a.mask_s[0] + h * a.mask_s[1] + i * a.mask_s[2];
      for (int64_t c = 0; c < a.Nk; ++c)
        if (!mr[c * a.mask_s[3]]) sr[c] = neg_inf<T>();
    }
    for (int64_t c = a.Nk; c < ld; ++c) sr[c] = neg_inf<T>();
  }
}

// One score row of n (a multiple of W) entries -> e^(s - m) in place, m = the row max; returns
// m and the row sum l. A row of -inf (every key masked) becomes zeros with m = -inf, l = 0.
template <class T>
void exp_row(T* s, int64_t n, T& m_out, T& l_out) {
  V<T> mv = tiles::splat(neg_inf<T>());
  for (int64_t c = 0; c < n; c += W<T>) {
    const V<T> x = tiles::load(s + c);
    mv = x > mv ? x : mv;
  }
  const T m = n > 0 ? tiles::hmax<T>(mv) : neg_inf<T>();
  m_out = m;
  if (m == neg_inf<T>()) {
    std::fill(s, s + n, T(0));
    l_out = 0;
    return;
  }
  const V<T> ms = tiles::splat(m);
  V<T> sum{};
  for (int64_t c = 0; c < n; c += W<T>) {
    const V<T> e = vexp<T>(tiles::load(s + c) - ms);
    tiles::store(s + c, e);
    sum += e;
  }
  l_out = tiles::hsum<T>(sum);
}

// The padded sizes of one call: head dims and key count rounded up to whole vectors.
struct Dims {
  int64_t HDp, HDvp, Nkp;
};
template <class T>
Dims dims_of(const AttentionArgs<T>& a) {
  return {tiles::round_up<T>(a.HD), tiles::round_up<T>(a.HDv), tiles::round_up<T>(a.Nk)};
}

}  // namespace

template <class T>
void attention_fused_forward(const AttentionArgs<T>& a, T* out, T* lse) {
  const int64_t NH = a.NH, Nq = a.Nq, Nk = a.Nk, HD = a.HD, HDv = a.HDv;
  // Plain variables, not a structured binding: the lambdas below capture them, which clang < 16
  // (Debian 12 has clang 14, used by the fuzz build) refuses for bindings.
  const Dims dims = dims_of(a);
  const int64_t HDp = dims.HDp, HDvp = dims.HDvp, Nkp = dims.Nkp;
  const int64_t nqb = (Nq + BQ - 1) / BQ;
  // Tasks of tiny problems run on one thread: waking the team costs more than ~32k multiply-adds.
  const int64_t task_work = std::min(BQ, Nq) * std::max<int64_t>(Nkp, 1) * std::max<int64_t>(HD + HDv, 1);
  parallel_for(a.B * NH * nqb, std::max<int64_t>(1, kMinWork / task_work), [&](int64_t t0, int64_t t1) {
    // Per-thread scratch, sized once per call: the head's packed k^T (HD x Nkp) and v (Nk x HDvp),
    // and one query block's scaled q, scores and output accumulator.
    tiles::Buffer<T> kt_buf, v_buf, q_buf, s_buf, o_buf;
    T* kt = kt_buf.get(HD * Nkp);
    T* vp = v_buf.get(Nk * HDvp);
    T* qs = q_buf.get(BQ * HDp);
    T* s = s_buf.get(BQ * Nkp);
    T* o = o_buf.get(BQ * HDvp);
    T m[BQ], l[BQ];
    int64_t packed = -1;  // the (batch, head) whose k and v are in kt / vp
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t bh = t / nqb, b = bh / NH, h = bh % NH;
      const int64_t i0 = (t % nqb) * BQ, rows = std::min(BQ, Nq - i0);
      if (bh != packed) {
        tiles::pack_transposed(a.k + b * a.sk.sb + h * a.sk.sh, a.sk.sn, Nk, HD, kt, Nkp);
        tiles::pack_rows(a.v + b * a.sv.sb + h * a.sv.sh, a.sv.sn, Nk, HDv, T(1), vp, HDvp);
        packed = bh;
      }
      tiles::pack_rows(a.q + b * a.sq.sb + h * a.sq.sh + i0 * a.sq.sn, a.sq.sn, rows, HD, a.scale, qs, HDp);
      // S = (scale q) k^T + bias, then P = e^(S - rowmax) unnormalised, O = P v.
      tiles::tile_gemm(false, rows, Nkp, HD, qs, HDp, 1, kt, Nkp, s, Nkp);
      finish_scores(a, b, h, i0, rows, s, Nkp);
      for (int64_t r = 0; r < rows; ++r) exp_row(s + r * Nkp, Nkp, m[r], l[r]);
      tiles::tile_gemm(false, rows, HDvp, Nk, s, Nkp, 1, vp, HDvp, o, HDvp);
      const int64_t row0 = bh * Nq + i0;
      for (int64_t r = 0; r < rows; ++r) {
        T* dst = out + (row0 + r) * HDv;
        if (l[r] == T(0)) {  // every key masked: zeros, and lse = +inf makes the backward's P zero
          std::fill(dst, dst + HDv, T(0));
          lse[row0 + r] = std::numeric_limits<T>::infinity();
          continue;
        }
        const T inv = T(1) / l[r];
        for (int64_t d = 0; d < HDv; ++d) dst[d] = o[r * HDvp + d] * inv;
        lse[row0 + r] = m[r] + std::log(l[r]);
      }
    }
  });
}

template <class T>
void attention_fused_backward(const AttentionArgs<T>& a, const T* out, const T* lse, const T* dout,
                              const AttentionGrads<T>& g) {
  if (!g.dq && !g.dk && !g.dv && !g.dbias) return;
  const int64_t B = a.B, NH = a.NH, Nq = a.Nq, Nk = a.Nk, HD = a.HD, HDv = a.HDv;
  // Plain variables, not a structured binding: the lambdas below capture them, which clang < 16
  // (Debian 12 has clang 14, used by the fuzz build) refuses for bindings.
  const Dims dims = dims_of(a);
  const int64_t HDp = dims.HDp, HDvp = dims.HDvp, Nkp = dims.Nkp;

  // Who sums the bias gradient. Heads that share bias entries (a bias broadcast over batch or
  // heads) form one "owner"; its heads are cut into G groups of consecutive heads, each summing
  // into its own f64 copy of the bias gradient, and the G copies are added in a fixed order at
  // the end. G depends only on the shapes, so the result does not depend on the thread count.
  const bool own_b = !g.dbias || g.dbias_s[0] != 0, own_h = !g.dbias || g.dbias_s[1] != 0;
  const int64_t ob = own_b ? B : 1, oh = own_h ? NH : 1;
  const int64_t mb = own_b ? 1 : B, mh = own_h ? 1 : NH, members = mb * mh;
  int64_t dbias_numel = 0, G = 1;
  if (g.dbias) {
    dbias_numel = (g.dbias_s[0] ? B : 1) * (g.dbias_s[1] ? NH : 1) * (g.dbias_s[2] ? Nq : 1) * (g.dbias_s[3] ? Nk : 1);
    G = std::clamp<int64_t>(std::min<int64_t>({members, 16, (int64_t(1) << 20) / std::max<int64_t>(1, dbias_numel)}),
                            1, 16);
  }
  std::vector<double> partial(G > 1 ? G * dbias_numel : 0, 0.0);

  const int64_t task_work = std::max<int64_t>(1, members / G) * std::max<int64_t>(Nq, 1) *
                            std::max<int64_t>(Nkp, 1) * std::max<int64_t>(3 * HD + 2 * HDv, 1);
  parallel_for(ob * oh * G, std::max<int64_t>(1, kMinWork / task_work), [&](int64_t t0, int64_t t1) {
    // Per-thread scratch, sized once per call. Whole head: scaled q (Nq x HDp), k (Nk x HDp),
    // k^T (HD x Nkp), v^T (HDv x Nkp), dout (Nq x HDvp), D (Nq), and the dk, dv accumulators;
    // one query block: P, dP/dS (BQ x Nkp) and dq (BQ x HDp).
    tiles::Buffer<T> qs_b, kp_b, kt_b, vt_b, do_b, D_b, dk_b, dv_b, s_b, dp_b, dq_b;
    T* qs = qs_b.get(Nq * HDp);
    T* kp = kp_b.get(Nk * HDp);
    T* kt = kt_b.get(HD * Nkp);
    T* vt = vt_b.get(HDv * Nkp);
    T* dop = do_b.get(Nq * HDvp);
    T* D = D_b.get(Nq);
    T* dk = dk_b.get(Nk * HDp);
    T* dv = dv_b.get(Nk * HDvp);
    T* s = s_b.get(BQ * Nkp);
    T* dp = dp_b.get(BQ * Nkp);
    T* dqb = dq_b.get(BQ * HDp);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t owner = t / G, grp = t % G;
      double* dbias = g.dbias ? (G > 1 ? partial.data() + grp * dbias_numel : g.dbias) : nullptr;
      for (int64_t mi = grp * members / G; mi < (grp + 1) * members / G; ++mi) {
        const int64_t b = own_b ? owner / oh : mi / mh, h = own_h ? owner % oh : mi % mh;
        const int64_t bh = b * NH + h, row0 = bh * Nq;
        const T* k = a.k + b * a.sk.sb + h * a.sk.sh;
        const T* v = a.v + b * a.sv.sb + h * a.sv.sh;
        tiles::pack_rows(a.q + b * a.sq.sb + h * a.sq.sh, a.sq.sn, Nq, HD, a.scale, qs, HDp);
        tiles::pack_rows(k, a.sk.sn, Nk, HD, T(1), kp, HDp);
        tiles::pack_transposed(k, a.sk.sn, Nk, HD, kt, Nkp);
        tiles::pack_transposed(v, a.sv.sn, Nk, HDv, vt, Nkp);
        tiles::pack_rows(dout + row0 * HDv, HDv, Nq, HDv, T(1), dop, HDvp);
        // D_i = rowsum(dout_i * out_i), which equals rowsum(P_i * dP_i)
        for (int64_t i = 0; i < Nq; ++i) {
          const T* go = dout + (row0 + i) * HDv;
          const T* oi = out + (row0 + i) * HDv;
          T acc = 0;
          for (int64_t d = 0; d < HDv; ++d) acc += go[d] * oi[d];
          D[i] = acc;
        }
        std::fill(dk, dk + Nk * HDp, T(0));
        std::fill(dv, dv + Nk * HDvp, T(0));
        for (int64_t i0 = 0; i0 < Nq; i0 += BQ) {
          const int64_t rows = std::min(BQ, Nq - i0);
          // P = e^(S - lse), recomputed; lse = +inf (a fully masked row) gives 0.
          tiles::tile_gemm(false, rows, Nkp, HD, qs + i0 * HDp, HDp, 1, kt, Nkp, s, Nkp);
          finish_scores(a, b, h, i0, rows, s, Nkp);
          for (int64_t r = 0; r < rows; ++r) {
            T* sr = s + r * Nkp;
            const V<T> l = tiles::splat(lse[row0 + i0 + r]);
            for (int64_t c = 0; c < Nkp; c += W<T>) tiles::store(sr + c, vexp<T>(tiles::load(sr + c) - l));
          }
          // dv += P^T dout
          tiles::tile_gemm(true, Nk, HDvp, rows, s, 1, Nkp, dop + i0 * HDvp, HDvp, dv, HDvp);
          // dP = dout v^T, then dS = P * (dP - D) in place
          tiles::tile_gemm(false, rows, Nkp, HDv, dop + i0 * HDvp, HDvp, 1, vt, Nkp, dp, Nkp);
          for (int64_t r = 0; r < rows; ++r) {
            T* dr = dp + r * Nkp;
            const T* pr = s + r * Nkp;
            const V<T> Dr = tiles::splat(D[i0 + r]);
            for (int64_t c = 0; c < Nkp; c += W<T>)
              tiles::store(dr + c, tiles::load(pr + c) * (tiles::load(dr + c) - Dr));
          }
          // dk += dS^T (scale q);  dq = scale * dS k
          tiles::tile_gemm(true, Nk, HDp, rows, dp, 1, Nkp, qs + i0 * HDp, HDp, dk, HDp);
          if (g.dq) {
            tiles::tile_gemm(false, rows, HDp, Nk, dp, Nkp, 1, kp, HDp, dqb, HDp);
            for (int64_t r = 0; r < rows; ++r) {
              T* dst = g.dq + (row0 + i0 + r) * HD;
              for (int64_t d = 0; d < HD; ++d) dst[d] = dqb[r * HDp + d] * a.scale;
            }
          }
          if (dbias) {
            for (int64_t r = 0; r < rows; ++r) {
              double* db = dbias + b * g.dbias_s[0] + h * g.dbias_s[1] + (i0 + r) * g.dbias_s[2];
              const T* dr = dp + r * Nkp;
              const int64_t s3 = g.dbias_s[3];
              if (s3 == 1) {
                for (int64_t c = 0; c < Nk; ++c) db[c] += double(dr[c]);
              } else {
                for (int64_t c = 0; c < Nk; ++c) db[c * s3] += double(dr[c]);
              }
            }
          }
        }
        const int64_t krow0 = bh * Nk;
        if (g.dk)
          for (int64_t j = 0; j < Nk; ++j) std::copy(dk + j * HDp, dk + j * HDp + HD, g.dk + (krow0 + j) * HD);
        if (g.dv)
          for (int64_t j = 0; j < Nk; ++j) std::copy(dv + j * HDvp, dv + j * HDvp + HDv, g.dv + (krow0 + j) * HDv);
      }
    }
  });

  if (G > 1) {  // add the groups' copies in group order
    parallel_for(dbias_numel, 4096, [&](int64_t e0, int64_t e1) {
      for (int64_t e = e0; e < e1; ++e) {
        double acc = 0;
        for (int64_t grp = 0; grp < G; ++grp) acc += partial[grp * dbias_numel + e];
        g.dbias[e] += acc;
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
