#!/usr/bin/env python3
"""Writes the reference data of ropevit's DETR matching and losses (models/det/):

    python3 tools/make_det_matching_fixtures.py

  tests/fixtures/data/det_matching.safetensors   (tests/fixtures/test_det_matching.cpp)
    "lsa.<k>.cost"  f64 (R, C) and scipy.optimize.linear_sum_assignment's answer
    "lsa.<k>.row", "lsa.<k>.col"  i64: 40 matrices, square / wide / tall, integer costs full of
                    ties, large and negative values, +inf (forbidden) entries; the C++ answer must
                    be the same index arrays, ties included.
    "match.*"       DINO's HungarianMatcher (cost_class 2, cost_bbox 5, cost_giou 2, focal alpha
                    0.25, gamma 2) on B = 5 images, Q = 30 queries, K = 5 classes, 0..7 targets
                    (one image has none, one has duplicated queries so that costs tie exactly):
                    inputs, each image's Q x T cost matrix and the (query, target) indices.
    metadata "cases": {case: {...}} - the C++ test runs every case.

  tests/fixtures/data/ops_det_losses.safetensors   (tests/fixtures/test_det_losses.cpp)
    the box ops (torchvision.ops.box_convert, box_area, box_iou, generalized_box_iou and DETR's
    diag(generalized_box_iou) for matched pairs), torchvision's sigmoid_focal_loss, and DINO's
    three losses (focal .mean(1).sum() / num_boxes * Q, L1 / num_boxes, (1 - GIoU) / num_boxes):
    inputs, output, output gradient and input gradients in tools/make_op_fixtures.py's layout.
    f64 cases (checked to 1e-10) and a few f32 ones (1e-5).

Inputs come from make_op_fixtures.hashed (an integer hash, no RNG) or numpy's legacy
RandomState (fixed stream), so re-running gives identical bytes. Needs torch, torchvision,
scipy, numpy, safetensors (all on the CPU).
"""
import json
import os
import sys

import numpy as np
import torch
import torchvision.ops as tvo
from safetensors.numpy import save_file as save_numpy
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_op_fixtures import OUT_DIR, Family, hashed  # noqa: E402

F64 = torch.float64


# ---- linear assignment ------------------------------------------------------------------------

def lsa_cases(tensors, cases):
    rs = np.random.RandomState(10)
    specs = []
    for shape in [(1, 1), (1, 6), (6, 1), (4, 4), (9, 9), (16, 16), (25, 25), (40, 40)]:
        specs.append(("square", shape))
    for shape in [(3, 8), (5, 12), (10, 30), (7, 100), (20, 300), (2, 3)]:
        specs.append(("wide", shape))
    for shape in [(8, 3), (12, 5), (30, 10), (100, 7), (300, 20), (3, 2)]:
        specs.append(("tall", shape))
    for shape in [(6, 6), (8, 8), (12, 12), (5, 9), (9, 5), (20, 20), (15, 40), (40, 15)]:
        specs.append(("ties", shape))
    for shape in [(7, 7), (10, 14), (14, 10), (30, 30)]:
        specs.append(("large", shape))
    for shape in [(6, 6), (5, 8), (8, 5), (12, 12)]:
        specs.append(("inf", shape))
    for shape in [(10, 10), (6, 11), (11, 6), (25, 60)]:
        specs.append(("negative", shape))
    assert len(specs) == 40
    for k, (kind, (r, c)) in enumerate(specs):
        if kind in ("square", "wide", "tall"):
            cost = rs.uniform(0.0, 1.0, size=(r, c))
        elif kind == "ties":
            cost = rs.randint(0, 3, size=(r, c)).astype(np.float64)  # three levels: many equal optima
        elif kind == "large":
            cost = rs.uniform(0.0, 1.0, size=(r, c)) * 1e12 + rs.randint(0, 5, size=(r, c))
        elif kind == "inf":
            cost = rs.randint(0, 6, size=(r, c)).astype(np.float64)
            forbid = rs.uniform(size=(r, c)) < 0.3
            n = min(r, c)
            forbid[np.arange(n), np.arange(n)] = False  # the diagonal keeps the problem feasible
            cost[forbid] = np.inf
        else:
            cost = rs.uniform(-50.0, 50.0, size=(r, c)).round(1)
        row, col = linear_sum_assignment(cost)
        name = f"lsa.{k:02d}"
        tensors[name + ".cost"] = np.ascontiguousarray(cost, dtype=np.float64)
        tensors[name + ".row"] = row.astype(np.int64)
        tensors[name + ".col"] = col.astype(np.int64)
        cases[name] = {"op": "lsa", "kind": kind}


