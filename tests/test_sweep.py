"""Sweeps: expansion, resumption without losing finished points, backends agreeing, Pareto, HTML report."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from attnforge.cli.main import main
from attnforge.sim.specs.errors import SpecError
from attnforge.sweep_runner import SweepSpec, expand, load_spec, local_backend, pareto_mask, run_sweep
from attnforge.sweep_store import part_suffix

SPEC = """
name: t
accelerators: [flat, fusemax]
workloads: [bert-base, xlm]
seq_lens: [1k, 4k, 16k]
batch: [1, 64]
arch:
  buffer.bytes: [8388608, 33554432]
  dram.bandwidth_gib_s: [100, 400]
"""


@pytest.fixture
def spec(tmp_path: Path) -> SweepSpec:
    f = tmp_path / "s.yaml"
    f.write_text(SPEC)
    return load_spec(f)


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=[c for c in df.columns if c.startswith("tiles.")]).sort_values("point").reset_index(drop=True)


def test_grid_expansion_counts(spec: SweepSpec) -> None:
    cfgs = expand(spec)
    assert len(cfgs) == 2 * 2 * 4  # accelerators x workloads x arch combos
    assert sum(len(c.points) for c in cfgs) == 2 * 2 * 4 * 3 * 2
    ids = [p[0] for c in cfgs for p in c.points]
    assert sorted(ids) == list(range(len(ids)))


def test_random_mode_is_a_seeded_subset(spec: SweepSpec) -> None:
    r = spec.model_copy(update={"mode": "random", "samples": 17})
    a = [p[0] for c in expand(r) for p in c.points]
    b = [p[0] for c in expand(r) for p in c.points]
    c = [p[0] for c in expand(r.model_copy(update={"seed": 1})) for p in c.points]
    assert len(a) == 17 and a == b and a != c and max(a) < 96


def test_resume_loses_nothing_and_recomputes_nothing(spec: SweepSpec, tmp_path: Path) -> None:
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, out, local_backend(1), progress=False, stop_after=5)
    parts = sorted((out / "parts").glob(f"*{part_suffix()}"))
    assert len(parts) == 5
    stamps = {p.name: p.stat().st_mtime_ns for p in parts}
    resumed = run_sweep(spec, out, local_backend(1), progress=False)
    for p in parts:
        assert p.stat().st_mtime_ns == stamps[p.name], "a finished configuration was recomputed"
    fresh = run_sweep(spec, tmp_path / "fresh", local_backend(1), progress=False)
    pd.testing.assert_frame_equal(_frame(resumed), _frame(fresh))
    assert len(resumed) == 96 and (out / "results.csv").exists()
    pytest.importorskip("pyarrow")
    pd.testing.assert_frame_equal(pd.read_parquet(out / "results.parquet"), pd.read_csv(out / "results.csv"), check_dtype=False)


def test_process_pool_matches_in_process(spec: SweepSpec, tmp_path: Path) -> None:
    a = run_sweep(spec, tmp_path / "a", local_backend(1), progress=False)
    b = run_sweep(spec, tmp_path / "b", local_backend(2), progress=False)
    pd.testing.assert_frame_equal(_frame(a), _frame(b))


def test_sweep_points_equal_single_simulations(spec: SweepSpec, tmp_path: Path) -> None:
    from helpers import simulate

    from attnforge.sim.specs.arch import load_arch
    from attnforge.workloads import make_workload

    df = run_sweep(spec, tmp_path / "x", local_backend(1), progress=False)
    row = df[(df.accelerator == "fusemax") & (df.workload == "xlm") & (df.seq_len == 4096) & (df.batch == 1)
             & (df["arch.buffer.bytes"] == 8388608) & (df["arch.dram.bandwidth_gib_s"] == 100)].iloc[0]
    arch = load_arch("fusemax", {"buffer.bytes": 8388608, "dram.bandwidth_gib_s": 100})
    r = simulate("fusemax", make_workload("xlm", batch=1, seq_len=4096), arch=arch)
    assert row["cycles"] == pytest.approx(r.cycles, rel=1e-12)
    assert row["energy_j"] == pytest.approx(r.energy_j, rel=1e-12)


def test_bigger_buffer_costs_more_energy_per_access() -> None:
    from attnforge.sim.specs.arch import load_arch

    small, big = load_arch("fusemax", {"buffer.bytes": 4 << 20}), load_arch("fusemax", {"buffer.bytes": 64 << 20})
    assert big.pj("buffer", "read") == pytest.approx(small.pj("buffer", "read") * 4)
    assert big.area_mm2() > small.area_mm2()


def test_pareto_mask_hand_example() -> None:
    costs = np.array([[1, 5, 1], [2, 2, 1], [3, 3, 1], [5, 1, 1], [2, 2, 1], [1, 5, 2]], dtype=float)
    # [3,3] is dominated by [2,2]; [1,5,2] by [1,5,1]; the two [2,2,1] ties both stay.
    assert pareto_mask(costs).tolist() == [True, True, False, True, True, False]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("accelerators: [nope]\nworkloads: [bert-base]\nseq_lens: [1k]\n", "accel"),
        ("accelerators: [flat]\nworkloads: [bert-base]\nseq_lens: [0]\n", "seq-len"),
        ("accelerators: [flat]\nworkloads: [bert-base]\nseq_lens: [1k]\nmode: random\n", "samples"),
        ("accelerators: [flat]\nworkloads: [bert-base]\nseq_lens: [1k]\nmode: sometimes\n", "mode"),
        ("accelerators: [flat]\nworkloads: [bert-base]\nseq_lens: [1k]\narch: {buffer.nope: [1]}\n", "buffer.nope"),
        ("accelerators: [flat]\nworkloads: [bert-base]\nseq_lens: [1k]\nbogus: 1\n", "bogus"),
        ("accelerators: [flat\n", "malformed YAML"),
    ],
)
def test_bad_specs(tmp_path: Path, body: str, field: str) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(body)
    with pytest.raises(SpecError, match=field.replace(".", r"\.")):
        load_spec(f)


# slow: ~9 s; the fast set runs `attnforge sweep` and `report` through docs/guide.md's commands
@pytest.mark.slow
def test_cli_sweep_then_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "s.yaml"
    f.write_text(SPEC)
    out = tmp_path / "run"
    assert main(["sweep", str(f), "-o", str(out), "--quiet", "--workers", "1"]) == 0
    assert "96 points" in capsys.readouterr().out
    assert (out / "pareto.png").stat().st_size > 0
    assert main(["report", str(out)]) == 0
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "Pareto-optimal designs" in page and "<table" in page
    assert "http://" not in page and "https://" not in page  # offline: nothing fetched
    assert main(["report", str(tmp_path)]) == 2


def test_report_on_compare_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["compare", "--accels", "flat,fusemax", "--seq-len", "1k,4k", "-o", str(tmp_path)]) == 0
    assert main(["report", str(tmp_path)]) == 0
    page = (tmp_path / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 3


# ---- resume correctness, confinement, locking, size guard (issue #18) ----------------------------------------------
def _small(tmp_path: Path, extra: str = "") -> SweepSpec:
    f = tmp_path / "small.yaml"
    f.write_text("accelerators: [flat, fusemax]\nworkloads: [bert-base]\nseq_lens: [1k, 4k]\nbatch: [1]\n"
                 "arch:\n  buffer.bytes: [8388608, 33554432]\n" + extra)
    return load_spec(f)


def test_damaged_parts_are_recomputed_not_trusted(tmp_path: Path) -> None:
    spec = _small(tmp_path)
    out = tmp_path / "run"
    fresh = run_sweep(spec, out, local_backend(1), progress=False)
    parts = sorted((out / "parts").glob(f"*{part_suffix()}"))
    assert len(parts) == 4
    data = parts[0].read_bytes()
    parts[0].write_bytes(data[: len(data) // 2])  # truncated, same name: checksum no longer matches
    parts[1].write_bytes(b"")  # 0 bytes
    stamps = {p.name: p.stat().st_mtime_ns for p in parts[2:]}
    again = run_sweep(spec, out, local_backend(1), progress=False)
    pd.testing.assert_frame_equal(_frame(again), _frame(fresh))
    for p in parts[2:]:
        assert p.stat().st_mtime_ns == stamps[p.name], "an intact part was recomputed"
    assert len(list((out / "parts").glob(f"*{part_suffix()}"))) == 4  # the damaged copies were replaced
    assert not list((out / "parts").glob("*.tmp"))


def test_raising_samples_gives_the_new_count(tmp_path: Path) -> None:
    spec = _small(tmp_path, "mode: random\nsamples: 3\n")
    out = tmp_path / "run"
    assert len(run_sweep(spec, out, local_backend(1), progress=False)) == 3
    more = spec.model_copy(update={"samples": 7})
    df = run_sweep(more, out, local_backend(1), progress=False)
    assert len(df) == 7 and df["point"].is_unique
    assert len(run_sweep(spec.model_copy(update={"samples": 100}), out, local_backend(1), progress=False)) == 8


def test_random_mode_samples_before_expanding_a_huge_grid(tmp_path: Path) -> None:
    import time

    vals = ", ".join(str((i + 1) << 20) for i in range(300))
    clocks = ", ".join(str(500 + i) for i in range(300))
    f = tmp_path / "huge.yaml"
    seqs = ", ".join(str(64 * (i + 1)) for i in range(300))
    f.write_text(f"accelerators: [fusemax]\nworkloads: [bert-base]\nseq_lens: [{seqs}]\n"
                 f"batch: [{', '.join(str(i + 1) for i in range(30))}]\nmode: random\nsamples: 5\n"
                 f"arch:\n  buffer.bytes: [{vals}]\n  clock_mhz: [{clocks}]\n")
    spec = load_spec(f)
    from attnforge.sweep_runner import estimate

    assert estimate(spec) == (300 * 300 * 300 * 30, 5)
    t0 = time.perf_counter()
    cfgs = expand(spec)
    assert sum(len(c.points) for c in cfgs) == 5 and time.perf_counter() - t0 < 5
    with pytest.raises(SpecError, match="max-points"):
        expand(spec.model_copy(update={"mode": "grid"}))


def test_spec_name_never_leaves_the_output_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    for name, safe in (("../../x", "x"), ("/abs", "abs"), ("", "sweep"), ("..", "sweep"), ("a/b\\c d", "a-b-c-d")):
        assert SweepSpec(name=name, accelerators=["flat"], workloads=["bert-base"], seq_lens=[1024]).safe_name() == safe
    f = tmp_path / "s.yaml"
    f.write_text("name: ../../escaped\naccelerators: [flat]\nworkloads: [bert-base]\nseq_lens: [1k]\nbatch: [1]\n")
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    assert main(["sweep", str(f), "--quiet", "--workers", "1"]) == 0
    assert (work / "sweeps" / "escaped" / "results.csv").exists()
    assert not (tmp_path / "escaped").exists()


def test_two_sweeps_into_one_folder_are_refused(tmp_path: Path) -> None:
    import fcntl

    spec = _small(tmp_path)
    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".lock", "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        with pytest.raises(SpecError, match="another sweep"):
            run_sweep(spec, out, local_backend(1), progress=False)
    assert len(run_sweep(spec, out, local_backend(1), progress=False)) == 8  # free again


def test_config_column_stays_text(tmp_path: Path) -> None:
    """A key such as "123456789012" is a hash, not a number: CSV and Parquet keep it a string."""
    from attnforge.sweep_store import Coded, collect_tables, stable_types, to_table

    def part(data: bytes) -> pd.DataFrame:  # a CSV part, as sweeps without pyarrow write them
        return pd.read_csv(io.BytesIO(data), dtype={"config": str})

    df = stable_types(pd.concat([part(b"point,config,x\n0,123456789012,1\n"),
                                 part(b"point,config,x\n1,00ab12cd34ef,a\n")], ignore_index=True))
    assert df["config"].tolist() == ["123456789012", "00ab12cd34ef"] and df["x"].tolist() == ["1", "a"]
    pytest.importorskip("pyarrow")
    df.to_parquet(tmp_path / "r.parquet", index=False)
    assert pd.read_parquet(tmp_path / "r.parquet")["config"].tolist() == ["123456789012", "00ab12cd34ef"]
    import pyarrow.parquet as pq

    from attnforge.sweep_csv import to_csv

    cols = {"point": np.arange(2), "config": Coded(["123456789012", "00ab12cd34ef"], np.arange(2)),
            "workload": Coded(["w"], np.zeros(2, dtype=np.int64)), "seq_len": np.ones(2, dtype=np.int64),
            "batch": np.ones(2, dtype=np.int64), "scope": Coded(["attention"], np.zeros(2, dtype=np.int64))}
    cols |= {k: np.ones(2) for k in ("latency_s", "energy_j", "area_mm2")}
    table = collect_tables([to_table(cols)])
    pq.write_table(table, tmp_path / "a.parquet")
    assert pd.read_parquet(tmp_path / "a.parquet")["config"].tolist() == ["123456789012", "00ab12cd34ef"]
    assert pd.read_csv(io.BytesIO(to_csv(table)), dtype={"config": str})["config"].tolist() == ["123456789012",
                                                                                                "00ab12cd34ef"]


def test_workers_die_with_the_parent(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import os, sys, time\n"
        "from concurrent.futures import ProcessPoolExecutor\n"
        "from attnforge.sweep_runner import _die_with_parent\n"
        "pool = ProcessPoolExecutor(1, initializer=_die_with_parent, initargs=(os.getpid(),))\n"
        "print(pool.submit(os.getpid).result(), flush=True)\n"
        "pool.submit(time.sleep, 60)\n"
        "time.sleep(60)\n")
    root = Path(__file__).resolve().parent.parent
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": str(root)})
    assert p.stdout is not None
    worker = int(p.stdout.readline())
    p.send_signal(signal.SIGKILL)
    p.wait()
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            os.kill(worker, 0)
        except ProcessLookupError:
            return
        try:  # a zombie of ours? (the worker's parent is gone, so init reaps it)
            if Path(f"/proc/{worker}/stat").read_text().split(")")[1].split()[0] == "Z":
                return
        except OSError:
            return
        time.sleep(0.1)
    os.kill(worker, signal.SIGKILL)
    pytest.fail("the pool worker outlived its parent")
