#!/usr/bin/env python3
"""Writes the sine position-embedding fixtures for tests/fixtures/test_det_position.cpp.

    python3 tools/make_det_pos_fixtures.py   # writes tests/fixtures/data/det_position.safetensors

The reference follows detrex (detrex/layers/position_embedding.py: PositionEmbeddingSine and
get_sine_pos_embed), the DINO settings: num_pos_feats 128 (here also 16), temperature 10000,
normalize True, scale 2 pi, eps 1e-6, offset -0.5; written here in the same float32 steps.
Stored: mask (2, 5, 7) bool with a padded bottom-right region in image 1 and none in image 0,
pos.F<F> (2, 2F, 5, 7) for F in 16 and 128 (DINO), plus the non-normalised variant pos_raw.F16
(normalize False, offset 0); points (6, 2, 4) in [0, 1], sine.F<F> (6, 2, 4F) with exchange_xy,
sine_noxy.F16 without.
"""
import math
import os

import torch
from safetensors.torch import save_file

torch.manual_seed(0)


def sine_mask(mask, F, temperature=10000, normalize=True, scale=2 * math.pi, eps=1e-6, offset=-0.5):
    not_mask = ~mask
    y = not_mask.cumsum(1, dtype=torch.float32)
    x = not_mask.cumsum(2, dtype=torch.float32)
    if normalize:
        y = (y + offset) / (y[:, -1:, :] + eps) * scale
        x = (x + offset) / (x[:, :, -1:] + eps) * scale
    d = torch.arange(F, dtype=torch.float32)
    d = temperature ** (2 * torch.div(d, 2, rounding_mode="floor") / F)
    px, py = x[..., None] / d, y[..., None] / d
    B, H, W = mask.shape
    px = torch.stack((px[..., 0::2].sin(), px[..., 1::2].cos()), dim=4).view(B, H, W, -1)
    py = torch.stack((py[..., 0::2].sin(), py[..., 1::2].cos()), dim=4).view(B, H, W, -1)
    return torch.cat((py, px), dim=3).permute(0, 3, 1, 2).contiguous()


def sine_points(pos, F, temperature=10000, exchange_xy=True):
    d = torch.arange(F, dtype=torch.float32)
    d = temperature ** (2 * torch.div(d, 2, rounding_mode="floor") / F)

    def one(v):
        s = v * (2 * math.pi) / d
        return torch.stack((s[:, :, 0::2].sin(), s[:, :, 1::2].cos()), dim=3).flatten(2)

    parts = [one(v) for v in pos.split([1] * pos.shape[-1], dim=-1)]
    if exchange_xy:
        parts[0], parts[1] = parts[1], parts[0]
    return torch.cat(parts, dim=2).contiguous()


def main():
    out = {}
    mask = torch.zeros(2, 5, 7, dtype=torch.bool)
    mask[1, 3:, :] = True
    mask[1, :, 5:] = True
    out["mask"] = mask
    for F in (16, 128):
        out["pos.F%d" % F] = sine_mask(mask, F)
    out["pos_raw.F16"] = sine_mask(mask, 16, normalize=False, offset=0.0)
    pts = torch.rand(6, 2, 4)
    out["points"] = pts
    for F in (16, 128):
        out["sine.F%d" % F] = sine_points(pts, F)
    out["sine_noxy.F16"] = sine_points(pts, 16, exchange_xy=False)
    path = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "data",
                                         "det_position.safetensors"))
    save_file(out, path)
    print("wrote", path, len(out), "tensors")


if __name__ == "__main__":
    main()
