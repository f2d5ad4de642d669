"""qGOFT and GOFT adapters for torch.nn.Linear (method.md; the tensors of docs/sessions.md).

An adapted layer computes y = W (Q x) + b with the frozen W, b of the original Linear and
Q = S_L ... S_1 applied to the activations stage by stage: every stage gathers its disjoint
coordinate pairs, multiplies them by their 2x2 blocks and writes them back (O(d) per row and
stage; no d x d matrix in a training step). The rotation math runs in float32 whatever the
model's dtype; the adapter tensors are float32 on the layer's device.

qGOFT: `givens_soft` [P, 2, 2], row k = [[a, b], [c, e]], identity at init, penalty
    sum_k ||B_k^T B_k - I||_F^2 (its strength lambda may change at any step).
GOFT: `givens_hard` [P] raw p, theta = pi tanh(p) (0 at init), block
    [[cos, -sin], [sin, cos]]; with scaling also `givens_scaler` [d] (1 at init), Q = diag(s) S_L ... S_1.
"""
import math
import re
from typing import Dict, Iterable, List, Optional, Sequence, Union

import torch
import torch.nn as nn
import torch.nn.functional as F

from .layout import GivensPlan, givens_plan

METHODS = ("qgoft", "goft")
ADAPTER_TENSORS = ("givens_soft", "givens_hard", "givens_scaler")


class GivensLinear(nn.Linear):
    """A frozen nn.Linear with a Givens adapter on its input side. It shares (does not copy) the
    original layer's weight and bias, so the base model's state_dict names stay as they were and
    the adapter tensors sit beside them (`<module>.givens_soft`, PEFT's names without `.default`)."""

    def __init__(self, linear: nn.Linear, method: str = "qgoft", layout: str = "tree", scaling: bool = True):
        nn.Module.__init__(self)
        if method not in METHODS:
            raise ValueError(f"method {method!r}: must be one of {', '.join(METHODS)}")
        self.in_features = linear.in_features
        self.out_features = linear.out_features
        self.weight = linear.weight
        self.bias = linear.bias
        self.weight.requires_grad_(False)
        if self.bias is not None:
            self.bias.requires_grad_(False)
        self.method = method
        self.layout = layout
        self.scaling = bool(scaling) and method == "goft"
        self.plan: GivensPlan = givens_plan(layout, linear.in_features)
        dev = linear.weight.device
        p = self.plan.block_count
        if method == "qgoft":
            self.givens_soft = nn.Parameter(torch.eye(2, dtype=torch.float32, device=dev).repeat(p, 1, 1))
        else:
            self.givens_hard = nn.Parameter(torch.zeros(p, dtype=torch.float32, device=dev))
            if self.scaling:
                self.givens_scaler = nn.Parameter(torch.ones(self.in_features, dtype=torch.float32, device=dev))
        starts = self.plan.stage_starts
        for s in range(self.plan.stage_count):
            a, b = starts[s], starts[s + 1]
            i = torch.tensor(self.plan.first[a:b], dtype=torch.long, device=dev)
            j = torch.tensor(self.plan.second[a:b], dtype=torch.long, device=dev)
            self.register_buffer(f"_givens_i{s}", i, persistent=False)
            self.register_buffer(f"_givens_j{s}", j, persistent=False)
            self.register_buffer(f"_givens_ij{s}", torch.cat([i, j]), persistent=False)

    # -- the adapter ------------------------------------------------------------------------
    def adapter_parameters(self) -> Dict[str, nn.Parameter]:
        """The adapter tensors by their file names (givens_soft, or givens_hard [+ givens_scaler])."""
        return {n: getattr(self, n) for n in ADAPTER_TENSORS if n in self._parameters}

    def blocks(self, dtype=torch.float32) -> torch.Tensor:
        """[P, 2, 2] block coefficients [[a, b], [c, e]] (GOFT: from the angles), float32 (or `dtype`)."""
        if self.method == "qgoft":
            return self.givens_soft.to(dtype)
        theta = math.pi * torch.tanh(self.givens_hard.to(dtype))
        cs, sn = torch.cos(theta), torch.sin(theta)
        return torch.stack([torch.stack([cs, -sn], -1), torch.stack([sn, cs], -1)], -2)

    def apply_q(self, x: torch.Tensor) -> torch.Tensor:
        """Q x for every row of x [..., d], stage by stage (stage 1 first), in float32 (float64 for a
        float64 x: gradient checks)."""
        cd = torch.float64 if x.dtype == torch.float64 else torch.float32
        x = x.to(cd)
        blk = self.blocks(cd)
        a, b, c, e = blk[:, 0, 0], blk[:, 0, 1], blk[:, 1, 0], blk[:, 1, 1]
        starts = self.plan.stage_starts
        for s in range(self.plan.stage_count):
            lo, hi = starts[s], starts[s + 1]
            i = getattr(self, f"_givens_i{s}")
            j = getattr(self, f"_givens_j{s}")
            xi = x.index_select(-1, i)
            xj = x.index_select(-1, j)
            yi = a[lo:hi] * xi + b[lo:hi] * xj
            yj = c[lo:hi] * xi + e[lo:hi] * xj
            x = x.index_copy(-1, getattr(self, f"_givens_ij{s}"), torch.cat([yi, yj], -1))
        if self.scaling:
            x = x * self.givens_scaler.to(cd)
        return x

    def penalty(self) -> torch.Tensor:
        """sum_k ||B_k^T B_k - I||_F^2 in float32 (0 for GOFT: strict rotations)."""
        if self.method != "qgoft":
            return torch.zeros((), dtype=torch.float32, device=self.weight.device)
        bl = self.givens_soft.to(torch.promote_types(self.givens_soft.dtype, torch.float32))
        a, b, c, e = bl[:, 0, 0], bl[:, 0, 1], bl[:, 1, 0], bl[:, 1, 1]
        m00 = a * a + c * c - 1
        m11 = b * b + e * e - 1
        m01 = a * b + c * e
        return (m00 * m00 + m11 * m11 + 2 * m01 * m01).sum()

    @torch.no_grad()
    def dense_q(self, dtype=torch.float64) -> torch.Tensor:
        """Q as a dense [d, d] matrix (off the training path: tests, statistics, merging)."""
        d = self.in_features
        eye = torch.eye(d, dtype=torch.float64 if dtype == torch.float64 else torch.float32, device=self.weight.device)
        qt = self.apply_q(eye)  # row r = Q e_r
        return qt.t().to(dtype)

    @torch.no_grad()
    def merged_weight(self) -> torch.Tensor:
        """W' = W Q (float32), the weight of the layer with the adapter merged in."""
        return (self.weight.double() @ self.dense_q(torch.float64)).float()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.apply_q(x).to(self.weight.dtype)
        return F.linear(y, self.weight, self.bias)

    def _apply(self, fn, *args, **kwargs):
        # model.to(dtype) casts every floating tensor; the adapter stays float32 (its values are
        # exact in any float type at init, where this normally happens).
        out = super()._apply(fn, *args, **kwargs)
        for p in self.adapter_parameters().values():
            if p.dtype != torch.float32:
                p.data = p.data.float()
        return out

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, method={self.method}, "
                f"layout={self.layout}, blocks={self.plan.block_count}, stages={self.plan.stage_count}"
                + (", scaling" if self.scaling else ""))


