#!/usr/bin/env python3
"""bench_torch_kernels.py: times PyTorch's own CUDA kernels on the cases of `ropevit bench kernels`.

Same keys ("<group>/<case name>", e.g. "vit_s16/softmax fwd (302592,197)"), same shapes (ViT-S/16
and ViT-B/16 training at batch 256, 224x224, 197 tokens), float32, and the same timing method as
train/bench/bench_kernels.cpp: one warm-up call, a batch of k calls sized to last about 20 ms
between two synchronisations, the median per-call time over batches (at least 3, until the budget
is spent, at most 50). TF32 is off, so products are plain FP32 as ours are.

What each case runs in PyTorch (the aten kernel a training step would call):
  add                 torch.add
  softmax fwd / bwd   torch.softmax / aten._softmax_backward_data
  layernorm fwd / bwd aten.native_layer_norm / aten.native_layer_norm_backward (dx, dweight, dbias)
  gelu fwd / bwd      F.gelu / aten.gelu_backward
  rope qk fwd / bwd   the RoPE-ViT reference: q and k (CLS skipped) as complex numbers times
                      the complex angles, eager (its backward through autograd)
  cross_entropy       F.cross_entropy forward and backward
  adamw step          torch.optim.AdamW(fused=True) over ViT-S's parameter shapes
  grad l2 norm        torch._foreach_norm then the norm of the norms (clip_grad_norm_'s way)
  matmul / sgemm      torch.mm (cuBLAS SGEMM)
  conv2d              F.conv2d (cuDNN, TF32 off), forward, and forward + autograd.grad (dx, dweight)

Writes {"ms": {key: median ms}, "device": name, "torch": version} as JSON (--out), for
`ropevit bench kernels --torch FILE`. Needs a CUDA GPU.

usage: tools/bench_torch_kernels.py [--out FILE] [--filter TEXT] [--budget SEC] [--list] [--device cpu]
"""
import argparse
import json
import sys
import time

import torch
import torch.nn.functional as F

B, N = 256, 197
VITS = [("vit_s16", 384, 6), ("vit_b16", 768, 12)]
HD = 64


def dims(*s):
    return "(" + ",".join(str(int(x)) for x in s) + ")"


DEVICE = "cuda"


def sync():
    if DEVICE == "cuda":
        torch.cuda.synchronize()


