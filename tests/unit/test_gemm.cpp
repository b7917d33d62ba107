// cpu::gemm (OpenBLAS when built with it) and cpu::gemm_engine (always) against a naive triple
// loop: odd sizes (0, 1, and sizes that leave partial micro-tiles and K blocks), all four
// transpose combinations, alpha/beta (beta = 0 must not read C), padded leading dimensions,
// the batched variants, and independence from the thread count.
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "engine/cpu/gemm.h"
#include "engine/cpu/parallel.h"
#include "tests/support/check.h"

using namespace rv;

namespace {

template <class T>
std::vector<T> random_vec(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  std::vector<T> v(n);
  for (auto& x : v) x = T(u(g));
  return v;
}

// C = alpha * op(A) op(B) + beta * C, accumulated in long double.
template <class T>
void naive_gemm(bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
                int64_t ldb, T beta, T* C, int64_t ldc) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      long double acc = 0;
      for (int64_t k = 0; k < K; ++k) {
        T a = ta ? A[k * lda + i] : A[i * lda + k];
        T b = tb ? B[j * ldb + k] : B[k * ldb + j];
        acc += (long double)a * b;
      }
      C[i * ldc + j] = T(alpha * acc + (beta == T(0) ? 0.0L : (long double)beta * C[i * ldc + j]));
    }
}


// Runs fn on one case with padded leading dims and compares with the naive loop.
template <class T, class Fn>
void check_case(Fn fn, bool ta, bool tb, int64_t M, int64_t N, int64_t K, T alpha, T beta, int64_t pad,
                double tol) {
  const int64_t lda = std::max<int64_t>(1, (ta ? M : K) + pad), ldb = std::max<int64_t>(1, (tb ? K : N) + pad);
  const int64_t ldc = std::max<int64_t>(1, N + pad);
  const int64_t a_rows = ta ? K : M, b_rows = tb ? N : K;
  auto A = random_vec<T>(size_t(a_rows * lda), 1);
  auto B = random_vec<T>(size_t(b_rows * ldb), 2);
  auto C = random_vec<T>(size_t(M * ldc), 3);
  if (beta == T(0))  // beta = 0 must not read C: poison it
    for (auto& c : C) c = std::numeric_limits<T>::quiet_NaN();
  auto R = C;
  fn(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, C.data(), ldc);
  naive_gemm<T>(ta, tb, M, N, K, alpha, A.data(), lda, B.data(), ldb, beta, R.data(), ldc);
  double worst = 0;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      double d = std::fabs(double(C[i * ldc + j]) - double(R[i * ldc + j]));
      if (!(d <= tol * (1.0 + double(K)))) worst = std::max(worst, std::isnan(d) ? 1e30 : d);
    }
  INFO("ta=", ta, " tb=", tb, " M=", M, " N=", N, " K=", K, " alpha=", alpha, " beta=", beta, " pad=", pad);
  CHECK(worst == 0.0);
  // Padding between rows of C is never written.
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = N; j < ldc; ++j)
      if (!(std::isnan(C[i * ldc + j]) && std::isnan(R[i * ldc + j]))) CHECK(C[i * ldc + j] == R[i * ldc + j]);
}

template <class T, class Fn>
void check_all(Fn fn, double tol) {
  const int64_t sizes[][3] = {{0, 5, 3}, {4, 0, 3}, {3, 4, 0}, {1, 1, 1}, {1, 37, 19}, {29, 1, 7},
                              {13, 17, 1}, {33, 65, 300}, {97, 70, 513}, {200, 45, 31}};
  for (auto& s : sizes)
    for (int t = 0; t < 4; ++t) {
      const bool ta = t & 1, tb = t & 2;
      check_case<T>(fn, ta, tb, s[0], s[1], s[2], T(1), T(0), 0, tol);
      check_case<T>(fn, ta, tb, s[0], s[1], s[2], T(-0.5), T(1.5), 3, tol);
    }
  check_case<T>(fn, false, true, 7, 9, 11, T(0), T(2), 1, tol);  // alpha = 0 only scales C
}

}  // namespace

