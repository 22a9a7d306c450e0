"""``attnforge bench --rtl``: simulated cycles per second of long RTL runs, raw and through cocotb, per simulator.

Both modes run the same fastbench wrapper (rtl/fastbench.py) on the same job, so the ratio is cocotb's cost alone.
Each run is also checked: outputs bit-exact with the golden model and cycles equal to the exact cycle model (a
benchmark that computed the wrong thing fast would be worthless).
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from attnforge.rtl.fastbench import FastJob, FastResult, run_cocotb, run_raw, simulators
from attnforge.rtl.regress import BENCHES
from attnforge.sim.specs.errors import SpecError

#: Job sizes per simulator: Icarus gets runs of seconds, Verilator long ones. fusemax-tile: (queries, keys) of one
#: head at the 4x4 e=f=8 build; fusemax-top: (heads, P, M) of a layer at 4x4, d 16; spatten-top: (layers, tokens) of
#: the synthetic encoder at its registry defaults.
SIZES = {"icarus": {"fusemax-tile": (16, 64), "fusemax-top": (1, 16, 16), "spatten-top": (2, 12)},
         "verilator": {"fusemax-tile": (256, 256), "fusemax-top": (4, 128, 128), "spatten-top": (3, 24)}}
FM_TOP = {"rows": 4, "cols": 4, "d": 16, "max_keys": 128, "max_queries": 128, "max_heads": 4}

Check = Callable[[FastResult], tuple[bool, bool | None]]  # (bit exact, cycles == the exact cycle model or None)


def _fast_jobs() -> Any:
    if str(BENCHES) not in sys.path:
        sys.path.insert(0, str(BENCHES))
    import fast_jobs

    return fast_jobs


def _tile(size: tuple[int, ...]) -> tuple[FastJob, Check]:
    job, expect, model = _fast_jobs().fusemax_tile_job(queries=size[0], keys=size[1])
    return job, lambda r: (r.outputs == expect, r.cycles == model)


def _fusemax_top(size: tuple[int, ...]) -> tuple[FastJob, Check]:
    from attnforge.sim.contract.memport import MemTiming
    from attnforge.sim.fusemax.top_cycle_model import top_schedule

    heads, p, m = size
    layer, timing = _fast_jobs().top_layer(FM_TOP, heads, p, m), MemTiming()
    model = top_schedule(FM_TOP["rows"], FM_TOP["cols"], FM_TOP["d"], heads, p, m, timing, FM_TOP["max_keys"])
    # the fastbench counts from the descriptor handshake to the perf beat, one after the last output, inclusive
    return (_fast_jobs().fusemax_top_job(layer, timing, "bench"),
            lambda r: (r.outputs["o"] == layer.expect and r.outputs["st"] == [0], r.cycles - 2 == model.total_cycles))


def _spatten_top(size: tuple[int, ...]) -> tuple[FastJob, Check]:
    from attnforge.sim.contract.designs import _top
    from attnforge.sim.spatten.top_cycle_model import top_cycles

    job, expect, run = _fast_jobs().spatten_top_job(layers=size[0], length=size[1])
    model = top_cycles(run, _top(job.params), job.mem_timing["mem"])["cycles"]
    return job, lambda r: (r.outputs == expect, r.cycles == model)


JOBS: dict[str, Callable[[tuple[int, ...]], tuple[FastJob, Check]]] = {
    "fusemax-tile": _tile, "fusemax-top": _fusemax_top, "spatten-top": _spatten_top}


def rtl_speed(sims: list[str] | None = None, modes: tuple[str, ...] = ("raw", "cocotb"),
              designs: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per (design, simulator, mode): cycles, seconds, cycles_per_s, and the two checks."""
    avail = list(simulators())
    sims = sims or avail
    for s in sims:
        if s not in avail:
            raise SpecError("--sim", f"{s} is not available here", avail)
    designs = designs or list(JOBS)
    for d in designs:
        if d not in JOBS:
            raise SpecError("--design", f"{d!r} has no RTL speed job", list(JOBS))
    rows = []
    with tempfile.TemporaryDirectory(prefix="attnforge-bench-") as tmp:
        for sim in sims:
            for design in designs:
                job, check = JOBS[design](SIZES[sim][design])
                for mode in modes:
                    run = run_raw if mode == "raw" else run_cocotb
                    r = run(job, sim, Path(tmp) / f"{design}-{sim}-{mode}")
                    exact, cycles_ok = check(r)
                    rows.append({"design": job.design, "simulator": sim, "mode": mode, "cycles": r.total_cycles,
                                 "seconds": r.seconds, "cycles_per_s": r.cycles_per_s,
                                 "bit_exact": exact, "cycles_match_model": cycles_ok})
    return rows


def format_rows(rows: list[dict[str, Any]]) -> str:
    lines = [f"{'design':<14}{'simulator':<11}{'mode':<8}{'cycles':>10}{'seconds':>10}{'cycles/s':>13}  checks"]
    for r in rows:
        if r["cycles_match_model"] is None:
            ok = "bit-exact (no cycle model)" if r["bit_exact"] else "MISMATCH"
        else:
            ok = "bit-exact, cycles = model" if r["bit_exact"] and r["cycles_match_model"] else "MISMATCH"
        lines.append(f"{r['design']:<14}{r['simulator']:<11}{r['mode']:<8}{r['cycles']:>10,}{r['seconds']:>10.3f}"
                     f"{r['cycles_per_s']:>13,.0f}  {ok}")
    return "\n".join(lines)
