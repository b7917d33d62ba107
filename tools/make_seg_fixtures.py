#!/usr/bin/env python3
"""Writes segmentation-metric fixtures for tests/fixtures/test_seg_metrics.cpp.

    python3 tools/make_seg_fixtures.py    # writes tests/fixtures/data/seg_metrics.safetensors

Random label maps and predictions, and the areas and metrics that mmsegmentation's IoUMetric
computes from them, by a numpy implementation of its rules (mmseg itself is not needed):

  mmseg/evaluation/metrics/iou_metric.py, IoUMetric.intersect_and_union (per image):
    mask = label != ignore_index;  pred, label = pred[mask], label[mask]
    intersect = pred[pred == label]
    area_X = torch.histc(X.float(), bins=num_classes, min=0, max=num_classes - 1) for X in
             (intersect, pred, label): values outside [0, num_classes - 1] fall in no bin
    area_union = area_pred + area_label - area_intersect
  IoUMetric.compute_metrics: the four areas are summed over all images, then
  total_area_to_metrics:
    aAcc = sum(I) / sum(L);  IoU = I / U;  Acc = I / L   (0 / 0 = NaN)
    and the summary is np.nanmean over classes (mIoU, mAcc).
  reduce_zero_label (mmseg/datasets/transforms/loading.py, LoadAnnotations):
    label[label == 0] = 255; label = label - 1; label[label == 254] = 255
mmseg divides in float32 and reports percentages rounded to 2 places; here the areas are exact
integers and the divisions float64, which is what the C++ side returns (fractions, unrounded).

Variants (each stores <v>.pred.<i> and <v>.label.<i> per image, u8 or i64, the summed areas
<v>.intersect/.union/.pred_area/.label_area (i64), <v>.iou/.acc (f64, NaN where undefined) and
<v>.scalars = [aAcc, mIoU, mAcc]; the metadata "variants" says num_classes, reduce_zero_label
and the image count):
    plain        6 classes, u8 maps of odd sizes, ignore (255) regions, a label value 7 and
                 prediction values 9 and 255 outside the classes (histc drops them), class 4
                 absent from both (IoU NaN, skipped by nanmean), class 5 predicted but never
                 labelled (IoU 0 counted, Acc NaN skipped)
    reduce_zero  ADE-style raw labels 0..6 and 255 through reduce_zero_label, 6 classes, i64
    one_image    a single 1 x 1 image and a 0-pixel image (empty maps add nothing)
Draws come from numpy's legacy RandomState (frozen across versions): re-running writes
identical bytes.
"""
import json
import os

import numpy as np
from safetensors.numpy import save_file

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "data", "seg_metrics.safetensors")
IGNORE = 255


def histc(values, num_classes):
    """torch.histc(values.float(), bins=num_classes, min=0, max=num_classes - 1)."""
    v = values.astype(np.float64)
    v = v[(v >= 0) & (v <= num_classes - 1)]
    if num_classes == 1:
        return np.array([len(v)], dtype=np.int64)
    idx = np.floor(v * num_classes / (num_classes - 1)).astype(np.int64)
    idx[idx == num_classes] = num_classes - 1   # the max value goes in the last bin
    return np.bincount(idx, minlength=num_classes).astype(np.int64)


def intersect_and_union(pred, label, num_classes, ignore_index):
    mask = label != ignore_index
    pred, label = pred[mask], label[mask]
    intersect = pred[pred == label]
    a_i, a_p, a_l = histc(intersect, num_classes), histc(pred, num_classes), histc(label, num_classes)
    return a_i, a_p + a_l - a_i, a_p, a_l


def reduce_zero_label(label):
    label = label.copy()
    label[label == 0] = 255
    label = label - 1
    label[label == 254] = 255
    return label


def metrics(I, U, P, L):
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = I / U.astype(np.float64)
        acc = I / L.astype(np.float64)
        aacc = I.sum() / np.float64(L.sum())
    with np.errstate(all="ignore"):
        import warnings
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            return iou, acc, np.array([aacc, np.nanmean(iou), np.nanmean(acc)], dtype=np.float64)


