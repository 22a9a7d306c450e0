"""The installed package: one import name, every subpackage listed, data files shipped, and (slow) a real wheel
that works from an empty folder: simulate, a packaged sweep and trace by name, RTL export and a quick regression."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"attnforge": "attnforge", "sim": "attnforge.sim", "rtl": "attnforge.rtl", "mappings": "attnforge.mappings",
           "workloads": "attnforge.workloads", "reports": "attnforge.reports"}


def _config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_subpackage_is_listed() -> None:
    """Automatic discovery does not follow package-dir, so a new folder with an __init__.py must be listed."""
    found = set()
    for folder, name in FOLDERS.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            found.add(".".join([name, *rel.parts]))
    assert found == set(_config()["packages"])


def test_package_dirs_map_the_user_folders() -> None:
    assert _config()["package-dir"] == {v: k for k, v in FOLDERS.items()}


def test_no_generic_top_level_import_names() -> None:
    assert all(p == "attnforge" or p.startswith("attnforge.") for p in _config()["packages"])


@pytest.mark.slow
def test_wheel_works_from_an_empty_folder(tmp_path: Path) -> None:
    """Build the wheel, install it (no dependencies: the test venv has them) into a target folder that shadows the
    checkout, and run the CLI from an empty folder, as a user of `pip install attnforge` would."""
    wheels, site, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    pip = [sys.executable, "-m", "pip", "-q"]
    had_build = (ROOT / "build").exists()
    try:
        subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w", str(wheels), str(ROOT)], check=True)
    finally:  # setuptools builds in place: leave the checkout as it was
        if not had_build:
            shutil.rmtree(ROOT / "build", ignore_errors=True)
    wheel = next(wheels.glob("attnforge-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)
    assert sorted(p.name for p in site.iterdir() if not p.name.endswith(".dist-info")) == ["attnforge", "bin"]
    env = {**os.environ, "PYTHONPATH": str(site), "ATTNFORGE_CACHE": str(tmp_path / "cache")}

    def cli(*args: str) -> str:
        out = subprocess.run([sys.executable, "-m", "attnforge", *args], cwd=work, env=env, capture_output=True,
                             text=True, timeout=600)
        assert out.returncode == 0, out.stderr[-2000:]
        return out.stdout

    where = subprocess.run([sys.executable, "-c", "import attnforge.sim; print(attnforge.sim.__file__)"], cwd=work,
                           env=env, capture_output=True, text=True, check=True).stdout
    assert where.startswith(str(site))
    assert "fusemax" in cli("simulate", "--seq-len", "1k")
    cli("sweep", "example", "-o", "out/sweep", "--quiet", "--workers", "1")
    assert (work / "out" / "sweep" / "results.csv").is_file()
    assert "speedup_vs_baseline" in cli("simulate", "--trace", "gpt2-small-wikitext2-per8")
    cli("rtl", "pe", "-o", "out/rtl")
    assert any((work / "out" / "rtl").glob("*.v"))
    cli("regress", "--quick", "--design", "pe", "--report", "out/regress")
    assert not list(site.glob("**/sim_build")) and not (site / "attnforge" / "build").exists()


def test_plain_checkout_imports_its_own_folders(tmp_path: Path) -> None:
    """Without any install (no site-packages, so no editable finder), ``attnforge.sim`` is this checkout's sim/:
    the package extends its path before it imports anything below it."""
    code = "import attnforge, attnforge.sim.specs.version as v; print(v.__file__)"
    out = subprocess.run([sys.executable, "-S", "-c", code], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "")}, check=True)
    assert Path(out.stdout.strip()).resolve() == (ROOT / "sim" / "specs" / "version.py").resolve()
