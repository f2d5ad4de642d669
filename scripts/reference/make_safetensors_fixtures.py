#!/usr/bin/env python3
"""Writes the tiny safetensors fixtures and their expected values for SafetensorsTests.

Run from anywhere:  python3 scripts/reference/make_safetensors_fixtures.py
Needs numpy and safetensors (tested with numpy 2.4.6, safetensors 0.8.0). Output goes to
Tests/Fixtures/safetensors/. Expected values are float32 bit patterns computed by numpy, so the
Swift tests compare exactly (NaN payloads included). If the real model is present
($QGOFT_HOME/minilm-l6 or ~/.cache/qgoft/minilm-l6) it also writes minilm_reference.json.

Fixtures:
  f32_reference.safetensors  F32 only, written by safetensors.numpy.save_file; the Swift writer
                             must reproduce it byte for byte.
  mixed.safetensors          every dtype numpy can save (F64, F16, integers, BOOL), by save_file.
  bf16_unaligned.safetensors built by hand: BF16 (numpy has no bfloat16) and a header that is not
                             padded, so the data section starts at an odd file offset and the F32
                             tensor inside it is unaligned. Checked to load in safetensors.
"""
import json
import os
import struct
import sys
from pathlib import Path

import numpy as np
import safetensors
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

FORMAT_VERSION = 1
ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "Tests" / "Fixtures" / "safetensors"


def dump(value, depth=0, expand=2):
    """JSON with one line per item down to `expand` levels of objects, compact below that."""
    if isinstance(value, dict) and value and depth < expand:
        pad = " " * (depth + 1)
        items = [f"{pad}{json.dumps(k)}: {dump(v, depth + 1, expand)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + " " * depth + "}"
    if isinstance(value, list) and value and depth < expand and isinstance(value[0], dict):
        pad = " " * (depth + 1)
        return "[\n" + ",\n".join(pad + json.dumps(v, ensure_ascii=False) for v in value) + "\n" + " " * depth + "]"
    return json.dumps(value, ensure_ascii=False)


def f32_bits(a):
    return [int(x) for x in np.ascontiguousarray(a, dtype=np.float32).reshape(-1).view(np.uint32)]


def describe(a, dtype_name):
    """Expected reading of one tensor: shape plus F32 bits (float types) or integer values."""
    entry = {"dtype": dtype_name, "shape": list(a.shape)}
    if dtype_name in ("F32", "F16", "F64"):
        entry["f32_bits"] = f32_bits(a.astype(np.float32))
    else:
        entry["int_values"] = [int(x) for x in a.reshape(-1)]
    return entry


def half_patterns():
    """Special F16 bit patterns plus seeded random ones."""
    specials = [
        0x0000, 0x8000,  # +0, -0
        0x0001, 0x8001,  # smallest subnormals
        0x03FF, 0x0200,  # largest subnormal, a middle one
        0x0400, 0x3C00, 0xBC00, 0x3555,  # smallest normal, 1, -1, ~1/3
        0x7BFF, 0xFBFF,  # +-65504
        0x7C00, 0xFC00,  # +-inf
        0x7E00, 0xFE00, 0x7C01, 0x7D55,  # quiet NaNs, signalling NaN, NaN with payload
    ]
    rng = np.random.default_rng(20240607)
    return np.array(specials + list(rng.integers(0, 1 << 16, 30)), dtype=np.uint16)


def make_f32_reference(expected):
    tensors = {
        "bias": np.array([0.5, -1.25, 3.0e-39], dtype=np.float32),  # last one subnormal
        "empty": np.zeros((0, 4), dtype=np.float32),
        "scalar": np.array(-7.5, dtype=np.float32),
        "weight": np.arange(6, dtype=np.float32).reshape(2, 3) / np.float32(7),
    }
    metadata = {"format": "np"}
    path = OUT / "f32_reference.safetensors"
    save_file(tensors, str(path), metadata=metadata)
    expected[path.name] = {
        "metadata": metadata,
        "tensors": {k: describe(v, "F32") for k, v in tensors.items()},
    }


def make_mixed(expected):
    halves = half_patterns().view(np.float16)
    doubles = np.array([0.1, -2.5, 1e40, -1e40, 1e-46, 3.4028235677973366e38, np.nan, 1.0 + 2.0**-30],
                       dtype=np.float64)
    tensors = {
        "bool": np.array([True, False, True], dtype=np.bool_),
        "f16": halves.reshape(6, 8),
        "f64": doubles,
        "i16": np.array([-32768, 32767, 0], dtype=np.int16),
        "i32": np.array([[-2147483648], [2147483647]], dtype=np.int32),
        "i64": np.array([[0, 1, 2, -9223372036854775808, 9223372036854775807]], dtype=np.int64),
        "i8": np.array([-128, 127, -1], dtype=np.int8),
        "u16": np.array([65535, 1], dtype=np.uint16),
        "u32": np.array([4294967295, 7], dtype=np.uint32),
        "u8": np.array([0, 255, 17], dtype=np.uint8),
    }
    names = {"bool": "BOOL", "f16": "F16", "f64": "F64", "i16": "I16", "i32": "I32", "i64": "I64",
             "i8": "I8", "u16": "U16", "u32": "U32", "u8": "U8"}
    path = OUT / "mixed.safetensors"
    save_file(tensors, str(path))
    with np.errstate(over="ignore"):
        expected[path.name] = {
            "metadata": {},
            "tensors": {k: describe(v, names[k]) for k, v in tensors.items()},
        }


