// ms_deform_attn.cu: multi-scale deformable attention (Deformable DETR / DINO), forward and backward.
//
// Each (b, q, h) reads L*P points; a point at (x, y) of level l (H, W) reads the four pixels
// around (x W - 0.5, y H - 0.5) of the value map of head h, weighted bilinearly, zero outside
// (grid_sample bilinear, zeros, align_corners=False: the taps and weights are those of
// engine/ops/ms_deform_attn_sample.h, written again here for the device).
//
//   forward   one thread per output element (b, q, h, c), grid-stride. Neighbouring threads take
//             neighbouring channels c of the same (b, q, h), so they compute the same taps (cheap
//             arithmetic, the same location and weight loads, broadcast within the warp) and read
//             the four value rows coalesced (value is (B, S, NH, HD): a tap's HD channels are
//             contiguous). The sum runs over (l, p, tap) in the CPU's order, in registers; nothing
//             is shared, so no shared memory and no synchronisation.
//   backward  one warp per point (b, q, h, l, p), grid-stride over points with the whole warp moving
//             together (the loop bound is uniform in the warp, so the shuffles see every lane).
//             The lanes split the channels (c = lane, lane + 32, ...), read g and the four value
//             rows coalesced, and form per lane the partial sums of
//               d attn = sum_t w_t (g . v_t),  d ix = a sum_t (d w_t / d ix)(g . v_t),  d iy likewise;
//             a butterfly (__shfl_xor_sync) reduction adds the 32 partials in a fixed order, and
//             lane 0 writes the point's attention-weight and location gradients: deterministic, no
//             atomics. The value gradient is a scatter (points of many queries hit one pixel): each
//             lane adds a w_t g[c] to its channels of the four tap rows with atomicAdd. The order of
//             those atomic additions depends on scheduling, so the last bits of the f32 (and f64)
//             value gradient can differ from run to run (the reference CUDA implementations of this
//             op do the same); a deterministic gather would need the inverse map pixel -> points,
//             which changes with every step's locations.
#include "cuda/kernels/ms_deform_attn.h"

#include <stdexcept>
#include <string>

#include "cuda/kernels/nd_index.cuh"
#include "cuda/runtime/check.h"

