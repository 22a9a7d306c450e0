"""Exact cycle model of ``fusemax-top`` (``rtl/fusemax_top.py``): a whole multi-head layer from one descriptor.

The top's timing is a handful of rules, each a register or a handshake in the RTL, so the model walks requests and
query tiles (not cycles) and is exact:

* cycle 0 takes the descriptor; the run's registers hold from cycle 1, so nothing is requested before cycle 1;
* the DMA issues one request of ``d`` words per tile in one fixed order (:func:`request_order`), at most one per
  cycle, a request no earlier than the cycle after the one before it; a head's first K/V request waits until its
  bank is free (visible the cycle after the last V beat its previous head read), a Q request until its slot is
  free (visible the cycle after the last Q beat read from it);
* the memory answers by the rules of ``sim/contract/memport.py`` (:class:`attnforge.sim.memory.port.PortModel`);
* a query tile starts (engine cfg handshake) at the earliest cycle at which the engine takes a cfg (the cycle
  after the previous tile's last MAC beat: the pipelined engine overlaps the next tile's QK with this one's tail),
  its Q slot is full and its head's bank is full (each visible the cycle after its last word arrives); from there
  the engine runs as its own cycle model says for a start at that cycle (:func:`_engine_cycles`: its first SLNV
  and reciprocal wait for the previous tile's output, which a late start shortens or hides);
* the layer's cycles run from the descriptor handshake (cycle 0) to the last output beat.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from attnforge.sim.contract.fixedpoint import FixedPointConfig
from attnforge.sim.contract.memport import MemTiming
from attnforge.sim.fusemax.cycle_model import _step
from attnforge.sim.memory.port import PortModel, achieved_bandwidth


@dataclass(frozen=True)
class EngineTile:
    """What the top needs of one engine run, in cycles relative to its cfg handshake: its last output beat, its last
    Q beat and last V beat, the first cycle the engine takes the next cfg, the cycle its output is over (the next
    run's ``free``), and its MAC cycles."""

    cycles: int
    q_last: int
    v_last: int
    next_cfg: int
    free: int
    mac_cycles: int


def _engine_cycles(rows: int, cols: int, d: int, tk: int, max_keys: int, rel_free: int = 0) -> EngineTile:
    """One engine run started at its cfg handshake, the previous run's output over ``rel_free`` cycles after that
    handshake (0 or less: already over). The engine's own cycle model (``_step``: one query tile of
    :func:`attnforge.sim.fusemax.cycle_model.engine_run_cycles`, shift
    invariant) is the one place that knows its timing; the top feeds it as that model
    assumes, because its block-RAM readers restart on the cfg handshake and show a word every cycle from the next
    (inputs always valid) and ``o`` goes straight out. Q beats are taken in cycles 1..E (the run's Q register file);
    the last V beat is the run's last MAC beat, the cycle before the engine takes the next cfg."""
    qw = FixedPointConfig(e=d, f=d, rows=rows, max_keys=max_keys).qw
    nxt, free_after, last_out = _step(rows, d, d, tk, qw, rel_free)
    return EngineTile(last_out, d, nxt - 1, nxt, nxt + free_after, tk * 2 * d)


def request_order(heads: int, tq: int, tk: int) -> list[tuple[str, int, int]]:
    """The DMA's request order as (kind, head, index): K/V of head h (``tk`` K tiles then ``tk`` V tiles) goes as
    soon as ``(h-1)*tq + min(2, tq)`` Q tiles have gone (0 for head 0), else the next Q tile."""
    out: list[tuple[str, int, int]] = []
    q, kv_h, total = 0, 0, heads * tq
    while q < total or kv_h < heads:
        thresh = 0 if kv_h == 0 else (kv_h - 1) * tq + min(2, tq)
        if kv_h < heads and q >= thresh:
            out += [("k", kv_h, j) for j in range(tk)] + [("v", kv_h, j) for j in range(tk)]
            kv_h += 1
        else:
            out.append(("q", q // tq, q % tq))
            q += 1
    return out


@dataclass
class TopSchedule:
    """The whole layer: per query tile its start cycle and engine run, request issue and last-beat cycles, and the
    totals."""

    heads: int
    tq: int
    tk: int
    tiles: list[EngineTile] = field(repr=False)
    tile_starts: list[int] = field(repr=False)
    issues: list[int] = field(repr=False)
    lasts: list[int] = field(repr=False)

    @property
    def total_cycles(self) -> int:
        """Descriptor handshake (cycle 0) to the last output beat."""
        return self.tile_starts[-1] + self.tiles[-1].cycles

    @property
    def mac_cycles(self) -> int:
        return sum(t.mac_cycles for t in self.tiles)

    @property
    def utilization(self) -> float:
        """2D-array MAC utilization over the layer (cycles in which the MACs fire / all cycles)."""
        return self.mac_cycles / self.total_cycles

    @property
    def stall_cycles(self) -> int:
        """Cycles the engine could have taken the next cfg but waited for data (the first tile: from cycle 1)."""
        ends = [s + t.next_cfg for s, t in zip(self.tile_starts[:-1], self.tiles[:-1], strict=True)]
        return self.tile_starts[0] - 1 + sum(s - e for s, e in zip(self.tile_starts[1:], ends, strict=True))

    def to_dict(self) -> dict[str, object]:
        return {"heads": self.heads, "tq": self.tq, "tk": self.tk, "cycles": self.total_cycles,
                "tile_cycles": self.tiles[0].cycles, "mac_cycles": self.mac_cycles, "utilization": self.utilization,
                "stall_cycles": self.stall_cycles, "requests": len(self.issues)}


def top_schedule(rows: int, cols: int, d: int, heads: int, p: int, m: int, timing: MemTiming,
                 max_keys: int) -> TopSchedule:
    """The exact schedule of one accepted descriptor (heads, P queries, M keys; causal or not: the engine masks,
    its timing is the same)."""
    if m < 1 or p < 1 or heads < 1:
        raise ValueError("fusemax-top refuses this descriptor (zero sizes)")
    port = PortModel(timing)
    tq, tk = -(-p // cols), -(-m // rows)
    order = request_order(heads, tq, tk)
    starts: list[int] = []  # engine cfg handshake per query tile, global index g = h * tq + t
    tiles: list[EngineTile] = []
    q_done: dict[int, int] = {}  # last beat of Q tile g
    kv_done: dict[int, int] = {}  # last beat of head h's last V tile
    issues: list[int] = []
    lasts: list[int] = []

    def start_of(g: int) -> int:
        """Tile g's start; every tile before it, its Q and its head's K/V are earlier in the order."""
        while len(starts) <= g:
            i = len(starts)
            prev = starts[-1] + tiles[-1].next_cfg if starts else 1
            s = max(prev, q_done[i] + 1, kv_done[i // tq] + 1)
            free = starts[-1] + tiles[-1].free - s if starts else 0
            starts.append(s)
            tiles.append(_engine_cycles(rows, cols, d, tk, max_keys, free))
        return starts[g]

    for kind, h, idx in order:
        ready = issues[-1] + 1 if issues else 1
        if kind == "q" and h * tq + idx >= 2:  # its slot: freed by tile g-2's last Q beat
            g = h * tq + idx - 2
            ready = max(ready, start_of(g) + tiles[g].q_last + 1)
        if kind == "k" and idx == 0 and h >= 2:  # its bank: freed by head h-2's last tile's last V beat
            g = (h - 1) * tq - 1
            ready = max(ready, start_of(g) + tiles[g].v_last + 1)
        ready = port.earliest_accept(ready)  # the memory's slots (memport rule 1)
        _, last = port.accept(ready, d)
        issues.append(ready)
        lasts.append(last)
        if kind == "q":
            q_done[h * tq + idx] = last
        elif kind == "v" and idx == tk - 1:
            kv_done[h] = last
    start_of(heads * tq - 1)
    return TopSchedule(heads, tq, tk, tiles, starts, issues, lasts)


# ---------------------------------------------------------------- the analytical fidelity, configured as the instance

#: The shipped arch presets of fusemax-top instances and the RTL parameters each describes.
INSTANCES: dict[str, dict[str, int]] = {
    "fusemax-top-4x4": {"rows": 4, "cols": 4, "d": 8, "max_keys": 64},
    "fusemax-top-8x8": {"rows": 8, "cols": 8, "d": 64, "max_keys": 512},
}


def tile_fixed_cycles(rows: int, cols: int, d: int, max_keys: int, tk: int | None = None) -> int:
    """Cycles per query tile no array hides: the engine's steady cfg-to-cfg period for tiles back to back against
    ``tk`` key tiles (default ``max_keys / rows``), minus their MAC beats. The output beats, the reciprocal and the
    next tile's softmax steps overlap the MACs of the next tile (mapping fusemax-top puts AV with SLNV); what is
    left is the wait of a tile's first SLNV for the previous tile's output (the RNV, output-pipeline and
    output-beat tail that the next tile's first two QKs do not cover) and the cfg handshake."""
    tk = max_keys // rows if tk is None else tk
    eng, free = _engine_cycles(rows, cols, d, tk, max_keys), 0
    for _ in range(4):  # the relative "free" of back-to-back tiles repeats after one or two tiles
        free = eng.free - eng.next_cfg
        eng = _engine_cycles(rows, cols, d, tk, max_keys, free)
    return eng.next_cfg - eng.mac_cycles


def fixed_by_key_tiles(rows: int, cols: int, d: int, max_keys: int) -> list[int]:
    """:func:`tile_fixed_cycles` for runs of 1, 2, ... key tiles, up to the last count where it differs from the
    steady value at ``max_keys / rows``: a layer of few key tiles exposes a different part of the previous tile's
    tail (at 8x4, d 8: 22 cycles at one key tile, 11 at two, 35 at eight), which one constant overstated by a
    quarter on a 16-key layer."""
    steady = tile_fixed_cycles(rows, cols, d, max_keys)
    out = [tile_fixed_cycles(rows, cols, d, max_keys, tk) for tk in range(1, max_keys // rows)]
    while out and out[-1] == steady:
        out.pop()
    return out


def drain_cycles(rows: int, cols: int, d: int, max_keys: int) -> int:
    """The last output tile's cycles after the engine could take the next cfg: its RNV, reciprocal, output pipeline
    and output beats, which a layer exposes once (the same for any number of key tiles)."""
    eng = _engine_cycles(rows, cols, d, max_keys // rows, max_keys)
    return eng.cycles - eng.next_cfg


def instance_fields(rows: int, cols: int, d: int, max_keys: int, timing: MemTiming) -> dict[str, object]:
    """The arch fields (dotted) that make the FuseMax analytical model this RTL instance: array sizes, buffer, the
    words per cycle the port sustains for requests of ``d`` words (:func:`achieved_bandwidth`: the interval, or
    Little's law on the outstanding requests) at 100 MHz as bandwidth, the memory latency, the fixed tile latency."""
    word = max(rows, cols)  # bytes per memory word (int8 lanes)
    return {"arrays.2d.dims": [rows, cols], "arrays.sm.dims": [rows, cols], "arrays.1d.dims": [cols],
            "buffer.bytes": 2 * 2 * max_keys * d + 2 * cols * d,
            "dram.bandwidth_gib_s": word * 100e6 * achieved_bandwidth(timing, d) / 2**30,
            "pipeline.tile_fixed_cycles": tile_fixed_cycles(rows, cols, d, max_keys),
            "pipeline.tile_fixed_by_key_tiles": fixed_by_key_tiles(rows, cols, d, max_keys),
            "pipeline.drain_cycles": drain_cycles(rows, cols, d, max_keys),
            "pipeline.mem_latency_cycles": timing.latency, "pipeline.mem_outstanding": timing.outstanding}


def analytical_cycles(rows: int, cols: int, d: int, max_keys: int, heads: int, p: int, m: int,
                      timing: MemTiming) -> float:
    """The analytical FuseMax engine (mapping ``fusemax-top``) on the arch of this instance: the shipped preset
    with :func:`instance_fields` applied (a no-op for the shipped instances, tests/test_fusemax_top.py)."""
    from attnforge.mappings.catalog import get_mapping
    from attnforge.sim.analytical.engine import evaluate
    from attnforge.sim.specs.arch import load_arch
    from attnforge.workloads.model import Model

    arch = load_arch("fusemax-top-8x8", instance_fields(rows, cols, d, max_keys, timing))
    model = Model(name=f"{heads}x{d}", layers=1, heads=heads, d_model=heads * d, d_head=d, d_ff=4 * heads * d)
    ev = evaluate("fusemax", model, p=p, m=m, batch=1, arch=arch, mapping=get_mapping("fusemax-top"))
    return float(ev.cycles)
