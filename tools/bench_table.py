#!/usr/bin/env python3
"""bench_table.py: merges rounds of scripts/bench into one Markdown table with the bars.

Each argument is a result folder of scripts/bench (runs/bench/<date>/ with ropevit.jsonl and,
optionally, torch.json). For every case it keeps the smallest median over the rounds, on each
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


def main(dirs):
    if not dirs or any(d in ("-h", "--help") for d in dirs):
        print(__doc__.strip())
        sys.exit(0 if dirs else 2)
    for d in dirs:
        if not os.path.isfile(os.path.join(d, "ropevit.jsonl")):
            sys.exit(f"bench_table.py: '{d}' is not a scripts/bench result folder (no ropevit.jsonl in it)")
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
