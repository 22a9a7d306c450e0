"""Fastbench: HDL-side stimulus and sinks generated from the stream contract; raw and cocotb drivers agree with
the golden model bit for bit and with the exact cycle model cycle for cycle (and under random back-pressure)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from attnforge.rtl.fastbench import FastJob, run_cocotb, run_raw, wrapper_verilog
from attnforge.rtl.regress import BENCHES, available
from attnforge.sim.specs.errors import SpecError

sys.path.insert(0, str(BENCHES))
from fast_jobs import fusemax_tile_job  # noqa: E402


def _need(sim: str) -> None:
    if available(sim):
        pytest.skip(f"{sim}: {available(sim)}")


#: (simulator, queries, keys): a short run on Icarus in the fast set; a longer head (64 x 64) through cocotb on
#: Verilator in the slow set. The raw driver on Verilator runs the whole layers of tests/test_fusemax_top.py (whose
#: engine is this tile) and tests/test_spatten_top_rtl.py; the cocotb driver on Icarus is slow-marked: the fast set
#: runs it in tests/test_memport_rtl.py.
RUNS = [pytest.param(run_raw, "icarus", 8, 32, id="raw-icarus-8-32"),
        pytest.param(run_cocotb, "icarus", 8, 32, marks=pytest.mark.slow, id="cocotb-icarus-8-32"),
        pytest.param(run_cocotb, "verilator", 64, 64, marks=pytest.mark.slow, id="cocotb-verilator-64-64")]


@pytest.mark.parametrize("run,sim,queries,keys", RUNS)
def test_tile_run_is_bit_and_cycle_exact(run, sim: str, queries: int, keys: int, tmp_path: Path) -> None:
    _need(sim)
    job, expect, model = fusemax_tile_job(queries=queries, keys=keys)
    job.quick_build = True  # a head of a few thousand cycles: Verilator's build is what waits
    r = run(job, sim, tmp_path)
    assert r.outputs == expect and r.cycles == model


def test_back_pressure_keeps_results_and_only_adds_cycles(tmp_path: Path) -> None:
    _need("icarus")
    job, expect, model = fusemax_tile_job(queries=8, keys=32, p_valid=0.6, p_ready=0.5)
    r = run_raw(job, "icarus", tmp_path)
    assert r.outputs == expect and r.cycles > model


def test_wrapper_names_every_stream_and_refuses_bad_rates() -> None:
    job, _, _ = fusemax_tile_job(queries=4, keys=16)
    v = wrapper_verilog("fusemax_tile", {"cfg": (20, "in"), "q": (32, "in"), "k": (32, "in"), "v": (32, "in"),
                                         "o": (64, "out")}, job)
    assert all(f".{s}__payload(" in v for s in ("cfg", "q", "k", "v", "o")) and '$readmemh("q.hex"' in v
    bad = FastJob(job.design, job.params, job.inputs, job.outputs, p_valid=0.0)
    with pytest.raises(SpecError, match="p_valid"):
        wrapper_verilog("fusemax_tile", {"o": (64, "out")}, bad)


@pytest.mark.slow
def test_bench_rtl_runs_every_design_checked() -> None:
    """``attnforge bench --rtl`` times the tile engine and both tops, raw and through cocotb, and every row is bit
    exact and cycle exact against the design's exact cycle model."""
    from attnforge.bench_rtl import rtl_speed

    rows = rtl_speed(["icarus"])
    assert {(r["design"], r["mode"]) for r in rows} == {(d, m) for d in ("fusemax-tile", "fusemax-top", "spatten-top")
                                                        for m in ("raw", "cocotb")}
    assert all(r["bit_exact"] and r["cycles_match_model"] for r in rows), rows
    assert pytest.raises(SpecError, rtl_speed, ["icarus"], designs=["nope"])
