"""Analytical engine: Schedule -> cycles (per stage, compute vs memory, overlap) -> energy -> Result.

One code path for every accelerator: the mapping is data, the arch is data, and the schedule's arrays let one
call evaluate a whole sweep of sequence lengths (see :func:`evaluate`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, is_dataclass, replace
from typing import Any

import numpy as np

from attnforge.mappings import Mapping, Shape, get_accelerator, get_builder
from attnforge.sim.analytical.linear import ProjectionWidths, add_linear_layers
from attnforge.sim.analytical.result import Result
from attnforge.sim.analytical.schedule import Num, Schedule, choose
from attnforge.sim.specs.arch import Arch, CascadeArch, get_preset
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.scenario import SCOPES, Scenario
from attnforge.sim.specs.spatten_policy import Policy
from attnforge.workloads import Model


@dataclass
class Evaluation:
    """Vectorised outcome of one accelerator over a sweep; every field broadcasts over the sweep points."""

    accelerator: str
    arch: Arch
    schedule: Schedule
    cycles: Num
    stage_cycles: dict[str, Num]
    memory_cycles: Num
    compute_cycles: Num
    energy_pj: dict[str, Num]
    roofline_cycles: Num
    roofline_memory: Num
    #: Clock per point when the evaluation broadcast ``clock_mhz`` over the points (None: the arch's one clock).
    clock_hz: Num | None = None

    @property
    def latency_s(self) -> Num:
        return self.cycles / (self.arch.clock_hz if self.clock_hz is None else self.clock_hz)

    @property
    def energy_j(self) -> Num:
        total: Num = 0.0
        for v in self.energy_pj.values():
            total = total + v
        return total * 1e-12

    def utilization(self) -> dict[str, Num]:
        return {k: v / self.cycles for k, v in self.schedule.useful.items()}

    def busy(self) -> dict[str, Num]:
        """Share of the cycles each unit is busy (padded work and stalls included): at least its utilization."""
        cyc = np.asarray(self.cycles, dtype=np.float64)
        return {k: np.asarray(v, dtype=np.float64) / cyc for k, v in self.schedule.busy.items()}


#: Energy-breakdown buckets that gather one action across components: the FuseMax paper reports every array's
#: register files as one "RF" bar, so RF reads and writes of the 2D and 1D arrays share the "rf" entry.
_BUCKETS: dict[str, str] = {"rf_read": "rf", "rf_write": "rf"}


def _energy(s: Schedule, arch: Arch, cycles: Num, clock_hz: Num) -> dict[str, Num]:
    """pJ per component: each (component, action) count times its row of the arch's energy table, plus
    leakage x time. A pair missing from the table (a builder emitting what its family did not declare) is a
    SpecError naming it."""
    out: dict[str, Num] = {}
    for (comp, act), count in s.actions.items():
        bucket = _BUCKETS.get(act, comp)
        out[bucket] = out.get(bucket, 0.0) + count * arch.pj(comp, act)
    for bucket, watts in arch.static_power_w().items():
        out[bucket] = out.get(bucket, 0.0) + watts * cycles / clock_hz * 1e12
    return out


def action_rows(ev: Evaluation, i: int = 0) -> tuple[list[dict[str, float | str]], float]:
    """Point ``i`` of an Evaluation as an auditable energy table: one row per (component, action) with its count,
    the pJ of one action and count x pJ in joules, plus the leakage (static) energy in joules, so that
    ``sum(row["energy_j"]) + leakage_j`` is the point's ``energy_j``."""
    rows: list[dict[str, float | str]] = []
    for (comp, act), count in ev.schedule.actions.items():
        n = _at(count, i)
        pj = float(ev.arch.pj(comp, act))
        rows.append({"component": comp, "action": act, "count": n, "pj_each": pj, "energy_j": n * pj * 1e-12})
    static = sum(_at(ev.energy_pj.get(b, 0.0), i) for b in ev.arch.static_power_w())
    return rows, static * 1e-12


def run_schedule(name: str, s: Schedule, arch: Arch, *, clock_mhz: Num | None = None,
                 dram_bandwidth_gib_s: Num | None = None) -> Evaluation:
    """Cycles and energy of a schedule. ``clock_mhz`` and ``dram_bandwidth_gib_s``, when given, replace the arch's
    (arrays broadcast with the schedule's points): they enter only here, arithmetically, so one schedule serves a
    whole sweep of clocks and bandwidths (the same float operations as an arch carrying each value). A schedule
    with alternatives is run as the one its controller picks point by point (:func:`_best`)."""
    if s.alternatives:
        return _best(name, s, arch, clock_mhz=clock_mhz, dram_bandwidth_gib_s=dram_bandwidth_gib_s)
    clock_hz = arch.clock_hz if clock_mhz is None else np.asarray(clock_mhz, dtype=np.float64) * 1e6
    bw = arch.dram.bandwidth_gib_s if dram_bandwidth_gib_s is None else np.asarray(dram_bandwidth_gib_s, dtype=np.float64)
    bpc = bw * 2**30 / clock_hz
    total: Num = 0.0
    comp_total: Num = 0.0
    mem_total: Num = 0.0
    per_stage: dict[str, Num] = {}
    for st in s.stages:
        comp = st.compute_cycles()
        mem = st.memory_cycles(bpc)
        t = np.maximum(comp, mem)
        per_stage[st.name] = t
        total = total + t
        comp_total = comp_total + comp
        mem_total = mem_total + mem
    ideal_compute: Num = 0.0
    for v in s.useful.values():
        ideal_compute = np.maximum(ideal_compute, v)
    ideal_memory = s.compulsory_dram_bytes / bpc
    return Evaluation(
        accelerator=name,
        arch=arch,
        schedule=s,
        cycles=total,
        stage_cycles=per_stage,
        memory_cycles=mem_total,
        compute_cycles=comp_total,
        energy_pj=_energy(s, arch, total, clock_hz),
        roofline_cycles=np.maximum(ideal_compute, ideal_memory),
        roofline_memory=ideal_memory,
        clock_hz=None if clock_mhz is None else clock_hz,
    )