def device_seconds(launch, budget_s):
    launch()
    sync()
    t0 = time.perf_counter()
    launch()
    sync()
    one = time.perf_counter() - t0
    k = int(min(max(-(-0.02 // max(one, 1e-7)), 1), 2000))
    per_call = []
    start = time.perf_counter()
    while len(per_call) < 3 or (time.perf_counter() - start < budget_s and len(per_call) < 50):
        sync()
        t0 = time.perf_counter()
        for _ in range(k):
            launch()
        sync()
        per_call.append((time.perf_counter() - t0) / k)
    per_call.sort()
    return per_call[len(per_call) // 2]


def randn(*shape, seed=0):
    g = torch.Generator(device=DEVICE).manual_seed(seed)
    return torch.randn(shape, generator=g, device=DEVICE, dtype=torch.float32)


def vit_s_param_shapes():
    """ViT-S/16 RoPE-Mixed's parameters, in model order (the same list as kernel_cases.cpp)."""
    C, H, hidden = 384, 6, 1536
    shapes = [(C, 3, 16, 16), (C,), (1, 1, C)]
    for _ in range(12):
        shapes += [(C,), (C,), (3 * C, C), (3 * C,), (C, C), (C,), (2, H, HD // 2),
                   (C,), (C,), (hidden, C), (hidden,), (C, hidden), (C,)]
    shapes += [(C,), (C,), (1000, C), (1000,)]
    return shapes


CASES = []  # (key, make) where make() returns the launch closure


def case(group, name):
    def register(make):
        CASES.append((group + "/" + name, make))
        return make
    return register


def rope_reference(x, angles):
    """The RoPE-ViT reference rotation of x (B, NH, N, HD) by angles (NH, N, HD/2), CLS excluded."""
    cis = torch.polar(torch.ones_like(angles), angles)
    xc = torch.view_as_complex(x.float().reshape(*x.shape[:-1], -1, 2))
    return torch.view_as_real(xc * cis).flatten(3).type_as(x)


def define_cases():
    for group, C, NH in VITS:
        s = (B * N, C)

        @case(group, "add " + dims(*s))
        def _(s=s):
            a, b = randn(*s, seed=1), randn(*s, seed=2)
            return lambda: torch.add(a, b)

    s = (B * N, 384)

    @case("vit_s16", "sum_all " + dims(*s))
    def _(s=s):
        a = randn(*s, seed=3)
        return lambda: a.sum()

    for group, C, NH in VITS:
        rows = B * NH * N

        @case(group, "softmax fwd " + dims(rows, N))
        def _(rows=rows):
            x = randn(rows, N, seed=4)
            return lambda: torch.softmax(x, -1)

        @case(group, "softmax bwd " + dims(rows, N))
        def _(rows=rows):
            y = torch.softmax(randn(rows, N, seed=4), -1)
            g = randn(rows, N, seed=5)
            return lambda: torch.ops.aten._softmax_backward_data(g, y, -1, torch.float32)

        s = (B * N, C)

        @case(group, "layernorm fwd " + dims(*s))
        def _(s=s):
            x, w, b = randn(*s, seed=6), randn(s[1], seed=7), randn(s[1], seed=8)
            return lambda: torch.ops.aten.native_layer_norm(x, [s[1]], w, b, 1e-6)

        @case(group, "layernorm bwd " + dims(*s))
        def _(s=s):
            x, w, b = randn(*s, seed=6), randn(s[1], seed=7), randn(s[1], seed=8)
            _, mean, rstd = torch.ops.aten.native_layer_norm(x, [s[1]], w, b, 1e-6)
            g = randn(*s, seed=9)
            return lambda: torch.ops.aten.native_layer_norm_backward(g, x, [s[1]], mean, rstd, w, b,
                                                                     [True, True, True])

        h = (B * N, 4 * C)

        @case(group, "gelu fwd " + dims(*h))
        def _(h=h):
            x = randn(*h, seed=10)
            return lambda: F.gelu(x)

        @case(group, "gelu bwd " + dims(*h))
        def _(h=h):
            x, g = randn(*h, seed=10), randn(*h, seed=11)
            return lambda: torch.ops.aten.gelu_backward(g, x)

        q_shape = (B, NH, N, HD)

        @case(group, "rope qk fwd " + dims(*q_shape))
        def _(q_shape=q_shape, NH=NH):
            q, k = randn(*q_shape, seed=12), randn(*q_shape, seed=13)
            angles = randn(NH, N - 1, HD // 2, seed=14)

            def run():
                qr = torch.cat([q[:, :, :1], rope_reference(q[:, :, 1:], angles)], dim=2)
                kr = torch.cat([k[:, :, :1], rope_reference(k[:, :, 1:], angles)], dim=2)
                return qr, kr
            return run

        @case(group, "rope qk bwd " + dims(*q_shape))
        def _(q_shape=q_shape, NH=NH):
            q = randn(*q_shape, seed=12).requires_grad_()
            k = randn(*q_shape, seed=13).requires_grad_()
            angles = randn(NH, N - 1, HD // 2, seed=14).requires_grad_()
            gq, gk = randn(*q_shape, seed=15), randn(*q_shape, seed=16)
            qr = torch.cat([q[:, :, :1], rope_reference(q[:, :, 1:], angles)], dim=2)
            kr = torch.cat([k[:, :, :1], rope_reference(k[:, :, 1:], angles)], dim=2)
            return lambda: torch.autograd.grad((qr, kr), (q, k, angles), (gq, gk), retain_graph=True)

    @case("vit_s16", "cross_entropy fwd+bwd " + dims(B, 1000))
    def _():
        logits = randn(B, 1000, seed=17).requires_grad_()
        target = torch.randint(0, 1000, (B,), device=DEVICE,
                               generator=torch.Generator(device=DEVICE).manual_seed(18))

        def run():
            loss = F.cross_entropy(logits, target, label_smoothing=0.1)
            return torch.autograd.grad(loss, logits)
        return run

    shapes = vit_s_param_shapes()
    numel = sum(torch.Size(s).numel() for s in shapes)

    @case("vit_s16", "adamw step (%d tensors, %.1fM floats)" % (len(shapes), numel / 1e6))
    def _():
        params = [torch.nn.Parameter(randn(*s, seed=20 + i) * 0.02) for i, s in enumerate(shapes)]
        for i, p in enumerate(params):
            p.grad = randn(*p.shape, seed=500 + i)
        opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.05, fused=True)
        return opt.step

    @case("vit_s16", "grad l2 norm (%d tensors, %.1fM floats)" % (len(shapes), numel / 1e6))
    def _():
        grads = [randn(*s, seed=500 + i) for i, s in enumerate(shapes)]
        return lambda: torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads, 2)), 2)

    for group, C, NH in VITS:
        M = B * N
        for label, K, Nn in [("qkv", C, 3 * C), ("proj", C, C), ("fc1", C, 4 * C), ("fc2", 4 * C, C)]:
            @case(group, "matmul %s (%dx%d)x(%dx%d)" % (label, M, K, K, Nn))
            def _(M=M, K=K, Nn=Nn):
                a, b = randn(M, K, seed=30), randn(K, Nn, seed=31)
                return lambda: torch.mm(a, b)

    @case("square", "sgemm (4096x4096)x(4096x4096)")
    def _():
        a, b = randn(4096, 4096, seed=32), randn(4096, 4096, seed=33)
        return lambda: torch.mm(a, b)

    # Convolutions: F.conv2d (cuDNN, TF32 off), forward alone and forward + backward (dx, dweight).
    convs = [("vit_b16", "patch_embed", (B, 3, 224, 224), (768, 3, 16, 16), 16, 0),
             ("upernet", "3x3", (8, 512, 64, 64), (512, 512, 3, 3), 1, 1)]
    for bwd in (False, True):
        for group, label, xs, ws, stride, pad in convs:
            @case(group, "conv2d %s %s %sx%s/%d" % (label, "fwd+bwd" if bwd else "fwd", dims(*xs), dims(*ws), stride))
            def _(xs=xs, ws=ws, stride=stride, pad=pad, bwd=bwd):
                x, w = randn(*xs, seed=40), randn(*ws, seed=41)
                if not bwd:
                    return lambda: F.conv2d(x, w, stride=stride, padding=pad)
                x.requires_grad_(True)
                w.requires_grad_(True)
                Ho, Wo = (xs[2] + 2 * pad - ws[2]) // stride + 1, (xs[3] + 2 * pad - ws[3]) // stride + 1
                gy = randn(xs[0], ws[0], Ho, Wo, seed=42)
                return lambda: torch.autograd.grad(F.conv2d(x, w, stride=stride, padding=pad), (x, w), gy)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="write the timings as JSON here")
    ap.add_argument("--filter", default="", help="only cases whose key contains this")
    ap.add_argument("--budget", type=float, default=0.3, help="timing budget per case, seconds")
    ap.add_argument("--list", action="store_true", help="print the keys and exit")
    ap.add_argument("--device", default="cuda", choices=["cuda", "cpu"],
                    help="cpu only checks that the cases run (the figures mean nothing)")
    args = ap.parse_args()
    global DEVICE
    DEVICE = args.device
    define_cases()
    if args.list:
        for key, _ in CASES:
            print(key)
        return 0
    if DEVICE == "cuda" and not torch.cuda.is_available():
        print("bench_torch_kernels.py: no CUDA device", file=sys.stderr)
        return 1
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    name = torch.cuda.get_device_name(0) if DEVICE == "cuda" else "cpu"
    print("PyTorch %s on %s" % (torch.__version__, name))
    ms = {}
    for key, make in CASES:
        if args.filter not in key:
            continue
        launch = make()
        ms[key] = device_seconds(launch, args.budget) * 1e3
        del launch
        if DEVICE == "cuda":
            torch.cuda.empty_cache()
        print("%-60s %9.3f ms" % (key, ms[key]), flush=True)
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"ms": ms, "device": name, "torch": torch.__version__}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
