"""The stage/pair plan of a Givens adapter (method.md "GOFT: d - 1 Givens rotations in a tree";
the same plans as Sources/QGOFTCore/Adapters/GivensLayout.swift).

Blocks are numbered stage by stage, k = 0 ..< P; stage 1 (index 0) is applied to the input
first, so Q = S_L ... S_2 S_1. Block k, B_k = [[a, b], [c, e]], acts on the pair
(x_i, x_j), i = first[k], j = second[k]: x_i' = a x_i + b x_j, x_j' = c x_i + e x_j.
"""
from dataclasses import dataclass
from typing import List, Tuple

LAYOUTS = ("tree", "butterfly")


@dataclass(frozen=True)
class GivensPlan:
    kind: str
    width: int
    first: Tuple[int, ...]
    second: Tuple[int, ...]
    stage_sizes: Tuple[int, ...]

    @property
    def block_count(self) -> int:
        return len(self.first)

    @property
    def stage_count(self) -> int:
        return len(self.stage_sizes)

    @property
    def stage_starts(self) -> List[int]:
        starts = [0]
        for s in self.stage_sizes:
            starts.append(starts[-1] + s)
        return starts

    def pairs(self, s: int) -> List[Tuple[int, int]]:
        a, b = self.stage_starts[s], self.stage_starts[s + 1]
        return list(zip(self.first[a:b], self.second[a:b]))


def givens_plan(kind: str, width: int) -> GivensPlan:
    """The plan of layout `kind` ("tree" or "butterfly") for input width `width` (>= 1).

    tree: count = d, step = 1; while count > 1: pairs (2 step p, 2 step p + step) for
    p < count // 2, then step *= 2, count = count // 2 + count % 2 (d - 1 blocks; d = 384:
    192, 96, 48, 24, 12, 6, 3, 1, 1).
    butterfly: stride s = 1, 2, 4, ... < d; the stage pairs (i, i + s) for every i with
    i & s == 0 and i + s < d, in increasing i.
    """
    if kind not in LAYOUTS:
        raise ValueError(f"layout {kind!r}: must be one of {', '.join(LAYOUTS)}")
    if width < 1:
        raise ValueError(f"width must be at least 1, got {width}")
    first: List[int] = []
    second: List[int] = []
    sizes: List[int] = []
    if kind == "tree":
        count, step = width, 1
        while count > 1:
            pairs, carry = count // 2, count % 2
            for p in range(pairs):
                first.append(2 * step * p)
                second.append(2 * step * p + step)
            sizes.append(pairs)
            step *= 2
            count = pairs + carry
    else:
        stride = 1
        while stride < width:
            n = 0
            for i in range(width - stride):
                if i & stride == 0:
                    first.append(i)
                    second.append(i + stride)
                    n += 1
            sizes.append(n)
            stride *= 2
    return GivensPlan(kind, width, tuple(first), tuple(second), tuple(sizes))