def _matches(name: str, targets: Union[str, Sequence[str]]) -> bool:
    """PEFT's target_modules rule: a string is a regex that must match the whole name; a list
    entry matches a name equal to it or ending with '.' + entry."""
    if isinstance(targets, str):
        return re.fullmatch(targets, name) is not None
    return any(name == t or name.endswith("." + t) for t in targets)


def snapshot_module_name(name: str) -> str:
    """The module path a snapshot records: from `encoder.layer.` on for a BERT encoder inside a
    wrapper (`bert.encoder.layer.0...` -> `encoder.layer.0...`, what qgoft's BertModel has), else
    the name itself."""
    k = name.find("encoder.layer.")
    return name[k:] if k >= 0 else name


class QGOFTAdapters:
    """The adapters applied to one model, and the penalty strength lambda (changeable at any step).

    With `add_penalty_to_loss` (the default) a forward hook on the model adds
    lambda * penalty to the `loss` the model returns while training (HF models return one when
    given labels), so an HF Trainer needs nothing else. It also keeps the last task loss,
    penalty and number of real tokens (from `attention_mask`) for the session records."""

    def __init__(self, model: nn.Module, layers: Dict[str, GivensLinear], method: str, layout: str,
                 scaling: bool, lam: float, targets, head: Optional[str], add_penalty_to_loss: bool):
        self.model = model
        self.layers = layers
        self.method = method
        self.layout = layout
        self.scaling = scaling
        self.targets = targets
        self.head_name = head
        self.initial_lam = float(lam) if method == "qgoft" else 0.0
        self._lam = self.initial_lam
        self.last_task_loss: Optional[float] = None
        self.last_penalty: Optional[float] = None
        self.last_tokens: int = 0
        self._hooks = []
        if add_penalty_to_loss:
            self._hooks.append(model.register_forward_pre_hook(self._count_tokens, with_kwargs=True))
            self._hooks.append(model.register_forward_hook(self._add_penalty))

    @property
    def lam(self) -> float:
        return self._lam

    @lam.setter
    def lam(self, value: float):
        value = float(value)
        if not (value >= 0 and math.isfinite(value)):
            raise ValueError(f"lambda {value}: must be finite and >= 0")
        if self.method != "qgoft" and value != 0:
            raise ValueError(f"lambda is not used by {self.method}")
        self._lam = value

    @property
    def head(self) -> Optional[nn.Module]:
        return self.model.get_submodule(self.head_name) if self.head_name else None

    def penalty(self) -> torch.Tensor:
        """sum over adapted layers of their penalties (float32 scalar, with gradient)."""
        total = None
        for lin in self.layers.values():
            p = lin.penalty()
            total = p if total is None else total + p.to(total.device)
        if total is None:
            return torch.zeros(())
        return total

    def trainable_parameters(self) -> List[nn.Parameter]:
        ps = [p for lin in self.layers.values() for p in lin.adapter_parameters().values()]
        if self.head is not None:
            ps += [p for p in self.head.parameters()]
        return ps

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.trainable_parameters())

    def remove_hooks(self):
        for h in self._hooks:
            h.remove()
        self._hooks = []

    # -- hooks ------------------------------------------------------------------------------
    def _count_tokens(self, module, args, kwargs):
        m = kwargs.get("attention_mask")
        if m is None and len(args) >= 2 and torch.is_tensor(args[1]):
            m = args[1]
        if torch.is_tensor(m):
            self.last_tokens = int(m.sum().item())
        else:
            ids = kwargs.get("input_ids", args[0] if args else None)
            self.last_tokens = int(ids.numel()) if torch.is_tensor(ids) else 0
        return None

    def _add_penalty(self, module, args, output):
        if not module.training:
            return None
        loss = None
        if isinstance(output, dict) or hasattr(output, "keys"):
            loss = output.get("loss", None) if hasattr(output, "get") else None
        if loss is None:
            return None
        self.last_task_loss = float(loss.detach().float().item())
        if self.method != "qgoft":
            self.last_penalty = 0.0
            return None
        pen = self.penalty()
        self.last_penalty = float(pen.detach().item())
        if self._lam == 0:
            return None
        output["loss"] = loss + self._lam * pen.to(loss.dtype)
        return output


