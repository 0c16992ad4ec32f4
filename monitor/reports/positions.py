"""Where each group's values stand in a clock's sorted values, found without sorting by group.

A breakdown needs, per group, a few of its values by rank (the percentiles' neighbours, the largest) and
how many of them lie below a few cuts (the target, the histogram's edges): never the whole group in order.
So the group codes, in the order of the sorted values, are counted per block of 4,096 positions (one
bincount); a rank then falls in the block where the group's running count passes it, and a cut's count is
the blocks' before it plus a scan of one block. A stable argsort by group (the old way) costs 3-6 times as
much over a million values.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt

_BITS = 12
_BLOCK = 1 << _BITS


@lru_cache(maxsize=4)  # the clocks' sizes: calendar and business share theirs
def _block_base(size: int, stride: int) -> npt.NDArray[Any]:
    """Per position, its block's first column (+1: code -1 counts in column 0)."""
    n_blocks = -(-size // _BLOCK)
    starts = np.arange(n_blocks, dtype=np.int64) * stride + 1
    base = np.repeat(starts.astype(np.int32) if n_blocks * stride < 2**31 else starts, _BLOCK)[:size]
    base.flags.writeable = False
    return base


class Blocks:
    """Group codes (-1: in no group) in the order of the sorted values, counted per block."""

    def __init__(self, groups: npt.NDArray[np.signedinteger[Any]], n_groups: int) -> None:
        self.groups = groups
        # Column c + 1 counts code c, column 0 the rows in no group; a common stride for the small codes
        # shares one block base between the breakdowns of a clock.
        self.stride = 256 if n_groups < 256 else n_groups + 1
        n_blocks = -(-groups.size // _BLOCK)
        keys = _block_base(groups.size, self.stride) + groups
        counts = np.bincount(keys, minlength=n_blocks * self.stride).reshape(n_blocks, self.stride)
        self.running = np.cumsum(counts, axis=0)  # [b, c]: code c - 1 in blocks 0..b
        self.by_code = np.ascontiguousarray(self.running.T)
        self._below: dict[int, npt.NDArray[np.int64]] = {}

    def size(self, code: int) -> int:
        column = self.by_code[code + 1]
        return int(column[-1]) if column.size else 0

    def position(self, code: int, rank: int) -> int:
        """Where the code's value of this rank (0: its smallest) is."""
        column = self.by_code[code + 1]
        b = int(np.searchsorted(column, rank, side="right"))
        before = int(column[b - 1]) if b else 0
        block = self.groups[b * _BLOCK : (b + 1) * _BLOCK]
        return b * _BLOCK + int(np.flatnonzero(block == code)[rank - before])

    def below(self, cut: int) -> npt.NDArray[np.int64]:
        """How many of each code's values lie before position `cut` (indexed by code + 1)."""
        counts = self._below.get(cut)
        if counts is None:
            b = cut >> _BITS
            partial = np.bincount(self.groups[b * _BLOCK : cut] + 1, minlength=self.stride)
            counts = partial + self.running[b - 1] if b else partial
            self._below[cut] = counts
        return counts


class GroupPositions:
    """One group's positions in the sorted values, ascending, read like the array of them (figures.dist:
    `size`, indexing, `searchsorted` of positions) without building it."""

    __slots__ = ("blocks", "code", "size")

    def __init__(self, blocks: Blocks, code: int) -> None:
        self.blocks, self.code = blocks, code
        self.size = blocks.size(code)

    def __getitem__(self, rank: int) -> int:
        if not 0 <= rank < self.size:
            raise IndexError(rank)
        return self.blocks.position(self.code, rank)

    def searchsorted(self, cuts: Any) -> Any:
        """How many of the group's positions lie before each cut (numpy's searchsorted, side left)."""
        if np.ndim(cuts) == 0:
            return int(self.blocks.below(int(cuts))[self.code + 1])
        return np.array([self.blocks.below(int(c))[self.code + 1] for c in cuts], dtype=np.int64)


def split(groups: npt.NDArray[np.signedinteger[Any]], n_groups: int) -> list[GroupPositions]:
    """Each group's positions (codes 0..n_groups-1; -1 in none)."""
    blocks = Blocks(groups, n_groups)
    return [GroupPositions(blocks, code) for code in range(n_groups)]
