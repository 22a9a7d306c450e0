"""``attnforge bench --rtl``: simulated cycles per second of long RTL runs, raw and through cocotb, per simulator.

Both modes run the same fastbench wrapper (rtl/fastbench.py) on the same job, so the ratio is cocotb's cost alone.
Each run is also checked: outputs bit-exact with the golden model and cycles equal to the exact cycle model (a
benchmark that computed the wrong thing fast would be worthless).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path
from typing import Any

from attnforge.rtl.fastbench import FastJob, run_cocotb, run_raw, simulators
from attnforge.rtl.regress import BENCHES
from attnforge.sim.specs.errors import SpecError

#: Job sizes: (queries, keys) of one BERT-Base-shaped head (d_head 64 at e=f=8 lanes of the 4x4 build keeps
#: Icarus runs in seconds; Verilator gets the longer one).
SIZES = {"icarus": (16, 64), "verilator": (256, 256)}


def _job(sim: str) -> tuple[FastJob, dict[str, list[int]], int]:
    if str(BENCHES) not in sys.path:
        sys.path.insert(0, str(BENCHES))
    from fast_jobs import fusemax_tile_job

    q, k = SIZES[sim]
    return fusemax_tile_job(queries=q, keys=k)


def rtl_speed(sims: list[str] | None = None, modes: tuple[str, ...] = ("raw", "cocotb")) -> list[dict[str, Any]]:
    """One row per (design, simulator, mode): cycles, seconds, cycles_per_s, and the two checks."""
    avail = list(simulators())
    sims = sims or avail
    for s in sims:
        if s not in avail:
            raise SpecError("--sim", f"{s} is not available here", avail)
    rows = []
    with tempfile.TemporaryDirectory(prefix="attnforge-bench-") as tmp:
        for sim in sims:
            job, expect, model = _job(sim)
            for mode in modes:
                run = run_raw if mode == "raw" else run_cocotb
                r = run(job, sim, Path(tmp) / f"{sim}-{mode}")
                rows.append({"design": job.design, "simulator": sim, "mode": mode, "cycles": r.total_cycles,
                             "seconds": r.seconds, "cycles_per_s": r.cycles_per_s,
                             "bit_exact": r.outputs == expect, "cycles_match_model": r.cycles == model})
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'design':<14}{'simulator':<11}{'mode':<8}{'cycles':>10}{'seconds':>10}{'cycles/s':>13}  checks"]
    for r in rows:
        ok = "bit-exact, cycles = model" if r["bit_exact"] and r["cycles_match_model"] else "MISMATCH"
        lines.append(f"{r['design']:<14}{r['simulator']:<11}{r['mode']:<8}{r['cycles']:>10,}{r['seconds']:>10.3f}"
                     f"{r['cycles_per_s']:>13,.0f}  {ok}")
    return "\n".join(lines)
