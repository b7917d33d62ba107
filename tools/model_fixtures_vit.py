"""The ViT part of tools/make_model_fixtures.py: timm's key lists and parity fixtures for ropevit's ViTs.

Two outputs (both under tests/fixtures/data/):

vit_timm_keys.json
    For every ViT name ropevit registers (models/vit_configs.cpp): timm's parameter count and its
    ordered state_dict keys with shapes. Models timm lacks (the tiny RoPE ViTs) are built with the
    same timm class and builder arguments as the small one, at ViT-Ti width, and marked
    "in_timm": false. Read by tests/fixtures/test_vit.cpp, which builds every registered ViT and
    compares names, order, shapes and counts.

model_vit.safetensors
    Reduced ViTs (C=128, 2 heads of head dim 64, 2 blocks, MLP ratio 1, patch 16, 10 classes),
    one per position embedding variant, built with timm (Eva for RoPE, VisionTransformer for
    DeiT-III and the original ViT, each with dynamic_img_size=True so that APE is resampled and
    the RoPE grid rebuilt for the input). Weights are not drawn from torch's RNG but from a fixed
    integer hash, so the file is the same bit for bit on every rerun. Stored for each variant and
    each input size (the 64x64 training size, 96x96, and the non-square 48x80):
        <variant>.<size>.logits, <variant>.<size>.loss (cross-entropy on fixed labels), and
        <variant>.<size>.grad.<param> for cls_token, pos_embed, rope.freqs, a gamma, and the
        qkv weight of the last block (at the training size; qkv bias at the others, to keep the
        file small)
    plus the inputs input.<size> / labels.<size>. Weights shared between variants (everything
    but the position embeddings, with gamma_1 = ls1.gamma) are stored once as w.<n>; the
    metadata entry "manifest" maps each variant's timm key to its stored tensor and gives the
    variant's config.
"""
import json
import math

import timm
import torch
import torch.nn.functional as F

# --- the registered names (must list what models/vit_configs.cpp registers) -------------------------

SIZES = {  # name: (embed_dim, depth, heads)
    "tiny": (192, 12, 3),
    "small": (384, 12, 6),
    "medium": (512, 12, 8),
    "base": (768, 12, 12),
    "large": (1024, 24, 16),
}


def registered_vit_names():
    names = [f"deit3_{s}_patch16_224" for s in ("small", "medium", "base", "large")]
    for s in ("tiny", "small", "base", "large"):
        stem = f"vit_{s}_patch16_"
        names += [stem + "224", stem + "rope_224", stem + "rope_mixed_224", stem + "rope_ape_224",
                  stem + "rope_mixed_ape_224"]
    return names


def build_timm_meta(name):
    """timm's model for a registered name, on the meta device (no memory, no init); for names
    timm lacks (tiny RoPE), the small builder at ViT-Ti width."""
    with torch.device("meta"):
        if name in timm.list_models():
            return timm.create_model(name), True
        assert name.startswith("vit_tiny_patch16_rope"), name
        small = name.replace("tiny", "small")
        dim, _, heads = SIZES["tiny"]
        return timm.create_model(small, embed_dim=dim, num_heads=heads), False


def vit_timm_keys():
    out = {}
    for name in registered_vit_names():
        model, in_timm = build_timm_meta(name)
        sd = model.state_dict()
        out[name] = {
            "in_timm": in_timm,
            "timm_class": type(model).__name__,
            "num_params": sum(p.numel() for p in model.parameters()),
            "keys": [[k, list(v.shape)] for k, v in sd.items()],
        }
    return out


# --- parity fixtures ------------------------------------------------------------------------------

def hashed(shape, seed, lo=-1.0, hi=1.0):
    """Values in [lo, hi) from a multiplicative hash of (index, seed): no RNG state involved."""
    n = math.prod(shape)
    idx = torch.arange(n, dtype=torch.int64)
    h = (idx * 2654435761 + seed * 40503 + 12345) % 4294967296
    h = (h ^ (h >> 13)) * 1274126177 % 4294967296
    u = h.to(torch.float64) / 4294967296.0
    return (lo + (hi - lo) * u).reshape(shape).to(torch.float32)


DIM, DEPTH, HEADS, MLP_RATIO, PATCH, CLASSES, BATCH = 128, 2, 2, 1.0, 16, 10, 2
TRAIN = (64, 64)
EVAL_SIZES = {"64x64": (64, 64), "96x96": (96, 96), "48x80": (48, 80)}  # (H, W); 48x80 shrinks H, grows W

# variant: (timm builder, ropevit pos_embed, ape_on_cls, layer scale)
VARIANTS = {
    "deit3": ("deit3_small_patch16_224", "ape", False, True),
    "vit": ("vit_small_patch16_224", "ape", True, False),
    "rope_axial": ("vit_small_patch16_rope_224", "rope_axial", False, True),
    "rope_mixed": ("vit_small_patch16_rope_mixed_224", "rope_mixed", False, True),
    "rope_axial_ape": ("vit_small_patch16_rope_ape_224", "rope_axial_ape", False, True),
    "rope_mixed_ape": ("vit_small_patch16_rope_mixed_ape_224", "rope_mixed_ape", False, True),
    # timm's global_pool='avg' without a CLS token (norm -> Identity, fc_norm after the pooling)
    "rope_mixed_gap": ("vit_small_patch16_rope_mixed_224", "rope_mixed", False, True),
    "deit3_gap": ("deit3_small_patch16_224", "ape", False, True),
}
# Variants built without a CLS token and with global_pool='avg' (timm's create_model kwargs).
GAP_VARIANTS = {"rope_mixed_gap", "deit3_gap"}


