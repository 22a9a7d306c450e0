"""CLI for the RTL side: ``attnforge rtl`` (export Verilog + manifest), ``attnforge regress`` (cocotb set) and
``attnforge simulate --fidelity cycle`` (the tile engine's exact cycle model).

Kept apart from ``attnforge/cli/main.py`` so the RTL toolchain (Amaranth, cocotb) is imported only when these commands run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from attnforge.sim.specs.errors import SpecError

EPILOG_RTL = """examples:
  attnforge rtl --list
  attnforge rtl fusemax-tile --param rows=8 --param cols=8 -o out/rtl
  attnforge rtl pe --param depth=256 -o out/pe"""
EPILOG_REGRESS = """examples:
  attnforge regress --quick                  # every block on Icarus, one tile shape
  attnforge regress --sim verilator --json   # rows: design, workload, simulator, passed, rtl_cycles, sim_cycles, ...
  attnforge regress --sim all --slow         # the long set on both simulators"""


def cmd_rtl(args: argparse.Namespace) -> int:
    from attnforge.rtl.registry import DESIGNS

    if args.list or not args.design:
        if not args.list:
            raise SpecError("design", "name a design or pass --list", DESIGNS)
        for d in DESIGNS.values():
            ps = ", ".join(f"{k}={p.default} ({p.lo}..{p.hi})" for k, p in d.params.items())
            print(f"{d.name:<13} {d.description}\n{'':<13} params: {ps}")
        return 0
    from attnforge.rtl.export import export

    if not args.out:
        raise SpecError("-o", "give an output folder for the Verilog and the manifest")
    t0 = time.perf_counter()
    manifest = export(args.design, args.param or [], args.out)
    if args.json:
        print(json.dumps(manifest, indent=2))
    else:
        print(f"wrote {args.out}/{manifest['verilog']} and {args.out}/{manifest['top']}.json "
              f"({len(manifest['ports'])} ports, params {manifest['parameters']}) in {time.perf_counter() - t0:.2f} s")
    return 0


def _table(rows: list[dict[str, Any]]) -> str:
    cols = ("design", "workload", "simulator", "passed", "rtl_cycles", "sim_cycles", "max_abs_error",
            "steady_mac_utilization", "float_max_abs_error")
    lines = ["  ".join(f"{c:>14}" if i > 2 else f"{c:<14}" for i, c in enumerate(cols))]
    for r in rows:
        cells = []
        for i, c in enumerate(cols):
            v = r.get(c)
            s = "-" if v is None else (f"{v:.4g}" if isinstance(v, float) else str(v))
            cells.append(f"{s:>14}" if i > 2 else f"{s:<14}")
        lines.append("  ".join(cells))
    return "\n".join(lines)