namespace rv::cuda {

namespace {

constexpr int kThreads = 256;
constexpr int kWarp = 32;

template <class T>
struct DeviceTaps {
  int64_t index[4];  // h * W + w within the level for nw, ne, sw, se; -1 when outside
  T weight[4];
  T dwx[4];  // d weight / d ix
  T dwy[4];  // d weight / d iy
};

// The device copy of msda::bilinear_taps (engine/ops/ms_deform_attn_sample.h): the same formulas in
// the same order. False when no tap can be inside (also for NaN and infinite coordinates).
template <class T>
__device__ __forceinline__ bool device_taps(T x, T y, int64_t H, int64_t W, DeviceTaps<T>& t) {
  const T ix = x * T(W) - T(0.5), iy = y * T(H) - T(0.5);
  if (!(ix >= T(-2) && ix <= T(W + 1) && iy >= T(-2) && iy <= T(H + 1))) return false;
  const T fx0 = floor(ix), fy0 = floor(iy);
  const int64_t x0 = int64_t(fx0), y0 = int64_t(fy0);
  const T fx = ix - fx0, fy = iy - fy0;
  const T gx = T(1) - fx, gy = T(1) - fy;
  t.weight[0] = gy * gx;
  t.weight[1] = gy * fx;
  t.weight[2] = fy * gx;
  t.weight[3] = fy * fx;
  t.dwx[0] = -gy, t.dwx[1] = gy, t.dwx[2] = -fy, t.dwx[3] = fy;
  t.dwy[0] = -gx, t.dwy[1] = -fx, t.dwy[2] = gx, t.dwy[3] = fx;
  const bool x0_in = x0 >= 0 && x0 < W, x1_in = x0 + 1 >= 0 && x0 + 1 < W;
  const bool y0_in = y0 >= 0 && y0 < H, y1_in = y0 + 1 >= 0 && y0 + 1 < H;
  t.index[0] = (y0_in && x0_in) ? y0 * W + x0 : -1;
  t.index[1] = (y0_in && x1_in) ? y0 * W + x0 + 1 : -1;
  t.index[2] = (y1_in && x0_in) ? (y0 + 1) * W + x0 : -1;
  t.index[3] = (y1_in && x1_in) ? (y0 + 1) * W + x0 + 1 : -1;
  return t.index[0] >= 0 || t.index[1] >= 0 || t.index[2] >= 0 || t.index[3] >= 0;
}

template <class T>
__global__ void msda_forward_kernel(const T* __restrict__ value, const T* __restrict__ loc,
                                    const T* __restrict__ attn, T* __restrict__ out, MsdaDims d, int64_t n) {
  const int64_t row_stride = d.NH * d.HD;  // elements between value rows of consecutive tokens
  for (int64_t e = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; e < n; e += int64_t(gridDim.x) * blockDim.x) {
    const int64_t c = e % d.HD, r = e / d.HD;  // r = (b * Q + q) * NH + h
    const int64_t h = r % d.NH, b = r / (d.Q * d.NH);
    T acc = T(0);
    DeviceTaps<T> taps;
    for (int64_t l = 0; l < d.L; ++l) {
      const int64_t H = d.levels[3 * l], W = d.levels[3 * l + 1], start = d.levels[3 * l + 2];
      const T* vl = value + ((b * d.S + start) * d.NH + h) * d.HD + c;
      for (int64_t p = 0; p < d.P; ++p) {
        const int64_t pt = (r * d.L + l) * d.P + p;
        if (!device_taps(loc[2 * pt], loc[2 * pt + 1], H, W, taps)) continue;
        const T a = attn[pt];
#pragma unroll
        for (int k = 0; k < 4; ++k)
          if (taps.index[k] >= 0) acc += (a * taps.weight[k]) * vl[taps.index[k] * row_stride];
      }
    }
    out[e] = acc;
  }
}

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <class T>
__global__ void msda_backward_kernel(const T* __restrict__ g, const T* __restrict__ value, const T* __restrict__ loc,
                                     const T* __restrict__ attn, T* __restrict__ dvalue, T* __restrict__ dloc,
                                     T* __restrict__ dattn, MsdaDims d, int64_t points) {
  const int lane = int(threadIdx.x) % kWarp;
  const int64_t warps_per_block = blockDim.x / kWarp;
  const int64_t first = int64_t(blockIdx.x) * warps_per_block + threadIdx.x / kWarp;
  const int64_t step = int64_t(gridDim.x) * warps_per_block;
  const int64_t row_stride = d.NH * d.HD;
  const bool want_dots = dloc != nullptr || dattn != nullptr;
  // pt is the same for the 32 lanes of a warp, and so is every branch below that depends on it.
  for (int64_t pt = first; pt < points; pt += step) {
    const int64_t r = pt / (d.L * d.P);  // (b * Q + q) * NH + h
    const int64_t l = (pt / d.P) % d.L;
    const int64_t h = r % d.NH, b = r / (d.Q * d.NH);
    const int64_t H = d.levels[3 * l], W = d.levels[3 * l + 1], start = d.levels[3 * l + 2];
    DeviceTaps<T> taps;
    if (!device_taps(loc[2 * pt], loc[2 * pt + 1], H, W, taps)) {
      if (lane == 0) {
        if (dattn) dattn[pt] = T(0);
        if (dloc) dloc[2 * pt] = dloc[2 * pt + 1] = T(0);
      }
      continue;
    }
    const T a = attn[pt];
    const T* gr = g + r * d.HD;
    const int64_t base = ((b * d.S + start) * d.NH + h) * d.HD;  // row (b, start_l, h)
    T da = T(0), dix = T(0), diy = T(0);
    for (int64_t c = lane; c < d.HD; c += kWarp) {
      const T gc = gr[c];
#pragma unroll
      for (int k = 0; k < 4; ++k) {
        if (taps.index[k] < 0) continue;
        const int64_t off = base + taps.index[k] * row_stride + c;
        if (want_dots) {
          const T dot = gc * value[off];
          da += taps.weight[k] * dot;
          dix += taps.dwx[k] * dot;
          diy += taps.dwy[k] * dot;
        }
        // Order-dependent in the last bits (see the file comment).
        if (dvalue) atomicAdd(dvalue + off, (a * taps.weight[k]) * gc);
      }
    }
    if (want_dots) {
      da = warp_sum(da);
      dix = warp_sum(dix);
      diy = warp_sum(diy);
      if (lane == 0) {
        if (dattn) dattn[pt] = da;
        if (dloc) {
          dloc[2 * pt] = a * dix * T(W);
          dloc[2 * pt + 1] = a * diy * T(H);
        }
      }
    }
  }
}

template <class T>
void forward_as(const void* value, const void* loc, const void* attn, void* out, const MsdaDims& d,
                cudaStream_t stream) {
  const int64_t n = d.B * d.Q * d.NH * d.HD;
  if (n == 0) return;
  msda_forward_kernel<T><<<grid_for(n, kThreads), kThreads, 0, stream>>>(
      static_cast<const T*>(value), static_cast<const T*>(loc), static_cast<const T*>(attn), static_cast<T*>(out), d,
      n);
  RV_CUDA_CHECK_LAUNCH("msda_forward_kernel");
}

template <class T>
void backward_as(const void* g, const void* value, const void* loc, const void* attn, void* dvalue, void* dloc,
                 void* dattn, const MsdaDims& d, cudaStream_t stream) {
  const int64_t points = d.B * d.Q * d.NH * d.L * d.P;
  if (points == 0 || (!dvalue && !dloc && !dattn)) return;
  // One warp per point: points * 32 threads, at most 65536 blocks (the loop strides over the rest).
  msda_backward_kernel<T><<<grid_for(points * kWarp, kThreads), kThreads, 0, stream>>>(
      static_cast<const T*>(g), static_cast<const T*>(value), static_cast<const T*>(loc), static_cast<const T*>(attn),
      static_cast<T*>(dvalue), static_cast<T*>(dloc), static_cast<T*>(dattn), d, points);
  RV_CUDA_CHECK_LAUNCH("msda_backward_kernel");
}

}  // namespace

void launch_ms_deform_attn_forward(DType dtype, const void* value, const void* loc, const void* attn, void* out,
                                   const MsdaDims& d, cudaStream_t stream) {
  if (dtype == DType::f32)
    forward_as<float>(value, loc, attn, out, d, stream);
  else if (dtype == DType::f64)
    forward_as<double>(value, loc, attn, out, d, stream);
  else
    throw std::invalid_argument(std::string("ms_deform_attn: launcher takes f32 or f64, got ") + dtype_name(dtype));
}

void launch_ms_deform_attn_backward(DType dtype, const void* g, const void* value, const void* loc, const void* attn,
                                    void* dvalue, void* dloc, void* dattn, const MsdaDims& d, cudaStream_t stream) {
  if (dtype == DType::f32)
    backward_as<float>(g, value, loc, attn, dvalue, dloc, dattn, d, stream);
  else if (dtype == DType::f64)
    backward_as<double>(g, value, loc, attn, dvalue, dloc, dattn, d, stream);
  else
    throw std::invalid_argument(std::string("ms_deform_attn backward: launcher takes f32 or f64, got ") +
                                dtype_name(dtype));
}

}  // namespace rv::cuda
