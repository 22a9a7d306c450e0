"""CLI of the RTL side: rtl --list / export with manifest, user errors, simulate --fidelity cycle, regress."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attnforge.cli.main import main
from attnforge.rtl.registry import parse_params
from attnforge.rtl.regress import available
from attnforge.sim.fusemax.cycle_model import engine_run_cycles, tile_schedule
from attnforge.sim.specs.errors import SpecError


def test_rtl_list(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["rtl", "--list"]) == 0
    out = capsys.readouterr().out
    for name in ("pe", "array2d", "vector1d", "fusemax-tile"):
        assert name in out


@pytest.mark.parametrize("design", ["pe", "array2d", "vector1d", "fusemax-tile"])
def test_rtl_export_writes_verilog_and_manifest(design: str, tmp_path: Path) -> None:
    # non-default sizes, so the test sees its parameters arrive: docs/guide.md's array and the quick regression's tile,
    # which the fast set exports anyway (the export store serves them)
    params = {"array2d": ["rows=8", "cols=8"], "fusemax-tile": ["e=16", "f=16", "max_keys=64"]}.get(design, [])
    args = ["rtl", design, "-o", str(tmp_path)] + [x for p in params for x in ("--param", p)]
    assert main(args) == 0
    top = design.replace("-", "_")
    v = (tmp_path / f"{top}.v").read_text()
    man = json.loads((tmp_path / f"{top}.json").read_text())
    assert f"module {top}" in v
    assert man["design"] == design and man["golden"]
    names = {p["name"]: p for p in man["ports"]}
    assert "clk" in names and "o__payload" in names and names["o__valid"]["dir"] == "out"
    for p in man["ports"]:
        assert p["name"] in v
    if design == "fusemax-tile":
        assert man["parameters"]["max_keys"] == 64 and man["parameters"]["e"] == 16
        assert names["k__payload"]["width"] == 4 * 8 and names["o__payload"]["width"] == 4 * 16
        assert man["golden"]["fixed_point"]["e"] == 16 and man["golden"]["fixed_point"]["max_keys"] == 64


@pytest.mark.parametrize(("args", "msg"), [
    (["rtl", "nope", "-o", "x"], "unknown design"),
    (["rtl", "pe", "--param", "rows=4", "-o", "x"], "no parameter"),
    (["rtl", "pe", "--param", "depth", "-o", "x"], "NAME=INTEGER"),
    (["rtl", "array2d", "--param", "rows=0", "-o", "x"], "out of range"),
    (["rtl", "fusemax-tile", "--param", "e=3", "-o", "x"], "softmax"),
    (["rtl", "fusemax-tile", "--param", "max_keys=30", "-o", "x"], "multiple of rows"),
    (["rtl", "pe", "--dsp", "virtex", "-o", "x"], "unknown DSP target"),
])
def test_rtl_user_errors_exit_2(args: list[str], msg: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1


def test_rtl_export_with_dsp_primitives(tmp_path: Path) -> None:
    """``--dsp ecp5``: the PE's multiply is a MULT18X18D with its input and output registers (its second product
    register stays in the fabric), and the manifest says so; the plain export has none."""
    assert main(["rtl", "pe", "--dsp", "ecp5", "-o", str(tmp_path / "prim")]) == 0
    assert main(["rtl", "pe", "-o", str(tmp_path / "plain")]) == 0
    prim, plain = ((tmp_path / d / "pe.v").read_text() for d in ("prim", "plain"))
    assert prim.count("MULT18X18D ") == 1 and "MULT18X18D" not in plain
    assert all(f'.REG_{r}_CLK("CLK0")' in prim for r in ("INPUTA", "INPUTB", "OUTPUT"))
    assert json.loads((tmp_path / "prim" / "pe.json").read_text())["dsp_primitives"] == "ecp5"


def test_parse_params_defaults() -> None:
    assert parse_params("fusemax-tile", ["rows=8"])["cols"] == 4
    with pytest.raises(SpecError):
        parse_params("fusemax-tile", {"rows": "x"})


def test_simulate_fidelity_cycle_json(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["simulate", "--fidelity", "cycle", "--workload", "bert-base", "--seq-len", "16", "--batch", "1",
            "--rtl-param", "e=8", "--rtl-param", "f=8", "--rtl-param", "max_keys=64", "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["tile"]["cycles"] == tile_schedule(4, 4, 8, 8, 4, 64).total_cycles
    assert out["cycles"] == engine_run_cycles(4, 4, 8, 8, [4] * 48, 64) and out["tiles"] == 12 * 4
    assert out["cycles"] < out["tiles"] * out["tile"]["cycles"]  # query tiles overlap


def test_simulate_fidelity_cycle_errors(capsys: pytest.CaptureFixture[str]) -> None:
    """A workload the RTL cannot take is named by the option that sized it (not as a --param nobody gave); a
    parameter the user gave is named as given."""
    assert main(["simulate", "--fidelity", "cycle", "--seq-len", "4096"]) == 2  # beyond max_keys
    err = capsys.readouterr().err
    assert "--m / --seq-len (keys M): sets fusemax-tile's max_keys to 4096" in err and "--fidelity analytical" in err
    assert main(["simulate", "--fidelity", "cycle", "--accel", "flat", "--seq-len", "16"]) == 2
    args = ["simulate", "--fidelity", "cycle", "--accel", "spatten", "--workload", "gpt2-small"]
    assert main([*args, "--seq-len", "2k"]) == 2
    assert "sets spatten-pipeline's max_n to 2048" in capsys.readouterr().err
    assert main([*args, "--seq-len", "64", "--rtl-param", "max_n=5000"]) == 2
    assert "max_n: 5000 out of range" in capsys.readouterr().err


def test_regress_json_quick_single_design(capsys: pytest.CaptureFixture[str]) -> None:
    if available("icarus"):
        pytest.skip("icarus not installed")
    assert main(["regress", "--quick", "--design", "pe", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    keys = {"design", "workload", "simulator", "passed", "rtl_cycles", "sim_cycles", "max_abs_error"}
    assert rows and all(keys <= set(r) for r in rows) and all(r["passed"] for r in rows)


def test_regress_params_replace_the_cases_own() -> None:
    """``regress --design D -p NAME=INT``: each selected case at the given parameters over its own, checked."""
    from attnforge.cli.rtl import _with_params
    from attnforge.rtl.regress import default_cases

    cases = [c for c in default_cases(slow=True) if c.design == "spatten-top" and "minilm" in (c.workloads or [])]
    (case,) = _with_params(cases, "spatten-top", ["lanes=64", "min_d=8", "max_d=64"])
    assert case.params["max_d"] == 64 and case.params["max_n"] == 128 and case.workloads == ["minilm"]
    assert cases[0].params["max_d"] == 32  # the default set itself is unchanged


@pytest.mark.parametrize(("args", "msg"), [
    (["regress", "-p", "max_d=16"], "give --design"),
    (["regress", "--design", "spatten-top", "-p", "maxd=16"], "no parameter"),
    (["regress", "--design", "spatten-top", "-p", "max_d=17"], "power of two"),
])
def test_regress_param_errors(args: list[str], msg: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert msg in err and len(err.splitlines()) == 1