def cmd_regress(args: argparse.Namespace) -> int:
    from attnforge.rtl.regress import SIMULATORS, available, cycles_per_second, default_cases, run_case

    sims = list(SIMULATORS) if args.sim == "all" else [args.sim]
    for s in sims:
        reason = available(s)
        if reason:
            raise SpecError("--sim", f"{s}: {reason}", SIMULATORS)
    cases = default_cases(quick=args.quick, slow=args.slow)
    if args.design:
        cases = [c for c in cases if c.design == args.design]
        if not cases:
            raise SpecError("--design", f"no regression case for {args.design!r}", sorted({c.design for c in default_cases()}))
    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for s in sims:
        for c in cases:
            if not args.json:
                print(f"[{time.perf_counter() - t0:6.1f}s] {s:<9} {c.design} {c.params}", file=sys.stderr)
            rows += run_case(c, s)
    wall = time.perf_counter() - t0
    failed = [r for r in rows if not r.get("passed")]
    from pathlib import Path

    from attnforge.reports.regress_report import write_report

    paths = write_report(rows, Path(args.report), wall, cycles_per_second(rows))
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    else:
        print(_table(rows))
        rates = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(cycles_per_second(rows).items()))
        print(f"\n{len(rows) - len(failed)}/{len(rows)} passed in {wall:.1f} s; simulated cycles/s: {rates}")
        print(f"report: {paths['md']}, {paths['json']}" + "".join(f", {p}" for k, p in paths.items() if k not in ("md", "json")))
    return 1 if failed else 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``rtl`` and ``regress`` subcommands."""
    fmt = argparse.RawDescriptionHelpFormatter
    r = sub.add_parser("rtl", help="export an RTL block to Verilog + JSON manifest", epilog=EPILOG_RTL, formatter_class=fmt)
    r.add_argument("design", nargs="?", help="pe, array2d, vector1d, fusemax-tile, topk, qk, softmax, progquant, pv, "
                   "spatten-pipeline (see --list)")
    r.add_argument("--list", action="store_true", help="list the designs and their parameters")
    r.add_argument("--param", "-p", action="append", metavar="NAME=INT", help="a constructor parameter, e.g. rows=8")
    r.add_argument("--out", "-o", default=None, help="output folder")
    r.add_argument("--json", action="store_true", help="print the manifest")
    r.set_defaults(func=cmd_rtl)

    g = sub.add_parser("regress", help="cocotb regressions of every RTL block against the golden model",
                       epilog=EPILOG_REGRESS, formatter_class=fmt)
    g.add_argument("--sim", choices=("icarus", "verilator", "all"), default="icarus", help="simulator (default icarus)")
    g.add_argument("--quick", action="store_true", help="the smallest set: one tile shape, one workload")
    g.add_argument("--slow", action="store_true", help="add the long set (more shapes and sizes)")
    g.add_argument("--design", default=None, help="only this design's cases")
    g.add_argument("--json", action="store_true", help="print the result rows as JSON")
    g.add_argument("--report", default="out/regress", help="folder for regress.md, regress.json and plots")
    g.set_defaults(func=cmd_regress)

    t = sub.add_parser("topk-cycles", help="the top-k engine RTL's exact cycles vs n and k (random int8 scores)")
    t.add_argument("--comparators", type=int, default=16, help="comparators per array (default 16, the paper's)")
    t.add_argument("--n", default="16,64,256,1024", help="comma list of vector lengths")
    t.add_argument("--k", default="0.01,0.1,0.5,1.0", help="comma list of k as fractions of n")
    t.add_argument("--trials", type=int, default=20, help="random vectors per (n, k)")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_topk_cycles)


def add_fidelity(simulate_parser: argparse.ArgumentParser) -> None:
    """Add ``--fidelity analytical|cycle`` (and ``--rtl-param``) to ``simulate``; cycle runs :func:`run_cycle`."""
    simulate_parser.add_argument("--fidelity", choices=("analytical", "cycle"), default="analytical",
                                 help="analytical engine (default) or the RTL tile engine's exact cycle model")
    simulate_parser.add_argument("--cycle-rows", type=int, default=32, metavar="N",
                                 help="with --fidelity cycle --accel spatten: query rows sampled (default 32)")
    simulate_parser.add_argument("--rtl-param", action="append", metavar="NAME=INT",
                                 help="with --fidelity cycle: fusemax-tile parameter, e.g. rows=8 (e/f default to d_head)")
    analytical: Callable[[argparse.Namespace], int] | None = simulate_parser.get_default("func")

    def dispatch(args: argparse.Namespace) -> int:
        if args.fidelity == "cycle":
            return run_cycle(args)
        if analytical is None:  # pragma: no cover - simulate always has its handler
            raise SpecError("simulate", "no analytical handler")
        return analytical(args)

    simulate_parser.set_defaults(func=dispatch)


def _cycle_setup(args: argparse.Namespace, design: str,
                 defaults: Callable[[Any], dict[str, object]]) -> tuple[Any, dict[str, int]]:
    """The workload of ``simulate`` and the design's parameters: defaults sized from the workload, then --rtl-param."""
    from attnforge.rtl.registry import parse_params
    from attnforge.workloads import make_workload, parse_length

    seq = parse_length(str(args.seq_len).split(",")[0])
    wl = make_workload(args.workload, batch=args.batch, seq_len=seq, p=args.p, m=args.m, stage=args.stage)
    raw = defaults(wl)
    for item in args.rtl_param or []:
        k, sep, v = item.partition("=")
        if not sep:
            raise SpecError("--rtl-param", f"expected NAME=INTEGER, got {item!r}")
        raw[k.strip()] = v.strip()
    return wl, parse_params(design, raw)


