// runtime_info.cpp: build facts.
#include "engine/runtime_info.h"

#ifdef RV_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace rv {

bool runtime_has_openmp() {
#ifdef _OPENMP
  return true;
#else
  return false;
#endif
}

const char* runtime_blas_name() {
#ifdef RV_HAVE_OPENBLAS
  return openblas_get_config();
#else
  return "none (engine GEMM)";
#endif
}

}  // namespace rv
