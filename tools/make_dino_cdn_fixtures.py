#!/usr/bin/env python3
"""Writes the reference data of DINO's contrastive denoising and of DINO's criterion (models/det/
cdn_queries, cdn_attention_mask, dn_post_process, dino_criterion):

    python3 tools/make_dino_cdn_fixtures.py

  tests/fixtures/data/det_dino_cdn.safetensors   (tests/fixtures/test_det_dino_cdn.cpp)
    "gen.<case>.*"   prepare_for_cdn (IDEA-Research/DINO, models/dino/dn_components.py) written
                     out again below in plain PyTorch, with its four random draws taken from
                     tensors stored here (noise.flip, noise.new_label, noise.sign, noise.part: the
                     C++ test passes the same draws): the targets, label_enc's weight, the padded
                     label queries and box queries, the attention mask (u8, 1 = blocked), the
                     noised label of each slot (-1 = padding; the mask only once per layout), and the gradient of sum(gout *
                     label queries) with respect to label_enc's weight.
    "crit.<case>.*"  DINO's SetCriterion with denoising (models/dino/dino.py; detrex's
                     DINOCriterion) written out again: 6 decoder layers (final + _0.._4), the
                     encoder proposals (_interm) and the denoising queries (_dn, _dn_0.._dn_4),
                     focal 1 / L1 5 / GIoU 2; inputs are the full decoder outputs (denoising
                     queries first, split by dn_post_process), each named loss, the weighted
                     total, its gradient with respect to every input, and each Hungarian matching.
    metadata "cases": {case: {...}} - the C++ test runs every case.

Random draws come from torch.Generator(seed) in float32 (so each is exact in both float32 and
float64), predictions from make_op_fixtures.hashed; re-running gives identical bytes. Needs
torch, torchvision, scipy, numpy, safetensors (CPU).
"""
import json
import os
import sys

import torch
import torchvision.ops as tvo
from safetensors.torch import save_file
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_det_matching_fixtures import dino_focal, dino_matching_cost  # noqa: E402
from make_op_fixtures import OUT_DIR, hashed  # noqa: E402

F64 = torch.float64


# ---- the denoising queries ----------------------------------------------------------------------

def inverse_sigmoid(x, eps=1e-3):
    """DINO's util.misc.inverse_sigmoid."""
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def dn_groups(known_num, dn_number):
    """DINO's group count, its branches kept (2 dn_number < 100 keeps 2 dn_number groups)."""
    twice = dn_number * 2
    if max(known_num) == 0:
        return 1
    groups = twice // (max(known_num) * 2) if twice >= 100 else max(twice, 1)
    return max(groups, 1)


