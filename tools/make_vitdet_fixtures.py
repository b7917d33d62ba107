#!/usr/bin/env python3
"""Writes the ViTDet backbone-pass fixtures for tests/fixtures/test_vitdet.cpp.

    python3 tools/make_vitdet_fixtures.py   # writes tests/fixtures/data/vitdet.safetensors

The reference is timm's Eva (the RoPE-ViT port ropevit's ViT loads from), run the way detectron2's
ViTDet backbone (modeling/backbone/vit.py) runs its ViT, written out here since detectron2 is not
installed:
  - patch tokens only (no CLS token), laid out on the patch grid (Gh, Gw);
  - in a window block: norm1, zero-pad the grid at the bottom / right to multiples of the window,
    window_partition into (B * nW, ws * ws, C) (windows row-major, tokens row-major inside), the
    block's attention on each window, window_unpartition, crop, then the residual with gamma_1;
    the MLP half as usual;
  - a global block: the Eva block on the whole grid;
  - RoPE: timm's rope for the ws x ws grid inside windows (window-local coordinates), for the whole
    grid in global blocks;
  - the output is the last block's tokens as (B, C, Gh, Gw), without the final norm.
Reduced model: C 32, 2 heads (head dim 16), depth 3, MLP ratio 1, patch 16, LayerScale; input
(1, 3, 80, 112): a 5 x 7 grid; window 3 (padded to 6 x 9); block 1 global. Variants rope_mixed and
rope_axial. Stored: <v>.state.<key> (timm names), input, <v>.out, <v>.grad_input and
<v>.grad.<param> of a weighted sum of the output (weights gout). Weights from a fixed seed.
"""
import os

import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
torch.set_num_threads(1)

DIM, HEADS, DEPTH, WS, GLOBAL = 32, 2, 3, 3, {1}


def vitdet_forward(model, img, mixed):
    x = model.patch_embed(img)  # dynamic_img_size: (B, Gh, Gw, C)
    B, H, W, C = x.shape
    x = x.reshape(B, H * W, C)
    full = model.rope.get_embed(shape=(H, W))
    local = model.rope.get_embed(shape=(WS, WS))
    Hp, Wp = -(-H // WS) * WS, -(-W // WS) * WS
    for i, blk in enumerate(model.blocks):
        blk.attn.num_prefix_tokens = 0
        r_full = full[i] if mixed else full
        r_local = local[i] if mixed else local
        if i in GLOBAL:
            x = blk(x, rope=r_full)
            continue
        h = blk.norm1(x).reshape(B, H, W, C)
        h = F.pad(h, (0, 0, 0, Wp - W, 0, Hp - H))
        h = h.reshape(B, Hp // WS, WS, Wp // WS, WS, C).permute(0, 1, 3, 2, 4, 5).reshape(-1, WS * WS, C)
        a = blk.attn(h, rope=r_local)
        a = a.reshape(B, Hp // WS, Wp // WS, WS, WS, C).permute(0, 1, 3, 2, 4, 5).reshape(B, Hp, Wp, C)
        a = a[:, :H, :W, :].reshape(B, H * W, C)
        x = x + blk.drop_path1(blk.gamma_1 * a)
        x = x + blk.drop_path2(blk.gamma_2 * blk.mlp(blk.norm2(x)))
    return x.reshape(B, H, W, C).permute(0, 3, 1, 2)


def main():
    out = {}
    img = torch.randn(1, 3, 80, 112)
    out["input"] = img
    for variant, builder in (("rope_mixed", "vit_small_patch16_rope_mixed_224"),
                             ("rope_axial", "vit_small_patch16_rope_224")):
        model = timm.create_model(builder, img_size=(64, 64), embed_dim=DIM, depth=DEPTH, num_heads=HEADS,
                                  mlp_ratio=1.0, num_classes=0, dynamic_img_size=True)
        model.eval()
        with torch.no_grad():
            for k, p in model.named_parameters():
                if "norm" in k and k.endswith("weight") or "gamma" in k:
                    p.copy_(1.0 + 0.2 * torch.randn_like(p))
                elif k == "rope.freqs":
                    p.copy_(torch.randn_like(p))
                else:
                    p.copy_(torch.randn_like(p) * (0.1 if k.endswith("bias") else 1.5 / max(1, p[0].numel()) ** 0.5))
        for k, v in model.state_dict().items():
            out["%s.state.%s" % (variant, k)] = v.contiguous().clone()
        x = img.clone().requires_grad_(True)
        y = vitdet_forward(model, x, variant == "rope_mixed")
        gout = torch.randn_like(y)
        (y * gout).sum().backward()
        out["%s.out" % variant] = y.detach().contiguous()
        out["%s.gout" % variant] = gout
        out["%s.grad_input" % variant] = x.grad.contiguous()
        params = dict(model.named_parameters())
        names = ["blocks.0.attn.qkv.weight", "blocks.1.attn.qkv.weight", "blocks.2.mlp.fc1.weight", "blocks.0.gamma_1"]
        if variant == "rope_mixed":
            names.append("rope.freqs")
        for n in names:
            out["%s.grad.%s" % (variant, n)] = params[n].grad.contiguous().clone()
    path = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "data", "vitdet.safetensors"))
    save_file(out, path)
    print("wrote", path, len(out), "tensors")


if __name__ == "__main__":
    main()
