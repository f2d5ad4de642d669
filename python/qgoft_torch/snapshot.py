"""Snapshots in exactly the files qgoft writes (docs/sessions.md "Layout", "Snapshots and PEFT"):
adapter_config.json, adapter_model.safetensors (PEFT save_pretrained names), qgoft_snapshot.json,
trainer_state.json and optimizer.safetensors, written into a temporary folder and renamed into
place; and loading a snapshot (qgoft's or ours) into the adapters of a torch model."""
import json
import os
import time
from typing import Dict, List, Optional, Tuple

import torch

from .adapters import QGOFTAdapters, snapshot_module_name
from .files import FORMAT_VERSION, fsync_folder, read_safetensors, write_json, write_safetensors

PEFT_PREFIX = "base_model.model."
HEAD_MODULE = "classifier"
HF_IDS = {"minilm-l6": "sentence-transformers/all-MiniLM-L6-v2"}
FILES = ("adapter_config.json", "adapter_model.safetensors", "qgoft_snapshot.json", "trainer_state.json",
         "optimizer.safetensors")


def iso_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def targets_of(adapters: QGOFTAdapters) -> List[str]:
    """Target names inside an encoder layer (`attention.self.query`, ...), in first-seen order."""
    out = []
    for n in adapters.layers:
        m = snapshot_module_name(n)
        parts = m.split(".")
        t = ".".join(parts[3:]) if m.startswith("encoder.layer.") else m
        if t not in out:
            out.append(t)
    return out


def layers_of(adapters: QGOFTAdapters) -> List[int]:
    out = []
    for n in adapters.layers:
        parts = snapshot_module_name(n).split(".")
        if len(parts) > 2 and parts[0] == "encoder" and parts[2].isdigit() and int(parts[2]) not in out:
            out.append(int(parts[2]))
    return out


def module_descriptions(adapters: QGOFTAdapters) -> List[dict]:
    out = []
    for n, lin in adapters.layers.items():
        out.append({"module": snapshot_module_name(n), "width": lin.in_features, "blocks": lin.plan.block_count,
                    "stages": list(lin.plan.stage_sizes),
                    "tensors": {k: list(p.shape) for k, p in lin.adapter_parameters().items()}})
    return out


def named_tensors(adapters: QGOFTAdapters) -> List[Tuple[str, torch.nn.Parameter]]:
    """(PEFT name, parameter) of every adapter tensor and of the head, in qgoft's order."""
    out = []
    for n, lin in adapters.layers.items():
        for k, p in lin.adapter_parameters().items():
            out.append((PEFT_PREFIX + snapshot_module_name(n) + "." + k, p))
    head = adapters.head
    if head is not None:
        out.append((PEFT_PREFIX + HEAD_MODULE + ".weight", head.weight))
        out.append((PEFT_PREFIX + HEAD_MODULE + ".bias", head.bias))
    return out


def _unwrap_optimizer(opt):
    while opt is not None and not hasattr(opt, "state") and hasattr(opt, "optimizer"):
        opt = opt.optimizer
    if opt is not None and hasattr(opt, "optimizer") and isinstance(getattr(opt, "optimizer"), torch.optim.Optimizer):
        opt = opt.optimizer
    return opt