def prepare_for_cdn(targets, dn_number, label_noise_ratio, box_noise_scale, num_queries, num_classes,
                    label_enc_weight, noise):
    """DINO's prepare_for_cdn, step by step, on the CPU, with noise[...] in place of torch.rand_like /
    randint_like (new_label holds one draw per row; DINO draws only for the flipped rows)."""
    dtype = label_enc_weight.dtype
    known_num = [len(t["labels"]) for t in targets]
    batch_size = len(targets)
    groups = dn_groups(known_num, dn_number)
    labels = torch.cat([t["labels"] for t in targets])
    boxes = torch.cat([t["boxes"] for t in targets])
    batch_idx = torch.cat([torch.full_like(t["labels"], i) for i, t in enumerate(targets)])
    n = len(boxes)

    known_labels = labels.repeat(2 * groups, 1).view(-1)
    known_bid = batch_idx.repeat(2 * groups, 1).view(-1)
    known_bboxs = boxes.repeat(2 * groups, 1)
    known_labels_expanded = known_labels.clone()
    known_bbox_expand = known_bboxs.clone()
    if label_noise_ratio > 0:
        p = noise["flip"].to(dtype)
        chosen = torch.nonzero(p < (label_noise_ratio * 0.5)).view(-1)
        known_labels_expanded.scatter_(0, chosen, noise["new_label"][chosen])
    single_pad = max(known_num)
    pad_size = single_pad * 2 * groups
    positive_idx = torch.arange(n).unsqueeze(0).repeat(groups, 1)
    positive_idx += (torch.arange(groups) * n * 2).unsqueeze(1)
    negative_idx = positive_idx.flatten() + n
    if box_noise_scale > 0:
        corners = torch.zeros_like(known_bboxs)
        corners[:, :2] = known_bboxs[:, :2] - known_bboxs[:, 2:] / 2
        corners[:, 2:] = known_bboxs[:, :2] + known_bboxs[:, 2:] / 2
        diff = torch.zeros_like(known_bboxs)
        diff[:, :2] = known_bboxs[:, 2:] / 2
        diff[:, 2:] = known_bboxs[:, 2:] / 2
        rand_sign = noise["sign"].to(dtype)
        rand_part = noise["part"].to(dtype).clone()
        rand_part[negative_idx] += 1.0
        rand_part *= rand_sign
        corners = corners + torch.mul(rand_part, diff) * box_noise_scale
        corners = corners.clamp(min=0.0, max=1.0)
        known_bbox_expand[:, :2] = (corners[:, :2] + corners[:, 2:]) / 2
        known_bbox_expand[:, 2:] = corners[:, 2:] - corners[:, :2]

    input_label_embed = torch.nn.functional.embedding(known_labels_expanded, label_enc_weight)
    input_bbox_embed = inverse_sigmoid(known_bbox_expand)
    query_label = torch.zeros(batch_size, pad_size, label_enc_weight.shape[1], dtype=dtype)
    query_bbox = torch.zeros(batch_size, pad_size, 4, dtype=dtype)
    slot_label = torch.full((batch_size, pad_size), -1, dtype=torch.int64)
    slots = torch.cat([torch.arange(k) for k in known_num]).long()
    slots = torch.cat([slots + single_pad * i for i in range(2 * groups)]).long()
    if len(known_bid):
        query_label[(known_bid, slots)] = input_label_embed
        query_bbox[(known_bid, slots)] = input_bbox_embed
        slot_label[(known_bid, slots)] = known_labels_expanded

    total = pad_size + num_queries
    mask = torch.zeros(total, total, dtype=torch.bool)
    mask[pad_size:, :pad_size] = True  # matching queries cannot see the denoising ones
    for i in range(groups):            # DINO's loop: groups cannot see each other
        lo, hi = single_pad * 2 * i, single_pad * 2 * (i + 1)
        if i == 0:
            mask[lo:hi, hi:pad_size] = True
        if i == groups - 1:
            mask[lo:hi, :single_pad * i * 2] = True
        else:
            mask[lo:hi, hi:pad_size] = True
            mask[lo:hi, :lo] = True
    meta = {"pad_size": pad_size, "num_dn_group": groups, "max_gt": single_pad}
    return query_label, query_bbox, mask, meta, slot_label


def make_targets(counts, seed, dtype, num_classes):
    """Per image: labels and cxcywh boxes; box 0 of each image hugs the left / top border, so the
    noise pushes its corners outside [0, 1] and the clamp acts."""
    targets = []
    for b, n in enumerate(counts):
        centre = hashed((n, 2), seed + 10 * b, 0.1, 0.9, F64)
        size = hashed((n, 2), seed + 10 * b + 1, 0.04, 0.5, F64)
        if n > 0:
            centre[0] = torch.tensor([0.03, 0.05], dtype=F64)
            size[0] = torch.tensor([0.06, 0.1], dtype=F64)
        labels = (torch.arange(n, dtype=torch.int64) * 2 + b + seed) % num_classes
        targets.append({"labels": labels, "boxes": torch.cat([centre, size], 1).to(dtype)})
    return targets


