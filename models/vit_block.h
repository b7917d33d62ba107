// vit_block.h: VitBlock, one pre-norm transformer block of a ViT, with optional LayerScale, drop
// path and RoPE on q and k (spec section 1, step 4):
//
//   x (B, N, C) -> x + drop_path(gamma_1 * Attn(LN1(x), rope))    (B, N, C)
//               -> x + drop_path(gamma_2 * Mlp(LN2(x)))           (B, N, C)
//
// Attn is nn::Attention (qkv Linear(C, 3C) -> NH heads of HD = C/NH -> proj Linear(C, C)); with
// RoPE, q and k of the patch tokens (all but the first `num_prefix_tokens`, i.e. the CLS token)
// are rotated by the given angles before q kᵀ. Mlp is fc1 (C -> hidden) -> GELU -> fc2.
//
// Names follow the timm class each registered model loads from, so checkpoints load unchanged:
//   LayerScaleNaming::timm_vit  timm's VisionTransformer Block (deit3_*, vit_*_patch16_224):
//       norm1, attn, ls1.gamma, norm2, mlp, ls2.gamma
//   LayerScaleNaming::eva       timm's EvaBlock (the RoPE-ViT port, = the official NV names):
//       gamma_1, gamma_2 (the block's own parameters, so first in the state dict), norm1, attn, norm2, mlp
// Without LayerScale (layer_scale_init = 0, the original ViT) there are no gammas at all.
#pragma once
#include <cstdint>
#include <memory>

#include "engine/nn/attention.h"
#include "engine/nn/dropout.h"
#include "engine/nn/mlp.h"
#include "engine/nn/norm.h"
#include "models/ape.h"

namespace rv::models {

// timm's LayerScale: x * gamma, one learned scale per channel. x (..., C).
class LayerScale : public nn::UnaryModule {
 public:
  Tensor gamma;  // (C), starts at init_value
  LayerScale(int64_t dim, double init_value);
  Tensor forward(const Tensor& x) override;
};

enum class LayerScaleNaming { timm_vit, eva };

struct VitBlockOptions {
  int64_t dim = 384;        // C
  int64_t num_heads = 6;    // NH
  double mlp_ratio = 4.0;   // hidden = int(C * mlp_ratio)
  bool qkv_bias = true;
  double norm_eps = 1e-6;
  double layer_scale_init = 1e-4;  // 0 = no LayerScale
  LayerScaleNaming naming = LayerScaleNaming::timm_vit;
  double attn_drop = 0.0, proj_drop = 0.0, drop_path = 0.0;
};

class VitBlock : public nn::Module {
 public:
  Tensor gamma_1, gamma_2;                 // eva naming with LayerScale: (C)
  std::shared_ptr<nn::LayerNorm> norm1;
  std::shared_ptr<nn::Attention> attn;
  std::shared_ptr<LayerScale> ls1;          // timm_vit naming with LayerScale
  std::shared_ptr<nn::DropPath> drop_path1;
  std::shared_ptr<nn::LayerNorm> norm2;
  std::shared_ptr<nn::Mlp> mlp;
  std::shared_ptr<LayerScale> ls2;
  std::shared_ptr<nn::DropPath> drop_path2;

  VitBlock(const VitBlockOptions& opt, Generator& gen);

  // x (B, N, C) -> (B, N, C). rope_angles: (NH or 1, N - num_prefix_tokens, HD/2), or undefined
  // for no RoPE; the first num_prefix_tokens tokens are not rotated.
  Tensor forward(const Tensor& x, const Tensor& rope_angles = Tensor(), int64_t num_prefix_tokens = 1);

  // ViTDet's window attention (detectron2's vit.py Block with window_size > 0): x (B, Gh*Gw, C),
  // patch tokens only, row-major over the grid (Gh, Gw). After norm1 the grid is zero-padded at
  // the bottom / right to multiples of `window`, cut into window x window squares that attend
  // within themselves (padding tokens included, as detectron2 does), put back and cropped; the
  // residual and the MLP are as in forward. rope_angles: the angles of one window's own grid
  // (window x window tokens), or undefined: RoPE scores depend on relative positions only, so a
  // window's local coordinates give the same attention as the global ones.
  Tensor forward_windowed(const Tensor& x, Grid grid, int64_t window, const Tensor& rope_angles = Tensor());

  const VitBlockOptions& options() const { return opt_; }
  std::string type_name() const override { return opt_.naming == LayerScaleNaming::eva ? "EvaBlock" : "Block"; }

 private:
  Tensor scale(const Tensor& branch, int which);  // gamma_i * branch, or branch without LayerScale
  VitBlockOptions opt_;
};

}  // namespace rv::models
