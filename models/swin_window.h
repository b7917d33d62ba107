// swin_window.h: the geometry of Swin's (shifted) windows: which window and shift a block uses
// at its stage resolution, the -100 mask of shifted windows, and the partition of a feature map
// into windows and back (spec/rope-vit.md sections 5 and 6).
//
//   x (B, H, W, C) --roll(-sh, -sw)--> --pad to (Hp, Wp)--> --partition--> (B*nW, wh*ww, C)
//   ... attention inside each window ...
//   (B*nW, wh*ww, C) --reverse--> (B, Hp, Wp, C) --crop to (H, W)--> --roll(+sh, +sw)--> x
//
// The window rule is timm's (SwinTransformerBlock._calc_window_shift), applied per axis: an axis
// whose resolution is at most the window size gets a window that spans it and no shift. On a
// square stage this is the MS rule "if min(stage_res) <= ws then ws = min(stage_res) and
// shift = 0" (at 224 the 7x7 last stage is one unshifted window); on a non-square stage it keeps
// the shift along the longer axis, as timm does.
//
// Sizes that do not divide into whole windows are padded with zeros at the bottom and right
// AFTER the roll (timm): the padded tokens are zero vectors after norm1, so their keys are the
// qkv bias. In an unshifted block they are not masked (timm does not mask them); in a shifted
// block the mask regions are taken on the padded map, exactly as timm's get_attn_mask.
#pragma once
#include <cstdint>

#include "engine/tensor.h"

namespace rv::models {

struct SwinWindow {
  int64_t wh, ww;  // window height and width (tokens)
  int64_t sh, sw;  // cyclic shift (rows, columns); 0 for W-MSA
  int64_t area() const { return wh * ww; }
  bool shifted() const { return sh != 0 || sw != 0; }
};

// The window of a block at stage resolution res_h x res_w with target window ws; `shifted` is
// true for the odd blocks of a stage (SW-MSA, shift ws // 2).
SwinWindow swin_block_window(int64_t res_h, int64_t res_w, int64_t ws, bool shifted);

// The shifted-window mask over the padded map (Hp, Wp) (multiples of the window):
// (nW, N, N) f32 with 0 where tokens i and j of a window come from the same region of the
// rolled map, and -100 elsewhere (not -inf). Undefined when the window is not shifted.
Tensor swin_shift_mask(int64_t Hp, int64_t Wp, const SwinWindow& w);

// x (B, Hp, Wp, C), Hp and Wp multiples of (wh, ww) -> (B*nW, wh*ww, C), window index
// b*nW + wr*(Wp/ww) + wc, tokens row-major inside a window. Differentiable (a view + copy).
Tensor swin_partition(const Tensor& x, int64_t wh, int64_t ww);
// The exact inverse: (B*nW, wh*ww, C) -> (B, Hp, Wp, C).
Tensor swin_reverse(const Tensor& windows, int64_t wh, int64_t ww, int64_t Hp, int64_t Wp);

}  // namespace rv::models
