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

NAME = upernet_<backbone> (a ViT, e.g. upernet_vit_base_patch16_rope_mixed_224) times the segmenter
as train/bench/bench_seg_model.cpp does: the plain PyTorch UperNet of tools/make_seg_fixtures_upernet.py
(imported: UPerHead with channels 512, FCNHead with 256 on level 2, the BEiT-style neck) with the
ADE20k recipe's 150 classes on timm's ViT (dynamic_img_size, blocks 3, 6, 9, 12 of 12), at
--img-size (default 512 512), batch default 2 (train-mode BatchNorm needs more than one value per
channel in the 1x1 pooling branch):
  forward           eval, no_grad: decode logits resized (bilinear) to the input
  forward+backward  train: zero_grad(set_to_none=True), CE of the decode logits and 0.4 x CE of the
                    auxiliary logits, each resized to the labels (B, H, W), ignore 255; backward
--device cuda runs either kind on cuda:0 and synchronizes after every call.

Writes {"models": {key: {"forward_ms", "train_ms", ...}}, "torch", "timm", "threads", "blas"}
as JSON (--out), for `ropevit bench model --torch FILE` (or `--with-torch`, which runs this).

usage: tools/bench_torch_models.py NAME [--batch N] [--img-size H W] [--iters K] [--warmup W]
                                   [--device cpu|cuda] [--out FILE] [KEY=VALUE ...]
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


def build_upernet(backbone, h, w, kwargs):
    """The segmenter of bench_seg_model.cpp: timm's ViT under the fixtures' plain PyTorch UperNet."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import timm
    import make_seg_fixtures_upernet as ref  # the transcription tests/fixtures/test_upernet.cpp checks us against

    if "vit" not in backbone:
        raise SystemExit(f"bench_torch_models.py: the PyTorch UperNet reference takes a ViT backbone, got '{backbone}'")
    vit = timm.create_model(backbone, pretrained=False, img_size=(h, w), num_classes=0, dynamic_img_size=True,
                            **kwargs)
    depth, C = len(vit.blocks), vit.embed_dim
    out_indices = [depth // 4 - 1, depth // 2 - 1, 3 * depth // 4 - 1, depth - 1]  # 2, 5, 8, 11 of 12 (mmseg)
    net = torch.nn.Module()
    net.backbone = ref.VitBackbone(vit, out_indices)
    net.decode_head = ref.UPerHead([C] * 4, 512, 150)
    net.auxiliary_head = ref.FCNHead(C, 256, 150)
    return net


def blas_info():
    m = re.search(r"BLAS_INFO=(\w+)", torch.__config__.show())
    return m.group(1) if m else "unknown"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("name")
    ap.add_argument("overrides", nargs="*", help="KEY=VALUE keywords for timm.create_model")
    ap.add_argument("--batch", type=int, help="default 32 (upernet_*: 2)")
    ap.add_argument("--img-size", type=int, nargs=2, metavar=("H", "W"))
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
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
    dev = torch.device(args.device)
    seg = args.name.startswith("upernet_")
    if args.batch is None:
        args.batch = 2 if seg else 32
    if seg:
        h, w = args.img_size or (512, 512)
        model = build_upernet(args.name[len("upernet_"):], h, w, kwargs).to(dev)
        x = torch.randn(args.batch, 3, h, w, device=dev)
        y = (torch.arange(args.batch * h * w) * 7919 % 150).to(torch.uint8).view(args.batch, h, w).to(dev)
    else:
        if args.img_size:
            kwargs["img_size"] = tuple(args.img_size)
        model = timm.create_model(args.name, pretrained=False, **kwargs).to(dev)
        h, w = args.img_size or model.default_cfg["input_size"][1:]
        in_chans = model.default_cfg["input_size"][0] if "in_chans" not in kwargs else kwargs["in_chans"]
        x = torch.randn(args.batch, in_chans, h, w, device=dev)
        classes = getattr(model, "num_classes", 1000) or 1
        y = (torch.arange(args.batch) * 7919 % classes).to(dev)

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize()

    # The same key as ropevit's: name, batch, size, the other overrides sorted (drop_path_rate=0
    # is ropevit's default too, and it is written as given there: "0").
    extra = dict(o.split("=", 1) for o in args.overrides)
    extra.setdefault("drop_path_rate", "0")
    extra.pop("img_size", None)
    key = f"model/{args.name} b{args.batch} {h}x{w}" + (f" {args.device}" if args.device != "cpu" else "")
    key += "".join(f" {k}={v}" for k, v in sorted(extra.items()))

    print(f"torch {torch.__version__}, timm {timm.__version__}, {torch.get_num_threads()} threads, "
          f"BLAS {blas_info()}", file=sys.stderr)
    model.eval()

    def forward():
        with torch.no_grad():
            if seg:  # whole-image inference: decode logits resized to the input
                F.interpolate(model.decode_head(model.backbone(x)), size=(h, w), mode="bilinear", align_corners=False)
            else:
                model(x)
        sync()

    print(f"torch forward (batch {args.batch}, {threads} threads)", file=sys.stderr)
    fwd = time_calls(forward, args.warmup, args.iters, "forward")
    model.train()

    def seg_loss():
        feats = model.backbone(x)
        loss = 0
        for head, weight in ((model.decode_head, 1.0), (model.auxiliary_head, 0.4)):
            logits = F.interpolate(head(feats), size=(h, w), mode="bilinear", align_corners=False)
            loss = loss + weight * F.cross_entropy(logits, y.long(), ignore_index=255)
        return loss

    def step():
        model.zero_grad(set_to_none=True)
        if seg:
            loss = seg_loss()
        else:
            out = model(x)
            loss = F.cross_entropy(out, y) if model.num_classes else out.sum()
        loss.backward()
        sync()

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
