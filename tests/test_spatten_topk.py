"""SpAtten top-k engine: 0-based quick-select, ties kept in input order, latency model against the reference."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnforge.sim.spatten.pruning import local_v_keep
from attnforge.sim.spatten.topk_algorithm import expected_topk, quick_select
from attnforge.sim.specs.errors import SpecError


def test_fig9_example_keeps_two_ties_in_order():
    r = quick_select(np.array([0.6, 0.1, 0.5, 1.2, 0.6]), 3)
    assert r.kth == 0.6 and r.keep_equal == 2
    assert r.indices.tolist() == [0, 3, 4]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-5, 5), min_size=1, max_size=60), st.data())
def test_matches_stable_sort(xs, data):
    k = data.draw(st.integers(0, len(xs)))
    a = np.array(xs, dtype=float)
    seed = data.draw(st.integers(0, 3))
    got = quick_select(a, k, rng=np.random.default_rng(seed)).indices
    want = np.sort(np.argsort(-a, kind="stable")[:k])
    assert got.tolist() == want.tolist()


def test_local_v_keep_agrees_with_quick_select():
    rng = np.random.default_rng(1)
    p = np.round(rng.random((3, 5, 17)), 1)  # many ties
    mask = local_v_keep(p, 0.4)
    for idx in np.ndindex(p.shape[:-1]):
        assert np.flatnonzero(mask[idx]).tolist() == quick_select(p[idx], 10).indices.tolist()


@pytest.mark.parametrize("k", [-1, 6])
def test_k_out_of_range(k):
    with pytest.raises(SpecError, match="outside"):
        quick_select(np.arange(5.0), k)


@pytest.mark.parametrize("n,k,ref", [(64, 32, 37), (1024, 102, 209), (1024, 512, 256), (4096, 32, 579)])
def test_latency_matches_reference_table(n, k, ref):
    cycles, _, rounds = expected_topk(n, k, 16, trials=2000)
    assert abs(cycles - ref) / ref < 0.05
    assert 5 < rounds < 14


def test_parallelism_scales_latency():
    c1 = expected_topk(1024, 102, 1)[0]
    c16 = expected_topk(1024, 102, 16)[0]
    assert c1 > 8 * c16


def test_refused_job_model() -> None:
    """The RTL's answer to a job it refuses: all of its beats consumed, one error beat, cycles = its beat count;
    a job it would run is not a refused job."""
    import pytest as _pytest

    from attnforge.sim.contract import designs
    from attnforge.sim.spatten.topk_golden import refused_job
    from attnforge.sim.specs.errors import SpecError

    o = designs.topk(16, 256, 8)["o"]
    for n, k, beats in ((0, 0, 1), (5, 0, 1), (5, 6, 1), (40, 41, 3), (300, 1, 19)):
        ins, outs, cyc = refused_job(n, k, 16, 8, 256)
        assert len(ins) == beats == cyc and o.unpack(outs[0])["error"] == 1 and o.unpack(outs[0])["last"] == 1
    with _pytest.raises(SpecError, match="valid job"):
        refused_job(5, 3, 16, 8, 256)


@pytest.mark.parametrize(("std", "draws"), [(1.5, None), (2.5, None), (4.0, None), (2.5, 64)])
def test_long_rows_are_drawn_as_histograms_of_the_same_codes(std: float, draws: int | None,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Past EXACT_ROW_MAX the engine's rows are drawn as (code, count) pairs from their largest scores only; the
    codes must be distributed as those of the whole row drawn score by score (how many are non-zero, their sum).
    ``draws`` 64: fewer scores drawn than codes are non-zero (~600 at this spread), so every row takes the retry
    with four times as many."""
    from attnforge.sim.spatten import topk_cycles
    from attnforge.sim.spatten.topk_cycles import _code_histogram, _row

    if draws is not None:
        monkeypatch.setattr(topk_cycles, "TAIL_DRAWS", draws)
    rng, n = np.random.default_rng(7), 70_000
    exact = [_row(rng, n, std, 12) for _ in range(120)]
    hists = [_code_histogram(rng, n, std, 12) for _ in range(120)]
    assert all(h is not None and int(h[1].sum()) == n for h in hists)
    nz_exact = np.mean([np.count_nonzero(r) for r in exact])
    nz_hist = np.mean([h[1][h[0] > 0].sum() for h in hists])
    assert nz_hist == pytest.approx(nz_exact, rel=0.1)
    assert np.mean([(h[0] * h[1]).sum() for h in hists]) == pytest.approx(np.mean([r.sum() for r in exact]), rel=0.1)


@pytest.mark.parametrize("k", [5, 50])
def test_long_row_rounds_match_the_exact_rows(k: int) -> None:
    """Quick-select's later rounds on histogram rows cost what they cost on the same rows drawn whole."""
    from attnforge.sim.spatten.topk_algorithm import round_cycles
    from attnforge.sim.spatten.topk_cycles import _round_sizes

    def later(exact_max: int) -> float:
        sizes, _ = _round_sizes(70_000, k, (2.5,), 64, 11, exact_max)
        return float(round_cycles(sizes, 16, 5).sum()) / 64

    assert later(1 << 16) == pytest.approx(later(1 << 30), rel=0.15)
    assert later(1 << 16) > 0  # the rounds past the first are really exercised


def test_a_hundred_million_keys_never_draw_a_whole_row(monkeypatch: pytest.MonkeyPatch) -> None:
    """A seq-len of 10^8 used to draw rows of 10^8 scores per trial (4 GB, an hour); now it costs a 64k row's
    time whatever n is: the whole-row sampler must not be reached."""
    from attnforge.sim.spatten import topk_cycles

    def refuse(*_a: object) -> None:
        raise AssertionError("a whole row was drawn")

    monkeypatch.setattr(topk_cycles, "_row", refuse)
    select, filt, _ = topk_cycles.engine_cycles(100_000_007, 75_000_005, 16, 16)
    assert select >= 100_000_007 / 16 and filt >= 100_000_007 / 16


@pytest.mark.parametrize("std", [20.0, 50.0, 200.0])
def test_long_rows_of_very_spread_scores_are_nearly_one_hot(std: float) -> None:
    """Score spreads far past any trained head's (e^(std^2/2) overflows a float from std ~38) give one
    probability of nearly 1 (exactly one non-zero code from ~50); the sum of the undrawn scores is taken in logs,
    so the draw does not overflow."""
    from attnforge.sim.spatten.topk_cycles import _code_histogram, _log_mean_exp_below

    codes, counts = _code_histogram(np.random.default_rng(0), 10**9, std, 12)
    assert int(counts.sum()) == 10**9 and (codes * counts).sum() <= 4096 and codes.max() >= 3900
    if std >= 50:
        assert codes.tolist() == [0.0, 4095.0] and counts.tolist() == [10**9 - 1, 1]
    # the far-tail branch (Mills' ratio, from std ~38 at lo = 1) continues the exact one: the step across the
    # switch equals the step just before it (the slope there is ~lo)
    across = _log_mean_exp_below(38.02, 1.0) - _log_mean_exp_below(37.98, 1.0)
    before = _log_mean_exp_below(37.98, 1.0) - _log_mean_exp_below(37.94, 1.0)
    assert across == pytest.approx(before, abs=1e-4) and 0.03 < before < 0.05
