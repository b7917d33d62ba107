#!/usr/bin/env python3
"""Writes the UperNet fixtures for tests/fixtures/test_upernet.cpp.

    python3 tools/make_seg_fixtures_upernet.py   # writes tests/fixtures/data/seg_upernet.safetensors

mmseg itself needs mmcv (CUDA ops), so this is a plain PyTorch re-implementation of the layers, written
from mmseg's code semantics (mmseg 1.x):
  ConvModule          mmcv.cnn.ConvModule(conv_cfg=None, norm_cfg=BN, act_cfg=ReLU): conv bias off
                      (bias='auto' with a norm), children `conv`, `bn`, then ReLU
  UPerHead            mmseg/models/decode_heads/uper_head.py (+ PPM of psp_head.py): psp_modules.j =
                      Sequential(AdaptiveAvgPool2d(s), ConvModule 1x1), bottleneck 3x3, lateral_convs 1x1,
                      fpn_convs 3x3, fpn_bottleneck 3x3; every resize bilinear, align_corners=False
  FCNHead             mmseg/models/decode_heads/fcn_head.py, num_convs=1, kernel 3, concat_input=False
  BaseDecodeHead      conv_seg (registered first) and Dropout2d before it (cls_seg)
  loss                CrossEntropyLoss(avg_non_ignore=False): logits resized to the label size,
                      F.cross_entropy(reduction='none', ignore_index=255).mean() (over ALL pixels);
                      the auxiliary head's loss times 0.4
  ViT backbone        BEiT's semantic_segmentation/backbone/beit.py: block outputs (CLS dropped,
                      no norm) of the given blocks through fpn1 (ConvT 2x2/2, BN, GELU, ConvT 2x2/2),
                      fpn2 (ConvT 2x2/2), fpn3 (identity), fpn4 (MaxPool 2x2/2); the ViT is timm's
                      Eva RoPE-Mixed (forward_intermediates, dynamic_img_size)
  Swin backbone       mmseg's SwinTransformer out_indices (0..3): each stage output through its own
                      LayerNorm norm{i}; the Swin is tools/swin_rope_reference.py's RoPE-Mixed Swin

Two reduced models, 5 classes, head channels 16, auxiliary channels 8:
  vit   Eva RoPE-Mixed, C 32, depth 4, 2 heads, MLP ratio 1; out_indices 0, 1, 2, 3
  swin  RoPE-Mixed Swin, C 8, depths 2-2-2-2, heads 1-1-2-2, MLP ratio 1, window 4 (built per size)
Stored, per model M and size S in 64x64 and 96x64 (H x W):
  M.state.<key>            the state dict (mmseg names: backbone.*, decode_head.*, auxiliary_head.*)
  M.S.input (2, 3, H, W), M.S.labels (2, H, W) u8 with 255 regions
  eval mode:  M.S.eval.decode (2, 5, H/4, W/4), M.S.eval.aux (2, 5, H/16, W/16)
  train mode (BatchNorm on batch statistics, dropout off so that the result is deterministic):
    M.S.train.decode        decode logits
    M.S.train.loss          [decode, aux (x0.4), total]
    M.S.train.loss_avg_non_ignore  the decode loss with avg_non_ignore=True (mmseg's eps included)
    M.S.train.grad.<key>    d total / d parameter, a few parameters (at 96x64 those of <= 600 elements)
    M.S.train.after.<key>   a few BatchNorm running stats after that one training forward
The metadata "keys" maps each model to its state dict names in order (what mmseg would name them).
Weights and inputs are rounded to f16 values and stored as f16 (exactly), to keep the file small.
Single-threaded and seeded: a re-run writes identical bytes.
"""
import json
import math
import os
import sys

import timm
import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import swin_rope_reference as swin_ref  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "data", "seg_upernet.safetensors")

K, CH, AUX_CH, B = 5, 16, 8, 2
SIZES = {"64x64": (64, 64), "96x64": (96, 64)}


