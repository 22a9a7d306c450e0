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


def test_export_is_reused_only_when_nothing_it_comes_from_changed(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    """A second export of the same design and parameters into the same folder is the first one's files (no
    elaboration); other parameters, a damaged Verilog file or other generator sources elaborate again."""
    from attnforge.rtl import export as ex

    first = ex.export("pe", {"depth": 16}, tmp_path)
    calls: list[str] = []
    real_build = ex.build
    monkeypatch.setattr(ex, "build", lambda d, p: calls.append(d) or real_build(d, p))
    assert ex.export("pe", {"depth": 16}, tmp_path) == first and calls == []
    other = ex.export("pe", {"depth": 32}, tmp_path)
    assert calls == ["pe"] and other["source_key"] != first["source_key"]
    ex.export("pe", {"depth": 16}, tmp_path)  # the folder now holds depth 32: depth 16 again elaborates
    vfile = tmp_path / str(first["verilog"])
    vfile.write_text(vfile.read_text() + "// edited\n")
    assert ex.export("pe", {"depth": 16}, tmp_path)["sha256"] == first["sha256"] and calls == ["pe"] * 3
    monkeypatch.setattr(ex, "source_key", lambda: "another generator")
    ex.export("pe", {"depth": 16}, tmp_path)
    assert calls == ["pe"] * 4
