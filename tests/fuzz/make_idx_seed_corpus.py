#!/usr/bin/env python3
"""make_idx_seed_corpus.py: writes the seed corpus of fuzz_idx into tests/fuzz/corpus_idx/.

Valid files of every type code, plain and gzip (so the fuzzer starts from inputs that reach the
data), and hostile ones, one per validation rule. The same files are replayed by the CTest
unit_idx: valid_* must load, bad_* must be refused.
Run from the repository root: python3 tests/fuzz/make_idx_seed_corpus.py
"""
import gzip
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus_idx")


def idx(code, dims, data=b"", ndims=None):
    return bytes([0, 0, code, len(dims) if ndims is None else ndims]) + b"".join(struct.pack(">I", d) for d in dims) + data


def gz(b):
    return gzip.compress(b, mtime=0)   # mtime 0: the same bytes on every run


U8 = idx(0x08, [2, 3], bytes(range(6)))
SEEDS = {
    "valid_u8": U8,
    "valid_u8_labels": idx(0x08, [5], bytes([9, 0, 0, 3, 0])),
    "valid_i8": idx(0x09, [3], struct.pack(">3b", -128, 0, 127)),
    "valid_i16": idx(0x0B, [2, 1], struct.pack(">2h", -300, 12345)),
    "valid_i32": idx(0x0C, [2], struct.pack(">2i", -70000, 2**31 - 1)),
    "valid_f32": idx(0x0D, [1, 1, 2], struct.pack(">2f", 1.5, -0.0)),
    "valid_f64": idx(0x0E, [2], struct.pack(">2d", 3.25, float("inf"))),
    "valid_empty": idx(0x08, [0, 28, 28]),
    "valid_gzip_u8": gz(U8),
    "valid_gzip_f32": gz(idx(0x0D, [3], struct.pack(">3f", 1, 2, 3))),
    "bad_empty": b"",
    "bad_short": b"\x00\x00\x08",
    "bad_magic": b"\x01\x00\x08\x01" + struct.pack(">I", 1) + b"\x00",
    "bad_type": idx(0x0A, [1], b"\x00"),
    "bad_zero_dims": idx(0x08, [], b""),
    "bad_many_dims": idx(0x08, [1] * 9, b"\x00"),
    "bad_short_header": idx(0x08, [3, 3])[:10],
    "bad_truncated": U8[:-1],
    "bad_trailing": U8 + b"\x00",
    "bad_huge": idx(0x0E, [0xFFFFFFFF] * 4),
    "bad_gzip_truncated": gz(U8)[:-5],
    "bad_gzip_crc": gz(U8)[:-8] + b"\x00\x00\x00\x00" + gz(U8)[-4:],
    "bad_gzip_trailing": gz(U8) + b"junk",
    "bad_gzip_bomb_header": gz(idx(0x08, [0xFFFFFFFF, 0xFFFFFFFF])),
    "bad_gzip_short_data": gz(U8[:-2]),
    "bad_gzip_long_data": gz(U8 + b"\x01\x02"),
    "bad_gzip_not_deflate": b"\x1f\x8b\x07\x00" + b"\x00" * 16,
}


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(OUT)
    for name, data in sorted(SEEDS.items()):
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(SEEDS), os.path.relpath(OUT)))


if __name__ == "__main__":
    main()