def resize(x, size):
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class ConvModule(nn.Module):
    def __init__(self, cin, cout, k):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=(k - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


class UPerHead(nn.Module):
    def __init__(self, in_channels, channels, num_classes, pool_scales=(1, 2, 3, 6), dropout=0.1):
        super().__init__()
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)
        self.dropout = nn.Dropout2d(dropout)
        self.psp_modules = nn.ModuleList(
            nn.Sequential(nn.AdaptiveAvgPool2d(s), ConvModule(in_channels[-1], channels, 1)) for s in pool_scales)
        self.bottleneck = ConvModule(in_channels[-1] + len(pool_scales) * channels, channels, 3)
        self.lateral_convs = nn.ModuleList(ConvModule(c, channels, 1) for c in in_channels[:-1])
        self.fpn_convs = nn.ModuleList(ConvModule(channels, channels, 3) for _ in in_channels[:-1])
        self.fpn_bottleneck = ConvModule(len(in_channels) * channels, channels, 3)

    def forward(self, inputs):
        x = inputs[-1]
        psp = [x] + [resize(m(x), x.shape[2:]) for m in self.psp_modules]
        laterals = [conv(inputs[i]) for i, conv in enumerate(self.lateral_convs)]
        laterals.append(self.bottleneck(torch.cat(psp, 1)))
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + resize(laterals[i], laterals[i - 1].shape[2:])
        outs = [self.fpn_convs[i](laterals[i]) for i in range(len(laterals) - 1)] + [laterals[-1]]
        outs = [outs[0]] + [resize(o, outs[0].shape[2:]) for o in outs[1:]]
        return self.conv_seg(self.dropout(self.fpn_bottleneck(torch.cat(outs, 1))))


class FCNHead(nn.Module):
    def __init__(self, in_channels, channels, num_classes, in_index=2, dropout=0.1):
        super().__init__()
        self.in_index = in_index
        self.conv_seg = nn.Conv2d(channels, num_classes, 1)
        self.dropout = nn.Dropout2d(dropout)
        self.convs = nn.Sequential(ConvModule(in_channels, channels, 3))

    def forward(self, inputs):
        return self.conv_seg(self.dropout(self.convs(inputs[self.in_index])))


class VitBackbone(nn.Module):
    """BEiT-style: the Eva's own tensors under their names (no final norm, no head), then fpn1..fpn4."""

    def __init__(self, eva, out_indices):
        super().__init__()
        object.__setattr__(self, "eva", eva)  # not a child: its parts are registered below
        self.out_indices = out_indices
        self.cls_token = eva.cls_token
        self.patch_embed = eva.patch_embed
        self.rope = eva.rope
        self.blocks = eva.blocks
        C = eva.embed_dim
        self.fpn1 = nn.Sequential(nn.ConvTranspose2d(C, C, 2, 2), nn.BatchNorm2d(C), nn.GELU(), nn.ConvTranspose2d(C, C, 2, 2))
        self.fpn2 = nn.Sequential(nn.ConvTranspose2d(C, C, 2, 2))
        self.fpn3 = nn.Identity()
        self.fpn4 = nn.MaxPool2d(2, 2)

    def forward(self, x):
        maps = self.eva.forward_intermediates(x, indices=self.out_indices, norm=False, intermediates_only=True)
        return [op(m) for op, m in zip((self.fpn1, self.fpn2, self.fpn3, self.fpn4), maps)]

    def train(self, mode=True):
        super().train(mode)
        self.eva.train(mode)
        return self


class SwinBackbone(nn.Module):
    def __init__(self, swin):
        super().__init__()
        self.patch_embed = swin.patch_embed
        self.layers = swin.layers
        for i, layer in enumerate(swin.layers):
            setattr(self, f"norm{i}", nn.LayerNorm(8 << i, eps=1e-5))

    def forward(self, x):
        x = self.patch_embed(x)
        outs = []
        for i, layer in enumerate(self.layers):
            x = layer(x)  # (B, H, W, C)
            outs.append(getattr(self, f"norm{i}")(x).permute(0, 3, 1, 2).contiguous())
        return outs


