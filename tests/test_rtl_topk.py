"""SpAtten top-k engine: the RTL regression on Icarus and Verilator (through rtl.regress.run_case) and pure-python
tests of its golden / cycle model (sim.spatten.topk_golden) against the algorithm golden (sim.spatten.topk_algorithm)."""

from __future__ import annotations

import numpy as np
import pytest

from attnforge.rtl.regress import Case, available, default_cases, run_case
from attnforge.sim.spatten.topk_algorithm import quick_select
from attnforge.sim.spatten.topk_golden import cycles, decode_beats, hw_topk, input_beats, output_beats, print_cycle_table
from attnforge.sim.specs.errors import SpecError


def _case(slow: bool) -> Case:
    cases = [c for c in default_cases(slow=slow) if c.design == "topk"]
    return cases[-1]


def _run(case: Case, sim: str) -> list[dict]:
    reason = available(sim)
    if reason:
        pytest.skip(f"{sim}: {reason}")
    rows = run_case(case, sim)
    bad = [r for r in rows if not r.get("passed")]
    assert not bad, bad
    names = {r["workload"] for r in rows}
    assert {"corners", "random-stalls", "reset-midrun", "reset-during-load"} <= names
    assert set(case.workloads) <= names
    exact = [r for r in rows if not r.get("backpressure") and r.get("sim_cycles") is not None]
    assert exact and all(r["rtl_cycles"] == r["sim_cycles"] for r in exact)
    assert all(r["max_abs_error"] == 0 for r in rows)
    return rows


@pytest.mark.parametrize("sim", ("icarus", pytest.param("verilator", marks=pytest.mark.slow)))
def test_topk_quick(sim: str) -> None:
    _run(_case(slow=False), sim)


@pytest.mark.slow
@pytest.mark.parametrize("sim", ("icarus",))
def test_topk_long(sim: str) -> None:
    """The long case (16 comparators, rows of 37-256) on Icarus: 19-25 s against 40-51 s of Verilator build and
    run, and Verilator meets the engine in test_topk_quick's slow copy and inside spatten-top's whole MiniLM model
    (tests/test_spatten_top_rtl.py), as tests/test_rtl_blocks.py's LONG_ON_ICARUS blocks do."""
    case = _case(slow=True)
    assert case.params["comparators"] == 16 and max(n for _, n in case.shapes) == 256
    _run(case, sim)


def test_registry_rejects_bad_comparators() -> None:
    from attnforge.rtl.registry import parse_params

    with pytest.raises(SpecError):
        parse_params("topk", ["comparators=6"])
    assert parse_params("topk", [])["comparators"] == 16


# ---------------------------------------------------------------- pure python


@pytest.mark.parametrize("seed", range(6))
def test_golden_matches_quick_select(seed: int) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(200):
        n = int(rng.integers(1, 300))
        k = int(rng.integers(1, n + 1))
        hi = int(rng.choice([3, 20, 128]))
        x = rng.integers(-hi, hi, n).tolist()
        hw = hw_topk(x, k, 16)
        ref = quick_select(np.array(x), k)  # rng=None: first-element pivots, the RTL's rule
        assert hw.indices == ref.indices.tolist()
        assert len(hw.indices) == k
        assert hw.kth == ref.kth and hw.keep_equal == ref.keep_equal and hw.rounds == ref.rounds
        # the kept set really is a top-k: nothing outside beats anything inside
        out = [x[i] for i in range(n) if i not in set(hw.indices)]
        assert not out or max(out) <= min(hw.values)


def test_paper_example_and_ties() -> None:
    # Fig. 9 with integers: [0.6, 0.1, 0.5, 1.2, 0.6], k = 3 -> keep 0.6, 1.2, 0.6 (two ties)
    r = hw_topk([6, 1, 5, 12, 6], 3, 4)
    assert r.indices == [0, 3, 4] and r.kth == 6 and r.keep_equal == 2
    assert hw_topk([5] * 10, 4, 4).indices == [0, 1, 2, 3]
    assert hw_topk([1, 2, 3], 3, 4).indices == [0, 1, 2]


def test_beats_roundtrip() -> None:
    rng = np.random.default_rng(1)
    x = rng.integers(-128, 128, 37).tolist()
    beats = output_beats(x, 9, 4, 8, 64)
    assert len(beats) == 10 and len(input_beats(x, 9, 4, 8, 64)) == 10
    got = decode_beats(beats, 4, 8, 64)
    r = hw_topk(x, 9, 4)
    assert got == list(zip(r.indices, r.values, strict=True))


def test_cycle_model_formula_and_sanity() -> None:
    # all equal: one round -> R0 + D + 2 + F + R0 (D = F = 5 pipeline stages)
    assert cycles([3] * 64, 10, 16) == 4 + 5 + 2 + 5 + 4
    assert cycles([7], 1, 16) == 1 + 5 + 2 + 5 + 1
    rng = np.random.default_rng(2)
    for n in (16, 64, 256):
        for k in (1, n // 2, n):
            x = rng.integers(-128, 128, n).tolist()
            r = hw_topk(x, k, 16)
            r0 = -(-n // 16)
            assert r.cycles == 2 * r0 + 2 + 10 + sum(-(-m // 16) + 2 + 5 for m in r.round_sizes[1:])
            assert r.cycles >= 2 * r0 + 2 + 10
            assert r.cycles <= 2 * r0 + 2 + 10 + r.rounds * (r0 + 2 + 5)
            assert cycles(x, k, 4) >= r.cycles  # fewer comparators never faster
    # mean cycles grow with n
    means = [np.mean([cycles(rng.integers(-128, 128, n).tolist(), n // 4, 16) for _ in range(30)]) for n in (32, 128, 512)]
    assert means[0] < means[1] < means[2]


def test_errors() -> None:
    with pytest.raises(SpecError):
        hw_topk([1, 2, 3], 4)
    with pytest.raises(SpecError):
        hw_topk([1, 2, 3], 0)
    with pytest.raises(SpecError):
        hw_topk([], 1)
    with pytest.raises(SpecError):
        hw_topk([1, 2], 1, comparators=3)


def test_cycle_table_prints(capsys: pytest.CaptureFixture[str]) -> None:
    text = print_cycle_table(ns=(16, 64), ks_frac=(0.0, 1.0), trials=3)
    assert "cyc/elem" in text and len(text.splitlines()) == 5
