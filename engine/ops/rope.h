// rope.h: rotary position embedding (RoPE) for 2-D images, as in RoPE-ViT (Heo et al. 2024).
//
// RoPE rotates each pair of head channels (2j, 2j+1) of q and k by an angle that depends on the
// token's position, so that q_i . k_j depends only on the offset p_i - p_j. The work splits in two
// ops, so that one code path serves both variants of the paper:
//
//   angles = rope_angles(freqs, pos);          // (NH or 1, N, HD/2)
//   q = rope_apply(q, angles, skip_tokens);    // (B, NH, N_total, HD), CLS left as is
//
//   RoPE-Axial: freqs is a fixed table (rope_axial_freqs): pairs j < HD/4 turn with x only and
//               pairs j >= HD/4 with y only.
//   RoPE-Mixed: freqs is a learned parameter (init: rope_mixed_freqs): every pair turns with
//               both x and y; gradients flow from rope_apply through rope_angles into freqs.
//
// Rotation convention: interleaved pairs (the LLaMA complex form, not rotate_half):
//   out[2j]   = x[2j] cos a - x[2j+1] sin a
//   out[2j+1] = x[2j] sin a + x[2j+1] cos a
// See /work/shared/spec/rope-vit.md sections 2, 3 and 5 for the reference numerics.
#pragma once
#include <cstdint>
#include <vector>

#include "engine/rng.h"
#include "engine/tensor.h"

namespace rv {

// Angles a[h, n, j] = fl(pos[n, 0] * freqs[0, h, j]) + fl(pos[n, 1] * freqs[1, h, j]) + ...
//   freqs: (A, NH, HD/2) float, A = number of position axes (2 for images: x then y)
//   pos:   (N, A) float positions (rope_grid_positions)
//   ->     (NH, N, HD/2), in the dtype freqs and pos promote to.
// Each product is rounded to the compute type, then the products are summed in axis order in
// that type (no fused multiply-add), as the reference computes in fp32. Differentiable w.r.t.
// freqs and pos.
Tensor rope_angles(const Tensor& freqs, const Tensor& pos);

// Rotates x by the angles, leaving the first `skip_tokens` tokens (the CLS token) untouched.
//   x:      (B, NH, N, HD) float, HD even; any strides (a q/k view of a qkv projection is fine)
//   angles: (NH or 1, N - skip_tokens, HD/2) float; a leading 1 is shared by every head
//   ->      (B, NH, N, HD), contiguous, dtype of x. bf16/f16 x is rotated in f32 and rounded
//           back once, as the reference upcasts q and k for the rotation.
// Differentiable w.r.t. x (a rotation by -a) and w.r.t. the angles.
Tensor rope_apply(const Tensor& x, const Tensor& angles, int64_t skip_tokens = 0);

// Token positions of a row-major gh x gw grid: (gh*gw, 2) f32 with [n, 0] = n mod gw (x, the
// column) and [n, 1] = n / gw (y, the row). Integers from 0, unscaled (spec section 2).
// For Swin, pass (ws, ws): window-local coordinates.
Tensor rope_grid_positions(int64_t gh, int64_t gw);

// The RoPE-Axial table for ViT (spec section 2), shape (2, num_heads, head_dim/2) f32:
// with K = head_dim/4 and w_k = 1 / theta^(4k/head_dim) computed in fp32,
//   pairs j <  K: (Fx, Fy) = (w_j, 0)       -> a = w_j * t_x
//   pairs j >= K: (Fx, Fy) = (0, w_{j-K})   -> a = w_{j-K} * t_y
// Adding fl(t * 0) = 0 to one product is exact, so rope_angles reproduces the reference's single
// fp32 multiply. Every head gets the same rows; pass num_heads = 1 to share one table.
// ViT uses theta = 100. head_dim must be a multiple of 4.
Tensor rope_axial_freqs(int64_t num_heads, int64_t head_dim, double theta = 100.0);

// The RoPE-Mixed initialisation (spec section 3), shape (2, num_heads, head_dim/2) f32:
// magnitudes m_k = 1 / theta^(4k/head_dim) (fp32), one angle phi = 2*pi*U[0,1) per head drawn from
// `gen`, then pairs j < K get m_j (cos phi, sin phi) and pairs j >= K get
// m_{j-K} (cos(phi + pi/2), sin(phi + pi/2)), all in fp32. Call once per layer. theta = 10.
Tensor rope_mixed_freqs(int64_t num_heads, int64_t head_dim, Generator& gen, double theta = 10.0);

// The same construction with a given angle per head (phis: num_heads values). rope_mixed_freqs
// draws the angles and calls this.
Tensor rope_mixed_freqs_from_angles(const std::vector<float>& phis, int64_t head_dim, double theta);

// The RoPE-Axial table of Swin (spec section 5): the mixed construction with phi = 0 and
// theta = 50, exactly as the reference builds it. It is axial up to fp32's cos(pi/2) = -4.37e-8,
// which leaves pairs j >= K a tiny x-frequency; kept so that results match the reference.
Tensor rope_swin_axial_freqs(int64_t num_heads, int64_t head_dim, double theta = 50.0);

}  // namespace rv
