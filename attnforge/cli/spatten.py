"""SpAtten's pieces of the CLI: trace replay and `reproduce spatten` (the algorithm knobs are Scenario options).

Every bad value (ratio outside [0, 1),
threshold outside (0, 1], a malformed trace) is a SpecError, which attnforge.cli.main turns into one line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from attnforge.reports import spatten_arch
from attnforge.reports.html import check_html, write_page
from attnforge.sim.specs.errors import SpecError, finite_json
from attnforge.sim.specs.scenario import POLICY_KNOBS


def _find_baseline(trace_path: Path, layers: int, heads: int) -> Path | None:
    """An unpruned, unquantized trace with the same layers and heads in the same folder."""
    from attnforge.sim.spatten.trace import load_trace

    for cand in sorted(trace_path.parent.glob("*.csv")):
        if cand.resolve() == trace_path.resolve():
            continue
        try:
            t = load_trace(cand)
        except (SpecError, OSError):  # a bad file beside the trace is not the baseline; it is not an error either
            continue
        r = t.rows
        if (r["layer_id"].nunique() == layers and r["head_id"].max() + 1 == heads
                and (r["key_fetch_num"] == r["sentence_length_L"]).all() and (r["quant_key_bit"] == -1).all()):
            return cand
    return None


#: Options that shape a run which a trace already fixes (its model, lengths, pruning, bit widths and refetch
#: decisions): with --trace they are refused rather than ignored; every policy knob but --topk-parallelism is one,
#: so a new knob is refused here without being listed. --topk-parallelism, --arch and --set still apply.
_TRACE_FIXES = ("workload", "seq_len", "batch", "p", "m", "causal", "stage", "scope", "tile", "cycle_rows",
                "rtl_param", *(k for k in POLICY_KNOBS if k != "topk_parallelism"))


def _trace_scenario(args: argparse.Namespace, trace: Any) -> Any:
    """The Scenario of a replay: accelerator, arch and overrides from the options, the model whose layers and heads
    match the trace (else a shape-only stand-in), the trace's longest sentence as M."""
    from attnforge.cli.args import int_params, overrides
    from attnforge.sim.specs.scenario import Scenario
    from attnforge.workloads import load_models

    for opt in _TRACE_FIXES:
        if getattr(args, opt, None) not in (None, False, []):
            raise SpecError("--" + opt.replace("_", "-"), "cannot be combined with --trace (the trace fixes it)")
    if getattr(args, "fidelity", "analytical") != "analytical":
        raise SpecError("--fidelity", "trace replay runs the analytical engine", ["analytical"])
    int_params(args.tile, "--tile", "")
    rows = trace.rows
    layers, heads = int(rows["layer_id"].nunique()), int(rows["head_id"].max() + 1)
    model = next((mdl for mdl in load_models().values() if mdl.layers == layers and mdl.heads == heads and mdl.causal),
                 None)
    knobs = {"topk_parallelism": args.topk_parallelism} if args.topk_parallelism is not None else None
    sc = Scenario.build(accelerator=args.accel or "spatten", workload=model or "gpt2-small",
                        seq_lens=[int(rows["sentence_length_L"].max())], batch=1, causal=True, arch=args.arch,
                        overrides=overrides(args.set), policy=knobs)
    if sc.accelerator.family != "spatten":
        raise SpecError("--accel", f"--trace replays SpAtten traces; {sc.name!r} is not a SpAtten accelerator",
                        ["spatten", "spatten-1/8"])
    return sc


def _replay(trace: Any, sc: Any, widths: str | None = None) -> tuple[Any, Any, Any]:
    from attnforge.sim.analytical.engine import run_schedule
    from attnforge.sim.spatten.trace import as_bench_fetch, trace_schedule

    par = sc.policy.topk_parallelism if sc.policy is not None else None
    sched, summ = trace_schedule(as_bench_fetch(trace) if widths == "bench" else trace, sc.arch, par)
    return sched, summ, run_schedule(sc.name, sched, sc.arch)


