"""Design-space sweeps: a YAML spec validated once, expanded into configurations, run on a backend, resumable.

Unit of work = one *configuration* (accelerator, workload, arch overrides, tiles), evaluated vectorised over all
of its (sequence length, batch) points in one engine call. Each finished configuration is written to its own part
file under ``OUT/parts`` (atomically), so an interrupted sweep restarts where it stopped and loses no finished
point. The parts are concatenated into ``results.csv`` (and ``results.parquet`` when pyarrow is installed).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator, model_validator

from attnforge.sim.specs.errors import SpecError, from_pydantic, read_yaml
from attnforge.sim.specs.scenario import Scenario


class SweepSpec(BaseModel):
    """What to sweep. Grid mode takes the full product; random mode samples ``samples`` points of it (seeded)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "sweep"
    mode: Literal["grid", "random"] = "grid"
    samples: PositiveInt | None = None
    seed: int = 0
    accelerators: list[str] = Field(min_length=1)
    workloads: list[str] = Field(min_length=1)
    seq_lens: list[int | str] = Field(min_length=1)
    batch: list[PositiveInt] = Field(default_factory=lambda: [64])
    scope: Literal["attention", "end-to-end"] = "attention"
    stage: Literal["prefill", "decode"] = "prefill"
    #: None: each model's own (GPT-2 causal, BERT not); true/false forces it for every workload.
    causal: bool | None = None
    #: Dotted arch field -> list of values, e.g. ``buffer.bytes: [8388608, 16777216]``.
    arch: dict[str, list[Any]] = Field(default_factory=dict)
    #: Tile -> list of sizes, e.g. ``query_block: [256, 512]``; absent = searched.
    tiles: dict[str, list[PositiveInt]] = Field(default_factory=dict)

    @field_validator("seq_lens")
    @classmethod
    def _lengths(cls, v: list[int | str]) -> list[int | str]:
        from attnforge.workloads import parse_length

        for x in v:
            parse_length(str(x))
        return v

    @model_validator(mode="after")
    def _random_needs_samples(self) -> SweepSpec:
        if self.mode == "random" and self.samples is None:
            raise ValueError("mode random needs samples: N")
        for k, vals in {**self.arch, **self.tiles}.items():
            if not vals:
                raise ValueError(f"{k}: give at least one value")
        return self

    def lengths(self) -> list[int]:
        from attnforge.workloads import parse_length

        return [parse_length(str(x)) for x in self.seq_lens]


@dataclass(frozen=True)
class Config:
    """One engine call: everything but the (sequence length, batch) points, which it evaluates at once."""

    key: str
    accel: str
    workload: str
    arch: tuple[tuple[str, Any], ...]
    tiles: tuple[tuple[str, int], ...]
    points: tuple[tuple[int, int, int], ...]  # (point id, seq_len, batch)
    scope: str
    stage: str = "prefill"
    causal: bool | None = None


def packaged_specs() -> dict[str, Path]:
    """Sweep specs shipped with attnforge, by name (``attnforge sweep example``)."""
    from importlib import resources

    folder = Path(str(resources.files("attnforge.workloads").joinpath("sweeps")))
    return {f.stem: f for f in sorted(folder.glob("*.yaml"))}


def spec_path(name_or_path: str | Path) -> Path:
    """A sweep YAML by path, or a packaged spec by name."""
    p = Path(name_or_path)
    if p.is_file() or p.suffix in (".yaml", ".yml"):
        return p
    specs = packaged_specs()
    if str(name_or_path) in specs:
        return specs[str(name_or_path)]
    raise SpecError("sweep", f"no spec file or packaged spec named {str(name_or_path)!r}", specs)


def load_spec(path: str | Path) -> SweepSpec:
    raw = read_yaml(spec_path(path), "sweep", "accelerators, workloads, seq_lens, ...")
    assert isinstance(raw, dict)
    try:
        spec = SweepSpec(**raw)
    except ValidationError as exc:
        raise from_pydantic(exc, prefix="sweep") from None
    validate_names(spec)
    return spec


def validate_names(spec: SweepSpec) -> None:
    """Fail before any work starts: every accelerator, workload and arch override must resolve."""
    from attnforge.mappings import get_accelerator
    from attnforge.sim.specs.arch import load_arch
    from attnforge.workloads import get_model

    for w in spec.workloads:
        get_model(w)
    for a in spec.accelerators:
        acc = get_accelerator(a)
        for combo in _arch_combos(spec):
            load_arch(acc.arch, dict(combo))


