// adamw.cu: the fused AdamW step: every parameter of the optimizer in one launch.
//
// Layout (multi_tensor.cuh): the host builds a table of (param, grad, exp_avg, exp_avg_sq,
// max_exp_avg_sq pointers, numel, per-step scalars) once per step and copies it to the device
// (~100 bytes per parameter, ~15 KB for ViT-S); block b updates chunk b of 16384 elements of
// the parameter it finds in the table. Each element is independent, read once and written once
// (p, m, v, and vmax with amsgrad), so the kernel is a pure stream at memory bandwidth: 28 bytes
// per f32 element (36 with amsgrad), ~0.6 GB for ViT-S's 22M parameters.
//
// Arithmetic: the same operations in the same order as engine/optim/adamw.cpp, each one spelled
// with an rn:: intrinsic so nvcc cannot fuse a multiply and an add, and the scalars rounded to
// the element type from the same doubles (sqrt and / are correctly rounded on both sides). The
// one difference left: GCC may fuse the CPU's lerp and v * b2 + w2 * g * g into FMAs (it
// contracts C++ under -march=native), so m and v can differ from the CPU's by an ulp.
#include "cuda/kernels/adamw.h"

#include <stdexcept>
#include <string>

#include "cuda/kernels/exact_math.cuh"
#include "cuda/kernels/multi_tensor.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

using multi_tensor::kChunk;
using multi_tensor::kThreads;

template <class T>
__global__ void adamw_kernel(const AdamWEntry* __restrict__ entries, int count) {
  const AdamWEntry& e = entries[multi_tensor::find_entry(entries, count, blockIdx.x)];
  const int64_t begin = (int64_t(blockIdx.x) - e.chunk_begin) * kChunk;
  const int64_t end = min(e.numel, begin + kChunk);
  T* __restrict__ p = static_cast<T*>(e.param);
  const T* __restrict__ g = static_cast<const T*>(e.grad);
  T* __restrict__ m = static_cast<T*>(e.exp_avg);
  T* __restrict__ v = static_cast<T*>(e.exp_avg_sq);
  T* __restrict__ vmax = static_cast<T*>(e.max_exp_avg_sq);
  const T decay = T(e.decay), w1 = T(e.w1), b2 = T(e.b2), w2 = T(e.w2), bc2_sqrt = T(e.bc2_sqrt), eps = T(e.eps),
          neg_step = T(e.neg_step);
  const bool lerp_low = fabs(double(w1)) < 0.5;  // detail::lerp's branch, uniform per parameter
  for (int64_t k = begin + threadIdx.x; k < end; k += kThreads) {
    const T gk = g[k];
    const T pk = rn::mul(p[k], decay);
    const T mo = m[k];
    // lerp(m, g, w1): m + w1 * (g - m), or g - (g - m) * (1 - w1) when |w1| >= 0.5
    const T mk = lerp_low ? rn::add(mo, rn::mul(w1, rn::sub(gk, mo)))
                          : rn::sub(gk, rn::mul(rn::sub(gk, mo), rn::sub(T(1), w1)));
    T vk = rn::add(rn::mul(v[k], b2), rn::mul(rn::mul(w2, gk), gk));
    m[k] = mk;
    v[k] = vk;
    if (vmax) {
      const T vm = vmax[k];
      vk = vm > vk ? vm : vk;
      vmax[k] = vk;
    }
    const T denom = rn::add(rn::div(rn::sqrt(vk), bc2_sqrt), eps);
    p[k] = rn::add(pk, rn::div(rn::mul(neg_step, mk), denom));
  }
}

}  // namespace

void launch_adamw(std::vector<AdamWEntry> entries, DType dtype, void* table, cudaStream_t stream) {
  if (entries.empty()) return;
  const int64_t chunks = multi_tensor::assign_chunks(entries, "AdamW");
  if (chunks == 0) return;
  multi_tensor::upload(table, entries, stream);
  const auto* t = static_cast<const AdamWEntry*>(table);
  const int count = int(entries.size());
  if (dtype == DType::f32) {
    adamw_kernel<float><<<unsigned(chunks), kThreads, 0, stream>>>(t, count);
  } else if (dtype == DType::f64) {
    adamw_kernel<double><<<unsigned(chunks), kThreads, 0, stream>>>(t, count);
  } else {
    throw std::invalid_argument(std::string("AdamW: launch_adamw takes f32 or f64, got ") + dtype_name(dtype));
  }
  RV_CUDA_CHECK_LAUNCH("adamw_kernel");
}

}  // namespace rv::cuda
