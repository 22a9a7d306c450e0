"""The files in examples/ work: the arch file simulates, the sweep spec runs (on a small grid), the script runs."""

from __future__ import annotations

import runpy
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


def test_my_arch_simulates(capsys: pytest.CaptureFixture[str]) -> None:
    from attnforge.cli.main import main

    assert main(["simulate", "--arch", str(EXAMPLES / "my_arch.yaml"), "--seq-len", "16k"]) == 0
    out = capsys.readouterr().out
    assert "arch my-fusemax" in out


def test_my_arch_extends_fusemax() -> None:
    from attnforge.sim.specs.arch import get_preset, load_arch

    mine, base = load_arch(EXAMPLES / "my_arch.yaml"), get_preset("fusemax")
    assert mine.name == "my-fusemax"
    assert (mine.clock_mhz, mine.buffer.bytes) != (base.clock_mhz, base.buffer.bytes)
    assert mine.arrays == base.arrays and mine.energy == base.energy   # the rest comes from the preset


def test_sweep_spec_runs_small(tmp_path: Path) -> None:
    import attnforge
    from attnforge.sweep_runner import estimate, load_spec

    assert estimate(load_spec(EXAMPLES / "sweep.yaml"))[1] == 24   # the number the guide states
    raw = yaml.safe_load((EXAMPLES / "sweep.yaml").read_text())
    raw["seq_lens"] = raw["seq_lens"][:1]
    raw["arch"] = {k: v[:1] for k, v in raw["arch"].items()}
    small = tmp_path / "small.yaml"
    small.write_text(yaml.safe_dump(raw))
    df = attnforge.sweep(small, tmp_path / "out", workers=1)
    assert len(df) == len(raw["accelerators"]) and (tmp_path / "out" / "results.csv").is_file()


def test_simulate_script_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    shutil.copytree(EXAMPLES, tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    runpy.run_path(str(tmp_path / "examples" / "simulate.py"), run_name="__main__")
    assert "my-fusemax" in capsys.readouterr().out
