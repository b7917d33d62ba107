#!/usr/bin/env python3
"""bench_table.py: merges rounds of scripts/bench into one Markdown table with the bars.

Each argument is a result folder of scripts/bench (runs/bench/<date>/ with ropevit.jsonl and,
optionally, torch.json), or a folder holding models.jsonl: the lines `ropevit bench model
--out DIR/models.jsonl` appends (with --with-torch or --torch, each line carries PyTorch's times
too). Model lines go to a second table, "Whole models", with the bar: PyTorch fwd+bwd / ours >= 1.00. For every case it keeps the smallest median over the rounds, on each
side separately (on a shared machine, the least disturbed round is the best estimate), and
checks the bars of docs/perf.md:
  products with an OpenBLAS reference (linear, matmul): OpenBLAS time / ours >= 0.90
  every other op: PyTorch time / ours >= 1.00
Prints the table, then the list of cases that miss their bar.

usage: tools/bench_table.py runs/bench/A runs/bench/B ...
"""
import json
import os
import sys


def load(dirs):
    ours, ref, torch, meta = {}, {}, {}, {}
    order = []
    for d in dirs:
        with open(os.path.join(d, "ropevit.jsonl")) as f:
            for line in f:
                r = json.loads(line)
                k = r["case"]
                if k not in ours:
                    order.append(k)
                if k not in ours or r["ms"] < ours[k]["ms"]:
                    ours[k] = r
                if "reference_ms" in r:
                    ref[k] = min(ref.get(k, 1e30), r["reference_ms"])
        tp = os.path.join(d, "torch.json")
        if os.path.exists(tp):
            with open(tp) as f:
                t = json.load(f)
            meta = {k: t[k] for k in ("torch", "threads", "blas")}
            for k, v in t["ms"].items():
                torch[k] = min(torch.get(k, 1e30), v)
    return order, ours, ref, torch, meta


def load_models(dirs):
    """Best median per model case and side over the rounds (each line is one round)."""
    best, order = {}, []
    for d in dirs:
        p = os.path.join(d, "models.jsonl")
        if not os.path.exists(p):
            continue
        with open(p) as f:
            for line in f:
                r = json.loads(line)
                k = r["case"]
                if k not in best:
                    order.append(k)
                    best[k] = {}
                for field in ("forward_ms", "train_ms", "torch_forward_ms", "torch_train_ms"):
                    if field in r:
                        best[k][field] = min(best[k].get(field, 1e30), r[field])
                best[k].setdefault("rounds", 0)
                best[k]["rounds"] += 1
    return order, best


def print_models(order, best):
    print("| model case | ours fwd ms | PyTorch fwd ms | PyTorch / us | ours fwd+bwd ms | PyTorch fwd+bwd ms "
          "| PyTorch / us | rounds | bar |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|")
    misses = []
    for k in order:
        b = best[k]
        cells = [k[len("model/"):] if k.startswith("model/") else k, f"{b['forward_ms']:.1f}"]
        if "torch_forward_ms" in b:
            cells += [f"{b['torch_forward_ms']:.1f}", f"{b['torch_forward_ms'] / b['forward_ms']:.2f}"]
        else:
            cells += ["", ""]
        cells.append(f"{b['train_ms']:.1f}")
        bar = ""
        if "torch_train_ms" in b:
            ratio = b["torch_train_ms"] / b["train_ms"]
            cells += [f"{b['torch_train_ms']:.1f}", f"{ratio:.2f}"]
            bar = "ok" if ratio >= 1.0 else "**miss** (fwd+bwd slower than PyTorch)"
            if ratio < 1.0:
                misses.append((k, f"fwd+bwd {ratio:.2f} of PyTorch's speed"))
        else:
            cells += ["", ""]
        cells += [str(b["rounds"]), bar]
        print("| " + " | ".join(cells) + " |")
    print(f"\n{len(misses)} models miss their bar:")
    for k, why in misses:
        print(f"- {k}: {why}")


def main(dirs):
    if not dirs or any(d in ("-h", "--help") for d in dirs):
        print(__doc__.strip())
        sys.exit(0 if dirs else 2)
    for d in dirs:
        if not any(os.path.isfile(os.path.join(d, f)) for f in ("ropevit.jsonl", "models.jsonl")):
            sys.exit(f"bench_table.py: '{d}' is not a result folder (no ropevit.jsonl or models.jsonl in it)")
    model_order, model_best = load_models(dirs)
    op_dirs = [d for d in dirs if os.path.isfile(os.path.join(d, "ropevit.jsonl"))]
    if model_order:
        print("Whole models (best median per side over the rounds)\n")
        print_models(model_order, model_best)
        if op_dirs:
            print()
    if not op_dirs:
        return
    dirs = op_dirs
    order, ours, ref, torch, meta = load(dirs)
    if meta:
        print(f"PyTorch {meta['torch']}, {meta['threads']} threads, BLAS {meta['blas']}; "
              f"best of {len(dirs)} rounds\n")
    print("| case | ms | GFLOP/s | GB/s | % peak | OpenBLAS ms | BLAS / us | PyTorch ms | PyTorch / us | bar |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    misses = []
    group = None
    for k in order:
        r = ours[k]
        g, name = k.split("/", 1)
        if g != group:
            print(f"| **{g}** | | | | | | | | | |")
            group = g
        ms = r["ms"]
        cells = [name, f"{ms:.2f}", f"{r['gflops']:.1f}", f"{r['gbps']:.2f}", f"{100 * r['peak_fraction']:.0f}%"]
        bar = ""
        if k in ref:
            ratio = ref[k] / ms
            cells += [f"{ref[k]:.2f}", f"{ratio:.2f}"]
            ok = ratio >= 0.90
            bar = "ok" if ok else "**miss** (< 0.90 of OpenBLAS)"
            if not ok:
                misses.append((k, f"{ratio:.2f} of OpenBLAS ({ms:.1f} ms vs {ref[k]:.1f} ms)"))
        else:
            cells += ["", ""]
        if k in torch:
            tr = torch[k] / ms
            cells += [f"{torch[k]:.2f}", f"{tr:.2f}"]
            if k not in ref:
                ok = tr >= 1.0
                bar = "ok" if ok else "**miss** (slower than PyTorch)"
                if not ok:
                    misses.append((k, f"{tr:.2f} of PyTorch's speed ({ms:.1f} ms vs {torch[k]:.1f} ms)"))
        else:
            cells += ["", ""]
        cells.append(bar)
        print("| " + " | ".join(cells) + " |")
    print(f"\n{len(misses)} cases miss their bar:")
    for k, why in misses:
        print(f"- {k}: {why}")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    main(sys.argv[1:])
