"""Results as pandas DataFrames and fixed-width text tables (what the CLI prints)."""

from __future__ import annotations

import json
from collections.abc import Sequence

import numpy as np
import pandas as pd

from attnforge.sim.analytical.result import Result

#: Scenario fields that are mappings: kept whole as JSON text in a frame (one cell), so CSV and Parquet record them.
_JSON_CELLS = ("overrides", "policy_settings")


def results_frame(results: Sequence[Result], baseline: str | None = None) -> pd.DataFrame:
    """One row per result; nested dicts flattened to ``energy_<component>_j`` and ``util_<array>`` columns; with
    ``baseline``, the table's speedup and energy ratio against that accelerator at the same point too."""
    base = _baseline_index(results, baseline)
    rows = []
    for r in results:
        d = r.to_dict()
        row = {k: v for k, v in d.items() if not isinstance(v, dict) and k != "actions"}
        row.update({k: json.dumps(d[k], sort_keys=True) for k in _JSON_CELLS if k in d})
        for comp, v in r.energy_breakdown_j.items():
            row[f"energy_{comp}_j"] = v
        for arr, v in r.utilization.items():
            row[f"util_{arr}"] = v
        for unit, v in r.busy.items():
            row[f"busy_{unit}"] = v
        for st, v in r.stage_cycles.items():
            row[f"cycles_{st}"] = v
        for a in r.actions or []:
            row[f"actions.{a['component']}.{a['action']}.count"] = a["count"]
            row[f"actions.{a['component']}.{a['action']}.energy_j"] = a["energy_j"]
        row["tflops"] = r.tflops
        if base:
            b = base.get(_point_key(r))
            row["speedup"] = speedup(b, r) if b else None
            row["energy_ratio"] = energy_ratio(b, r) if b else None
        rows.append(row)
    return pd.DataFrame(rows)


def speedup(base: Result, r: Result) -> float:
    """How much faster ``r`` runs than ``base`` at the same point: their latencies (their clocks may differ) per
    model layer, since a result covers one layer (the per-layer dataflows) or all of them (SpAtten, whose cascade
    pruning spans the layers; ``Result.layers``)."""
    return (base.latency_s / base.layers) / (r.latency_s / r.layers) if r.latency_s else float("nan")


def energy_ratio(base: Result, r: Result) -> float:
    """``r``'s energy over ``base``'s, per model layer (as :func:`speedup`)."""
    return (r.energy_j / r.layers) / (base.energy_j / base.layers) if base.energy_j else float("nan")


def _point_key(r: Result) -> tuple:
    return (r.workload, r.p, r.m, r.batch, r.scope, r.stage, r.causal)


def _baseline_index(results: Sequence[Result], baseline: str | None) -> dict[tuple, Result]:
    return {_point_key(r): r for r in results if r.accelerator == baseline} if baseline else {}


def _si(x: float, unit: str) -> str:
    scales = ((1e-9, "n"), (1e-6, "u"), (1e-3, "m"), (1.0, ""), (1e3, "k"), (1e6, "M"), (1e9, "G"), (1e12, "T"), (1e15, "P"))
    for scale, prefix in scales:
        if abs(x) < scale * 1000 or prefix == "P":
            return f"{x / scale:.3g} {prefix}{unit}"
    return f"{x:.3g} {unit}"  # pragma: no cover


def duration(x: float) -> str:
    """Seconds for a person: SI below a minute (ns, us, ms, s), then min, h and days; never "1.37 ks"."""
    if abs(x) < 60:
        return _si(x, "s")
    for scale, unit in ((60.0, "min"), (3600.0, "h"), (86400.0, "days")):
        if abs(x) < scale * (60 if unit == "min" else 24 if unit == "h" else float("inf")):
            return f"{x / scale:.3g} {unit}"
    return f"{x / 86400:.3g} days"  # pragma: no cover


def _len(n: int) -> str:
    if n >= 1 << 20 and n % (1 << 20) == 0:
        return f"{n >> 20}M"
    if n >= 1024 and n % 1024 == 0:
        return f"{n >> 10}K"
    return str(n)


