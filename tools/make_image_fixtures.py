#!/usr/bin/env python3
"""make_image_fixtures.py: the small image files the decoder tests read, and what Pillow decodes
them to.

Writes tests/fixtures/data/images/*.{jpg,png,gif,bmp,bin} and
tests/fixtures/data/images_ref.safetensors, which holds for each decodable file "<file>" the
(H, W, 3) uint8 pixels of Image.open(f).convert("RGB") (after ImageOps.exif_transpose for the
EXIF ones), "<file>.indices" the raw (H, W) samples of the label-map PNGs, and
"<file>.scale<d>" the 1/d-scaled decode of big.jpg as Pillow's draft mode gives it (the same
libjpeg DCT scaling). Deterministic: re-running gives identical bytes.

Cases: baseline 4:2:0 / 4:4:4 / progressive / grey / CMYK (Adobe, inverted) JPEGs, all eight
EXIF orientations, PNG RGB / RGBA / grey / 16-bit grey / 16-bit RGB / palette (8 and 4 bit,
plain and Adam7-interlaced) / grey label map, GIF, BMP, and the broken ones: truncated JPEG and
PNG, garbage with a JPEG magic, garbage, an empty file.

  python3 tools/make_image_fixtures.py
"""
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image, ImageOps
from safetensors.numpy import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "data")
OUT = os.path.join(ROOT, "images")


