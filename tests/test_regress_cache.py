"""Built simulators are cached per checkout and Python environment, never shared between clones."""

from __future__ import annotations

from pathlib import Path

import pytest

from attnforge.rtl import cache, regress


def test_cache_folder_differs_per_checkout(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ATTNFORGE_CACHE", str(tmp_path))
    here = regress.cache_dir()
    assert here.is_relative_to(tmp_path) and here.name == "rtl-build"
    monkeypatch.setattr(cache, "IMPORT_ROOT", tmp_path / "another-clone")
    other = regress.cache_dir()
    assert other != here and other.parent != here.parent
    monkeypatch.setattr(cache.sys, "prefix", str(tmp_path / "another-venv"))
    assert regress.cache_dir() not in (here, other)


def test_export_is_reused_only_when_nothing_it_comes_from_changed(monkeypatch: pytest.MonkeyPatch,
                                                                  tmp_path: Path) -> None:
    """A second export of the same design and parameters into the same folder is the first one's files (no
    elaboration); other parameters, a damaged Verilog file or other generator sources elaborate again. With the
    export store on, an export made once is copied into any other folder without elaborating, and a damaged stored
    copy is never used."""
    from attnforge.rtl import export as ex

    monkeypatch.setenv("ATTNFORGE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ATTNFORGE_EXPORT_STORE", "0")
    out = tmp_path / "out"
    first = ex.export("pe", {"depth": 16}, out)
    calls: list[str] = []
    real_build = ex.build
    monkeypatch.setattr(ex, "build", lambda d, p: calls.append(d) or real_build(d, p))
    assert ex.export("pe", {"depth": 16}, out) == first and calls == []
    other = ex.export("pe", {"depth": 32}, out)
    assert calls == ["pe"] and other["source_key"] != first["source_key"]
    ex.export("pe", {"depth": 16}, out)  # the folder now holds depth 32: depth 16 again elaborates
    vfile = out / str(first["verilog"])
    vfile.write_text(vfile.read_text() + "// edited\n")
    assert ex.export("pe", {"depth": 16}, out)["sha256"] == first["sha256"] and calls == ["pe"] * 3
    monkeypatch.setattr(ex, "source_key", lambda: "another generator")
    ex.export("pe", {"depth": 16}, out)
    assert calls == ["pe"] * 4
    # the store: one elaboration serves every folder; a damaged stored Verilog file elaborates again
    monkeypatch.setenv("ATTNFORGE_EXPORT_STORE", "1")
    stored = ex.export("pe", {"depth": 8}, tmp_path / "a")
    assert calls == ["pe"] * 5
    assert ex.export("pe", {"depth": 8}, tmp_path / "b") == stored and calls == ["pe"] * 5
    assert (tmp_path / "b" / str(stored["verilog"])).read_text() == (tmp_path / "a" / str(stored["verilog"])).read_text()
    (kept,) = (tmp_path / "cache").rglob(str(stored["verilog"]))
    kept.write_text(kept.read_text() + "// edited\n")
    assert ex.export("pe", {"depth": 8}, tmp_path / "c")["sha256"] == stored["sha256"] and calls == ["pe"] * 6
    assert ex.export("pe", {"depth": 8}, tmp_path / "d") == stored and calls == ["pe"] * 6  # stored again, whole


def test_concurrent_exports_of_one_key_elaborate_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Two exports of the same design and parameters at once (two test workers, two regress processes) take turns
    on the store's lock: one elaborates, the other copies its files; and with a cache that cannot hold the lock file,
    exporting still works."""
    import threading

    from attnforge.rtl import export as ex

    monkeypatch.setenv("ATTNFORGE_CACHE", str(tmp_path / "cache"))
    calls: list[str] = []
    real_build = ex.build
    started = threading.Barrier(2)

    def counting_build(d: str, p: dict[str, int]) -> object:
        calls.append(d)
        return real_build(d, p)

    monkeypatch.setattr(ex, "build", counting_build)
    results: dict[int, dict[str, object]] = {}

    def one(i: int) -> None:
        started.wait()
        results[i] = ex.export("pe", {"depth": 8}, tmp_path / f"out{i}")

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["pe"] and results[0] == results[1]
    assert (tmp_path / "out0" / "pe.v").read_text() == (tmp_path / "out1" / "pe.v").read_text()
    blocked = tmp_path / "a-file"  # a cache folder that cannot be made: its parent is a file
    blocked.write_text("")
    with cache.folder_lock(blocked / "store", optional=True):
        pass
    with pytest.raises(OSError), cache.folder_lock(blocked / "store"):
        pass