def _arch_combos(spec: SweepSpec) -> list[tuple[tuple[str, Any], ...]]:
    keys = sorted(spec.arch)
    return [tuple(zip(keys, vals, strict=True)) for vals in itertools.product(*(spec.arch[k] for k in keys))]


def _tile_combos(spec: SweepSpec) -> list[tuple[tuple[str, int], ...]]:
    keys = sorted(spec.tiles)
    return [tuple(zip(keys, vals, strict=True)) for vals in itertools.product(*(spec.tiles[k] for k in keys))]


def expand(spec: SweepSpec) -> list[Config]:
    """Grid (or a seeded random subset of it) grouped into vectorisable configurations, in a stable order."""
    lengths, batches = spec.lengths(), list(spec.batch)
    outer = list(itertools.product(spec.accelerators, spec.workloads, _arch_combos(spec), _tile_combos(spec)))
    inner = list(itertools.product(lengths, batches))
    total = len(outer) * len(inner)
    if spec.mode == "random":
        rng = np.random.default_rng(spec.seed)
        chosen = set(rng.choice(total, size=min(spec.samples or total, total), replace=False).tolist())
    else:
        chosen = set(range(total))
    configs: list[Config] = []
    for i, (acc, wl, arch, tiles) in enumerate(outer):
        pts = tuple((i * len(inner) + j, s, b) for j, (s, b) in enumerate(inner) if i * len(inner) + j in chosen)
        if not pts:
            continue
        # Everything that determines the part's rows is in its key, so a changed spec never reuses a stale part.
        ident = json.dumps([acc, wl, arch, tiles, spec.scope, spec.stage, spec.causal, pts, _version()], sort_keys=True,
                           default=str)
        key = hashlib.sha1(ident.encode()).hexdigest()[:12]
        configs.append(Config(key, acc, wl, arch, tiles, pts, spec.scope, spec.stage, spec.causal))
    return configs


def _version() -> str:
    from attnforge.sim.specs.version import __version__

    return __version__


def config_scenario(cfg: Config) -> Scenario:
    """The Scenario of one configuration: all of its (sequence length, batch) points in one engine call."""
    seqs = tuple(p[1] for p in cfg.points)
    sc = Scenario.build(accelerator=cfg.accel, workload=cfg.workload, seq_lens=[seqs[0]], scope=cfg.scope,
                        stage=cfg.stage, causal=cfg.causal, overrides=dict(cfg.arch), tiles=dict(cfg.tiles))
    ps = tuple(1 for _ in seqs) if cfg.stage == "decode" else seqs
    return sc.with_(p=ps, m=seqs, batch=tuple(p[2] for p in cfg.points))


def run_config(cfg: Config) -> list[dict[str, Any]]:
    """Evaluate one configuration (all its points in one vectorised call) into flat rows."""
    from attnforge.sim.analytical.engine import run

    rows = []
    for (pid, _, _), r in zip(cfg.points, run(config_scenario(cfg)), strict=True):
        row: dict[str, Any] = {"point": pid, "config": cfg.key}
        row.update({f"arch.{k}": json.dumps(v) if isinstance(v, (list, dict)) else v for k, v in cfg.arch})
        row.update({f"tile.{k}": v for k, v in cfg.tiles})
        for k, v in r.to_dict().items():
            if k in ("overrides", "policy_settings"):
                row[k] = json.dumps(v, sort_keys=True)
            elif isinstance(v, dict):
                row.update({f"{k}.{kk}": vv for kk, vv in v.items()})
            else:
                row[k] = v
        row["tflops"] = r.flops / r.latency_s / 1e12 if r.latency_s else 0.0
        rows.append(row)
    return rows


# ---- backends ------------------------------------------------------------------------------------------------

Runner = Callable[[list[Config]], Iterator[tuple[Config, list[dict[str, Any]]]]]


def local_backend(workers: int | None = None) -> Runner:
    """All cores by default, through the standard library's process pool; one worker runs in-process."""

    def run(configs: list[Config]) -> Iterator[tuple[Config, list[dict[str, Any]]]]:
        n = workers or os.cpu_count() or 1
        if n <= 1 or len(configs) <= 1:
            for c in configs:
                yield c, run_config(c)
            return
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=n) as pool:
            futs = {pool.submit(run_config, c): c for c in configs}
            for f in as_completed(futs):
                yield futs[f], f.result()

    return run


