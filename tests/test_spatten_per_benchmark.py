"""`reproduce spatten --per-benchmark`: each row is the same run the headline means average, the table writes as CSV
and Parquet, and the options a path cannot honour are refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from attnforge.cli.main import main
from attnforge.reports import spatten_per_benchmark as pb
from attnforge.reports.spatten_runs import run_phase
from attnforge.sim.specs.arch import get_preset
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.spatten_policy import POLICIES
from attnforge.workloads.spatten_benchmarks import benchmarks

NAMES = ("bert-base/CoLA", "bert-large/SQuAD1.1", "gpt2-small/PTB")


@pytest.fixture(scope="module")
def three() -> pd.DataFrame:
    return pb.per_benchmark([b for b in benchmarks() if b.name in NAMES])


def test_rows_are_the_runs_the_headline_averages(three: pd.DataFrame) -> None:
    by = {b.name: b for b in benchmarks()}
    for r in three.to_dict("records"):
        b = by[r["benchmark"]]
        t = run_phase(b)
        assert r["latency_ms"] == pytest.approx(t.seconds * 1e3, rel=1e-12)
        assert r["dram_reduction"] == pytest.approx(r["pruning_reduction"] * r["quant_reduction"], rel=1e-9)
        assert r["power_w"] == pytest.approx(r["energy_mj"] / r["latency_ms"], rel=1e-9)
        a3 = run_phase(b, accel="a3", policy=POLICIES["a3"]).effective_gops
        assert r["a3_gops"] == pytest.approx(a3, rel=1e-12)
        assert r["speedup_vs_a3"] == pytest.approx(r["spatten1_8_gops"] / a3, rel=1e-12)
        assert r["run"] == ("32 generation steps" if b.generative else "one pass")
    # GPT-2 generation waits on HBM; a short BERT pass is compute-bound for most of its cycles
    gpt = three.set_index("benchmark").loc["gpt2-small/PTB"]
    assert gpt["memory_bound"] > 0.5 and gpt["speedup_vs_a3"] > 3


def test_table_text_ends_with_geometric_means(three: pd.DataFrame) -> None:
    text = pb.format_table(three)
    last = text.splitlines()[-1]
    assert last.startswith("geometric mean")
    gm = pb.geometric_means(three)
    expect = float(np.exp(np.mean(np.log(three["spatten1_8_gops"]))))
    assert gm["spatten1_8_gops"] == pytest.approx(expect) and "length" not in gm
    assert all(c.name in pb.column_help() for c in pb.SPATTEN_COLUMNS)


def test_writes_csv_and_parquet_and_refuses_other_suffixes(three: pd.DataFrame, tmp_path: Path) -> None:
    for suffix, read in ((".csv", pd.read_csv), (".parquet", pd.read_parquet)):
        pb.write(three, tmp_path / f"t{suffix}")
        back = read(tmp_path / f"t{suffix}")
        assert list(back.columns) == list(three.columns)
        assert np.allclose(back["latency_ms"], three["latency_ms"])
    with pytest.raises(Exception, match="CSV or Parquet"):
        pb.write(three, tmp_path / "t.xlsx")
    pb.write(three, tmp_path / "new" / "dir" / "t.csv")  # the folder is made
    (tmp_path / "file").write_text("")
    with pytest.raises(SpecError, match="cannot write"):  # a file where the folder should be
        pb.write(three, tmp_path / "file" / "t.csv")
    with pytest.raises(SpecError, match="cannot write"):
        pb.plot(three, tmp_path / "file" / "t.png")


def test_cli_per_benchmark(capsys, tmp_path: Path) -> None:
    out, fig = tmp_path / "t.csv", tmp_path / "t.png"
    assert main(["reproduce", "spatten", "--per-benchmark", "--benchmark", "bert-base/CoLA", "--out", str(out),
                 "--plot", str(fig)]) == 0
    text = capsys.readouterr().out
    assert "bert-base/CoLA" in text and "geometric mean" in text and f"wrote {out}, {fig}" in text
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pd.read_csv(out)["benchmark"].tolist() == ["bert-base/CoLA"]
    assert main(["reproduce", "spatten", "--per-benchmark", "--json", "--benchmark", "bert-base/CoLA"]) == 0
    (rec,) = json.loads(capsys.readouterr().out)
    assert rec["benchmark"] == "bert-base/CoLA" and rec["latency_ms"] > 0


@pytest.mark.parametrize(("args", "match"), [
    (["reproduce", "spatten", "--out", "t.csv"], "add --per-benchmark"),
    (["reproduce", "fusemax", "--per-benchmark"], "only `reproduce spatten`"),
    (["reproduce", "spatten", "--per-benchmark", "--out", "t.xlsx"], "CSV or Parquet"),
    (["reproduce", "spatten", "--per-benchmark", "--plot", "t.txt"], "PNG, SVG or PDF"),
    (["reproduce", "spatten", "--plot", "t.png"], "add --per-benchmark"),
    (["reproduce", "fusemax", "--plot", "t.png"], "only `reproduce spatten`"),
    (["reproduce", "spatten", "--benchmark", "gpt2-*"], "add --per-benchmark"),
    (["reproduce", "spatten", "--per-benchmark", "--benchmark", "gpt3-*"], "'gpt3-*' matches no benchmark"),
])
def test_cli_refuses_what_it_cannot_honour(capsys, args: list[str], match: str) -> None:
    assert main(args) == 2
    assert match in capsys.readouterr().err


def test_api_names_benchmarks_and_refuses_unknown_ones() -> None:
    import attnforge

    df = attnforge.spatten_benchmarks(["gpt2-small/PTB"])
    assert df["benchmark"].tolist() == ["gpt2-small/PTB"] and df["memory_bound"].iloc[0] > 0.5
    with pytest.raises(SpecError, match="'gpt2-small/ptb' matches no benchmark") as exc:  # names are case-sensitive
        attnforge.spatten_benchmarks(["gpt2-small/ptb"])
    assert "gpt2-small/PTB" in str(exc.value)
    assert [b.name for b in pb.select(["gpt2-small/*", "bert-large/SQuAD*"])] == [
        "bert-large/SQuAD1.1", "bert-large/SQuAD2.0", "gpt2-small/1BW", "gpt2-small/PTB", "gpt2-small/WikiText-103",
        "gpt2-small/WikiText-2"]  # file order, each once
    assert len(pb.select(None)) == 30


def test_set_overrides_every_spatten_arch_of_the_run(capsys) -> None:
    """`reproduce spatten --set`: the runs see the changed field (a fetcher with 4 requests in flight, not 16,
    lengthens a memory-bound GPT-2 run), the output says so, and nothing stays changed after the run."""
    from attnforge.reports import spatten_arch

    runs = {}
    for args in ([], ["--set", "hbm.outstanding=4"]):
        assert main(["reproduce", "spatten", "--per-benchmark", "--json", "--benchmark", "gpt2-small/PTB", *args]) == 0
        (runs[bool(args)],) = json.loads(capsys.readouterr().out)
    assert runs[True]["latency_ms"] > 1.2 * runs[False]["latency_ms"]
    assert runs[True]["arch_overrides"] == "hbm.outstanding=4" and "arch_overrides" not in runs[False]
    assert runs[True]["spatten1_8_gops"] < runs[False]["spatten1_8_gops"]  # SpAtten1/8 (Table III) sees it too
    assert spatten_arch.current() == {} and spatten_arch.arch().hbm.outstanding == get_preset("spatten").hbm.outstanding
    with spatten_arch.overridden({"hbm.outstanding": 20}):
        assert spatten_arch.arch("spatten-1-8").hbm.outstanding == 20
        assert spatten_arch.arch(extra={"hbm.outstanding": 8}).hbm.outstanding == 8  # a sweep's own field wins
    assert main(["reproduce", "spatten", "--set", "hbm.nope=1"]) == 2
    assert "no such field 'nope'" in capsys.readouterr().err
    assert main(["reproduce", "fusemax", "--set", "hbm.outstanding=20"]) == 2
    assert "--set" in capsys.readouterr().err


def test_html_pages_of_the_reproductions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`reproduce ... --html`: FuseMax's rows and one SpAtten benchmark's row (with its geometric means and the
    figure inline) as self-contained pages; a name that is not .html, or a folder that cannot be made, is one error
    before anything runs."""
    from attnforge.reports.fusemax_paper import reproduce

    assert main(["reproduce", "fusemax", "--html", str(tmp_path / "fm.html")]) == 0
    page = (tmp_path / "fm.html").read_text()
    assert all(r.metric in page for r in reproduce()) and "over_15pct" in page
    out = tmp_path / "pb" / "one.html"
    assert main(["reproduce", "spatten", "--per-benchmark", "--benchmark", "bert-base/CoLA", "--html", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    page = out.read_text()
    assert "bert-base/CoLA" in page and "geometric mean" in page and page.count("data:image/png;base64,") == 1
    assert "--benchmark &#39;bert-base/CoLA&#39;" in page  # the command to rerun, in the header
    for bad in (tmp_path / "x.txt", tmp_path / "fm.html" / "x.html"):
        assert main(["reproduce", "spatten", "--per-benchmark", "--html", str(bad)]) == 2
        err = capsys.readouterr().err
        assert "--html" in err and "Traceback" not in err