def gen_cases(tensors, cases):
    specs = [
        # name, counts, dn_number, label_noise_ratio, box_noise_scale, num_classes, hidden, dtype
        ("t31_f64", [3, 1], 100, 0.5, 1.0, 5, 4, F64),
        ("t31_f32", [3, 1], 100, 0.5, 1.0, 5, 4, torch.float32),
        ("t30_f64", [3, 0], 100, 0.5, 1.0, 5, 4, F64),
        ("t00_f64", [0, 0], 100, 0.5, 1.0, 5, 4, F64),
        ("small_dn_f64", [2, 2, 1], 5, 1.0, 0.4, 3, 3, F64),  # dn_number < 50: 2 * dn_number groups
        ("crowd_f64", [60, 2], 50, 0.2, 1.0, 7, 2, F64),     # max_gt > dn_number: one group
    ]
    num_queries = 6
    for k, (name, counts, dn_number, ratio, scale, K, hidden, dtype) in enumerate(specs):
        targets = make_targets(counts, 5 + k, dtype, K)
        weight = hashed((K + 1, hidden), 40 + k, -1.0, 1.0, F64).to(dtype).requires_grad_(True)
        groups = dn_groups(counts, dn_number)
        rows = 2 * groups * sum(counts) if max(counts) > 0 else 0
        g = torch.Generator().manual_seed(1000 + k)
        noise = {
            "flip": torch.rand(rows, generator=g).to(F64),
            "new_label": torch.randint(0, K, (rows,), generator=g),
            "sign": (torch.randint(0, 2, (rows, 4), generator=g) * 2 - 1).to(F64),
            "part": torch.rand(rows, 4, generator=g).to(F64),
        }
        ql, qb, mask, meta, slot_label = prepare_for_cdn(targets, dn_number, ratio, scale, num_queries, K, weight, noise)
        gout = hashed(tuple(ql.shape), 90 + k, -1.0, 1.0, F64).to(dtype)
        if ql.requires_grad:
            (ql * gout).sum().backward()
        else:  # no denoising queries: the weight gets no gradient
            weight.grad = torch.zeros_like(weight)
        p = f"gen.{name}."
        for b, t in enumerate(targets):
            tensors[p + f"t{b}.labels"] = t["labels"].contiguous()
            tensors[p + f"t{b}.boxes"] = t["boxes"].reshape(len(t["labels"]), 4).contiguous()
        tensors[p + "weight"] = weight.detach().contiguous()
        for key, v in noise.items():
            tensors[p + "noise." + key] = v.contiguous()
        tensors[p + "label_queries"] = ql.detach().contiguous()
        tensors[p + "box_queries"] = qb.contiguous()
        if name in ("t31_f64", "small_dn_f64", "crowd_f64", "t00_f64"):  # the others repeat a layout
            tensors[p + "mask"] = mask.to(torch.uint8).contiguous()
        tensors[p + "noised_labels"] = slot_label.contiguous()
        tensors[p + "gout"] = gout.contiguous()
        tensors[p + "grad.weight"] = weight.grad.contiguous()
        cases["gen." + name] = {"B": len(counts), "counts": counts, "dn_number": dn_number, "label_noise_ratio": ratio,
                                "box_noise_scale": scale, "num_classes": K, "hidden": hidden, "num_queries": num_queries,
                                "pad_size": meta["pad_size"], "num_groups": meta["num_dn_group"],
                                "max_gt": meta["max_gt"], "dtype": str(dtype).replace("torch.", "")}


# ---- DINO's criterion -----------------------------------------------------------------------------

def hungarian(pred, targets):
    out = []
    for b, t in enumerate(targets):
        cost = dino_matching_cost(pred["pred_logits"][b].detach().double(), pred["pred_boxes"][b].detach().double(),
                                  t["labels"], t["boxes"].double())
        q, j = linear_sum_assignment(cost.numpy())
        out.append((torch.as_tensor(q, dtype=torch.int64), torch.as_tensor(j, dtype=torch.int64)))
    return out