# ---- DINO's HungarianMatcher --------------------------------------------------------------------

def dino_matching_cost(logits, boxes, labels, tboxes, alpha=0.25, gamma=2.0, w_class=2.0, w_bbox=5.0, w_giou=2.0):
    """One image's Q x T cost, as DINO's HungarianMatcher (models/dino/matcher.py) builds it."""
    prob = logits.sigmoid()
    neg = (1 - alpha) * (prob ** gamma) * (-(1 - prob + 1e-8).log())
    pos = alpha * ((1 - prob) ** gamma) * (-(prob + 1e-8).log())
    cost_class = pos[:, labels] - neg[:, labels]
    cost_bbox = torch.cdist(boxes, tboxes, p=1)
    cost_giou = -tvo.generalized_box_iou(tvo.box_convert(boxes, "cxcywh", "xyxy"),
                                         tvo.box_convert(tboxes, "cxcywh", "xyxy"))
    return w_bbox * cost_bbox + w_class * cost_class + w_giou * cost_giou


def matcher_cases(tensors, cases):
    B, Q, K = 5, 30, 5
    counts = [3, 0, 7, 1, 5]
    logits = hashed((B, Q, K), 101, -4.0, 4.0, F64)
    boxes = hashed((B, Q, 4), 102, -2.5, 2.5, F64).sigmoid()
    # Image 4: queries 10..19 repeat queries 0..9, so their costs tie exactly and the choice
    # between them is the assignment algorithm's alone.
    logits[4, 10:20] = logits[4, 0:10]
    boxes[4, 10:20] = boxes[4, 0:10]
    tensors["match.logits"] = logits.numpy()
    tensors["match.boxes"] = boxes.numpy()
    for b, t in enumerate(counts):
        labels = (torch.arange(t, dtype=torch.int64) * 3 + b) % K
        centre = hashed((t, 2), 200 + b, 0.2, 0.8, F64)
        size = hashed((t, 2), 300 + b, 0.05, 0.4, F64)
        tboxes = torch.cat([centre, size], 1)
        cost = dino_matching_cost(logits[b], boxes[b], labels, tboxes)
        q, j = linear_sum_assignment(cost.numpy())
        p = f"match.{b}."
        tensors[p + "labels"] = labels.numpy()
        tensors[p + "tboxes"] = tboxes.numpy().reshape(t, 4)
        tensors[p + "cost"] = cost.numpy().reshape(Q, t)
        tensors[p + "query"] = q.astype(np.int64)
        tensors[p + "target"] = j.astype(np.int64)
    cases["match"] = {"op": "match", "B": B, "Q": Q, "K": K, "targets": counts}


# ---- box ops and losses (make_op_fixtures' layout) ----------------------------------------------

def xyxy_boxes(n, seed, dtype=F64):
    corner = hashed((n, 2), seed, 0.0, 0.7, dtype)
    size = hashed((n, 2), seed + 1, 0.05, 0.5, dtype)
    return torch.cat([corner, corner + size], 1)


def cxcywh_boxes(n, seed, dtype=F64):
    return torch.cat([hashed((n, 2), seed, 0.2, 0.8, dtype), hashed((n, 2), seed + 1, 0.05, 0.5, dtype)], 1)


def dino_focal(logits, targets, num_boxes, alpha=0.25, gamma=2.0):
    """Deformable DETR's sigmoid_focal_loss (.mean(1).sum() / num_boxes) times Q, as DINO's loss_labels."""
    per = tvo.sigmoid_focal_loss(logits, targets, alpha=alpha, gamma=gamma, reduction="none")
    return per.mean(1).sum() / num_boxes * logits.shape[1]


