#!/usr/bin/env python3
"""bench_torch_models.py: times timm's model the way `ropevit bench model` times ours.

Same model name (timm's registry), same batch and image size, float32, random weights, the same
thread count (torch.set_num_threads(OMP_NUM_THREADS), default os.cpu_count()), drop path 0 unless
given, and the same method as train/bench/bench_model.cpp:
  forward           model.eval(), torch.no_grad(): `--warmup` untimed calls, `--iters` timed
  forward+backward  model.train(): zero_grad(set_to_none=True), F.cross_entropy(model(x), y),
                    backward; the same warm-up and iterations
and the median (sorted[n // 2]). Progress goes to stderr. KEY=VALUE arguments are passed to
timm.create_model as keywords (numbers parsed: depth=1, drop_path_rate=0.1).

Writes {"models": {key: {"forward_ms", "train_ms", ...}}, "torch", "timm", "threads", "blas"}
as JSON (--out), for `ropevit bench model --torch FILE` (or `--with-torch`, which runs this).

usage: tools/bench_torch_models.py NAME [--batch N] [--img-size H W] [--iters K] [--warmup W]
                                   [--out FILE] [KEY=VALUE ...]
"""
import argparse
import json
import os
import re
import sys
import time

import torch
import torch.nn.functional as F


def parse_value(v):
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(v.lower(), v)


def time_calls(f, warmup, iters, what):
    for _ in range(warmup):
        f()
    times = []
    for i in range(iters):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
        print(f"  {what:<17} {i + 1}/{iters}  {times[-1] * 1e3:9.1f} ms", file=sys.stderr, flush=True)
    return times


def median(times):
    return sorted(times)[len(times) // 2]  # the same element as the C++ harness takes


def blas_info():
    m = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return m.group(1) if m else "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name")
    ap.add_argument("overrides", nargs="*", help="KEY=VALUE keywords for timm.create_model")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--img-size", type=int, nargs=2, metavar=("H", "W"))
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--out")
    args = ap.parse_intermixed_args()
    import timm

    kwargs = {}
    for o in args.overrides:
        if "=" not in o:
            ap.error(f"expected KEY=VALUE, got '{o}'")
        k, v = o.split("=", 1)
        kwargs[k] = parse_value(v)
    kwargs.setdefault("drop_path_rate", 0.0)
    threads = int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count())
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    if args.img_size:
        kwargs["img_size"] = tuple(args.img_size)
    model = timm.create_model(args.name, pretrained=False, **kwargs)
    h, w = args.img_size or model.default_cfg["input_size"][1:]
    in_chans = model.default_cfg["input_size"][0] if "in_chans" not in kwargs else kwargs["in_chans"]
    x = torch.randn(args.batch, in_chans, h, w)
    classes = getattr(model, "num_classes", 1000) or 1
    y = torch.arange(args.batch) * 7919 % classes

    # The same key as ropevit's: name, batch, size, the other overrides sorted (drop_path_rate=0
    # is ropevit's default too, and it is written as given there: "0").
    extra = dict(o.split("=", 1) for o in args.overrides)
    extra.setdefault("drop_path_rate", "0")
    extra.pop("img_size", None)
    key = f"model/{args.name} b{args.batch} {h}x{w}" + "".join(f" {k}={v}" for k, v in sorted(extra.items()))

    print(f"torch {torch.__version__}, timm {timm.__version__}, {torch.get_num_threads()} threads, "
          f"BLAS {blas_info()}", file=sys.stderr)
    model.eval()

    def forward():
        with torch.no_grad():
            model(x)

    print(f"torch forward (batch {args.batch}, {threads} threads)", file=sys.stderr)
    fwd = time_calls(forward, args.warmup, args.iters, "forward")
    model.train()

    def step():
        model.zero_grad(set_to_none=True)
        out = model(x)
        loss = F.cross_entropy(out, y) if model.num_classes else out.sum()
        loss.backward()

    print("torch forward+backward", file=sys.stderr)
    trn = time_calls(step, args.warmup, args.iters, "forward+backward")
    entry = {"forward_ms": median(fwd) * 1e3, "train_ms": median(trn) * 1e3,
             "forward_times_ms": [t * 1e3 for t in fwd], "train_times_ms": [t * 1e3 for t in trn],
             "batch": args.batch, "img_h": h, "img_w": w}
    print(f"{key}: forward {entry['forward_ms']:.1f} ms, forward+backward {entry['train_ms']:.1f} ms")
    result = {"models": {key: entry}, "torch": torch.__version__, "timm": timm.__version__, "threads": threads,
              "blas": blas_info()}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
