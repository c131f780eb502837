#!/usr/bin/env python3
"""Splits a GGUF file into a llama.cpp-style split set, as `llama-gguf-split --split` does:
`<stem>-00001-of-0000N.gguf`, ..., each part below --max-bytes. The first part carries every metadata entry
of the input plus `split.no` (u16), `split.count` (u16) and `split.tensors.count` (i32); the other parts carry
only the three split keys. Tensors keep their order, type, shape and bytes; data is aligned to 32 bytes.

Used to build the split-set fixture Tests/Fixtures/conformance/tiny-dense/gguf/tiny-dense-f32-0000i-of-0000N.gguf:
    python3 Tools/gguf-split.py ../shared/conformance/tiny-dense/gguf/tiny-dense-f32.gguf \
        Tests/Fixtures/conformance/tiny-dense/gguf --max-bytes 7000000
and Tests/Fixtures/conformance/tiny-moe/gguf/tiny-moe-bf16-0000i-of-00002.gguf (from the kit's tiny-moe-bf16.gguf):
    python3 Tools/gguf-split.py tiny-moe-bf16.gguf Tests/Fixtures/conformance/tiny-moe/gguf --max-bytes 5000000
"""
import argparse
import os
import struct

import numpy as np
from gguf import GGUFReader, GGUFValueType

ALIGNMENT = 32


def gguf_string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def split_kvs(number: int, count: int, tensors: int) -> list[bytes]:
    return [
        gguf_string("split.no") + struct.pack("<IH", GGUFValueType.UINT16, number),
        gguf_string("split.count") + struct.pack("<IH", GGUFValueType.UINT16, count),
        gguf_string("split.tensors.count") + struct.pack("<Ii", GGUFValueType.INT32, tensors),
    ]


def write_part(path: str, kvs: list[bytes], tensors) -> int:
    infos, offset, blobs = [], 0, []
    for t in tensors:
        data = np.ascontiguousarray(t.data).tobytes()
        dims = [int(d) for d in t.shape]
        infos.append(gguf_string(t.name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims)
                     + struct.pack("<IQ", int(t.tensor_type), offset))
        padding = (-len(data)) % ALIGNMENT
        blobs.append(data + b"\0" * padding)
        offset += len(data) + padding
    header = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs)) + b"".join(kvs) + b"".join(infos)
    header += b"\0" * ((-len(header)) % ALIGNMENT)
    with open(path, "wb") as f:
        f.write(header)
        for blob in blobs:
            f.write(blob)
    return len(header) + offset


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("input")
    parser.add_argument("out_dir")
    parser.add_argument("--max-bytes", type=int, required=True)
    args = parser.parse_args()

    reader = GGUFReader(args.input)
    # The original metadata entries, byte for byte (each field's parts are its encoded pieces).
    original_kvs = [b"".join(bytes(p.tobytes()) for p in field.parts)
                    for name, field in reader.fields.items() if not name.startswith("GGUF.")]

    # Greedy packing; the metadata of the first part counts against its budget.
    budget_first = args.max_bytes - sum(len(kv) for kv in original_kvs) - 4096
    groups, current, size = [], [], 0
    for t in reader.tensors:
        need = int(t.n_bytes) + ALIGNMENT + 64 + len(t.name)
        limit = budget_first if not groups else args.max_bytes - 4096
        if current and size + need > limit:
            groups.append(current)
            current, size = [], 0
        current.append(t)
        size += need
    groups.append(current)

    stem = os.path.basename(args.input)[: -len(".gguf")]
    for i, group in enumerate(groups):
        kvs = (original_kvs if i == 0 else []) + split_kvs(i, len(groups), len(reader.tensors))
        path = os.path.join(args.out_dir, f"{stem}-{i + 1:05d}-of-{len(groups):05d}.gguf")
        written = write_part(path, kvs, group)
        assert written < args.max_bytes, f"{path}: {written} bytes"
        print(f"{path}: {len(group)} tensors, {written} bytes")


if __name__ == "__main__":
    main()
