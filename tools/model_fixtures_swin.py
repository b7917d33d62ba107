"""The Swin part of tools/make_model_fixtures.py: key lists and parity fixtures for models/swin*.

Writes
  tests/fixtures/data/swin_timm_keys.json    per registered Swin: parameter count and the ordered
      state-dict keys with shapes (timm's create_model for the RPB models, tools/swin_rope_reference.py
      for the RoPE ones). Read by tests/unit/test_swin_registry.cpp.
  tests/fixtures/data/model_swin.safetensors  for each variant V in rpb, rope_axial, rope_mixed, a
      reduced Swin (embed 32, depths 2-2, heads 1-2 so d = 32 as in Swin-T/S/B, window 4, 10 classes):
        V.state.<key>           its state dict (random weights, fixed seed)
        V.<size>.input          (2, 3, H, W) images; V.<size>.target (2,) int64 classes
        V.<size>.logits         (2, 10); V.<size>.loss the mean cross-entropy
        V.<size>.grad.<key>     d loss / d parameter for a few parameters
      at the sizes train 32x32, wide 32x48 (non-square: a shift along one axis only at stage 1)
      and pad 40x40 (10x10 and 5x5 maps: padded windows), all with the same weights;
      and resize.in / resize.out3 / resize.out6: a (49, 2) RPB table resized from window 4 to 3
      and 6 with bicubic (align_corners False, no antialias), as NV's loader does.
  Read by tests/fixtures/test_swin_model.cpp.
Single-threaded and seeded, so a re-run rewrites identical bytes.
"""
import json
import os

import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

import swin_rope_reference as ref

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "tests", "fixtures", "data")

SMALL = dict(embed_dim=32, depths=(2, 2), num_heads=(1, 2), drop_path_rate=0.0)
WINDOW = 4
SIZES = {"train": (32, 32), "wide": (32, 48), "pad": (40, 40)}
GRADS = {
    "rpb": ["patch_embed.proj.weight", "layers.0.blocks.1.attn.qkv.weight", "layers.1.downsample.reduction.weight",
            "layers.0.blocks.0.attn.relative_position_bias_table",
            "layers.1.blocks.1.attn.relative_position_bias_table"],
    "rope_axial": ["patch_embed.proj.weight", "layers.0.blocks.1.attn.qkv.weight",
                   "layers.1.downsample.reduction.weight", "layers.1.blocks.1.attn.qkv.weight"],
    "rope_mixed": ["patch_embed.proj.weight", "layers.0.blocks.1.attn.qkv.weight",
                   "layers.1.downsample.reduction.weight", "layers.0.blocks.1.attn.rope_freqs",
                   "layers.1.blocks.0.attn.rope_freqs"],
}


def key_lists():
    out = {}
    for pe in ("rpb", "rope_axial", "rope_mixed"):
        for size, arch in ref.SIZES.items():
            if pe == "rpb":
                name = f"swin_{size}_patch4_window7_224"
                model = timm.create_model(name)
            else:
                name = f"swin_{size}_patch4_window7_{pe}_224"
                model = ref.swin(pe, **arch)
            sd = model.state_dict()
            out[name] = {"params": sum(p.numel() for p in model.parameters()),
                         "keys": [[k, list(v.shape)] for k, v in sd.items()]}
    with open(os.path.join(DATA, "swin_timm_keys.json"), "w") as f:
        json.dump(out, f, indent=0, sort_keys=True)
        f.write("\n")


def small_model(pe, hw, seed):
    torch.manual_seed(seed)
    return ref.swin(pe, img_size=hw, window_size=WINDOW, num_classes=10, **SMALL)


def parity():
    tensors = {}
    for vi, pe in enumerate(("rpb", "rope_axial", "rope_mixed")):
        model = small_model(pe, SIZES["train"], 100 + vi)
        with torch.no_grad():  # move away from the init so that every part shows in the logits
            g = torch.Generator().manual_seed(200 + vi)
            for n, p in model.named_parameters():
                if "relative_position_bias_table" in n:
                    p.copy_(torch.randn(p.shape, generator=g) * 0.5)
                elif n == "head.fc.weight":  # logits of order 1, so that 1e-4 is a tight tolerance
                    p.mul_(50.0)
                elif n.endswith("bias") or "norm" in n:
                    p.add_(torch.randn(p.shape, generator=g) * 0.1)
        state = {k: v.clone().contiguous() for k, v in model.state_dict().items()}
        for k, v in state.items():
            tensors[f"{pe}.state.{k}"] = v
        for si, (tag, hw) in enumerate(SIZES.items()):
            m = small_model(pe, hw, 100 + vi)
            m.load_state_dict(state)
            m.train()  # no dropout or drop path in this config; train() is what the C++ test runs
            g = torch.Generator().manual_seed(300 + 10 * vi + si)
            x = torch.randn((2, 3) + hw, generator=g)
            t = torch.randint(0, 10, (2,), generator=g)
            logits = m(x)
            loss = F.cross_entropy(logits, t)
            loss.backward()
            params = dict(m.named_parameters())
            p = f"{pe}.{tag}."
            tensors[p + "input"], tensors[p + "target"] = x, t
            tensors[p + "logits"], tensors[p + "loss"] = logits.detach(), loss.detach().reshape(1)
            for k in GRADS[pe]:
                tensors[p + "grad." + k] = params[k].grad.clone()
    g = torch.Generator().manual_seed(400)
    table = torch.randn(49, 2, generator=g)
    tensors["resize.in"] = table
    for ws in (3, 6):
        img = table.permute(1, 0).reshape(1, 2, 7, 7)
        s = 2 * ws - 1
        tensors[f"resize.out{ws}"] = F.interpolate(img, size=(s, s), mode="bicubic",
                                                   align_corners=False).reshape(2, s * s).permute(1, 0).contiguous()
    save_file({k: v.contiguous() for k, v in tensors.items()}, os.path.join(DATA, "model_swin.safetensors"))


def main():
    torch.set_num_threads(1)
    key_lists()
    parity()
