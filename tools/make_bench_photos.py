#!/usr/bin/env python3
"""make_bench_photos.py: real-photo-like JPEGs for `ropevit bench data --dataset imagefolder`.

Writes N (default 50) JPEGs of 500x375 (every fourth one 375x500) into OUT/photos/: crops of the
sample photos bundled with scikit-image and matplotlib, resized with Lanczos, flipped at random,
saved with Pillow at quality 75 / 85 / 90 / 95 and 4:2:0 chroma (as most camera / web JPEGs).
The files are for benchmarking only and are NOT committed (the sample images carry their own
licences); re-run this script to get the same bytes (seeded).

    pip install scikit-image   # if missing
    python3 tools/make_bench_photos.py /tmp/jpeg_photos
    ./build/ropevit bench data --dataset imagefolder --data-dir /tmp/jpeg_photos --workers 2
"""
import argparse
import os
import random

import numpy as np
from PIL import Image


def sources():
    """RGB uint8 arrays of the bundled sample photos (the ones that load)."""
    out = []
    try:
        import skimage.data as sd
        for name in ["astronaut", "coffee", "chelsea", "rocket", "motorcycle_left", "hubble_deep_field",
                     "immunohistochemistry", "retina", "colorwheel", "cat", "logo", "stereo_motorcycle"]:
            f = getattr(sd, name, None)
            if f is None:
                continue
            try:
                a = f()
            except Exception:  # a data file that needs a download (pooch) and is not there
                continue
            if isinstance(a, tuple):
                a = a[0]
            a = np.asarray(a)
            if a.ndim == 3 and a.shape[2] >= 3:
                out.append(a[:, :, :3].astype(np.uint8))
    except ImportError:
        pass
    try:
        import matplotlib.cbook as cb
        with cb.get_sample_data("grace_hopper.jpg") as fh:
            out.append(np.asarray(Image.open(fh).convert("RGB")))
    except Exception:
        pass
    if not out:
        raise SystemExit("no sample photos found: pip install scikit-image matplotlib")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    srcs = sources()
    d = os.path.join(args.out, "photos")
    os.makedirs(d, exist_ok=True)
    for i in range(args.count):
        a = srcs[i % len(srcs)]
        h, w = a.shape[:2]
        # A random crop of 60-100% of each side, so that each file differs.
        ch, cw = int(h * rng.uniform(0.6, 1.0)), int(w * rng.uniform(0.6, 1.0))
        t, l = rng.randint(0, h - ch), rng.randint(0, w - cw)
        im = Image.fromarray(a[t:t + ch, l:l + cw])
        size = (375, 500) if i % 4 == 3 else (500, 375)
        im = im.resize(size, Image.LANCZOS)
        if rng.random() < 0.5:
            im = im.transpose(Image.FLIP_LEFT_RIGHT)
        q = [75, 85, 90, 95][i % 4]
        im.save(os.path.join(d, f"photo_{i:03d}.jpg"), quality=q, subsampling=2)
    print(f"{args.count} JPEGs from {len(srcs)} sample photos in {d}")


if __name__ == "__main__":
    main()
