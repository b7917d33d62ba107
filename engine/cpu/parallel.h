// parallel.h: OpenMP helpers for CPU kernels. Work below a grain size runs on the calling
// thread, because waking a thread team costs more than a few thousand flops.
#pragma once
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace rv::cpu {

inline int num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

// Calls f(begin, end) on disjoint chunks covering [0, n). `grain` is the smallest chunk
// worth a thread. Chunks are contiguous and the split depends only on n and the thread
// count, so results do not depend on scheduling.
template <class F>
void parallel_for(int64_t n, int64_t grain, F&& f) {
  if (n <= 0) return;
#ifdef _OPENMP
  if (n > grain && num_threads() > 1 && !omp_in_parallel()) {
    int64_t max_chunks = (n + grain - 1) / grain;
#pragma omp parallel
    {
      int64_t nt = omp_get_num_threads();
      if (nt > max_chunks) nt = max_chunks;
      int64_t tid = omp_get_thread_num();
      if (tid < nt) {
        int64_t chunk = (n + nt - 1) / nt;
        int64_t b = tid * chunk, e = b + chunk < n ? b + chunk : n;
        if (b < e) f(b, e);
      }
    }
    return;
  }
#endif
  f(int64_t(0), n);
}

}  // namespace rv::cpu
