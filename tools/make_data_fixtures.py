#!/usr/bin/env python3
"""make_data_fixtures.py: what Pillow / torchvision / timm make of small test images, for the
uint8 transforms of data/ (tests/fixtures/test_transforms.cpp).

Writes tests/fixtures/data/transforms_ref.safetensors:
  "input.rgb" (29, 41, 3) and "input.grey" (23, 31, 1) uint8: the inputs;
  "<case>" the reference output of each case (uint8 HWC images, f32 CHW tensors);
  metadata "cases": {case: {"op": ..., "input": ..., args}} - the C++ test runs every case.
Random transforms are compared by giving both sides the same parameters (the C++ code's
*_params / *_apply split): the generator picks the parameters and calls the torchvision
functional ops with them. Deterministic: re-running gives identical bytes.

  python3 tools/make_data_fixtures.py
"""
import json
import math
import os

import numpy as np
import torch
import torchvision.transforms.functional as F
from PIL import Image, ImageFilter, ImageOps
from safetensors.numpy import save_file
from timm.data import auto_augment as aa
from timm.data import create_transform

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "data")
BILINEAR, BICUBIC = Image.Resampling.BILINEAR, Image.Resampling.BICUBIC
PIL_INTERP = {"bilinear": BILINEAR, "bicubic": BICUBIC}
TV = {"bilinear": F.InterpolationMode.BILINEAR, "bicubic": F.InterpolationMode.BICUBIC}


