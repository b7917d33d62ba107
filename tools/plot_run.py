#!/usr/bin/env python3
"""plot_run.py: matplotlib plots of one or more ropevit runs, for users who prefer Python
plots to the PNGs `ropevit` draws itself (train/log/run_plots.*). Reads each run's log.jsonl
(every logged scalar; see docs/formats.md) and, when present, summary.csv.

    python3 tools/plot_run.py RUN_DIR [RUN_DIR ...] [-o OUT_DIR] [--show]

Writes loss.png, lr.png, accuracy.png and, when runs logged "eval_res" records,
acc_vs_res.png (top-1 vs evaluation image size, one line per run) into OUT_DIR (default: the
first run's plots_py/). null values (a logged NaN/Inf, flagged under "nonfinite") break the line."""
import argparse
import csv
import json
import math
import os
import sys


def read_log(run):
    path = os.path.join(run, "log.jsonl")
    records = []
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.endswith("\n"):
                break  # a half-written last line (a crash): skipped, as ropevit does
            records.append(json.loads(line))
    return records


def series(records, kind, key):
    xs, ys = [], []
    for r in records:
        if r.get("kind") == kind and key in r:
            xs.append(r["step"])
            v = r[key]
            ys.append(math.nan if v is None else v)
    return xs, ys


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+")
    ap.add_argument("-o", "--out", default=None)
    ap.add_argument("--show", action="store_true")
    args = ap.parse_args()
    try:
        import matplotlib
        if not args.show:
            matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install matplotlib); `ropevit` writes its own PNGs "
              "into RUN_DIR/plots/ without it", file=sys.stderr)
        return 1
    out = args.out or os.path.join(args.runs[0], "plots_py")
    os.makedirs(out, exist_ok=True)
    logs = {os.path.basename(os.path.normpath(r)): read_log(r) for r in args.runs}

    def figure(name, title, ylabel, lines, xlabel="step", markers=False):
        fig, ax = plt.subplots(figsize=(8, 5))
        drawn = False
        for label, (xs, ys) in lines:
            if xs:
                ax.plot(xs, ys, marker="o" if markers else None, label=label)
                drawn = True
        if not drawn:
            plt.close(fig)
            return
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = os.path.join(out, name)
        fig.savefig(path, dpi=100)
        print(path)
        if not args.show:
            plt.close(fig)

    many = len(logs) > 1
    figure("loss.png", "loss", "loss",
           [(f"{run} {k}" if many else k, series(rec, k, "loss")) for run, rec in logs.items() for k in ("train", "eval")])
    figure("lr.png", "learning rate", "lr", [(run, series(rec, "train", "lr")) for run, rec in logs.items()])
    figure("accuracy.png", "accuracy", "top-1 / top-5 (%)",
           [(f"{run} {k}" if many else k, series(rec, "eval", k)) for run, rec in logs.items() for k in ("top1", "top5")])
    sweeps = []
    for run, rec in logs.items():
        res = [r for r in rec if r.get("kind") == "eval_res"]
        if res:
            last = max(r["step"] for r in res)
            pts = sorted((r["img_size"], r["top1"]) for r in res if r["step"] == last)
            sweeps.append((run, ([p[0] for p in pts], [p[1] for p in pts])))
    figure("acc_vs_res.png", "top-1 vs resolution", "top-1 (%)", sweeps, xlabel="image size (px)", markers=True)

    for run in args.runs:  # summary.csv: print it, as a check that it parses as CSV
        path = os.path.join(run, "summary.csv")
        if os.path.exists(path):
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            print(f"{path}: {len(rows)} epochs, columns {list(rows[0].keys()) if rows else []}")
    if args.show:
        plt.show()
    return 0


if __name__ == "__main__":
    sys.exit(main())
