#!/usr/bin/env python3
"""Writes the detection-neck fixtures for tests/fixtures/test_det_neck.cpp.

    python3 tools/make_det_neck_fixtures.py   # writes tests/fixtures/data/det_neck.safetensors

A plain PyTorch re-implementation (detectron2 and detrex are not installed here), written from their
code's semantics, with their state-dict names:
  LayerNorm2d           detectron2.layers.LayerNorm: per pixel over channels, biased variance, eps 1e-6
  Conv2d(norm=...)      detectron2.layers.Conv2d: conv (no bias with a norm), then a child `norm`
  SimpleFeaturePyramid  detectron2 modeling/backbone/vit.py: per scale 4 / 2 / 1 / 0.5 the layers
                        ConvT(2,2) [LN, GELU, ConvT(2,2)] | ConvT(2,2) | - | MaxPool(2,2), then 1x1 and
                        3x3 Conv2d with norm; registered as simfp_<log2 stride>; LastLevelMaxPool p6 =
                        max_pool2d(p5, kernel 1, stride 2)
  ChannelMapper         detrex modeling/neck/channel_mapper.py: convs.i = ConvNormAct(1x1, bias, GroupNorm),
                        extra_convs.j = ConvNormAct(3x3, stride 2, pad 1, bias, GroupNorm) on the last input
                        level (then on the previous extra output), no activation
Configs (input (2, 16, 5, 7), float32):
  a  SFP scales 4, 2, 1, 0.5, LN, top block, 16 -> 8 channels; then ChannelMapper [8]*5 -> 8, num_outs 6,
     GroupNorm(4, 8)
  b  SFP scales 2, 1, 0.5, no norm (convs with bias), no top block
Stored: <c>.state.<key> (weights), <c>.input, <c>.out.<i> (SFP levels), a.mapper.state.<key>,
a.mapper.out.<j>, and <c>.grad_input: d sum_i sum(out_i * w_i) / d input with w_i = <c>.gout.<i>
(for a: through the mapper's outputs). Seeded and single-threaded: a re-run writes the same bytes.
"""
import math
import os

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

torch.manual_seed(0)
torch.set_num_threads(1)


class LayerNorm2d(nn.Module):
    def __init__(self, c, eps=1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(c))
        self.bias = nn.Parameter(torch.zeros(c))
        self.eps = eps

    def forward(self, x):
        u = x.mean(1, keepdim=True)
        s = (x - u).pow(2).mean(1, keepdim=True)
        x = (x - u) / torch.sqrt(s + self.eps)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class ConvWithNorm(nn.Conv2d):
    def __init__(self, *args, norm=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.norm = norm

    def forward(self, x):
        x = super().forward(x)
        return self.norm(x) if self.norm is not None else x


class SimpleFeaturePyramid(nn.Module):
    def __init__(self, dim, out_channels, scales, norm, top_block, stride=16):
        super().__init__()
        self.top_block = top_block
        self.names = []
        use_bias = norm == ""
        make_norm = (lambda c: LayerNorm2d(c)) if norm == "LN" else (lambda c: None)
        for scale in scales:
            out_dim = dim
            if scale == 4.0:
                layers = [nn.ConvTranspose2d(dim, dim // 2, 2, 2), make_norm(dim // 2), nn.GELU(),
                          nn.ConvTranspose2d(dim // 2, dim // 4, 2, 2)]
                layers = [m for m in layers if m is not None]
                out_dim = dim // 4
            elif scale == 2.0:
                layers = [nn.ConvTranspose2d(dim, dim // 2, 2, 2)]
                out_dim = dim // 2
            elif scale == 1.0:
                layers = []
            else:
                layers = [nn.MaxPool2d(2, 2)]
            layers += [ConvWithNorm(out_dim, out_channels, 1, bias=use_bias, norm=make_norm(out_channels)),
                       ConvWithNorm(out_channels, out_channels, 3, padding=1, bias=use_bias, norm=make_norm(out_channels))]
            name = "simfp_%d" % int(math.log2(stride / scale))
            self.add_module(name, nn.Sequential(*layers))
            self.names.append(name)

    def forward(self, x):
        outs = [getattr(self, n)(x) for n in self.names]
        if self.top_block:
            outs.append(F.max_pool2d(outs[-1], kernel_size=1, stride=2, padding=0))
        return outs


class ConvNormAct(nn.Module):
    def __init__(self, conv, norm):
        super().__init__()
        self.conv = conv
        self.norm = norm

    def forward(self, x):
        return self.norm(self.conv(x))


class ChannelMapper(nn.Module):
    def __init__(self, in_channels, out_channels, num_outs, groups):
        super().__init__()
        self.convs = nn.ModuleList([ConvNormAct(nn.Conv2d(c, out_channels, 1, bias=True), nn.GroupNorm(groups, out_channels))
                                    for c in in_channels])
        self.extra_convs = nn.ModuleList()
        for j in range(len(in_channels), num_outs):
            cin = in_channels[-1] if j == len(in_channels) else out_channels
            self.extra_convs.append(ConvNormAct(nn.Conv2d(cin, out_channels, 3, stride=2, padding=1, bias=True),
                                                nn.GroupNorm(groups, out_channels)))

    def forward(self, xs):
        outs = [c(x) for c, x in zip(self.convs, xs)]
        last = xs[-1]
        for e in self.extra_convs:
            last = e(last)
            outs.append(last)
        return outs


def randomize(module):
    # Every parameter (norms included) random, so that a name mix-up cannot pass.
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.3)


def main():
    out = {}
    x = torch.randn(2, 16, 5, 7)
    for name, scales, norm, top in (("a", (4.0, 2.0, 1.0, 0.5), "LN", True), ("b", (2.0, 1.0, 0.5), "", False)):
        sfp = SimpleFeaturePyramid(16, 8, scales, norm, top)
        randomize(sfp)
        xi = x.clone().requires_grad_(True)
        levels = sfp(xi)
        for k, v in sfp.state_dict().items():
            out["%s.state.%s" % (name, k)] = v.contiguous()
        out["%s.input" % name] = x.clone()
        for i, v in enumerate(levels):
            out["%s.out.%d" % (name, i)] = v.detach().contiguous()
        final = levels
        if name == "a":
            mapper = ChannelMapper([8] * len(levels), 8, len(levels) + 1, 4)
            randomize(mapper)
            final = mapper(levels)
            for k, v in mapper.state_dict().items():
                out["a.mapper.state.%s" % k] = v.contiguous()
            for j, v in enumerate(final):
                out["a.mapper.out.%d" % j] = v.detach().contiguous()
        loss = 0
        for i, v in enumerate(final):
            w = torch.randn_like(v)
            out["%s.gout.%d" % (name, i)] = w
            loss = loss + (v * w).sum()
        loss.backward()
        out["%s.grad_input" % name] = xi.grad.contiguous()
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "data", "det_neck.safetensors")
    save_file(out, os.path.normpath(path))
    print("wrote", os.path.normpath(path), len(out), "tensors")


if __name__ == "__main__":
    main()