def canonical(key):
    """The name a weight is shared under: ls1.gamma and gamma_1 are the same LayerScale."""
    return key.replace("ls1.gamma", "gamma_1").replace("ls2.gamma", "gamma_2")


def param_value(key, shape, seed):
    """Deterministic weights at scales that keep activations O(1) and every part of the model
    (LayerScale, norms, biases, position embeddings, mixed frequencies) visible in the output."""
    if key.endswith("gamma") or "gamma_" in key or (("norm" in key) and key.endswith("weight")):
        return hashed(shape, seed, 0.5, 1.5)
    if key.endswith("bias"):
        return hashed(shape, seed, -0.1, 0.1)
    if key == "cls_token":
        return hashed(shape, seed, -1.0, 1.0)
    if key == "pos_embed":
        return hashed(shape, seed, -0.5, 0.5)
    if key == "rope.freqs":
        return hashed(shape, seed, -1.0, 1.0)
    fan_in = math.prod(shape[1:])
    b = 1.7 / math.sqrt(fan_in)
    return hashed(shape, seed, -b, b)


def check_rope_xy(model, h, w):
    """timm's axial 'xy' grid must give t_x = column, t_y = row (spec section 2; timm 33791c8)."""
    emb = model.rope.get_embed(shape=(h, w))  # (h*w, 2*HD): sin | cos, pairs repeated
    hd = DIM // HEADS
    sin = emb[:, :hd]
    n = torch.arange(h * w)
    tx, ty = (n % w).float(), (n // w).float()
    k = torch.arange(hd // 4).float()
    bands = 1.0 / (100.0 ** (k / (hd // 4)))
    ang = torch.cat([tx[:, None] * bands[None], ty[:, None] * bands[None]], 1).repeat_interleave(2, 1)
    err = (sin - torch.sin(ang)).abs().max().item()
    assert err < 1e-6, f"timm's rope 'xy' grid does not follow t_x = column, t_y = row (err {err})"


def vit_parity_fixtures():
    """Returns (tensors, metadata) for model_vit.safetensors."""
    tensors, manifest = {}, {"sizes": {}, "variants": {}}
    stored = {}  # canonical key (+ shape) -> stored name

    for s, (h, w) in EVAL_SIZES.items():
        tensors[f"input.{s}"] = hashed((BATCH, 3, h, w), 1000 + h * 7 + w)
        tensors[f"labels.{s}"] = torch.tensor([3, 7], dtype=torch.int64)
        manifest["sizes"][s] = [h, w]

    for vi, (variant, (builder, pos_embed, ape_on_cls, ls)) in enumerate(VARIANTS.items()):
        gap = variant in GAP_VARIANTS
        extra = {"class_token": False, "global_pool": "avg"} if gap else {}
        model = timm.create_model(builder, img_size=TRAIN, embed_dim=DIM, depth=DEPTH, num_heads=HEADS,
                                  mlp_ratio=MLP_RATIO, num_classes=CLASSES, dynamic_img_size=True, **extra)
        model.eval()
        weights = {}
        with torch.no_grad():
            for key, p in model.state_dict().items():
                ck = canonical(key)
                # Position embeddings differ per variant (the original ViT's has a CLS row); the rest is shared.
                ident = (ck, tuple(p.shape)) if ck not in ("pos_embed", "rope.freqs") else (variant, ck)
                if ident not in stored:
                    stored[ident] = f"w.{len(stored)}"
                    seed = sum(ord(c) * (i + 1) for i, c in enumerate(f"{ident}")) % 100003
                    tensors[stored[ident]] = param_value(ck, tuple(p.shape), seed)
                p.copy_(tensors[stored[ident]])
                weights[key] = stored[ident]
        if pos_embed == "rope_axial":
            check_rope_xy(model, 3, 5)

        gamma = "blocks.0.ls1.gamma" if (ls and not pos_embed.startswith("rope")) else "blocks.0.gamma_1"
        grads_of = ([] if gap else ["cls_token"]) + (["fc_norm.weight"] if gap else []) + (["pos_embed"] if "ape" in pos_embed else []) + \
                   (["rope.freqs"] if "mixed" in pos_embed else []) + ([gamma] if ls else [])
        params = dict(model.named_parameters())
        for s, (h, w) in EVAL_SIZES.items():
            model.zero_grad()
            logits = model(tensors[f"input.{s}"])
            loss = F.cross_entropy(logits, tensors[f"labels.{s}"])
            loss.backward()
            tensors[f"{variant}.{s}.logits"] = logits.detach().clone()
            tensors[f"{variant}.{s}.loss"] = loss.detach().clone()
            qkv = f"blocks.{DEPTH - 1}.attn.qkv." + ("weight" if (h, w) == TRAIN else "bias")
            for name in grads_of + [qkv]:
                tensors[f"{variant}.{s}.grad.{name}"] = params[name].grad.detach().clone()
        manifest["variants"][variant] = {
            "timm_builder": builder,
            "pos_embed": pos_embed,
            "ape_on_cls": ape_on_cls,
            "layer_scale": ls,
            "class_token": not gap,
            "global_pool": "avg" if gap else "token",
            "weights": weights,
        }
    manifest["config"] = {"embed_dim": DIM, "depth": DEPTH, "num_heads": HEADS, "mlp_ratio": MLP_RATIO,
                          "patch_size": PATCH, "num_classes": CLASSES, "img_size": list(TRAIN)}
    return {k: v.contiguous() for k, v in tensors.items()}, {"manifest": json.dumps(manifest, sort_keys=True)}
