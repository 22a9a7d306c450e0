"""Cycle-level model of the RTL blocks, above all the FuseMax tile engine (``rtl/fusemax_tile.py``).

The tile engine's schedule is derived here segment by segment from the same rules the RTL's sequencer
follows, so the count is exact (the cocotb regressions assert equality). Every latency is a named depth of
:mod:`attnforge.sim.contract.depths`:

* cycle 0 accepts the ``cfg`` beat; the first K (and Q) beat is taken in cycle 1;
* the 2D array's MACs run ``QK0, QK1, SLNV0, QK2, SLNV1, ..., QK(n-1), SLNV(n-2), SLNV(n-1)``, one beat a cycle
  (E beats per QK, F per SLNV). Tile j's scores are in the S register ``FM_MAC_PIPE + 1`` cycles after its last QK
  beat, and its probabilities SLN ``fm_sm_latency(rows)`` cycles later (max tree, RM, distances, exponent unit);
  SLNV(j) starts once they are there, which the next tile's QK hides when E is long enough (else the MACs wait);
* RD is final ``fm_tree_levels + FM_ACC_PIPE`` cycles after the last SLN, and the reciprocal (``qw`` iterations
  plus a hand-off) starts then, overlapping the last SLNV; RNV is final ``FM_MAC_PIPE + fm_tree_levels + 1 +
  FM_ACC_PIPE`` cycles after the last SLNV beat;
* once both are final, the F output beats leave the ``FM_OUT_PIPE``-stage output pipeline one per cycle.

``rtl_cycles`` is defined identically in the testbench: cycles from the cfg handshake to the last output
handshake, with inputs always valid and the output always ready.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from attnforge.sim.contract import (
    FM_ACC_PIPE,
    FM_MAC_PIPE,
    FM_OUT_PIPE,
    PE_PIPE,
    fm_min_e,
    fm_min_f,
    fm_sm_latency,
    fm_tree_levels,
    vec_latency,
)
from attnforge.sim.contract.fixedpoint import FixedPointConfig

__all__ = ["PE_PIPE", "Segment", "TileSchedule", "array2d_cycles", "attention_cycles",
           "engine_run", "engine_run_cycles", "pe_cycles", "tile_schedule", "vector1d_cycles"]


@dataclass(frozen=True)
class Segment:
    """One stretch of the schedule: what runs, for which key tile, from which cycle, for how long."""

    name: str  #: cfg, QK, SLNV, SM (exposed softmax), RECIP, OUT
    tile: int
    start: int
    cycles: int
    mac: bool  #: the 2D array's MACs fire every cycle of it


@dataclass(frozen=True)
class TileSchedule:
    rows: int
    cols: int
    e: int
    f: int
    n_tiles: int
    segments: tuple[Segment, ...] = field(repr=False)

    @property
    def total_cycles(self) -> int:
        """From the cfg handshake (cycle 0) to the last output handshake, as the testbench counts."""
        last = self.segments[-1]
        return last.start + last.cycles - 1

    @property
    def latency(self) -> int:
        """From this tile's cfg handshake to its last output handshake (``total_cycles`` counts from cycle 0, which
        is this tile's cfg only in :func:`tile_schedule`; in :func:`engine_run` it is the run's first cfg)."""
        return self.total_cycles - self.segments[0].start

    @property
    def mac_cycles(self) -> int:
        return sum(s.cycles for s in self.segments if s.mac)

    @property
    def steady_cycles(self) -> int:
        """First QK beat to last SLNV beat: the window where the 2D array streams K/V tiles."""
        macs = [s for s in self.segments if s.mac]
        return macs[-1].start + macs[-1].cycles - macs[0].start

    @property
    def utilization(self) -> float:
        """2D-array MAC utilization over the whole tile (reciprocal and output tail included)."""
        return self.mac_cycles / self.total_cycles

    @property
    def steady_utilization(self) -> float:
        return self.mac_cycles / self.steady_cycles

    def to_dict(self) -> dict[str, object]:
        return {"rows": self.rows, "cols": self.cols, "e": self.e, "f": self.f, "n_tiles": self.n_tiles,
                "cycles": self.total_cycles, "mac_cycles": self.mac_cycles, "steady_cycles": self.steady_cycles,
                "utilization": self.utilization, "steady_utilization": self.steady_utilization,
                "segments": [(s.name, s.tile, s.start, s.cycles) for s in self.segments]}


def _check(rows: int, e: int, f: int, n_tiles: int) -> None:
    if n_tiles < 1:
        raise ValueError("n_tiles must be >= 1")
    if e < fm_min_e(rows):
        raise ValueError(f"e must be >= {fm_min_e(rows)}: the softmax step holds S that long (rows={rows})")
    if f < fm_min_f(rows):
        raise ValueError(f"f must be >= {fm_min_f(rows)}: the last RD update must land before the next cfg (rows={rows})")


def _timeline(rows: int, e: int, f: int, n_tiles: int, qw: int, t0: int, free: int) -> list[Segment]:
    """One query tile's segments in absolute cycles: cfg taken at ``t0``; ``free``: the first cycle in which the
    previous tile's output is over (its last output beat taken), before which this tile's first SLNV beat and its
    reciprocal wait (they overwrite RNV and 1/RD, which that output still reads); 0 when there is none."""
    sln_after_qk = FM_MAC_PIPE + 1 + fm_sm_latency(rows)  # last QK beat -> SLN visible
    segs: list[Segment] = []
    t = t0

    def add(name: str, tile: int, start: int, cycles: int, mac: bool) -> None:
        nonlocal t
        if start > t:
            segs.append(Segment("WAIT", tile, t, start - t, False))
        segs.append(Segment(name, tile, start, cycles, mac))
        t = start + cycles

    add("cfg", -1, t0, 1, False)
    sln_ready = []
    for j in range(n_tiles):
        add("QK", j, t, e, True)
        sln_ready.append(t - 1 + sln_after_qk)
        if j:
            add("SLNV", j - 1, max(t, sln_ready[j - 1], free if j == 1 else 0), f, True)
    add("SLNV", n_tiles - 1, max(t, sln_ready[-1], free if n_tiles == 1 else 0), f, True)
    recip_done = max(sln_ready[-1] + fm_tree_levels(rows) + FM_ACC_PIPE, free) + qw + 1
    rnv_ready = t - 1 + FM_MAC_PIPE + fm_tree_levels(rows) + 1 + FM_ACC_PIPE
    add("OUT", -1, max(recip_done, rnv_ready) + FM_OUT_PIPE, f, False)
    return segs


def tile_schedule(rows: int, cols: int, e: int, f: int, n_tiles: int, max_keys: int = 256) -> TileSchedule:
    """The tile engine's schedule for one output tile against ``n_tiles`` key tiles of ``rows`` keys."""
    _check(rows, e, f, n_tiles)
    qw = FixedPointConfig(e=e, f=f, rows=rows, max_keys=max_keys).qw
    return TileSchedule(rows, cols, e, f, n_tiles, tuple(_timeline(rows, e, f, n_tiles, qw, 0, 0)))


