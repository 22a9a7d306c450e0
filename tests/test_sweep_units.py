"""The grouped, vectorised sweep path (units of configurations differing only in clock and DRAM bandwidth) gives
exactly the rows of the per-configuration path; ``attnforge bench`` JSON shapes. No timings asserted here."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
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
    "list-valued-arch-field": dict(accelerators=["fusemax"], workloads=["gpt2-small"], seq_lens=["2k"], batch=[4],
                                   arch={"arrays.2d.dims": [[128, 128], [256, 256]],
                                         "dram.bandwidth_gib_s": [100, 200.5]}),
    "user-mapping": dict(accelerators=["fusemax"], workloads=["bert-base"], seq_lens=["1k", "4k"], batch=[1],
                         mapping=str(Path(__file__).resolve().parent.parent / "examples" / "variants"
                                     / "maxfree-fusemax.yaml"),
                         arch={"clock_mhz": [800, 1000], "dram.bandwidth_gib_s": [100, 300]}),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_unit_rows_equal_per_config_rows(case: str) -> None:
    """A unit (one arch, clock and bandwidth per point, each shape scheduled once) gives the rows of evaluating
    each configuration on its own, as a CSV of them reads back: the same text, values and types."""
    spec = SweepSpec(name=case, **CASES[case])  # type: ignore[arg-type]
    configs = expand(spec)
    us = units(configs)
    assert len(us) < len(configs)  # clock and bandwidth were grouped
    assert sorted(c.key for u in us for c in u.configs) == sorted(c.key for c in configs)
    for u in us:
        fast = run_unit(u)
        slow = pd.DataFrame([r for c in u.configs for r in run_config(c)])
        # parts used to be CSV read back by pandas: the rows are what that read gave ("null" text is missing)
        back = pd.read_csv(io.StringIO(slow.to_csv(index=False)), dtype={"config": str})
        if isinstance(fast, pd.DataFrame):  # no pyarrow
            assert fast.to_csv(index=False) == back.to_csv(index=False)
            continue
        from attnforge.sweep_csv import to_csv

        assert fast.column_names == list(slow.columns)
        assert to_csv(fast) == back.to_csv(index=False).encode()
        got = fast.to_pandas()
        for c in back.columns:
            if back[c].isna().all():
                assert got[c].isna().all(), c
            else:
                assert got[c].dtype.kind == back[c].dtype.kind or back[c].dtype.kind in "OT", c
        pd.testing.assert_frame_equal(got, back, check_exact=True, check_dtype=False)


def test_same_rows_without_pyarrow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without pyarrow, parts are CSV and pandas writes results.csv: the same bytes as the Arrow path."""
    import attnforge.sweep_runner as runner
    import attnforge.sweep_store as store

    spec = SweepSpec(name="noarrow", **CASES["spatten-and-cascade"])  # type: ignore[arg-type]
    run_sweep(spec, tmp_path / "arrow", local_backend(1), progress=False)
    monkeypatch.setattr(store, "have_arrow", lambda: False)
    monkeypatch.setattr(runner, "have_arrow", lambda: False)
    df = run_sweep(spec, tmp_path / "pandas", local_backend(1), progress=False)
    assert isinstance(run_unit(units(expand(spec))[0]), pd.DataFrame)
    assert sorted(p.suffix for p in (tmp_path / "pandas" / "parts").iterdir()) == [".csv"] * len(units(expand(spec)))
    assert (tmp_path / "pandas" / "results.csv").read_bytes() == (tmp_path / "arrow" / "results.csv").read_bytes()
    assert not (tmp_path / "pandas" / "results.parquet").exists() and len(df) == 32


def test_shared_shapes_give_the_same_numbers() -> None:
    """Scheduling each distinct (P, M, batch) once and gathering it to every point gives exactly the numbers of
    scheduling every point (the engine's own arrays, per point clocks and bandwidths)."""
    from attnforge.sim.analytical.engine import evaluate
    from attnforge.workloads import get_model

    rng = np.random.default_rng(3)
    n = 48
    seq = 1 << rng.integers(8, 12, n)
    batch = rng.choice([1, 4, 16], n)
    clock, bw = rng.choice([500.0, 940.0, 1200.5], n), rng.choice([100.0, 400.0], n)
    for accel, kw in (("fusemax", {"scope": "end-to-end"}), ("spatten", {"causal": True}), ("flat", {"stage": "decode"})):
        p = np.ones(n) if kw.get("stage") == "decode" else seq.astype(float)
        args = dict(p=p, m=seq.astype(float), batch=batch.astype(float), clock_mhz=clock, dram_bandwidth_gib_s=bw, **kw)
        a = evaluate(accel, get_model("gpt2-small"), **args)  # type: ignore[arg-type]
        b = evaluate(accel, get_model("gpt2-small"), shared_shapes=True, **args)  # type: ignore[arg-type]
        for name in ("cycles", "compute_cycles", "memory_cycles", "roofline_cycles", "latency_s", "energy_j"):
            np.testing.assert_array_equal(np.broadcast_to(getattr(a, name), n), np.broadcast_to(getattr(b, name), n))
        for k, v in a.energy_pj.items():
            np.testing.assert_array_equal(np.broadcast_to(v, n), np.broadcast_to(b.energy_pj[k], n))
        for k, v in a.schedule.extra.items():
            np.testing.assert_array_equal(np.broadcast_to(v, n), np.broadcast_to(b.schedule.extra[k], n))


