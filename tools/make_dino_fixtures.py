#!/usr/bin/env python3
"""Writes the DINO transformer fixture for tests/fixtures/test_dino_transformer.cpp.

    python3 tools/make_dino_fixtures.py   # writes tests/fixtures/data/det_dino_transformer.safetensors

A plain PyTorch transcription (detrex is not installed here), written from the semantics of detrex's
projects/dino/modeling/dino_transformer.py and dino.py, with detrex's state-dict names under the
transformer (encoder.layers.i.{attentions.0, ffns.0.layers.*, norms.*}, decoder.layers.i.{attentions.0.attn
(nn.MultiheadAttention), attentions.1, ffns.0, norms.*}, decoder.ref_point_head, decoder.norm,
decoder.class_embed.i, decoder.bbox_embed.i, level_embeds, tgt_embed, enc_output, enc_output_norm):
  encoder     post-norm layers: MSDeformAttn(query = src + pos, value = src, padding masked) -> LN ->
              FFN(ReLU) + residual -> LN; reference points at pixel centres / (valid ratio * size), times
              the valid ratios of every level
  proposals   gen_encoder_output_proposals: per-pixel boxes ((x + .5) / valid_W, (y + .5) / valid_H,
              0.05 * 2^lvl), inverse sigmoid, inf where padded or outside (0.01, 0.99); memory zeroed
              there, then enc_output + enc_output_norm; class / box heads number num_layers (the
              encoder's own); top-k of the max logit; reference boxes detached; content queries tgt_embed
  decoder     post-norm layers: self-attention (q = k = tgt + pos, v = tgt, bool mask true = blocked)
              -> LN -> MSDeformAttn into the memory with the boxes times the valid ratios -> LN -> FFN
              -> LN; query_pos = ref_point_head(sine embedding of the level-0 reference box, F = C / 2
              so that 4 F = 2 C as detrex's 128 is for C = 256); refinement with bbox_embed on the
              un-normed output, detached for the next layer; predictions class_embed(norm(out)) and
              sigmoid(bbox_embed(norm(out)) + inverse_sigmoid(previous reference, undetached))
Heads as IDEA's DINO default: the decoder layers share one class and one box head
(dec_pred_*_embed_share); the encoder's (index num_layers) are separate modules.

Tiny config: C 32, 2 heads, 2 levels (6x7, 3x4), 4 points, FFN 64, 2 + 2 layers, 5 classes, 10 queries,
2 images (image 1 padded), 4 denoising queries in front with the mask of two groups of 2. Every
parameter random (no init value can hide a name mix-up). The seed is the first from 0 whose top-k has
no near-tie among the first k + 1 logits of either image and selects no padded or invalid proposal.
Stored: state.<key>, in.* (feats.l, masks.l, pos.l, dn_tgt, dn_ref, attn_mask), out.* (logits, boxes
(layers, B, Q, .), enc_logits, enc_boxes, topk), w.* (the loss weights), grad.* (inputs and a few
parameters), metadata: the config. Single-threaded and seeded: a re-run writes the same bytes.
"""
import json
import math
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_det_fixtures import MSDeformAttnReference  # noqa: E402
from make_op_fixtures import OUT_DIR  # noqa: E402

C, NH, L, P, FFN, ENC, DEC, NCLS, K, NDN = 32, 2, 2, 4, 64, 2, 2, 5, 10, 4
SHAPES = [(6, 7), (3, 4)]
VALID = [(6, 7), (4, 5)]  # image 0 unpadded, image 1 valid (rows, cols) on level 0
B = 2


def inverse_sigmoid(x, eps=1e-3):
    x = x.clamp(min=0, max=1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def sine_embed(pos, F_):
    """detrex get_sine_pos_embed: (B, Q, n) -> (B, Q, n F), x and y blocks exchanged."""
    dim_t = torch.arange(F_, dtype=torch.float32)
    dim_t = 10000 ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / F_)
    res = []
    for x in pos.split(1, dim=-1):
        s = x * (2 * math.pi) / dim_t
        res.append(torch.stack((s[:, :, 0::2].sin(), s[:, :, 1::2].cos()), dim=3).flatten(2))
    res[0], res[1] = res[1], res[0]
    return torch.cat(res, dim=2)


