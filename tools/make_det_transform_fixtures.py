#!/usr/bin/env python3
"""Writes tests/fixtures/data/det_transforms_ref.safetensors: OpenCV's bilinear resize and
mmdetection's box arithmetic for the C++ detection transforms (tests/fixtures/test_det_transforms.cpp).

  resize cases:  "<case>.in" uint8 (H, W, C), "<case>.out" = cv2.resize(in, (w, h), INTER_LINEAR),
                 the resize mmcv.imresize / imrescale do for mmdet's Resize and RandomResize.
  box cases:     "<case>.boxes" f64 (K, 4) in, "<case>.out" f64 (K', 4) and "<case>.keep" i64 (K',):
                 the boxes after mmdet's Resize (rescale by the realised factors, clip), RandomCrop
                 (translate, clip, is_inside), FilterAnnotations (w, h > min) and RandomFlip, with
                 the parameters given in the metadata, written out with numpy as mmdet 3.x does it.
  metadata "cases": {case: {"op": ..., args}} - the C++ test runs every case.

Needs numpy, opencv-python-headless, safetensors. Small inputs: the file stays < 200 KB.
The committed file was written with opencv-python-headless 5.0.0 (cv2.__version__); re-running
gives identical bytes.
"""
import json
import os

import cv2
import numpy as np
from safetensors.numpy import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "data")


def test_image(h, w, c, seed):
    """Smooth gradients plus noise and a few hard edges: every rounding path gets exercised."""
    rs = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w]
    base = np.stack([(x * 255.0 / max(w - 1, 1)), (y * 255.0 / max(h - 1, 1)), ((x + y) * 7.0) % 256], -1)[..., :c]
    img = base + rs.randint(-40, 41, size=(h, w, c))
    img[h // 3: h // 2, w // 4: w // 2] = 255 - img[h // 3: h // 2, w // 4: w // 2]
    return np.clip(img, 0, 255).astype(np.uint8)


def rescale_size(h, w, long_side, short_side):
    """mmcv.rescale_size with a (long, short) scale and keep_ratio: one factor, int(x * f + 0.5)."""
    f = min(max(long_side, short_side) / max(h, w), min(long_side, short_side) / min(h, w))
    return int(h * f + 0.5), int(w * f + 0.5)


def det_boxes(boxes, H, W, p):
    """mmdet 3.x Resize(keep_ratio) -> RandomCrop -> FilterAnnotations -> RandomFlip on boxes."""
    nh, nw = p["resize"]
    sx, sy = nw / W, nh / H                         # Resize: scale_factor = (w_scale, h_scale)
    b = boxes * np.array([sx, sy, sx, sy])
    b[:, 0::2] = b[:, 0::2].clip(0, nw)             # clip_object_border
    b[:, 1::2] = b[:, 1::2].clip(0, nh)
    keep = np.arange(len(b))
    if "crop" in p:                                 # RandomCrop: translate, clip, is_inside
        top, left, ch, cw = p["crop"]
        b = b - np.array([left, top, left, top])
        b[:, 0::2] = b[:, 0::2].clip(0, cw)
        b[:, 1::2] = b[:, 1::2].clip(0, ch)
        inside = (b[:, 0] < cw) & (b[:, 1] < ch) & (b[:, 2] > 0) & (b[:, 3] > 0)
        b, keep = b[inside], keep[inside]
        nh, nw = ch, cw
    if "min_wh" in p:                               # FilterAnnotations(min_gt_bbox_wh)
        m = p["min_wh"]
        ok = ((b[:, 2] - b[:, 0]) > m) & ((b[:, 3] - b[:, 1]) > m)
        b, keep = b[ok], keep[ok]
    if p.get("flip"):                               # RandomFlip horizontal: x -> W - x
        b = np.stack([nw - b[:, 2], b[:, 1], nw - b[:, 0], b[:, 3]], 1)
    return b.reshape(-1, 4), keep


def main():
    tensors, cases = {}, {}

    def resize_case(name, h, w, c, oh, ow, seed):
        img = test_image(h, w, c, seed)
        out = cv2.resize(img, (ow, oh), interpolation=cv2.INTER_LINEAR)
        tensors[name + ".in"] = img
        tensors[name + ".out"] = out.reshape(oh, ow, c)
        cases[name] = {"op": "resize", "height": oh, "width": ow}

    resize_case("down_odd", 37, 53, 3, 23, 31, 0)
    resize_case("up_odd", 37, 53, 3, 61, 89, 1)
    resize_case("keep_ratio_1333_800", 37, 53, 3, *rescale_size(37, 53, 1333 // 16, 800 // 16), 2)
    resize_case("lsj_small", 41, 29, 3, 5, 4, 3)            # ratio ~0.1: most pixels skipped
    resize_case("half", 38, 54, 3, 19, 27, 4)               # 2x down: OpenCV's area path
    resize_case("one_axis", 37, 53, 3, 37, 80, 5)
    resize_case("wide_rows", 20, 97, 3, 33, 131, 6)         # long rows: many 16-byte steps, a tail
    resize_case("grey", 31, 45, 1, 17, 70, 7)
    resize_case("to_1x1", 9, 7, 3, 1, 1, 8)

    rs = np.random.RandomState(10)

    def box_case(name, H, W, boxes, p):
        out, keep = det_boxes(np.asarray(boxes, np.float64), H, W, p)
        tensors[name + ".boxes"] = np.asarray(boxes, np.float64)
        tensors[name + ".out"] = out.astype(np.float64)
        tensors[name + ".keep"] = keep.astype(np.int64)
        cases[name] = dict(op="boxes", H=H, W=W, **p)

    H, W = 427, 640
    boxes = np.concatenate([rs.uniform(0, 300, (12, 2)), rs.uniform(0, 300, (12, 2))], 1)
    boxes[:, 2:] = boxes[:, :2] + rs.uniform(0.5, 300, (12, 2))
    boxes[:, 2] = boxes[:, 2].clip(0, W)
    boxes[:, 3] = boxes[:, 3].clip(0, H)
    boxes[0] = [0, 0, W, H]
    boxes[1] = [100, 100, 100.004, 150]                     # thin: dropped by min_wh after LSJ
    nh, nw = rescale_size(H, W, 1333, 800)
    box_case("resize_1x", H, W, boxes, {"resize": [nh, nw]})
    box_case("resize_flip_1x", H, W, boxes, {"resize": [nh, nw], "flip": True})
    for k, ratio in enumerate([0.1, 0.73, 1.6, 2.0]):
        side = int(1024 * ratio)                             # RandomResize: int(scale * ratio)
        rh, rw = rescale_size(H, W, side, side)
        ch, cw = min(rh, 1024), min(rw, 1024)
        top, left = int(rs.randint(0, rh - ch + 1)), int(rs.randint(0, rw - cw + 1))
        box_case(f"lsj_{k}", H, W, boxes,
                 {"resize": [rh, rw], "crop": [top, left, ch, cw], "min_wh": 1e-2, "flip": bool(k % 2)})

    os.makedirs(ROOT, exist_ok=True)
    save_file({k: np.ascontiguousarray(tensors[k]) for k in sorted(tensors)},
              os.path.join(ROOT, "det_transforms_ref.safetensors"),
              metadata={"cases": json.dumps(cases, sort_keys=True)})  # one entry: Rust keeps hash order


if __name__ == "__main__":
    main()