def apply_adapters(model: nn.Module, target_modules: Union[str, Sequence[str]], method: str = "qgoft",
                   layout: str = "tree", goft_scaling: bool = True, lam: float = 1e-4,
                   modules_to_save: Optional[Sequence[str]] = ("classifier",),
                   add_penalty_to_loss: bool = True, freeze_base: bool = True) -> QGOFTAdapters:
    """Replaces every nn.Linear whose name matches `target_modules` (PEFT's rule: a list entry
    matches the name or its dotted suffix; a string is a full-match regex) by a GivensLinear
    (identity at init, so the model computes what it did). With `freeze_base` every other
    parameter is frozen except those of `modules_to_save` (the head). Returns the handle that
    holds lambda and the adapted layers."""
    if method not in METHODS:
        raise ValueError(f"method {method!r}: must be one of {', '.join(METHODS)}")
    names = [n for n, m in model.named_modules() if isinstance(m, nn.Linear) and not isinstance(m, GivensLinear)
             and n and _matches(n, target_modules)]
    if not names:
        raise ValueError(f"target_modules {target_modules!r} match no nn.Linear of the model")
    if freeze_base:
        for p in model.parameters():
            p.requires_grad_(False)
    layers: Dict[str, GivensLinear] = {}
    for n in names:
        parent_name, _, child = n.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        g = GivensLinear(getattr(parent, child), method=method, layout=layout, scaling=goft_scaling)
        setattr(parent, child, g)
        layers[n] = g
    head = None
    for m in modules_to_save or ():
        sub = model.get_submodule(m)
        for p in sub.parameters():
            p.requires_grad_(True)
        head = head or m
    return QGOFTAdapters(model, layers, method, layout, goft_scaling and method == "goft", lam, target_modules,
                         head, add_penalty_to_loss)
