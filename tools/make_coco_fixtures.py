#!/usr/bin/env python3
"""Writes COCO box-detection fixtures with pycocotools' answers, for tests/fixtures/test_coco_bbox.cpp.

    pip install pycocotools        # for this tool only; the C++ tests need no Python
    python3 tools/make_coco_fixtures.py   # writes tests/fixtures/data/coco/<variant>.json

Each variant is random but realistic ground truth and detections, and the file holds:
    images, categories, annotations   the ground truth in COCO's instances format
    detections                        a COCO results list (image_id, category_id, bbox, score)
    stats                             pycocotools COCOeval('bbox').stats: the 12 summary numbers
    per_category_ap                   AP@[.50:.95] (area all, 100 dets) per category, in the
                                      order of `categories`, -1 where a category has no
                                      non-ignored ground truth
What the variants exercise:
    small             boxes of the three sizes (areas exactly on the 32^2 and 96^2 bounds too),
                      images without ground truth and images without detections, duplicate and
                      exact-copy detections, tied scores (2 decimals), one image with more than
                      100 detections (the maxDets cut), several categories with gaps in the ids
    crowds            crowd regions with many detections inside them (IoU over the detection's
                      area, matched many times and ignored), and non-crowd ground truth marked
                      "ignore": 1 (which pycocotools overwrites with iscrowd, so it has no effect)
    empty_categories  categories without any ground truth (one with false positives only, one
                      with nothing), and a category whose only ground truth is a crowd
Random draws come from numpy's legacy RandomState (frozen across numpy versions), coordinates
and scores are rounded to 2 decimals, so re-running writes identical bytes.
"""
import contextlib
import copy
import io
import json
import os

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "data", "coco")


def r2(x):
    return float(round(float(x), 2))


def clip_box(x, y, w, h, W, H):
    x0, y0 = max(0.0, x), max(0.0, y)
    x1, y1 = min(float(W), x + w), min(float(H), y + h)
    return [r2(x0), r2(y0), r2(max(x1 - x0, 1.0)), r2(max(y1 - y0, 1.0))]


def random_box(rs, W, H, size_class):
    """A box whose side is drawn so that its area is small (< 32^2), medium or large (> 96^2)."""
    lo, hi = {"small": (6, 30), "medium": (34, 90), "large": (100, 300)}[size_class]
    w = rs.uniform(lo, hi) * rs.uniform(0.8, 1.25)
    h = rs.uniform(lo, hi) * rs.uniform(0.8, 1.25)
    x = rs.uniform(0, max(1.0, W - w))
    y = rs.uniform(0, max(1.0, H - h))
    return clip_box(x, y, w, h, W, H)


def jitter(rs, box, W, H, amount):
    x, y, w, h = box
    return clip_box(x + rs.normal(0, amount * w), y + rs.normal(0, amount * h),
                    w * np.exp(rs.normal(0, amount)), h * np.exp(rs.normal(0, amount)), W, H)


def make_variant(seed, n_images, cat_ids, gt_cats, crowds, many_dets_image):
    rs = np.random.RandomState(seed)
    images, anns, dets = [], [], []
    ann_id = 1
    for i in range(n_images):
        img_id = 100 + 7 * i  # ids with gaps, not in 0..n-1
        W, H = int(rs.choice([640, 480, 500])), int(rs.choice([480, 427, 375]))
        images.append({"id": img_id, "width": W, "height": H, "file_name": "%012d.jpg" % img_id})
        no_gt = i % 5 == 1            # images without ground truth
        no_dets = i % 5 == 3          # images without detections
        n_gt = 0 if no_gt else int(rs.randint(1, 9))
        img_gt = []
        for _ in range(n_gt):
            cat = int(rs.choice(gt_cats))
            size_class = str(rs.choice(["small", "medium", "large"], p=[0.4, 0.35, 0.25]))
            box = random_box(rs, W, H, size_class)
            area = r2(box[2] * box[3] * rs.uniform(0.55, 0.95))  # a mask covers part of its box
            u = rs.uniform()
            if u < 0.08:
                area = 1024.0   # exactly on the small / medium bound: in both ranges
            elif u < 0.16:
                area = 9216.0   # exactly on the medium / large bound
            ann = {"id": ann_id, "image_id": img_id, "category_id": cat, "bbox": box, "area": area,
                   "iscrowd": 0, "segmentation": []}
            if crowds and rs.uniform() < 0.12:
                ann["ignore"] = 1   # pycocotools overwrites this with iscrowd for 'bbox'
            anns.append(ann)
            img_gt.append(ann)
            ann_id += 1
            if rs.uniform() < 0.1:   # a duplicate ground-truth box: IoU ties between them
                dup = dict(ann, id=ann_id, bbox=list(box))
                anns.append(dup)
                img_gt.append(dup)
                ann_id += 1
        if crowds and not no_gt and rs.uniform() < 0.6:
            for _ in range(int(rs.randint(1, 3))):
                cat = int(rs.choice(gt_cats))
                box = random_box(rs, W, H, "large")
                ann = {"id": ann_id, "image_id": img_id, "category_id": cat, "bbox": box,
                       "area": r2(box[2] * box[3] * 0.7), "iscrowd": 1,
                       "segmentation": {"size": [H, W], "counts": [0, W * H]}}
                anns.append(ann)
                img_gt.append(ann)
                ann_id += 1
                # detections inside the crowd region: matched (many times) and ignored
                for _ in range(int(rs.randint(2, 6))):
                    w, h = rs.uniform(10, box[2] / 2), rs.uniform(10, box[3] / 2)
                    x, y = box[0] + rs.uniform(0, box[2] - w), box[1] + rs.uniform(0, box[3] - h)
                    dets.append({"image_id": img_id, "category_id": cat, "bbox": clip_box(x, y, w, h, W, H),
                                 "score": r2(rs.uniform(0.05, 0.99))})
        if no_dets:
            continue
        for g in img_gt:
            if g["iscrowd"]:
                continue
            u = rs.uniform()
            if u < 0.1:
                dets.append({"image_id": img_id, "category_id": g["category_id"], "bbox": list(g["bbox"]),
                             "score": r2(rs.uniform(0.5, 1.0))})   # exact copy: IoU 1
            elif u < 0.85:
                dets.append({"image_id": img_id, "category_id": g["category_id"],
                             "bbox": jitter(rs, g["bbox"], W, H, rs.choice([0.03, 0.08, 0.2])),
                             "score": r2(rs.uniform(0.2, 1.0))})
            if rs.uniform() < 0.25:   # a second, worse detection of the same object
                dets.append({"image_id": img_id, "category_id": g["category_id"],
                             "bbox": jitter(rs, g["bbox"], W, H, 0.25), "score": r2(rs.uniform(0.05, 0.7))})
            if rs.uniform() < 0.08:   # right box, wrong category
                dets.append({"image_id": img_id, "category_id": int(rs.choice(cat_ids)),
                             "bbox": jitter(rs, g["bbox"], W, H, 0.05), "score": r2(rs.uniform(0.05, 0.9))})
        # background false positives of every size; on one image 130 of one category, so that
        # the cut to 100 detections per (image, category) happens
        n_fp = 130 if i == many_dets_image else int(rs.randint(0, 6))
        for _ in range(n_fp):
            size_class = str(rs.choice(["small", "medium", "large"]))
            cat = gt_cats[0] if i == many_dets_image else int(rs.choice(cat_ids))
            dets.append({"image_id": img_id, "category_id": cat,
                         "bbox": random_box(rs, W, H, size_class), "score": r2(rs.uniform(0.01, 0.8))})
    categories = [{"id": c, "name": "class_%d" % c, "supercategory": "thing"} for c in cat_ids]
    return {"images": images, "categories": categories, "annotations": anns}, dets


