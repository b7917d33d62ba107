// bench_kernels.h: `ropevit bench kernels`: our CUDA kernels on ViT shapes, side by side with
// the vendor library (cuBLAS) and PyTorch's kernels (tools/bench_torch_kernels.py) on the same
// card, as times, GB/s or TFLOP/s, fractions of the card's limits and ratios.
#pragma once

namespace rv::bench {

// argv[0] is "kernels". Returns the process exit code.
int bench_kernels(int argc, char** argv);

}  // namespace rv::bench
