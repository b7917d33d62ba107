#!/usr/bin/env python3
"""convert_checkpoint.py: a PyTorch checkpoint (.pth / .bin / .pt) -> safetensors, names unchanged.

C++ cannot read Python pickles, so this is the one step of checkpoint conversion that needs Python.
It only unpickles and unwraps; every renaming and resizing (official RoPE-ViT names -> timm names,
APE and relative-position-bias tables at another resolution) happens in `ropevit convert`, which
calls this script for pickled inputs and reads safetensors directly:

    tools/convert_checkpoint.py rope_mixed_deit_small_patch16_LS.pth raw.safetensors
    ropevit convert raw.safetensors vit_s_mixed.safetensors --model vit_small_patch16_rope_mixed_224

Unwrapping follows timm's checkpoint filters: the state dict is taken from the first of
'model_ema', 'model', 'module', 'state_dict' found at the top level (or with --key), and a leading
'module.' (DistributedDataParallel) is stripped from every name. Tensors that are not floating
point or integer (e.g. optimizer state stored next to the weights) are skipped with a note.
The input is loaded with weights_only=True (no arbitrary code runs from the pickle).
"""
import argparse
import os
import sys

import torch
from safetensors.torch import save_file


def unwrap(obj, key):
    if key:
        if not isinstance(obj, dict) or key not in obj:
            sys.exit(f"convert_checkpoint: key '{key}' not found at the top level "
                     f"(keys: {list(obj)[:20] if isinstance(obj, dict) else type(obj).__name__})")
        return obj[key], key
    if isinstance(obj, dict):
        for k in ("model_ema", "model", "module", "state_dict"):
            if k in obj and isinstance(obj[k], dict):
                return obj[k], k
    return obj, ""


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("input", help="a .pth / .bin / .pt checkpoint")
    ap.add_argument("output", help="the .safetensors file to write")
    ap.add_argument("--key", default="", help="take the state dict from this top-level key")
    args = ap.parse_args()

    try:
        obj = torch.load(args.input, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file: say which and why
        sys.exit(f"convert_checkpoint: cannot read {args.input} as a PyTorch checkpoint: {e}")
    state, where = unwrap(obj, args.key)
    if not isinstance(state, dict):
        sys.exit(f"convert_checkpoint: {args.input}: expected a state dict (name -> tensor), "
                 f"got {type(state).__name__}")

    tensors, skipped = {}, []
    for name, value in state.items():
        if name.startswith("module."):
            name = name[len("module."):]
        if not isinstance(value, torch.Tensor) or value.is_complex() or value.dtype == torch.bool:
            skipped.append(name)
            continue
        tensors[name] = value.detach().contiguous().clone()  # clone: shared storages cannot be saved
    if not tensors:
        sys.exit(f"convert_checkpoint: {args.input}: no tensors found under '{where or '(top level)'}'")

    tmp = args.output + ".tmp"
    save_file(tensors, tmp, metadata={"format": "pt", "source": os.path.basename(args.input),
                                      "unwrapped_from": where})
    os.replace(tmp, args.output)  # never leave a half-written file under the final name
    print(f"wrote {args.output}: {len(tensors)} tensors"
          + (f" (from '{where}')" if where else "")
          + (f"; skipped {len(skipped)} non-tensor entries: {skipped[:5]}" if skipped else ""))


if __name__ == "__main__":
    main()