class FFNRef(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.Sequential(nn.Sequential(nn.Linear(C, FFN), nn.ReLU()), nn.Linear(FFN, C))

    def forward(self, x):
        return x + self.layers(x)


class MLPRef(nn.Module):
    def __init__(self, i, h, o, n):
        super().__init__()
        dims = [i] + [h] * (n - 1)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(dims, [h] * (n - 1) + [o]))

    def forward(self, x):
        for j, lin in enumerate(self.layers):
            x = lin(x) if j == len(self.layers) - 1 else F.relu(lin(x))
        return x


class MHARef(nn.Module):
    def __init__(self):
        super().__init__()
        self.attn = nn.MultiheadAttention(C, NH, batch_first=True)

    def forward(self, x, pos, mask):
        q = x + pos
        return x + self.attn(q, q, x, attn_mask=mask)[0]


class EncLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.attentions = nn.ModuleList([MSDeformAttnReference(C, NH, L, P)])
        self.ffns = nn.ModuleList([FFNRef()])
        self.norms = nn.ModuleList([nn.LayerNorm(C), nn.LayerNorm(C)])

    def forward(self, x, pos, ref, shapes, starts, mask):
        x = self.norms[0](self.attentions[0](x, x, ref, shapes, starts, query_pos=pos, key_padding_mask=mask))
        return self.norms[1](self.ffns[0](x))


class DecLayer(nn.Module):
    def __init__(self):
        super().__init__()
        self.attentions = nn.ModuleList([MHARef(), MSDeformAttnReference(C, NH, L, P)])
        self.ffns = nn.ModuleList([FFNRef()])
        self.norms = nn.ModuleList([nn.LayerNorm(C) for _ in range(3)])

    def forward(self, x, pos, memory, ref, shapes, starts, mask, attn_mask):
        x = self.norms[0](self.attentions[0](x, pos, attn_mask))
        x = self.norms[1](self.attentions[1](x, memory, ref, shapes, starts, query_pos=pos, key_padding_mask=mask))
        return self.norms[2](self.ffns[0](x))


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(EncLayer() for _ in range(ENC))


class Decoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList(DecLayer() for _ in range(DEC))
        self.ref_point_head = MLPRef(2 * C, C, C, 2)
        self.norm = nn.LayerNorm(C)
        cls, box = nn.Linear(C, NCLS), MLPRef(C, C, 4, 3)
        # shared by the decoder layers; the encoder's (last) are their own modules
        self.class_embed = nn.ModuleList([cls] * DEC + [nn.Linear(C, NCLS)])
        self.bbox_embed = nn.ModuleList([box] * DEC + [MLPRef(C, C, 4, 3)])


