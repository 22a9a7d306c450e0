"""spatten-top RTL against its golden through the fastbench: Icarus on a small synthetic pass (refused
descriptors first), Verilator on all 6 MiniLM layers of a 128-token text. Both are long: slow set."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from attnforge.rtl.fastbench import simulators
from attnforge.sim.spatten.realdata import minilm_path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "rtl" / "benches"))
from fast_jobs import MINILM_TOP, spatten_top_minilm_job  # noqa: E402
from tb_spatten_top import run_top_case  # noqa: E402

from attnforge.rtl.fastbench import run_raw  # noqa: E402


@pytest.mark.slow
@pytest.mark.skipif("icarus" not in simulators(), reason="needs Icarus")
def test_small_pass_icarus():
    """Ten bad descriptors answered err=1 (and idle again), then 2 pruned layers bit-exact with kept sets equal."""
    row = run_top_case({}, "icarus", "synthetic 2x12", layers=2, length=12)
    assert row["passed"], row
    assert row["refused_descriptors"] == 10 and row["kept_tokens_heads"][-1] < row["kept_tokens_heads"][0]


@pytest.mark.slow
@pytest.mark.skipif("verilator" not in simulators() or minilm_path() is None, reason="needs Verilator and MiniLM")
def test_minilm_whole_model_verilator(tmp_path):
    """All 6 layers, every alive head and query: outputs bit-exact (so kept tokens and heads per layer equal the
    golden's), answers equal; the pass's float errors as measured by the golden comparison."""
    job, exp, run, cmp = spatten_top_minilm_job()
    assert job.params == {**job.params, **MINILM_TOP}
    res = run_raw(job, "verilator", tmp_path)
    assert res.outputs["r"] == exp["r"]
    assert res.outputs["o"] == exp["o"]
    assert cmp.counts_match and cmp.same_final_tokens and cmp.rel_err_pruned < 0.05
