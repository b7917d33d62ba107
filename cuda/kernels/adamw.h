// adamw.h: launcher for the fused multi-tensor AdamW step on a CUDA device.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <vector>

#include "engine/dtype.h"

namespace rv::cuda {

// One parameter's pointers and per-step scalars, computed on the host in double exactly as
// engine/optim/adamw.cpp computes them (the kernel rounds each to the element type once).
struct AdamWEntry {
  void* param = nullptr;
  const void* grad = nullptr;
  void* exp_avg = nullptr;
  void* exp_avg_sq = nullptr;
  void* max_exp_avg_sq = nullptr;  // amsgrad only, else null
  int64_t numel = 0;
  int64_t chunk_begin = 0;  // set by the launcher
  double decay = 1.0;       // 1 - lr * weight_decay
  double w1 = 0.0;          // 1 - beta1
  double b2 = 0.0;          // beta2
  double w2 = 0.0;          // 1 - beta2
  double bc2_sqrt = 1.0;    // sqrt(1 - beta2^step)
  double eps = 0.0;
  double neg_step = 0.0;    // -(lr / (1 - beta1^step))
};

// Bytes of device scratch the table of `count` entries needs.
inline size_t adamw_table_bytes(size_t count) { return count * sizeof(AdamWEntry); }

// Updates every entry in one launch. dtype f32 or f64 (all entries); `table` is device scratch
// of adamw_table_bytes(entries.size()) bytes, which must stay allocated until the kernel has run
// (stream order: free it back to the allocator of `stream`).
void launch_adamw(std::vector<AdamWEntry> entries, DType dtype, void* table, cudaStream_t stream);

}  // namespace rv::cuda
