#!/usr/bin/env python3
"""bench_torch_ops.py: times in PyTorch (CPU) the same op cases as `ropevit bench ops`.

Same names (the key is "<group>/<case name>", e.g. "vit_s16/gelu (32,197,1536)"), same shapes,
float32, the same thread count (torch.set_num_threads(OMP_NUM_THREADS), default os.cpu_count()),
and the same timing method as train/bench/bench_harness.cpp: two warm-up calls, then repeated
calls until at least 3 and the time budget is spent (at most 200), and the median.

  forward cases  run under torch.no_grad(), as ours run with grad mode off.
  backward cases time only out.backward(g): before every timed call, the leaves' .grad are set
                 to None and the forward is recorded again, untimed (ropevit does the same with
                 Case::prepare), so each call makes fresh gradients as a training step does.

Writes {"ms": {key: median ms}, "torch": version, "threads": n, "blas": ...} as JSON (--out),
for `ropevit bench ops --torch FILE`. Prints which BLAS this PyTorch was built with: the
comparison only means something against an optimised BLAS (MKL or OpenBLAS).

usage: tools/bench_torch_ops.py [--out FILE] [--group vit_s16|swin_t|all] [--filter TEXT]
                                [--budget SEC] [--list]
"""
import argparse
import json
import os
import re
import statistics
import sys
import time

import torch
import torch.nn.functional as F


def median_seconds(f, prepare, budget_s):
    for _ in range(2):  # warm-up: caches, page faults, thread pool
        if prepare:
            prepare()
        f()
    times = []
    start = time.perf_counter()
    while len(times) < 3 or (time.perf_counter() - start < budget_s and len(times) < 200):
        if prepare:
            prepare()
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]  # the same element as the C++ harness takes


