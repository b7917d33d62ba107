#!/usr/bin/env python3
"""Writes the whole-model fixtures: timm's key lists and timm parity data for ropevit's models.

    python3 tools/make_model_fixtures.py          # writes tests/fixtures/data/vit_timm_keys.json
                                                  #        and tests/fixtures/data/model_vit.safetensors,
                                                  #        swin_timm_keys.json, model_swin.safetensors

Each family lives in its own module (tools/model_fixtures_<family>.py, imported here); a family
adds its outputs to OUTPUTS. Rerunning reproduces every file bit for bit (weights and inputs
come from a fixed integer hash, not from torch's RNG). Needs timm (1.0.31 was used) and torch.
"""
import json
import os
import sys

from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import model_fixtures_swin  # noqa: E402
import model_fixtures_vit  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "fixtures", "data")


def write_json(name, obj):
    path = os.path.join(OUT_DIR, name)
    with open(path, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")
    print("wrote", path)


def write_safetensors(name, tensors_and_meta):
    tensors, meta = tensors_and_meta
    path = os.path.join(OUT_DIR, name)
    save_file(tensors, path, metadata=meta)
    print("wrote", path, f"({os.path.getsize(path) / 1e6:.2f} MB)")


def main():
    write_json("vit_timm_keys.json", model_fixtures_vit.vit_timm_keys())
    write_safetensors("model_vit.safetensors", model_fixtures_vit.vit_parity_fixtures())
    model_fixtures_swin.main()  # swin_timm_keys.json and model_swin.safetensors (seeded torch RNG, 1 thread)


if __name__ == "__main__":
    main()