def pattern(h, w, seed):
    """Ramps, a ring, sharp edges and noise: every filter lobe and every clipping path runs."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 255 * x / (w - 1)
    g = 255 * (1 - y / (h - 1))
    b = np.where(((x - w / 2) ** 2 + (y - h / 2) ** 2) < (min(h, w) / 3) ** 2, 250.0, 10.0)
    im = np.stack([r, g, b], -1) + rng.uniform(-30, 30, (h, w, 3))
    im[::7, :, :] = 255  # hard lines: ringing of the bicubic lobes clips at 0 and 255
    im[:, ::11, 1] = 0
    return np.clip(np.round(im), 0, 255).astype(np.uint8)


def main():
    rgb = Image.fromarray(pattern(29, 41, 3))
    grey = Image.fromarray(pattern(23, 31, 4)).convert("L")
    inputs = {"rgb": rgb, "grey": grey}
    cases, out = {}, {}

    def add(name, ref, **args):
        assert name not in cases, name
        cases[name] = args
        if isinstance(ref, Image.Image):
            a = np.asarray(ref)
            ref = a[..., None] if a.ndim == 2 else a
        elif isinstance(ref, torch.Tensor):
            ref = ref.numpy().astype(np.float32)
        out[name] = np.ascontiguousarray(ref)

    # Resize, Pillow's own (torchvision's Resize on a PIL image calls it).
    for interp, flt in (("bilinear", BILINEAR), ("bicubic", BICUBIC)):
        for h, w in ((20, 30), (45, 60), (29, 20), (17, 41), (7, 5), (1, 1), (29, 41), (70, 9)):
            add(f"resize.{interp}.{h}x{w}", rgb.resize((w, h), flt), op="resize", input="rgb", h=h, w=w, interp=interp)
        add(f"resize.{interp}.grey", grey.resize((12, 40), flt), op="resize", input="grey", h=40, w=12, interp=interp)
        for s in (16, 50, 29):
            add(f"resize_short.{interp}.{s}", F.resize(rgb, s, TV[interp]), op="resize_short", input="rgb", size=s, interp=interp)
    for h, w in ((16, 16), (15, 20), (28, 40), (29, 41)):
        add(f"center_crop.{h}x{w}", F.center_crop(rgb, [h, w]), op="center_crop", input="rgb", h=h, w=w)
    for (t, l, h, w), (oh, ow), interp in (((5, 7, 20, 31), (16, 16), "bicubic"), ((0, 0, 29, 41), (12, 12), "bilinear"),
                                            ((20, 30, 9, 4), (16, 16), "bicubic"), ((1, 2, 26, 35), (26, 35), "bilinear")):
        add(f"resized_crop.{t}.{l}.{h}.{w}.{interp}", F.resized_crop(rgb, t, l, h, w, [oh, ow], TV[interp]),
            op="resized_crop", input="rgb", top=t, left=l, h=h, w=w, oh=oh, ow=ow, interp=interp)
    add("hflip", F.hflip(rgb), op="hflip", input="rgb")

    # Colour: torchvision's functional ops on PIL images.
    for f in (0.6, 1.37, 0.0, 2.5):
        add(f"brightness.{f}", F.adjust_brightness(rgb, f), op="brightness", input="rgb", f=f)
        add(f"contrast.{f}", F.adjust_contrast(rgb, f), op="contrast", input="rgb", f=f)
        add(f"saturation.{f}", F.adjust_saturation(rgb, f), op="saturation", input="rgb", f=f)
    add("contrast.grey", F.adjust_contrast(grey, 0.7), op="contrast", input="grey", f=0.7)
    for f in (-0.5, -0.13, 0.0, 0.2, 0.5):
        add(f"hue.{f}", F.adjust_hue(rgb, f), op="hue", input="rgb", f=f)
    add("grayscale3", F.rgb_to_grayscale(rgb, 3), op="grayscale3", input="rgb")
    add("solarize", ImageOps.solarize(rgb, 128), op="solarize", input="rgb")
    for r in (0.1, 0.5, 1.0, 1.9, 7.0):
        add(f"blur.{r}", rgb.filter(ImageFilter.GaussianBlur(r)), op="blur", input="rgb", radius=r)
    add("blur.grey", grey.filter(ImageFilter.GaussianBlur(1.3)), op="blur", input="grey", radius=1.3)

    # ColorJitter and 3-Augment with given parameters (torchvision applies in fn_idx order).
    def jitter(img, order, b, c, s, h):
        for fn in order:
            if fn == 0 and b is not None: img = F.adjust_brightness(img, b)
            if fn == 1 and c is not None: img = F.adjust_contrast(img, c)
            if fn == 2 and s is not None: img = F.adjust_saturation(img, s)
            if fn == 3 and h is not None: img = F.adjust_hue(img, h)
        return img
    for order, b, c, s, h in (([3, 1, 0, 2], 0.7, 1.3, 0.8, 0.05), ([0, 1, 2, 3], 1.2, None, 0.65, None),
                              ([2, 0, 3, 1], None, 0.9, None, -0.3)):
        name = "jitter." + "".join(map(str, order))
        add(name, jitter(rgb, order, b, c, s, h), op="jitter", input="rgb", order=order, b=b, c=c, s=s, h=h)
    # DeiT III: one of grayscale / solarize / blur, then ColorJitter(0.3, 0.3, 0.3).
    for k, (op, radius) in enumerate((("grayscale", 0), ("solarize", 0), ("gaussian_blur", 1.234))):
        img = {"grayscale": lambda i: F.rgb_to_grayscale(i, 3), "solarize": lambda i: ImageOps.solarize(i),
               "gaussian_blur": lambda i: i.filter(ImageFilter.GaussianBlur(radius))}[op](rgb)
        order, b, c, s = [[1, 3, 2, 0], [0, 2, 1, 3], [2, 1, 0, 3]][k], 0.81, 1.17, 0.93
        add(f"three_augment.{op}", jitter(img, order, b, c, s, None), op="three_augment", input="rgb", which=op,
            radius=radius, order=order, b=b, c=c, s=s)

    # RandAugment's ops, timm's own functions with given arguments (fill = ImageNet mean colour).
    fill = (124, 116, 104)
    for op, arg, interp in (("AutoContrast", 0, "bicubic"), ("Equalize", 0, "bicubic"), ("Invert", 0, "bicubic"),
                            ("Rotate", 17.3, "bicubic"), ("Rotate", -25.0, "bilinear"), ("Rotate", 0.0, "bicubic"),
                            ("Posterize", 2, "bicubic"), ("Posterize", 1, "bicubic"), ("Posterize", 8, "bicubic"),
                            ("Solarize", 100, "bicubic"), ("Solarize", 256, "bicubic"), ("SolarizeAdd", 60, "bicubic"),
                            ("Color", 0.37, "bicubic"), ("Contrast", 1.62, "bicubic"), ("Brightness", 0.55, "bicubic"),
                            ("Sharpness", 0.37, "bicubic"), ("Sharpness", 1.9, "bicubic"),
                            ("ShearX", 0.21, "bicubic"), ("ShearX", -0.3, "bilinear"), ("ShearY", 0.17, "bicubic"),
                            ("ShearY", -0.08, "bilinear"), ("TranslateXRel", 0.3, "bicubic"), ("TranslateXRel", -0.45, "bilinear"),
                            ("TranslateYRel", -0.2, "bicubic"), ("TranslateYRel", 0.123, "bilinear")):
        fn = aa.NAME_TO_OP[op]
        args = () if op in ("AutoContrast", "Equalize", "Invert") else (arg,)
        img = fn(rgb, *args, fillcolor=fill, resample=PIL_INTERP[interp])
        add(f"ra.{op}.{arg}.{interp}", img, op="ra", input="rgb", ra_op=op, arg=arg, interp=interp)
    add("ra.Sharpness.grey", aa.NAME_TO_OP["Sharpness"](grey, 0.4), op="ra_grey_sharpness", input="grey", arg=0.4)

    # To tensor: ToTensor + Normalize, and timm's whole eval transform (resize short side to
    # floor(size / crop_pct), centre crop, normalise).
    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    add("normalize", F.normalize(F.to_tensor(rgb), mean, std), op="normalize", input="rgb")
    for size, crop_pct, interp in ((24, 0.875, "bicubic"), (29, 1.0, "bicubic"), (20, 0.9, "bilinear")):
        t = create_transform(size, is_training=False, crop_pct=crop_pct, interpolation=interp)
        add(f"eval.{size}.{crop_pct}.{interp}", t(rgb), op="eval", input="rgb", size=size, crop_pct=crop_pct, interp=interp)
    # The training pipeline with given crop / flip / 3-Augment parameters.
    img = F.resized_crop(rgb, 3, 9, 22, 30, [16, 16], TV["bicubic"])
    img = F.hflip(img)
    img = jitter(ImageOps.solarize(img), [3, 2, 1, 0], 1.1, 0.9, 1.25, None)
    add("train.rrc_flip_3a", F.normalize(F.to_tensor(img), mean, std), op="train_3a", input="rgb", top=3, left=9, h=22, w=30,
        size=16, order=[3, 2, 1, 0], b=1.1, c=0.9, s=1.25)

    tensors = {"input.rgb": np.ascontiguousarray(np.asarray(rgb)), "input.grey": np.ascontiguousarray(np.asarray(grey)[..., None])}
    tensors.update(out)
    save_file({k: tensors[k] for k in sorted(tensors)}, os.path.join(ROOT, "transforms_ref.safetensors"),
              metadata={"cases": json.dumps(cases, sort_keys=True)})  # one entry: Rust keeps hash order
    print(f"wrote {len(cases)} cases")


if __name__ == "__main__":
    main()
