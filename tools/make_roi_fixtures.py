#!/usr/bin/env python3
"""make_roi_fixtures.py: the small JPEGs that tests/unit/test_jpeg_roi.cpp decodes by region.

One natural photo (matplotlib's bundled grace_hopper.jpg), cut to an odd 150 x 113 (not a
multiple of the 16-px iMCU), saved by Pillow in every layout the region decode must handle:
chroma 4:4:4 / 4:2:2 / 4:2:0 (Pillow cannot write 4:1:1 or 4:4:0: the
test makes those with encode_jpeg), grey, progressive, restart markers (every MCU and every MCU
row), and 4:2:0 with each EXIF orientation 1..8. The test compares region decodes with full
decodes + crop of the same files, so no reference pixels are stored. Re-running gives identical
bytes (Pillow / libjpeg are deterministic). Run: python3 tools/make_roi_fixtures.py
They live apart from tests/fixtures/data/images: unit_image_decode replays every file there
under every truncation, which these 8 KB files would make 30x slower.
"""
import os

import matplotlib
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "data", "images_roi")


def main():
    src = Image.open(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg")).convert("RGB")
    # A face and a textured jacket: edges in every direction, where chroma upsampling matters.
    im = src.crop((100, 120, 400, 346)).resize((150, 113), Image.Resampling.LANCZOS)
    files = {
        "roi_444.jpg": dict(subsampling="4:4:4"),
        "roi_422.jpg": dict(subsampling="4:2:2"),
        "roi_420.jpg": dict(subsampling="4:2:0"),
        "roi_progressive.jpg": dict(subsampling="4:2:0", progressive=True),
        "roi_restart_blocks.jpg": dict(subsampling="4:2:0", restart_marker_blocks=1),
        "roi_restart_rows.jpg": dict(subsampling="4:2:0", restart_marker_rows=1),
    }
    for name, kw in files.items():
        im.save(os.path.join(OUT, name), quality=90, **kw)
    im.convert("L").save(os.path.join(OUT, "roi_grey.jpg"), quality=90)
    for o in range(1, 9):
        exif = Image.Exif()
        exif[0x0112] = o
        im.save(os.path.join(OUT, f"roi_exif{o}.jpg"), quality=90, subsampling="4:2:0", exif=exif)
    for name in sorted(os.listdir(OUT)):
        if name.startswith("roi_"):
            with Image.open(os.path.join(OUT, name)) as f:
                print(name, f.size, f.mode, getattr(f, "layer", None), os.path.getsize(os.path.join(OUT, name)))


if __name__ == "__main__":
    main()
