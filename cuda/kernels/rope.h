// rope.h: launchers of the rotary position embedding kernels (rope.cu): the cos/sin table, the
// rotation of one or two tensors (q and k together), the gradient w.r.t. the angles, and the
// angle table rope_angles with its backward. See rope.cu for how each kernel works.
//
// Shapes (as in engine/ops/rope.h): x (B, NH, N, HD), angles (NHa, Nr, P) with NHa = NH or 1,
// Nr = N - skip, P = HD/2; freqs (A, NH, P), pos (N, A). All pointers are device pointers.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "engine/dtype.h"

namespace rv::cuda {

// Where a rotation reads one (B, NH, N, HD) tensor: element (b, h, n, d) is at
// data + b*sb + h*sh + n*sn + d (element strides; the channel dim is contiguous).
struct RopeView {
  const void* data = nullptr;
  int64_t sb = 0, sh = 0, sn = 0;
};

struct RopeDims {
  int64_t B = 0, NH = 0, N = 0, HD = 0;
  int64_t skip = 0;           // leading tokens (CLS) copied unrotated
  bool shared_heads = false;  // angles has a leading 1 and NH > 1: one angle row for every head
};

// table[2*i] = cos(angles[i]), table[2*i+1] = sin(angles[i]) for i < count, computed in double and
// rounded to f32 (what the CPU's f32 cos/sin give, bar the rare last-bit case).
void launch_rope_table(const float* angles, int64_t count, float* table, cudaStream_t stream);

// out[s] (contiguous (B, NH, N, HD), dtype `dtype`) = R(a) in[s] for s < count (1 or 2, one launch),
// or R(-a) in[s] when `inverse` (the backward w.r.t. x). Tokens n < skip are copied. dtype is f32
// or bf16 (f32 math, one rounding). `table` from launch_rope_table, laid out like the angles.
void launch_rope_rotate(DType dtype, const RopeView* in, void* const* out, int count, const RopeDims& d,
                        const float* table, bool inverse, cudaStream_t stream);

// The number of batch chunks (partial sums per output) that launch_rope_angle_grad uses for these
// dims and `count` tensors; it depends on the shape only, so the sums are the same on every run.
int64_t rope_angle_grad_chunks(const RopeDims& d, int count);

// dangles (NHa, Nr, P) f32 = sum over s < count, b (and h when shared_heads) of
//   g[2j+1] * out[2j] - g[2j] * out[2j+1],  out = R(a) x recomputed from x and the table,
// in double. g[s] and x[s] have dtype `dtype`. `partials`: device scratch of
// rope_angle_grad_chunks(d, count) * NHa * Nr * P doubles.
void launch_rope_angle_grad(DType dtype, const RopeView* g, const RopeView* x, int count, const RopeDims& d,
                            const float* table, double* partials, float* dangles, cudaStream_t stream);

// out[h, n, j] (NH, N, P) = sum over a, in axis order, of fl(pos[n, a] * freqs[a, h, j]), every
// product and sum rounded to f32 (no FMA): equal to the CPU bit for bit. Contiguous f32.
void launch_rope_angles(const float* freqs, const float* pos, float* out, int64_t A, int64_t NH, int64_t N,
                        int64_t P, cudaStream_t stream);

// dfreqs[a, h, j] = sum_n pos[n, a] g[h, n, j] and dpos[n, a] = sum_{h, j} freqs[a, h, j] g[h, n, j],
// each summed in double in the CPU's order by one thread (bit-identical to the CPU). Either output
// may be nullptr (not needed).
void launch_rope_angles_backward(const float* g, const float* freqs, const float* pos, float* dfreqs, float* dpos,
                                 int64_t A, int64_t NH, int64_t N, int64_t P, cudaStream_t stream);

}  // namespace rv::cuda