def loss_cases():
    f = Family("det_losses")
    # Boxes that overlap, nest, miss each other, and repeat (max/min ties) or touch (clamp at 0).
    a = xyxy_boxes(6, 11)
    b = torch.cat([xyxy_boxes(5, 13), a[2:3], torch.tensor([[a[0, 2], 0.1, a[0, 2] + 0.2, 0.3]], dtype=F64)])
    f.case("cxcywh_to_xyxy", lambda boxes: tvo.box_convert(boxes, "cxcywh", "xyxy"),
           {"boxes": cxcywh_boxes(7, 21).reshape(7, 4)})
    f.case("xyxy_to_cxcywh", lambda boxes: tvo.box_convert(boxes, "xyxy", "cxcywh"), {"boxes": xyxy_boxes(7, 23)})
    f.case("cxcywh_to_xyxy_batched", lambda boxes: tvo.box_convert(boxes, "cxcywh", "xyxy"),
           {"boxes": cxcywh_boxes(6, 25).reshape(2, 3, 4)})
    f.case("box_area", lambda boxes: tvo.box_area(boxes), {"boxes": xyxy_boxes(7, 27)})
    f.case("box_iou", lambda boxes1, boxes2: tvo.box_iou(boxes1, boxes2), {"boxes1": a, "boxes2": b})
    f.case("generalized_box_iou", lambda boxes1, boxes2: tvo.generalized_box_iou(boxes1, boxes2),
           {"boxes1": a, "boxes2": b})
    f.case("generalized_box_iou_f32", lambda boxes1, boxes2: tvo.generalized_box_iou(boxes1, boxes2),
           {"boxes1": a.float(), "boxes2": b.float()})
    f.case("elementwise_generalized_box_iou",
           lambda boxes1, boxes2: torch.diag(tvo.generalized_box_iou(boxes1, boxes2)),
           {"boxes1": a, "boxes2": b[:6]})

    # Focal loss: logits over a wide range (p near 0 and 1), 0/1 targets.
    x = hashed((2, 5, 3), 31, -6.0, 6.0, F64)
    t = (hashed((2, 5, 3), 32) > 0.3).to(F64)
    f.case("sigmoid_focal_loss", lambda inputs, targets: tvo.sigmoid_focal_loss(inputs, targets, reduction="none"),
           {"inputs": x, "targets": t})
    f.case("sigmoid_focal_loss_sum_alpha_off",
           lambda inputs, targets, alpha, gamma, reduction: tvo.sigmoid_focal_loss(inputs, targets, alpha, gamma, reduction),
           {"inputs": x, "targets": t}, args={"alpha": -1.0, "gamma": 1.5, "reduction": "sum"})
    # DINO's classification loss on (B, Q, K) = (2, 30, 5) with 7 matched queries.
    logits = hashed((2, 30, 5), 41, -5.0, 3.0, F64)
    onehot = torch.zeros(2, 30, 5, dtype=F64)
    for bq, k in [((0, 3), 1), ((0, 17), 4), ((0, 29), 0), ((1, 0), 2), ((1, 8), 2), ((1, 9), 3), ((1, 21), 1)]:
        onehot[bq[0], bq[1], k] = 1.0
    f.case("focal_class_loss", lambda logits, targets, num_boxes: dino_focal(logits, targets, num_boxes),
           {"logits": logits, "targets": onehot}, args={"num_boxes": 7.0})
    f.case("focal_class_loss_f32", lambda logits, targets, num_boxes: dino_focal(logits, targets, num_boxes),
           {"logits": logits.float(), "targets": onehot.float()}, args={"num_boxes": 7.0})
    # Box losses on 7 matched pairs, predictions from a sigmoid as DINO's head gives them.
    pred = hashed((7, 4), 51, -2.0, 1.0, F64).sigmoid()
    tgt = cxcywh_boxes(7, 53)
    f.case("l1_box_loss", lambda pred, target, num_boxes: torch.nn.functional.l1_loss(pred, target, reduction="sum") / num_boxes,
           {"pred": pred, "target": tgt}, args={"num_boxes": 7.0})
    giou_loss = lambda pred, target, num_boxes: (1 - torch.diag(tvo.generalized_box_iou(
        tvo.box_convert(pred, "cxcywh", "xyxy"), tvo.box_convert(target, "cxcywh", "xyxy")))).sum() / num_boxes
    f.case("giou_box_loss", giou_loss, {"pred": pred, "target": tgt}, args={"num_boxes": 7.0})
    f.case("giou_box_loss_f32", giou_loss, {"pred": pred.float(), "target": tgt.float()}, args={"num_boxes": 7.0})
    f.write()


def main():
    tensors, cases = {}, {}
    lsa_cases(tensors, cases)
    matcher_cases(tensors, cases)
    path = os.path.join(OUT_DIR, "det_matching.safetensors")
    save_numpy(tensors, path, metadata={"cases": json.dumps(cases, sort_keys=True)})
    print(f"{path}: {len(cases)} cases, {os.path.getsize(path)} bytes")
    loss_cases()


if __name__ == "__main__":
    main()