def run_trace(args: argparse.Namespace) -> int:
    """`simulate --trace FILE|NAME`: SpAtten's own decisions replayed through the engine, beside an unpruned trace."""
    from attnforge.sim.memory.dram import delivered_gb_s, row_hit
    from attnforge.sim.spatten.trace import load_trace
    from attnforge.workloads import trace_path

    path = trace_path(args.trace)
    tr = load_trace(path)
    sc = _trace_scenario(args, tr)
    widths = args.trace_widths or "paper"
    sched, summ, ev = _replay(tr, sc, widths)
    heads = int(tr.rows["head_id"].max() + 1)
    base_path = trace_path(args.baseline) if args.baseline else _find_baseline(path, summ.layers, heads)
    dram = float(sched.dram_bytes)
    out: dict[str, object] = {
        "trace": tr.name, "trace_widths": widths, "accelerator": sc.name, "rows": summ.rows, "iterations": summ.iterations,
        "layers": summ.layers, "cycles": float(ev.cycles), "latency_s": float(ev.latency_s),
        "dram_bytes": dram, "energy_j": float(ev.energy_j), "avg_power_w": float(ev.energy_j) / float(ev.latency_s),
        "energy_breakdown_j": {k: float(v) * 1e-12 for k, v in ev.energy_pj.items()},
        "tflops": float(sched.flops) / float(ev.latency_s) / 1e12,
        "bound": "compute" if float(ev.compute_cycles) >= float(ev.memory_cycles) else "memory",
        "dram_reduction_vs_fp32_dense": summ.dram_bytes_fp32_dense / dram,
        # what the HBM delivered: bytes over the time DRAM traffic takes, and the requests' row-hit rate
        "hbm_gb_s": delivered_gb_s(dram, float(ev.memory_cycles), float(ev.cycles), float(ev.latency_s)),
        "hbm_row_hit": row_hit(float(sched.extra["dram_requests"]), float(sched.extra["dram_activates"])),
        # cycles each module is busy over the replay: the largest bounds the compute side
        "busy_cycles": {k: float(np.sum(v)) for k, v in sched.busy.items()},
        **{k: float(v) for k, v in sched.extra.items()},
        **{k: v for k, v in sc.describe().items() if k not in ("accelerator", "policy", "policy_settings")},
    }
    if base_path is not None:
        bs, _, bev = _replay(load_trace(base_path), sc, widths)
        out.update({
            "baseline_trace": base_path.stem,
            "baseline_cycles": float(bev.cycles),
            "baseline_dram_bytes": float(bs.dram_bytes),
            "baseline_energy_j": float(bev.energy_j),
            "speedup_vs_baseline": float(bev.cycles) / float(ev.cycles),
            "dram_reduction_vs_baseline": float(bs.dram_bytes) / dram,
            "energy_reduction_vs_baseline": float(bev.energy_j) / float(ev.energy_j),
        })
    if args.json:
        print(json.dumps(out, indent=2, allow_nan=False))
        return 0
    w = max(len(k) for k in out)
    for k, v in out.items():
        if isinstance(v, dict):
            unit = " J" if k.endswith("_j") else ""
            v = ", ".join(f"{a} {b:.3g}{unit}" if isinstance(b, float) else f"{a}={b}" for a, b in v.items()) or "-"
        elif isinstance(v, float):
            v = f"{v:.6g}"
        print(f"{k:<{w}}  {v}")
    return 0


def per_benchmark(args: argparse.Namespace) -> int:
    """`reproduce spatten --per-benchmark`: the 30 benchmarks one by one, printed and optionally written."""
    from attnforge.reports.spatten_per_benchmark import (
        check_outputs,
        column_help,
        format_table,
        per_benchmark,
        plot,
        select,
        write,
    )

    check_outputs(args.out, args.plot)  # before the ~20 s of runs
    check_html(args.html)
    t0 = time.perf_counter()
    df = per_benchmark(select(args.benchmark))
    if spatten_arch.current():  # a saved table says which arch it ran on
        df["arch_overrides"] = "; ".join(f"{k}={v}" for k, v in spatten_arch.current().items())
    wrote = []
    if args.out is not None:
        write(df, args.out)
        wrote.append(str(args.out))
    if args.plot is not None:
        wrote.append(str(plot(df, args.plot)))
    if args.html is not None:
        wrote.append(str(_per_benchmark_page(df, args, column_help())))
    if args.json:
        print(json.dumps(finite_json(df.to_dict("records")), indent=2, allow_nan=False))
        return 0
    if spatten_arch.describe():
        print(spatten_arch.describe())
    print(format_table(df.drop(columns=["arch_overrides"], errors="ignore")))
    print("\ncolumns (docs/spatten.md §Per-benchmark results):\n" + column_help())
    print(f"\n{len(df)} benchmarks x 4 designs in {time.perf_counter() - t0:.1f} s"
          + (f"; wrote {', '.join(wrote)}" if wrote else ""))
    return 0


