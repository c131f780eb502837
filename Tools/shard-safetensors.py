#!/usr/bin/env python3
"""Shards a Hugging Face `model.safetensors` the way `save_pretrained(max_shard_size=...)` lays a checkpoint out:
`model-00001-of-0000N.safetensors`, ... plus `model.safetensors.index.json`
(`{"metadata": {"total_size": N}, "weight_map": {tensor: shard}}`, keys sorted, indent 2).

Tensors stay whole and keep their dtype, shape and bytes; they are packed greedily in the input's data order,
starting a new shard when the next tensor would take the current one's tensor bytes over --max-shard-size
(huggingface_hub's rule: a tensor larger than the limit gets a shard of its own). Each shard keeps the input's
`__metadata__` and is written like the safetensors library writes a file: compact JSON header with
`__metadata__` first and tensors by name, padded with spaces to 8 bytes, data in header order.
Plain Python (json + struct); the `safetensors` package is not needed.

Used to build the sharded fixture Tests/Fixtures/conformance/tiny-moe/hf/model-0000i-of-00002.safetensors:
    python3 Tools/shard-safetensors.py Tests/Fixtures/conformance/tiny-moe/hf/model.safetensors \
        Tests/Fixtures/conformance/tiny-moe/hf --max-shard-size 4900000
"""
import argparse
import json
import os
import struct


def read_safetensors(path: str):
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack_from("<Q", blob, 0)
    header = json.loads(blob[8:8 + n])
    data = memoryview(blob)[8 + n:]
    metadata = header.pop("__metadata__", None)
    tensors = []
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        assert 0 <= begin <= end <= len(data), f"{path}: {name} offsets {begin}..{end} outside {len(data)} data bytes"
        tensors.append((begin, name, entry["dtype"], entry["shape"], bytes(data[begin:end])))
    tensors.sort()
    return metadata, [(name, dtype, shape, raw) for _, name, dtype, shape, raw in tensors]


def write_safetensors(path: str, metadata, tensors) -> int:
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    for name, dtype, shape, raw in sorted(tensors, key=lambda t: t[0]):
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(raw)]}
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((-len(text)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for name, dtype, shape, raw in sorted(tensors, key=lambda t: t[0]):
            f.write(raw)
    return 8 + len(text) + offset


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("input", help="a single-file model.safetensors")
    parser.add_argument("out_dir")
    parser.add_argument("--max-shard-size", type=int, required=True, help="tensor bytes per shard, as in save_pretrained")
    parser.add_argument("--prefix", default="model")
    args = parser.parse_args()

    metadata, tensors = read_safetensors(args.input)
    shards, current, size = [], [], 0
    for t in tensors:
        n = len(t[3])
        if current and size + n > args.max_shard_size:
            shards.append(current)
            current, size = [], 0
        current.append(t)
        size += n
    if current:
        shards.append(current)

    weight_map = {}
    for i, shard in enumerate(shards):
        name = f"{args.prefix}-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        written = write_safetensors(os.path.join(args.out_dir, name), metadata, shard)
        for t in shard:
            weight_map[t[0]] = name
        print(f"{os.path.join(args.out_dir, name)}: {len(shard)} tensors, {written} bytes")

    index = {"metadata": {"total_size": sum(len(t[3]) for t in tensors)}, "weight_map": weight_map}
    index_path = os.path.join(args.out_dir, f"{args.prefix}.safetensors.index.json")
    with open(index_path, "w") as f:
        f.write(json.dumps(index, indent=2, sort_keys=True) + "\n")
    print(f"{index_path}: {len(weight_map)} tensors, total_size {index['metadata']['total_size']}")
    verify(args.input, args.out_dir, index_path)


def verify(single_path: str, out_dir: str, index_path: str):
    """Reads the shards back through the index: every tensor in exactly the shard the index names, with the
    input's dtype, shape and bytes, and every shard with the input's `__metadata__`."""
    metadata, tensors = read_safetensors(single_path)
    with open(index_path) as f:
        index = json.load(f)
    found = {}
    for shard in sorted(set(index["weight_map"].values())):
        shard_metadata, shard_tensors = read_safetensors(os.path.join(out_dir, shard))
        assert shard_metadata == metadata, f"{shard}: metadata {shard_metadata} != {metadata}"
        for name, dtype, shape, raw in shard_tensors:
            assert index["weight_map"].get(name) == shard and name not in found, f"{shard}: {name} misplaced"
            found[name] = (dtype, shape, raw)
    assert found.keys() == {t[0] for t in tensors}, "tensor sets differ"
    for name, dtype, shape, raw in tensors:
        assert found[name] == (dtype, shape, raw), f"{name} differs"
    assert index["metadata"]["total_size"] == sum(len(t[3]) for t in tensors)
    print(f"verified: {len(tensors)} tensors identical (dtype, shape, bytes) to {single_path}")


if __name__ == "__main__":
    main()
