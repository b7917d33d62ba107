#!/usr/bin/env python3
"""make_seg_transform_fixtures.py: what OpenCV and mmseg's arithmetic make of small images and
label maps, for the segmentation transforms of data/seg_transforms.h
(tests/fixtures/test_seg_transforms.cpp).

mmseg itself needs mmcv (a compiled package), so its pipeline is re-implemented here from the
semantics of mmseg 1.x's source, on the libraries it calls:
  - mmcv.imresize = cv2.resize(img, (w, h), interpolation=INTER_LINEAR / INTER_NEAREST);
  - mmcv.rescale_size (keep_ratio): f = min(long / max(h, w), short / min(h, w)),
    size int(w * f + 0.5) x int(h * f + 0.5); RandomResize: scale (int(2048 r), int(512 r));
  - PhotoMetricDistortion.convert: clip(img.astype(float32) * alpha + beta, 0, 255).astype(uint8),
    saturation / hue through cv2.cvtColor BGR<->HSV on uint8 (hue: (H + delta) % 180);
  - RandomCrop.crop_bbox with cat_max_ratio: np.unique counts without 255, accept when there are
    >= 2 classes and max / sum < ratio, up to 10 redraws, the last box kept unchecked;
  - SegDataPreProcessor: (x - mean) / std in float32, then padding with 0 (image) / 255 (labels).
The random parameters are fixed here (the C++ code draws its own from Philox): the fixture checks
the pixels given the parameters.

Writes tests/fixtures/data/seg_transforms_ref.safetensors: inputs "in.*", outputs "<case>",
metadata "cases" {case: {"op": ..., "input": ..., args}}; every case must be run by the test.
Deterministic: re-running gives identical bytes.

  pip install opencv-python-headless && python3 tools/make_seg_transform_fixtures.py
"""
import json
import os

import cv2
import numpy as np
from safetensors.numpy import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "data")
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)


def pattern(h, w, seed):
    """Ramps, a disc, hard lines, noise and some grey pixels (S = 0 in HSV)."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / (w - 1)
    g = 255 * (1 - y / (h - 1))
    b = np.where(((x - w / 2) ** 2 + (y - h / 2) ** 2) < (min(h, w) / 3) ** 2, 250.0, 10.0)
    im = np.stack([r, g, b], -1) + rng.uniform(-40, 40, (h, w, 3))
    im[::7, :, :] = 255
    im[:, ::11, 1] = 0
    im = np.clip(np.round(im), 0, 255).astype(np.uint8)
    im[3::9, 2::5] = im[3::9, 2::5, :1]  # grey pixels
    return im


def colours():
    """A 64 x 64 image of random colours plus every grey and pure hue: the HSV round trip's cases."""
    rng = np.random.RandomState(7)
    im = rng.randint(0, 256, (64, 64, 3)).astype(np.uint8)
    im[0, :, :] = np.arange(0, 256, 4)[:, None]
    for k in range(6):
        im[1 + k, :, :] = 0
        im[1 + k, :, k % 3] = np.arange(0, 256, 4)
        im[1 + k, :, (k + 1) % 3] = 255
    return im


