#!/usr/bin/env python3
"""Writes the fixtures of checkpoint conversion (models/checkpoint_convert.h, `ropevit convert`).

    python3 tools/make_convert_fixtures.py     # needs torch, timm (1.0.31 was used), safetensors

It takes the reduced timm weights of tests/fixtures/data/model_vit.safetensors and
model_swin.safetensors (written by tools/make_model_fixtures.py, whose logits are the reference)
and renames / reshapes them into the layout of the official releases, exactly as their code names
its state dicts (spec/rope-vit.md section 9):

convert_nv_rope_mixed_ape_deit.safetensors   NV `rope_mixed_ape_deit_*_patch16_LS` (models/vit_rope.py):
    timm's `rope.freqs` (2, L, NH, HD/2) stored as NV's `freqs` (2, L, C/2) (heads outermost, NV's
    init_2d_freqs(...).view(2, -1) per layer), NV's position buffers `freqs_t_x`, `freqs_t_y`
    (Gh*Gw) = (column, row) added, LayerScale as `blocks.i.gamma_1/2`. Weights of model_vit's
    rope_mixed_ape variant.
convert_nv_deit.safetensors                  NV `deit_*_patch16_LS` (DeiT-III models_v2.py):
    `blocks.i.gamma_1/2` where timm's deit3 has `blocks.i.ls1/ls2.gamma`. model_vit's deit3 weights.
convert_nv_swin_rope_mixed.safetensors       NV `swin_rope_mixed_*_patch4_window7_224` (MS Swin layout):
    timm's `layers.{s+1}.downsample` stored as `layers.{s}.downsample`, `head.fc.*` as `head.*`, and
    the regenerated buffers NV saves: `attn.rope_t_x`, `attn.rope_t_y` (ws^2) and the shifted
    blocks' `attn_mask` (nW, N, N). model_swin's rope_mixed weights (32x32 input, window 4).
convert_nv_tiny.pth                          a real torch.save of an NV-named RoPE-Mixed ViT
    ({'model': state_dict, 'epoch': 3}): in_chans 1, C 64, 2 heads, depth 1, MLP ratio 1, 3 classes,
    32x32 input. For the test of the Python step of `ropevit convert`.
convert_expected.safetensors                 the numbers the conversion must reproduce:
    ape.deit3.<HxW>.<aa|plain>   model_vit's deit3 pos_embed (4x4 grid) resized by torch's
                                 F.interpolate (bicubic, align_corners False, antialias on / off)
                                 to 6x6 and 3x5; ape.vit.6x6.aa: the original ViT's, CLS row kept
                                 (timm's resample_abs_pos_embed)
    rpb.ws6.<key>                model_swin's rpb tables of stage 0 (window 4: (49, 1)) resized to
                                 window 6 ((121, 1)) by F.interpolate bicubic without antialias
    pth.input, pth.logits        input (2, 1, 32, 32) and timm's logits (2, 3) of the tiny model

Weights come from model_vit / model_swin or from a fixed integer hash, and torch runs on one thread,
so a rerun rewrites identical bytes (torch.save included: checked by rerunning and comparing).
"""
import json
import math
import os
import sys

import timm
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file
from timm.layers import resample_abs_pos_embed

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_fixtures_swin  # noqa: E402
import model_fixtures_vit  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "fixtures", "data")


def nv_positions(gh, gw):
    """NV's init_t_xy: t_x = column, t_y = row of each patch, row-major, float32."""
    t = torch.arange(gh * gw, dtype=torch.float32)
    return t % gw, torch.div(t, gw, rounding_mode="floor")


def timm_to_nv_vit(sd, grid):
    """A timm ViT state dict (Eva or VisionTransformer names) -> NV's names, in NV's order: own
    parameters (cls_token, pos_embed, freqs), own buffers (freqs_t_x, freqs_t_y), then children."""
    out = {"cls_token": sd["cls_token"]}
    if "pos_embed" in sd:
        out["pos_embed"] = sd["pos_embed"]
    if "rope.freqs" in sd:
        f = sd["rope.freqs"]  # (2, L, NH, HD/2)
        out["freqs"] = f.reshape(2, f.shape[1], -1).contiguous()  # (2, L, C/2)
        out["freqs_t_x"], out["freqs_t_y"] = nv_positions(*grid)
    for k, v in sd.items():
        if k in ("cls_token", "pos_embed", "rope.freqs"):
            continue
        out[k.replace(".ls1.gamma", ".gamma_1").replace(".ls2.gamma", ".gamma_2")] = v
    return out


