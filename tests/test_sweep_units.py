"""The grouped, vectorised sweep path (units of configurations differing only in clock and DRAM bandwidth) gives
exactly the rows of the per-configuration path; ``attnforge bench`` JSON shapes. No timings asserted here."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from attnforge.cli.main import main
from attnforge.sweep_runner import SweepSpec, expand, local_backend, run_config, run_sweep, run_unit, units

CASES = {
    "cascade-e2e-decode-tiles": dict(accelerators=["fusemax", "flat"], workloads=["bert-base", "llama2-7b"],
                                     seq_lens=["1k", "4k"], batch=[1, 8], scope="end-to-end", stage="decode",
                                     arch={"clock_mhz": [700, 940.5], "buffer.bytes": [8388608, 16777216],
                                           "dram.bandwidth_gib_s": [200, 400]},
                                     tiles={"query_block": [256, 512]}),
    "spatten-and-cascade": dict(accelerators=["spatten", "fusemax"], workloads=["gpt2-small"], seq_lens=["1k", "2k"],
                                batch=[1, 4], arch={"clock_mhz": [800, 1000], "dram.bandwidth_gib_s": [100, 300]}),
    "user-mapping": dict(accelerators=["fusemax"], workloads=["bert-base"], seq_lens=["1k", "4k"], batch=[1],
                         mapping=str(Path(__file__).resolve().parent.parent / "examples" / "variants"
                                     / "maxfree-fusemax.yaml"),
                         arch={"clock_mhz": [800, 1000], "dram.bandwidth_gib_s": [100, 300]}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_unit_rows_equal_per_config_rows(case: str) -> None:
    spec = SweepSpec(name=case, **CASES[case])  # type: ignore[arg-type]
    configs = expand(spec)
    us = units(configs)
    assert len(us) < len(configs)  # clock and bandwidth were grouped
    assert sorted(c.key for u in us for c in u.configs) == sorted(c.key for c in configs)
    for u in us:
        fast = run_unit(u)
        slow = pd.DataFrame([r for c in u.configs for r in run_config(c)])
        assert list(fast.columns) == list(slow.columns)
        pd.testing.assert_frame_equal(fast, slow, check_exact=True)
        assert fast.to_csv(index=False) == slow.to_csv(index=False)


def test_units_are_capped(tmp_path: Path) -> None:  # noqa: D103
    spec = SweepSpec(name="cap", **CASES["spatten-and-cascade"])  # type: ignore[arg-type]
    configs = expand(spec)
    small = units(configs, max_points=8)
    assert all(u.size <= 8 for u in small) and sum(u.size for u in small) == sum(len(c.points) for c in configs)
    a = run_sweep(spec, tmp_path / "a", local_backend(1), progress=False)
    assert len(a) == sum(len(c.points) for c in configs)


def test_bench_json_shapes(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "--json", "--points", "50", "--repeats", "1"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["evals_per_s"] > 0 and d["points"] == 50
    assert main(["bench", "--sweep", "--json", "--points", "100"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert {"points", "seconds", "points_per_s", "engine_evals_per_s"} <= set(d)
    assert d["points"] == 2400 and d["points_per_s"] > 0 and d["engine_evals_per_s"] > 0
    assert d["wrote"][0] == "results.csv"


@pytest.mark.slow
def test_million_point_grid_local_and_ray(tmp_path: Path) -> None:
    """A 1M-point grid completes on the local backend (past the default --max-points when asked) and on Ray, with
    identical CSVs."""
    from attnforge.bench_sweep import sweep_spec

    spec = sweep_spec(1_000_000)
    n = 1_000_000 // 2400 * 2400 + (2400 if 1_000_000 % 2400 else 0)
    local = run_sweep(spec, tmp_path / "local", local_backend(1), progress=False, max_points=n)
    assert len(local) == n >= 1_000_000
    pytest.importorskip("ray")
    from attnforge.sweep_runner import ray_backend

    run_sweep(spec, tmp_path / "ray", ray_backend(num_cpus=2), progress=False, max_points=n)
    assert (tmp_path / "local" / "results.csv").read_bytes() == (tmp_path / "ray" / "results.csv").read_bytes()