def _command(args: argparse.Namespace) -> str:
    """The command line that made a page, for its header (what to rerun)."""
    parts = ["attnforge reproduce spatten", *(["--per-benchmark"] if args.per_benchmark else [])]
    parts += [f"--benchmark '{b}'" for b in args.benchmark or []] + [f"--set {kv}" for kv in args.set or []]
    return " ".join(parts)


def _per_benchmark_page(df: Any, args: argparse.Namespace, columns: str) -> Path:
    """The per-benchmark table and its figure (drawn into a temporary PNG) as one HTML page."""
    import tempfile

    from attnforge.reports.spatten_per_benchmark import plot, with_means

    with tempfile.TemporaryDirectory() as tmp:
        png = plot(df, Path(tmp) / "per_benchmark.png").read_bytes()
    over = spatten_arch.describe()
    return write_page(args.html, "reproduce spatten --per-benchmark", _command(args),
                      [("SpAtten per benchmark (geometric means last)", with_means(df), over or "")],
                      images=[("SpAtten1/8's speedups and SpAtten's DRAM reduction per benchmark", png)],
                      texts=[("Columns (docs/spatten.md §Per-benchmark results)", columns)])


def _headline_page(args: argparse.Namespace, rows: list[Any], notes: list[str], sensitivity: str) -> Path:
    """The headline table, its notes, the sensitivity sweeps and the power runs as one HTML page."""
    from attnforge.reports.paper import rows_frame

    note = "Deviations over 15% are over_15pct, each with its note; docs/spatten.md §Reproduce table explains them."
    texts = [("Notes", "\n".join(notes))] if notes else []
    texts.append(("Sensitivity and average power", sensitivity.strip("\n")))
    over = spatten_arch.describe()
    return write_page(args.html, "reproduce spatten", _command(args),
                      [("SpAtten (HPCA 2021) beside ours", rows_frame(rows), f"{over} {note}" if over else note)],
                      texts=texts)


def reproduce_spatten(args: argparse.Namespace) -> int:
    """`reproduce spatten`: the headline table (or --per-benchmark's), on the presets or with --set overrides."""
    from attnforge.sim.specs.arch import parse_overrides

    with spatten_arch.overridden(parse_overrides(args.set)):
        if args.per_benchmark:
            return per_benchmark(args)
        return _headline(args)


def _headline(args: argparse.Namespace) -> int:
    from attnforge.reports.spatten_paper import format_rows, reproduce
    from attnforge.reports.spatten_sensitivity import report as sensitivity_report

    for opt, val in (("--out", args.out), ("--plot", args.plot), ("--benchmark", args.benchmark)):
        if val is not None:
            raise SpecError(opt, "belongs to the per-benchmark table: add --per-benchmark", ["--per-benchmark"])
    check_html(args.html)
    t0 = time.perf_counter()
    rows, notes = reproduce()
    ov = spatten_arch.current()
    sensitivity = sensitivity_report() if args.html is not None or not args.json else ""
    if args.html is not None:
        _headline_page(args, rows, notes, sensitivity)
    if args.json:
        print(json.dumps(finite_json([{"metric": r.metric, "paper": r.paper, "ours": r.ours, "source": r.source,
                                       "note": r.note, **({"arch_overrides": ov} if ov else {})} for r in rows]),
                         indent=2, allow_nan=False))
    else:
        if ov:
            print(spatten_arch.describe())
        print(format_rows(rows, notes))
        print(sensitivity)
        print(f"\n30 benchmarks, breakdown, Table III, trace replays, sensitivity and power in {time.perf_counter() - t0:.1f} s"
              + (f"; wrote {args.html}" if args.html is not None else ""))
    return 0