def _best(name: str, s: Schedule, arch: Arch, **rates: Num | None) -> Evaluation:
    """``s`` and its alternatives, each point run the way with the lowest energy-delay product at this clock and
    bandwidth (the first on ties), merged into one schedule and evaluated as that. Energy-delay, not cycles alone:
    a mode a few cycles faster that moves several times the DRAM bytes is not what a controller should take."""
    plans = [replace(s, alternatives=[]), *s.alternatives]
    evs = [run_schedule(name, x, arch, **rates) for x in plans]
    cost = np.stack(np.broadcast_arrays(*(ev.cycles * ev.energy_j for ev in evs)))
    best = np.argmin(cost, axis=0)
    merged = plans[0]
    for i, plan in enumerate(plans[1:], 1):
        merged = choose(best == i, plan, merged)
    return run_schedule(name, merged, arch, **rates)


def build(
    accel: str,
    model: Model,
    *,
    p: Num,
    m: Num | None = None,
    batch: Num = 64,
    scope: str = "attention",
    causal: bool = False,
    stage: str = "prefill",
    arch: Arch | None = None,
    tiles: dict[str, int] | None = None,
    policy: Policy | None = None,
    mapping: Mapping | None = None,
) -> tuple[Schedule, Arch]:
    """The Schedule (and the arch it was built for) of one accelerator over broadcastable arrays of P, M and batch:
    everything before cycles and energy (see :func:`evaluate`)."""
    if scope not in SCOPES:
        raise SpecError("scope", f"unknown scope {scope!r}", SCOPES)
    acc = get_accelerator(accel)
    the_arch = arch if arch is not None else get_preset(acc.arch)
    acc.check_arch(the_arch)
    m = p if m is None else m
    s = get_builder(acc.family)(acc, the_arch, Shape(
        model, p=p, m=m, batch=batch, causal=causal, stage=stage, tiles=tuple(sorted((tiles or {}).items())),
        policy=policy, mapping=mapping,
    ))
    if scope == "end-to-end":
        if not isinstance(the_arch, CascadeArch) or "2d" not in the_arch.arrays:
            raise SpecError("scope", f"{accel} accelerates attention only (its FFN runs elsewhere)", ["attention"])
        widths = ProjectionWidths.of(model.d_model, model.heads, model.kv_heads, model.d_head)
        s = add_linear_layers(s, the_arch, rows=np.asarray(batch) * np.asarray(p), d_model=model.d_model, d_ff=model.d_ff,
                              widths=widths)
    return s, the_arch


def evaluate(
    accel: str,
    model: Model,
    *,
    p: Num,
    m: Num | None = None,
    batch: Num = 64,
    clock_mhz: Num | None = None,
    dram_bandwidth_gib_s: Num | None = None,
    shared_shapes: bool = False,
    **kw: Any,
) -> Evaluation:
    """Evaluate one accelerator over any broadcastable arrays of P, M and batch (the vectorised core of :func:`run`);
    ``clock_mhz`` and ``dram_bandwidth_gib_s`` may be arrays too (see :func:`run_schedule`); ``kw``: the rest of
    :func:`build`'s options.

    ``shared_shapes``: the points are 1-D arrays whose (P, M, batch) triples repeat (a sweep over clocks and
    bandwidths repeats every shape once per arch value): the schedule is built once per distinct triple and its
    per-point quantities gathered to every point (:func:`gather`), which gives the same numbers, since a schedule's
    quantities are per-point arrays computed point by point."""
    if not shared_shapes:
        s, the_arch = build(accel, model, p=p, m=m, batch=batch, **kw)
    else:
        m = p if m is None else m
        cols = [c.reshape(-1) for c in np.broadcast_arrays(*(np.asarray(x, dtype=np.float64) for x in (p, m, batch)))]
        first, where = _distinct_rows(cols)
        s, the_arch = build(accel, model, p=cols[0][first], m=cols[1][first], batch=cols[2][first], **kw)
        s = gather(s, where, len(first))
    return run_schedule(accel, s, the_arch, clock_mhz=clock_mhz, dram_bandwidth_gib_s=dram_bandwidth_gib_s)


