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
