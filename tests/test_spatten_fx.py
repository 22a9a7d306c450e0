"""The SpAtten fixed-point datapath golden (attnforge.sim.spatten.golden), its beat layouts and cycle models
(attnforge.sim.spatten.cycle_model), the cycle mode of the simulator, and the registry entries of its RTL blocks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attnforge.rtl.registry import parse_params
from attnforge.sim.spatten.cycle_model import MemoryModel, pipeline_cycles, qk_cycles, softmax_cycles
from attnforge.sim.spatten.golden import (
    QueryJob,
    SpattenFx,
    assemble,
    decide,
    dequantize,
    float_reference,
    pipeline,
    qk,
    row_refused,
    softmax,
    split_k,
    workload_jobs,
)
from attnforge.sim.spatten.topk_golden import hw_topk
from attnforge.sim.specs.errors import SpecError

CFG = SpattenFx()


def test_split_assemble_roundtrip() -> None:
    k = np.arange(-2048, 2048, 7).reshape(-1, 1)
    msb, lsb = split_k(k, CFG)
    assert np.array_equal(assemble(msb, lsb, CFG), k)
    assert np.array_equal(assemble(msb, None, CFG), (k >> 4) << 4)  # MSB-only: low bits read as zero


def test_softmax_sums_to_one_and_is_monotone() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        s = rng.integers(-(1 << 20), 1 << 20, int(rng.integers(1, 64)))
        p = softmax(s, 1 << 15, 30, CFG).probs
        assert abs(int(p.sum()) - (1 << CFG.prob_frac)) <= len(s)  # one rounding per element
        order = np.argsort(s)
        assert np.all(np.diff(p[order]) >= 0)


def test_equal_scores_give_uniform_probabilities() -> None:
    p = softmax(np.full(16, 5), 1 << 15, 30, CFG).probs
    assert len(set(p.tolist())) == 1 and p[0] == round((1 << CFG.prob_frac) / 16)


def test_decision_is_strict() -> None:
    assert decide(np.array([3, 9, 2]), 9) == (False, 9)
    assert decide(np.array([3, 9, 2]), 10) == (True, 9)


@pytest.mark.parametrize("name", ["bert-base", "gpt2-small", "minilm"])
def test_pipeline_close_to_float(name: str) -> None:
    """Golden output against float attention over the same kept V rows: within 1% of max|V|."""
    for job, (q, k, v) in workload_jobs(name, 48, 8, 8, CFG, kv_frac=0.5, threshold=0.1):
        res = pipeline(job, CFG)
        err = np.max(np.abs(dequantize(res.out, job, CFG) - float_reference(q, k, v, res.kept)))
        assert err <= 0.01 * np.max(np.abs(v)), err


def test_refetch_recomputes_with_full_keys() -> None:
    jobs = [j for j, _ in workload_jobs("bert-base", 32, 8, 4, CFG, threshold=1.0)]
    for job in jobs:
        res = pipeline(job, CFG)
        assert res.refetch  # a threshold of 1.0 always asks for LSBs
        assert np.array_equal(res.scores, qk(job.q, job.k, CFG))
        low = pipeline(QueryJob(job.q, job.k, job.v, job.kv, 0, job.alpha_q, job.alpha_sh), CFG)
        assert not low.refetch and np.array_equal(low.scores, qk(job.q, (job.k >> 4) << 4, CFG))


def test_kept_rows_follow_topk() -> None:
    job = workload_jobs("gpt2-small", 40, 4, 1, CFG, kv_frac=0.25)[0][0]
    res = pipeline(job, CFG)
    assert res.kept == hw_topk(res.probs.tolist(), job.kv, CFG.s).indices and len(res.kept) == job.kv


def test_memory_model_answers_requests() -> None:
    job = workload_jobs("bert-base", 20, 4, 1, CFG)[0][0]
    mem = MemoryModel(job, CFG)
    name, beats = mem.answer("kreq", 0)
    assert name == "kmem" and len(beats) == -(-20 * 4 // CFG.lanes)
    req = 3 | (7 << CFG.idx_bits) | (2 << (CFG.s * CFG.idx_bits))
    name, beats = mem.answer("vreq", req)
    assert name == "vmem" and mem.requests[-1] == (2, [3, 7]) and len(beats) == 1


def test_cycle_models_grow_with_work() -> None:
    tree = CFG.max_d.bit_length() - 1  # registered adder-tree levels
    assert qk_cycles(64, 4, CFG) == 64 // 4 + 1 + tree and qk_cycles(64, 8, CFG) == 64 // 2 + 1 + tree
    assert softmax_cycles(64, CFG) > softmax_cycles(16, CFG)
    job = workload_jobs("bert-base", 64, 4, 1, CFG, threshold=0.0)[0][0]
    refetch = QueryJob(job.q, job.k, job.v, job.kv, 1 << CFG.prob_frac, job.alpha_q, job.alpha_sh)
    assert pipeline_cycles(refetch, CFG) > pipeline_cycles(job, CFG)


@pytest.mark.parametrize(("field", "kw"), [("lanes", {"lanes": 12}), ("max_d", {"min_d": 16, "max_d": 8}),
                                            ("max_n", {"max_n": 4096})])
def test_config_errors_name_the_field(field: str, kw: dict) -> None:
    with pytest.raises(SpecError) as e:
        SpattenFx(**kw).validate()
    assert e.value.field == field


def test_job_errors() -> None:
    job = workload_jobs("bert-base", 16, 4, 1, CFG)[0][0]
    with pytest.raises(SpecError, match="kv"):
        pipeline(QueryJob(job.q, job.k, job.v, 17, 0, 1, 1), CFG)
    with pytest.raises(SpecError, match="head dimension"):
        pipeline(QueryJob(job.q[:3], job.k[:, :3], job.v[:, :3], 1, 0, 1, 1), CFG)


def test_registry_entries() -> None:
    for d in ("qk", "softmax", "progquant", "pv", "spatten-pipeline"):
        assert parse_params(d, [])["lanes"] == 16
    with pytest.raises(SpecError, match="--param min_d"):
        parse_params("qk", ["min_d=3"])


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "attnforge.cli.main", *args], capture_output=True, text=True, check=False)


def test_cycle_mode_cli() -> None:
    r = _cli("simulate", "--accel", "spatten", "--fidelity", "cycle", "--workload", "bert-base", "--seq-len", "128",
             "--batch", "1", "--cycle-rows", "4", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["design"] == "spatten-pipeline" and out["queries"] == 128 * 12 and out["cycles"] > 0
    bad = _cli("simulate", "--accel", "spatten", "--fidelity", "cycle", "--seq-len", "4096", "--batch", "1")
    assert bad.returncode == 2 and "max_n" in bad.stderr and "Traceback" not in bad.stderr


def test_topk_cycles_cli() -> None:
    r = _cli("topk-cycles", "--n", "16,64", "--k", "0.5", "--trials", "3", "--json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    assert [x["n"] for x in rows] == [16, 64] and rows[1]["mean"] > rows[0]["mean"]
    assert _cli("topk-cycles", "--comparators", "6").returncode == 2


@pytest.mark.parametrize(("lanes", "min_d", "max_n"), [(2, 2, 64), (4, 2, 16), (16, 4, 64), (8, 2, 13)])
def test_bench_bad_rows_break_the_row_rule(lanes: int, min_d: int, max_n: int) -> None:
    """The benches' malformed rows (rtl/benches/tb_fx_common.bad_row_counts) are all refused by the row rule, at
    S = 1 too (where a count above S and a short beat cannot be written: they are left out, not sent as good rows)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "rtl" / "benches"))
    from tb_fx_common import bad_row_counts

    cfg = SpattenFx(lanes=lanes, min_d=min_d, max_d=min_d, max_n=max_n)
    counts = bad_row_counts(cfg)
    assert len(counts) >= 3
    assert all(row_refused(c, cfg) for c in counts), counts
    assert all(max(c) <= (1 << cfg.s.bit_length()) - 1 for c in counts)  # each count fits the beat's field
