#!/usr/bin/env python3
"""check_tfevents.py: reads a run's TensorBoard event files with TensorBoard's own
EventAccumulator and prints every scalar, as a by-hand check that ropevit's hand-written
writer (train/log/event_writer.*) produces files TensorBoard accepts. Not used by the tests.

    pip install tensorboard
    python3 tools/check_tfevents.py RUN_DIR/tb [--expect-tags train/loss,val/top1]

Exits 1 if no scalar was read, an expected tag is missing, or a tag's steps are not strictly
increasing (which TensorBoard's restart purge, triggered by our session_log START, guarantees
for a resumed run)."""
import argparse
import sys

from tensorboard.backend.event_processing import event_accumulator


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("dir", help="folder holding events.out.tfevents.* files")
    ap.add_argument("--expect-tags", default="", help="comma-separated tags that must be present")
    args = ap.parse_args()

    # size_guidance 0 = keep every point (the UI default keeps a reservoir of 1000 per tag)
    acc = event_accumulator.EventAccumulator(args.dir, size_guidance={event_accumulator.SCALARS: 0})
    acc.Reload()
    tags = acc.Tags()["scalars"]
    ok = bool(tags)
    if not tags:
        print("no scalars read from", args.dir)
    for tag in sorted(tags):
        events = acc.Scalars(tag)
        steps = [e.step for e in events]
        print(f"{tag}: {len(events)} points")
        for e in events:
            print(f"  step {e.step:>8}  value {e.value:.9g}  wall_time {e.wall_time:.3f}")
        if any(b <= a for a, b in zip(steps, steps[1:])):
            print(f"  ERROR: steps of {tag} are not strictly increasing")
            ok = False
    for tag in filter(None, args.expect_tags.split(",")):
        if tag not in tags:
            print(f"ERROR: expected tag {tag} is missing")
            ok = False
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
