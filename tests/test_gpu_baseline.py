"""The GPU baseline: suite definition, timing path (on CPU here), the committed H100 data, and its report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from attnforge import gpu_suite as gs
from attnforge.cli.main import main
from attnforge.reports import gpu_baseline as gb
from attnforge.sim.specs.errors import SpecError
from attnforge.workloads import get_model


def test_fusemax_points_follow_the_paper_and_fit_the_gpu() -> None:
    pts = gs.fusemax_points()
    assert len(pts) == 24 and {p.model for p in pts} == set(gs.FUSEMAX_MODELS)
    for p in pts:
        mdl = get_model(p.model)
        assert p.batch & (p.batch - 1) == 0, "batch is a power of two"
        assert p.batch * mdl.heads * p.seq * mdl.d_head * 2 <= gs.TENSOR_CAP_BYTES
        if p.seq <= 1 << 14:
            assert p.batch == gs.PAPER_BATCH
    assert gs.fusemax_batch(1 << 18, 12, 64) == 4 and gs.fusemax_batch(1 << 20, 12, 64) == 1
    assert gs.fusemax_batch(1 << 16, 16, 128) == 32  # XLM at 64K: 64 would not fit in 80 GB
    assert [p.seq for p in gs.fusemax_points(max_seq=1 << 12, models=("xlm",))] == [1024, 4096]
    assert [p.seq for p in gs.fusemax_points(min_seq=1 << 20)] == [1 << 20] * 4


def test_spatten_points_are_whole_model_attention() -> None:
    pts = {p.label: p for p in gs.spatten_points()}
    assert len(pts) == 24
    bert = pts["bert-large/SQuAD1.1"]
    assert bert.sdpa_calls == 24 and bert.passes == ((160, 160, False, 24),)
    g = pts["gpt2-medium/prompt992+gen32"]
    assert g.sdpa_calls == 24 * 33 and g.passes[0] == (992, 992, True, 24)
    assert [m for _, m, _, _ in g.passes[1:]] == list(range(993, 1025))
    assert g.flops() == pytest.approx(sum(4.0 * 16 * p * m * 64 * n for p, m, _, n in g.passes))


def test_a_benchmark_point_runs_its_own_benchmark_file() -> None:
    """The SQuAD v1.1 and v2.0 points have the same length but their own settings, so their simulated latencies
    differ and each is the one `reproduce spatten --per-benchmark` gives for it (no tie from one generic policy)."""
    from attnforge.reports.spatten_runs import run_phase
    from attnforge.workloads.spatten_benchmarks import benchmarks

    run = gb.committed()
    assert run is not None  # reports/gpu_reference.json ships with the package
    pts = {p.label: p for p in run.points if p.suite == "spatten"}
    files = {b.name: b for b in benchmarks()}
    got = {n: gb.simulate_point(pts[n])["spatten"] for n in ("bert-base/SQuAD1.1", "bert-base/SQuAD2.0")}
    assert got["bert-base/SQuAD1.1"] != got["bert-base/SQuAD2.0"]
    for name, s in got.items():
        assert s == run_phase(files[name]).seconds


def test_unknown_suite_is_one_clear_error() -> None:
    with pytest.raises(SpecError, match="unknown suite 'gpu'.*fusemax, spatten, paper"):
        gs.suite_points(("gpu",))
    assert main(["reference", "--suite", "bogus", "--device", "cpu"]) == 2
    pytest.importorskip("torch")
    with pytest.raises(SpecError, match="no suite point"):  # --min-seq above --max-seq selects nothing
        gs.run_suite(("fusemax",), device="cpu", min_seq=1 << 20, max_seq=1 << 10)


def test_timing_path_on_cpu() -> None:
    pytest.importorskip("torch")
    pt = gs.SuitePoint("fusemax", "tiny", "t5-small", 2, 64, ((64, 64, False, 1), (1, 64, True, 3)))
    (m,) = list(gs.time_points([pt], device="cpu", dtype="float32", repeats=4, warmup=1, budget_s=60))
    assert m.sdpa_calls == 4 and len(m.latency_all_s) == 4 and m.latency_s > 0
    assert m.tflops == pytest.approx(pt.flops() / m.latency_s / 1e12)
    with pytest.raises(SpecError, match="--dtype"):
        list(gs.time_points([pt], device="cpu", dtype="int3"))


def test_committed_h100_run_is_complete() -> None:
    run = gb.committed()
    assert run is not None and run.device == "cuda" and "H100" in run.device_name
    assert run.dtype == "float16" and run.kernel == "flash" and run.versions["torch"] and run.versions["driver"]
    labels = {p.label for p in run.points}
    assert labels == {p.label for p in gs.suite_points(gs.SUITES)}, "every paper point measured once"
    for p in run.points:
        assert p.latency_s == pytest.approx(sorted(p.latency_all_s)[len(p.latency_all_s) // 2], rel=0.5)
        assert min(p.latency_all_s) <= p.latency_s <= max(p.latency_all_s)
    assert all(a["within_bound"] == 1.0 for a in run.accuracy) and len(run.accuracy) == 8


def test_comparison_simulates_the_measured_point() -> None:
    run = gb.committed()
    p = next(p for p in run.points if p.label == "bert-base/4K")
    (c,) = gb.compare(gs.SuiteRun(**{**run.__dict__, "points": [p]}))
    from helpers import simulate

    from attnforge.workloads import make_workload

    sim = simulate("fusemax", make_workload("bert-base", batch=64, seq_len=4096)).latency_s
    assert c.simulated_s["fusemax"] == sim and c.speedup("fusemax") == p.latency_s / sim
    assert gb.measured_latency("bert-base", 64, 4096)[0] == p.latency_s
    assert gb.measured_latency("bert-base", 3, 4096) is None


def test_merge_refuses_mixed_devices(tmp_path: Path) -> None:
    d = gs.to_json(gb.committed())
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(d))
    b.write_text(json.dumps({**d, "device_name": "other GPU"}))
    with pytest.raises(SpecError, match="cannot merge"):
        gb.load_runs([a, b])
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(SpecError, match="not a suite file"):
        gb.load_runs([tmp_path / "bad.json"])
    with pytest.raises(SpecError, match="no such file"):
        gb.load_runs([tmp_path / "missing.json"])
    assert len(gb.load_runs([a, a]).points) == 2 * len(d["points"])


# slow: ~7 s; the fast set runs `attnforge gpu-baseline` through docs/guide.md's commands
@pytest.mark.slow
def test_cli_gpu_baseline_writes_csv_and_plot(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["gpu-baseline", "-o", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "NVIDIA H100" in out and "geomean speedup over the GPU" in out
    import pandas as pd

    df = pd.read_csv(tmp_path / "gpu_baseline.csv")
    assert len(df) == 24 * 3 + 24 and (tmp_path / "gpu_baseline.png").stat().st_size > 10_000
    assert df["speedup_over_gpu"].map(math.isfinite).all()
    assert main(["simulate"]) == 0
    assert "measured on NVIDIA H100" in capsys.readouterr().out
