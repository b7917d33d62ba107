#!/usr/bin/env python3
"""make_seed_corpus.py: writes the seed corpus of fuzz_safetensors into tests/fuzz/corpus/.

Valid files (so the fuzzer starts from inputs that reach deep into the reader) and hostile ones
(one per validation rule). The same files are replayed by the CTest unit_safetensors_hostile.
Run from the repository root: python3 tests/fuzz/make_seed_corpus.py
"""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "corpus")
FIXTURES = os.path.join(HERE, "..", "fixtures", "data", "safetensors")

W8 = '"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}'
D8 = struct.pack("<2f", 1.0, 2.0)


def st(header, data=b"", n=None, pad=True):
    h = header.encode("utf-8") if isinstance(header, str) else header
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h) if n is None else n) + h + data


SEEDS = {
    # valid
    "valid_test_vector": st('{"__metadata__":{"format":"pt"},' + W8 + "}", D8),
    "valid_empty": st("{}"),
    "valid_metadata_only": st('{"__metadata__":{"format":"pt","k":"v"}}'),
    "valid_zero_size": st('{"z":{"dtype":"F64","shape":[0,3],"data_offsets":[0,0]},"s":{"dtype":"I64","shape":[],'
                          '"data_offsets":[0,8]}}', struct.pack("<q", -5)),
    "valid_misaligned": st('{"b":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"w":{"dtype":"F32","shape":[2],'
                           '"data_offsets":[1,9]}}', b"\x07" + D8, pad=False),
    "valid_bool_f16_bf16": st('{"m":{"dtype":"BOOL","shape":[3],"data_offsets":[0,3]},"h":{"dtype":"F16","shape":[1],'
                              '"data_offsets":[4,6]},"g":{"dtype":"BF16","shape":[1],"data_offsets":[6,8]},'
                              '"u":{"dtype":"U8","shape":[1],"data_offsets":[3,4]}}', b"\x01\x00\x01\x05\x00\x3c\x80\x3f"),
    "valid_unsupported_dtypes": st('{"q":{"dtype":"F4","shape":[2],"data_offsets":[0,1]},"i":{"dtype":"I8","shape":[1],'
                                   '"data_offsets":[1,2]},"c":{"dtype":"C64","shape":[1],"data_offsets":[2,10]}}',
                                   b"\x12\xff" + D8),
    "valid_unicode_names": st('{"日本語":{"dtype":"I32","shape":[1],"data_offsets":[0,4]},"\\u00f1":{"dtype":"I32",'
                              '"shape":[1],"data_offsets":[4,8]}}', struct.pack("<2i", 7, -7)),
    # hostile, one per rule
    "bad_short": b"\x01\x02\x03",
    "bad_huge_n": st("{}", n=0xFFFFFFFFFFFFFFFF),
    "bad_n_past_end": st("{}", n=64),
    "bad_no_brace": st('["w"]'),
    "bad_nul": st(b"{}\x00junk", pad=False),
    "bad_utf8": st(b'{"\xc3\x28":{}}'),
    "bad_deep": st('{"a":' + "[" * 200 + "]" * 200 + "}"),
    "bad_dup_name": st("{" + W8 + "," + W8 + "}", D8),
    "bad_dup_key": st('{"w":{"dtype":"F32","dtype":"F32","shape":[2],"data_offsets":[0,8]}}', D8),
    "bad_unknown_dtype": st('{"w":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}', D8),
    "bad_negative_shape": st('{"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', D8),
    "bad_shape_overflow": st('{"w":{"dtype":"F64","shape":[4294967296,4294967296,4],"data_offsets":[0,8]}}', D8),
    "bad_bytes_overflow": st('{"w":{"dtype":"F64","shape":[4611686018427387904],"data_offsets":[0,8]}}', D8),
    "bad_offsets_reversed": st('{"w":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}}', D8),
    "bad_size_mismatch": st('{"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', D8),
    "bad_hole": st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],'
                   '"data_offsets":[8,12]}}', D8 + D8[:4]),
    "bad_overlap": st("{" + W8 + ',"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', D8),
    "bad_truncated": st("{" + W8 + "}", D8[:5]),
    "bad_trailing": st("{" + W8 + "}", D8 + b"xyz"),
    "bad_metadata_type": st('{"__metadata__":{"epoch":3}}'),
    "bad_entry_type": st('{"w":[1,2]}'),
    "bad_missing_offsets": st('{"w":{"dtype":"F32","shape":[2]}}', D8),
    "bad_bool_byte": st('{"m":{"dtype":"BOOL","shape":[2],"data_offsets":[0,2]}}', b"\x01\x07"),
    "bad_subbyte": st('{"q":{"dtype":"F6_E2M3","shape":[3],"data_offsets":[0,3]}}', b"abc"),
}


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, data in SEEDS.items():
        with open(os.path.join(OUT, name), "wb") as f:
            f.write(data)
    for name in ("torch_dtypes", "torch_unsupported"):
        shutil.copy(os.path.join(FIXTURES, name + ".safetensors"), os.path.join(OUT, "valid_" + name))
    print(f"{len(os.listdir(OUT))} files in {OUT}")


if __name__ == "__main__":
    main()
