"""What a mapping hands the engine: stages of phases of per-array work, plus every action count.

All quantities are numpy arrays (or scalars) broadcast over a sweep, so one Schedule can describe thousands of
sequence lengths or batch sizes at once; that is how the analytical engine reaches its evaluation rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

Num = np.ndarray | float | int


@dataclass
class Phase:
    """Work that runs concurrently: each array's cycles in it; the phase lasts as long as the slowest array.

    ``exposed`` is latency no array hides (a reduction crossing the 2D array while nothing else can run).
    """

    name: str
    work: dict[str, Num]
    exposed: Num = 0.0

    def cycles(self) -> Num:
        vals = list(self.work.values())
        out = vals[0] if vals else 0.0
        for v in vals[1:]:
            out = np.maximum(out, v)
        return out + self.exposed


@dataclass
class Stage:
    """A kernel: its phases run back to back; its DRAM traffic overlaps its compute (double buffering)."""

    name: str
    phases: list[Phase]
    dram_words: Num

    def compute_cycles(self) -> Num:
        total: Num = 0.0
        for ph in self.phases:
            total = total + ph.cycles()
        return total


@dataclass
class Schedule:
    mapping: str
    cascade: str
    passes: int
    stages: list[Stage]
    #: Busy cycles per array (sum over its Einsums of padded ops x cycles/op / PEs) and the useful part of it.
    busy: dict[str, Num]
    useful: dict[str, Num]
    #: Energy actions: compute actions by array ("2d.mac"), RF reads/writes ("2d.rf_read"), buffer and DRAM words.
    actions: dict[str, Num]
    flops: Num
    compulsory_dram_words: Num
    tiles: dict[str, Num] = field(default_factory=dict)
    spill_fraction: Num = 0.0
    #: Accelerator-specific figures that reach the Result as extra JSON fields (e.g. SpAtten's tokens_kept).
    extra: dict[str, Num] = field(default_factory=dict)
