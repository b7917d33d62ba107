#!/usr/bin/env python3
"""Writes a small PyTorch model's state dict, inputs and outputs for ropevit's layer modules.

    python3 tools/make_layer_fixtures.py     # writes tests/fixtures/data/layers.safetensors

The model holds one of each layer of engine/nn (Linear, LayerNorm, Conv2d, BatchNorm2d with and
without momentum, GroupNorm, and timm-style Mlp and Attention, written here with timm's child
names and order so that the script needs only torch). Keys in the file:
    state.<name>     the model's state dict (parameters and buffers, incl. num_batches_tracked)
    in.<name>        inputs
    out.<name>       outputs in eval mode
    train.<name>     after one more training-mode step of the BatchNorms: their outputs and buffers
The C++ side (tests/unit/test_layers.cpp) builds the same structure, loads state.* with
load_state_dict and compares. Values come from a fixed integer hash, not torch's RNG, so a
re-run reproduces the inputs and weights bit for bit.
"""
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "data", "layers.safetensors")


def hashed(shape, seed, lo=-1.0, hi=1.0):
    """Values in [lo, hi) from a multiplicative hash of (index, seed): no RNG state involved."""
    n = math.prod(shape)
    idx = torch.arange(n, dtype=torch.int64)
    h = (idx * 2654435761 + seed * 40503 + 12345) % 4294967296
    h = (h ^ (h >> 13)) * 1274126177 % 4294967296
    u = h.to(torch.float64) / 4294967296.0
    return (lo + (hi - lo) * u).reshape(shape).to(torch.float32)


class Mlp(nn.Module):
    """timm.layers.Mlp with its defaults (norm_layer=None -> Identity)."""

    def __init__(self, in_features, hidden_features, out_features=None, drop=0.0):
        super().__init__()
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = nn.GELU()
        self.drop1 = nn.Dropout(drop)
        self.norm = nn.Identity()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x):
        return self.drop2(self.fc2(self.norm(self.drop1(self.act(self.fc1(x))))))


class Attention(nn.Module):
    """timm.layers.Attention without qk_norm, with an optional additive bias on the scores."""

    def __init__(self, dim, num_heads, qkv_bias=False):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.q_norm = nn.Identity()
        self.k_norm = nn.Identity()
        self.attn_drop = nn.Dropout(0.0)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(0.0)

    def forward(self, x, bias=None):
        B, N, C = x.shape
        qkv = self.qkv(x).reshape(B, N, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv.unbind(0)
        q, k = self.q_norm(q), self.k_norm(k)
        x = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
        return self.proj_drop(self.proj(x.transpose(1, 2).reshape(B, N, C)))


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 8)
        self.ln = nn.LayerNorm(8)
        self.mlp = Mlp(8, 12)
        self.attn = Attention(8, 2, qkv_bias=True)
        self.conv = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.bn_cma = nn.BatchNorm2d(4, momentum=None)
        self.gn = nn.GroupNorm(2, 4)


def main():
    torch.set_grad_enabled(False)
    net = Net()
    # Hashed values for every parameter (LayerNorm / GroupNorm / BatchNorm affines too, so that a
    # load that silently kept ones and zeros would fail).
    for i, (name, p) in enumerate(net.named_parameters()):
        scale = 1.0 / math.sqrt(p.shape[1] if p.dim() > 1 else 4)
        lo, hi = (0.5, 1.5) if name.endswith("weight") and p.dim() == 1 else (-scale, scale)
        p.copy_(hashed(p.shape, 100 + i, lo, hi))

    tokens = hashed((2, 5, 6), 1)         # (B, N, C_in)
    image = hashed((3, 3, 6, 6), 2, -2, 2)  # (B, C, H, W)
    bias = hashed((2, 5, 5), 3)            # (NH, N, N)

    # Give the BatchNorms running statistics from three training steps.
    net.train()
    for s in range(3):
        x = net.conv(hashed((3, 3, 6, 6), 10 + s, -2, 2) * (1 + s))
        net.bn(x)
        net.bn_cma(x)
    net.eval()

    t = {}
    for k, v in net.state_dict().items():
        t["state." + k] = v.clone().contiguous()
    t["in.tokens"] = tokens
    t["in.image"] = image
    t["in.bias"] = bias
    h = net.fc(tokens)
    t["out.fc"] = h
    h = net.ln(h)
    t["out.ln"] = h
    t["out.mlp"] = net.mlp(h)
    t["out.attn"] = net.attn(h)
    t["out.attn_bias"] = net.attn(h, bias)
    c = net.conv(image)
    t["out.conv"] = c
    t["out.bn"] = net.bn(c)
    t["out.bn_cma"] = net.bn_cma(c)
    t["out.gn"] = net.gn(c)

    # One more training step of each BatchNorm on the conv output.
    net.train()
    for name in ("bn", "bn_cma"):
        bn = getattr(net, name)
        t[f"train.{name}.out"] = bn(c)
        t[f"train.{name}.running_mean"] = bn.running_mean.clone()
        t[f"train.{name}.running_var"] = bn.running_var.clone()
        t[f"train.{name}.num_batches_tracked"] = bn.num_batches_tracked.clone()

    save_file({k: v.contiguous() for k, v in t.items()}, OUT, metadata={"format": "pt"})
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes, {len(t)} tensors)")


if __name__ == "__main__":
    main()