def make_bf16_unaligned(expected):
    bf16 = half_patterns()  # reused as bfloat16 bit patterns
    bf16_as_f32 = (bf16.astype(np.uint32) << 16).view(np.float32)
    weights = np.array([1.0, -0.0, 3.14159, 1e-40, np.inf], dtype=np.float32)
    tag = np.array([42], dtype=np.uint8)
    # Data layout: tag (1 byte) at 0, weights (F32, unaligned) at 1, bf16 at 21.
    blobs = [("tag", "U8", tag.shape, tag.tobytes()),
             ("weights", "F32", weights.shape, weights.astype("<f4").tobytes()),
             ("bf16", "BF16", bf16.shape, bf16.astype("<u2").tobytes())]
    header, data, offset = {"__metadata__": {"note": "unaligned \u00e9\u4e2d"}}, b"", 0
    for name, dtype, shape, raw in blobs:
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    while (8 + len(text)) % 4 != 1:
        text += b" "  # odd data start; the F32 tensor at data offset 1 then sits at 2 mod 4 in the file
    path = OUT / "bf16_unaligned.safetensors"
    path.write_bytes(struct.pack("<Q", len(text)) + text + data)

    # The reference library must accept it.
    with safe_open(str(path), framework="numpy") as f:
        assert sorted(f.keys()) == ["bf16", "tag", "weights"], f.keys()
        assert f.metadata() == header["__metadata__"]
        assert np.array_equal(f.get_tensor("weights").view(np.uint32), weights.view(np.uint32))
        assert np.array_equal(f.get_tensor("tag"), tag)
    expected[path.name] = {
        "metadata": header["__metadata__"],
        "tensors": {
            "bf16": {"dtype": "BF16", "shape": list(bf16.shape), "f32_bits": f32_bits(bf16_as_f32)},
            "tag": describe(tag, "U8"),
            "weights": describe(weights, "F32"),
        },
    }


def make_minilm_reference():
    home = Path(os.environ.get("QGOFT_HOME") or Path.home() / ".cache" / "qgoft")
    model = home / "minilm-l6" / "model.safetensors"
    if not model.exists():
        print(f"skipping minilm_reference.json: {model} not found", file=sys.stderr)
        return
    tensors = {}
    with safe_open(str(model), framework="numpy") as f:
        for name in sorted(f.keys()):
            sl = f.get_slice(name)
            tensors[name] = {"dtype": sl.get_dtype(), "shape": sl.get_shape()}
        samples = []
        picks = [
            ("embeddings.word_embeddings.weight", [0, 1, 2, 3, 101 * 384, 30521 * 384 + 383]),
            ("embeddings.LayerNorm.weight", [0, 383]),
            ("encoder.layer.0.attention.self.query.weight", [0, 384 * 384 - 1]),
            ("encoder.layer.5.output.dense.bias", [7]),
            ("encoder.layer.5.output.LayerNorm.bias", [383]),
        ]
        for name, indices in picks:
            flat = f.get_tensor(name).reshape(-1)
            for i in indices:
                samples.append({"name": name, "flat_index": i,
                                "f32_bits": f32_bits(flat[i:i + 1])[0], "value": float(flat[i])})
        position_ids = f.get_tensor("embeddings.position_ids").reshape(-1)
    reference = {
        "format_version": FORMAT_VERSION,
        "generator": f"make_safetensors_fixtures.py (numpy {np.__version__}, safetensors {safetensors.__version__})",
        "tensor_count": len(tensors),
        "tensors": tensors,
        "samples": samples,
        "position_ids_first": [int(x) for x in position_ids[:4]],
        "position_ids_last": int(position_ids[-1]),
    }
    (OUT / "minilm_reference.json").write_text(dump(reference) + "\n")


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    expected = {}
    make_f32_reference(expected)
    make_mixed(expected)
    make_bf16_unaligned(expected)
    # Sanity: save_file output reads back through the reference loader.
    for name in ("f32_reference.safetensors", "mixed.safetensors"):
        load_file(str(OUT / name))
    doc = {
        "format_version": FORMAT_VERSION,
        "generator": f"make_safetensors_fixtures.py (numpy {np.__version__}, safetensors {safetensors.__version__})",
        "files": expected,
    }
    (OUT / "expected.json").write_text(dump(doc, expand=4) + "\n")
    make_minilm_reference()
    for p in sorted(OUT.iterdir()):
        print(f"{p.stat().st_size:8d}  {p.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