def vit_fixtures(expected):
    with safe_open(os.path.join(DATA, "model_vit.safetensors"), "pt") as f:
        manifest = json.loads(f.metadata()["manifest"])
        stored = {k: f.get_tensor(k) for k in f.keys() if k.startswith("w.")}
    grid = [s // manifest["config"]["patch_size"] for s in manifest["config"]["img_size"]]

    def weights(variant):
        return {k: stored[w] for k, w in manifest["variants"][variant]["weights"].items()}

    for variant, name in (("rope_mixed_ape", "rope_mixed_ape_deit"), ("deit3", "deit")):
        nv = timm_to_nv_vit(weights(variant), grid)
        path = os.path.join(DATA, f"convert_nv_{name}.safetensors")
        save_file(nv, path, metadata={"about": f"NV {name}_*_patch16_LS layout, weights of model_vit.safetensors "
                                               f"variant {variant}"})  # one key: the header order is fixed
        print("wrote", path, f"({os.path.getsize(path) / 1e6:.2f} MB)")

    # pos_embed resized as images: (1, G*G, C) -> (1, C, G, G) -> F.interpolate -> (1, H'*W', C)
    pos = weights("deit3")["pos_embed"]
    C = pos.shape[-1]
    img = pos.reshape(1, grid[0], grid[1], C).permute(0, 3, 1, 2)
    for (h, w) in ((6, 6), (3, 5)):
        for aa in (True, False):
            r = F.interpolate(img, size=(h, w), mode="bicubic", align_corners=False, antialias=aa)
            expected[f"ape.deit3.{h}x{w}.{'aa' if aa else 'plain'}"] = r.permute(0, 2, 3, 1).reshape(1, h * w, C)
    expected["ape.vit.6x6.aa"] = resample_abs_pos_embed(weights("vit")["pos_embed"], (6, 6), grid,
                                                        num_prefix_tokens=1, antialias=True)


def timm_to_ms_swin(state, buffers):
    """timm's Swin names -> the MS / NV layout, with NV's saved buffers."""
    out = {}
    for k, v in state.items():
        if k.startswith("layers.") and ".downsample." in k:
            s = int(k.split(".")[1])
            k = f"layers.{s - 1}." + k.split(".", 2)[2]
        elif k.startswith("head.fc."):
            k = "head." + k[len("head.fc."):]
        out[k] = v
    for k, v in buffers.items():
        out[k] = v
    return out


def swin_fixtures(expected):
    with safe_open(os.path.join(DATA, "model_swin.safetensors"), "pt") as f:
        state = {k[len("rope_mixed.state."):]: f.get_tensor(k) for k in f.keys() if k.startswith("rope_mixed.state.")}
        rpb = {k[len("rpb.state."):]: f.get_tensor(k) for k in f.keys() if k.startswith("rpb.state.")}
    # NV's buffers: the RoPE positions of each window and the shifted-window masks, taken from the
    # same reference model (timm keeps them non-persistent; NV saves them).
    ref = model_fixtures_swin.small_model("rope_mixed", model_fixtures_swin.SIZES["train"], 0)
    buffers = {k: v.clone().contiguous() for k, v in ref.named_buffers()
               if k.endswith(("rope_t_x", "rope_t_y", "attn_mask"))}
    assert any(k.endswith("attn_mask") for k in buffers), "the fixture should carry a shifted-window mask"
    nv = timm_to_ms_swin(state, buffers)
    path = os.path.join(DATA, "convert_nv_swin_rope_mixed.safetensors")
    save_file(nv, path, metadata={"about": "NV swin_rope_mixed_*_patch4_window7_224 layout (MS Swin), weights of "
                                           "model_swin.safetensors rope_mixed"})
    print("wrote", path, f"({os.path.getsize(path) / 1e6:.2f} MB)")

    for k, t in rpb.items():  # stage 0 tables: window 4 -> 6
        if k.startswith("layers.0.") and k.endswith("relative_position_bias_table"):
            nh = t.shape[1]
            img = t.permute(1, 0).reshape(1, nh, 7, 7)
            r = F.interpolate(img, size=(11, 11), mode="bicubic", align_corners=False)
            expected[f"rpb.ws6.{k}"] = r.reshape(nh, 121).permute(1, 0)


TINY = dict(in_chans=1, embed_dim=64, num_heads=2, depth=1, mlp_ratio=1.0, num_classes=3, img_size=32)


def pth_fixture(expected):
    model = timm.create_model("vit_small_patch16_rope_mixed_224", **TINY)
    model.eval()
    with torch.no_grad():
        for i, (k, p) in enumerate(model.state_dict().items()):
            p.copy_(model_fixtures_vit.param_value(k, tuple(p.shape), 7919 * (i + 1) % 100003))
        x = model_fixtures_vit.hashed((2, 1, 32, 32), 4242)
        expected["pth.input"] = x
        expected["pth.logits"] = model(x)
        nv = timm_to_nv_vit({k: v.clone() for k, v in model.state_dict().items()}, (2, 2))
    path = os.path.join(DATA, "convert_nv_tiny.pth")
    torch.save({"model": nv, "epoch": 3}, path)
    print("wrote", path, f"({os.path.getsize(path) / 1e6:.2f} MB)")


def main():
    torch.set_num_threads(1)
    expected = {}
    vit_fixtures(expected)
    swin_fixtures(expected)
    pth_fixture(expected)
    path = os.path.join(DATA, "convert_expected.safetensors")
    save_file({k: v.detach().contiguous() for k, v in expected.items()}, path,
              metadata={"tiny_config": json.dumps(TINY, sort_keys=True)})
    print("wrote", path, f"({os.path.getsize(path) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