def pattern(h, w, seed):
    """Smooth colour ramps plus noise: edges and flat parts, so every DCT / filter path runs."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / max(w - 1, 1)
    g = 255 * y / max(h - 1, 1)
    b = 127 + 120 * np.sin(x / 3.0) * np.cos(y / 4.0)
    im = np.stack([r, g, b], -1) + rng.uniform(-20, 20, (h, w, 3))
    return np.clip(np.round(im), 0, 255).astype(np.uint8)


def png_bytes(rows, width, height, depth, ctype, palette=None, interlace=False):
    """A PNG written by hand (Pillow writes neither 16-bit RGB nor interlaced files).
    rows(x0, y0, dx, dy) -> raw bytes of the sub-image, rows without filter bytes, as a list."""
    def chunk(t, body):
        return struct.pack(">I", len(body)) + t + body + struct.pack(">I", zlib.crc32(t + body) & 0xFFFFFFFF)
    passes = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)] \
        if interlace else [(0, 0, 1, 1)]
    raw = b""
    for k, p in enumerate(passes):
        for i, row in enumerate(rows(*p)):
            f = (i + k) % 5 if len(row) else 0   # every filter type, cycling
            raw += bytes([f]) + filt(row, rows(*p)[i - 1] if i else None, f, 2 * 3 if depth == 16 else 1)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, ctype, 0, 0, int(interlace)))
    if palette is not None:
        data += chunk(b"PLTE", bytes(palette))
    data += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    return data


def filt(row, prev, f, bpp):
    row = bytes(row)
    prev = bytes(prev) if prev is not None else bytes(len(row))
    out = bytearray(len(row))
    for i in range(len(row)):
        a = row[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if f == 0: p = 0
        elif f == 1: p = a
        elif f == 2: p = b
        elif f == 3: p = (a + b) // 2
        else:
            pp = a + b - c
            pa, pb, pc = abs(pp - a), abs(pp - b), abs(pp - c)
            p = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        out[i] = (row[i] - p) & 0xFF
    return bytes(out)


def pack_bits(vals, depth):
    out, acc, n = bytearray(), 0, 0
    for v in vals:
        acc = (acc << depth) | int(v)
        n += depth
        if n == 8:
            out.append(acc); acc, n = 0, 0
    if n:
        out.append(acc << (8 - n))
    return bytes(out)


def exif_with_orientation(o):
    """A minimal big-endian TIFF IFD0 with one entry: Orientation (0x0112, SHORT, 1) = o."""
    tiff = b"MM\x00\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1) + struct.pack(">HHIHH", 0x0112, 3, 1, o, 0) + b"\x00\x00\x00\x00"
    return b"Exif\x00\x00" + tiff


def main():
    os.makedirs(OUT, exist_ok=True)
    files, ref = {}, {}

    def save_pil(name, im, **kw):
        buf = io.BytesIO()
        im.save(buf, **kw)
        files[name] = buf.getvalue()

    base = pattern(29, 37, 0)
    rgb = Image.fromarray(base)
    save_pil("rgb.jpg", rgb, format="JPEG", quality=90)
    save_pil("rgb444.jpg", rgb, format="JPEG", quality=95, subsampling=0)
    save_pil("progressive.jpg", rgb, format="JPEG", quality=85, progressive=True)
    save_pil("grey.jpg", rgb.convert("L"), format="JPEG", quality=90)
    save_pil("cmyk.jpg", rgb.convert("CMYK"), format="JPEG", quality=90)
    for o in range(1, 9):
        # The JPEG APP1 segment is written by Pillow from the raw bytes given as exif=.
        save_pil(f"exif{o}.jpg", Image.fromarray(pattern(13, 21, o)), format="JPEG", quality=90, exif=exif_with_orientation(o))
    save_pil("big.jpg", Image.fromarray(pattern(83, 121, 9)), format="JPEG", quality=90)

    save_pil("rgb.png", rgb, format="PNG")
    rgba = np.concatenate([base, pattern(29, 37, 1)[..., :1]], -1)
    save_pil("rgba.png", Image.fromarray(rgba, "RGBA"), format="PNG")
    save_pil("grey.png", rgb.convert("L"), format="PNG")
    save_pil("rgb.gif", rgb.quantize(64), format="GIF")
    save_pil("rgb.bmp", rgb, format="BMP")

    h, w = 11, 13
    g16 = (np.arange(h * w, dtype=np.uint32).reshape(h, w) * 461 % 65536).astype(np.uint16)
    files["grey16.png"] = png_bytes(lambda x0, y0, dx, dy: [g16[y, x0::dx].astype(">u2").tobytes() for y in range(y0, h, dy)],
                                    w, h, 16, 0)
    c16 = (np.arange(h * w * 3, dtype=np.uint32).reshape(h, w, 3) * 997 % 65536).astype(np.uint16)
    files["rgb16.png"] = png_bytes(lambda x0, y0, dx, dy: [c16[y, x0::dx].astype(">u2").tobytes() for y in range(y0, h, dy)],
                                   w, h, 16, 2)

    # Label maps: palette PNGs (8 and 4 bit, plain and interlaced) and a grey one (values 0..150).
    lab = (np.arange(h * w).reshape(h, w) * 7 % 23).astype(np.uint8)
    pal = [int(v) for v in np.random.RandomState(5).randint(0, 256, 23 * 3)]
    lab4 = lab % 16
    for name, vals, depth, inter, npal in [("palette.png", lab, 8, False, 23), ("palette4.png", lab4, 4, False, 16),
                                           ("palette_interlaced.png", lab, 8, True, 23), ("palette4_interlaced.png", lab4, 4, True, 16)]:
        files[name] = png_bytes(lambda x0, y0, dx, dy, v=vals, d=depth: [pack_bits(v[y, x0::dx], d) for y in range(y0, h, dy)],
                                w, h, depth, 3, palette=pal[:3 * npal], interlace=inter)
        ref[name + ".indices"] = vals
    glab = (np.arange(h * w).reshape(h, w) * 13 % 151).astype(np.uint8)
    save_pil("label_grey.png", Image.fromarray(glab, "L"), format="PNG")
    ref["label_grey.png.indices"] = glab

    # Broken files.
    files["truncated.jpg"] = files["rgb.jpg"][: len(files["rgb.jpg"]) // 2]
    files["truncated.png"] = files["rgb.png"][: len(files["rgb.png"]) // 2]
    rng = np.random.RandomState(7)
    files["garbage.jpg"] = b"\xff\xd8\xff\xe0" + rng.randint(0, 256, 300).astype(np.uint8).tobytes()
    files["garbage.bin"] = rng.randint(0, 256, 300).astype(np.uint8).tobytes()
    files["empty.jpg"] = b""

    for name, data in files.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)

    # What Pillow decodes them to.
    for name in files:
        if name.split(".")[0] in ("truncated", "garbage", "empty") or name.startswith("palette") or name == "label_grey.png":
            continue
        im = Image.open(os.path.join(OUT, name))
        if name.startswith("exif"):
            im = ImageOps.exif_transpose(im)
        if name in ("grey16.png",):
            # PIL clips 16-bit grey to 255 when converting to RGB; ropevit keeps the high byte, as
            # PIL does for 16-bit RGB. The reference is the high byte.
            ref[name] = np.repeat((np.asarray(im).astype(np.uint32) >> 8).astype(np.uint8)[..., None], 3, -1)
            continue
        ref[name] = np.ascontiguousarray(np.asarray(im.convert("RGB")))
    for name in ("palette.png", "palette4.png"):
        ref[name] = np.ascontiguousarray(np.asarray(Image.open(os.path.join(OUT, name)).convert("RGB")))
    assert (np.asarray(Image.open(os.path.join(OUT, "palette.png"))) == lab).all()
    for d in (2, 4, 8):
        im = Image.open(os.path.join(OUT, "big.jpg"))
        im.draft("RGB", (121 // d, 83 // d))  # Pillow picks scale = min(size // requested)
        assert im.size == ((121 + d - 1) // d, (83 + d - 1) // d), im.size
        ref[f"big.jpg.scale{d}"] = np.ascontiguousarray(np.asarray(im.convert("RGB")))
    save_file({k: ref[k] for k in sorted(ref)}, os.path.join(ROOT, "images_ref.safetensors"))
    print(f"wrote {len(files)} files to {OUT} and {len(ref)} references")


if __name__ == "__main__":
    main()
