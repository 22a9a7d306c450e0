"""Built simulators are cached per checkout and Python environment, never shared between clones."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnforge.rtl import regress


def test_cache_folder_differs_per_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATTNFORGE_CACHE", str(tmp_path))
    here = regress.cache_dir()
    assert here.is_relative_to(tmp_path) and here.name == "rtl-build"
    monkeypatch.setattr(regress, "IMPORT_ROOT", tmp_path / "another-clone")
    other = regress.cache_dir()
    assert other != here and other.parent != here.parent
    monkeypatch.setattr(regress.sys, "prefix", str(tmp_path / "another-venv"))
    assert regress.cache_dir() not in (here, other)
