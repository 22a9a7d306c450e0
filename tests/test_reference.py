"""The PyTorch float reference: correct attention, saved with its metadata, and the golden model within bound."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from attnforge.cli.main import main  # noqa: E402
from attnforge.reference import golden_error, load, run_reference, save  # noqa: E402
from attnforge.sim.fusemax.golden import float_attention  # noqa: E402
from attnforge.sim.specs.errors import SpecError  # noqa: E402
from attnforge.workloads import make_workload  # noqa: E402


def test_sdpa_matches_float64_attention(tmp_path: Path) -> None:
    wl = make_workload("t5-small", batch=2, seq_len=128)
    run, out = run_reference(wl, device="cpu", repeats=2)
    t = wl.tensors()
    for b, h in ((0, 0), (1, 7)):
        ref = float_attention(t["q"][b, h], t["k"][b, h], t["v"][b, h])
        assert np.max(np.abs(out[b, h] - ref)) < 1e-5
    assert run.device == "cpu" and run.repeats == 2 and len(run.latency_all_s) == 2
    assert run.latency_s == pytest.approx(float(np.median(run.latency_all_s)))
    assert run.versions["torch"].startswith("2.")
    path = save(run, out, tmp_path)
    run2, out2 = load(path)
    assert run2 == run and np.array_equal(out2, out)


def test_causal_reference_masks_the_future() -> None:
    wl = make_workload("gpt2-small", batch=1, seq_len=64)
    assert wl.causal
    _, out = run_reference(wl, device="cpu", repeats=1)
    t = wl.tensors()
    # the first query sees only the first key: its output is V[0]
    assert np.allclose(out[0, 0, 0], t["v"][0, 0, 0], atol=1e-6)


def test_golden_model_within_bound_of_reference() -> None:
    wl = make_workload("bert-base", batch=1, seq_len=256)
    _, out = run_reference(wl, device="cpu", repeats=1)
    g = golden_error(wl, out, queries=32)
    assert g["within_bound"] == 1.0 and 0 < g["max_abs"] <= g["bound"]


def test_bad_reference_arguments() -> None:
    wl = make_workload("bert-base", batch=1, seq_len=64)
    for kw, field in (({"device": "tpu"}, "--device"), ({"dtype": "int4"}, "--dtype"), ({"repeats": 0}, "--repeats")):
        with pytest.raises(SpecError, match=field):
            run_reference(wl, **kw)


def test_cli_reference_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["reference", "--workload", "bert-base", "--seq-len", "128", "--repeats", "2", "-o", str(tmp_path), "--json"])
    d = json.loads(capsys.readouterr().out)
    assert rc == 0 and d["device"] == "cpu" and d["latency_s"] > 0
    assert set(d["simulated_latency_s"]) == {"flat", "fusemax"} and d["golden"]["within_bound"] == 1.0
    assert Path(d["file"]).exists()


def test_long_runs_say_how_long_before_they_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """A run past ESTIMATE_ABOVE_FLOPS announces its expected duration (from a probe call) before the first
    SDPA call; short runs stay quiet. A 1M-token CPU run used to sit silent for days."""
    from attnforge import reference

    wl = make_workload("t5-small", batch=1, seq_len=64)
    lines: list[str] = []
    reference.run_reference(wl, device="cpu", repeats=1, warmup=0, notify=lines.append)
    assert lines == []
    monkeypatch.setattr(reference, "ESTIMATE_ABOVE_FLOPS", 0.0)
    reference.run_reference(wl, device="cpu", repeats=2, warmup=1, notify=lines.append)
    assert len(lines) == 1 and lines[0].startswith(f"3 SDPA calls of {reference.sdpa_flops(wl):.3g} FLOPs on cpu")
    assert wl.causal is False and reference.sdpa_flops(wl) == 2.0 * wl.heads * 64 * 64 * (wl.e + wl.f)