def test_spatten_clock_and_bandwidth_arrays_equal_an_arch_per_value() -> None:
    """A SpAtten schedule serves a sweep of clocks and bandwidths: the fetcher ports' bound is in bytes per cycle
    (Stage.port_bytes_per_cycle) and the resident/tiled choice is the engine's, so every point equals a run of an
    arch carrying its values. A3 on SpAtten1/8 (4 ports: 128 B/cycle) past its 64 GB/s, 64 queries against 1500
    keys (heads past one half of the K/V SRAM: the choice flips along the sweep), and a GPT-2 decode step."""
    from attnforge.api import simulate
    from attnforge.sim.analytical.engine import evaluate
    from attnforge.sim.specs.arch import get_preset
    from attnforge.workloads import get_model

    clock = np.array([500.0, 1000.0, 1000.0, 1000.0, 2000.0])
    bw = np.array([32.0, 16.0, 128.0, 512.0, 512.0])
    n = len(bw)
    for accel, wl, p, m, stage in (("a3", "bert-base", 64, 1500, "prefill"), ("spatten", "gpt2-small", 1, 992, "decode")):
        ev = evaluate(accel, get_model(wl), p=np.full(n, float(p)), m=np.full(n, float(m)), batch=np.ones(n),
                      clock_mhz=clock, dram_bandwidth_gib_s=bw, shared_shapes=True, stage=stage,
                      arch=get_preset("spatten-1-8" if accel == "a3" else "spatten"))
        tiled = set()
        for i in range(n):
            r = simulate(accelerator=accel, workload=wl, seq_lens=[m], p=p if stage == "prefill" else None,
                         stage=stage, batch=1, overrides={"clock_mhz": clock[i], "dram.bandwidth_gib_s": bw[i]})[0]
            assert ev.cycles[i] == r.cycles and ev.energy_j[i] == r.energy_j, (accel, i)
            tiled.add(float(r.extra["tiled_layers"]))
        assert accel != "a3" or tiled == {0.0, 12.0}


def test_pareto_in_bulk_equals_per_group() -> None:
    from attnforge.sweep_store import _pareto_sweep, pareto_mask

    rng = np.random.default_rng(0)
    for trial in range(200):
        n = int(rng.integers(1, 120))
        codes = rng.integers(0, int(rng.integers(1, 5)), n)
        costs = (rng.integers(0, 4, (n, 3)).astype(float) if trial % 2
                 else rng.random((n, 3)).round(int(rng.integers(1, 3))))  # ties and exact duplicates
        want = np.zeros(n, dtype=bool)
        for g in np.unique(codes):
            idx = np.flatnonzero(codes == g)
            want[idx] = pareto_mask(costs[idx])
        np.testing.assert_array_equal(_pareto_sweep(codes, costs), want)


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
    """A 1M-point grid completes on the local backend (past the default --max-points when asked) and on Ray (the
    backend ``sweep --backend ray --workers 2`` gets), with identical CSVs."""
    from attnforge.bench_sweep import sweep_spec

    spec = sweep_spec(1_000_000)
    n = 1_000_000 // 2400 * 2400 + (2400 if 1_000_000 % 2400 else 0)
    local = run_sweep(spec, tmp_path / "local", local_backend(1), progress=False, max_points=n)
    assert len(local) == n >= 1_000_000
    pytest.importorskip("ray")
    from attnforge.sweep_runner import get_backend

    run_sweep(spec, tmp_path / "ray", get_backend("ray", workers=2), progress=False, max_points=n)
    assert (tmp_path / "local" / "results.csv").read_bytes() == (tmp_path / "ray" / "results.csv").read_bytes()


def test_pareto_weighs_latency_and_energy_per_layer() -> None:
    """A SpAtten row covers the model's 12 layers, a FuseMax row one: the Pareto flag compares them per layer, in
    both the pandas and the pyarrow collector; parts written without the column count one layer."""
    import pyarrow as pa

    from attnforge.sweep_store import collect_frames, collect_tables

    df = pd.DataFrame({"point": [0, 1], "workload": ["bert-base"] * 2, "seq_len": [1024] * 2, "batch": [1] * 2,
                       "scope": ["attention"] * 2, "latency_s": [12.0, 2.0], "energy_j": [12.0, 2.0],
                       "area_mm2": [1.0, 1.0], "layers": [12, 1]})
    assert list(collect_frames([df])["pareto"]) == [True, False]  # 1 s and 1 J per layer beat 2
    assert collect_tables([pa.Table.from_pandas(df)])["pareto"].to_pylist() == [True, False]
    assert list(collect_frames([df.drop(columns="layers")])["pareto"]) == [False, True]