def label_map(h, w, seed, n_classes):
    """Blocks of classes with some 255 (ignore), so crops see 1, 2 or more classes."""
    rng = np.random.RandomState(seed)
    lab = np.zeros((h, w), np.uint8)
    for _ in range(8):
        y0, x0 = rng.randint(0, h), rng.randint(0, w)
        lab[y0:y0 + rng.randint(3, h), x0:x0 + rng.randint(3, w)] = rng.randint(0, n_classes)
    lab[rng.rand(h, w) < 0.05] = 255
    lab[: h // 3, : w // 3] = 255
    return lab


def rescale_size(h, w, scale):
    f = min(max(scale) / max(h, w), min(scale) / min(h, w))
    return int(h * float(f) + 0.5), int(w * float(f) + 0.5)


def convert(img, alpha=1, beta=0):
    img = img.astype(np.float32) * alpha + beta
    return np.clip(img, 0, 255).astype(np.uint8)


def photometric(rgb, brightness, contrast_first, contrast, saturation, hue):
    """mmseg's PhotoMetricDistortion.transform with the draws replaced by the given values (None:
    the coin said no). mmseg works on BGR: convert there and back."""
    img = np.ascontiguousarray(rgb[..., ::-1])
    if brightness is not None:
        img = convert(img, beta=np.float32(brightness))
    if contrast_first and contrast is not None:
        img = convert(img, alpha=np.float32(contrast))
    if saturation is not None:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
        img[:, :, 1] = convert(img[:, :, 1], alpha=np.float32(saturation))
        img = cv2.cvtColor(img, cv2.COLOR_HSV2BGR)
    if hue is not None:
        img = cv2.cvtColor(img, cv2.COLOR_BGR2HSV)
        img[:, :, 0] = (img[:, :, 0].astype(int) + hue) % 180
        img = cv2.cvtColor(img, cv2.COLOR_HSV2BGR)
    if not contrast_first and contrast is not None:
        img = convert(img, alpha=np.float32(contrast))
    return np.ascontiguousarray(img[..., ::-1])


def crop_decision(lab, boxes, cat_max_ratio, ignore=255):
    """mmseg's crop_bbox loop over a given sequence of candidate boxes (y1, x1): returns the index
    of the box it keeps, and each box's check."""
    def ok(b):
        y, x, h, w = b
        seg = lab[y:y + h, x:x + w]
        labels, cnt = np.unique(seg, return_counts=True)
        cnt = cnt[labels != ignore]
        return bool(len(cnt) > 1 and np.max(cnt) / np.sum(cnt) < cat_max_ratio)
    checks = [ok(b) for b in boxes]
    chosen = 0
    for i in range(10):
        if checks[chosen]:
            break
        chosen = i + 1
    return chosen, checks


def main():
    inputs = {
        "rgb37x53": pattern(37, 53, 1),
        "rgb53x37": pattern(53, 37, 2),
        "rgb38x54": pattern(38, 54, 3),
        "grey29x41": pattern(29, 41, 4)[..., :1].copy(),
        "colours": colours(),
        "lab37x53": label_map(37, 53, 5, 6)[..., None],
        "lab40x40": label_map(40, 40, 6, 3)[..., None],
    }
    cases, out = {}, {}

    def add(name, ref, **args):
        assert name not in cases, name
        cases[name] = args
        out[name] = np.ascontiguousarray(ref)

    # Resize: down, up, one axis, 4x down (no antialias), exact 2x (cv2's INTER_AREA shortcut),
    # to 1x1, the same size, grey.
    sizes = [(19, 26), (80, 111), (37, 90), (9, 13), (19, 27), (1, 1), (37, 53), (60, 17)]
    for src in ("rgb37x53", "rgb38x54", "grey29x41", "lab37x53"):
        for h, w in sizes:
            im = inputs[src]
            r_lin = cv2.resize(im, (w, h), interpolation=cv2.INTER_LINEAR).reshape(h, w, im.shape[2])
            r_nn = cv2.resize(im, (w, h), interpolation=cv2.INTER_NEAREST).reshape(h, w, im.shape[2])
            if not src.startswith("lab"):
                add(f"bilinear.{src}.{h}x{w}", r_lin, op="bilinear", input=src, h=h, w=w)
            add(f"nearest.{src}.{h}x{w}", r_nn, op="nearest", input=src, h=h, w=w)

    # mmcv rescale_size for RandomResize targets and the eval Resize (sizes only).
    for src in ("rgb37x53", "rgb53x37"):
        h, w = inputs[src].shape[:2]
        for ratio in (0.5, 0.73, 1.0, 1.61, 2.0):
            target = (int(2048 * ratio), int(512 * ratio))
            add(f"rescale.{src}.{ratio}", np.array(rescale_size(h, w, target), np.int64), op="rescale", input=src,
                ratio=ratio)
        # The resize itself at a small scale: (long 64, short 24) -> bilinear image, nearest labels.
        nh, nw = rescale_size(h, w, (64, 24))
        add(f"resize_keep.{src}", cv2.resize(inputs[src], (nw, nh), interpolation=cv2.INTER_LINEAR), op="resize_keep",
            input=src, long=64, short=24)

    # HSV both ways (RGB order, as the C++ code stores images).
    hsv = cv2.cvtColor(inputs["colours"], cv2.COLOR_RGB2HSV)
    add("rgb2hsv.colours", hsv, op="rgb2hsv", input="colours")
    add("hsv2rgb.colours", cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), op="hsv2rgb", input="rgb2hsv.colours")

    # PhotoMetricDistortion with given parameters.
    pmd = [
        ("all_last", 17.25, False, 1.3, 0.7, 11),
        ("all_first", -25.5, True, 0.6, 1.4, -18),
        ("bright_only", 31.9, False, None, None, None),
        ("dark_only", -31.9, False, None, None, None),
        ("contrast_only", None, True, 1.49, None, None),
        ("saturation_only", None, False, None, 1.45, None),
        ("desaturate", None, False, None, 0.5, None),
        ("hue_plus", None, False, None, None, 17),
        ("hue_minus", None, False, None, None, -7),
        ("none", None, True, None, None, None),
    ]
    for src in ("rgb37x53", "colours"):
        for name, b, first, c, s, h in pmd:
            add(f"pmd.{name}.{src}", photometric(inputs[src], b, first, c, s, h), op="photometric", input=src,
                brightness=b, contrast_first=first, contrast=c, saturation=s, hue=h)

    # RandomCrop's cat_max_ratio decision over fixed candidate sequences, and the crop it keeps.
    lab = inputs["lab37x53"][..., 0]
    rng = np.random.RandomState(11)
    for k, (ch, cw, ratio) in enumerate(((16, 16, 0.75), (24, 30, 0.75), (8, 8, 0.5), (37, 53, 0.75), (45, 60, 0.75),
                                         (4, 4, 0.9))):
        boxes = []
        for _ in range(11):
            mh, mw = max(37 - ch, 0), max(53 - cw, 0)
            boxes.append((int(rng.randint(0, mh + 1)), int(rng.randint(0, mw + 1)), ch, cw))
        chosen, checks = crop_decision(lab, boxes, ratio)
        y, x, h, w = boxes[chosen]
        add(f"crop.{k}", lab[y:y + h, x:x + w][..., None], op="crop", input="lab37x53", boxes=boxes, ratio=ratio,
            checks=checks, chosen=chosen)
        img = inputs["rgb37x53"]
        add(f"crop_image.{k}", img[y:y + h, x:x + w], op="crop_image", input="rgb37x53", box=boxes[chosen])

    # Pad (uint8) and the preprocessor: normalise, then pad with 0 / 255.
    add("pad.image", np.pad(inputs["rgb37x53"], ((0, 27), (0, 11), (0, 0)), constant_values=0), op="pad",
        input="rgb37x53", h=64, w=64, value=0)
    add("pad.labels", np.pad(inputs["lab37x53"], ((0, 27), (0, 11), (0, 0)), constant_values=255), op="pad",
        input="lab37x53", h=64, w=64, value=255)
    norm = (inputs["rgb37x53"].astype(np.float32) - MEAN) / STD
    norm = np.pad(norm.transpose(2, 0, 1), ((0, 0), (0, 3), (0, 5)), constant_values=0)
    add("normalize_pad", norm.astype(np.float32), op="normalize_pad", input="rgb37x53", h=40, w=58)

    tensors = {f"in.{k}": np.ascontiguousarray(v) for k, v in inputs.items()}
    tensors.update(out)
    save_file({k: tensors[k] for k in sorted(tensors)}, os.path.join(ROOT, "seg_transforms_ref.safetensors"),
              metadata={"cases": json.dumps(cases, sort_keys=True), "opencv": cv2.__version__})
    print(f"wrote {len(cases)} cases (OpenCV {cv2.__version__})")


if __name__ == "__main__":
    main()