def set_losses(pred, targets, indices, num_boxes):
    """DINO's loss_labels (focal, as SetCriterion) and loss_boxes (L1, GIoU) for one output."""
    logits, boxes = pred["pred_logits"], pred["pred_boxes"]
    B, Q, K = logits.shape
    batch = torch.cat([torch.full_like(q, b) for b, (q, _) in enumerate(indices)])
    src = torch.cat([q for q, _ in indices])
    classes = torch.full((B, Q), K, dtype=torch.int64)
    classes[batch, src] = torch.cat([t["labels"][j] for t, (_, j) in zip(targets, indices)])
    onehot = torch.zeros(B, Q, K + 1, dtype=logits.dtype)
    onehot.scatter_(2, classes.unsqueeze(-1), 1)
    onehot = onehot[:, :, :-1]
    src_boxes = boxes[batch, src]
    tgt_boxes = torch.cat([t["boxes"][j] for t, (_, j) in zip(targets, indices)]).to(boxes.dtype)
    giou = torch.diag(tvo.generalized_box_iou(tvo.box_convert(src_boxes, "cxcywh", "xyxy"),
                                              tvo.box_convert(tgt_boxes, "cxcywh", "xyxy")))
    return {"loss_class": dino_focal(logits, onehot, num_boxes),
            "loss_bbox": torch.nn.functional.l1_loss(src_boxes, tgt_boxes, reduction="none").sum() / num_boxes,
            "loss_giou": (1 - giou).sum() / num_boxes}


def dn_pos_indices(targets, meta):
    """DINO's dn_pos_idx: positive query g * single_pad + t of each group g for target t."""
    groups, single_pad = meta["num_dn_group"], meta["pad_size"] // meta["num_dn_group"]
    out = []
    for t in targets:
        n = len(t["labels"])
        if n > 0:
            tgt = torch.arange(n).unsqueeze(0).repeat(groups, 1)
            src = (torch.arange(groups) * single_pad).unsqueeze(1) + tgt
            out.append((src.flatten(), tgt.flatten()))
        else:
            out.append((torch.zeros(0, dtype=torch.int64), torch.zeros(0, dtype=torch.int64)))
    return out


def dino_criterion(outputs_class, outputs_coord, interm, targets, meta):
    """dn_post_process + SetCriterion.forward with DINO's weight_dict applied to the total."""
    weights = {"loss_class": 1.0, "loss_bbox": 5.0, "loss_giou": 2.0}
    pad = meta["pad_size"]
    L = outputs_class.shape[0]
    has_dn = pad > 0
    dn_class, dn_coord = outputs_class[:, :, :pad], outputs_coord[:, :, :pad]
    outputs_class, outputs_coord = outputs_class[:, :, pad:], outputs_coord[:, :, pad:]
    layers = [{"pred_logits": outputs_class[l], "pred_boxes": outputs_coord[l]} for l in range(L)]
    dn_layers = [{"pred_logits": dn_class[l], "pred_boxes": dn_coord[l]} for l in range(L)]
    num_boxes = max(float(sum(len(t["labels"]) for t in targets)), 1.0)
    losses, matchings = {}, {}
    dn_idx = dn_pos_indices(targets, meta) if has_dn else None
    zero = torch.zeros((), dtype=outputs_class.dtype)

    def add(d, suffix):
        for k, v in d.items():
            losses[k + suffix] = v

    idx = hungarian(layers[-1], targets)
    matchings[str(L - 1)] = idx
    add(set_losses(layers[-1], targets, idx, num_boxes), "")
    add(set_losses(dn_layers[-1], targets, dn_idx, num_boxes * meta["num_dn_group"]) if has_dn else
        {k: zero for k in weights}, "_dn")
    for l in range(L - 1):
        idx = hungarian(layers[l], targets)
        matchings[str(l)] = idx
        add(set_losses(layers[l], targets, idx, num_boxes), f"_{l}")
        add(set_losses(dn_layers[l], targets, dn_idx, num_boxes * meta["num_dn_group"]) if has_dn else
            {k: zero for k in weights}, f"_dn_{l}")
    idx = hungarian(interm, targets)
    matchings["interm"] = idx
    add(set_losses(interm, targets, idx, num_boxes), "_interm")
    total = sum(v * weights[k.split("_")[0] + "_" + k.split("_")[1]] for k, v in losses.items())
    return losses, total, matchings


