// grad_norm.h: launchers for the L2 norm of many tensors taken together and for scaling them
// by clip_grad_norm_'s coefficient, both one multi-tensor launch, on a CUDA device.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "engine/dtype.h"

namespace rv::cuda {

struct NormEntry {
  void* data = nullptr;  // contiguous elements (written only by launch_scale_by_norm)
  int64_t numel = 0;
  int64_t chunk_begin = 0;  // set by the launchers
};

// Device scratch the launchers need for these entries: the table, and (norm only) one double
// partial per chunk.
size_t norm_table_bytes(size_t count);
int64_t norm_partials(const std::vector<NormEntry>& entries);

// *norm (one double on the device) = sqrt(sum of squares of every element of every entry).
// dtype f32 or f64 (all entries). table: norm_table_bytes; partials: norm_partials doubles.
void launch_l2_norm(std::vector<NormEntry> entries, DType dtype, void* table, double* partials, double* norm,
                    cudaStream_t stream);

// Every element *= T(coef) with coef = max_norm / (*norm + 1e-6), when coef < 1 or NaN (else
// nothing is written). The norm is read on the device: no host sync.
void launch_scale_by_norm(std::vector<NormEntry> entries, DType dtype, void* table, const double* norm,
                          double max_norm, cudaStream_t stream);

}  // namespace rv::cuda
