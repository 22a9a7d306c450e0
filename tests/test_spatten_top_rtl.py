"""spatten-top RTL against its golden through the fastbench: Icarus on a small synthetic pass (refused
descriptors first), Verilator on all 6 MiniLM layers of a 128-token text (both long: slow set), each row's cycles
equal to the cycle model's (attnforge.sim.spatten.top_cycle_model) and within 5% of the analytical model's
(attnforge.sim.spatten.top_analytical); and, fast, the cycle model's memory requests
against the fetchers' rule."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from attnforge.rtl.fastbench import simulators
from attnforge.sim.contract.designs import _top
from attnforge.sim.spatten.realdata import minilm_path
from attnforge.sim.spatten.top_cycle_model import top_cycles

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "rtl" / "benches"))
from fast_jobs import spatten_top_job  # noqa: E402
from tb_spatten_top import run_decode_case, run_minilm, run_top_case  # noqa: E402

from attnforge.sim.spatten.top_golden import LayerCfg  # noqa: E402


@pytest.mark.slow
@pytest.mark.skipif("icarus" not in simulators(), reason="needs Icarus")
def test_small_pass_icarus():
    """Seventeen bad descriptors answered err=1 (and idle again), then 2 pruned layers bit-exact with kept sets
    equal."""
    row = run_top_case({}, "icarus", "synthetic 2x12", layers=2, length=12)
    assert row["passed"], row
    assert row["refused_descriptors"] == 17 and row["kept_tokens_heads"][-1] < row["kept_tokens_heads"][0]
    # the cycle model (attnforge.sim.spatten.top_cycle_model) makes the same fetches and takes the same cycles
    assert row["sim_mem_requests"] == row["mem_requests"]
    assert row["sim_cycles"] == row["rtl_cycles"], row
    # the analytical model (attnforge.sim.spatten.top_analytical) at the instance's arch, within 5%
    assert abs(row["analytical_cycles"] / row["rtl_cycles"] - 1) < 0.05, row


@pytest.mark.slow
@pytest.mark.skipif("icarus" not in simulators(), reason="needs Icarus")
@pytest.mark.parametrize("kw", [{"v_ratio": 0.0, "seed": 5}, {"threshold": 1.0, "seed": 1, "d": 4, "junk": 2},
                                {"v_ratio": 0.5, "threshold": 1e-4, "seed": 3}])
def test_cycle_model_exact_icarus(kw):
    """Every V row kept; every row refetched (head dimension 4 on the max_d = 8 instance, random codes in the
    rows' upper lanes); half the V rows pruned and none refetched (top-k output rows of count 0 and 1): the cycle
    model equals the RTL's cycles on each."""
    row = run_top_case({}, "icarus", "synthetic 2x8", layers=2, length=8, **kw)
    assert row["passed"], row
    assert row["sim_cycles"] == row["rtl_cycles"], row


@pytest.mark.slow
@pytest.mark.skipif("verilator" not in simulators() or minilm_path() is None, reason="needs Verilator and MiniLM")
def test_minilm_whole_model_verilator():
    """All 6 layers, every alive head and query: outputs bit-exact (so kept tokens and heads per layer equal the
    golden's), answers equal; the pass's float errors against the numpy pruned model and PyTorch's unpruned MiniLM."""
    row = run_minilm("verilator")
    assert row["passed"], row
    assert row["layers"] == 6 and tuple(row["kept_tokens_heads"][0]) == (128, 12)
    assert row["float_rel_error_vs_pruned"] < 0.05 and row["unpruned_reference"] == "torch"
    assert row["sim_cycles"] == row["rtl_cycles"] and row["sim_mem_requests"] == row["mem_requests"], row
    assert abs(row["analytical_cycles"] / row["rtl_cycles"] - 1) < 0.05, row  # the third fidelity, same row


@pytest.mark.skipif("icarus" not in simulators(), reason="needs Icarus")
def test_decode_step_icarus():
    """A generation step (queries = 1) over 3 layers with token and head pruning, after the 17 bad descriptors
    (queries = 0, queries > tokens and head dimensions outside the tree's taps among them): one output per alive
    head and layer, bit-exact with the golden, kept counts as described, cycles and memory requests equal to the
    cycle model's. Heads of dimension 4 on the max_d = 8 instance, whose rows' upper lanes hold random codes the
    top must ignore (the outputs' upper lanes are zero). Layer 1 has two jobs only, both Q rows requested before
    either enters the pipeline: the layer must still wait for them. Then a second iteration with the importance
    carried (``carry``: the list restarts from the 25-token context, the newest token kept beside the top 17 of the
    others by the accumulated importance, and kept again in the next layer), the analytical within 5%."""
    layers = [LayerCfg(24, 4, 8, 205, queries=1), LayerCfg(16, 2, 6, 205, queries=1), LayerCfg(9, 2, 4, 205, queries=1)]
    later = [[LayerCfg(18, 4, 8, 205, queries=1, restart=25), LayerCfg(12, 2, 5, 205, queries=1, keep_last=True)]]
    row = run_decode_case({}, "icarus", layers, d=4, junk=3, later=later)
    assert row["passed"], row
    assert row["refused_descriptors"] == 17 and row["outputs"] == 4 + 2 + 2 + 4 + 2
    assert row["kept_tokens_heads"] == [(24, 4), (16, 2), (9, 2), (18, 4), (12, 2)]
    assert row["sim_cycles"] == row["rtl_cycles"] and row["sim_mem_requests"] == row["mem_requests"], row
    assert abs(row["analytical_cycles"] / row["rtl_cycles"] - 1) < 0.05, row


def _runs(ids: list[int]) -> int:
    return 1 + sum(1 for a, b in zip(ids, ids[1:], strict=False) if b != a + 1)


def test_cycle_model_requests_are_the_fetchers():
    """The walk's port carries exactly the top's fetches: one Q row per job, one K burst per run of consecutive
    alive tokens per pass (two passes on a refetch), one V row per kept index."""
    job, _, run = spatten_top_job({}, layers=2, length=8, seed=4)
    t = _top(job.params)
    got = top_cycles(run, t, job.mem_timing["mem"], refusals=3)
    want = 0
    for lr in run.layers:
        alive = lr.alive.tolist()
        for hi in range(lr.heads.size):
            for pi in range(lr.out.shape[1]):  # the query rows
                want += 1 + _runs(alive) * (2 if lr.refetch[hi, pi] else 1) + len(lr.kept_v[hi][pi])
    assert got["requests"] == want
    # a refused descriptor is answered in 3 cycles (IDLE -> CHECK -> ERR -> IDLE), before the first good one
    assert got["cycles"] == top_cycles(run, t, job.mem_timing["mem"])["cycles"] + 9
