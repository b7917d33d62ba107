// runtime_info.h: facts about how the engine was built, for `ropevit info` and benches.
#pragma once

namespace rv {

bool runtime_has_openmp();
const char* runtime_blas_name();  // "OpenBLAS 0.3.21 ..." or "none (engine GEMM)"

}  // namespace rv
