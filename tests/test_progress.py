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