def run_cycle(args: argparse.Namespace) -> int:
    """Cycle-level mode: the FuseMax tile engine's schedule for the workload's shape (exact vs the RTL)."""
    from attnforge.sim.fusemax.cycle_model import attention_cycles

    if args.accel.startswith("spatten"):
        return run_cycle_spatten(args)
    if args.accel != "fusemax":
        raise SpecError("--accel", f"--fidelity cycle models the FuseMax tile engine or the SpAtten pipeline RTL, not "
                        f"{args.accel!r}", ["fusemax", "spatten"])
    wl, params = _cycle_setup(args, "fusemax-tile", lambda wl: {"e": wl.e, "f": wl.f, "max_keys": wl.m})
    if wl.m > params["max_keys"]:
        raise SpecError("--m", f"key length {wl.m} exceeds the tile engine's max_keys={params['max_keys']}", "<= 1024")
    if wl.m % params["rows"]:
        raise SpecError("--m", f"key length {wl.m} must be a multiple of rows={params['rows']}")
    res = attention_cycles(params["rows"], params["cols"], params["e"], params["f"], wl.p, wl.m, wl.heads, wl.batch,
                           params["max_keys"])
    out = {"fidelity": "cycle", "design": "fusemax-tile", "params": params, "workload": wl.name, "batch": wl.batch,
           "heads": wl.heads, "p": wl.p, "m": wl.m, **res}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        t = res["tile"]
        print(f"fusemax-tile {params} on {wl.name} B={wl.batch} H={wl.heads} P={wl.p} M={wl.m}")
        print(f"  per output tile: {t['cycles']} cycles ({t['n_tiles']} key tiles), 2D MAC utilization "
              f"{t['utilization']:.3f} (steady state {t['steady_utilization']:.3f})")
        print(f"  {res['tiles']} output tiles: {res['cycles']:,} cycles")
    return 0


def run_cycle_spatten(args: argparse.Namespace) -> int:
    """Cycle-level mode for SpAtten: the one-query pipeline RTL's exact cycle model on sampled query rows."""
    from attnforge.rtl.registry import _fx
    from attnforge.sim.spatten.cycle_run import pipeline_workload_cycles

    wl, params = _cycle_setup(args, "spatten-pipeline",
                              lambda wl: {"lanes": 512, "min_d": wl.e, "max_d": wl.e, "max_n": wl.m})
    thr = 0.1 if args.threshold is None else args.threshold
    res = pipeline_workload_cycles(wl, _fx(params), threshold=thr, v_ratio=args.v_ratio or 0.0, rows=args.cycle_rows)
    out = {"fidelity": "cycle", "design": "spatten-pipeline", "params": params, "workload": wl.name, "batch": wl.batch,
           "heads": wl.heads, "p": wl.p, "m": wl.m, "threshold": thr, **res}
    if args.json:
        print(json.dumps(out, indent=2))
    else:
        print(f"spatten-pipeline {params} on {wl.name} B={wl.batch} H={wl.heads} P={wl.p} M={wl.m}")
        print(f"  per query: {res['cycles_per_query_mean']:.1f} cycles (min {res['cycles_per_query_min']}, max "
              f"{res['cycles_per_query_max']}; {res['rows_sampled']} rows sampled, LSB refetch rate "
              f"{res['refetch_rate']:.2f}, {res['kept_values']} V rows kept)")
        print(f"  {res['queries']:,} queries: {res['cycles']:,} cycles")
    return 0


def cmd_topk_cycles(args: argparse.Namespace) -> int:
    """Cycles of the top-k RTL (attnforge.sim.spatten.topk_golden, asserted exact by the cocotb bench) vs n and k."""
    from attnforge.sim.spatten.topk_golden import check_job, cycle_table

    try:
        ns = [int(x) for x in args.n.split(",") if x.strip()]
        ks = [float(x) for x in args.k.split(",") if x.strip()]
    except ValueError:
        raise SpecError("--n/--k", f"expected comma lists of numbers, got {args.n!r} / {args.k!r}") from None
    if not ns or min(ns) < 1 or not ks or not all(0 < f <= 1 for f in ks):
        raise SpecError("--n/--k", "n must be >= 1 and k fractions in (0, 1]")
    if args.trials < 1:
        raise SpecError("--trials", f"{args.trials} must be at least 1")
    check_job([0], 1, args.comparators)
    rows = cycle_table(ns, ks, args.comparators, args.trials)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"top-k engine, {args.comparators} comparators, {args.trials} random int8 vectors per point")
    print(f"{'n':>6} {'k':>6} {'mean':>9} {'min':>7} {'max':>7} {'cyc/elem':>9}")
    for r in rows:
        print(f"{r['n']:>6} {r['k']:>6} {r['mean']:>9.1f} {r['min']:>7} {r['max']:>7} {r['per_element']:>9.3f}")
    return 0
