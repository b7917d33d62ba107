#!/usr/bin/env python3
"""Writes the model-level fixtures (state-dict key lists, parity outputs and gradients).

    python3 tools/make_model_fixtures.py

A thin driver: each model family has its own module (tools/model_fixtures_<family>.py) with a
main() that writes its files under tests/fixtures/data/; this runs every one that exists.
"""
import importlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

PARTS = ["model_fixtures_vit", "model_fixtures_swin"]

if __name__ == "__main__":
    for part in PARTS:
        try:
            mod = importlib.import_module(part)
        except ModuleNotFoundError as e:
            if e.name != part:
                raise
            continue
        print("writing", part)
        mod.main()