def crit_cases(tensors, cases):
    specs = [
        # name, counts, groups, dtype
        ("t31_f64", [3, 1], 4, F64),
        ("t31_f32", [3, 1], 4, torch.float32),
        ("t30_f64", [3, 0], 3, F64),
        ("t00_f64", [0, 0], 1, F64),  # no targets: no denoising queries, every query "no object"
    ]
    L, Q, K = 6, 8, 3
    for k, (name, counts, groups, dtype) in enumerate(specs):
        targets = make_targets(counts, 60 + k, F64, K)
        max_gt = max(counts)
        meta = {"pad_size": 2 * max_gt * groups if max_gt > 0 else 0, "num_dn_group": groups, "max_gt": max_gt}
        total_q = meta["pad_size"] + Q
        seed = 500 + 10 * k
        logits = hashed((L, 2, total_q, K), seed, -4.0, 3.0, F64).to(dtype).requires_grad_(True)
        boxes_raw = hashed((L, 2, total_q, 4), seed + 1, -2.5, 1.0, F64)
        boxes = boxes_raw.sigmoid().to(dtype).requires_grad_(True)
        interm_logits = hashed((2, Q, K), seed + 2, -4.0, 3.0, F64).to(dtype).requires_grad_(True)
        interm_boxes = hashed((2, Q, 4), seed + 3, -2.5, 1.0, F64).sigmoid().to(dtype).requires_grad_(True)
        interm = {"pred_logits": interm_logits, "pred_boxes": interm_boxes}
        losses, total, matchings = dino_criterion(logits, boxes, interm, targets, meta)
        total.backward()
        p = f"crit.{name}."
        for b, t in enumerate(targets):
            tensors[p + f"t{b}.labels"] = t["labels"].contiguous()
            tensors[p + f"t{b}.boxes"] = t["boxes"].reshape(len(t["labels"]), 4).contiguous()
        tensors[p + "logits"] = logits.detach().contiguous()
        tensors[p + "boxes"] = boxes.detach().contiguous()
        tensors[p + "interm_logits"] = interm_logits.detach().contiguous()
        tensors[p + "interm_boxes"] = interm_boxes.detach().contiguous()
        for key, v in losses.items():
            tensors[p + "loss." + key] = v.detach().reshape(()).clone()
        tensors[p + "total"] = total.detach().reshape(()).contiguous()
        tensors[p + "grad.logits"] = logits.grad.contiguous()
        tensors[p + "grad.boxes"] = boxes.grad.contiguous()
        tensors[p + "grad.interm_logits"] = interm_logits.grad.contiguous()
        tensors[p + "grad.interm_boxes"] = interm_boxes.grad.contiguous()
        for layer, idx in matchings.items():
            for b, (q, j) in enumerate(idx):
                tensors[p + f"match.{layer}.{b}.query"] = q.contiguous()
                tensors[p + f"match.{layer}.{b}.target"] = j.contiguous()
        cases["crit." + name] = {"B": len(counts), "counts": counts, "L": L, "Q": Q, "K": K,
                                 "pad_size": meta["pad_size"], "num_groups": groups, "max_gt": max_gt,
                                 "losses": sorted(losses.keys()), "dtype": str(dtype).replace("torch.", "")}


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    tensors, cases = {}, {}
    gen_cases(tensors, cases)
    crit_cases(tensors, cases)
    path = os.path.join(OUT_DIR, "det_dino_cdn.safetensors")
    save_file(tensors, path, metadata={"cases": json.dumps(cases, sort_keys=True)})
    print(f"{path}: {len(cases)} cases, {len(tensors)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