def noisy_prediction(rs, label, num_classes, flip):
    pred = label.copy()
    pred[pred == IGNORE] = rs.randint(0, num_classes, size=int((pred == IGNORE).sum()))
    wrong = rs.uniform(size=label.shape) < flip
    pred[wrong] = rs.randint(0, num_classes, size=int(wrong.sum()))
    return pred


def plain(rs):
    nc, images = 6, []
    for (h, w) in [(17, 23), (8, 31), (1, 5), (12, 9)]:
        label = rs.choice([0, 1, 2, 3], size=(h, w), p=[0.4, 0.3, 0.2, 0.1]).astype(np.uint8)
        label[: max(1, h // 4), : max(1, w // 3)] = IGNORE        # an ignored region
        pred = noisy_prediction(rs, label, 4, 0.3).astype(np.uint8)
        pred[rs.uniform(size=pred.shape) < 0.05] = 5              # class 5: predicted, never labelled
        images.append((pred, label))
    images[0][1][-1, -3:] = 7      # a label value outside the classes, not ignored
    images[1][0][0, :4] = 9        # prediction values outside the classes
    images[1][0][-1, -2:] = 255
    return nc, False, images


def reduce_zero(rs):
    nc, images = 6, []
    for (h, w) in [(13, 19), (21, 6), (5, 5)]:
        raw = rs.randint(0, 7, size=(h, w)).astype(np.int64)      # 0 = "other", 1..6 = classes
        raw[rs.uniform(size=raw.shape) < 0.1] = 255
        pred = noisy_prediction(rs, reduce_zero_label(raw), nc, 0.35).astype(np.int64)
        images.append((pred, raw))
    return nc, True, images


def one_image(rs):
    return 3, False, [(np.array([[2]], np.uint8), np.array([[2]], np.uint8)),
                      (np.zeros((0, 4), np.uint8), np.zeros((0, 4), np.uint8))]


def main():
    rs = np.random.RandomState(7)
    tensors, meta = {}, {}
    for name, make in [("plain", plain), ("reduce_zero", reduce_zero), ("one_image", one_image)]:
        nc, rzl, images = make(rs)
        total = [np.zeros(nc, np.int64) for _ in range(4)]
        for i, (pred, label) in enumerate(images):
            tensors["%s.pred.%d" % (name, i)] = np.ascontiguousarray(pred)
            tensors["%s.label.%d" % (name, i)] = np.ascontiguousarray(label)
            lab = reduce_zero_label(label) if rzl else label
            for t, a in zip(total, intersect_and_union(pred, lab, nc, IGNORE)):
                t += a
        I, U, P, L = total
        iou, acc, scalars = metrics(I, U, P, L)
        tensors.update({name + ".intersect": I, name + ".union": U, name + ".pred_area": P, name + ".label_area": L,
                        name + ".iou": iou, name + ".acc": acc, name + ".scalars": scalars})
        meta[name] = {"num_classes": nc, "reduce_zero_label": rzl, "images": len(images)}
        print("%-12s %d images, IoU %s, aAcc %.4f mIoU %.4f mAcc %.4f" % (name, len(images), np.round(iou, 3),
                                                                        *scalars))
    try:   # cross-check the histc emulation against torch when it is installed
        import torch
        for k, v in tensors.items():
            if ".pred." in k or ".label." in k:
                nc = meta[k.split(".")[0]]["num_classes"]
                assert (histc(v.ravel(), nc) == torch.histc(torch.from_numpy(v.astype(np.float32)), bins=nc,
                                                            min=0, max=nc - 1).numpy().astype(np.int64)).all(), k
    except ImportError:
        pass
    save_file(tensors, OUT, metadata={"variants": json.dumps(meta, sort_keys=True)})
    print("wrote", os.path.relpath(OUT, ROOT))


if __name__ == "__main__":
    main()