TEST_CASE("gemm_engine f32 matches the naive loop") {
  check_all<float>([](auto... a) { cpu::gemm_engine(a...); }, 2e-6);
}

TEST_CASE("gemm_engine f64 matches the naive loop") {
  check_all<double>([](auto... a) { cpu::gemm_engine(a...); }, 1e-14);
}

TEST_CASE("gemm (OpenBLAS when present) f32 and f64 match the naive loop") {
  INFO("gemm_uses_blas = ", cpu::gemm_uses_blas());
  check_all<float>([](auto... a) { cpu::gemm(a...); }, 2e-6);
  check_all<double>([](auto... a) { cpu::gemm(a...); }, 1e-14);
}

TEST_CASE("gemm_engine sizes spanning several row, column and K blocks") {
  check_case<float>([](auto... a) { cpu::gemm_engine(a...); }, false, false, 401, 4200, 520, 1.0f, 0.0f, 0, 2e-6);
  check_case<float>([](auto... a) { cpu::gemm_engine(a...); }, true, true, 250, 300, 700, 2.0f, 1.0f, 5, 2e-6);
}

TEST_CASE("gemm_engine does not depend on the thread count") {
#ifdef _OPENMP
  const int64_t M = 150, N = 170, K = 600;
  auto A = random_vec<float>(M * K, 4), B = random_vec<float>(K * N, 5);
  std::vector<float> C1(M * N), C2(M * N);
  const int saved = omp_get_max_threads();
  omp_set_num_threads(1);
  cpu::gemm_engine(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C1.data(), N);
  omp_set_num_threads(3);
  cpu::gemm_engine(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C2.data(), N);
  omp_set_num_threads(saved);
  CHECK(C1 == C2);
#endif
}

TEST_CASE("gemm rejects leading dimensions that are too small") {
  std::vector<float> A(12), B(12), C(12);
  CHECK_THROWS_WITH(cpu::gemm_engine(false, false, 3, 4, 4, 1.0f, A.data(), 3, B.data(), 4, 0.0f, C.data(), 4),
                    doctest::Contains("lda=3"));
  CHECK_THROWS_WITH(cpu::gemm(false, true, 3, 4, 4, 1.0f, A.data(), 4, B.data(), 3, 0.0f, C.data(), 4),
                    doctest::Contains("ldb=3"));
}

TEST_CASE("gemm_batched and gemm_strided_batched, small (parallel over batch) and large products") {
  for (int64_t M : {3, 130}) {
    const int64_t N = M + 2, K = M + 1, batch = 5;
    auto A = random_vec<float>(batch * M * K, 6), B = random_vec<float>(K * N, 7);
    std::vector<float> C(batch * M * N), R(batch * M * N);
    // B shared by every entry (offset 0), A transposed per entry.
    std::vector<int64_t> ao, bo(batch, 0), co;
    for (int64_t i = 0; i < batch; ++i) {
      ao.push_back(i * M * K);
      co.push_back(i * M * N);
    }
    cpu::gemm_batched<float>(true, false, M, N, K, 1.0f, A.data(), M, ao, B.data(), N, bo, 0.0f, C.data(), N, co);
    for (int64_t i = 0; i < batch; ++i)
      naive_gemm<float>(true, false, M, N, K, 1.0f, A.data() + ao[i], M, B.data(), N, 0.0f, R.data() + co[i], N);
    for (size_t i = 0; i < C.size(); ++i) CHECK(std::fabs(C[i] - R[i]) <= 1e-4f);
    std::fill(C.begin(), C.end(), 1.0f);
    std::fill(R.begin(), R.end(), 1.0f);
    cpu::gemm_strided_batched<float>(true, false, M, N, K, 2.0f, A.data(), M, M * K, B.data(), N, 0, 1.0f, C.data(),
                                     N, M * N, batch);
    for (int64_t i = 0; i < batch; ++i)
      naive_gemm<float>(true, false, M, N, K, 2.0f, A.data() + i * M * K, M, B.data(), N, 1.0f, R.data() + i * M * N,
                        N);
    for (size_t i = 0; i < C.size(); ++i) CHECK(std::fabs(C[i] - R[i]) <= 2e-4f);
  }
}