def write_snapshot(snapshots_dir: str, step: int, adapters: QGOFTAdapters, *, session_id: str, optimizer=None,
                   epoch: int = 0, position: int = 0, learning_rate: float = 0.0, head_learning_rate: float = 0.0,
                   best_val_accuracy: Optional[float] = None, nan_skipped: int = 0, seed: int = 0,
                   lambda_history: Optional[List[dict]] = None, statistics: Optional[dict] = None,
                   base_model: Optional[dict] = None, labels: Optional[List[str]] = None,
                   kind: str = "named") -> str:
    """Writes `snapshots_dir/step-<step>` completely (every file fsynced in a temporary folder, then
    renamed into place; a snapshot of the same step is replaced). Returns the folder."""
    os.makedirs(snapshots_dir, exist_ok=True)
    name = f"step-{step}"
    final = os.path.join(snapshots_dir, name)
    tmp = os.path.join(snapshots_dir, f".{name}.partial-{os.getpid()}-{int.from_bytes(os.urandom(4), 'little')}")
    os.mkdir(tmp)
    placed = False
    try:
        tensors = named_tensors(adapters)
        opt = _unwrap_optimizer(optimizer)
        moments = []
        adam_steps = 0
        for n, p in tensors:
            st = opt.state.get(p, {}) if opt is not None else {}
            m = st.get("exp_avg")
            v = st.get("exp_avg_sq")
            if "step" in st and adam_steps == 0:
                adam_steps = int(float(st["step"]))
            moments.append((n + ".exp_avg", m if m is not None else torch.zeros_like(p, dtype=torch.float32)))
            moments.append((n + ".exp_avg_sq", v if v is not None else torch.zeros_like(p, dtype=torch.float32)))
        ver = str(FORMAT_VERSION)
        write_safetensors(os.path.join(tmp, "adapter_model.safetensors"), tensors,
                          {"format": "pt", "format_version": ver, "qgoft_method": adapters.method, "step": str(step)})
        write_safetensors(os.path.join(tmp, "optimizer.safetensors"), moments,
                          {"format": "pt", "format_version": ver, "adam_steps": str(adam_steps), "step": str(step)})
        modules = module_descriptions(adapters)
        base = dict(base_model or {"name": "unknown", "path": "", "sha256": None})
        head = adapters.head
        classes = head.weight.shape[0] if head is not None else 0
        in_width = head.weight.shape[1] if head is not None else 0
        write_json(os.path.join(tmp, "adapter_config.json"), {
            "base_model_name_or_path": HF_IDS.get(base.get("name"), base.get("path") or base.get("name")),
            "inference_mode": True, "modules_to_save": [HEAD_MODULE], "peft_type": adapters.method.upper(),
            "revision": None, "target_modules": [m["module"] for m in modules], "task_type": "SEQ_CLS"})
        now = iso_now()
        sidecar = {
            "format_version": FORMAT_VERSION, "session_id": session_id, "step": step, "method": adapters.method,
            "layout": adapters.layout, "goft_scaling": bool(adapters.scaling) if adapters.method == "goft" else True,
            "targets": targets_of(adapters), "layers": layers_of(adapters), "lambda": adapters.lam,
            "initial_lambda": adapters.initial_lam,
            "lambda_history": [h for h in (lambda_history or []) if h["step"] <= step],
            "base_model": base, "tensor_prefix": PEFT_PREFIX, "modules": modules,
            "head": {"module": HEAD_MODULE, "input": "mean", "in_width": in_width, "classes": classes,
                     "labels": list(labels) if labels else [str(i) for i in range(classes)]},
            "saved": now, "kind": kind}
        if statistics is not None and statistics.get("step", 0) <= step:
            sidecar["statistics"] = {"step": statistics["step"], "layers": statistics["layers"]}
        write_json(os.path.join(tmp, "qgoft_snapshot.json"), sidecar)
        write_json(os.path.join(tmp, "trainer_state.json"), {
            "format_version": FORMAT_VERSION, "step": step, "epoch": int(epoch), "position": int(position),
            "adam_steps": adam_steps, "lambda": adapters.lam, "learning_rate": float(learning_rate),
            "head_learning_rate": float(head_learning_rate), "best_val_accuracy": best_val_accuracy,
            "nan_skipped": int(nan_skipped), "seed": int(seed), "saved": now})
        fsync_folder(tmp)
        try:
            os.rename(tmp, final)
        except OSError:
            aside = os.path.join(snapshots_dir, f".{name}.replaced-{os.getpid()}-{os.urandom(4).hex()}")
            os.rename(final, aside)
            os.rename(tmp, final)
            _rmtree(aside)
        placed = True
        fsync_folder(snapshots_dir)
        return final
    finally:
        if not placed:
            _rmtree(tmp)


def _rmtree(path: str):
    import shutil
    shutil.rmtree(path, ignore_errors=True)


def load_snapshot(folder: str, adapters: QGOFTAdapters, strict: bool = True) -> dict:
    """Copies the adapter tensors and the head of snapshot `folder` (written by qgoft's trainer or
    by qgoft-torch) into `adapters`' model. Refuses another method or layout, a missing, extra or
    mis-shaped tensor, naming the file. Returns the parsed qgoft_snapshot.json."""
    side_path = os.path.join(folder, "qgoft_snapshot.json")
    model_path = os.path.join(folder, "adapter_model.safetensors")
    with open(side_path) as f:
        side = json.load(f)
    if side.get("format_version", 1) > FORMAT_VERSION:
        raise ValueError(f"{side_path}: format_version {side['format_version']} is newer than qgoft-torch reads ({FORMAT_VERSION})")
    if side.get("method") != adapters.method:
        raise ValueError(f"{side_path}: method {side.get('method')}, the model's adapters are {adapters.method}")
    if side.get("layout") != adapters.layout:
        raise ValueError(f"{side_path}: layout {side.get('layout')}, the model's adapters use {adapters.layout}")
    if adapters.method == "goft" and bool(side.get("goft_scaling")) != bool(adapters.scaling):
        raise ValueError(f"{side_path}: GOFT scaling {'on' if side.get('goft_scaling') else 'off'}, the model has it "
                         f"{'on' if adapters.scaling else 'off'}")
    tensors, _ = read_safetensors(model_path)
    used = set()
    with torch.no_grad():
        for n, p in named_tensors(adapters):
            if n not in tensors:
                if strict:
                    raise ValueError(f"{model_path}: no tensor '{n}' (the snapshot was made for other targets, layers or method)")
                continue
            t = tensors[n]
            if list(t.shape) != list(p.shape):
                raise ValueError(f"{model_path}: tensor '{n}' has shape {list(t.shape)}, the model expects {list(p.shape)}")
            p.copy_(t.to(p.device, p.dtype))
            used.add(n)
    extra = [n for n in tensors if n not in used]
    if extra and strict:
        raise ValueError(f"{model_path}: {len(extra)} tensors have no place in the model, e.g. '{extra[0]}'")
    lam = side.get("lambda")
    if adapters.method == "qgoft" and isinstance(lam, (int, float)):
        adapters.lam = lam
    return side
