"""The adapter statistics of method.md ("Quantities the workbench shows"), with the field names
and conventions of Sources/QGOFTCore/Adapters/AdapterStatisticsComputation.swift, so that qgoft's
layer table and drift heatmap read them. Off the training path (Q is formed densely here)."""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch

DRIFT_BINS = 32
COLUMN_NORM_EDGES = [0.5 + k / 20 for k in range(21)]
SKEW_EDGES = [-30 + 60 * k / 20 for k in range(21)]
ANGLE_PAIRS = 256
_MASK = (1 << 64) - 1


class SplitMix64:
    """qgoft's SplitMix64 (Sources/QGOFTCore/Tensor/Random.swift), for the same sample of pairs."""

    def __init__(self, seed: int):
        self.state = seed & _MASK

    def next(self) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return z ^ (z >> 31)


def angle_pairs(out_widths: Sequence[Tuple[str, int]], seed: int = 0) -> Dict[str, List[Tuple[int, int]]]:
    """The fixed sample of neuron pairs per adapted layer, chosen once per run exactly as qgoft's
    trainer chooses it (seed ^ 0xA11CE, 256 pairs per layer, layers in order)."""
    rng = SplitMix64(seed ^ 0xA11CE)
    pairs = {}
    for module, n in out_widths:
        out = []
        for _ in range(ANGLE_PAIRS):
            i = rng.next() % n
            j = rng.next() % (n - 1)
            if j >= i:
                j += 1
            out.append((i, j))
        pairs[module] = out
    return pairs


def histogram(values: List[float], edges: List[float]) -> List[int]:
    bins = len(edges) - 1
    lo, hi = edges[0], edges[-1]
    counts = [0] * bins
    for v in values:
        if v != v:
            continue
        t = (v - lo) / (hi - lo) * bins
        b = 0 if t < 0 else (bins - 1 if t >= bins else int(t))
        counts[b] += 1
    return counts


def _angles_deg(u: torch.Tensor, v: torch.Tensor, nu: torch.Tensor, nv: torch.Tensor) -> torch.Tensor:
    a = u / nu[:, None]
    b = v / nv[:, None]
    diff = ((a - b) ** 2).sum(1).sqrt()
    s = ((a + b) ** 2).sum(1).sqrt()
    return 2 * torch.atan2(diff, s) * 180 / math.pi


@torch.no_grad()
def layer_statistics(layer, pairs: Sequence[Tuple[int, int]]) -> dict:
    """AdapterStatistics of one GivensLinear (camelCase keys as qgoft writes them)."""
    plan = layer.plan
    d = plan.width
    w = layer.weight.detach().double()
    q = layer.dense_q(torch.float64)
    after = w @ q  # rows w_i' = Q^T w_i
    nb = w.norm(dim=1)
    na = after.norm(dim=1)
    ok = nb > 0
    dev = (na[ok] / nb[ok] - 1).abs()
    norm_mean = float(dev.mean()) if dev.numel() else 0.0
    norm_max = float(dev.max()) if dev.numel() else 0.0
    n_out = w.shape[0]
    valid = [(i, j) for i, j in pairs if i != j and 0 <= i < n_out and 0 <= j < n_out]
    angle_mean = angle_max = 0.0
    if valid:
        ii = torch.tensor([p[0] for p in valid], device=w.device)
        jj = torch.tensor([p[1] for p in valid], device=w.device)
        keep = (nb[ii] > 0) & (nb[jj] > 0) & (na[ii] > 0) & (na[jj] > 0)
        ii, jj = ii[keep], jj[keep]
        if ii.numel():
            old = _angles_deg(w[ii], w[jj], nb[ii], nb[jj])
            new = _angles_deg(after[ii], after[jj], na[ii], na[jj])
            ch = (new - old).abs()
            angle_mean, angle_max = float(ch.mean()), float(ch.max())
    gram = q.t() @ q
    gram.diagonal().sub_(1)
    matrix_drift = float(gram.norm()) / math.sqrt(d)

    blk = layer.blocks().detach().double().cpu()
    a, b, c, e = blk[:, 0, 0], blk[:, 0, 1], blk[:, 1, 0], blk[:, 1, 1]
    n1 = (a * a + c * c).sqrt()
    n2 = (b * b + e * e).sqrt()
    cross = a * e - c * b
    dot = a * b + c * e
    skew = torch.where((n1 == 0) | (n2 == 0), torch.zeros_like(a), -torch.atan2(dot, cross.abs()) * 180 / math.pi)
    m00 = a * a + c * c - 1
    m11 = b * b + e * e - 1
    m01 = dot
    drift = (m00 * m00 + m11 * m11 + 2 * m01 * m01).sqrt()
    starts = plan.stage_starts
    stage_drift = [float(drift[starts[s]:starts[s + 1]].mean()) if plan.stage_sizes[s] else 0.0
                   for s in range(plan.stage_count)]
    bins = torch.tensor([min(DRIFT_BINS - 1, f * DRIFT_BINS // d) for f in plan.first], dtype=torch.long)
    bin_sum = torch.zeros(DRIFT_BINS, dtype=torch.float64).index_add_(0, bins, drift)
    bin_cnt = torch.zeros(DRIFT_BINS, dtype=torch.float64).index_add_(0, bins, torch.ones_like(drift))
    binned = [float(s / n) if n > 0 else 0.0 for s, n in zip(bin_sum.tolist(), bin_cnt.tolist())]
    col_norms = torch.stack([n1, n2], 1).reshape(-1).tolist()
    p = plan.block_count
    stats = {
        "normAdjustmentMean": norm_mean,
        "normAdjustmentMax": norm_max,
        "angleAdjustmentMean": angle_mean,
        "angleAdjustmentMax": angle_max,
        "matrixDrift": matrix_drift,
        "stageDrift": stage_drift,
        "blockDriftMean": float(drift.mean()) if p else 0.0,
        "blockDriftMax": float(drift.max()) if p else 0.0,
        "binnedDrift": binned,
        "columnNormHistogram": histogram(col_norms, COLUMN_NORM_EDGES),
        "columnNormEdges": COLUMN_NORM_EDGES,
        "skewHistogram": histogram(skew.tolist(), SKEW_EDGES),
        "skewEdges": SKEW_EDGES,
    }
    if layer.scaling:
        sd = (layer.givens_scaler.detach().double() - 1).abs()
        stats["scaleDeviationMean"] = float(sd.mean())
        stats["scaleDeviationMax"] = float(sd.max())
    return stats


def _layer_and_target(module: str) -> Tuple[int, str]:
    parts = module.split(".")
    if len(parts) >= 3 and parts[0] == "encoder" and parts[1] == "layer" and parts[2].isdigit():
        return int(parts[2]), ".".join(parts[3:])
    return 0, module


def stats_record(adapters, step: int, pairs: Dict[str, List[Tuple[int, int]]]) -> dict:
    """The `{"type": "stats", "step", "layers": [...]}` record of every adapted layer."""
    from .adapters import snapshot_module_name
    layers = []
    for name, lin in adapters.layers.items():
        module = snapshot_module_name(name)
        layer, target = _layer_and_target(module)
        layers.append({"module": module, "layer": layer, "target": target,
                       "stats": layer_statistics(lin, pairs.get(module, []))})
    return {"type": "stats", "step": step, "layers": layers}