def evaluate(gt_dict, dets):
    with contextlib.redirect_stdout(io.StringIO()):   # pycocotools prints progress
        gt = COCO()
        gt.dataset = copy.deepcopy(gt_dict)
        gt.createIndex()
        dt = gt.loadRes(copy.deepcopy(dets))
        E = COCOeval(gt, dt, "bbox")
        E.evaluate()
        E.accumulate()
        E.summarize()
    stats = [float(s) for s in E.stats]
    prec = E.eval["precision"][:, :, :, 0, 2]   # (T, R, K) at area all, maxDets 100
    per_cat = []
    for k in range(prec.shape[2]):
        p = prec[:, :, k]
        per_cat.append(float(np.mean(p[p > -1])) if (p > -1).any() else -1.0)
    # E.params.catIds is sorted; report in the order of the categories list
    by_id = dict(zip(E.params.catIds, per_cat))
    return stats, [by_id[c["id"]] for c in gt_dict["categories"]]


VARIANTS = {
    "small": dict(seed=1, n_images=10, cat_ids=[1, 3, 8, 17], gt_cats=[1, 3, 8, 17], crowds=False,
                  many_dets_image=2),
    "crowds": dict(seed=2, n_images=12, cat_ids=[2, 5, 9], gt_cats=[2, 5, 9], crowds=True, many_dets_image=4),
    # 11 and 40 have no ground truth (40 gets false positives; 44 gets nothing at all)
    "empty_categories": dict(seed=3, n_images=9, cat_ids=[4, 11, 23, 40, 44], gt_cats=[4, 23], crowds=False,
                             many_dets_image=0),
}


def main():
    os.makedirs(OUT_DIR, exist_ok=True)
    for name, cfg in VARIANTS.items():
        gt, dets = make_variant(**cfg)
        if name == "empty_categories":
            # category 44: nothing at all; category 40: false positives only
            dets = [d for d in dets if d["category_id"] != 44]
            dets += [{"image_id": gt["images"][0]["id"], "category_id": 40, "bbox": [10.0, 10.0, 50.0, 40.0],
                      "score": 0.9}]
            # a category whose only ground truth is a crowd: no non-ignored ground truth -> -1
            gt["categories"].append({"id": 60, "name": "class_60", "supercategory": "thing"})
            img = gt["images"][3]
            gt["annotations"].append({"id": 100000, "image_id": img["id"], "category_id": 60,
                                      "bbox": [20.0, 30.0, 200.0, 150.0], "area": 21000.0, "iscrowd": 1,
                                      "segmentation": {"size": [img["height"], img["width"]], "counts": [0, 1]}})
            dets.append({"image_id": img["id"], "category_id": 60, "bbox": [40.0, 50.0, 60.0, 60.0], "score": 0.7})
        stats, per_cat = evaluate(gt, dets)
        out = dict(gt, detections=dets, stats=stats, per_category_ap=per_cat)
        path = os.path.join(OUT_DIR, name + ".json")
        with open(path, "w") as f:
            json.dump(out, f, separators=(",", ":"))
            f.write("\n")
        n_per_img = {}   # per (image, category): what maxDets cuts
        for d in dets:
            key = (d["image_id"], d["category_id"])
            n_per_img[key] = n_per_img.get(key, 0) + 1
        print("%s: %d images, %d gt (%d crowd), %d detections (max %d on one image and category), AP %.4f -> %s" % (
            name, len(gt["images"]), len(gt["annotations"]), sum(a["iscrowd"] for a in gt["annotations"]),
            len(dets), max(n_per_img.values()), stats[0], os.path.relpath(path, ROOT)))
        print("   stats", " ".join("%.4f" % s for s in stats))


if __name__ == "__main__":
    main()
