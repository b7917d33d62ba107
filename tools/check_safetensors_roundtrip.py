#!/usr/bin/env python3
"""check_safetensors_roundtrip.py: loads a safetensors file that ropevit's writer produced with
the reference `safetensors` package and PyTorch, and checks it holds what the writer was given.

By default it checks tests/fixtures/data/safetensors/ropevit_written.safetensors, which
tests/unit/test_safetensors.cpp writes (RV_UPDATE_FIXTURES=1) and then compares byte for byte
on every run; so a pass here means our writer's current output is read correctly by the
reference implementation. The expected tensors are make_safetensors_fixtures.py's formulas plus
the extra entries listed below (keep them in step with the C++ test "writer golden file").
Usage: python3 tools/check_safetensors_roundtrip.py [file.safetensors]
"""
import json
import math
import os
import struct
import sys

import torch
from safetensors import safe_open
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_safetensors_fixtures import FORMULA_TENSORS, OUT, formula  # noqa: E402


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(OUT, "ropevit_written.safetensors")
    raw = open(path, "rb").read()
    n = struct.unpack("<Q", raw[:8])[0]
    header_text = raw[8:8 + n].decode("utf-8")
    assert n % 8 == 0, f"header length {n} is not a multiple of 8"
    assert header_text.startswith('{"__metadata__":{"format":"pt"'), "metadata must come first with format pt"
    assert header_text == header_text.rstrip(" ") + " " * (len(header_text) - len(header_text.rstrip(" ")))
    header = json.loads(header_text)

    tensors = load_file(path)
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    expect_meta = {"format": "pt", "model": "ropevit-test", "ünï": "cødé ✓"}
    assert meta == expect_meta, f"metadata {meta} != {expect_meta}"

    expected = {name: formula(dt, shape) for name, (dt, shape) in FORMULA_TENSORS.items()}
    # Extra entries the C++ test writes: a transposed (non-contiguous) source, a scalar, an empty
    # tensor, IEEE specials and a non-ASCII name.
    expected["f32_transposed"] = formula(torch.float32, [4, 3]).t().contiguous()
    expected["scalar"] = torch.tensor(-1.25, dtype=torch.float64)
    expected["empty"] = torch.zeros(2, 0, 3, dtype=torch.bfloat16)
    expected["specials"] = torch.tensor([float("inf"), float("-inf"), float("nan"), -0.0], dtype=torch.float32)
    expected["blocks.0.ñorm.weight"] = torch.tensor([1.0, -2.0], dtype=torch.float32)

    assert set(tensors) == set(expected), f"names {sorted(tensors)} != {sorted(expected)}"
    for name, want in expected.items():
        got = tensors[name]
        assert got.dtype == want.dtype, f"{name}: dtype {got.dtype} != {want.dtype}"
        assert list(got.shape) == list(want.shape), f"{name}: shape {list(got.shape)} != {list(want.shape)}"
        # Bitwise comparison (NaN and -0.0 included) through a same-width integer view.
        if got.numel() and got.dtype != torch.bool:
            ibits = {1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[got.element_size()]
            same = torch.equal(got.contiguous().view(ibits), want.contiguous().view(ibits))
        else:
            same = torch.equal(got, want)
        assert same, f"{name}: values differ\n got {got}\nwant {want}"
    # Tensors are stored in the reference order (element size descending, then name), contiguously.
    entries = sorted(((v["data_offsets"], k) for k, v in header.items() if k != "__metadata__"))
    at = 0
    for (b, e), k in entries:
        assert b == at, f"{k} begins at {b}, expected {at}"
        at = e
    assert 8 + n + at == len(raw), "file size does not match the header"
    print(f"{path}: OK ({len(tensors)} tensors, {len(raw)} bytes, metadata {meta}); "
          f"safetensors {__import__('safetensors').__version__}, torch {torch.__version__}")


if __name__ == "__main__":
    main()
