#!/usr/bin/env python3
"""Writes the PyTorch references of multi-scale deformable attention (DINO's core op) for
tests/fixtures/test_ms_deform_attn.cpp:

  tests/fixtures/data/ops_ms_deform_attn.safetensors   the op (make_op_fixtures.py's case layout:
      "<case>.in.<name>", "<case>.out", "<case>.gout", "<case>.grad.<name>", metadata "cases"),
      computed by ms_deform_attn_reference below: mmcv's multi_scale_deformable_attn_pytorch
      written afresh (grid_sample, bilinear, zeros padding, align_corners=False per level), on the
      CPU, in float64 (compared to 1e-10) and float32 (1e-5).
  tests/fixtures/data/det_ms_deform_attn_module.safetensors   the module: a re-implementation of
      mmcv's MultiScaleDeformableAttention (batch_first=True, dropout off) with hashed weights,
      "<case>.param.<name>" (mmcv's state-dict names), "<case>.in.<name>", "<case>.out",
      "<case>.gout" and "<case>.grad.<name>" for the inputs and every parameter; "<case>.init.*"
      holds mmcv's init_weights() values that are not random (the sampling_offsets bias grid);
      metadata "cases" maps each case to its configuration.

    python3 tools/make_det_fixtures.py

Inputs come from make_op_fixtures.hashed (no RNG state), so re-running gives identical bytes
(checked: two runs, same sha256). Needs torch and safetensors; both files stay under 100 KB.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_op_fixtures import OUT_DIR, Family, hashed  # noqa: E402


def ms_deform_attn_reference(value, spatial_shapes, level_start_index, sampling_locations, attention_weights):
    """value (B, S, NH, HD), spatial_shapes (L, 2) int64 (H, W), locations (B, Q, NH, L, P, 2) in [0, 1]
    as (x, y), weights (B, Q, NH, L, P) -> (B, Q, NH * HD). level_start_index is not read (the levels
    are consecutive), as in mmcv's PyTorch path."""
    B, S, NH, HD = value.shape
    _, Q, _, L, P, _ = sampling_locations.shape
    sizes = [int(h) * int(w) for h, w in spatial_shapes.tolist()]
    per_level = value.split(sizes, dim=1)
    grids = sampling_locations * 2 - 1  # grid_sample wants [-1, 1]
    samples = []
    for lvl, (h, w) in enumerate(spatial_shapes.tolist()):
        # (B, H*W, NH, HD) -> (B*NH, HD, H, W): one image per (batch, head)
        img = per_level[lvl].permute(0, 2, 3, 1).reshape(B * NH, HD, h, w)
        # (B, Q, NH, P, 2) -> (B*NH, Q, P, 2): a Q x P "image" of sampling points per (batch, head)
        grid = grids[:, :, :, lvl].permute(0, 2, 1, 3, 4).reshape(B * NH, Q, P, 2)
        samples.append(F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False))
    # (B*NH, HD, Q, L, P) weighted by (B*NH, 1, Q, L, P), summed over the points of every level
    stacked = torch.stack(samples, dim=3)
    weights = attention_weights.permute(0, 2, 1, 3, 4).reshape(B * NH, 1, Q, L, P)
    out = (stacked * weights).sum(dim=(3, 4))  # (B*NH, HD, Q)
    return out.reshape(B, NH * HD, Q).transpose(1, 2).contiguous()


def levels_tensors(levels):
    shapes = torch.tensor(levels, dtype=torch.int64).reshape(len(levels), 2)
    starts = torch.tensor([0] + [h * w for h, w in levels][:-1], dtype=torch.int64).cumsum(0)
    return shapes, starts


def op_inputs(levels, B, Q, NH, HD, P, seed, dtype):
    shapes, starts = levels_tensors(levels)
    S = sum(h * w for h, w in levels)
    L = len(levels)
    return {
        "value": hashed((B, S, NH, HD), seed, dtype=dtype),
        "spatial_shapes": shapes,
        "level_start_index": starts,
        # some points outside [0, 1]: the zero padding
        "sampling_locations": hashed((B, Q, NH, L, P, 2), seed + 1, -0.15, 1.15, dtype=dtype),
        "attention_weights": hashed((B, Q, NH, L, P), seed + 2, 0.0, 1.0, dtype=dtype),
    }


def op_family():
    f = Family("ms_deform_attn")
    cases = [
        # name, levels, B, Q, NH, HD, P
        ("one_level", [(7, 5)], 2, 5, 2, 4, 3),
        ("two_levels", [(7, 5), (3, 1)], 1, 6, 3, 2, 2),
        ("four_levels", [(8, 6), (4, 3), (2, 2), (1, 1)], 1, 5, 2, 4, 3),
    ]
    for name, levels, B, Q, NH, HD, P in cases:
        for dtype, suffix in ((torch.float64, "f64"), (torch.float32, "f32")):
            f.case(f"{name}_{suffix}", ms_deform_attn_reference, op_inputs(levels, B, Q, NH, HD, P, 10 * len(levels), dtype))
    return f