def text_table(results: Sequence[Result], baseline: str | None = None) -> str:
    """Human table; with ``baseline`` adds speedup and energy ratio against that accelerator at the same point. A
    ``layers`` column appears when a result covers more than one model layer (then ratios are per layer)."""
    base = _baseline_index(results, baseline)
    per_layer = any(r.layers != 1 for r in results)
    rows = []
    for r in results:
        row = {
            "accel": r.accelerator,
            "workload": r.workload,
            "seq": _len(r.seq_len),
            "batch": r.batch,
            **({"layers": r.layers} if per_layer else {}),
            "cycles": f"{r.cycles:.4g}",
            "latency": duration(r.latency_s),
            "energy": _si(r.energy_j, "J"),
            "power": _si(r.avg_power_w, "W"),
            "DRAM": _si(r.dram_bytes, "B"),
            "utilization": " ".join(f"{k} {v:.3f}" for k, v in r.utilization.items()),
            "TFLOP/s": f"{r.tflops:.1f}",
            "bound": r.bound,
            "roofline": f"{r.roofline_cycles / r.cycles:.2f}",
        }
        if base:
            b = base.get(_point_key(r))
            row["speedup"] = f"{speedup(b, r):.3g}x" if b else "-"
            row["energy/base"] = f"{energy_ratio(b, r):.3f}" if b else "-"
        rows.append(row)
    table = pd.DataFrame(rows).to_string(index=False)
    if base and len({r.layers for r in results}) > 1:
        covers = ", ".join(f"{a} {n}" for a, n in dict((r.accelerator, r.layers) for r in results).items())
        table += (f"\nspeedup and energy/base are per model layer: the results cover different layer counts ({covers}; "
                  "SpAtten's cascade pruning spans the model's layers, the per-layer dataflows run one)")
    return table


def action_table(r: Result) -> str:
    """The energy audit of one result: count x pJ per (component, action), then leakage, then the total."""
    lines = [f"energy by action ({r.accelerator}, {r.workload}, seq {_len(r.seq_len)}): count x pJ each = energy"]
    dyn = 0.0
    for a in sorted(r.actions or [], key=lambda a: -a["energy_j"]):
        dyn += a["energy_j"]
        lines.append(f"  {a['component'] + '.' + a['action']:<22} {a['count']:>12.4g} x {a['pj_each']:>9.4g} pJ = "
                     f"{_si(a['energy_j'], 'J'):>10}")
    lines.append(f"  {'dynamic (sum)':<22} {'':>12}   {'':>12} = {_si(dyn, 'J'):>10}")
    if r.leakage_j:
        lines.append(f"  {'leakage (static)':<22} {'':>12}   {'':>12} = {_si(r.leakage_j, 'J'):>10}")
    lines.append(f"  {'total':<22} {'':>12}   {'':>12} = {_si(r.energy_j, 'J'):>10}")
    return "\n".join(lines)


def _hbm_line(r: Result) -> str:
    """What the memory system delivered, for models that count HBM requests (SpAtten): the bandwidth while DRAM
    traffic moves and the row-hit rate that, with the requests in flight, sets it."""
    from attnforge.sim.memory.dram import delivered_gb_s, row_hit

    req, act = r.extra.get("dram_requests"), r.extra.get("dram_activates")
    if req is None or act is None or not r.memory_cycles or not r.cycles or not float(np.sum(req)):
        return ""
    req, act = float(np.sum(req)), float(np.sum(act))
    moving = delivered_gb_s(r.dram_bytes, r.memory_cycles, r.cycles, r.latency_s)
    return (f"HBM: {moving:.0f} GB/s while DRAM traffic moves ({r.dram_bytes / r.latency_s / 1e9:.0f} GB/s over the "
            f"run), {req:.4g} requests of 32 B, row hits {row_hit(req, act):.1%}")


def breakdown_table(r: Result) -> str:
    """Energy by component and cycles by stage for one result."""
    lines = [f"energy breakdown ({r.accelerator}, {r.workload}, seq {_len(r.seq_len)}):"]
    for comp, v in sorted(r.energy_breakdown_j.items(), key=lambda kv: -kv[1]):
        if comp == "leakage" and not v:
            continue  # no static power in this arch: no "leakage 0 nJ" row
        share = v / r.energy_j if r.energy_j else 0.0
        lines.append(f"  {comp:<8} {_si(v, 'J'):>10}  {share:6.1%}")
    lines.append(f"average power: {_si(r.avg_power_w, 'W')} (energy {_si(r.energy_j, 'J')} over "
                 f"{duration(r.latency_s)})")
    # A stage that took no cycles on this point (a SpAtten head's first-query stage where its heads ran tiled) is
    # left out of the line; --json keeps every stage.
    lines.append("cycles by stage: " + ", ".join(f"{k} {v:.4g}" for k, v in r.stage_cycles.items()
                                                 if v or not k.endswith(".load")))
    if r.busy:
        lines.append("busy (share of the cycles): "
                     + ", ".join(f"{k} {v:.3f}" for k, v in sorted(r.busy.items(), key=lambda kv: -kv[1])))
    if hbm := _hbm_line(r):
        lines.append(hbm)
    lines.append(
        f"bound: {r.bound} (the schedule's compute takes {r.compute_cycles:.4g} cycles, its DRAM traffic "
        f"{r.memory_cycles:.4g}; padded and exposed cycles count as compute)"
    )
    lines.append(
        f"ideal roofline: {r.roofline_cycles:.4g} cycles, set by "
        f"{'compulsory DRAM traffic' if r.roofline_bound == 'memory' else 'useful compute'}"
        f"; achieved {r.roofline_cycles / r.cycles:.1%} of it; {r.passes}-pass cascade"
    )
    return "\n".join(lines)
