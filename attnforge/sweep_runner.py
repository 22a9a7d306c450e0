"""Design-space sweeps: a YAML spec validated once, expanded into configurations, run on a backend, resumable.

A *configuration* is (accelerator, workload, arch overrides, tiles) with its (sequence length, batch) points. The
unit of work (:class:`Unit`) is a group of configurations that differ only in arch fields entering the engine
arithmetically (:data:`ARITH_FIELDS`: clock, DRAM bandwidth): one arch, one engine call with those fields as
per-point arrays and each distinct shape scheduled once, one table built column by column (:func:`run_unit`; the
same rows as :func:`run_config`). Each distinct arch is validated once per run, each clock or bandwidth value once
on its own. Each finished unit is written once to its own part file under ``OUT/parts`` (atomically, under a
per-run temporary name), named by a key of everything that determines its rows plus a checksum of its bytes, so an
interrupted sweep restarts where it stopped, loses no finished point and never trusts a truncated or foreign part.
One sweep at a time writes into a folder (``OUT/.lock``). The parts are concatenated once into ``results.csv`` and
``results.parquet`` with stable column types (:mod:`attnforge.sweep_store`, :mod:`attnforge.sweep_csv`).

The size of a sweep is known before any work (:func:`estimate`) and capped by ``max_points``; random mode samples
its point indices first and only then builds (and validates) the configurations it picked.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain, product
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError, field_validator, model_validator

from attnforge.sim.specs.errors import SpecError, check_finite, from_pydantic, read_yaml
from attnforge.sim.specs.scenario import Scenario, check_size
from attnforge.sweep_store import (
    Coded,
    collect_frames,
    collect_tables,
    have_arrow,
    pareto_mask,  # noqa: F401 - re-exported: tests and callers import it from here
    part_bytes,
    part_suffix,
    point_ids,
    read_part_bytes,
)

#: Default cap on a sweep's points (``--max-points``): bigger grids are refused before any work.
MAX_POINTS = 1_000_000


class SweepSpec(BaseModel):
    """What to sweep. Grid mode takes the full product; random mode samples ``samples`` points of it (seeded)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = "sweep"
    mode: Literal["grid", "random"] = "grid"
    samples: PositiveInt | None = None
    seed: int = Field(default=0, ge=0, le=2**63 - 1)
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
    #: A mapping (built-in name or a mapping file, relative to the spec's folder) run by every (cascade) accelerator
    #: instead of its own; docs/variants.md.
    mapping: str | None = None

    @field_validator("seq_lens")
    @classmethod
    def _lengths(cls, v: list[int | str]) -> list[int | str]:
        from attnforge.workloads import parse_length

        for x in v:
            check_size("seq_lens", parse_length(str(x)))
        return v

    @field_validator("batch")
    @classmethod
    def _batches(cls, v: list[int]) -> list[int]:
        for x in v:
            check_size("batch", x)
        return v

    @field_validator("tiles")
    @classmethod
    def _tile_sizes(cls, v: dict[str, list[int]]) -> dict[str, list[int]]:
        for k, vals in v.items():
            for x in vals:
                check_size(f"tiles.{k}", x)
        return v

    @field_validator("arch")
    @classmethod
    def _finite(cls, v: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for k, vals in v.items():
            check_finite(vals, f"arch.{k}")
        return v

    def safe_name(self) -> str:
        """The spec's name as one safe file name (never a path): ``../../x`` -> ``x``, ``/abs`` -> ``abs``."""
        return re.sub(r"[^A-Za-z0-9._+-]+", "-", self.name).strip(".-")[:80] or "sweep"

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
    mapping: str | None = None


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
        spec = SweepSpec.model_validate({str(k): v for k, v in raw.items()})
    except ValidationError as exc:
        raise from_pydantic(exc, prefix="sweep") from None
    except (ValueError, TypeError) as exc:
        raise SpecError("sweep", str(exc).splitlines()[0]) from None
    if spec.mapping and spec.mapping.endswith((".yaml", ".yml")) and not Path(spec.mapping).is_absolute():
        spec = spec.model_copy(update={"mapping": str(spec_path(path).parent / spec.mapping)})
    validate_names(spec)
    return spec


def validate_names(spec: SweepSpec) -> None:
    """Fail before any work starts: every accelerator, workload and arch override value must resolve (each value on
    its own; the combinations a sweep actually runs are built, and so checked, by :func:`expand`)."""
    from attnforge.mappings import get_accelerator
    from attnforge.sim.specs.arch import load_arch
    from attnforge.workloads import get_model

    for w in spec.workloads:
        get_model(w)
    for a in spec.accelerators:
        acc = get_accelerator(a)
        for k, vals in spec.arch.items():
            for v in vals:
                load_arch(acc.arch, {k: v})


def _mixed_radix(index: int, sizes: list[int]) -> list[int]:
    """``index`` as digits of the mixed radix ``sizes`` (most significant first), like numpy.unravel_index but for
    Python integers of any size."""
    digits = []
    for n in reversed(sizes):
        index, d = divmod(index, n)
        digits.append(d)
    return digits[::-1]


def estimate(spec: SweepSpec) -> tuple[int, int]:
    """(grid size, points this spec runs): computed from the list lengths, without expanding anything."""
    sizes = [len(spec.accelerators), len(spec.workloads), *(len(v) for v in spec.arch.values()),
             *(len(v) for v in spec.tiles.values()), len(spec.seq_lens), len(spec.batch)]
    total = math.prod(sizes)
    return total, (min(spec.samples or total, total) if spec.mode == "random" else total)


def expand(spec: SweepSpec, max_points: int = MAX_POINTS) -> list[Config]:
    """Grid (or a seeded random subset of it) grouped into vectorisable configurations, in a stable order.

    The estimate is checked against ``max_points`` first; random mode draws its point indices before building (and
    so validating) only the configurations it picked."""
    total, n = estimate(spec)
    if n > max_points:
        raise SpecError("--max-points", f"this sweep has {n:,} points (grid of {total:,}), more than the limit of "
                        f"{max_points:,}", "raise --max-points, or use mode: random with fewer samples")
    lengths, batches = spec.lengths(), list(spec.batch)
    n_inner = len(lengths) * len(batches)
    akeys, tkeys = sorted(spec.arch), sorted(spec.tiles)
    radix = [len(spec.accelerators), len(spec.workloads), *(len(spec.arch[k]) for k in akeys),
             *(len(spec.tiles[k]) for k in tkeys)]
    if spec.mode == "random":
        if total > 2**63 - 1:
            raise SpecError("sweep", f"a grid of {total:,} points is too large to sample from", "at most 2**63 - 1")
        rng = np.random.default_rng(spec.seed)
        chosen = sorted(int(i) for i in rng.choice(total, size=n, replace=False))
    else:
        chosen = range(total)
    by_outer: dict[int, list[int] | None] = {}  # None: every inner point
    if spec.mode == "random":
        for idx in chosen:
            by_outer.setdefault(idx // n_inner, []).append(idx % n_inner)  # type: ignore[union-attr]
    else:
        by_outer = dict.fromkeys(range(total // n_inner))
    inner_l = [lengths[j // len(batches)] for j in range(n_inner)]
    inner_b = [batches[j % len(batches)] for j in range(n_inner)]
    version = _version()
    mapping = ["mapping", spec.mapping, _file_digest(spec.mapping)] if spec.mapping else None
    configs: list[Config] = []
    checked: set[Any] = set()
    digits: Iterator[Any] = (product(*(range(r) for r in radix)) if spec.mode != "random"  # the same order
                             else (_mixed_radix(o, radix) for o in by_outer))
    for (o, inner), d in zip(by_outer.items(), digits, strict=True):
        acc, wl = spec.accelerators[d[0]], spec.workloads[d[1]]
        arch = tuple((k, spec.arch[k][d[2 + i]]) for i, k in enumerate(akeys))
        tiles = tuple((k, spec.tiles[k][d[2 + len(akeys) + i]]) for i, k in enumerate(tkeys))
        base = o * n_inner
        pts = (tuple(zip(range(base, base + n_inner), inner_l, inner_b, strict=True)) if inner is None
               else tuple((base + j, inner_l[j], inner_b[j]) for j in inner))
        # Everything that determines the part's rows is in its key, so a changed spec never reuses a stale part.
        fields = [acc, wl, arch, tiles, spec.scope, spec.stage, spec.causal, pts, version]
        if mapping:  # only then, so the keys of sweeps without one stay as they were
            fields.append(mapping)
        ident = json.dumps(fields, sort_keys=True, default=str)
        key = hashlib.sha1(ident.encode()).hexdigest()[:12]
        cfg = Config(key, acc, wl, arch, tiles, pts, spec.scope, spec.stage, spec.causal, spec.mapping)
        _check_once(cfg, checked)
        configs.append(cfg)
    return configs


def _check_once(cfg: Config, checked: set[Any]) -> None:
    """Resolve what ``cfg`` needs before any work, each thing once: the scenario of its unit (accelerator,
    workload, tiles, the arch without :data:`ARITH_FIELDS`) and each of its :data:`ARITH_FIELDS` values on its own
    (plain positive numbers, independent of the rest of the arch)."""
    shape = _hashable((cfg.accel, cfg.workload, _rest(cfg), cfg.tiles))
    if shape not in checked:
        unit_scenario(cfg)
        checked.add(shape)
    for k, v in cfg.arch:
        if k in ARITH_FIELDS and (seen := _hashable((cfg.accel, k, v))) not in checked:
            arith_value(cfg.accel, k, v)
            checked.add(seen)


def _hashable(x: Any) -> Any:
    """``x`` itself as a set member, or its JSON text when it holds a list (an arch value such as ``[128, 128]``)."""
    try:
        hash(x)
    except TypeError:
        return json.dumps(x, default=str)
    return x


def _version() -> str:
    from attnforge.sim.specs.version import __version__

    return __version__


def _file_digest(ref: str) -> str:
    """A mapping file's content hash (a changed file is a new configuration); '' for a built-in name."""
    if not ref.endswith((".yaml", ".yml")):
        return ""
    from attnforge.sim.specs.errors import read_bytes

    return hashlib.sha1(read_bytes(ref, "sweep.mapping")).hexdigest()[:12]


#: Arch fields that enter the engine only arithmetically (after the schedule is built): configurations differing
#: only in these share one schedule, evaluated once with per-point arrays of them (:func:`run_unit`).
ARITH_FIELDS: tuple[str, ...] = ("clock_mhz", "dram.bandwidth_gib_s")
#: Most points one unit of work evaluates in one engine call (bounds memory; leaves work to spread over workers).
UNIT_POINTS = 1 << 17


@lru_cache(maxsize=4096)
def _resolved_arch(accel: str, overrides: str) -> tuple[Any, str, tuple[tuple[str, Any], ...]]:
    """The accelerator's arch with ``overrides`` (JSON of sorted (key, value) pairs), validated once per process."""
    from attnforge.mappings import get_accelerator
    from attnforge.sim.specs.scenario import resolve_arch

    return resolve_arch(get_accelerator(accel), None, dict(json.loads(overrides)))


@lru_cache(maxsize=1024)
def _base_scenario(accel: str, workload: str, scope: str, stage: str, causal: bool | None,
                   tiles: tuple[tuple[str, int], ...], mapping: str | None = None) -> Scenario:
    return Scenario.build(accelerator=accel, workload=workload, seq_lens=[1], scope=scope, stage=stage, causal=causal,
                          tiles=dict(tiles), mapping=mapping)


def clear_caches() -> None:
    """Forget validated archs and scenarios (each run starts from the files as they are now)."""
    _resolved_arch.cache_clear()
    _ARITH_SEEN.clear()
    _field_adapter.cache_clear()
    _base_scenario.cache_clear()


def config_scenario(cfg: Config) -> Scenario:
    """The Scenario of one configuration: all of its (sequence length, batch) points in one engine call. The same
    as ``Scenario.build`` with the configuration's overrides, with each distinct arch validated once."""
    arch, source, ovr = _resolved_arch(cfg.accel, json.dumps(sorted(cfg.arch), default=str))
    base = _base_scenario(cfg.accel, cfg.workload, cfg.scope, cfg.stage, cfg.causal, cfg.tiles, cfg.mapping)
    seqs = tuple(p[1] for p in cfg.points)
    ps = tuple(1 for _ in seqs) if cfg.stage == "decode" else seqs
    return base.with_(arch=arch, arch_source=source, overrides=ovr, p=ps, m=seqs, batch=tuple(p[2] for p in cfg.points))


def run_config(cfg: Config) -> list[dict[str, Any]]:
    """Evaluate one configuration (all its points in one vectorised call) into flat rows, one Result per point
    (the reference path; sweeps run :func:`run_unit`, which gives the same rows in bulk)."""
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


@dataclass(frozen=True)
class Unit:
    """Configurations that differ only in :data:`ARITH_FIELDS`: one schedule, one engine call, one part file."""

    key: str
    configs: tuple[Config, ...]

    @property
    def points(self) -> tuple[tuple[int, int, int], ...]:
        return tuple(p for c in self.configs for p in c.points)

    @property
    def size(self) -> int:
        return sum(len(c.points) for c in self.configs)


def units(configs: list[Config], max_points: int = UNIT_POINTS) -> list[Unit]:
    """Group configurations into units of work (in the configurations' order), at most ``max_points`` each."""
    groups: dict[Any, list[list[Config]]] = {}
    sizes: dict[Any, int] = {}  # points in each shape's last chunk
    for c in configs:
        shape = json.dumps([c.accel, c.workload, [kv for kv in c.arch if kv[0] not in ARITH_FIELDS], c.tiles,
                            c.scope, c.stage, c.causal], default=str)
        chunks = groups.setdefault(shape, [[]])
        filled = sizes.get(shape, 0)
        if chunks[-1] and filled + len(c.points) > max_points:
            chunks.append([])
            filled = 0
        chunks[-1].append(c)
        sizes[shape] = filled + len(c.points)
    out = []
    for chunks in groups.values():
        for ch in chunks:
            key = hashlib.sha1("|".join(c.key for c in ch).encode()).hexdigest()[:12]
            out.append(Unit(key, tuple(ch)))
    return out


def _col(x: Any, n: int) -> np.ndarray:
    """One engine output as n floats per point (a scalar broadcast, as ``engine._at`` reads it)."""
    a = np.asarray(x, dtype=float).reshape(-1)
    if a.size == n:
        return a
    return np.full(n, float(a[0]) if a.size else 0.0)


def _rest(cfg: Config) -> tuple[tuple[str, Any], ...]:
    """A configuration's arch overrides other than :data:`ARITH_FIELDS` (what its unit's one arch carries)."""
    return tuple(kv for kv in cfg.arch if kv[0] not in ARITH_FIELDS)


def unit_scenario(cfg: Config) -> Scenario:
    """The Scenario a unit evaluates (no points): the arch of ``cfg`` without its :data:`ARITH_FIELDS` overrides,
    validated once per distinct arch; those fields enter the engine call as per-point arrays."""
    arch, source, ovr = _resolved_arch(cfg.accel, json.dumps(sorted(_rest(cfg)), default=str))
    base = _base_scenario(cfg.accel, cfg.workload, cfg.scope, cfg.stage, cfg.causal, cfg.tiles, cfg.mapping)
    return base.with_(arch=arch, arch_source=source, overrides=ovr)


def arith_value(accel: str, key: str, value: Any) -> float:
    """One :data:`ARITH_FIELDS` value as the arch holds it once validated (a float). These fields are plain positive
    numbers that no other arch field constrains, so each value is checked on its own, once per process: by the
    field's own type (and the finiteness check every override gets), or, when that refuses it, by building the
    accelerator's arch with it, which raises the usual one-line error."""
    try:
        return _ARITH_SEEN[(accel, key, value)]
    except (KeyError, TypeError):  # TypeError: an unhashable value (a list) goes the long way
        pass
    try:
        check_finite(value, f"--set {key}")
        got = float(_field_adapter(accel, key).validate_python(value))
    except (ValidationError, SpecError, TypeError, ValueError):
        arch, _, _ = _resolved_arch(accel, json.dumps([[key, value]], default=str))
        got = float(_at_path(arch, key))
    try:
        _ARITH_SEEN[(accel, key, value)] = got
    except TypeError:
        pass
    return got


_ARITH_SEEN: dict[tuple[str, str, Any], float] = {}


@lru_cache(maxsize=64)
def _field_adapter(accel: str, key: str) -> Any:
    """A validator for one dotted arch field of ``accel``'s arch class: the field's annotation with its
    constraints (``clock_mhz: PositiveFloat``)."""
    from typing import Annotated

    from pydantic import TypeAdapter

    from attnforge.mappings import get_accelerator
    from attnforge.sim.specs.arch import get_preset

    node: Any = get_preset(get_accelerator(accel).arch)
    *path, last = key.split(".")
    for part in path:
        node = getattr(node, part)
    info = type(node).model_fields[last]
    return TypeAdapter(Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation)


def _overrides_text(cfg: Config) -> str:
    """The ``overrides`` cell of a configuration's rows: what ``Scenario.describe`` gives for its resolved arch,
    as JSON text (the overrides come back from the arch cache's JSON key, so a value is what JSON makes of it;
    dumping them directly with ``default=str`` gives the same text)."""
    return json.dumps(dict(cfg.arch), sort_keys=True, default=str)


def _evaluate_unit(cfgs: tuple[Config, ...], sc: Scenario, pts: np.ndarray, reps: np.ndarray) -> Any:
    """The one engine call of a unit: its points (P, M, batch) with each configuration's clock and DRAM bandwidth
    repeated over that configuration's points."""
    from attnforge.sim.analytical.engine import evaluate

    n = len(pts)

    def arith(key: str) -> np.ndarray:
        i = next((i for i, (k, _) in enumerate(cfgs[0].arch) if k == key), None)  # every config has the same keys
        if i is None:
            return np.full(n, float(_at_path(sc.arch, key)))
        return np.repeat([arith_value(c.accel, key, c.arch[i][1]) for c in cfgs], reps)

    f64 = np.float64
    m = pts[:, 1].astype(f64)
    p = np.ones(n) if sc.stage == "decode" else m
    return evaluate(sc.accelerator.name, sc.model, p=p, m=m, batch=pts[:, 2].astype(f64), scope=sc.scope,
                    causal=sc.causal, stage=sc.stage, arch=sc.arch, tiles=dict(sc.tiles), policy=sc.policy,
                    mapping=sc.mapping, clock_mhz=arith("clock_mhz"), dram_bandwidth_gib_s=arith("dram.bandwidth_gib_s"),
                    shared_shapes=True)


def unit_columns(unit: Unit) -> dict[str, Any]:
    """Every point of a unit from one engine call (:func:`_evaluate_unit`), as columns: numpy arrays, or
    :class:`~attnforge.sweep_store.Coded` values. The same rows, columns and order as :func:`run_config` on each
    configuration (as a CSV of them reads back)."""
    from dataclasses import fields

    from attnforge.sim.analytical.result import Result, _plain

    cfgs = unit.configs
    sc = unit_scenario(cfgs[0])
    sc.check_honoured()
    reps = np.array([len(c.points) for c in cfgs], dtype=np.int64)
    n = int(reps.sum())
    pts = np.fromiter(chain.from_iterable(chain.from_iterable(c.points for c in cfgs)), dtype=np.int64,
                      count=3 * n).reshape(n, 3)
    m, batch = pts[:, 1], pts[:, 2]
    p = np.ones(n, dtype=np.int64) if sc.stage == "decode" else m
    ev = _evaluate_unit(cfgs, sc, pts, reps)
    per_row = np.repeat(np.arange(len(cfgs)), reps)

    def per_cfg(vals: list[Any]) -> Coded:
        return Coded(vals, per_row)

    cols: dict[str, Any] = {"point": pts[:, 0], "config": per_cfg([c.key for c in cfgs])}
    for i, (k, _) in enumerate(cfgs[0].arch):
        cols[f"arch.{k}"] = per_cfg([json.dumps(v) if isinstance(v, (list, dict)) else v
                                     for v in (c.arch[i][1] for c in cfgs)])
    for k, v in cfgs[0].tiles:
        cols[f"tile.{k}"] = per_cfg([v] * len(cfgs))
    comp, mem = _col(ev.compute_cycles, n), _col(ev.memory_cycles, n)
    cycles, roof = _col(ev.cycles, n), _col(ev.roofline_cycles, n)
    lat, flops = _col(ev.latency_s, n), _col(ev.schedule.flops, n)
    s = ev.schedule

    zeros = np.zeros(n, dtype=np.int64)

    def same(v: Any) -> Coded:
        return Coded([v], zeros)

    values: dict[str, Any] = {
        "accelerator": same(ev.accelerator if sc.mapping is None else sc.label), "workload": same(sc.model.name),
        "seq_len": m, "batch": batch, "p": p, "m": m, "scope": same(sc.scope), "stage": same(sc.stage),
        "causal": same(sc.causal), "cycles": cycles, "latency_s": lat, "energy_j": _col(ev.energy_j, n),
        "energy_breakdown_j": {k: _col(v, n) * 1e-12 for k, v in ev.energy_pj.items()},
        "dram_bytes": _col(s.dram_bytes, n), "utilization": {k: _col(v, n) for k, v in ev.utilization().items()},
        "busy": {k: _col(v, n) for k, v in ev.busy().items()},
        "flops": flops, "passes": same(_plain(s.passes)),
        "bound": Coded(["memory", "compute"], (comp >= mem).astype(np.int64)), "roofline_cycles": roof,
        "roofline_bound": Coded(["compute", "memory"], (_col(ev.roofline_memory, n) >= roof).astype(np.int64)),
        "stage_cycles": {k: _col(v, n) for k, v in ev.stage_cycles.items()},
        "tiles": {k: _col(v, n) for k, v in s.tiles.items()} | {"spill_fraction": _col(s.spill_fraction, n)},
        "area_mm2": same(sc.arch.area_mm2()), "compute_cycles": comp, "memory_cycles": mem,
        "layers": same(s.layers),
    }
    row: dict[str, Any] = {}
    for fld in fields(Result):
        if fld.name not in ("scenario", "extra", "actions", "leakage_j"):  # as Result.to_dict (actions: opt-in)
            row[fld.name] = values[fld.name]  # a KeyError here: Result grew a field unit_columns does not fill
    with np.errstate(divide="ignore", invalid="ignore"):  # Result.avg_power_w, where to_dict puts it
        row["avg_power_w"] = np.where(lat != 0, values["energy_j"] / lat, 0.0)
    row.update({k: _col(v, n) for k, v in s.extra.items()})
    for k, v in sc.describe().items():
        if k == "overrides":
            row[k] = per_cfg([_overrides_text(c) for c in cfgs])
        elif k != "accelerator":
            row[k] = same(json.dumps(_plain(v), sort_keys=True) if k == "policy_settings" else v)
    for k, v in row.items():
        if isinstance(v, dict):
            cols.update({f"{k}.{kk}": vv for kk, vv in v.items()})
        else:
            cols[k] = v
    with np.errstate(divide="ignore", invalid="ignore"):
        cols["tflops"] = np.where(lat != 0, flops / lat / 1e12, 0.0)
    return cols


def _at_path(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = getattr(obj, part)
    return obj


def run_unit(unit: Unit) -> Any:
    """A unit's rows: a pyarrow Table (:mod:`attnforge.sweep_store`), or a DataFrame without pyarrow."""
    from attnforge.sweep_store import to_table

    return to_table(unit_columns(unit))


# ---- backends ------------------------------------------------------------------------------------------------

Runner = Callable[[list[Unit]], Iterator[tuple[Unit, pd.DataFrame]]]


def _die_with_parent(parent: int) -> None:
    """Process-pool initializer: a worker exits when the sweep that started it dies (killed, crashed), instead of
    computing on as an orphan. Linux: the kernel's parent-death signal; everywhere: a watchdog on the parent id."""
    import sys
    import threading

    if sys.platform.startswith("linux"):
        try:
            import ctypes
            import signal

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no libc prctl
            pass
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)

    def watch() -> None:
        import time

        while True:
            time.sleep(1.0)
            if os.getppid() != parent:
                os._exit(1)

    threading.Thread(target=watch, name="attnforge-parent-watchdog", daemon=True).start()


def local_backend(workers: int | None = None) -> Runner:
    """All cores by default, through the standard library's process pool; one worker runs in-process. Workers die
    with the parent (:func:`_die_with_parent`)."""

    def run(configs: list[Unit]) -> Iterator[tuple[Unit, pd.DataFrame]]:
        n = workers or os.cpu_count() or 1
        if n <= 1 or len(configs) <= 1:
            for c in configs:
                yield c, run_unit(c)
            return
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(max_workers=min(n, len(configs)), initializer=_die_with_parent,
                                 initargs=(os.getpid(),)) as pool:
            futs = {pool.submit(run_unit, c): c for c in configs}
            try:
                for f in as_completed(futs):
                    yield futs[f], f.result()
            finally:
                for f in futs:
                    f.cancel()

    return run


#: Seconds to wait for a Ray cluster's address to answer before giving up (a typo must not hang the sweep).
RAY_CONNECT_TIMEOUT_S = 3.0


def check_ray_address(address: str, timeout_s: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """``auto``, ``HOST:PORT`` or ``ray://HOST:PORT``, and (unless ``auto``) something answering there within
    ``timeout_s``: otherwise one SpecError, instead of Ray retrying for minutes."""
    import socket

    if address == "auto":
        return
    m = re.fullmatch(r"(?:ray://)?(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})", address.strip())
    if not m or not 0 < int(m.group(2)) < 65536:
        raise SpecError("--address", f"expected HOST:PORT, ray://HOST:PORT or auto, got {address!r}",
                        "e.g. 127.0.0.1:6379")
    host, port = m.group(1).strip("[]"), int(m.group(2))
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc) or type(exc).__name__)
        raise SpecError("--address", f"no Ray cluster answers at {address} ({reason} after at most "
                        f"{timeout_s:g} s)") from None


def ray_backend(address: str | None = None, num_cpus: int | None = None) -> Runner:
    """Ray tasks: a local Ray instance by default, or a running cluster at ``address`` (checked to answer first)."""
    try:
        import ray
    except ImportError:
        raise SpecError("--backend", "ray is not installed (pip install ray)", ["local", "ray"]) from None
    if address:
        check_ray_address(address)

    def run(configs: list[Unit]) -> Iterator[tuple[Unit, pd.DataFrame]]:
        started = False
        if not ray.is_initialized():
            kw: dict[str, Any] = {"address": address} if address else {"num_cpus": num_cpus, "include_dashboard": False}
            try:
                ray.init(ignore_reinit_error=True, log_to_driver=False, **kw)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise SpecError("--address", f"cannot start or join Ray: {str(exc).splitlines()[0][:200]}") from None
            started = True
        try:
            task = ray.remote(run_unit)
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
    if workers is not None and not 1 <= workers <= 4096:
        raise SpecError("--workers", f"{workers} is outside 1..4096")
    if address is not None and name != "ray":
        raise SpecError("--address", "is the Ray cluster's address; it needs --backend ray")
    if name == "local":
        return local_backend(workers)
    if name == "ray":
        return ray_backend(address, workers)
    raise SpecError("--backend", f"unknown backend {name!r}", BACKENDS)


# ---- running, resuming, collecting ---------------------------------------------------------------------------


class _FolderLock:
    """``fcntl.flock`` on ``OUT/.lock``: one sweep at a time writes into a folder; a second one is refused in one
    line (instead of two runs interleaving their parts and results)."""

    def __init__(self, out: Path) -> None:
        self.path = out / ".lock"
        self.fh: Any = None

    def __enter__(self) -> _FolderLock:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows: no lock, per-run temp names still keep parts whole
            return self
        self.fh = open(self.path, "a+")  # noqa: SIM115 - held until __exit__
        try:
            fcntl.flock(self.fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.fh.close()
            self.fh = None
            raise SpecError("--out", f"another sweep is writing to {self.path.parent} (locked); wait for it or "
                            "choose another folder") from None
        return self

    def __exit__(self, *exc: object) -> None:
        if self.fh is not None:
            self.fh.close()  # closing releases the lock


def _tmp_name(path: Path) -> Path:
    """A temporary sibling unique to this process and call (two writers never share one)."""
    import uuid

    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")


def _atomic_write(path: Path, data: Any, write: Callable[[Any], None] | None = None) -> None:
    """``data`` (or what ``write(fh)`` writes) into ``path`` through a temporary sibling renamed over it, so the
    file is whole or absent. Not fsynced: every part is verified by the checksum in its name before reuse (a
    torn write is recomputed), and results are written again from the parts by rerunning the sweep."""
    tmp = _tmp_name(path)
    try:
        with open(tmp, "wb") as fh:
            if write is None:
                fh.write(data)
            else:
                write(fh)
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


def part_path(parts: Path, cfg: Unit, data: bytes) -> Path:
    """A part's file name: the unit's key, then a checksum of its bytes (verified before reuse), then the format
    (``.arrow``; ``.csv`` without pyarrow)."""
    return parts / f"{cfg.key}.{_digest(data)}{part_suffix()}"


def part_files(parts: Path) -> dict[str, list[Path]]:
    """The files in ``parts`` by unit key (one listing of the folder, not one per unit)."""
    out: dict[str, list[Path]] = {}
    try:
        names = sorted(os.listdir(parts))
    except OSError:
        return out
    for name in names:
        if not name.startswith("."):
            out.setdefault(name.split(".", 1)[0], []).append(parts / name)
    return out


def read_part(parts: Path, cfg: Unit, files: dict[str, list[Path]] | None = None) -> Any:
    """The finished part of ``cfg`` if one verifies (checksum in its name, one row per point, the right point ids);
    None otherwise: a truncated, empty or foreign part is recomputed, never trusted. ``files``: the folder's
    listing (:func:`part_files`), when the caller has it."""
    suffix = part_suffix()
    candidates = (files if files is not None else part_files(parts)).get(cfg.key, [])
    for f in (c for c in candidates if c.name.endswith(suffix)):
        try:
            data = f.read_bytes()
        except OSError:
            continue
        if f.name != f"{cfg.key}.{_digest(data)}{suffix}":
            continue
        try:
            rows = read_part_bytes(data)
        except ValueError:
            continue
        ids = point_ids(rows)
        if ids is not None and len(ids) == cfg.size and ids.tolist() == [p[0] for p in cfg.points]:
            return rows
    return None


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while a sweep runs: the sweep allocates ~10 small objects a point
    (point tuples, keys) and nothing cyclic, yet every burst of allocations triggers collections, and each full one
    walks every live object in the process (~50 ms with pandas and pyarrow loaded) to free nothing. Restored on
    exit; reference counting still frees everything as usual."""
    import gc

    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def run_sweep(
    spec: SweepSpec,
    out: Path,
    backend: Runner,
    progress: bool = True,
    stop_after: int | None = None,
    max_points: int = MAX_POINTS,
) -> pd.DataFrame:
    """Run what is not done yet, then collect every part. ``stop_after`` (tests) simulates an interruption."""
    from tqdm import tqdm

    from attnforge.sim.specs.errors import output_dir

    clear_caches()
    configs = units(expand(spec, max_points))  # size guard and validation: before anything is written
    out = output_dir(out)
    parts = out / "parts"
    try:
        parts.mkdir(exist_ok=True)
    except OSError as exc:
        raise SpecError("--out", f"cannot create {parts}: {exc.strerror or exc}") from None
    with _FolderLock(out), _gc_paused():
        _atomic_write(out / "spec.json", spec.model_dump_json(indent=1).encode())
        files = part_files(parts)
        done_rows = {c.key: rows for c in configs if (rows := read_part(parts, c, files)) is not None}
        todo = [c for c in configs if c.key not in done_rows]
        total = sum(c.size for c in configs)
        bar = tqdm(total=total, initial=total - sum(c.size for c in todo), unit="pt", desc=spec.name,
                   disable=not progress)
        done = 0
        for cfg, rows in backend(todo):
            data = part_bytes(rows)
            path = part_path(parts, cfg, data)
            _atomic_write(path, data)  # a part exists only when complete
            for stale in files.get(cfg.key, []):  # older, unverifiable copies of the same part
                if stale != path:
                    stale.unlink(missing_ok=True)
            done_rows[cfg.key] = rows
            bar.update(cfg.size)
            done += 1
            if stop_after is not None and done >= stop_after:
                bar.close()
                raise KeyboardInterrupt("stopped on request")
        bar.close()
        return collect(out, configs, done_rows)


def collect(out: Path, configs: list[Unit], done: dict[str, Any] | None = None) -> pd.DataFrame:
    """Every unit's rows (given in ``done``, else read from its part) into ``results.csv`` and ``results.parquet``
    (pyarrow) ordered by point, with the ``pareto`` flag; returned as a DataFrame."""
    parts = out / "parts"
    rows = dict(done or {})
    files = part_files(parts) if len(rows) < len(configs) else {}
    for c in configs:
        if c.key not in rows:
            got = read_part(parts, c, files)
            if got is None:
                raise SpecError("--out", f"part {c.key} in {parts} is missing or damaged; rerun the sweep to recompute it")
            rows[c.key] = got
    if not have_arrow():
        df = collect_frames([rows[c.key] for c in configs])
        _atomic_write(out / "results.csv", df.to_csv(index=False).encode())
        return df
    import pyarrow as pa
    import pyarrow.parquet as pq

    from attnforge.sweep_csv import write_csv

    try:
        table = collect_tables([rows[c.key] for c in configs])
    except (pa.ArrowTypeError, pa.ArrowInvalid):  # a column typed differently by two units (a number and text)
        df = collect_frames([rows[c.key].to_pandas() for c in configs])
        _atomic_write(out / "results.csv", df.to_csv(index=False).encode())
        _atomic_write(out / "results.parquet", None, lambda fh: df.to_parquet(fh, index=False))
        return df
    _atomic_write(out / "results.csv", None, lambda fh: write_csv(table, fh))
    _atomic_write(out / "results.parquet", None, lambda fh: pq.write_table(table, fh))
    return table.to_pandas()


def plot_pareto(df: pd.DataFrame, path: Path) -> Path:
    """pareto.png: one latency-energy panel per (workload, seq_len, batch, scope); see reports.plots."""
    from attnforge.reports.plots import plot_pareto_grid

    return plot_pareto_grid(df, path)
