// kernel_cases.h: the cases of `ropevit bench kernels`: each hand-written CUDA kernel on the
// shapes of ViT-S/16 and ViT-B/16 training at batch 256 and 224x224 (N = 197 tokens), plus
// square products. A case is a bench::Case (bench_harness.h): name, group, flops, bytes, and a
// factory that builds device inputs and returns closures that *launch* the work (they return
// before the GPU finishes; the timer in bench_kernels.cpp synchronises around batches of calls).
//
// Keys ("<group>/<name>") are shared with tools/bench_torch_kernels.py, which times PyTorch's
// own CUDA kernels on the same shapes; keep the two lists in step (`ropevit bench kernels --list`).
#pragma once
#include <vector>

#include "engine/device.h"
#include "train/bench/bench_harness.h"

namespace rv::bench {

// All kernel cases for `device` (inputs are built only when a case runs).
std::vector<Case> kernel_cases(Device device);

}  // namespace rv::bench
