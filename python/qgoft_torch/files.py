"""Small file helpers of the session format (docs/sessions.md "Durability"): atomic JSON writes
(temp + fsync + rename + folder fsync), strict JSON with non-finite numbers as strings, and a
plain safetensors reader/writer (F32 only is what qgoft writes; the reader takes F32/F16/BF16/F64)."""
import json
import math
import os
import struct
from typing import Dict, List, Optional, Tuple

import torch

FORMAT_VERSION = 1


def finite_json(v):
    """v with NaN / Infinity / -Infinity floats replaced by the strings qgoft writes."""
    if isinstance(v, float):
        if math.isnan(v):
            return "NaN"
        if math.isinf(v):
            return "Infinity" if v > 0 else "-Infinity"
        return v
    if isinstance(v, dict):
        return {k: finite_json(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [finite_json(x) for x in v]
    return v


def dumps_line(obj) -> str:
    return json.dumps(finite_json(obj), sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n"


def fsync_folder(path: str):
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: str, data: bytes, sync: bool = True):
    folder = os.path.dirname(os.path.abspath(path))
    tmp = os.path.join(folder, f".{os.path.basename(path)}.tmp-{os.getpid()}-{os.urandom(4).hex()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    if sync:
        fsync_folder(folder)


def write_json(path: str, obj, sync: bool = True):
    text = json.dumps(finite_json(obj), sort_keys=True, indent=2, allow_nan=False) + "\n"
    write_atomically(path, text.encode(), sync=sync)


_DTYPES = {"F32": (torch.float32, 4), "F64": (torch.float64, 8), "F16": (torch.float16, 2),
           "BF16": (torch.bfloat16, 2), "I64": (torch.int64, 8), "I32": (torch.int32, 4)}


def write_safetensors(path: str, tensors: List[Tuple[str, torch.Tensor]], metadata: Dict[str, str]):
    """F32 safetensors, tensors in the given order, fsynced (written in place: callers write into
    a temporary snapshot folder)."""
    header = {"__metadata__": dict(metadata)}
    blobs = []
    off = 0
    for name, t in tensors:
        b = t.detach().to("cpu", torch.float32).contiguous().numpy().tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b)
        off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)
        f.flush()
        os.fsync(f.fileno())


def read_safetensors(path: str) -> Tuple[Dict[str, torch.Tensor], Dict[str, str]]:
    """All tensors of a safetensors file (on the CPU) and its __metadata__; errors name the file."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 8:
        raise ValueError(f"{path}: not a safetensors file ({len(data)} bytes)")
    (n,) = struct.unpack("<Q", data[:8])
    if 8 + n > len(data):
        raise ValueError(f"{path}: header of {n} bytes runs past the end of the {len(data)}-byte file")
    try:
        header = json.loads(data[8:8 + n])
    except ValueError as e:
        raise ValueError(f"{path}: header is not JSON ({e})")
    meta = header.pop("__metadata__", {}) or {}
    body = memoryview(data)[8 + n:]
    out = {}
    for name, e in header.items():
        if e["dtype"] not in _DTYPES:
            raise ValueError(f"{path}: tensor '{name}' has dtype {e['dtype']}, not one this reader takes")
        dt, size = _DTYPES[e["dtype"]]
        a, b = e["data_offsets"]
        if b > len(body) or a > b:
            raise ValueError(f"{path}: tensor '{name}' byte range {a}..<{b} runs past the end of the {len(body)}-byte data section")
        count = 1
        for s in e["shape"]:
            count *= s
        if (b - a) != count * size:
            raise ValueError(f"{path}: tensor '{name}' has {b - a} bytes, shape {e['shape']} needs {count * size}")
        t = torch.frombuffer(bytearray(body[a:b]), dtype=dt) if b > a else torch.empty(0, dtype=dt)
        out[name] = t.reshape(e["shape"]).clone()
    return out, meta
