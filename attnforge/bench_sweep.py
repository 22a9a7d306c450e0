"""``attnforge bench``: analytical engine evaluations per second, and sweep points per second end to end.

The sweep benchmark runs a real grid (clock x buffer bytes x DRAM bandwidth x lengths x batches, two accelerators)
through :func:`attnforge.sweep_runner.run_sweep` on the local backend with one worker, writing the parts,
``results.csv`` and ``results.parquet`` to a temporary folder: every cost a user's sweep pays is in the figure.
"""

from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from attnforge.sim.specs.errors import SpecError

#: The sweep benchmark's grid without its bandwidth axis: 2 accelerators x 10 lengths x 4 batches x 5 clocks x
#: 6 buffer sizes = 2,400 points per DRAM bandwidth; --points picks how many bandwidths (at least one).
SWEEP_BASE = {
    "accelerators": ["fusemax", "flat"],
    "workloads": ["bert-base"],
    "seq_lens": ["1k", "2k", "4k", "8k", "16k", "32k", "64k", "128k", "256k", "1m"],
    "batch": [1, 8, 16, 64],
}
CLOCKS = [500, 700, 940, 1200, 1500]
BUFFERS = [4 << 20, 8 << 20, 16 << 20, 32 << 20, 64 << 20, 128 << 20]


def engine_speed(accel: str = "fusemax", workload: str = "bert-base", points: int = 20000,
                 repeats: int = 5) -> dict[str, Any]:
    """Single-layer evaluations per second of one vectorised engine call over random (length, batch) points."""
    from attnforge.sim.analytical.engine import evaluate_scenario
    from attnforge.sim.specs.scenario import Scenario

    if not 1 <= points <= 10_000_000:
        raise SpecError("--points", f"{points} is outside 1..10,000,000")
    if repeats < 1:
        raise SpecError("--repeats", f"{repeats} must be at least 1")
    rng = np.random.default_rng(0)
    seqs = tuple(int(x) for x in (1 << rng.integers(8, 21, size=points)))
    batch = tuple(int(x) for x in rng.integers(1, 65, size=points))
    base = Scenario.build(accelerator=accel, workload=workload, seq_lens=[1024])
    sc = base.with_(p=seqs, m=seqs, batch=batch)
    evaluate_scenario(base)  # warm caches and imports
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        evaluate_scenario(sc)
        best = min(best, time.perf_counter() - t0)
    return {
        "evals_per_s": points / best,
        "points": points,
        "accelerator": accel,
        "workload": workload,
        "shapes": {"seq_len": "2^8..2^20 (P = M)", "batch": "1..64", "scope": "attention, single layer"},
        "best_of": repeats,
        "seconds": best,
        "attnforge_version": sc.version,
    }


def sweep_spec(points: int = 20000) -> Any:
    """The benchmark's grid: at least ``points`` points (a multiple of 2,400)."""
    from attnforge.sweep_runner import SweepSpec

    if not 1 <= points <= 100_000_000:
        raise SpecError("--points", f"{points} is outside 1..100,000,000")
    per_bw = math.prod(len(v) for v in SWEEP_BASE.values()) * len(CLOCKS) * len(BUFFERS)
    k = max(1, -(-points // per_bw))
    bws = [float(100 + 25 * i) for i in range(k)]
    return SweepSpec(name="bench-sweep", **SWEEP_BASE,  # type: ignore[arg-type]
                     arch={"clock_mhz": CLOCKS, "buffer.bytes": BUFFERS, "dram.bandwidth_gib_s": bws})


def sweep_speed(points: int = 20000, engine_points: int = 20000) -> dict[str, Any]:
    """Points per second of a real sweep end to end (expand, validate, evaluate, parts, Pareto, CSV + Parquet), one
    worker, beside the engine's own rate measured in the same process.

    A small sweep (one bandwidth, 2,400 points) runs first, untimed, so the figure is the sweep's rate rather than
    the process's one-time imports; ``cpu_seconds`` (this process's CPU time over the same run) and the load
    average say how much a busy machine stretched the wall time."""
    import os

    from attnforge.sweep_runner import MAX_POINTS, estimate, local_backend, run_sweep

    spec = sweep_spec(points)
    _, n = estimate(spec)
    with tempfile.TemporaryDirectory(prefix="attnforge-bench-sweep-") as tmp:
        run_sweep(sweep_spec(1), Path(tmp) / "warm-up", local_backend(1), progress=False)
        t0, c0 = time.perf_counter(), time.process_time()
        df = run_sweep(spec, Path(tmp) / "out", local_backend(1), progress=False, max_points=max(MAX_POINTS, n))
        seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
        wrote = sorted(p.name for p in (Path(tmp) / "out").glob("results.*"))
    assert len(df) == n
    eng = engine_speed(points=engine_points, repeats=3)
    return {"points": n, "seconds": seconds, "points_per_s": n / seconds, "engine_evals_per_s": eng["evals_per_s"],
            "cpu_seconds": cpu, "points_per_cpu_s": n / cpu if cpu > 0 else None,
            "load_average_1min": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "workers": 1, "backend": "local", "wrote": wrote,
            "grid": {"accelerators": SWEEP_BASE["accelerators"], "workloads": SWEEP_BASE["workloads"],
                     "seq_lens": len(SWEEP_BASE["seq_lens"]), "batch": len(SWEEP_BASE["batch"]),
                     "clock_mhz": len(CLOCKS), "buffer.bytes": len(BUFFERS),
                     "dram.bandwidth_gib_s": len(spec.arch["dram.bandwidth_gib_s"])}}


def format_all(engine: dict[str, Any], sweep: dict[str, Any], rtl: list[dict[str, Any]] | None) -> str:
    """One table: the engine, the sweep end to end, and each RTL simulator run."""
    lines = [f"{'benchmark':<34}{'rate':>16}  {'unit':<22}detail",
             f"{'engine (vectorised call)':<34}{engine['evals_per_s']:>16,.0f}  {'evaluations/s':<22}"
             f"{engine['points']:,} points, best of {engine['best_of']}",
             f"{'sweep end to end (1 worker)':<34}{sweep['points_per_s']:>16,.0f}  {'points/s':<22}"
             f"{sweep['points']:,} points in {sweep['seconds']:.2f} s ({sweep['cpu_seconds']:.2f} s CPU), CSV + Parquet"]
    for r in rtl or []:
        ok = "bit-exact, cycles = model" if r["bit_exact"] and r["cycles_match_model"] else "MISMATCH"
        lines.append(f"{'RTL ' + r['design'] + ' ' + r['simulator'] + ' ' + r['mode']:<34}{r['cycles_per_s']:>16,.0f}"
                     f"  {'cycles/s':<22}{r['cycles']:,} cycles in {r['seconds']:.2f} s, {ok}")
    return "\n".join(lines)
