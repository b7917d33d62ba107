#!/usr/bin/env python3
"""make_safetensors_fixtures.py: writes the safetensors files that tests/unit/test_safetensors.cpp
reads, using PyTorch and the reference `safetensors` package, into tests/fixtures/data/safetensors/.

The values follow formulas that the C++ test replicates (element i in row-major order), so no
expected values need storing:
    F32   (i - 6) / 3            computed in float32
    F64   (i - 6) / 3            computed in float64
    BF16  the F32 value rounded to bfloat16 (round to nearest even)
    F16   the F32 value rounded to float16
    I32   (i - 3) * 1000003
    I64   (i - 3) * 3000000019   (beyond 32 bits)
    U8    (i * 37) % 256
    BOOL  i % 3 == 0
Files:
    torch_dtypes.safetensors       every dtype ropevit holds, a scalar, zero-element tensors,
                                   IEEE special values, non-ASCII names, metadata
    torch_plain.safetensors        the same tensors, metadata {"format": "pt"} only
    torch_unsupported.safetensors  valid safetensors dtypes ropevit cannot hold, next to one F32
Run from the repository root:  python3 tools/make_safetensors_fixtures.py
"""
import os

import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "data", "safetensors")

# name -> (dtype, shape); shapes are small and odd so that a wrong stride or offset shows.
FORMULA_TENSORS = {
    "f32": (torch.float32, [2, 3, 4]),
    "f64": (torch.float64, [5]),
    "bf16": (torch.bfloat16, [3, 7]),
    "f16": (torch.float16, [2, 2, 3]),
    "i32": (torch.int32, [6]),
    "i64": (torch.int64, [4, 2]),
    "u8": (torch.uint8, [17]),
    "bool": (torch.bool, [3, 3]),
}


def formula(dtype, shape):
    n = 1
    for d in shape:
        n *= d
    i = torch.arange(n, dtype=torch.int64)
    if dtype == torch.float64:
        v = (i.to(torch.float64) - 6) / 3
    elif dtype.is_floating_point:
        v = ((i.to(torch.float32) - 6) / 3).to(dtype)
    elif dtype == torch.int32:
        v = ((i - 3) * 1000003).to(torch.int32)
    elif dtype == torch.int64:
        v = (i - 3) * 3000000019
    elif dtype == torch.uint8:
        v = ((i * 37) % 256).to(torch.uint8)
    elif dtype == torch.bool:
        v = i % 3 == 0
    else:
        raise ValueError(dtype)
    return v.reshape(shape)


def main():
    os.makedirs(OUT, exist_ok=True)
    t = {name: formula(dt, shape) for name, (dt, shape) in FORMULA_TENSORS.items()}
    t["scalar"] = torch.tensor(3.5, dtype=torch.float32)                  # shape []
    t["empty"] = torch.zeros(0, 4, dtype=torch.float32)                    # zero elements
    t["empty_i64"] = torch.zeros(3, 0, dtype=torch.int64)
    t["specials"] = torch.tensor([float("inf"), float("-inf"), float("nan"), -0.0, 1e-45, 3.4028235e38],
                                 dtype=torch.float32)
    t["blocks.0.ñorm.weight"] = torch.tensor([1.0, -2.0], dtype=torch.float32)   # non-ASCII names
    t["日本語"] = torch.tensor([7], dtype=torch.int32)
    save_file(t, os.path.join(OUT, "torch_dtypes.safetensors"),
              metadata={"format": "pt", "source": "make_safetensors_fixtures.py", "note": "ünïcødé ✓"})
    # The same tensors with only the standard metadata: ropevit's writer must reproduce this file
    # byte for byte (same order, same header text, same padding).
    save_file(t, os.path.join(OUT, "torch_plain.safetensors"), metadata={"format": "pt"})

    u = {
        "i8": torch.tensor([-1, 2], dtype=torch.int8),
        "i16": torch.tensor([-300], dtype=torch.int16),
        "u16": torch.tensor([60000], dtype=torch.uint16),
        "u32": torch.tensor([4000000000], dtype=torch.uint32),
        "u64": torch.tensor([2**63 + 5], dtype=torch.uint64),
        "f8_e4m3": torch.tensor([1.0, 0.5], dtype=torch.float8_e4m3fn),
        "f8_e5m2": torch.tensor([2.0], dtype=torch.float8_e5m2),
        "c64": torch.tensor([1 + 2j], dtype=torch.complex64),
        "ok": torch.tensor([1.0, 2.0, 3.0], dtype=torch.float32),
    }
    save_file(u, os.path.join(OUT, "torch_unsupported.safetensors"), metadata={"format": "pt"})
    for f in sorted(os.listdir(OUT)):
        print(f"{f}: {os.path.getsize(os.path.join(OUT, f))} bytes")


if __name__ == "__main__":
    main()