class MSDeformAttnReference(torch.nn.Module):
    """mmcv's MultiScaleDeformableAttention with batch_first=True (the same parameter names), its
    forward re-written here; the sampling goes through ms_deform_attn_reference."""

    def __init__(self, embed_dims, num_heads, num_levels, num_points):
        super().__init__()
        self.num_heads, self.num_levels, self.num_points = num_heads, num_levels, num_points
        self.sampling_offsets = torch.nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = torch.nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.value_proj = torch.nn.Linear(embed_dims, embed_dims)
        self.output_proj = torch.nn.Linear(embed_dims, embed_dims)

    def init_grid(self):
        """mmcv's init_weights() for sampling_offsets.bias: head h points along the angle 2 pi h / NH,
        scaled so the larger coordinate is 1, and point p at (p + 1) times that, on every level."""
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = (grid / grid.abs().max(-1, keepdim=True)[0]).view(self.num_heads, 1, 1, 2)
        grid = grid.repeat(1, self.num_levels, self.num_points, 1)
        for i in range(self.num_points):
            grid[:, :, i, :] *= i + 1
        return grid.reshape(-1)

    def forward(self, query, value, reference_points, spatial_shapes, level_start_index, query_pos=None,
                key_padding_mask=None):
        identity = query
        if query_pos is not None:
            query = query + query_pos
        B, Q, _ = query.shape
        S = value.shape[1]
        NH, L, P = self.num_heads, self.num_levels, self.num_points
        value = self.value_proj(value)
        if key_padding_mask is not None:
            value = value.masked_fill(key_padding_mask[..., None], 0.0)
        value = value.view(B, S, NH, -1)
        offsets = self.sampling_offsets(query).view(B, Q, NH, L, P, 2)
        weights = self.attention_weights(query).view(B, Q, NH, L * P).softmax(-1).view(B, Q, NH, L, P)
        if reference_points.shape[-1] == 2:
            normalizer = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1)  # (W, H)
            locations = reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None, :]
        else:
            locations = (reference_points[:, :, None, :, None, :2]
                         + offsets / P * reference_points[:, :, None, :, None, 2:] * 0.5)
        out = ms_deform_attn_reference(value, spatial_shapes, level_start_index, locations, weights)
        return self.output_proj(out) + identity


def module_file():
    tensors, meta = {}, {}
    cases = [
        # name, levels, C, NH, P, B, Q, reference dim, padding mask, query_pos
        ("points", [(7, 5), (3, 1)], 16, 2, 3, 2, 5, 2, False, True),
        ("boxes_masked", [(6, 4), (3, 2), (1, 1)], 8, 2, 2, 2, 4, 4, True, False),
    ]
    for i, (name, levels, C, NH, P, B, Q, rdim, masked, with_pos) in enumerate(cases):
        L = len(levels)
        S = sum(h * w for h, w in levels)
        m = MSDeformAttnReference(C, NH, L, P).double()
        tensors[f"{name}.init.sampling_offsets.bias"] = m.init_grid().contiguous()
        seed = 100 * (i + 1)
        with torch.no_grad():
            for j, (pname, p) in enumerate(m.named_parameters()):
                # Offsets large enough that the points spread over a few pixels.
                scale = 0.3 if pname.startswith("sampling_offsets") else 1.0 / math.sqrt(C)
                p.copy_(hashed(tuple(p.shape), seed + j, -scale, scale, dtype=torch.float64))
        for pname, p in m.named_parameters():
            tensors[f"{name}.param.{pname}"] = p.detach().float().clone().contiguous()
        m = m.float()
        shapes, starts = levels_tensors(levels)
        inputs = {
            "query": hashed((B, Q, C), seed + 50),
            "value": hashed((B, S, C), seed + 51),
            "reference_points": (hashed((B, Q, L, 2), seed + 52, 0.1, 0.9) if rdim == 2 else
                                 torch.cat([hashed((B, Q, L, 2), seed + 52, 0.2, 0.8),
                                            hashed((B, Q, L, 2), seed + 53, 0.1, 0.5)], -1)),
        }
        if with_pos:
            inputs["query_pos"] = hashed((B, Q, C), seed + 54)
        leaves = {k: v.clone().requires_grad_(True) for k, v in inputs.items()}
        mask = None
        if masked:
            mask = hashed((B, S), seed + 55) > 0.6
            tensors[f"{name}.in.key_padding_mask"] = mask.to(torch.uint8)
        out = m(leaves["query"], leaves["value"], leaves["reference_points"], shapes, starts,
                query_pos=leaves.get("query_pos"), key_padding_mask=mask)
        gout = hashed(tuple(out.shape), 999)
        out.backward(gout)
        for k, v in inputs.items():
            tensors[f"{name}.in.{k}"] = v.contiguous()
            tensors[f"{name}.grad.{k}"] = leaves[k].grad.contiguous()
        for pname, p in m.named_parameters():
            tensors[f"{name}.grad.{pname}"] = p.grad.contiguous()
        tensors[f"{name}.in.spatial_shapes"] = shapes
        tensors[f"{name}.in.level_start_index"] = starts
        tensors[f"{name}.out"] = out.detach().contiguous()
        tensors[f"{name}.gout"] = gout
        meta[name] = {"embed_dims": C, "num_heads": NH, "num_levels": L, "num_points": P, "masked": masked,
                      "query_pos": with_pos}
    path = os.path.join(OUT_DIR, "det_ms_deform_attn_module.safetensors")
    save_file(tensors, path, metadata={"cases": json.dumps(meta, sort_keys=True)})
    print(f"{path}: {len(meta)} cases, {os.path.getsize(path)} bytes")


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    op_family().write()
    module_file()


if __name__ == "__main__":
    main()
