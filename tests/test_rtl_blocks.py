"""cocotb regressions of every RTL block, launched from pytest through the one runner (rtl.regress).

The same benches (rtl/benches/tb_*.py) run on Icarus and Verilator; each bench compares bit for bit
with sim.fusemax.golden, checks cycles against sim.fusemax.cycle_model, and fails the pytest test on any mismatch.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from attnforge.rtl.regress import FAST_BENCHES, Case, available, default_cases, run_case
from attnforge.sim.contract import FM_ACC_PIPE, FM_EXP_PIPE, vec_latency
from attnforge.sim.fusemax.cycle_model import tile_schedule, vector1d_cycles

SIMS = ("icarus", "verilator")


def _require(sim: str) -> None:
    reason = available(sim)
    if reason:
        pytest.skip(f"{sim}: {reason}")


def _check_rows(rows: list[dict]) -> None:
    bad = [r for r in rows if not r.get("passed")]
    assert not bad, bad
    assert all(r.get("max_abs_error") in (0, None) for r in rows)


#: Icarus runs the quick set in the fast loop; Verilator's C++ builds (8-18 s each on 2 cores) run in the slow set,
#: which CI runs too, so both simulators stay covered while the README's test command stays under 3 minutes.
#: the quick cases run on Icarus; every design's long case (below) runs the same benches on Verilator as well (or,
#: for LONG_ON_ICARUS blocks, the design that holds them does), so a Verilator copy of the quick cases would only
#: rebuild and rerun a subset of it in the slow set
QUICK_SIMS = ("icarus",)
#: the long cases run on Verilator: the same benches at simulator speed (Icarus runs every design's quick cases above,
#: so both simulators see every bench; Icarus on the long shapes would cost most of the CI budget), except the
#: LONG_ON_ICARUS blocks below, which Verilator meets inside the design that holds them
LONG_SIMS = ("verilator",)


#: SpAtten blocks that spatten-pipeline's quick case runs inside it (bit and cycle exact against the same golden):
#: their own quick cases run in the slow set, which keeps the README's test command under 3 minutes on 2 cores
IN_PIPELINE = ("qk", "softmax", "progquant", "pv")
#: FuseMax blocks that fusemax-tile's quick case runs inside it (its 2D array is array2d's grid of pe's core, its 1D
#: array vector1d's core: rtl/fusemax_tile.py), bit and cycle exact against the same golden: the same reason
IN_TILE = ("pe", "array2d", "vector1d")


#: designs whose own test module runs a superset of their quick case on the same simulator and build
#: (tests/test_rtl_topk.py::test_topk_quick: the default set's top-k case, the quick one's shapes and one more), and
#: their long case too (tests/test_rtl_topk.py::test_topk_long: the same case with stricter checks; both here
#: simulated it twice on Icarus, 25 s and 9 s in one CI run)
OWN_QUICK = ("topk",)


@pytest.mark.parametrize("sim", QUICK_SIMS)
@pytest.mark.parametrize("case", [pytest.param(c, id=c.design, marks=[pytest.mark.slow]
                                               if c.design in IN_PIPELINE + IN_TILE else []) for c in default_cases(quick=True)
                                  # fastbench designs and OWN_QUICK: their own tests
                                  if c.design not in FAST_BENCHES and c.design not in OWN_QUICK])
def test_block_quick(case: Case, sim: str) -> None:
    _require(sim)
    rows = run_case(case, sim)
    _check_rows(rows)
    assert {r["workload"] for r in rows} >= {"reset-midrun"}
    if case.design == "fusemax-tile":
        exact = [r for r in rows if not r.get("backpressure")]
        assert exact and all(r["rtl_cycles"] == r["sim_cycles"] for r in exact)
        assert any(r["workload"].startswith("equal-scores") for r in rows)
        wl = [r for r in rows if r["workload"] == "bert-base"]
        assert wl and all(r["float_max_abs_error"] <= r["float_bound"] for r in wl)
        assert all(r["steady_mac_utilization"] >= 0.9 for r in wl)  # M = 4 x rows


def test_failure_is_reported(tmp_path: Path) -> None:
    """A bench that cannot pass (wrong workload name) must come back as a failed row, not silently pass."""
    _require("icarus")
    # the quick set's pe instance: its Icarus build is shared with test_block_quick (same parameters, same folder)
    case = Case("pe", {"depth": 64}, workloads=["no-such-model"], shapes=[(12, 64)], testcases=["test_workloads"])
    rows = run_case(case, "icarus", tmp_path)
    assert rows and not all(r["passed"] for r in rows)


def test_vector1d_cycle_model_orders_results() -> None:
    """The 1D unit's results leave in command order, each ``vec_latency`` after its command: a short op after a
    long one waits until it cannot overtake it, a recip waits for an empty datapath and blocks until its quotient."""
    qw = 25
    assert vec_latency("max", qw) == 1 and vec_latency("mul", qw) == FM_ACC_PIPE
    assert vec_latency("exp", qw) == 1 + FM_EXP_PIPE and vec_latency("recip", qw) == qw + 2
    assert vector1d_cycles(["max"] * 5, qw) == 5  # one a cycle
    assert vector1d_cycles(["mul"] * 5, qw) == 4 + FM_ACC_PIPE
    assert vector1d_cycles(["exp", "max"], qw) == 1 + FM_EXP_PIPE + 1  # the max waits for the exp's result
    assert vector1d_cycles(["exp", "mul"], qw) == 1 + FM_EXP_PIPE + 1  # the mul's result lands right after it
    assert vector1d_cycles(["max", "exp"], qw) == 1 + 1 + FM_EXP_PIPE  # a longer op follows at once
    assert vector1d_cycles(["mul", "recip", "max"], qw) == FM_ACC_PIPE + qw + 2 + 1


def test_utilization_target_in_cycle_model() -> None:
    """>= 90% 2D MAC utilization in steady state once M >= 4 x rows, for heads long enough to hide the softmax step
    (E >= 16 at rows <= 8); a short head (E = 8) makes the MACs wait for SLN, which the model must show."""
    assert tile_schedule(4, 4, 8, 8, 4).steady_utilization < 0.9
    for e in (16, 32, 64):
        for rows in (4, 8):
            s = tile_schedule(rows, 4, e, e, 4)
            assert s.steady_utilization >= 0.9, (e, rows, s.steady_utilization)
            assert s.mac_cycles == 4 * 2 * e


#: the tops' whole-layer cases have their own slow tests (tests/test_fusemax_top.py, tests/test_spatten_top_rtl.py)
#: with the assertions they need; running them here too would simulate the same layers twice
WHOLE_LAYER_TOPS = ("fusemax-top", "spatten-top")


#: the four SpAtten blocks' long cases are at their default size, and spatten-pipeline's long case runs all four at
#: 64 lanes on Verilator: these run on Icarus (33 s for the four against 111-126 s of Verilator builds and runs), so
#: each block's own bench still meets both simulators (Verilator through the pipeline's bench, which holds them)
#: The FuseMax blocks likewise: pe, array2d and vector1d are the cores of fusemax-tile (IN_TILE), whose long case at
#: seed 2 runs on Verilator (the same per-cycle bench kind) and which fusemax-top's whole layers build on Verilator
#: too; on Icarus their long cases took 9, 16 and 25 s against 20-42 s of Verilator builds and runs, and the tile's
#: shortest-head case (seed 4: a few hundred cycles per head) 16 s against 42 s. The tile's long-head case (seed 2)
#: stays on Verilator: Icarus took 178 s for it. The importance accumulators' long case (256 tokens, 16 heads, 64
#: lanes) took 45 s on Icarus against 93-107 s of Verilator build and run, and Verilator meets the block inside
#: spatten-top's whole MiniLM model (tests/test_spatten_top_rtl.py); so does the top-k engine, whose long case (16
#: comparators, rows of 37-256: tests/test_rtl_topk.py::test_topk_long) took 19 s on Icarus against 44-51 s.
#: spatten-pipeline's stays on Verilator (Icarus: 206 s against 127-144 s).
LONG_ON_ICARUS = IN_PIPELINE + IN_TILE
#: (design, seed) of further long cases that run on Icarus
LONG_CASES_ON_ICARUS = (("fusemax-tile", 4), ("importance", 1))


def _long_cases() -> list:
    cases = [c for c in default_cases(slow=True)[len(default_cases()):]
             if c.design not in WHOLE_LAYER_TOPS and c.design not in OWN_QUICK]
    return [pytest.param(c, s, id=f"{c.design}-{c.seed}-{s}") for c in cases
            for s in (("icarus",) if c.design in LONG_ON_ICARUS or (c.design, c.seed) in LONG_CASES_ON_ICARUS
                      else LONG_SIMS)]


@pytest.mark.slow
@pytest.mark.parametrize("case,sim", _long_cases())
def test_block_long(case: Case, sim: str) -> None:
    _require(sim)
    if sim not in case.extra.get("sims", SIMS):
        pytest.skip(f"{case.design} runs on {case.extra['sims']} only")
    _check_rows(run_case(case, sim))


@pytest.mark.slow
def test_softmax_one_score_per_beat() -> None:
    """At one score per beat (S = 1: lanes 2, D 2) the softmax's row buffer is written straight from the load beat,
    not through the register every wider instance has (``vmax_levels(1)`` leaves MAX no cycle to hide it): the
    quick case at that instance, bit and cycle exact, refusals included."""
    _require("icarus")
    from attnforge.cli.rtl import _with_params

    quick = [c for c in default_cases(quick=True) if c.design == "softmax"]
    (case,) = _with_params(quick, "softmax", ["lanes=2", "min_d=2", "max_d=2"])
    rows = run_case(case, "icarus")
    _check_rows(rows)
    assert len(rows) >= 5 and any("reset" in r["workload"] for r in rows)
