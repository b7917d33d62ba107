// attention_reference.cpp: the plain attention kernels, one (batch, head) at a time:
//   S = q k^T * scale + bias (masked -> -inf),  P = softmax_rows(S),  out = P v
// and, given dout,
//   dP = dout v^T,  dv = P^T dout,  dS = P * (dP - rowsum(P * dP)),  dq = dS k * scale,  dk = dS^T q * scale.
// Written as loops that mirror the formulas; the fused kernels are checked against these.
#include <cmath>
#include <limits>
#include <vector>

#include "engine/cpu/attention_kernel.h"
#include "engine/cpu/parallel.h"

namespace rv::cpu {

namespace {

template <class T>
T score_extra(const AttentionArgs<T>& a, int64_t b, int64_t h, int64_t i, int64_t j) {
  if (a.mask && !a.mask[b * a.mask_s[0] + h * a.mask_s[1] + i * a.mask_s[2] + j * a.mask_s[3]])
    return -std::numeric_limits<T>::infinity();
  return a.bias ? a.bias[b * a.bias_s[0] + h * a.bias_s[1] + i * a.bias_s[2] + j * a.bias_s[3]] : T(0);
}

}  // namespace

template <class T>
void attention_reference_forward(const AttentionArgs<T>& a, T* out, T* probs) {
  const int64_t Nq = a.Nq, Nk = a.Nk;
  parallel_for(a.B * a.NH, 1, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / a.NH, h = t % a.NH;
      const T* q = a.q + b * a.sq.sb + h * a.sq.sh;
      const T* k = a.k + b * a.sk.sb + h * a.sk.sh;
      const T* v = a.v + b * a.sv.sb + h * a.sv.sh;
      T* P = probs + t * Nq * Nk;
      T* o = out + t * Nq * a.HDv;
      for (int64_t i = 0; i < Nq; ++i) {
        T* p = P + i * Nk;
        T row_max = -std::numeric_limits<T>::infinity();
        for (int64_t j = 0; j < Nk; ++j) {
          T dot = 0;
          for (int64_t d = 0; d < a.HD; ++d) dot += q[i * a.sq.sn + d] * k[j * a.sk.sn + d];
          p[j] = dot * a.scale + score_extra(a, b, h, i, j);
          row_max = std::max(row_max, p[j]);
        }
        T* oi = o + i * a.HDv;
        for (int64_t d = 0; d < a.HDv; ++d) oi[d] = 0;
        if (row_max == -std::numeric_limits<T>::infinity()) {  // every key masked: zeros
          for (int64_t j = 0; j < Nk; ++j) p[j] = 0;
          continue;
        }
        T total = 0;
        for (int64_t j = 0; j < Nk; ++j) {
          p[j] = std::exp(p[j] - row_max);
          total += p[j];
        }
        for (int64_t j = 0; j < Nk; ++j) {
          p[j] /= total;
          for (int64_t d = 0; d < a.HDv; ++d) oi[d] += p[j] * v[j * a.sv.sn + d];
        }
      }
    }
  });
}

template <class T>
void attention_reference_backward(const AttentionArgs<T>& a, const T* probs, const T* dout, T* dq, T* dk, T* dv,
                                  T* dscores) {
  const int64_t Nq = a.Nq, Nk = a.Nk, HD = a.HD, HDv = a.HDv;
  parallel_for(a.B * a.NH, 1, [&](int64_t t0, int64_t t1) {
    std::vector<T> dS(Nq * Nk);
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t b = t / a.NH, h = t % a.NH;
      const T* q = a.q + b * a.sq.sb + h * a.sq.sh;
      const T* k = a.k + b * a.sk.sb + h * a.sk.sh;
      const T* v = a.v + b * a.sv.sb + h * a.sv.sh;
      const T* P = probs + t * Nq * Nk;
      const T* go = dout + t * Nq * HDv;
      // dS = P * (dP - rowsum(P * dP)), with dP = dout v^T
      for (int64_t i = 0; i < Nq; ++i) {
        T row_dot = 0;
        for (int64_t j = 0; j < Nk; ++j) {
          T dp = 0;
          for (int64_t d = 0; d < HDv; ++d) dp += go[i * HDv + d] * v[j * a.sv.sn + d];
          dS[i * Nk + j] = dp;
          row_dot += P[i * Nk + j] * dp;
        }
        for (int64_t j = 0; j < Nk; ++j) dS[i * Nk + j] = P[i * Nk + j] * (dS[i * Nk + j] - row_dot);
      }
      if (dv) {
        T* g = dv + t * Nk * HDv;
        for (int64_t j = 0; j < Nk; ++j)
          for (int64_t d = 0; d < HDv; ++d) {
            T acc = 0;
            for (int64_t i = 0; i < Nq; ++i) acc += P[i * Nk + j] * go[i * HDv + d];
            g[j * HDv + d] = acc;
          }
      }
      if (dq) {
        T* g = dq + t * Nq * HD;
        for (int64_t i = 0; i < Nq; ++i)
          for (int64_t d = 0; d < HD; ++d) {
            T acc = 0;
            for (int64_t j = 0; j < Nk; ++j) acc += dS[i * Nk + j] * k[j * a.sk.sn + d];
            g[i * HD + d] = acc * a.scale;
          }
      }
      if (dk) {
        T* g = dk + t * Nk * HD;
        for (int64_t j = 0; j < Nk; ++j)
          for (int64_t d = 0; d < HD; ++d) {
            T acc = 0;
            for (int64_t i = 0; i < Nq; ++i) acc += dS[i * Nk + j] * q[i * a.sq.sn + d];
            g[j * HD + d] = acc * a.scale;
          }
      }
      if (dscores)
        for (int64_t i = 0; i < Nq * Nk; ++i) dscores[t * Nq * Nk + i] = dS[i];
    }
  });
}

template void attention_reference_forward<float>(const AttentionArgs<float>&, float*, float*);
template void attention_reference_forward<double>(const AttentionArgs<double>&, double*, double*);
template void attention_reference_backward<float>(const AttentionArgs<float>&, const float*, const float*, float*,
                                                  float*, float*, float*);
template void attention_reference_backward<double>(const AttentionArgs<double>&, const double*, const double*,
                                                   double*, double*, double*, double*);

}  // namespace rv::cpu
