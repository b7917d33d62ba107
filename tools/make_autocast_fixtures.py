#!/usr/bin/env python3
"""Writes tests/fixtures/data/autocast_vit.safetensors: a tiny RoPE-Mixed ViT under bf16 autocast.

    python3 tools/make_autocast_fixtures.py

The model is timm's vit_small_patch16_rope_mixed_224 (the Eva class) reduced to C=64, 2 heads of
head dim 32, 2 blocks, MLP ratio 2, patch 8, 10 classes, at 32x32 (16 patches + CLS), batch 4, with the
hashed, RNG-free weights of tools/model_fixtures_vit.py (so rerunning gives the same bytes).

It runs forward + cross-entropy under torch.autocast("cpu", dtype=torch.bfloat16) and backward
outside it, as a training step does, with one change: torch's CPU autocast keeps layer_norm and
softmax in bf16, while its CUDA autocast runs them in fp32. ropevit applies the CUDA lists on every
device (engine/autocast.h), so layer_norm is wrapped here to cast its inputs to fp32 and run with
autocast off, exactly what the CUDA policy does (softmax only runs inside the fused
scaled_dot_product_attention here, which both policies run in bf16; cross_entropy is fp32 in both).
RoPE angles are fp32 in timm under autocast too (get_mixed_freqs), as in the engine.

Stored: the weights by timm key (w.<key>), input, labels, and for the autocast step: logits (bf16
values, stored as fp32), loss, and the gradients of every parameter (grad.<key>; fp32, as
autocast's master weights get them). The fp32 step's logits and loss (fp32.logits, fp32.loss) give
the size of the bf16 effect the tolerances are set against.
"""
import math
import os
import sys

import timm
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from model_fixtures_vit import hashed, param_value  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "data", "autocast_vit.safetensors")

DIM, DEPTH, HEADS, MLP_RATIO, PATCH, CLASSES, BATCH, IMG = 64, 2, 2, 2.0, 8, 10, 4, (32, 32)

_layer_norm = F.layer_norm


def layer_norm_fp32(x, normalized_shape, weight=None, bias=None, eps=1e-5):
    """CUDA autocast's layer_norm: inputs cast to fp32, run with autocast off, output fp32."""
    with torch.autocast("cpu", enabled=False):
        f = lambda t: t.float() if t is not None else None  # noqa: E731
        return _layer_norm(f(x), normalized_shape, f(weight), f(bias), eps)


def build():
    torch.manual_seed(0)  # unused by the weights (hashed), but keeps timm's init quiet and fixed
    model = timm.create_model("vit_small_patch16_rope_mixed_224", img_size=IMG, patch_size=PATCH, embed_dim=DIM, depth=DEPTH,
                              num_heads=HEADS, mlp_ratio=MLP_RATIO, num_classes=CLASSES)
    weights = {}
    with torch.no_grad():
        for i, (key, p) in enumerate(model.state_dict().items()):
            canon = key.replace("ls1.gamma", "gamma_1").replace("ls2.gamma", "gamma_2")
            w = param_value(canon, tuple(p.shape), 7919 * (i + 1) % 100003)
            p.copy_(w)
            weights[key] = w
    model.train()  # no dropout / drop path configured, so train() only matters for RoPE aug (off)
    return model, weights


def step(model, x, y, amp):
    model.zero_grad()
    if amp:
        F.layer_norm = layer_norm_fp32
        try:
            with torch.autocast("cpu", dtype=torch.bfloat16):
                logits = model(x)
                loss = F.cross_entropy(logits, y)
        finally:
            F.layer_norm = _layer_norm
        assert logits.dtype == torch.bfloat16 and loss.dtype == torch.float32
    else:
        logits = model(x)
        loss = F.cross_entropy(logits, y)
    loss.backward()
    grads = {k: p.grad.detach().clone() for k, p in model.named_parameters()}
    return logits.detach().float(), loss.detach().clone(), grads


def main():
    torch.set_num_threads(1)
    model, weights = build()
    x = hashed((BATCH, 3) + IMG, 4242)
    y = torch.tensor([3, 7, 0, 9], dtype=torch.int64)
    logits, loss, grads = step(model, x, y, amp=True)
    logits32, loss32, grads32 = step(model, x, y, amp=False)
    t = {"input": x, "labels": y, "logits": logits, "loss": loss, "fp32.logits": logits32, "fp32.loss": loss32}
    for k, w in weights.items():
        t["w." + k] = w
        assert grads[k].dtype == torch.float32
        t["grad." + k] = grads[k]
    worst = max((grads[k] - grads32[k]).abs().max().item() / grads32[k].abs().max().item() for k in grads)
    print(f"bf16 vs fp32 in torch: max |logit diff| {(logits - logits32).abs().max().item():.4f} "
          f"(max |logit| {logits32.abs().max().item():.3f}), loss {loss.item():.5f} vs {loss32.item():.5f}, "
          f"worst relative grad diff {worst:.4f}")
    meta = {"config": f"embed_dim={DIM} depth={DEPTH} num_heads={HEADS} mlp_ratio={MLP_RATIO} "
                      f"patch_size={PATCH} num_classes={CLASSES} img={IMG[0]}x{IMG[1]} timm={timm.__version__} torch={torch.__version__}"}
    save_file({k: v.contiguous() for k, v in t.items()}, OUT, metadata=meta)
    print("wrote", OUT, f"({os.path.getsize(OUT) / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
