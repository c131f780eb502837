#!/usr/bin/env python3
"""Writes Tests/Fixtures/modelfiles/dequant-expectations.json: gguf-py's dequantization (the reference the
Swift `Dequantize` must match bit for bit), so the Swift tests need no Python.

Two kinds of cases:
  * "tensors": for every GGUF under Tests/Fixtures/conformance and every tensor type in it, one real tensor
    (the largest up to 300k elements): its element count, a position-weighted checksum of gguf-py's float32
    output bit patterns and its first 8 values' bit patterns (to make a mismatch readable).
  * "blocks": for every type the Swift reference supports, seeded random blocks (scales kept finite,
    edge cases such as MXFP4's subnormal exponents and F16 infinities/NaNs included) with gguf-py's float32
    output, both base64. This covers the formats the conformance files do not contain (F16, Q4_1, Q2_K,
    Q3_K) and every bit of the others.

Run from the repository root:  python3 Tools/make-dequant-expectations.py
"""
import base64
import glob
import json
import os
import re

import numpy as np
from gguf import GGUFReader, GGMLQuantizationType as T, GGML_QUANT_SIZES
from gguf.quants import dequantize

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "Tests/Fixtures/modelfiles/dequant-expectations.json")

SUPPORTED = [T.F32, T.F16, T.BF16, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1, T.Q8_0, T.Q2_K, T.Q3_K, T.Q4_K,
             T.Q5_K, T.Q6_K, T.IQ4_NL, T.IQ4_XS, T.MXFP4]

# Byte offsets of the f16 scale fields in each block layout (ggml-common.h); random bytes there could
# be Inf/NaN, which would only test NaN propagation order, so they get finite values instead.
F16_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0], T.Q2_K: [80, 82],
    T.Q3_K: [108], T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208], T.IQ4_NL: [0], T.IQ4_XS: [0],
}


def checksum(values: np.ndarray) -> str:
    """Σ (bits[i] + 1) · odd(i) mod 2⁶⁴ over the float32 bit patterns, odd(i) = (i · 0x9E3779B97F4A7C15) | 1.
    Multiplying by an odd number is a bijection mod 2⁶⁴, so any change to one value changes the sum."""
    bits = values.astype("<f4").view(np.uint32).astype(np.uint64)
    index = np.arange(values.size, dtype=np.uint64)
    with np.errstate(over="ignore"):
        odd = (index * np.uint64(0x9E3779B97F4A7C15)) | np.uint64(1)
        total = np.sum((bits + np.uint64(1)) * odd, dtype=np.uint64)
    return f"{int(total):016x}"


def tensor_cases():
    cases = []
    # A split set (`<stem>-0000i-of-0000N.gguf`) counts as one model: its tensors are chosen across all parts,
    # and each case names the part that holds the tensor.
    models = {}
    for path in sorted(glob.glob(os.path.join(ROOT, "Tests/Fixtures/conformance/*/gguf/*.gguf"))):
        models.setdefault(re.sub(r"-\d{5}-of-\d{5}\.gguf$", ".gguf", path), []).append(path)
    for parts in models.values():
        by_type, file_of = {}, {}
        for path in parts:
            for t in GGUFReader(path).tensors:
                n = int(t.n_elements)
                if n > 300_000:
                    continue
                best = by_type.get(t.tensor_type)
                if best is None or int(best.n_elements) < n:
                    by_type[t.tensor_type] = t
                    file_of[t.tensor_type] = path
        for qtype, t in sorted(by_type.items(), key=lambda kv: kv[0].value):
            path = file_of[qtype]
            values = dequantize(t.data, qtype).reshape(-1).astype(np.float32)
            cases.append({
                "file": os.path.relpath(path, os.path.join(ROOT, "Tests/Fixtures")),
                "tensor": t.name,
                "type": qtype.name,
                "count": int(values.size),
                "checksum": checksum(values),
                "first": [int(x) for x in values[:8].view(np.uint32)],
            })
            print(f"{cases[-1]['file']}: {t.name} {qtype.name} {values.size}")
    return cases


def random_blocks(qtype, rng):
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    n_blocks = 4 if block_size == 256 else 16
    if qtype == T.F32:
        values = rng.standard_normal(64).astype(np.float32)
        values[:4] = [np.inf, -0.0, 1e-42, np.float32(3.4e38)]
        return values.view(np.uint8)
    if qtype in (T.F16, T.BF16):
        raw = rng.integers(0, 1 << 16, size=256, dtype=np.uint16)
        # Zeros, subnormals, infinities, quiet and signalling NaNs.
        specials = [0x0000, 0x8000, 0x0001, 0x83FF, 0x7C00, 0xFC00, 0x7E00, 0x7C01] if qtype == T.F16 else \
                   [0x0000, 0x8000, 0x0001, 0x807F, 0x7F80, 0xFF80, 0x7FC0, 0x7F81]
        raw[:len(specials)] = specials
        return raw.view(np.uint8)
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    if qtype == T.MXFP4:
        raw[:, 0] = rng.integers(100, 150, size=n_blocks)
        raw[:4, 0] = [0, 1, 2, 254]
    for offset in F16_FIELDS.get(qtype, []):
        scales = (rng.standard_normal(n_blocks) * 0.05).astype(np.float16)
        scales[0] = np.float16(6e-8)  # a subnormal scale
        raw[:, offset:offset + 2] = scales.view(np.uint8).reshape(n_blocks, 2)
    return raw.reshape(-1)


def block_cases():
    rng = np.random.default_rng(20261207)
    cases = []
    for qtype in SUPPORTED:
        raw = random_blocks(qtype, rng)
        values = dequantize(raw, qtype).reshape(-1).astype(np.float32)
        cases.append({
            "type": qtype.name,
            "count": int(values.size),
            "raw": base64.b64encode(raw.tobytes()).decode(),
            "expected": base64.b64encode(values.astype("<f4").tobytes()).decode(),
        })
    return cases


def main():
    result = {
        "generator": "Tools/make-dequant-expectations.py (gguf-py gguf.quants.dequantize)",
        "blocks": block_cases(),
        "tensors": tensor_cases(),
    }
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")
    print(f"wrote {OUT} ({os.path.getsize(OUT)} bytes)")


if __name__ == "__main__":
    main()
