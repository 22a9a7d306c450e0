"""The CLI as a user meets it: exit codes, one-line errors, JSON fields, files written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from attnforge.cli.main import main

REQUIRED = {
    "accelerator", "workload", "seq_len", "batch", "cycles", "latency_s", "energy_j",
    "energy_breakdown_j", "dram_bytes", "utilization", "flops",
}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_simulate_default_prints_table(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run(capsys, "simulate")
    assert rc == 0 and err == ""
    assert "fusemax" in out and "bert-base" in out and "energy breakdown" in out and "roofline" in out


def test_simulate_json_has_required_fields(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "simulate", "--accel", "fusemax", "--workload", "bert-base", "--seq-len", "4096", "--json")
    assert rc == 0
    d = json.loads(out)
    assert REQUIRED <= set(d)
    assert d["accelerator"] == "fusemax" and d["seq_len"] == 4096 and d["batch"] == 64
    assert set(d["utilization"]) == {"2d", "1d"}
    assert abs(sum(d["energy_breakdown_j"].values()) - d["energy_j"]) <= 1e-9 * d["energy_j"]


def test_compare_json_and_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    rc, out, _ = run(capsys, "compare", "--accels", "unfused,flat,fusemax", "--seq-len", "1k,4k", "--json", "-o", str(tmp_path))
    assert rc == 0
    rows = json.loads(out)
    assert len(rows) == 6 and all(REQUIRED <= set(r) for r in rows)
    for name in ("results.csv", "speedup.png", "utilization.png", "energy_breakdown.png"):
        assert (tmp_path / name).stat().st_size > 0
    import pandas as pd

    df = pd.read_csv(tmp_path / "results.csv")
    assert list(df["accelerator"].unique()) == ["unfused", "flat", "fusemax"]


def test_compare_table_has_speedup_vs_first(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "compare", "--accels", "flat,fusemax", "--seq-len", "1k")
    assert rc == 0
    fusemax_line = next(line for line in out.splitlines() if line.strip().startswith("fusemax"))
    assert "6.65x" in fusemax_line  # FuseMax vs FLAT at BERT 1K: 137/154 tail model, see test_engine


def test_compare_across_families_is_per_layer(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """SpAtten's result covers every layer of the model (its cascade pruning spans them), FuseMax's one layer: the
    table says so, and speedup and energy ratio compare latency and energy per layer (the clocks differ too)."""
    from attnforge.reports.tables import results_frame
    from attnforge.sim.analytical.engine import run as run_scenario
    from attnforge.sim.specs.scenario import Scenario

    sp, fm = (run_scenario(Scenario.build(accelerator=a, workload="bert-base", seq_lens=[512], batch=1))[0]
              for a in ("spatten", "fusemax"))
    assert (sp.layers, fm.layers) == (12, 1)
    df = results_frame([sp, fm], baseline="spatten").set_index("accelerator")
    assert df.loc["fusemax", "speedup"] == pytest.approx(sp.latency_s / 12 / fm.latency_s)
    assert df.loc["fusemax", "energy_ratio"] == pytest.approx(fm.energy_j / (sp.energy_j / 12))
    assert list(df["layers"]) == [12, 1]
    rc, out, _ = run(capsys, "compare", "--accels", "spatten,fusemax", "--workload", "bert-base", "--seq-len", "512",
                     "--batch", "1", "-o", str(tmp_path))
    assert rc == 0 and out.splitlines()[0].split()[4] == "layers"
    fm_line = next(line for line in out.splitlines() if line.strip().startswith("fusemax"))
    assert f"{sp.latency_s / 12 / fm.latency_s:.3g}x" in fm_line
    assert "per model layer: the results cover different layer counts (spatten 12, fusemax 1" in out
    # the GPU line of a whole-model result: the SpAtten suite's whole-model point when measured (BERT-Base at 25
    # tokens, batch 1), else the one-layer point compared per layer
    rc, out, _ = run(capsys, "simulate", "--accel", "spatten", "--workload", "bert-base", "--seq-len", "25", "--batch", "1")
    assert "for the whole model's attention at seq 25" in out.splitlines()[-1]
    rc, out, _ = run(capsys, "simulate", "--accel", "spatten", "--workload", "bert-base", "--seq-len", "4k")
    assert "for one layer's attention at seq 4096" in out.splitlines()[-1] and "speed, per layer" in out


def test_scope_and_batch_apply(capsys: pytest.CaptureFixture[str]) -> None:
    _, a, _ = run(capsys, "simulate", "--seq-len", "1k", "--json")
    _, e, _ = run(capsys, "simulate", "--seq-len", "1k", "--json", "--scope", "end-to-end")
    _, b, _ = run(capsys, "simulate", "--seq-len", "1k", "--json", "--batch", "1")
    a, e, b = json.loads(a), json.loads(e), json.loads(b)
    assert e["cycles"] == pytest.approx(a["cycles"] + 7_077_888)
    assert b["batch"] == 1 and b["cycles"] == pytest.approx(a["cycles"] / 64)


def test_list_names_everything(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "list")
    assert rc == 0
    for name in ("bert-base", "xlm", "llama2-7b", "fusemax-cascade", "fusemax-arch", "unfused", "flat"):
        assert name in out


def test_reproduce_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "reproduce", "fusemax", "--json")
    rows = json.loads(out)
    assert rc == 0 and {"metric", "paper", "ours"} <= set(rows[0])
    assert any(r["metric"] == "attention speedup FuseMax vs FLAT" for r in rows)


def test_bench_json(capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run(capsys, "bench", "--points", "500", "--repeats", "1", "--json")
    d = json.loads(out)
    assert rc == 0 and d["evals_per_s"] > 0 and d["points"] == 500 and "shapes" in d


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (["simulate", "--accel", "nope"], "accel"),
        (["simulate", "--workload", "gpt5"], "workload"),
        (["simulate", "--seq-len", "0"], "seq-len"),
        (["simulate", "--seq-len", "abc"], "seq-len"),
        (["simulate", "--seq-len", "1k,,4k"], "seq-len"),
        (["reference", "--seq-len", "1k,4k"], "one length"),
        (["simulate", "--batch", "-3"], "batch"),
        (["simulate", "--set", "buffer.bytes=1024", "--seq-len", "64k"], "arch.buffer.bytes"),
        (["simulate", "--set", "nosuch=1"], "nosuch"),
        (["simulate", "--set", "buffer.bytes"], "--set"),
        (["simulate", "--tile", "query_block=100"], "--tile"),
        (["compare", "--accels", "fusemax"], "--accels"),
        (["compare", "--accels", "flat,bogus"], "accel"),
    ],
)
def test_bad_input_one_line_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str], field: str) -> None:
    rc, out, err = run(capsys, *argv)
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in err


def test_bad_arch_yaml_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\narrays: [unclosed\n")
    rc, _, err = run(capsys, "simulate", "--arch", str(bad))
    assert rc == 2 and "malformed YAML" in err
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("extends: fusemax\nclock_mhz: -5\n")
    rc, _, err = run(capsys, "simulate", "--arch", str(wrong))
    assert rc == 2 and "clock_mhz" in err


def test_user_arch_extends_preset(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = tmp_path / "half_bw.yaml"
    f.write_text("extends: fusemax\nname: fusemax-half-bw\ndram:\n  bandwidth_gib_s: 1\n")
    _, base, _ = run(capsys, "simulate", "--seq-len", "1k", "--json")
    rc, slow, _ = run(capsys, "simulate", "--seq-len", "1k", "--json", "--arch", str(f))
    assert rc == 0 and json.loads(slow)["cycles"] > json.loads(base)["cycles"]


def test_workload_yaml_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    f = tmp_path / "tiny.yaml"
    f.write_text("tiny:\n  layers: 2\n  heads: 2\n  d_model: 128\n  d_head: 64\n  d_ff: 256\n")
    rc, out, _ = run(capsys, "simulate", "--workload", str(f), "--seq-len", "1k", "--json")
    assert rc == 0 and json.loads(out)["workload"] == "tiny"
    f.write_text("tiny:\n  layers: 2\n  heads: 3\n  d_model: 128\n  d_head: 64\n  d_ff: 256\n")
    rc, _, err = run(capsys, "simulate", "--workload", str(f))
    assert rc == 2 and "d_model" in err


def test_console_script_help_shows_example() -> None:
    out = subprocess.run([sys.executable, "-m", "attnforge", "simulate", "--help"], capture_output=True, text=True,
                         check=True)
    assert "example:" in out.stdout and "--seq-len" in out.stdout