def ray_backend(address: str | None = None, num_cpus: int | None = None) -> Runner:
    """Ray tasks: a local Ray instance by default, or a running cluster at ``address``."""
    try:
        import ray
    except ImportError:
        raise SpecError("--backend", "ray is not installed (pip install ray)", ["local", "ray"]) from None

    def run(configs: list[Config]) -> Iterator[tuple[Config, list[dict[str, Any]]]]:
        started = False
        if not ray.is_initialized():
            kw: dict[str, Any] = {"address": address} if address else {"num_cpus": num_cpus, "include_dashboard": False}
            ray.init(ignore_reinit_error=True, log_to_driver=False, **kw)
            started = True
        try:
            task = ray.remote(run_config)
            pending = {task.remote(c): c for c in configs}
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    yield pending.pop(ref), ray.get(ref)
        finally:
            if started:
                ray.shutdown()

    return run


BACKENDS: tuple[str, ...] = ("local", "ray")


def get_backend(name: str, address: str | None = None, workers: int | None = None) -> Runner:
    if name == "local":
        return local_backend(workers)
    if name == "ray":
        return ray_backend(address, workers)
    raise SpecError("--backend", f"unknown backend {name!r}", BACKENDS)


# ---- running, resuming, collecting ---------------------------------------------------------------------------


def run_sweep(
    spec: SweepSpec,
    out: Path,
    backend: Runner,
    progress: bool = True,
    stop_after: int | None = None,
) -> pd.DataFrame:
    """Run what is not done yet, then collect every part. ``stop_after`` (tests) simulates an interruption."""
    from tqdm import tqdm

    parts = out / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    (out / "spec.json").write_text(spec.model_dump_json(indent=1))
    configs = expand(spec)
    todo = [c for c in configs if not (parts / f"{c.key}.csv").exists()]
    bar = tqdm(total=sum(len(c.points) for c in configs), initial=sum(len(c.points) for c in configs if c not in todo),
               unit="pt", desc=spec.name, disable=not progress)
    done = 0
    for cfg, rows in backend(todo):
        tmp = parts / f".{cfg.key}.csv.tmp"
        pd.DataFrame(rows).to_csv(tmp, index=False)
        tmp.replace(parts / f"{cfg.key}.csv")  # atomic: a part exists only when complete
        bar.update(len(cfg.points))
        done += 1
        if stop_after is not None and done >= stop_after:
            bar.close()
            raise KeyboardInterrupt("stopped on request")
    bar.close()
    return collect(out, configs)


def collect(out: Path, configs: list[Config]) -> pd.DataFrame:
    frames = [pd.read_csv(out / "parts" / f"{c.key}.csv") for c in configs]
    df = pd.concat(frames, ignore_index=True).sort_values("point").reset_index(drop=True)
    # Pareto among designs doing the same work: same workload, sequence length, batch and scope.
    df["pareto"] = False
    for _, idx in df.groupby(["workload", "seq_len", "batch", "scope"]).groups.items():
        df.loc[idx, "pareto"] = pareto_mask(df.loc[idx, ["latency_s", "energy_j", "area_mm2"]].to_numpy())
    df.to_csv(out / "results.csv", index=False)
    try:
        df.to_parquet(out / "results.parquet", index=False)
    except ImportError:
        pass
    return df


def pareto_mask(costs: np.ndarray) -> np.ndarray:
    """True for points no other point beats or ties in every cost while beating it in one (minimisation)."""
    n = len(costs)
    keep = np.ones(n, dtype=bool)
    order = np.lexsort(costs.T[::-1])
    for idx in order:
        if not keep[idx]:
            continue
        dominated = np.all(costs[idx] <= costs, axis=1) & np.any(costs[idx] < costs, axis=1)
        keep[dominated] = False
    return keep


def plot_pareto(df: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    # One panel for the largest problem (most work), where the design differences are clearest.
    key = df.sort_values("flops").iloc[-1][["workload", "seq_len", "batch", "scope"]]
    sub = df[(df[["workload", "seq_len", "batch", "scope"]] == key.values).all(axis=1)]
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    sc = ax.scatter(sub["latency_s"], sub["energy_j"], c=sub["area_mm2"], s=24, alpha=0.7, cmap="viridis")
    front = sub[sub["pareto"]].sort_values("latency_s")
    ax.scatter(front["latency_s"], front["energy_j"], facecolors="none", edgecolors="red", s=60,
               label="Pareto (latency, energy, area)")
    from matplotlib.ticker import NullFormatter

    ax.set_xscale("log")
    ax.set_yscale("log")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_minor_formatter(NullFormatter())
    ax.set_title(f"{key['workload']}, seq {key['seq_len']}, batch {key['batch']}, {key['scope']}", fontsize=9)
    ax.set_xlabel("latency (s)")
    ax.set_ylabel("energy (J)")
    fig.colorbar(sc, ax=ax, label="area (mm²)")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
