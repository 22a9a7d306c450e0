"""SpAtten through the shared engine and CLI: compare with FuseMax, knobs, errors, the reproduce table."""

import json

import pytest
from helpers import simulate
from markupsafe import escape

from attnforge.cli.main import main
from attnforge.workloads import make_workload


def test_compare_fusemax_spatten_same_fields_plus_extras(capsys):
    assert main(["compare", "--accels", "fusemax,spatten", "--workload", "gpt2-small", "--seq-len", "1k", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    fm, sp = rows
    assert set(fm) <= set(sp)
    for k in ("tokens_kept", "heads_kept", "lsb_refetch_rate"):
        assert 0.0 <= sp[k] <= 1.0
    assert sp["tokens_kept"] < 1.0 and sp["cycles"] > 0 and sp["energy_j"] > 0


def test_pruning_reduces_work_and_bytes():
    wl = make_workload("gpt2-small", batch=1, seq_len=1024, stage="decode")
    full = simulate("spatten-dense", wl)
    pruned = simulate("spatten", wl)
    assert pruned.dram_bytes < full.dram_bytes / 3
    assert pruned.cycles < full.cycles
    assert pruned.extra["tokens_kept"] < 0.5 and full.extra["tokens_kept"] == 1.0


def test_spatten_eighth_alias_and_slower():
    wl = make_workload("bert-base", batch=1, seq_len=128)
    a = simulate("spatten-1/8", wl)
    b = simulate("spatten-1-8", wl)
    c = simulate("spatten", wl)
    assert a.cycles == b.cycles and a.cycles > 4 * c.cycles


@pytest.mark.parametrize("args,match", [
    (["--token-ratio", "1.0"], "token_ratio"),
    (["--head-ratio", "-0.2"], "head_ratio"),
    (["--threshold", "0"], "threshold"),
    (["--quant", "5+4"], "quant"),
    (["--lsb-refetch-rate", "1.5"], "lsb_refetch_rate"),
    (["--quant", "8", "--lsb-refetch-rate", "0.1"], "static quantization"),  # nothing refetches: refused, not ignored
])
def test_cli_bad_knobs(capsys, args, match):
    rc = main(["simulate", "--accel", "spatten", "--workload", "gpt2-small", "--seq-len", "256", *args])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and match in err and "\n" not in err


def test_cli_knobs_take_effect(capsys):
    base = ["simulate", "--accel", "spatten", "--workload", "gpt2-small", "--seq-len", "512", "--batch", "1",
            "--stage", "decode", "--json"]
    assert main([*base, "--token-ratio", "0.2"]) == 0
    lo = json.loads(capsys.readouterr().out)
    assert main([*base, "--token-ratio", "0.9"]) == 0
    hi = json.loads(capsys.readouterr().out)
    assert hi["tokens_kept"] < lo["tokens_kept"] and hi["dram_bytes"] < lo["dram_bytes"]
    # the refetch fraction, measured on synthetic attention by default, can be fixed (SpAtten's trace: 6.1%)
    assert main(base) == 0
    measured = json.loads(capsys.readouterr().out)
    assert main([*base, "--lsb-refetch-rate", "0.061"]) == 0
    fixed = json.loads(capsys.readouterr().out)
    assert fixed["lsb_refetch_rate"] == pytest.approx(0.061) and measured["lsb_refetch_rate"] > 0.061
    assert fixed["lsb_dram_bytes"] < measured["lsb_dram_bytes"] and fixed["dram_bytes"] < measured["dram_bytes"]
    assert fixed["tokens_kept"] == measured["tokens_kept"]
    assert main([*base, "--quant", "8"]) == 0  # a static width alone is no refetch knob: nothing to refuse
    assert json.loads(capsys.readouterr().out)["lsb_refetch_rate"] == 0.0


@pytest.mark.slow
def test_reproduce_spatten_json(capsys, monkeypatch: pytest.MonkeyPatch, tmp_path):
    """The reproduce table as JSON on stdout, its phase lines on stderr, and its HTML page (one ~50 s run serving
    the three checks): every row, its note, and the sensitivity sweeps."""
    monkeypatch.setenv("ATTNFORGE_PROGRESS", "1")
    page = tmp_path / "sub" / "spatten.html"
    assert main(["reproduce", "spatten", "--json", "--html", str(page)]) == 0
    out, err = capsys.readouterr()
    for part in ("30 benchmarks", "speedup breakdown", "Table III", "traces", "accuracy proxy"):
        assert part in err
    rows = json.loads(out)
    names = {r["metric"]: r for r in rows}
    assert names["DRAM reduction, 30-benchmark mean (FP32 dense K+V)"]["paper"] == 10.0
    assert all({"metric", "paper", "ours"} <= set(r) for r in rows)
    assert all(r["note"] for r in rows if r["paper"] and abs(r["ours"] - r["paper"]) / r["paper"] > 0.15)
    html = page.read_text()
    assert "sensitivity" in html and "over_15pct" in html and html.count("<tr>") == len(rows) + 1  # and the header
    flagged = [r for r in rows if r["paper"] and abs(r["ours"] - r["paper"]) / r["paper"] > 0.15]
    assert all(escape(r["note"]) in html for r in flagged)


def test_simulate_reports_what_the_hbm_delivered(capsys) -> None:
    """`simulate --accel spatten` says what the memory system delivered: its requests and row activates (JSON)
    and, in the text, the bandwidth while traffic moves (under the pins, above the run's average) and the row hits."""
    args = ["simulate", "--accel", "spatten", "--workload", "gpt2-small", "--stage", "decode", "--seq-len", "1k",
            "--batch", "1"]
    assert main([*args, "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    r = r[0] if isinstance(r, list) else r
    assert 0 < r["dram_activates"] < r["dram_requests"]
    assert r["dram_requests"] * 32 >= r["dram_bytes"]  # whole 32-byte transactions
    assert main(args) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("HBM:"))
    moving, average = (float(x.split(" GB/s")[0].split()[-1]) for x in line.split("(", 1))
    assert average < moving < 512
    assert f"row hits {1 - r['dram_activates'] / r['dram_requests']:.1%}" in line