def engine_run(rows: int, cols: int, e: int, f: int, n_tiles: Sequence[int], max_keys: int = 256) -> list[TileSchedule]:
    """Each query tile's schedule, in cycles from the first cfg handshake, for query tiles submitted back to back
    (see :func:`engine_run_cycles`). The engine takes the next cfg the cycle after a tile's last MAC beat, so the
    next tile's QK0 and QK1 (and its softmax steps) overlap this tile's RNV, reciprocal and output tail; its first
    SLNV beat and its reciprocal wait until that output is over."""
    qw = FixedPointConfig(e=e, f=f, rows=rows, max_keys=max_keys).qw
    out: list[TileSchedule] = []
    t0, free = 0, 0
    for n in n_tiles:
        _check(rows, e, f, n)
        segs = _timeline(rows, e, f, n, qw, t0, free)
        out.append(TileSchedule(rows, cols, e, f, n, tuple(segs)))
        last_mac = [s for s in segs if s.mac][-1]
        t0, free = last_mac.start + last_mac.cycles, segs[-1].start + segs[-1].cycles
    return out


@lru_cache(maxsize=4096)
def _step(rows: int, e: int, f: int, n: int, qw: int, rel_free: int) -> tuple[int, int, int]:
    """One query tile of a back-to-back run, relative to its cfg cycle: (next cfg, next tile's ``free`` relative to
    that cfg, last output beat). The relation is shift-invariant, so a whole layer costs one cached call per
    distinct (n, rel_free), which after a tile or two repeats."""
    _check(rows, e, f, n)
    segs = _timeline(rows, e, f, n, qw, 0, max(rel_free, 0))
    last_mac = [s for s in segs if s.mac][-1]
    nxt = last_mac.start + last_mac.cycles
    end = segs[-1].start + segs[-1].cycles
    return nxt, end - nxt, end - 1