def randn(*shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(tuple(shape), generator=g, dtype=torch.float32)


def leaf(*shape, seed=0):
    return randn(*shape, seed=seed).requires_grad_(True)


# Each case is (group, name, make) where make() builds the inputs and returns (run, prepare):
# inputs live only while their case is timed.
CASES = []


def case(group, name):
    def register(make):
        CASES.append((group, name, make))
        return make
    return register


def forward(f):
    def run():
        with torch.no_grad():
            f()
    return run, None


def backward(leaves, f):
    state = {}

    def prepare():
        for t in leaves:
            t.grad = None
        with torch.enable_grad():
            state["out"] = f()
        if "g" not in state:
            state["g"] = randn(*state["out"].shape, seed=99)

    def run():
        state.pop("out").backward(state["g"])
    return run, prepare


def rope_apply(x, angles, skip):
    """RoPE as the RoPE-ViT reference applies it: q as complex pairs times polar(1, angles);
    the first `skip` tokens (CLS) are left as they are."""
    fc = torch.polar(torch.ones_like(angles), angles)
    xr = x[:, :, skip:]
    xc = torch.view_as_complex(xr.reshape(*xr.shape[:-1], -1, 2))
    out = torch.view_as_real(xc * fc).flatten(3)
    return torch.cat([x[:, :, :skip], out], dim=2) if skip else out


def drop_path(x, p):
    """timm's drop_path(scale_by_keep=True): one Bernoulli draw per sample."""
    keep = 1.0 - p
    r = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    r.div_(keep)
    return x * r


def add_linear_cases(group, rows_shape, rows, lins, seed_fwd=10, seed_bwd=20):
    for name, cin, cout in lins:
        label = f"linear {name} ({rows}x{cin})->{cout}"

        def make_f(cin=cin, cout=cout):
            x, w, b = randn(*rows_shape, cin, seed=seed_fwd), randn(cout, cin, seed=seed_fwd + 1), randn(cout, seed=2)
            return forward(lambda: F.linear(x, w, b))
        case(group, label)(make_f)
    for name, cin, cout in lins:
        label = f"linear {name} ({rows}x{cin})->{cout} backward"

        def make_b(cin=cin, cout=cout):
            x, w, b = leaf(*rows_shape, cin, seed=seed_bwd), leaf(cout, cin, seed=1), leaf(cout, seed=2)
            return backward([x, w, b], lambda: F.linear(x, w, b))
        case(group, label)(make_b)


# ---- ViT-S/16 @224, batch 32 (see train/bench/bench_ops_vit.cpp) ------------------------------
V = "vit_s16"
B, N, C, NH, HD, MLP, NP = 32, 197, 384, 6, 64, 1536, 196
add_linear_cases(V, (B, N), 6304, [("qkv", C, 3 * C), ("proj", C, C), ("fc1", C, MLP), ("fc2", MLP, C)])


@case(V, "matmul q.kT (32,6,197,64)x(64,197)")
def _():
    a, b = randn(B, NH, N, HD, seed=30), randn(B, NH, N, HD, seed=31)
    return forward(lambda: torch.matmul(a, b.transpose(-2, -1)))


@case(V, "matmul p.v (32,6,197,197)x(197,64)")
def _():
    a, b = randn(B, NH, N, N, seed=32), randn(B, NH, N, HD, seed=33)
    return forward(lambda: torch.matmul(a, b))


@case(V, "conv2d patch embed 3->384 k16 s16 (32,3,224,224)")
def _():
    img, w, b = randn(B, 3, 224, 224, seed=40), randn(C, 3, 16, 16, seed=41), randn(C, seed=42)
    return forward(lambda: F.conv2d(img, w, b, stride=16))


@case(V, "conv2d patch embed backward")
def _():
    img, w, b = randn(B, 3, 224, 224, seed=40), leaf(C, 3, 16, 16, seed=41), leaf(C, seed=42)
    return backward([w, b], lambda: F.conv2d(img, w, b, stride=16))


def add_norm_softmax_gelu(group, x_shape, s_shape, h_shape):
    xs, ss, hs = ",".join(map(str, x_shape)), ",".join(map(str, s_shape)), ",".join(map(str, h_shape))
    c = x_shape[-1]

    @case(group, f"layer_norm ({xs})")
    def _():
        x, w, b = randn(*x_shape, seed=50), randn(c, seed=51), randn(c, seed=52)
        return forward(lambda: F.layer_norm(x, (c,), w, b))

    @case(group, f"layer_norm ({xs}) backward")
    def _():
        x, w, b = leaf(*x_shape, seed=50), leaf(c, seed=51), leaf(c, seed=52)
        return backward([x, w, b], lambda: F.layer_norm(x, (c,), w, b))

    @case(group, f"softmax ({ss})")
    def _():
        x = randn(*s_shape, seed=60)
        return forward(lambda: torch.softmax(x, -1))

    @case(group, f"softmax ({ss}) backward")
    def _():
        x = leaf(*s_shape, seed=60)
        return backward([x], lambda: torch.softmax(x, -1))

    @case(group, f"gelu ({hs})")
    def _():
        h = randn(*h_shape, seed=70)
        return forward(lambda: F.gelu(h))

    @case(group, f"gelu ({hs}) backward")
    def _():
        h = leaf(*h_shape, seed=70)
        return backward([h], lambda: F.gelu(h))


add_norm_softmax_gelu(V, (B, N, C), (B, NH, N, N), (B, N, MLP))


@case(V, "add residual (32,197,384)")
def _():
    a, b = randn(B, N, C, seed=1), randn(B, N, C, seed=2)
    return forward(lambda: torch.add(a, b))


@case(V, "mul by channel (32,197,384)*(384)")
def _():
    a, g = randn(B, N, C, seed=1), randn(C, seed=3)
    return forward(lambda: torch.mul(a, g))


@case(V, "rope_apply q view (32,6,197,64) angles (6,196,32)")
def _():
    qkv = randn(B, N, 3, NH, HD, seed=80)
    q = qkv.permute(2, 0, 3, 1, 4)[0]  # (B, NH, N, HD), strided
    angles = randn(NH, NP, HD // 2, seed=81)
    return forward(lambda: rope_apply(q, angles, 1))


@case(V, "rope_apply (32,6,197,64) backward")
def _():
    q, angles = leaf(B, NH, N, HD, seed=82), leaf(NH, NP, HD // 2, seed=81)
    return backward([q, angles], lambda: rope_apply(q, angles, 1))


@case(V, "sdpa fused (32,6,197,64)")
def _():
    q, k, v = (randn(B, NH, N, HD, seed=s) for s in (90, 91, 92))
    return forward(lambda: F.scaled_dot_product_attention(q, k, v))


@case(V, "sdpa fused (32,6,197,64) backward")
def _():
    q, k, v = (leaf(B, NH, N, HD, seed=s) for s in (90, 91, 92))
    return backward([q, k, v], lambda: F.scaled_dot_product_attention(q, k, v))


@case(V, "dropout p=0.1 (32,197,384)")
def _():
    x = randn(B, N, C, seed=100)
    return forward(lambda: F.dropout(x, 0.1, True))


@case(V, "drop_path p=0.1 (32,197,384)")
def _():
    x = randn(B, N, C, seed=100)
    return forward(lambda: drop_path(x, 0.1))


@case(V, "cross_entropy (32,1000)")
def _():
    logits, target = randn(B, 1000, seed=110), torch.arange(B) * 37 % 1000
    return forward(lambda: F.cross_entropy(logits, target))


@case(V, "cross_entropy (32,1000) backward")
def _():
    logits, target = leaf(B, 1000, seed=110), torch.arange(B) * 37 % 1000
    return backward([logits], lambda: F.cross_entropy(logits, target))


@case(V, "sum over tokens (32,197,384)")
def _():
    x = randn(B, N, C, seed=3)
    return forward(lambda: x.sum(1))


@case(V, "mean over tokens (32,197,384)")
def _():
    x = randn(B, N, C, seed=3)
    return forward(lambda: x.mean(1))


@case(V, "cat cls token (32,1,384)+(32,196,384)")
def _():
    cls, tokens = randn(1, 1, C, seed=120), randn(B, NP, C, seed=121)
    return forward(lambda: torch.cat([cls.expand(B, -1, -1), tokens], 1))


@case(V, "interpolate bicubic (1,384,14,14)->16x16")
def _():
    pe = randn(1, C, 14, 14, seed=130)
    return forward(lambda: F.interpolate(pe, size=(16, 16), mode="bicubic", align_corners=False))


def vit_s16_param_shapes():
    s = [(C, 3, 16, 16), (C,), (1, 1, C), (1, NP + 1, C)]
    for _ in range(12):
        s += [(C,), (C,), (3 * C, C), (3 * C,), (C, C), (C,), (2, NH, HD // 2),
              (C,), (C,), (MLP, C), (MLP,), (C, MLP), (C,)]
    return s + [(C,), (C,), (1000, C), (1000,)]


_n_params = sum(torch.Size(s).numel() for s in vit_s16_param_shapes())


@case(V, f"adamw step ViT-S/16 params ({_n_params / 1e6:.1f}M)")
def _():
    params = []
    for i, s in enumerate(vit_s16_param_shapes()):
        p = leaf(*s, seed=200 + 2 * i)
        p.grad = randn(*s, seed=201 + 2 * i)
        params.append(p)
    # PyTorch's default on CPU: foreach=None and fused=None resolve to the per-tensor loop.
    opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05)
    return opt.step, None


# ---- Swin-T stage 1 @224, batch 32 (see train/bench/bench_ops_swin.cpp) ---------------------
S = "swin_t"
H = W = 56
SC, WS, SN, SNH, SHD, SMLP = 96, 7, 49, 3, 32, 384
NW, BW, L = 64, 2048, 3136
add_linear_cases(S, (B, L), 100352, [("qkv", SC, 3 * SC), ("proj", SC, SC), ("fc1", SC, SMLP), ("fc2", SMLP, SC)])


@case(S, "linear merge reduction (25088x384)->192")
def _():
    x, w = randn(B, L // 4, 4 * SC, seed=25), randn(2 * SC, 4 * SC, seed=26)
    return forward(lambda: F.linear(x, w))


@case(S, "matmul q.kT (2048,3,49,32)x(32,49)")
def _():
    a, b = randn(BW, SNH, SN, SHD, seed=30), randn(BW, SNH, SN, SHD, seed=31)
    return forward(lambda: torch.matmul(a, b.transpose(-2, -1)))


@case(S, "matmul p.v (2048,3,49,49)x(49,32)")
def _():
    a, b = randn(BW, SNH, SN, SN, seed=32), randn(BW, SNH, SN, SHD, seed=33)
    return forward(lambda: torch.matmul(a, b))


@case(S, "conv2d patch embed 3->96 k4 s4 (32,3,224,224)")
def _():
    img, w, b = randn(B, 3, 224, 224, seed=40), randn(SC, 3, 4, 4, seed=41), randn(SC, seed=42)
    return forward(lambda: F.conv2d(img, w, b, stride=4))


add_norm_softmax_gelu(S, (B, L, SC), (BW, SNH, SN, SN), (B, L, SMLP))


@case(S, "add residual (32,3136,96)")
def _():
    a, b = randn(B, L, SC, seed=1), randn(B, L, SC, seed=2)
    return forward(lambda: torch.add(a, b))


@case(S, "rope_apply q view (2048,3,49,32) angles (3,49,16)")
def _():
    qkv = randn(BW, SN, 3, SNH, SHD, seed=80)
    q = qkv.permute(2, 0, 3, 1, 4)[0]
    angles = randn(SNH, SN, SHD // 2, seed=81)
    return forward(lambda: rope_apply(q, angles, 0))


@case(S, "rope_apply (2048,3,49,32) backward")
def _():
    q, angles = leaf(BW, SNH, SN, SHD, seed=82), leaf(SNH, SN, SHD // 2, seed=81)
    return backward([q, angles], lambda: rope_apply(q, angles, 0))


def swin_bias():
    rel = randn(1, SNH, SN, SN, seed=93)
    mask = (randn(NW, 1, SN, SN, seed=94) > 0).float() * -100.0
    return (rel + mask).reshape(NW * SNH, SN, SN).contiguous()


@case(S, "sdpa fused bias+mask (32,192,49,32)")
def _():
    q, k, v = (randn(B, NW * SNH, SN, SHD, seed=s) for s in (90, 91, 92))
    bias = swin_bias()
    return forward(lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=bias))


@case(S, "sdpa fused bias+mask (32,192,49,32) backward")
def _():
    q, k, v = (leaf(B, NW * SNH, SN, SHD, seed=s) for s in (90, 91, 92))
    bias = swin_bias().requires_grad_(True)
    return backward([q, k, v, bias], lambda: F.scaled_dot_product_attention(q, k, v, attn_mask=bias))


@case(S, "roll -3,-3 (32,56,56,96)")
def _():
    x = randn(B, H, W, SC, seed=140)
    return forward(lambda: torch.roll(x, (-3, -3), (1, 2)))


@case(S, "window_partition 7 (32,56,56,96)")
def _():
    x = randn(B, H, W, SC, seed=140)
    return forward(lambda: x.view(B, H // WS, WS, W // WS, WS, SC).permute(0, 1, 3, 2, 4, 5)
                   .contiguous().view(-1, WS * WS, SC))


@case(S, "window_reverse 7 (2048,49,96)")
def _():
    win = randn(BW, SN, SC, seed=141)
    return forward(lambda: win.view(B, H // WS, W // WS, WS, WS, SC).permute(0, 1, 3, 2, 4, 5)
                   .contiguous().view(B, H, W, SC))


@case(S, "patch merging cat (32,56,56,96)->(32,28,28,384)")
def _():
    x = randn(B, H, W, SC, seed=140)
    x0, x1, x2, x3 = x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]
    return forward(lambda: torch.cat([x0, x1, x2, x3], -1))


def blas_info():
    cfg = torch.__config__.show()
    m = re.search(r"BLAS_INFO=(\w+)", cfg)
    name = m.group(1) if m else "unknown"
    if "Math Kernel Library" in cfg:
        v = re.search(r"Math Kernel Library Version ([\w.\-]+)", cfg)
        name += f" (Intel MKL {v.group(1) if v else ''})".replace(" )", ")")
    return name


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="write the JSON here (default: stdout only)")
    ap.add_argument("--group", default="all", choices=["all", V, S])
    ap.add_argument("--filter", default="", help="only cases whose name contains TEXT")
    ap.add_argument("--budget", type=float, default=0.5, help="timing budget per case, seconds")
    ap.add_argument("--list", action="store_true", help="print the keys of the cases that would run, and exit")
    args = ap.parse_args()

    def selected(g, name):
        return (args.group == "all" or g == args.group) and (not args.filter or args.filter in name)

    if args.list:  # the cases that would run; builds no input (make() is not called)
        for g, name, _ in CASES:
            if selected(g, name):
                print(f"{g}/{name}")
        return 0

    threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count())
    torch.set_num_threads(threads)
    blas = blas_info()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, BLAS {blas}, "
          f"MKL available: {torch.backends.mkl.is_available()}, "
          f"mkldnn: {torch.backends.mkldnn.is_available()}")
    if not re.search(r"mkl|openblas", blas, re.I):
        print("warning: this PyTorch does not use MKL or OpenBLAS; its times are no fair reference",
              file=sys.stderr)
    ms = {}
    for g, name, make in CASES:
        if not selected(g, name):
            continue
        run, prepare = make()
        ms[f"{g}/{name}"] = median_seconds(run, prepare, args.budget) * 1e3
        print(f"{g}/{name:<52} {ms[f'{g}/{name}']:9.3f} ms", flush=True)
        del run, prepare
    result = {"ms": ms, "torch": torch.__version__, "threads": threads, "blas": blas}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