class Transformer(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = Encoder()
        self.decoder = Decoder()
        self.level_embeds = nn.Parameter(torch.zeros(L, C))
        self.tgt_embed = nn.Embedding(K, C)
        self.enc_output = nn.Linear(C, C)
        self.enc_output_norm = nn.LayerNorm(C)


def valid_ratio(mask):
    _, H, W = mask.shape
    vh = (~mask[:, :, 0]).sum(1).float() / H
    vw = (~mask[:, 0, :]).sum(1).float() / W
    return torch.stack([vw, vh], -1)


def encoder_reference_points(shapes, ratios):
    refs = []
    for lvl, (H, W) in enumerate(shapes):
        ry, rx = torch.meshgrid(torch.linspace(0.5, H - 0.5, H), torch.linspace(0.5, W - 0.5, W), indexing="ij")
        ry = ry.reshape(-1)[None] / (ratios[:, None, lvl, 1] * H)
        rx = rx.reshape(-1)[None] / (ratios[:, None, lvl, 0] * W)
        refs.append(torch.stack((rx, ry), -1))
    return torch.cat(refs, 1)[:, :, None] * ratios[:, None]


def proposals(model, memory, mask, shapes):
    N = memory.shape[0]
    props, cur = [], 0
    for lvl, (H, W) in enumerate(shapes):
        m = mask[:, cur:cur + H * W].view(N, H, W, 1)
        vh, vw = (~m[:, :, 0, 0]).sum(1), (~m[:, 0, :, 0]).sum(1)
        gy, gx = torch.meshgrid(torch.linspace(0, H - 1, H), torch.linspace(0, W - 1, W), indexing="ij")
        grid = torch.cat([gx.unsqueeze(-1), gy.unsqueeze(-1)], -1)
        scale = torch.cat([vw.unsqueeze(-1), vh.unsqueeze(-1)], 1).view(N, 1, 1, 2)
        grid = (grid.unsqueeze(0).expand(N, -1, -1, -1) + 0.5) / scale
        wh = torch.ones_like(grid) * 0.05 * (2.0 ** lvl)
        props.append(torch.cat((grid, wh), -1).view(N, -1, 4))
        cur += H * W
    p = torch.cat(props, 1)
    valid = ((p > 0.01) & (p < 0.99)).all(-1, keepdim=True)
    p = torch.log(p / (1 - p))
    p = p.masked_fill(mask.unsqueeze(-1), float("inf")).masked_fill(~valid, float("inf"))
    mem = memory.masked_fill(mask.unsqueeze(-1), 0.0).masked_fill(~valid, 0.0)
    return model.enc_output_norm(model.enc_output(mem)), p, valid


def forward(model, feats, masks, pos, dn_tgt, dn_ref, attn_mask, check_ties=False):
    shapes = torch.tensor(SHAPES, dtype=torch.int64)
    starts = torch.tensor([0, SHAPES[0][0] * SHAPES[0][1]], dtype=torch.int64)
    src = torch.cat([f.flatten(2).transpose(1, 2) for f in feats], 1)
    mask = torch.cat([m.flatten(1) for m in masks], 1)
    lvl_pos = torch.cat([p.flatten(2).transpose(1, 2) + model.level_embeds[i].view(1, 1, -1)
                         for i, p in enumerate(pos)], 1)
    ratios = torch.stack([valid_ratio(m) for m in masks], 1)  # (B, L, 2)
    ref = encoder_reference_points(SHAPES, ratios)
    memory = src
    for layer in model.encoder.layers:
        memory = layer(memory, lvl_pos, ref, shapes, starts, mask)
    out_mem, props, valid = proposals(model, memory, mask, SHAPES)
    dec = model.decoder
    enc_class = dec.class_embed[DEC](out_mem)
    enc_coord = dec.bbox_embed[DEC](out_mem) + props
    best = enc_class.max(-1)[0]
    topk = torch.topk(best, K, dim=1)[1]
    if check_ties:
        top = torch.sort(best.detach(), dim=1, descending=True)[0][:, :K + 1]
        gaps = (top[:, :-1] - top[:, 1:]).min().item()
        chosen_ok = bool((~mask).gather(1, topk).all() and valid[..., 0].gather(1, topk).all())
        if gaps < 1e-3 or not chosen_ok:
            return None
    coords = torch.gather(enc_coord, 1, topk.unsqueeze(-1).repeat(1, 1, 4))
    refs = torch.cat([dn_ref.sigmoid(), coords.detach().sigmoid()], 1)
    enc_state = torch.gather(out_mem, 1, topk.unsqueeze(-1).repeat(1, 1, C))
    tgt = torch.cat([dn_tgt, model.tgt_embed.weight[None].repeat(B, 1, 1)], 1)
    # decoder
    x, reference, hs, inter_refs = tgt, refs, [], []
    for i, layer in enumerate(dec.layers):
        ref_in = reference[:, :, None] * torch.cat([ratios, ratios], -1)[:, None]
        qpos = dec.ref_point_head(sine_embed(ref_in[:, :, 0, :], C // 2))
        x = layer(x, qpos, memory, ref_in, shapes, starts, mask, attn_mask)
        new_ref = (dec.bbox_embed[i](x) + inverse_sigmoid(reference)).sigmoid()
        reference = new_ref.detach()
        hs.append(dec.norm(x))
        inter_refs.append(new_ref)
    logits, boxes = [], []
    for i in range(DEC):
        prev = refs if i == 0 else inter_refs[i - 1]
        logits.append(dec.class_embed[i](hs[i]))
        boxes.append((dec.bbox_embed[i](hs[i]) + inverse_sigmoid(prev)).sigmoid())
    return {"logits": torch.stack(logits), "boxes": torch.stack(boxes),
            "enc_logits": dec.class_embed[DEC](enc_state), "enc_boxes": coords.sigmoid(), "topk": topk}


def make_inputs(g):
    masks = []
    for lvl, (H, W) in enumerate(SHAPES):
        m = torch.zeros(B, H, W, dtype=torch.bool)
        img = torch.zeros(1, 1, 24, 28)
        img[..., VALID[1][0] * 4:, :] = 1
        img[..., :, VALID[1][1] * 4:] = 1
        m[1] = F.interpolate(img, size=(H, W))[0, 0].bool()  # as DETR downsamples the image mask
        masks.append(m)
    feats = [torch.randn(B, C, H, W, generator=g) for H, W in SHAPES]
    pos = [torch.randn(B, C, H, W, generator=g) * 0.5 for H, W in SHAPES]
    dn_tgt = torch.randn(B, NDN, C, generator=g)
    dn_ref = torch.randn(B, NDN, 4, generator=g)
    Q = NDN + K
    attn_mask = torch.zeros(Q, Q, dtype=torch.bool)
    attn_mask[NDN:, :NDN] = True  # matching queries do not see the denoising ones
    for gi in range(2):  # two denoising groups of 2 do not see each other
        lo, hi = 2 * gi, 2 * gi + 2
        attn_mask[lo:hi, :lo] = True
        attn_mask[lo:hi, hi:NDN] = True
    return feats, masks, pos, dn_tgt, dn_ref, attn_mask


def randomise(model, g):
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p.shape[-1]))
            else:
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
        for layer in list(model.encoder.layers) + list(model.decoder.layers):
            att = layer.attentions[-1]
            att.sampling_offsets.bias.add_(att.init_grid())  # spread points as mmcv starts them


def main():
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    seed = 0
    while True:
        g = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        model = Transformer()
        randomise(model, g)
        inputs = make_inputs(g)
        with torch.no_grad():
            if forward(model, *inputs, check_ties=True) is not None:
                break
        seed += 1
    feats, masks, pos, dn_tgt, dn_ref, attn_mask = inputs
    leaves = {f"feats.{i}": f for i, f in enumerate(feats)}
    leaves.update({f"pos.{i}": p for i, p in enumerate(pos)})
    leaves["dn_tgt"] = dn_tgt
    for t in leaves.values():
        t.requires_grad_(True)
    out = forward(model, feats, masks, pos, dn_tgt, dn_ref, attn_mask)
    tensors = {f"state.{k}": v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    loss = 0
    for name in ("logits", "boxes", "enc_logits", "enc_boxes"):
        w = torch.randn(out[name].shape, generator=g)
        tensors[f"w.{name}"] = w
        loss = loss + (out[name] * w).sum()
        tensors[f"out.{name}"] = out[name].detach().contiguous()
    tensors["out.topk"] = out["topk"]
    params = {"level_embeds": model.level_embeds, "tgt_embed.weight": model.tgt_embed.weight,
              "enc_output.weight": model.enc_output.weight,
              "encoder.layers.0.attentions.0.sampling_offsets.weight":
                  model.encoder.layers[0].attentions[0].sampling_offsets.weight,
              "decoder.layers.1.attentions.0.attn.in_proj_weight": model.decoder.layers[1].attentions[0].attn.in_proj_weight,
              "decoder.layers.0.attentions.1.value_proj.weight": model.decoder.layers[0].attentions[1].value_proj.weight,
              "decoder.ref_point_head.layers.0.weight": model.decoder.ref_point_head.layers[0].weight,
              "decoder.class_embed.0.weight": model.decoder.class_embed[0].weight,
              "decoder.bbox_embed.0.layers.2.weight": model.decoder.bbox_embed[0].layers[2].weight,
              "decoder.bbox_embed.2.layers.0.weight": model.decoder.bbox_embed[2].layers[0].weight}
    grads = torch.autograd.grad(loss, list(leaves.values()) + list(params.values()))
    for name, gr in zip(list(leaves) + list(params), grads):
        tensors[f"grad.{name}"] = gr.contiguous()
    for name, t in leaves.items():
        tensors[f"in.{name}"] = t.detach().contiguous()
    for i, m in enumerate(masks):
        tensors[f"in.masks.{i}"] = m
    tensors["in.dn_ref"] = dn_ref
    tensors["in.attn_mask"] = attn_mask
    meta = {"embed_dim": C, "num_heads": NH, "num_levels": L, "num_points": P, "ffn": FFN, "encoder_layers": ENC,
            "decoder_layers": DEC, "num_classes": NCLS, "num_queries": K, "num_dn": NDN, "seed": seed}
    path = os.path.join(OUT_DIR, "det_dino_transformer.safetensors")
    save_file(tensors, path, metadata={"config": json.dumps(meta, sort_keys=True)})
    print(f"{path}: seed {seed}, {len(tensors)} tensors, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