def engine_run_cycles(rows: int, cols: int, e: int, f: int, n_tiles: Sequence[int], max_keys: int = 256) -> int:
    """Exact cycles of a run of query tiles submitted back to back: query tile ``i`` against ``n_tiles[i]`` key
    tiles, its cfg offered as soon as the engine has taken the previous one, inputs always valid, the output always
    ready. Counted from the first cfg handshake (cycle 0) to the last output handshake, as the testbench counts;
    this is the one function a driver of the engine (the whole-layer top's cycle model) needs. Equal to the last
    tile's ``total_cycles`` in :func:`engine_run`, in O(1) per tile."""
    qw = FixedPointConfig(e=e, f=f, rows=rows, max_keys=max_keys).qw
    t0, rel, last = 0, 0, 0
    for n in n_tiles:
        nxt, rel, end = _step(rows, e, f, n, qw, rel)
        last, t0 = t0 + end, t0 + nxt
    return last


def attention_cycles(rows: int, cols: int, e: int, f: int, p: int, m: int, heads: int = 1, batch: int = 1,
                     max_keys: int | None = None) -> dict[str, object]:
    """Cycles of the tile engine for a whole (B, H, P, M) attention: one tile per ``cols`` queries, each against
    ``ceil(M / rows)`` key tiles (the last one masked), submitted back to back (:func:`engine_run_cycles`)."""
    n = -(-m // rows)  # the last key tile padded
    sched = tile_schedule(rows, cols, e, f, n, max_keys or max(m, rows))
    tiles = batch * heads * -(-p // cols)
    cycles = engine_run_cycles(rows, cols, e, f, [n] * tiles, max_keys or max(m, rows))  # tiles back to back
    return {"tile": sched.to_dict(), "tiles": tiles, "cycles": cycles,
            "mac_cycles": tiles * sched.mac_cycles, "utilization": tiles * sched.mac_cycles / cycles,
            "steady_utilization": sched.steady_utilization}


# ---------------------------------------------------------------- the smaller blocks (same testbench definition)
# PE_PIPE (the registers in front of the PE's accumulator) lives in attnforge.sim.contract: rtl/pe.py builds it.


def pe_cycles(lengths: list[int]) -> int:
    """MAC PE: L beats, PE_PIPE cycles for the last beat to pass the registers in front of the accumulator, then
    one output beat per run; input refused meanwhile."""
    return sum(n + PE_PIPE + 1 for n in lengths) - 1


def array2d_cycles(rows: int, lengths: list[int]) -> int:
    """2D array: E beats per job, PE_PIPE cycles for the last beat to pass the PEs' registers, then ``rows`` output
    beats while input is refused."""
    return sum(n + rows + PE_PIPE for n in lengths) - 1


def vector1d_cycles(ops: list[str], qw: int) -> int:
    """1D unit, from the first command handshake to the last result's (the output always taken): one command a
    cycle, each op's result ``vec_latency`` cycles after its command, in command order. So a command waits until its
    result can land after every older one (an exp, the longest, never waits; a max after an exp waits for it), a
    recip until every older result is out (the divider writes the output register directly), and every command
    after a recip until its quotient is."""
    issue, last, barrier = -1, 0, 0  # the previous command's cycle; the newest result's; the last recip's
    for op in ops:
        lat = vec_latency(op, qw)
        issue = max(issue + 1, barrier, last if op == "recip" else last - lat + 1)
        last = issue + lat
        if op == "recip":
            barrier = last
    return last
