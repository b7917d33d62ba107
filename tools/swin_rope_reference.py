#!/usr/bin/env python3
"""A PyTorch reference for RoPE-Swin (RoPE-Axial and RoPE-Mixed Swin), written from the spec.

spec: /work/shared/spec/rope-vit.md section 5 (RoPE in Swin) and section 6 (Swin). timm has no
RoPE-Swin, so this module takes timm's SwinTransformer (its layout, names and window logic) and
swaps each block's WindowAttention for RopeWindowAttention:

    q <- q * d^-0.5 -> rotate q and k in fp32 (interleaved pairs, angle a = fl(t_x Fx) + fl(t_y Fy),
    window-local t_x = i mod ww, t_y = i // ww) -> q k^T -> (+ shift mask) -> softmax -> v -> proj

with one `rope_freqs` (2, NH, d/2) per block: an nn.Parameter for mixed (theta 10, one random
angle phi per head), a persistent buffer for axial (the same construction with phi = 0, theta 50).
There is no relative position bias table.

State-dict keys: timm's Swin keys, minus `attn.relative_position_bias_table`, plus
`layers.{s}.blocks.{b}.attn.rope_freqs` (it comes first within `attn`). NV's released checkpoints
(MS naming) map onto them with nv_to_timm_key: NV has `layers.{s}.downsample` at the END of stages
0-2 (timm: start of stages 1-3) and `head.*` where timm has `head.fc.*`; NV's `rope_t_x`, `rope_t_y`,
`relative_position_index`, `relative_coords_table` and `attn_mask` are recomputed, so dropped.

    python3 tools/swin_rope_reference.py      # prints the parameter counts of the six models
"""
import math
import re

import timm
import torch
import torch.nn as nn
from timm.models.swin_transformer import SwinTransformer, WindowAttention

SIZES = {
    "tiny": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    "small": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    "base": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
}


def init_2d_freqs(head_dim, num_heads, theta, rotate):
    """(2, NH, d/2) fp32: spec section 3 (mixed init) and section 5 (axial = phi 0, theta 50)."""
    mag = 1.0 / (theta ** (torch.arange(0, head_dim, 4)[: head_dim // 4].float() / head_dim))
    fx, fy = [], []
    for _ in range(num_heads):
        phi = torch.rand(1) * 2 * math.pi if rotate else torch.zeros(1)
        fx.append(torch.cat([mag * torch.cos(phi), mag * torch.cos(phi + math.pi / 2)]))
        fy.append(torch.cat([mag * torch.sin(phi), mag * torch.sin(phi + math.pi / 2)]))
    return torch.stack([torch.stack(fx), torch.stack(fy)])


def rotate_pairs(x, angles):
    """x (B, NH, N, d), angles (NH, N, d/2): interleaved pairs as complex numbers times e^{ia}, fp32."""
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    out = torch.view_as_real(xc * torch.polar(torch.ones_like(angles), angles)).flatten(-2)
    return out.type_as(x)


class RopeWindowAttention(WindowAttention):
    def __init__(self, dim, num_heads, window_size, qkv_bias, mixed, theta):
        super().__init__(dim, num_heads, window_size=window_size, qkv_bias=qkv_bias)
        del self.relative_position_bias_table  # RoPE replaces the relative position bias
        freqs = init_2d_freqs(dim // num_heads, num_heads, theta, rotate=mixed)
        if mixed:
            self.rope_freqs = nn.Parameter(freqs)
        else:
            self.register_buffer("rope_freqs", freqs, persistent=True)
        wh, ww = self.window_size
        idx = torch.arange(wh * ww, dtype=torch.float32)
        self.register_buffer("rope_t_x", idx % ww, persistent=False)
        self.register_buffer("rope_t_y", torch.div(idx, ww, rounding_mode="floor"), persistent=False)

    def angles(self):
        # (NH, N, d/2): fl(t_x Fx) + fl(t_y Fy), each product rounded to fp32, autocast off.
        fx, fy = self.rope_freqs[0].float(), self.rope_freqs[1].float()
        return self.rope_t_x[None, :, None] * fx[:, None, :] + self.rope_t_y[None, :, None] * fy[:, None, :]

    def forward(self, x, mask=None):
        B_, N, C = x.shape
        q, k, v = self.qkv(x).reshape(B_, N, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4).unbind(0)
        q = q * self.scale  # scaled first, then rotated (NV order)
        a = self.angles()
        q, k = rotate_pairs(q, a), rotate_pairs(k, a)
        attn = q @ k.transpose(-2, -1)
        if mask is not None:
            nw = mask.shape[0]
            attn = attn.view(-1, nw, self.num_heads, N, N) + mask.unsqueeze(1).unsqueeze(0)
            attn = attn.view(-1, self.num_heads, N, N)
        attn = self.attn_drop(attn.softmax(-1))
        x = (attn @ v).transpose(1, 2).reshape(B_, N, -1)
        return self.proj_drop(self.proj(x))


def swin(pos_embed, img_size=224, window_size=None, num_classes=1000, **arch):
    """timm's SwinTransformer; pos_embed 'rpb' keeps timm's attention, 'rope_axial' / 'rope_mixed'
    swap in RopeWindowAttention. window_size None = min(img) // 32 (spec section 5)."""
    hw = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
    ws = window_size or min(hw) // 32
    model = SwinTransformer(img_size=hw, patch_size=4, window_size=ws, num_classes=num_classes, **arch)
    if pos_embed != "rpb":
        mixed = pos_embed == "rope_mixed"
        for stage in model.layers:
            for blk in stage.blocks:
                old = blk.attn
                blk.attn = RopeWindowAttention(old.dim, old.num_heads, blk.window_size, old.qkv.bias is not None,
                                               mixed, 10.0 if mixed else 50.0)
                blk.attn.qkv.load_state_dict(old.qkv.state_dict())
                blk.attn.proj.load_state_dict(old.proj.state_dict())
    return model


def nv_to_timm_key(key):
    """An NV RoPE-Swin checkpoint key -> this layout's key (None: a buffer that is recomputed)."""
    if re.search(r"(rope_t_[xy]|relative_position_index|relative_coords_table|attn_mask)$", key):
        return None
    key = re.sub(r"^layers\.(\d+)\.downsample", lambda m: f"layers.{int(m.group(1)) + 1}.downsample", key)
    return re.sub(r"^head\.", "head.fc.", key)


if __name__ == "__main__":
    for pe in ("rope_axial", "rope_mixed"):
        for size, arch in SIZES.items():
            m = swin(pe, **arch)
            print(f"swin_{size}_patch4_window7_{pe}_224", sum(p.numel() for p in m.parameters()))
