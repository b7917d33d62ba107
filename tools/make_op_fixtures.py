#!/usr/bin/env python3
"""Writes PyTorch reference outputs and gradients for ropevit's ops into safetensors files.

    python3 tools/make_op_fixtures.py            # writes tests/fixtures/data/ops_<family>.safetensors

Each case stores, under the key prefix "<case>.":
    in.<name>     the inputs (float32 unless the op takes indices)
    out           the op's output, computed by PyTorch in float32
    gout          the gradient fed to backward (same shape as out)
    grad.<name>   the gradient of each differentiable input
and the file's __metadata__ entry "cases" holds a JSON object mapping each case name to the op's
keyword arguments.

Inputs come from a fixed integer hash (not torch's RNG), so re-running this script on any
machine and PyTorch version reproduces the inputs bit for bit; the outputs change only where
PyTorch's own arithmetic changes. The C++ side is tests/fixtures/test_*.cpp.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F
from safetensors.torch import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "data")


def hashed(shape, seed, lo=-1.0, hi=1.0, dtype=torch.float32):
    """Values in [lo, hi) from a multiplicative hash of (index, seed): no RNG state involved."""
    n = math.prod(shape)
    idx = torch.arange(n, dtype=torch.int64)
    h = (idx * 2654435761 + seed * 40503 + 12345) % 4294967296
    h = (h ^ (h >> 13)) * 1274126177 % 4294967296
    u = h.to(torch.float64) / 4294967296.0
    return (lo + (hi - lo) * u).reshape(shape).to(dtype)


def indices(shape, seed, high):
    n = math.prod(shape)
    idx = torch.arange(n, dtype=torch.int64)
    h = (idx * 2654435761 + seed * 40503 + 777) % 4294967296
    return (h % high).reshape(shape)


class Family:
    def __init__(self, name):
        self.name = name
        self.tensors = {}
        self.meta = {}

    def case(self, case, fn, inputs, args=None, grad=True, bf16_via_f32=False):
        """Runs fn(**inputs, **args); float inputs get gradients from a hashed output gradient.

        bf16_via_f32: the inputs and gout are bf16, but fn runs on their exact f32 values and the
        output and gradients are rounded to bf16 once. That is what ropevit's bf16 ops do (compute
        in f32, round once); it is used where PyTorch's CPU bf16 kernel rounds intermediates to
        bf16 (mul's broadcast gradient, layer_norm backward, sdpa forward and backward), which
        puts its answer up to ~25 bf16 ulps from the once-rounded one."""
        args = args or {}
        leaves = {}
        for k, v in inputs.items():
            self.tensors[f"{case}.in.{k}"] = v.detach().clone().contiguous()
            if bf16_via_f32 and v.dtype == torch.bfloat16:
                v = v.float()
            if grad and v.is_floating_point():
                v = v.detach().clone().requires_grad_(True)
            leaves[k] = v
        out = fn(**leaves, **args)
        stored = (lambda t: t.bfloat16()) if bf16_via_f32 else (lambda t: t)
        self.tensors[f"{case}.out"] = stored(out.detach().clone().contiguous())
        if grad and out.is_floating_point() and any(v.requires_grad for v in leaves.values()):
            gout = hashed(tuple(out.shape), 999, dtype=torch.bfloat16 if bf16_via_f32 else out.dtype)
            out.backward(gout.to(out.dtype))
            self.tensors[f"{case}.gout"] = gout
            for k, v in leaves.items():
                if v.requires_grad and v.grad is not None:
                    self.tensors[f"{case}.grad.{k}"] = stored(v.grad.contiguous())
        self.meta[case] = args

    def write(self):
        os.makedirs(OUT_DIR, exist_ok=True)
        path = os.path.join(OUT_DIR, f"ops_{self.name}.safetensors")
        # One metadata entry: the Rust writer stores the metadata map in hash order, so several
        # keys would make the file differ from run to run.
        save_file(self.tensors, path, metadata={"cases": json.dumps(self.meta, sort_keys=True)})
        size = os.path.getsize(path)
        print(f"{path}: {len(self.meta)} cases, {size} bytes")


def elementwise():
    f = Family("elementwise")
    a, b = hashed((3, 4, 5), 1), hashed((4, 1), 2)
    f.case("add", lambda a, b: a + b, {"a": a, "b": b})
    f.case("sub", lambda a, b: a - b, {"a": a, "b": b})
    f.case("mul", lambda a, b: a * b, {"a": a, "b": b})
    f.case("div", lambda a, b: a / b, {"a": a, "b": hashed((4, 1), 3, 0.5, 2.0)})
    pos = hashed((5, 7), 4, 0.1, 3.0)
    x = hashed((5, 7), 5, -3.0, 3.0)
    f.case("exp", torch.exp, {"input": x})
    f.case("log", torch.log, {"input": pos})
    f.case("sqrt", torch.sqrt, {"input": pos})
    f.case("rsqrt", torch.rsqrt, {"input": pos})
    f.case("abs", torch.abs, {"input": x})
    f.case("tanh", torch.tanh, {"input": x})
    f.case("pow_scalar", lambda input, exponent: torch.pow(input, exponent), {"input": pos}, {"exponent": 2.5})
    f.case("pow_tensor", torch.pow, {"input": pos, "exponent": hashed((1, 7), 6, -2.0, 2.0)})
    f.case("clamp", lambda input, min, max: torch.clamp(input, min, max), {"input": x}, {"min": -1.0, "max": 0.5})
    f.case("clamp_min", lambda input, min: torch.clamp(input, min=min), {"input": x}, {"min": -0.5})
    f.case("clamp_max", lambda input, max: torch.clamp(input, max=max), {"input": x}, {"max": 0.25})
    f.case("maximum", torch.maximum, {"input": x, "other": hashed((7,), 7, -3.0, 3.0)})
    f.case("minimum", torch.minimum, {"input": x, "other": hashed((7,), 7, -3.0, 3.0)})
    f.case("where", lambda condition, input, other: torch.where(condition, input, other),
           {"condition": hashed((5, 1), 8) > 0, "input": x, "other": hashed((7,), 9)})
    f.case("gelu", F.gelu, {"input": x})
    f.case("gelu_tanh", lambda input: F.gelu(input, approximate="tanh"), {"input": x})
    f.case("relu", F.relu, {"input": x})
    f.case("silu", F.silu, {"input": x})
    f.case("sigmoid", torch.sigmoid, {"input": x})
    # Far tails: gelu tanh is computed as x * sigmoid(2u), which must not lose x << 0.
    f.case("gelu_tanh_wide", lambda input: F.gelu(input, approximate="tanh"), {"input": hashed((5, 7), 10, -10.0, 10.0)})
    f.case("where_broadcast", lambda condition, input, other: torch.where(condition, input, other),
           {"condition": hashed((2, 1, 4), 11) > 0, "input": hashed((3, 1), 12), "other": hashed((4,), 13)})
    f.case("masked_fill", lambda input, mask, value: input.masked_fill(mask, value),
           {"input": x, "mask": hashed((5, 1), 14) > 0.2}, {"value": -1e4})
    f.case("neg", torch.neg, {"input": x})
    f.case("add_scalar", lambda input, other: input + other, {"input": x}, {"other": 0.75})
    f.case("mul_scalar", lambda input, other: input * other, {"input": x}, {"other": -1.5})
    f.case("rsub_scalar", lambda input, other: other - input, {"input": x}, {"other": 2.0})
    f.case("rdiv_scalar", lambda input, other: other / input, {"input": pos}, {"other": 3.0})
    f.case("gt", torch.gt, {"input": x, "other": hashed((7,), 7, -3.0, 3.0)})
    # bf16: PyTorch's CPU gelu computes in f32 and rounds once, as ours does (see Family.case).
    xb = hashed((5, 7), 5, -3.0, 3.0, torch.bfloat16)
    f.case("gelu_bf16", F.gelu, {"input": xb})
    f.case("mul_bf16", torch.mul, {"input": xb, "other": hashed((7,), 15, dtype=torch.bfloat16)}, bf16_via_f32=True)
    return f


def reductions():
    f = Family("reduce")
    x = hashed((4, 5, 6), 11, -2.0, 2.0)
    f.case("sum_all", lambda input: input.sum(), {"input": x})
    f.case("sum_dims", lambda input, dim, keepdim: input.sum(dim, keepdim), {"input": x},
           {"dim": [0, 2], "keepdim": True})
    f.case("mean_dim", lambda input, dim, keepdim: input.mean(dim, keepdim), {"input": x}, {"dim": [1], "keepdim": False})
    f.case("var_dims", lambda input, dim, correction, keepdim: torch.var(input, dim, correction=correction, keepdim=keepdim),
           {"input": x}, {"dim": [0, 2], "correction": 1, "keepdim": False})
    f.case("amin_all", lambda input: input.min(), {"input": x})
    f.case("argmin_dim", lambda input, dim, keepdim: torch.argmin(input, dim, keepdim), {"input": x},
           {"dim": -1, "keepdim": True})
    f.case("max_dim", lambda input, dim, keepdim: torch.max(input, dim, keepdim).values, {"input": x},
           {"dim": 1, "keepdim": False})
    f.case("amax_all", lambda input: input.max(), {"input": x})
    f.case("softmax", lambda input, dim: F.softmax(input, dim), {"input": x}, {"dim": -1})
    f.case("softmax_dim1", lambda input, dim: F.softmax(input, dim), {"input": x}, {"dim": 1})
    f.case("log_softmax", lambda input, dim: F.log_softmax(input, dim), {"input": x}, {"dim": -1})
    f.case("mean_dims", lambda input, dim, keepdim: input.mean(dim, keepdim), {"input": x},
           {"dim": [-1, 0], "keepdim": False})
    f.case("var_all_population", lambda input, correction: torch.var(input, correction=correction), {"input": x},
           {"correction": 0})
    f.case("min_dim", lambda input, dim, keepdim: torch.min(input, dim, keepdim).values, {"input": x},
           {"dim": 2, "keepdim": True})
    f.case("argmax_dim", lambda input, dim, keepdim: torch.argmax(input, dim, keepdim), {"input": x},
           {"dim": 0, "keepdim": False})
    # Masked attention rows: -inf scores get probability 0 and no gradient.
    xi = hashed((3, 6), 12, -2.0, 2.0)
    xi[0, 1] = xi[1, 0] = xi[1, 4] = float("-inf")
    f.case("softmax_neg_inf", lambda input, dim: F.softmax(input, dim), {"input": xi}, {"dim": -1})
    f.case("log_softmax_neg_inf", lambda input, dim: F.log_softmax(input, dim), {"input": xi}, {"dim": -1})
    xb = hashed((4, 5, 6), 11, -2.0, 2.0, torch.bfloat16)
    # PyTorch's bf16 softmax backward works from the saved bf16 output in f32 and rounds once, as ours.
    f.case("softmax_bf16", lambda input, dim: F.softmax(input, dim), {"input": xb}, {"dim": -1})
    f.case("sum_dims_bf16", lambda input, dim, keepdim: input.sum(dim, keepdim), {"input": xb},
           {"dim": [0, 2], "keepdim": False})
    return f


def normalization():
    f = Family("norm")
    x = hashed((2, 7, 24), 21, -2.0, 3.0)
    f.case("layer_norm", lambda input, weight, bias, normalized_shape, eps: F.layer_norm(
        input, normalized_shape, weight, bias, eps),
           {"input": x, "weight": hashed((24,), 22, 0.5, 1.5), "bias": hashed((24,), 23)},
           {"normalized_shape": [24], "eps": 1e-6})
    f.case("layer_norm_noaffine", lambda input, normalized_shape, eps: F.layer_norm(
        input, normalized_shape, None, None, eps), {"input": x}, {"normalized_shape": [7, 24], "eps": 1e-5})
    xb = hashed((3, 4, 5, 6), 24, -1.0, 2.0)
    f.case("batch_norm_train",
           lambda input, weight, bias, momentum, eps: F.batch_norm(input, torch.zeros(4), torch.ones(4), weight, bias,
                                                                   True, momentum, eps),
           {"input": xb, "weight": hashed((4,), 25, 0.5, 1.5), "bias": hashed((4,), 26)}, {"momentum": 0.1, "eps": 1e-5})
    f.case("batch_norm_eval",
           lambda input, running_mean, running_var, weight, bias, eps: F.batch_norm(
               input, running_mean.detach(), running_var.detach(), weight, bias, False, 0.1, eps),
           {"input": xb, "running_mean": hashed((4,), 27), "running_var": hashed((4,), 28, 0.5, 2.0),
            "weight": hashed((4,), 25, 0.5, 1.5), "bias": hashed((4,), 26)}, {"eps": 1e-5})
    f.case("group_norm", lambda input, weight, bias, num_groups, eps: F.group_norm(input, num_groups, weight, bias, eps),
           {"input": hashed((2, 6, 5, 3), 29, -1.0, 2.0), "weight": hashed((6,), 30, 0.5, 1.5), "bias": hashed((6,), 31)},
           {"num_groups": 3, "eps": 1e-5})
    f.case("group_norm_noaffine", lambda input, num_groups, eps: F.group_norm(input, num_groups, None, None, eps),
           {"input": hashed((2, 4, 7), 32, -1.0, 2.0)}, {"num_groups": 2, "eps": 1e-5})

    def running_stats(input, running_mean, running_var, momentum, eps):
        # The buffers after one training step (out = cat(running_mean, running_var)).
        rm, rv = running_mean.clone(), running_var.clone()
        F.batch_norm(input, rm, rv, None, None, True, momentum, eps)
        return torch.cat([rm, rv])
    f.case("batch_norm_running_stats", running_stats,
           {"input": xb, "running_mean": hashed((4,), 27), "running_var": hashed((4,), 28, 0.5, 2.0)},
           {"momentum": 0.2, "eps": 1e-5}, grad=False)
    f.case("layer_norm_bf16", lambda input, weight, bias, normalized_shape, eps: F.layer_norm(
        input, normalized_shape, weight, bias, eps),
           {"input": hashed((2, 7, 24), 21, -2.0, 3.0, torch.bfloat16),
            "weight": hashed((24,), 22, 0.5, 1.5, torch.bfloat16), "bias": hashed((24,), 23, dtype=torch.bfloat16)},
           {"normalized_shape": [24], "eps": 1e-6}, bf16_via_f32=True)
    return f


def linear_algebra():
    f = Family("matmul")
    f.case("matmul_2d", torch.matmul, {"input": hashed((7, 13), 41), "other": hashed((13, 5), 42)})
    f.case("matmul_batched_broadcast", torch.matmul, {"input": hashed((2, 1, 7, 9), 43), "other": hashed((3, 9, 4), 44)})
    f.case("matmul_vec", torch.matmul, {"input": hashed((6, 9), 45), "other": hashed((9,), 46)})
    f.case("matmul_vec_left", torch.matmul, {"input": hashed((9,), 59), "other": hashed((2, 9, 4), 60)})
    f.case("matmul_dot", torch.matmul, {"input": hashed((9,), 61), "other": hashed((9,), 62)})
    # Transposed operands (stored as (N, K) / (K, M), used through .mT): GEMM's transpose flags.
    f.case("matmul_transposed_other", lambda input, other: torch.matmul(input, other.mT),
           {"input": hashed((7, 13), 41), "other": hashed((5, 13), 63)})
    f.case("matmul_transposed_input", lambda input, other: torch.matmul(input.mT, other),
           {"input": hashed((3, 13, 7), 64), "other": hashed((13, 5), 42)})
    f.case("matmul_bf16", torch.matmul,
           {"input": hashed((6, 20), 65, dtype=torch.bfloat16), "other": hashed((20, 5), 66, dtype=torch.bfloat16)})
    f.case("linear", F.linear, {"input": hashed((2, 5, 12), 47), "weight": hashed((8, 12), 48), "bias": hashed((8,), 49)})
    f.case("linear_nobias", F.linear, {"input": hashed((5, 12), 67), "weight": hashed((8, 12), 48)})
    f.case("conv2d", lambda input, weight, bias, stride, padding, dilation, groups: F.conv2d(
        input, weight, bias, stride, padding, dilation, groups),
           {"input": hashed((2, 4, 9, 8), 50), "weight": hashed((6, 2, 3, 3), 51), "bias": hashed((6,), 52)},
           {"stride": [2, 1], "padding": [1, 2], "dilation": [1, 2], "groups": 2})
    f.case("conv2d_patch", lambda input, weight, bias, stride: F.conv2d(input, weight, bias, stride),
           {"input": hashed((2, 3, 32, 48), 53), "weight": hashed((8, 3, 16, 16), 54), "bias": hashed((8,), 55)},
           {"stride": [16, 16]})
    f.case("conv_transpose2d", lambda input, weight, bias, stride, padding, output_padding, groups, dilation:
           F.conv_transpose2d(input, weight, bias, stride, padding, output_padding, groups, dilation),
           {"input": hashed((2, 4, 5, 6), 56), "weight": hashed((4, 3, 3, 3), 57), "bias": hashed((6,), 58)},
           {"stride": [2, 2], "padding": [1, 0], "output_padding": [1, 1], "groups": 2, "dilation": [1, 1]})
    return f


def resampling():
    f = Family("resample")
    x = hashed((2, 3, 7, 9), 61)
    f.case("max_pool2d", lambda input, kernel_size, stride, padding, ceil_mode: F.max_pool2d(
        input, kernel_size, stride, padding, 1, ceil_mode), {"input": x},
           {"kernel_size": [3, 2], "stride": [2, 2], "padding": [1, 0], "ceil_mode": True})
    f.case("avg_pool2d", lambda input, kernel_size, stride, padding, ceil_mode, count_include_pad: F.avg_pool2d(
        input, kernel_size, stride, padding, ceil_mode, count_include_pad), {"input": x},
           {"kernel_size": [3, 3], "stride": [2, 2], "padding": [1, 1], "ceil_mode": False, "count_include_pad": False})
    f.case("max_pool2d_with_indices", lambda input, kernel_size, stride, padding, dilation: F.max_pool2d(
        input, kernel_size, stride, padding, dilation, return_indices=True)[0], {"input": x},
           {"kernel_size": [2, 3], "stride": [1, 2], "padding": [1, 1], "dilation": [2, 1]})
    f.case("max_pool2d_indices", lambda input, kernel_size, stride, padding, dilation: F.max_pool2d(
        input, kernel_size, stride, padding, dilation, return_indices=True)[1], {"input": x},
           {"kernel_size": [2, 3], "stride": [1, 2], "padding": [1, 1], "dilation": [2, 1]}, grad=False)
    f.case("adaptive_max_pool2d", lambda input, output_size: F.adaptive_max_pool2d(input, output_size), {"input": x},
           {"output_size": [3, 4]})
    f.case("adaptive_avg_pool2d", lambda input, output_size: F.adaptive_avg_pool2d(input, output_size), {"input": x},
           {"output_size": [3, 4]})
    f.case("pad_constant", lambda input, pad, value: F.pad(input, pad, "constant", value), {"input": x},
           {"pad": [1, 2, 0, 3], "value": 0.5})
    f.case("pad_reflect", lambda input, pad: F.pad(input, pad, "reflect"), {"input": x}, {"pad": [2, 1, 3, 0]})
    pe = hashed((1, 8, 14, 14), 62)
    # bicubic 14x14 -> 16x16 is the APE resize from 224 to 256 (spec section 4).
    for mode, aa, size in [("bicubic", False, [9, 9]), ("bicubic", False, [24, 24]), ("bicubic", True, [9, 9]),
                           ("bicubic", False, [16, 16]),
                           ("bilinear", False, [11, 5]), ("bilinear", True, [5, 6]), ("nearest", False, [20, 9])]:
        kw = {} if mode == "nearest" else {"align_corners": False, "antialias": aa}
        name = f"interpolate_{mode}_{size[0]}x{size[1]}" + ("_aa" if aa else "")
        f.case(name, lambda input, size, mode, **k: F.interpolate(input, size=size, mode=mode, **k), {"input": pe},
               {"size": size, "mode": mode, **kw})
    f.case("interpolate_linear_12", lambda input, size, mode: F.interpolate(input, size=size, mode=mode),
           {"input": hashed((2, 3, 7), 63)}, {"size": [12], "mode": "linear"})
    f.case("interpolate_area_5x4", lambda input, size, mode: F.interpolate(input, size=size, mode=mode), {"input": x},
           {"size": [5, 4], "mode": "area"})
    f.case("interpolate_bilinear_scale", lambda input, scale_factor, mode: F.interpolate(
        input, scale_factor=scale_factor, mode=mode), {"input": x}, {"scale_factor": [1.5, 0.75], "mode": "bilinear"})
    for mode, p in [("replicate", [2, 1, 0, 3]), ("circular", [1, 3, 2, 2]), ("constant", [-1, 2, 1, -2])]:
        f.case(f"pad_{mode}" + ("_crop" if mode == "constant" else ""),
               lambda input, pad, mode: F.pad(input, pad, mode), {"input": x}, {"pad": p, "mode": mode})
    f.case("avg_pool2d_ceil_divisor", lambda input, kernel_size, stride, padding, ceil_mode, divisor_override:
           F.avg_pool2d(input, kernel_size, stride, padding, ceil_mode, True, divisor_override), {"input": x},
           {"kernel_size": [2, 3], "stride": [2, 2], "padding": [1, 1], "ceil_mode": True, "divisor_override": 5})
    f.case("interpolate_bilinear_align", lambda input, size, mode, align_corners: F.interpolate(
        input, size=size, mode=mode, align_corners=align_corners), {"input": x},
           {"size": [10, 4], "mode": "bilinear", "align_corners": True})
    return f


def indexing():
    f = Family("index")
    w = hashed((10, 6), 71)
    f.case("embedding", lambda weight, indices: F.embedding(indices, weight),
           {"weight": w, "indices": indices((3, 4), 72, 10)})
    x = hashed((4, 6), 73)
    f.case("index_select", lambda input, index, dim: torch.index_select(input, dim, index),
           {"input": x, "index": indices((5,), 74, 6)}, {"dim": 1})
    f.case("gather", lambda input, index, dim: torch.gather(input, dim, index),
           {"input": x, "index": indices((4, 3), 75, 6)}, {"dim": 1})
    f.case("scatter_add", lambda input, index, src, dim: torch.scatter_add(input, dim, index, src),
           {"input": x, "index": indices((3, 6), 76, 4), "src": hashed((3, 6), 77)}, {"dim": 0})
    f.case("cat", lambda a, b, c, dim: torch.cat([a, b, c], dim),
           {"a": hashed((2, 3, 4), 78), "b": hashed((2, 1, 4), 79), "c": hashed((2, 5, 4), 80)}, {"dim": 1})
    f.case("stack", lambda a, b, dim: torch.stack([a, b], dim), {"a": hashed((3, 4), 81), "b": hashed((3, 4), 82)},
           {"dim": 1})
    f.case("roll", lambda input, shifts, dims: torch.roll(input, shifts, dims), {"input": hashed((2, 5, 6, 3), 83)},
           {"shifts": [-2, 3], "dims": [1, 2]})
    f.case("flip", lambda input, dims: torch.flip(input, dims), {"input": hashed((3, 4, 5), 84)}, {"dims": [0, 2]})
    f.case("index_add", lambda input, index, src, dim: torch.index_add(input, dim, index, src),
           {"input": x, "index": indices((4,), 85, 6), "src": hashed((4, 4), 86)}, {"dim": 1})
    f.case("one_hot", lambda indices, num_classes: F.one_hot(indices, num_classes),
           {"indices": indices((2, 5), 87, 6)}, {"num_classes": 7})
    f.case("repeat", lambda input, repeats: input.repeat(*repeats), {"input": hashed((2, 3), 88)},
           {"repeats": [2, 1, 3]})

    def window_partition(input, ws):
        # Swin (spec section 6): (B, H, W, C) -> (B * nW, ws * ws, C)
        B, H, W, C = input.shape
        x = input.view(B, H // ws, ws, W // ws, ws, C).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(-1, ws * ws, C)

    def window_reverse(windows, ws, H, W):
        C = windows.shape[-1]
        x = windows.view(-1, H // ws, W // ws, ws, ws, C).permute(0, 1, 3, 2, 4, 5)
        return x.reshape(-1, H, W, C)
    f.case("window_partition", window_partition, {"input": hashed((2, 6, 9, 2), 89)}, {"ws": 3})
    f.case("window_reverse", window_reverse, {"windows": hashed((12, 9, 2), 90)}, {"ws": 3, "H": 6, "W": 9})
    return f


def losses():
    f = Family("loss")
    logits = hashed((6, 5), 91, -3.0, 3.0)
    target = indices((6,), 92, 5)
    target[2] = -100
    f.case("cross_entropy", lambda input, target, label_smoothing: F.cross_entropy(
        input, target, label_smoothing=label_smoothing), {"input": logits, "target": target}, {"label_smoothing": 0.1})
    f.case("cross_entropy_weighted", lambda input, target, weight: F.cross_entropy(input, target, weight=weight.detach()),
           {"input": logits, "target": indices((6,), 93, 5), "weight": hashed((5,), 94, 0.5, 2.0)})
    f.case("cross_entropy_spatial", lambda input, target, ignore_index: F.cross_entropy(
        input, target, ignore_index=ignore_index), {"input": hashed((2, 4, 3, 5), 95, -2.0, 2.0),
                                                    "target": indices((2, 3, 5), 96, 5) - 1}, {"ignore_index": -1})
    soft = torch.softmax(hashed((6, 5), 97, -2.0, 2.0), -1)
    # Soft (Mixup) targets: differentiable in the target as well.
    f.case("cross_entropy_soft", lambda input, target: F.cross_entropy(input, target),
           {"input": logits, "target": soft})
    f.case("cross_entropy_none", lambda input, target, reduction: F.cross_entropy(input, target, reduction=reduction),
           {"input": logits, "target": target}, {"reduction": "none"})
    f.case("cross_entropy_sum", lambda input, target, weight, label_smoothing, reduction: F.cross_entropy(
        input, target, weight=weight.detach(), label_smoothing=label_smoothing, reduction=reduction),
           {"input": logits, "target": target, "weight": hashed((5,), 94, 0.5, 2.0)},
           {"label_smoothing": 0.2, "reduction": "sum"})
    f.case("bce_with_logits", lambda input, target, pos_weight: F.binary_cross_entropy_with_logits(
        input, target, pos_weight=pos_weight.detach()),
           {"input": logits, "target": hashed((6, 5), 98, 0.0, 1.0), "pos_weight": hashed((5,), 99, 0.5, 2.0)})
    f.case("bce_with_logits_weight_sum", lambda input, target, weight, reduction: F.binary_cross_entropy_with_logits(
        input, target, weight=weight.detach(), reduction=reduction),
           {"input": logits, "target": hashed((6, 5), 102, 0.0, 1.0), "weight": hashed((6, 1), 103, 0.5, 2.0)},
           {"reduction": "sum"})
    p, t = hashed((4, 7), 100, -2.0, 2.0), hashed((4, 7), 101, -2.0, 2.0)
    f.case("mse_loss", F.mse_loss, {"input": p, "target": t})
    f.case("l1_loss", F.l1_loss, {"input": p, "target": t})
    f.case("smooth_l1_loss", lambda input, target, beta: F.smooth_l1_loss(input, target, beta=beta),
           {"input": p, "target": t}, {"beta": 0.5})
    f.case("mse_loss_none", lambda input, target, reduction: F.mse_loss(input, target, reduction=reduction),
           {"input": p, "target": t}, {"reduction": "none"})
    f.case("l1_loss_sum", lambda input, target, reduction: F.l1_loss(input, target, reduction=reduction),
           {"input": p, "target": t}, {"reduction": "sum"})
    return f


def attention():
    f = Family("attention")
    q, k, v = hashed((2, 3, 11, 8), 111), hashed((2, 3, 13, 8), 112), hashed((2, 3, 13, 8), 113)
    f.case("sdpa", lambda q, k, v: F.scaled_dot_product_attention(q, k, v), {"q": q, "k": k, "v": v})
    f.case("sdpa_bias", lambda q, k, v, bias: F.scaled_dot_product_attention(q, k, v, attn_mask=bias),
           {"q": q, "k": k, "v": v, "bias": hashed((3, 11, 13), 114, -2.0, 2.0)})
    f.case("dropout_eval", lambda input: F.dropout(input, 0.3, training=False), {"input": q})
    # Boolean mask, true = keep (broadcast over B and NH); every query keeps at least one key,
    # since PyTorch gives NaN where we give 0 for a query with none.
    keep = hashed((11, 13), 115) > -0.3
    keep[torch.arange(11), torch.arange(11)] = True
    f.case("sdpa_mask", lambda q, k, v, mask: F.scaled_dot_product_attention(q, k, v, attn_mask=mask),
           {"q": q, "k": k, "v": v, "mask": keep})
    # Our bias and mask together are PyTorch's float mask with -inf where dropped.
    f.case("sdpa_bias_mask", lambda q, k, v, bias, mask, scale: F.scaled_dot_product_attention(
        q, k, v, attn_mask=bias.masked_fill(~mask, float("-inf")), scale=scale),
           {"q": q, "k": k, "v": v, "bias": hashed((1, 3, 11, 13), 116, -2.0, 2.0), "mask": keep}, {"scale": 0.3})
    # More keys than one 64-wide block of the fused kernel, and HDv != HD.
    f.case("sdpa_long", F.scaled_dot_product_attention,
           {"query": hashed((1, 2, 5, 8), 117), "key": hashed((1, 2, 70, 8), 118), "value": hashed((1, 2, 70, 6), 119)})
    f.case("sdpa_bf16", F.scaled_dot_product_attention,
           {"query": hashed((1, 2, 7, 8), 120, dtype=torch.bfloat16), "key": hashed((1, 2, 9, 8), 121, dtype=torch.bfloat16),
            "value": hashed((1, 2, 9, 8), 122, dtype=torch.bfloat16)}, bf16_via_f32=True)
    return f


# ---- RoPE: PyTorch has no op, so these are the RoPE-ViT reference formulas (naver-ai/rope-vit,
# models/vit_rope.py; /work/shared/spec/rope-vit.md sections 2, 3 and 5), written out here with torch
# complex numbers and fp32 throughout, as the reference computes.

def init_t_xy(end_x, end_y):
    """Token positions of a row-major end_y x end_x grid: t_x = column, t_y = row (fp32)."""
    t = torch.arange(end_x * end_y, dtype=torch.float32)
    return (t % end_x).float(), torch.div(t, end_x, rounding_mode="floor").float()


def compute_axial_cis(dim, end_x, end_y, theta=100.0):
    """(N, dim/2) complex: pairs j < dim/4 turn with t_x, the others with t_y."""
    freqs_x = 1.0 / (theta ** (torch.arange(0, dim, 4)[: (dim // 4)].float() / dim))
    freqs_y = 1.0 / (theta ** (torch.arange(0, dim, 4)[: (dim // 4)].float() / dim))
    t_x, t_y = init_t_xy(end_x, end_y)
    freqs_x = torch.outer(t_x, freqs_x)
    freqs_y = torch.outer(t_y, freqs_y)
    cis_x = torch.polar(torch.ones_like(freqs_x), freqs_x)
    cis_y = torch.polar(torch.ones_like(freqs_y), freqs_y)
    return torch.cat([cis_x, cis_y], dim=-1)


def init_random_2d_freqs(dim, num_heads, theta=10.0, rotate=True, phis=None):
    """(2, num_heads, dim/2): the mixed init. The reference draws phi = torch.rand(1) * 2 * pi per
    head; `phis` supplies those angles instead (rotate=False: phi = 0, the Swin-axial table)."""
    freqs_x, freqs_y = [], []
    mag = 1 / (theta ** (torch.arange(0, dim, 4)[: (dim // 4)].float() / dim))
    for i in range(num_heads):
        angles = phis[i:i + 1] if rotate else torch.zeros(1)
        fx = torch.cat([mag * torch.cos(angles), mag * torch.cos(torch.pi / 2 + angles)], dim=-1)
        fy = torch.cat([mag * torch.sin(angles), mag * torch.sin(torch.pi / 2 + angles)], dim=-1)
        freqs_x.append(fx)
        freqs_y.append(fy)
    return torch.stack([torch.stack(freqs_x, dim=0), torch.stack(freqs_y, dim=0)], dim=0)


def compute_mixed_cis(freqs, t_x, t_y, num_heads):
    """freqs (2, depth, NH * HD/2) -> (depth, NH, N, HD/2) complex; angle = fl(t_x Fx) + fl(t_y Fy)."""
    N = t_x.shape[0]
    depth = freqs.shape[1]
    freqs_x = (t_x.unsqueeze(-1) @ freqs[0].unsqueeze(-2)).view(depth, N, num_heads, -1).permute(0, 2, 1, 3)
    freqs_y = (t_y.unsqueeze(-1) @ freqs[1].unsqueeze(-2)).view(depth, N, num_heads, -1).permute(0, 2, 1, 3)
    return torch.polar(torch.ones_like(freqs_x), freqs_x + freqs_y)


def reshape_for_broadcast(freqs_cis, x):
    ndim = x.ndim
    if freqs_cis.shape == (x.shape[-2], x.shape[-1]):
        shape = [d if i >= ndim - 2 else 1 for i, d in enumerate(x.shape)]
    else:
        assert freqs_cis.shape == (x.shape[-3], x.shape[-2], x.shape[-1])
        shape = [d if i >= ndim - 3 else 1 for i, d in enumerate(x.shape)]
    return freqs_cis.view(*shape)


def apply_rotary_emb(xq, xk, freqs_cis):
    """Interleaved pairs (2j, 2j+1) as complex numbers, times freqs_cis; computed in fp32."""
    xq_ = torch.view_as_complex(xq.float().reshape(*xq.shape[:-1], -1, 2))
    xk_ = torch.view_as_complex(xk.float().reshape(*xk.shape[:-1], -1, 2))
    freqs_cis = reshape_for_broadcast(freqs_cis, xq_)
    xq_out = torch.view_as_real(xq_ * freqs_cis).flatten(3)
    xk_out = torch.view_as_real(xk_ * freqs_cis).flatten(3)
    return xq_out.type_as(xq), xk_out.type_as(xk)


def rope_qk(q, k, freqs_cis, skip):
    """The attention layer's rotation: tokens from `skip` on (the CLS token is left alone).
    Concatenates instead of assigning q[:, :, 1:] in place (rope-vit #14); returns stack(q, k)."""
    qr, kr = apply_rotary_emb(q[:, :, skip:], k[:, :, skip:], freqs_cis)
    return torch.stack([torch.cat([q[:, :, :skip], qr], dim=2), torch.cat([k[:, :, :skip], kr], dim=2)])


def rope():
    f = Family("rope")
    # RoPE-Axial, ViT-B/16 at 224: 14x14 grid + CLS, HD = 64, theta = 100. Positions up to 13
    # exercise every frequency at full range. Output only: the gradient (a rotation by -a) is
    # checked on the smaller grids below, which keeps the file small.
    f.case("axial_vit_14x14", lambda x, theta, **_: rope_qk(x, x, compute_axial_cis(64, 14, 14, theta), 1)[0],
           {"x": hashed((1, 1, 197, 64), 131)}, {"theta": 100.0, "grid": [14, 14], "skip": 1}, grad=False)
    # Non-square grid (an 48x80 image: 3 rows, 5 columns): t_x is the column, t_y the row.
    f.case("axial_3x5", lambda x, theta, **_: rope_qk(x, x, compute_axial_cis(16, 5, 3, theta), 1)[0],
           {"x": hashed((2, 2, 16, 16), 132)}, {"theta": 100.0, "grid": [3, 5], "skip": 1})
    # bf16 q/k: the reference rotates in fp32 and casts back (type_as), so PyTorch's answer is
    # the fp32 rotation rounded once.
    f.case("axial_3x5_bf16", lambda x, theta, **_: rope_qk(x, x, compute_axial_cis(16, 5, 3, theta), 1)[0],
           {"x": hashed((2, 2, 16, 16), 132, dtype=torch.bfloat16)}, {"theta": 100.0, "grid": [3, 5], "skip": 1})
    # RoPE-Mixed: the learned freqs (2, NH, HD/2) get a gradient through both q and k.
    nh, hd, gh, gw = 2, 16, 4, 6
    t_x, t_y = init_t_xy(gw, gh)
    f.case("mixed_4x6", lambda q, k, freqs, **_: rope_qk(
        q, k, compute_mixed_cis(freqs.reshape(2, 1, nh * hd // 2), t_x, t_y, nh)[0], 1),
           {"q": hashed((2, nh, 1 + gh * gw, hd), 133), "k": hashed((2, nh, 1 + gh * gw, hd), 134),
            "freqs": init_random_2d_freqs(hd, nh, 10.0, True, torch.tensor([0.7, 4.1]))}, {"grid": [gh, gw], "skip": 1})
    # The mixed init for given angles phi (the reference's torch.rand(1) * 2 * pi, in fp32).
    phis = hashed((3,), 135, 0.0, 1.0) * 2 * torch.pi
    f.case("mixed_init", lambda phis, head_dim, theta: init_random_2d_freqs(head_dim, 3, theta, True, phis),
           {"phis": phis}, {"head_dim": 32, "theta": 10.0}, grad=False)
    # Swin RoPE-Axial: the mixed init with phi = 0 and theta = 50 (window-local positions in a
    # 7x7 window, no CLS token). Swin heads have HD = 32.
    f.case("swin_axial_freqs", lambda theta, **_: init_random_2d_freqs(32, 3, theta, rotate=False), {},
           {"theta": 50.0, "num_heads": 3, "head_dim": 32}, grad=False)
    wt_x, wt_y = init_t_xy(7, 7)
    f.case("swin_axial_w7", lambda x, theta, **_: rope_qk(
        x, x, compute_mixed_cis(init_random_2d_freqs(32, 3, theta, rotate=False).reshape(2, 1, 48), wt_x, wt_y, 3)[0],
        0)[0], {"x": hashed((1, 3, 49, 32), 136)}, {"theta": 50.0, "window": 7, "skip": 0})
    return f


FAMILIES = [elementwise, reductions, normalization, linear_algebra, resampling, indexing, losses, attention, rope]


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    only = set(sys.argv[1:])
    for make in FAMILIES:
        fam = make()
        if not only or fam.name in only:
            fam.write()


if __name__ == "__main__":
    main()