class EncoderDecoder(nn.Module):
    def __init__(self, backbone, in_channels):
        super().__init__()
        self.backbone = backbone
        self.decode_head = UPerHead(in_channels, CH, K)
        self.auxiliary_head = FCNHead(in_channels[2], AUX_CH, K)

    def losses(self, x, labels, avg_non_ignore=False):
        feats = self.backbone(x)
        dec, aux = self.decode_head(feats), self.auxiliary_head(feats)
        out = []
        for logits, w in ((dec, 1.0), (aux, 0.4)):
            per = F.cross_entropy(resize(logits, labels.shape[1:]), labels.long(), reduction="none", ignore_index=255)
            out.append(w * per.mean())
        valid = (labels != 255).sum().item()
        per = F.cross_entropy(resize(dec, labels.shape[1:]), labels.long(), reduction="none", ignore_index=255)
        non_ignore = per.sum() / (valid + torch.finfo(torch.float32).eps)
        return dec, out[0], out[1], non_ignore


def deterministic_weights(model, seed):
    """Weights of a scale that keeps activations O(1), BatchNorm affine and running stats away from
    their defaults (so both BN modes matter), conv_seg large enough for O(1) logits."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.state_dict().items():
            if name.endswith("num_batches_tracked"):
                p.fill_(3)
            elif name.endswith("running_mean"):
                p.copy_(torch.rand(p.shape, generator=g) * 0.4 - 0.2)
            elif name.endswith("running_var"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            elif p.dim() == 1 and ("bn" in name or "norm" in name or "fpn1.1" in name or "gamma" in name) and name.endswith("weight"):
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            elif "gamma" in name:
                p.copy_(torch.rand(p.shape, generator=g) + 0.5)
            elif name.endswith("bias") or p.dim() == 1:
                p.copy_(torch.rand(p.shape, generator=g) * 0.2 - 0.1)
            elif name.endswith("rope.freqs") or name.endswith("rope_freqs"):
                p.copy_(torch.rand(p.shape, generator=g) * 2 - 1)
            else:
                fan_in = math.prod(p.shape[1:])
                if "fpn1.0" in name or "fpn1.3" in name or "fpn2.0" in name:
                    fan_in = p.shape[0]  # ConvTranspose2d weight (C_in, C_out, 2, 2): each output sees C_in
                b = 1.7 / math.sqrt(fan_in)
                p.copy_((torch.rand(p.shape, generator=g) * 2 - 1) * b)
        for p in model.state_dict().values():  # f16-representable values, so that f16 storage is exact
            if p.is_floating_point():
                p.copy_(p.half().float())


def build_vit(_hw):
    eva = timm.create_model("vit_small_patch16_rope_mixed_224", img_size=64, embed_dim=32, depth=4, num_heads=2,
                            mlp_ratio=1.0, num_classes=0, dynamic_img_size=True)
    return EncoderDecoder(VitBackbone(eva, [0, 1, 2, 3]), [32] * 4)


def build_swin(hw):
    torch.manual_seed(0)
    swin = swin_ref.swin("rope_mixed", img_size=hw, window_size=4, num_classes=0, embed_dim=8, depths=(2, 2, 2, 2),
                         num_heads=(1, 1, 2, 2), mlp_ratio=1.0, drop_path_rate=0.0)
    return EncoderDecoder(SwinBackbone(swin), [8, 16, 32, 64])


GRADS = {
    "vit": ["backbone.rope.freqs", "backbone.blocks.1.attn.qkv.weight", "backbone.fpn1.0.weight", "backbone.fpn1.1.weight",
            "backbone.fpn2.0.bias", "decode_head.conv_seg.weight", "decode_head.psp_modules.3.1.conv.weight",
            "decode_head.bottleneck.bn.weight", "decode_head.lateral_convs.0.conv.weight",
            "decode_head.fpn_convs.1.conv.weight", "decode_head.fpn_bottleneck.bn.weight", "auxiliary_head.convs.0.conv.weight",
            "auxiliary_head.conv_seg.bias"],
    "swin": ["backbone.patch_embed.proj.weight", "backbone.layers.1.blocks.1.attn.qkv.weight",
             "backbone.layers.2.blocks.0.attn.rope_freqs", "backbone.norm0.weight", "backbone.norm3.bias",
             "decode_head.conv_seg.weight", "decode_head.psp_modules.0.1.conv.weight", "decode_head.lateral_convs.1.conv.weight",
             "decode_head.fpn_bottleneck.bn.bias", "auxiliary_head.convs.0.conv.weight"],
}
AFTER = ["decode_head.bottleneck.bn.running_mean", "decode_head.bottleneck.bn.running_var",
         "decode_head.psp_modules.0.1.bn.running_var", "auxiliary_head.convs.0.bn.running_mean",
         "decode_head.fpn_bottleneck.bn.num_batches_tracked"]


def main():
    torch.set_num_threads(1)
    tensors, key_lists = {}, {}
    for mi, (tag, build) in enumerate((("vit", build_vit), ("swin", build_swin))):
        first = build(SIZES["64x64"])
        deterministic_weights(first, 100 + mi)
        state = {k: v.clone().contiguous() for k, v in first.state_dict().items()}
        key_lists[tag] = list(state.keys())
        for k, v in state.items():  # f16 (exact: the weights were rounded to f16 values) halves the file
            tensors[f"{tag}.state.{k}"] = v.half() if v.is_floating_point() else v
        after_keys = AFTER + (["backbone.fpn1.1.running_mean"] if tag == "vit" else [])
        for si, (s, hw) in enumerate(SIZES.items()):
            g = torch.Generator().manual_seed(1000 + 10 * mi + si)
            x = torch.randn((B, 3) + hw, generator=g).half().float()  # f16 values: stored exactly as f16
            labels = torch.randint(0, K, (B,) + hw, generator=g).to(torch.uint8)
            labels[0, : hw[0] // 3, : hw[1] // 2] = 255  # an ignored block
            labels[1, -5:, :] = 255
            p = f"{tag}.{s}."
            tensors[p + "input"], tensors[p + "labels"] = x.half(), labels
            m = build(hw)
            m.load_state_dict(state)
            m.eval()
            with torch.no_grad():
                feats = m.backbone(x)
                tensors[p + "eval.decode"] = m.decode_head(feats)
                tensors[p + "eval.aux"] = m.auxiliary_head(feats)
            m.train()
            m.decode_head.dropout.eval()  # dropout off: deterministic; BatchNorm stays in training mode
            m.auxiliary_head.dropout.eval()
            dec, ld, la, non_ignore = m.losses(x, labels)
            total = ld + la
            total.backward()
            tensors[p + "train.decode"] = dec.detach()
            tensors[p + "train.loss"] = torch.stack([ld, la, total]).detach()
            tensors[p + "train.loss_avg_non_ignore"] = non_ignore.detach().reshape(1)
            params = dict(m.named_parameters())
            for k in GRADS[tag]:  # at the second size only the small ones, to keep the file under 1 MB
                if si == 0 or params[k].numel() <= 600:
                    tensors[p + "train.grad." + k] = params[k].grad.clone()
            sd = m.state_dict()
            for k in after_keys:
                tensors[p + "train.after." + k] = sd[k].clone()
    # One metadata entry: safetensors does not keep the order of several.
    save_file({k: v.contiguous() for k, v in tensors.items()}, OUT, metadata={"keys": json.dumps(key_lists)})
    print("wrote", OUT, f"({os.path.getsize(OUT) / 1e6:.2f} MB)")
    for tag in ("vit", "swin"):
        keys = key_lists[tag]
        print(tag, len(keys), "keys, e.g.", [k for k in keys if "head" in k][:6])


if __name__ == "__main__":
    main()
