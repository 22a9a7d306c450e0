"""Measure the event replay's bandwidth table that ``hbm.model: replay`` reads (sim/memory/hbm_table.py).

``python -m attnforge.sim.memory.replay_table`` prints the table; ``--write`` re-measures it (~3 min) into
``ramulator/replay_table.json``. The stream family and why it is keyed by the analytical formula's row-hit rate are
in hbm_table's docstring; tests/test_hbm_table.py re-measures one cell against the file.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict

import numpy as np

from attnforge.sim.memory import dram, hbm_events, hbm_table
from attnforge.sim.memory.ramulator_check import crossbar, scattered, vector_addresses
from attnforge.sim.specs.arch import Hbm, get_preset

#: Requests in flight per channel the table is measured at; above the last the buses bound it (held there).
OUTSTANDING: tuple[int, ...] = (1, 2, 4, 8, 12, 16, 20, 24, 32, 48, 64)
#: Kept fractions of a head's keys: 1.0 is the in-order stream; 0.0 stands for scattered requests (every one a miss).
DENSITIES: tuple[float, ...] = (1.0, 0.9, 0.75, 0.6, 0.45, 0.3, 0.2, 0.15, 0.1, 0.05, 0.02, 0.0)
KEYS, VECTOR_BYTES, REQUESTS = 1024, 64, 16_384


def family_stream(hbm: Hbm, density: float, seed: int = 0, vector_bytes: int = VECTOR_BYTES) -> tuple[np.ndarray, float]:
    """One stream of the family: heads of ``KEYS`` keys of ``vector_bytes``, each keeping its own random ``density``
    share in ascending order, until ~``REQUESTS`` requests; and the row-hit rate the analytical model's formula gives
    it. Density 0 is the scattered stream: requests at random addresses of 1 GiB (every one its own row).

    The table is measured with 64-byte keys only: read at their own formula hit rate, it gives 96-byte keys (6-bit
    pairs) within 1.8% and 32-byte keys (4-bit LSB planes) within 2.3% of their replay at 1-64 in flight, down to 5%
    kept (at 2% kept, a 32-byte key being one request, 5.4% less than the replay): ``--vector-bytes 32``;
    tests/test_hbm_table.py holds one cell. A vector's transactions are consecutive chunks of one stripe."""
    if density <= 0:
        return scattered(hbm, REQUESTS, seed=seed).addresses, 0.0
    rng = np.random.default_rng(seed)
    kept = max(1, round(KEYS * density))
    per_head = max(1, kept * vector_bytes // hbm.request_bytes)
    heads = max(1, REQUESTS // per_head)
    region = -(-KEYS * vector_bytes // 65536) * 65536
    parts = [vector_addresses(h * region, np.sort(rng.choice(KEYS, kept, replace=False)), vector_bytes,
                              hbm.request_bytes) for h in range(heads)]
    req = float(dram.stream_requests(hbm, kept, vector_bytes))
    hit = 1.0 - float(dram.stream_activates(hbm, kept, KEYS, vector_bytes)) / req
    return np.concatenate(parts), hit


def measure(hbm: Hbm, density: float, outstanding: int, vector_bytes: int = VECTOR_BYTES) -> float:
    """The channels' mean GB/s of one family stream at ``outstanding`` requests in flight (the event replay, banks
    warm)."""
    addrs, _ = family_stream(hbm, density, vector_bytes=vector_bytes)
    timing = hbm_events.Hbm2Timing.from_hbm(hbm)
    return hbm_events.channels(crossbar(addrs, hbm), outstanding, timing, warm=True).channel_mean_gb_s


def build(hbm: Hbm, vector_bytes: int = VECTOR_BYTES) -> dict[str, object]:
    """The whole table (``--write``): per density, the model's hit rate and the GB/s at each requests-in-flight."""
    rows = []
    for d in DENSITIES:
        _, hit = family_stream(hbm, d, vector_bytes=vector_bytes)
        rows.append({"density": d, "hit": hit, "gb_s": [measure(hbm, d, n, vector_bytes) for n in OUTSTANDING]})
    return {"timing": asdict(hbm_events.Hbm2Timing.from_hbm(hbm)), "channels": hbm.channels,
            "outstanding": list(OUTSTANDING), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m attnforge.sim.memory.replay_table", description=__doc__.split("\n")[0])
    ap.add_argument("--write", action="store_true", help=f"re-measure the table and write {hbm_table.TABLE.name}")
    ap.add_argument("--vector-bytes", type=int, choices=(32, 64, 96, 128),
                    help="measure the family with keys of this size instead (~3 min) and print it beside the table "
                         "(why the table needs no vector-size key)")
    args = ap.parse_args(argv)
    hbm = get_preset("spatten").hbm  # type: ignore[attr-defined]
    if args.vector_bytes and args.write:
        ap.error("--vector-bytes prints a comparison; the table is written with 64-byte keys only")
    if args.vector_bytes:
        return _compare(hbm, args.vector_bytes)
    if args.write:
        hbm_table.TABLE.write_text(json.dumps(build(hbm), indent=1) + "\n")
    hbm_table._load.cache_clear()
    _, ns, hits, gbs = hbm_table._load()
    print(f"GB/s of SpAtten's {hbm.channels} channels (event replay, channel mean) by row-hit rate and requests in flight")
    print(f"{'hit':>6} " + " ".join(f"{int(n):>6}" for n in ns))
    for h, row in zip(hits, gbs, strict=True):
        print(f"{h:>6.3f} " + " ".join(f"{g * hbm.channels:>6.1f}" for g in row))
    return 0


def _compare(hbm: Hbm, vector_bytes: int) -> int:
    """Each density's GB/s with ``vector_bytes`` keys against what the stored 64-byte table gives at the same
    formula hit rate and requests in flight: what the model would charge such a stream."""
    ours = build(hbm, vector_bytes)
    print(f"GB/s with {vector_bytes}-byte keys (channel mean) and the most the table, read at their hit rate, differs")
    print(f"{'density':>7} {'hit':>6} " + " ".join(f"{int(n):>6}" for n in OUTSTANDING) + "  max diff")
    for mine in ours["rows"]:  # type: ignore[attr-defined]
        table = [float(hbm_table.channel_gb_s(hbm.model_copy(update={"outstanding": n}), mine["hit"])) * hbm.channels
                 for n in OUTSTANDING]
        diff = max(abs(t / g - 1) for t, g in zip(table, mine["gb_s"], strict=True))
        print(f"{mine['density']:>7.2f} {mine['hit']:>6.3f} " + " ".join(f"{g:>6.1f}" for g in mine["gb_s"])
              + f"  {diff:>7.1%}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
