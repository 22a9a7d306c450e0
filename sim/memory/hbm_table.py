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
stream 210.7 GB/s at 16 in flight, the same stream warm 203.4, and it tends to ~205 as the stream grows); each
stream is keyed by the row-hit rate the analytical model's own
formula (:func:`dram.stream_activates`) gives it, and the table holds the channels' mean GB/s. The model then reads
the table at its streams' hit rate, interpolating linearly in hit rate and in requests in flight.

What it assumes: channels equally loaded (as the closed queue does: the slowest channel of an unevenly pruned layer
is not charged), and HBM2_2Gbps timings with SpAtten's organisation; an arch whose ``hbm`` timings differ is refused.
``python -m attnforge.sim.memory.hbm_table --write`` regenerates ``ramulator/replay_table.json`` (~2 min).
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

import numpy as np

from attnforge.sim.memory import hbm_events
from attnforge.sim.specs.arch import Hbm, get_preset
from attnforge.sim.specs.errors import SpecError

TABLE = Path(__file__).resolve().parent / "ramulator" / "replay_table.json"
#: Requests in flight per channel the table is measured at; above the last the buses bound it (held there).
OUTSTANDING: tuple[int, ...] = (1, 2, 4, 8, 12, 16, 20, 24, 32, 48, 64)
#: Kept fractions of a head's keys: 1.0 is the in-order stream; 0.0 stands for scattered requests (every one a miss).
DENSITIES: tuple[float, ...] = (1.0, 0.9, 0.75, 0.6, 0.45, 0.3, 0.2, 0.15, 0.1, 0.0)
KEYS, VECTOR_BYTES, REQUESTS = 1024, 64, 16_384


def family_stream(hbm: Hbm, density: float, seed: int = 0) -> tuple[np.ndarray, float]:
    """One stream of the family: heads of ``KEYS`` 64-byte keys, each keeping its own random ``density`` share in
    ascending order, until ~``REQUESTS`` requests; and the row-hit rate the analytical model's formula gives it.
    Density 0 is the scattered stream: requests at random addresses of 1 GiB (every one its own row)."""
    from attnforge.sim.memory import dram
    from attnforge.sim.memory.ramulator_check import scattered, vector_addresses

    if density <= 0:
        return scattered(hbm, REQUESTS, seed=seed).addresses, 0.0
    rng = np.random.default_rng(seed)
    kept = max(1, round(KEYS * density))
    per_head = kept * VECTOR_BYTES // hbm.request_bytes
    heads = max(1, REQUESTS // per_head)
    region = -(-KEYS * VECTOR_BYTES // 65536) * 65536
    parts = [vector_addresses(h * region, np.sort(rng.choice(KEYS, kept, replace=False)), VECTOR_BYTES,
                              hbm.request_bytes) for h in range(heads)]
    req = float(dram.stream_requests(hbm, kept, VECTOR_BYTES))
    hit = 1.0 - float(dram.stream_activates(hbm, kept, KEYS, VECTOR_BYTES)) / req
    return np.concatenate(parts), hit


def measure(hbm: Hbm, density: float, outstanding: int) -> float:
    """The channels' mean GB/s of one family stream at ``outstanding`` requests in flight (the event replay, banks
    warm)."""
    from attnforge.sim.memory.ramulator_check import crossbar

    addrs, _ = family_stream(hbm, density)
    timing = hbm_events.Hbm2Timing.from_hbm(hbm)
    return hbm_events.channels_gb_s(crossbar(addrs, hbm), outstanding, timing, warm=True)[1]


def build(hbm: Hbm) -> dict[str, object]:
    """The whole table (``--write``): per density, the model's hit rate and the GB/s at each requests-in-flight."""
    rows = []
    for d in DENSITIES:
        _, hit = family_stream(hbm, d)
        rows.append({"density": d, "hit": hit, "gb_s": [measure(hbm, d, n) for n in OUTSTANDING]})
    return {"timing": asdict(hbm_events.Hbm2Timing.from_hbm(hbm)), "channels": hbm.channels,
            "outstanding": list(OUTSTANDING), "rows": rows}


@lru_cache(maxsize=1)
def _load() -> tuple[dict[str, int], np.ndarray, np.ndarray, np.ndarray]:
    """The table: the timing it was measured with, requests in flight, hit rates, and one channel's GB/s."""
    data = json.loads(TABLE.read_text())
    rows = sorted(data["rows"], key=lambda r: r["hit"])
    hits = np.array([r["hit"] for r in rows])
    # Several densities can share a hit rate (the formula caps activates at one per request): keep the mean.
    uniq = np.unique(hits)
    gbs = np.array([np.mean([r["gb_s"] for r in rows if r["hit"] == h], axis=0) for h in uniq]) / data["channels"]
    return data["timing"], np.array(data["outstanding"], dtype=np.float64), uniq, gbs


def check_timing(hbm: Hbm) -> None:
    """Refuse an arch whose HBM is not the one the table was measured on (its timings or organisation differ)."""
    timing, *_ = _load()
    ours = asdict(hbm_events.Hbm2Timing.from_hbm(hbm))
    diff = sorted(k for k in timing if timing[k] != ours.get(k))
    if diff:
        raise SpecError("hbm.model", f"'replay' has a table for SpAtten's HBM2 only; this arch changes {', '.join(diff)}",
                        ["closed-queue (any timings)", "replay (the preset's HBM2 timings, any channels and outstanding)"])


def channel_gb_s(hbm: Hbm, hit_rate: object) -> np.ndarray:
    """One channel's GB/s at ``hbm.outstanding`` requests in flight and this row-hit rate (arrays broadcast)."""
    check_timing(hbm)
    _, ns, hits, gbs = _load()
    n = min(float(hbm.outstanding), ns[-1])
    at_n = np.array([np.interp(n, ns, gbs[i]) for i in range(len(hits))])
    return np.interp(np.clip(np.asarray(hit_rate, dtype=np.float64), 0.0, 1.0), hits, at_n)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m attnforge.sim.memory.hbm_table", description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help=f"re-measure the table and write {TABLE.name}")
    args = ap.parse_args(argv)
    hbm = get_preset("spatten").hbm  # type: ignore[attr-defined]
    if args.write:
        TABLE.write_text(json.dumps(build(hbm), indent=1) + "\n")
    _, ns, hits, gbs = _load()
    print(f"GB/s of SpAtten's {hbm.channels} channels (event replay, channel mean) by row-hit rate and requests in flight")
    print(f"{'hit':>6} " + " ".join(f"{int(n):>6}" for n in ns))
    for h, row in zip(hits, gbs, strict=True):
        print(f"{h:>6.3f} " + " ".join(f"{g * hbm.channels:>6.1f}" for g in row))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
