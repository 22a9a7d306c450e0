"""SpAtten's HBM as the event-level replay measures it: a table of one channel's bandwidth by requests in flight and
row-hit rate, for the analytical model (``hbm.model: replay``; docs/spatten.md §Memory system).

Why a table: the replay of :mod:`attnforge.sim.memory.hbm_events` gives Ramulator 2.0's cycles, but at 5,000-15,000
requests a second it cannot run inside every analytical evaluation (a GPT-2 benchmark moves ~10^7 requests). The
closed queue of :mod:`attnforge.sim.memory.dram` is fast but is a mean-value model calibrated at one point: it
under-rates an in-order stream with fewer than 16 requests in flight (one pseudo-channel's bus does the work) and
sparse kept sets (their misses spread over both pseudo-channels and many banks). So the replay runs once over a
family of streams like the ones the analytical model charges (each head's kept 64-byte vectors read in ascending
order from its own 64 KB-aligned region, a fresh random kept set per head so that the channels carry equal shares),
at several densities and requests in flight, every bank starting open on another row (a long run's steady state,
where a stream's first visit to a bank pays a precharge: Ramulator's cold start gives the 32,000-request in-order
stream 210.7 GB/s at 16 in flight, the same stream warm 203.4: tests/test_hbm_events.py); each
stream is keyed by the row-hit rate the analytical model's own formula (:func:`dram.stream_activates`) gives it,
and the table holds the channels' mean GB/s. The model then reads the table at its streams' hit rate,
interpolating linearly in hit rate and in requests in flight.

What it assumes: channels equally loaded (as the closed queue does: the slowest channel of an unevenly pruned layer
is not charged), and HBM2_2Gbps timings with SpAtten's organisation; an arch whose ``hbm`` timings differ is refused.
``python -m attnforge.sim.memory.replay_table --write`` regenerates ``ramulator/replay_table.json`` (~3 min) and
prints it.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

import numpy as np

from attnforge.sim.memory import hbm_events
from attnforge.sim.specs.arch import Hbm, get_preset
from attnforge.sim.specs.errors import SpecError

TABLE = Path(__file__).resolve().parent / "ramulator" / "replay_table.json"


@lru_cache(maxsize=1)
def _load() -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
    """The table: the timing it was measured with, requests in flight, hit rates, and one channel's GB/s."""
    data = json.loads(TABLE.read_text())
    rows = sorted(data["rows"], key=lambda r: r["hit"])
    hits = np.array([r["hit"] for r in rows])
    # Densities that share a hit rate (none in the stored table) would be averaged.
    uniq = np.unique(hits)
    gbs = np.array([np.mean([r["gb_s"] for r in rows if r["hit"] == h], axis=0) for h in uniq]) / data["channels"]
    return data["timing"], np.array(data["outstanding"], dtype=np.float64), uniq, gbs


@lru_cache(maxsize=1)
def _closed_queue_constant() -> float:
    return get_preset("spatten").hbm.controller_ns  # type: ignore[attr-defined]


def check_timing(hbm: Hbm) -> None:
    """Refuse an arch whose HBM is not the one the table was measured on (its timings or organisation differ), or
    that changes the closed queue's own constant, which the replay has no use for (a change would be ignored)."""
    diff = _timing_diff(hbm)
    if diff:
        raise SpecError("hbm.model", f"'replay' has a table for SpAtten's HBM2 only; this arch changes {', '.join(diff)}",
                        ["closed-queue (any timings)", "replay (the preset's HBM2 timings, any channels and outstanding)"])


@lru_cache(maxsize=64)
def _timing_diff(hbm: Hbm) -> tuple[str, ...]:
    """The fields in which ``hbm`` differs from the table's HBM, once per (frozen, hashable) Hbm: the model asks on
    every stream of every layer, and the comparison is the same each time."""
    timing, *_ = _load()
    ours = asdict(hbm_events.Hbm2Timing.from_hbm(hbm))
    diff = sorted(k for k in timing if timing[k] != ours.get(k))
    if hbm.controller_ns != _closed_queue_constant():
        diff.append("controller_ns (the closed queue's constant)")
    return tuple(diff)


def channel_gb_s(hbm: Hbm, hit_rate: object) -> np.ndarray:
    """One channel's GB/s at ``hbm.outstanding`` requests in flight and this row-hit rate (arrays broadcast)."""
    check_timing(hbm)
    hits, at_n = _at_outstanding(float(hbm.outstanding))
    return np.interp(np.clip(np.asarray(hit_rate, dtype=np.float64), 0.0, 1.0), hits, at_n)


@lru_cache(maxsize=64)
def _at_outstanding(outstanding: float) -> tuple[np.ndarray, np.ndarray]:
    """The table's hit rates and one channel's GB/s at each, interpolated at this many requests in flight (at most
    the table's largest count)."""
    _, ns, hits, gbs = _load()
    n = min(outstanding, ns[-1])
    at_n = np.array([np.interp(n, ns, gbs[i]) for i in range(len(hits))])
    at_n.flags.writeable = False
    return hits, at_n
