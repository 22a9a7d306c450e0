"""Phase lines on stderr for slow work (on at a terminal, or with ATTNFORGE_PROGRESS=1); stdout stays clean."""

from __future__ import annotations

import json

import pytest

from attnforge.cli.main import main


def test_rtl_export_says_what_it_does(tmp_path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTNFORGE_PROGRESS", "1")
    assert main(["rtl", "pe", "-o", str(tmp_path), "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["top"] and "rtl pe: elaborating" in err and err.startswith("[")


def test_progress_off_keeps_stderr_empty(tmp_path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ATTNFORGE_PROGRESS", "0")
    assert main(["rtl", "pe", "-o", str(tmp_path)]) == 0
    assert capsys.readouterr().err == ""


def test_simulate_announces_runs_of_many_points(capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    """A long generation run (one point per token) says what it evaluates before the minute it can take; a short
    one stays quiet. The threshold is lowered so the run stays cheap."""
    import attnforge.cli.main as cli

    monkeypatch.setenv("ATTNFORGE_PROGRESS", "1")
    monkeypatch.setattr(cli, "ANNOUNCE_POINTS", 4)
    args = ["simulate", "--accel", "spatten", "--workload", "gpt2-small", "--seq-len", "64", "--phase", "generate"]
    assert main([*args, "--generate", "4", "--json"]) == 0
    out, err = capsys.readouterr()
    assert len(json.loads(out)) == 4 and "simulate: 4 generation steps on spatten" in err
    assert main([*args, "--generate", "3", "--json"]) == 0
    assert capsys.readouterr().err == ""
