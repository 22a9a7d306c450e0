"""What a mapping hands the engine: stages of phases of per-array work, plus every action count.

All quantities are numpy arrays (or scalars) broadcast over a sweep, so one Schedule can describe thousands of
sequence lengths or batch sizes at once; that is how the analytical engine reaches its evaluation rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass, replace

import numpy as np

Num = np.ndarray | float | int
#: (component, action): a row of an arch's energy table (``("2d", "mac")``, ``("dram", "byte")``).
ActionKey = tuple[str, str]
DRAM_BYTES: ActionKey = ("dram", "byte")


class Actions(dict[ActionKey, Num]):
    """Action counts keyed (component, action), in the order a builder first emits them (the order of the
    energy breakdown). The engine charges each straight from the arch's table (``Arch.pj``)."""

    def add(self, component: str, action: str, count: Num) -> None:
        key = (component, action)
        self[key] = self.get(key, 0.0) + count


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
    dram_bytes: Num
    #: Fraction of the peak bandwidth the traffic achieves when a memory-system model worked it out (its access
    #: pattern, outstanding requests and latency: sim/memory/dram.py); None: the bytes move at the peak. A ratio,
    #: so clock and bandwidth sweeps of one schedule scale it as they scale the peak.
    dram_efficiency: Num | None = None
    #: The most bytes per cycle the accelerator's own ports can ask for (None: no bound below the DRAM's): a bound
    #: in cycles, so clock and bandwidth sweeps leave it where it is while they scale the DRAM's side.
    port_bytes_per_cycle: Num | None = None

    def memory_cycles(self, bytes_per_cycle: Num) -> Num:
        """Cycles its DRAM traffic takes at ``bytes_per_cycle`` of peak, scaled by its efficiency and bounded by
        its ports."""
        rate = bytes_per_cycle if self.dram_efficiency is None else bytes_per_cycle * self.dram_efficiency
        if self.port_bytes_per_cycle is not None:
            rate = np.minimum(rate, self.port_bytes_per_cycle)
        return self.dram_bytes / rate

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
    #: Energy action counts keyed (component, action): compute actions by array (("2d", "mac")), RF reads and
    #: writes (("2d", "rf_read")), buffer words (("buffer", "read")) and DRAM bytes (("dram", "byte")).
    actions: Actions
    flops: Num
    compulsory_dram_bytes: Num
    tiles: dict[str, Num] = field(default_factory=dict)
    spill_fraction: Num = 0.0
    #: Accelerator-specific figures that reach the Result as extra JSON fields (e.g. SpAtten's tokens_kept).
    extra: dict[str, Num] = field(default_factory=dict)
    #: Model layers the schedule covers: 1 for the per-layer dataflows (every layer of a model is the same
    #: attention, so one stands for all), the model's count for SpAtten (cascade pruning carries from layer to layer).
    layers: int = 1
    #: Other ways the hardware may run the same points, each with this schedule's structure (the same stages, phases
    #: and keys): the engine takes, point by point, the one with the lowest energy-delay product, as the controller
    #: would. For a choice that turns on bandwidth or clock, which the schedule must not depend on (one schedule
    #: serves a sweep of both): SpAtten's heads between one half and the whole K/V SRAM, resident or tiled.
    alternatives: list[Schedule] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not isinstance(self.actions, Actions):
            self.actions = Actions(self.actions)

    @property
    def dram_bytes(self) -> Num:
        """Bytes moved to and from DRAM (every family counts DRAM traffic in bytes)."""
        return self.actions.get(DRAM_BYTES, 0.0)


def choose(mask: np.ndarray, a: object, b: object) -> object:
    """``a`` where ``mask`` holds and ``b`` elsewhere, leaf by leaf through a schedule (its stages, phases, dicts
    and per-point arrays); the two must have the same structure. Used to merge the alternatives a controller picks
    between point by point (:attr:`Schedule.alternatives`)."""
    if isinstance(a, (float, int)) and isinstance(b, (float, int)) and a == b:
        return a  # a count both share (passes, layers) stays what it is
    if isinstance(a, (np.ndarray, float, int)) and not isinstance(a, bool):
        return np.where(mask, a, b)
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), "alternatives differ in their keys"
        return type(a)({k: choose(mask, v, b[k]) for k, v in a.items()})
    if isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), "alternatives differ in their stages or phases"
        return [choose(mask, x, y) for x, y in zip(a, b, strict=True)]
    if is_dataclass(a) and not isinstance(a, type):
        return replace(a, **{f.name: choose(mask, getattr(a, f.name), getattr(b, f.name)) for f in fields(a) if f.init})
    assert a == b, f"alternatives differ: {a!r} against {b!r}"
    return a

