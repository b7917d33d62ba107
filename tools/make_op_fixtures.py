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

    def case(self, case, fn, inputs, args=None, grad=True):
        """Runs fn(**inputs, **args); float inputs get gradients from a hashed output gradient."""
        args = args or {}
        leaves = {}
        for k, v in inputs.items():
            if grad and v.is_floating_point():
                v = v.detach().clone().requires_grad_(True)
            leaves[k] = v
            self.tensors[f"{case}.in.{k}"] = v.detach().clone().contiguous()
        out = fn(**leaves, **args)
        self.tensors[f"{case}.out"] = out.detach().clone().contiguous()
        if grad and out.is_floating_point() and any(v.requires_grad for v in leaves.values()):
            gout = hashed(tuple(out.shape), 999, dtype=out.dtype)
            out.backward(gout)
            self.tensors[f"{case}.gout"] = gout
            for k, v in leaves.items():
                if v.requires_grad and v.grad is not None:
                    self.tensors[f"{case}.grad.{k}"] = v.grad.contiguous()
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
    f.case("maximum", torch.maximum, {"input": x, "other": hashed((7,), 7, -3.0, 3.0)})
    f.case("minimum", torch.minimum, {"input": x, "other": hashed((7,), 7, -3.0, 3.0)})
    f.case("where", lambda condition, input, other: torch.where(condition, input, other),
           {"condition": hashed((5, 1), 8) > 0, "input": x, "other": hashed((7,), 9)})
    f.case("gelu", F.gelu, {"input": x})
    f.case("gelu_tanh", lambda input: F.gelu(input, approximate="tanh"), {"input": x})
    f.case("relu", F.relu, {"input": x})
    f.case("silu", F.silu, {"input": x})
    f.case("sigmoid", torch.sigmoid, {"input": x})
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
    f.case("max_dim", lambda input, dim, keepdim: torch.max(input, dim, keepdim).values, {"input": x},
           {"dim": 1, "keepdim": False})
    f.case("amax_all", lambda input: input.max(), {"input": x})
    f.case("softmax", lambda input, dim: F.softmax(input, dim), {"input": x}, {"dim": -1})
    f.case("softmax_dim1", lambda input, dim: F.softmax(input, dim), {"input": x}, {"dim": 1})
    f.case("log_softmax", lambda input, dim: F.log_softmax(input, dim), {"input": x}, {"dim": -1})
    return f


def normalization():
    f = Family("norm")
    x = hashed((2, 7, 24), 21, -2.0, 3.0)
    f.case("layer_norm", lambda input, weight, bias, eps: F.layer_norm(input, (24,), weight, bias, eps),
           {"input": x, "weight": hashed((24,), 22, 0.5, 1.5), "bias": hashed((24,), 23)}, {"eps": 1e-6})
    f.case("layer_norm_noaffine", lambda input, eps: F.layer_norm(input, (7, 24), None, None, eps),
           {"input": x}, {"eps": 1e-5})
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
    return f


def linear_algebra():
    f = Family("matmul")
    f.case("matmul_2d", torch.matmul, {"input": hashed((7, 13), 41), "other": hashed((13, 5), 42)})
    f.case("matmul_batched_broadcast", torch.matmul, {"input": hashed((2, 1, 7, 9), 43), "other": hashed((3, 9, 4), 44)})
    f.case("matmul_vec", torch.matmul, {"input": hashed((6, 9), 45), "other": hashed((9,), 46)})
    f.case("linear", F.linear, {"input": hashed((2, 5, 12), 47), "weight": hashed((8, 12), 48), "bias": hashed((8,), 49)})
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
    f.case("adaptive_avg_pool2d", lambda input, output_size: F.adaptive_avg_pool2d(input, output_size), {"input": x},
           {"output_size": [3, 4]})
    f.case("pad_constant", lambda input, pad, value: F.pad(input, pad, "constant", value), {"input": x},
           {"pad": [1, 2, 0, 3], "value": 0.5})
    f.case("pad_reflect", lambda input, pad: F.pad(input, pad, "reflect"), {"input": x}, {"pad": [2, 1, 3, 0]})
    pe = hashed((1, 8, 14, 14), 62)
    for mode, aa, size in [("bicubic", False, [9, 9]), ("bicubic", False, [24, 24]), ("bicubic", True, [9, 9]),
                           ("bilinear", False, [11, 5]), ("bilinear", True, [5, 6]), ("nearest", False, [20, 9])]:
        kw = {} if mode == "nearest" else {"align_corners": False, "antialias": aa}
        name = f"interpolate_{mode}_{size[0]}x{size[1]}" + ("_aa" if aa else "")
        f.case(name, lambda input, size, mode, **k: F.interpolate(input, size=size, mode=mode, **k), {"input": pe},
               {"size": size, "mode": mode, **kw})
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
    f.case("cross_entropy_soft", lambda input, target: F.cross_entropy(input, target.detach()),
           {"input": logits, "target": soft})
    f.case("bce_with_logits", lambda input, target, pos_weight: F.binary_cross_entropy_with_logits(
        input, target.detach(), pos_weight=pos_weight.detach()),
           {"input": logits, "target": hashed((6, 5), 98, 0.0, 1.0), "pos_weight": hashed((5,), 99, 0.5, 2.0)})
    p, t = hashed((4, 7), 100, -2.0, 2.0), hashed((4, 7), 101, -2.0, 2.0)
    f.case("mse_loss", F.mse_loss, {"input": p, "target": t})
    f.case("l1_loss", F.l1_loss, {"input": p, "target": t})
    f.case("smooth_l1_loss", lambda input, target, beta: F.smooth_l1_loss(input, target, beta=beta),
           {"input": p, "target": t}, {"beta": 0.5})
    return f


def attention():
    f = Family("attention")
    q, k, v = hashed((2, 3, 11, 8), 111), hashed((2, 3, 13, 8), 112), hashed((2, 3, 13, 8), 113)
    f.case("sdpa", lambda q, k, v: F.scaled_dot_product_attention(q, k, v), {"q": q, "k": k, "v": v})
    f.case("sdpa_bias", lambda q, k, v, bias: F.scaled_dot_product_attention(q, k, v, attn_mask=bias),
           {"q": q, "k": k, "v": v, "bias": hashed((3, 11, 13), 114, -2.0, 2.0)})
    f.case("dropout_eval", lambda input: F.dropout(input, 0.3, training=False), {"input": q})
    return f


FAMILIES = [elementwise, reductions, normalization, linear_algebra, resampling, indexing, losses, attention]


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