def _distinct_rows(cols: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(index of one row of each distinct row, each row's distinct row) of equal-length columns: each column
    coded by its own distinct values, the codes combined into one integer, that integer's distinct values."""
    code = np.zeros(len(cols[0]), dtype=np.int64)
    for c in cols:
        vals, inv = np.unique(c, return_inverse=True)
        code = code * len(vals) + inv.reshape(-1)
    _, first, where = np.unique(code, return_index=True, return_inverse=True)
    return first, where.reshape(-1)


def gather(x: Any, where: np.ndarray, n: int) -> Any:
    """``x`` (a Schedule, or anything in one) with every per-point array of ``n`` points replaced by its values at
    ``where``; scalars and one-element arrays broadcast as they are."""
    if isinstance(x, np.ndarray):
        return x[where] if n > 1 and x.ndim == 1 and x.shape[0] == n else x
    if isinstance(x, dict):
        return type(x)({k: gather(v, where, n) for k, v in x.items()})
    if isinstance(x, list):
        return [gather(v, where, n) for v in x]
    if is_dataclass(x) and not isinstance(x, type):
        return replace(x, **{f.name: gather(getattr(x, f.name), where, n) for f in fields(x) if f.init})
    return x


def evaluate_scenario(sc: Scenario) -> Evaluation:
    """The analytical fidelity of a Scenario: one vectorised call over all of its points."""
    sc.check_honoured()
    # float64, not int64: counts such as B*H*P*M*E pass 2**63 near 16M tokens and int64 wraps silently (negative
    # utilization, fewer cycles at 128M than at 8M); float64 is exact up to 2**53 and never changes sign.
    p = np.asarray(sc.p, dtype=np.float64)
    m = np.asarray(sc.m, dtype=np.float64)
    b = np.asarray(sc.batch, dtype=np.float64)
    return evaluate(sc.accelerator.name, sc.model, p=p, m=m, batch=b, scope=sc.scope, causal=sc.causal,
                    stage=sc.stage, arch=sc.arch, tiles=dict(sc.tiles), policy=sc.policy, mapping=sc.mapping)


def _at(x: Num, i: int) -> float:
    a = np.asarray(x, dtype=float)
    return float(a.reshape(-1)[i] if a.size > 1 else a.reshape(-1)[0]) if a.size else 0.0


def results(ev: Evaluation, sc: Scenario) -> list[Result]:
    """Unpack a vectorised Evaluation of ``sc`` into one Result per point, each carrying the Scenario."""
    util = ev.utilization()
    lat = ev.latency_s
    out: list[Result] = []
    for i in range(sc.points):
        cycles = _at(ev.cycles, i)
        comp, mem = _at(ev.compute_cycles, i), _at(ev.memory_cycles, i)
        roof = _at(ev.roofline_cycles, i)
        out.append(
            Result(
                accelerator=ev.accelerator if sc.mapping is None else sc.label,
                workload=sc.model.name,
                seq_len=sc.m[i],
                batch=sc.batch[i],
                p=sc.p[i],
                m=sc.m[i],
                scope=sc.scope,
                stage=sc.stage,
                causal=sc.causal,
                cycles=cycles,
                latency_s=_at(lat, i),
                energy_j=_at(ev.energy_j, i),
                energy_breakdown_j={k: _at(v, i) * 1e-12 for k, v in ev.energy_pj.items()},
                dram_bytes=_at(ev.schedule.dram_bytes, i),
                utilization={k: _at(v, i) for k, v in util.items()},
                busy={k: _at(v, i) for k, v in ev.busy().items()},
                flops=_at(ev.schedule.flops, i),
                passes=ev.schedule.passes,
                bound="compute" if comp >= mem else "memory",
                roofline_cycles=roof,
                roofline_bound="memory" if _at(ev.roofline_memory, i) >= roof else "compute",
                compute_cycles=comp,
                memory_cycles=mem,
                stage_cycles={k: _at(v, i) for k, v in ev.stage_cycles.items()},
                tiles={k: _at(v, i) for k, v in ev.schedule.tiles.items()}
                | {"spill_fraction": _at(ev.schedule.spill_fraction, i)},
                area_mm2=ev.arch.area_mm2(),
                layers=ev.schedule.layers,
                extra={k: _at(v, i) for k, v in ev.schedule.extra.items()},
                scenario=sc,
            )
        )
    return out


def run(sc: Scenario, actions: bool = False) -> list[Result]:
    """A Scenario through the analytical engine: one Result per point; with ``actions``, each Result carries its
    per-(component, action) energy table (:func:`action_rows`) and its leakage energy."""
    ev = evaluate_scenario(sc)
    out = results(ev, sc)
    if actions:
        for i, r in enumerate(out):
            r.actions, r.leakage_j = action_rows(ev, i)
    return out


__all__ = ["SCOPES", "Evaluation", "action_rows", "build", "evaluate", "evaluate_scenario", "gather", "results", "run",
           "run_schedule"]
