"""CLI for the RTL side: ``attnforge rtl`` (export Verilog + manifest), ``attnforge regress`` (cocotb set) and
``attnforge simulate --fidelity cycle`` (the tile engine's exact cycle model).

Kept apart from ``attnforge/cli/main.py`` so the RTL toolchain (Amaranth, cocotb) is imported only when these commands run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from attnforge.sim.specs.errors import SpecError, finite_json, output_dir
from attnforge.sim.specs.progress import phase

EPILOG_RTL = """examples:
  attnforge rtl --list
  attnforge rtl fusemax-tile --param rows=8 --param cols=8 -o out/rtl
  attnforge rtl pe --param depth=256 -o out/pe"""
EPILOG_REGRESS = """examples:
  attnforge regress --quick                  # every block on Icarus, one tile shape
  attnforge regress --sim verilator --json   # rows: design, workload, simulator, passed, rtl_cycles, sim_cycles, ...
  attnforge regress --sim all --slow         # the long set on both simulators
  attnforge regress --sim verilator --design spatten-top --workload minilm -p lanes=64 -p min_d=8 -p max_d=64
                                             # MiniLM's 32-dim heads on GPT-2's max_d = 64 instance"""


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
    output_dir(args.out, "--out")
    t0 = time.perf_counter()
    phase(f"rtl {args.design}: elaborating and writing Verilog (Amaranth -> yosys; ~4 s the first time, then ~0.3 s)")
    manifest = export(args.design, args.param or [], args.out, dsp=args.dsp)
    if args.json:
        print(json.dumps(finite_json(manifest), indent=2, allow_nan=False))
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
    from attnforge.rtl.regress import SIMULATORS, available, cycles_per_second, default_cases, run_cases

    report = output_dir(args.report, "--report")
    try:
        import cocotb_tools.runner  # noqa: F401 - only to fail early, in one line, where cocotb is missing
    except ImportError:
        raise SpecError("regress", "cocotb is not installed (pip install 'attnforge[rtl]' or pip install cocotb)") from None
    cases = default_cases(quick=args.quick, slow=args.slow or bool(args.workload))
    if args.workload:  # one workload's cases, the long set's included (e.g. spatten-top gpt2-decode)
        cases = [c for c in cases if args.workload in (c.workloads or [])]
        if not cases:
            raise SpecError("--workload", f"no regression case for {args.workload!r}",
                            sorted({w for c in default_cases(slow=True) for w in c.workloads or []}))
    if args.design:
        cases = [c for c in cases if c.design == args.design]
        if not cases:
            raise SpecError("--design", f"no regression case for {args.design!r}", sorted({c.design for c in default_cases()}))
    if args.param:
        cases = _with_params(cases, args.design, args.param)
    sims = list(SIMULATORS) if args.sim == "all" else [args.sim]
    for s in sims:  # after the selection: a wrong --design or --param is named even where no simulator is
        reason = available(s)
        if reason:
            raise SpecError("--sim", f"{s}: {reason}", SIMULATORS)
    t0 = time.perf_counter()

    def progress(sim: str, case: Any, got: list[dict[str, Any]]) -> None:
        if not args.json:
            ok = sum(bool(r.get("passed")) for r in got)
            print(f"[{time.perf_counter() - t0:6.1f}s] {sim:<9} {case.design} {case.params}: {ok}/{len(got)} passed",
                  file=sys.stderr)

    rows = run_cases(cases, sims, backend=args.backend, workers=args.workers, address=args.address, progress=progress)
    wall = time.perf_counter() - t0
    failed = [r for r in rows if not r.get("passed")]
    from attnforge.reports.regress_report import write_report

    paths = write_report(rows, report, wall, cycles_per_second(rows))
    if args.json:
        print(json.dumps(finite_json(rows), indent=2, default=str, allow_nan=False))
    else:
        print(_table(rows))
        rates = ", ".join(f"{k} {v:,.0f}" for k, v in sorted(cycles_per_second(rows).items()))
        print(f"\n{len(rows) - len(failed)}/{len(rows)} passed in {wall:.1f} s; simulated cycles/s: {rates}")
        print(f"report: {paths['md']}, {paths['json']}" + "".join(f", {p}" for k, p in paths.items() if k not in ("md", "json")))
    return 1 if failed else 0


def _with_params(cases: list[Any], design: str | None, items: list[str]) -> list[Any]:
    """The selected cases at other RTL parameters: ``NAME=INT`` items over each case's own (e.g. the whole-MiniLM
    spatten-top case on GPT-2's max_d = 64 instance), every merged set checked as ``attnforge rtl`` checks it."""
    import dataclasses

    from attnforge.rtl.registry import parse_params

    if not design:
        raise SpecError("--param", "RTL parameters belong to one design: give --design too")
    parse_params(design, items)  # one error for a malformed or unknown item, before any case
    over = {k.strip(): v.strip() for k, _, v in (str(i).partition("=") for i in items)}
    return [dataclasses.replace(c, params=parse_params(design, {**c.params, **over})) for c in cases]


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
    r.add_argument("--dsp", default=None, metavar="TARGET", help="write every multiplier as this FPGA's DSP primitive "
                   "with its own registers, for a vendor flow (ecp5: MULT18X18D); default: plain Verilog")
    r.set_defaults(func=cmd_rtl)

    g = sub.add_parser("regress", help="cocotb regressions of every RTL block against the golden model",
                       epilog=EPILOG_REGRESS, formatter_class=fmt)
    g.add_argument("--sim", choices=("icarus", "verilator", "all"), default="icarus", help="simulator (default icarus)")
    g.add_argument("--quick", action="store_true", help="the smallest set: one tile shape, one workload")
    g.add_argument("--slow", action="store_true", help="add the long set (more shapes and sizes)")
    g.add_argument("--design", default=None, help="only this design's cases")
    g.add_argument("--workload", default=None, help="only the cases of this workload, from the long set too "
                   "(e.g. gpt2-decode)")
    g.add_argument("--param", "-p", action="append", metavar="NAME=INT", help="with --design: run its cases at "
                   "this RTL parameter instead of their own (repeatable), e.g. max_d=64")
    g.add_argument("--json", action="store_true", help="print the result rows as JSON")
    g.add_argument("--report", default="out/regress", help="folder for regress.md, regress.json and plots")
    g.add_argument("--backend", choices=("local", "ray"), default="local",
                   help="local processes (default, all cores) or Ray tasks (a local instance, or --address)")
    g.add_argument("--workers", type=int, default=None, help="processes / Ray CPUs (default: all cores)")
    g.add_argument("--address", default=None, help="with --backend ray: a running Ray cluster's address")
    g.set_defaults(func=cmd_regress)

    t = sub.add_parser("topk-cycles", help="the top-k engine RTL's exact cycles vs n and k (random int8 scores)")
    t.add_argument("--comparators", type=int, default=16, help="comparators per array (default 16, the paper's)")
    t.add_argument("--n", default="16,64,256,1024", help="comma list of vector lengths")
    t.add_argument("--k", default="0.01,0.1,0.5,1.0", help="comma list of k as fractions of n")
    t.add_argument("--trials", type=int, default=20, help="random vectors per (n, k)")
    t.add_argument("--json", action="store_true")
    t.set_defaults(func=cmd_topk_cycles)


#: What sizes each RTL parameter that a cycle-fidelity run derives from the workload (its command-line option), so
#: a workload the RTL cannot take is named as the user wrote it, not as a --param they never gave.
SIZED_BY: dict[str, str] = {"max_n": "--m / --seq-len (keys M)", "max_keys": "--m / --seq-len (keys M)",
                            "max_queries": "--p / --seq-len (queries P)", "e": "the model's head dimension",
                            "f": "the model's head dimension", "d": "the model's head dimension",
                            "min_d": "the model's head dimension", "max_d": "the model's head dimension",
                            "max_heads": "--batch x the model's heads"}


def _rtl_params(sc: Any, design: str, defaults: dict[str, object]) -> dict[str, int]:
    """The RTL instance: defaults sized from the workload, then the Scenario's --rtl-param values, checked. A
    workload-sized value out of the RTL's range is refused naming the workload option that set it."""
    from attnforge.rtl.registry import parse_params

    given = dict(sc.rtl_params)
    try:
        return parse_params(design, {**defaults, **given})
    except SpecError as e:
        name = e.field.removeprefix("--param ")
        if name in given or name not in defaults or name not in SIZED_BY:
            raise
        raise SpecError(SIZED_BY[name], f"sets {design}'s {name} to {defaults[name]}, outside what the RTL takes",
                        f"{name} {e.allowed}; or --fidelity analytical") from None


def run_cycle(sc: Any, as_json: bool = False) -> int:
    """``simulate --fidelity cycle``: the RTL's exact cycle model on every point of the Scenario."""
    sc.check_honoured()
    rows = [_cycle_point(sc.point(i)) for i in range(sc.points)]
    if as_json:
        print(json.dumps(rows[0] if len(rows) == 1 else rows, indent=2, allow_nan=False))
        return 0
    print(sc.header())
    for r in rows:
        print(r.pop("_text"))
    return 0


def _cycle_point(sc: Any) -> dict[str, Any]:
    if sc.accelerator.family == "spatten":
        return _cycle_spatten_top(sc) if getattr(sc.arch, "top", None) is not None else _cycle_spatten(sc)
    if getattr(sc.arch, "pipeline", None) is not None:
        return _cycle_top(sc)
    return _cycle_fusemax(sc)


def _workload(sc: Any) -> Any:
    from attnforge.workloads import Workload

    return Workload(model=sc.model, batch=sc.batch[0], p=sc.p[0], m=sc.m[0], causal=sc.causal, stage=sc.stage,
                    seed=sc.seed)


def _cycle_fusemax(sc: Any) -> dict[str, Any]:
    """The FuseMax tile engine's schedule for the point's shape (exact vs the RTL)."""
    from attnforge.sim.fusemax.cycle_model import attention_cycles

    wl = _workload(sc)
    params = _rtl_params(sc, "fusemax-tile", {"e": wl.e, "f": wl.f, "max_keys": wl.m})
    if wl.m > params["max_keys"]:
        raise SpecError("--m", f"key length {wl.m} exceeds the tile engine's max_keys={params['max_keys']}", "<= 1024")
    res = attention_cycles(params["rows"], params["cols"], params["e"], params["f"], wl.p, wl.m, wl.heads, wl.batch,
                           params["max_keys"])
    t = res["tile"]
    text = (f"fusemax-tile {params} on {wl.name} B={wl.batch} H={wl.heads} P={wl.p} M={wl.m}\n"
            f"  per output tile: {t['cycles']} cycles ({t['n_tiles']} key tiles), 2D MAC utilization "
            f"{t['utilization']:.3f} (steady state {t['steady_utilization']:.3f})\n"
            f"  {res['tiles']} output tiles: {res['cycles']:,} cycles")
    return {"fidelity": "cycle", "design": "fusemax-tile", "params": params, "workload": wl.name, "batch": wl.batch,
            "heads": wl.heads, "p": wl.p, "m": wl.m, "layers": 1, **res, **sc.describe(), "_text": text}


def _cycle_top(sc: Any) -> dict[str, Any]:
    """An arch describing a fusemax-top instance (it has a ``pipeline`` section): the top's exact cycle model for
    the whole layer (B x H heads through one descriptor), beside the analytical model on the same arch."""
    from attnforge.sim.analytical.engine import evaluate
    from attnforge.sim.fusemax.top_cycle_model import INSTANCES, instance_fields, top_schedule

    wl, arch = _workload(sc), sc.arch
    rows, cols = arch.arrays["2d"].rows, arch.arrays["2d"].cols
    base = INSTANCES.get(arch.name, {"max_keys": wl.m})
    params = _rtl_params(sc, "fusemax-top", {"rows": rows, "cols": cols, "d": wl.e, "max_keys": base["max_keys"],
                                             "max_queries": wl.p, "max_heads": min(256, wl.batch * wl.heads)})
    if wl.m > params["max_keys"] or wl.e != wl.f or wl.e != params["d"]:
        raise SpecError("--m", f"fusemax-top {params} takes M <= max_keys and d_head = d "
                        f"(got M={wl.m}, d_head={wl.e})")
    timing = _top_timing(arch, max(params["rows"], params["cols"]))
    s = top_schedule(params["rows"], params["cols"], params["d"], wl.batch * wl.heads, wl.p, wl.m, timing,
                     params["max_keys"])
    # the analytical model configured as the instance the cycle model runs: the arch's pipeline latencies are the
    # engine's at this head dimension (a preset's are its own d's, e.g. d 8 for fusemax-top-4x4)
    fields = instance_fields(params["rows"], params["cols"], params["d"], params["max_keys"], timing)
    pl = arch.pipeline.model_copy(update={k.split(".", 1)[1]: v for k, v in fields.items() if k.startswith("pipeline.")})
    ana = float(evaluate(sc.accelerator.name, sc.model, p=wl.p, m=wl.m, batch=wl.batch,
                         arch=arch.model_copy(update={"pipeline": pl}), mapping=sc.mapping).cycles)
    text = (f"fusemax-top {params} on {wl.name} B={wl.batch} H={wl.heads} P={wl.p} M={wl.m}, memory {vars(timing)}\n"
            f"  cycle model: {s.total_cycles:,} cycles, 2D MAC utilization {s.utilization:.3f}, "
            f"{s.stall_cycles:,} cycles waiting for data\n"
            f"  analytical:  {ana:,.0f} cycles ({ana / s.total_cycles - 1:+.2%} vs the cycle model; the arch's "
            f"pipeline latencies at d {params['d']}: {pl.tile_fixed_cycles} per output tile, drain {pl.drain_cycles})")
    return {"fidelity": "cycle", "design": "fusemax-top", "params": params, "workload": wl.name, "batch": wl.batch,
            "heads": wl.heads, "p": wl.p, "m": wl.m, "layers": 1, "memory": vars(timing), **s.to_dict(),
            "analytical_cycles": ana,
            **sc.describe(), "_text": text}


def _top_timing(arch: Any, word_bytes: int) -> Any:
    """The memory model the arch describes: latency and outstanding requests from ``pipeline``, the cycles per
    word from the DRAM bandwidth at the arch's clock (a whole number of cycles, as the memory model has)."""
    from attnforge.sim.contract.memport import MemTiming

    per_cycle = arch.dram.bandwidth_gib_s * 2**30 / arch.clock_hz
    interval = word_bytes / per_cycle
    if abs(interval - round(interval)) > 1e-6 or round(interval) < 1:
        raise SpecError("dram.bandwidth_gib_s", f"gives {interval:.4g} cycles per {word_bytes}-byte word; the memory "
                        "model needs a whole number >= 1")
    return MemTiming(arch.pipeline.mem_latency_cycles, arch.pipeline.mem_outstanding, round(interval)).validate()


def _cycle_spatten(sc: Any) -> dict[str, Any]:
    """The one-query pipeline RTL's exact cycle model on sampled query rows (threshold and V ratio from the policy)."""
    from attnforge.rtl.registry import _fx
    from attnforge.sim.spatten.cycle_run import (
        CYCLE_ROWS,
        analytical_workload_cycles,
        pipeline_workload_cycles,
        rtl_arch,
        workload_score_std,
    )

    wl = _workload(sc)
    params = _rtl_params(sc, "spatten-pipeline", {"lanes": 512, "min_d": wl.e, "max_d": wl.e, "max_n": wl.m})
    pol = sc.policy
    rows = CYCLE_ROWS if sc.sample_rows is None else sc.sample_rows
    cfg = _fx(params)
    res = pipeline_workload_cycles(wl, cfg, threshold=pol.threshold, v_ratio=pol.v_ratio, rows=rows)
    # The analytical model's module composition on the same jobs, fed the refetch rate and score spread measured
    # on these tensors (docs/spatten.md §Three fidelities).
    an = analytical_workload_cycles(wl, rtl_arch(cfg), cfg, v_ratio=pol.v_ratio, refetch_rate=res["refetch_rate"],
                                    score_std=workload_score_std(wl))
    res["analytical_cycles"] = an["cycles"]
    text = (f"spatten-pipeline {params} on {wl.name} B={wl.batch} H={wl.heads} P={wl.p} M={wl.m} "
            f"(threshold {pol.threshold}, V ratio {pol.v_ratio}; one query at a time, no token/head pruning)\n"
            f"  per query: {res['cycles_per_query_mean']:.1f} cycles (min {res['cycles_per_query_min']}, max "
            f"{res['cycles_per_query_max']}; "
            + (f"every one of the {res['rows_sampled']} jobs run" if res["all_jobs"] else
               f"{res['rows_sampled']} rows sampled over the positions")
            + f", LSB refetch rate "
            f"{res['refetch_rate']:.2f}, {res['kept_values']} V rows kept)\n"
            f"  {res['queries']:,} queries: {res['cycles']:,} cycles; analytical (spatten-rtl, same jobs): "
            f"{an['cycles']:,.0f} ({an['cycles'] / res['cycles'] - 1:+.1%}"
            + ("; the analytical model's top-k is an expectation over pivots, these jobs' own rounds scatter"
               if res["all_jobs"] and res["rows_sampled"] < 100 else "") + ")")
    return {"fidelity": "cycle", "design": "spatten-pipeline", "params": params, "workload": wl.name,
            "batch": wl.batch, "heads": wl.heads, "p": wl.p, "m": wl.m, "layers": 1, "threshold": pol.threshold, **res,
            **sc.describe(), "_text": text}


def _top_check(sc: Any, wl: Any) -> None:
    """What spatten-top cannot run, refused in one line: it runs one encoder sequence per pass (self-attention
    over all tokens: P = M, no mask, batch 1) at the instance's head dimension and sizes."""
    from attnforge.sim.spatten.top_analytical import check_instance

    if wl.stage != "prefill" or wl.causal or wl.p != wl.m:
        raise SpecError("--workload", f"spatten-top runs encoder passes (prefill, no causal mask, P = M); got "
                        f"{wl.stage}, causal={wl.causal}, P={wl.p}, M={wl.m}")
    if wl.batch != 1:
        raise SpecError("--batch", f"spatten-top runs one sequence per pass, got {wl.batch}", [1])
    check_instance(sc.arch, d=wl.e, tokens=wl.m, heads=wl.heads, layers=sc.model.layers)


def _cycle_spatten_top(sc: Any) -> dict[str, Any]:
    """An arch with a ``top`` section (spatten-top): the golden pass over every layer with cascade pruning (the
    policy's schedule), the top's exact cycle model on its facts, and the analytical model beside it. MiniLM runs
    on the real text when its weights are installed, any other model (or MiniLM without them) on a seeded
    encoder of its shape."""
    from attnforge.sim.contract.memport import MemTiming
    from attnforge.sim.contract.spatten_top import SpattenTopCfg
    from attnforge.sim.spatten.top_analytical import instance_fx, layers_from_run, pass_cycles, sequence_length
    from attnforge.sim.spatten.top_cycle_model import top_cycles
    from attnforge.sim.spatten.top_run import golden_pass

    wl, arch, pol = _workload(sc), sc.arch, sc.policy
    _top_check(sc, wl)
    t, fx = arch.top, instance_fx(arch)
    cfg = SpattenTopCfg(fx, t.max_heads, t.max_layers).validate()
    timing = MemTiming(t.mem_latency_cycles, t.mem_outstanding, t.mem_interval_cycles).validate()
    phase(f"spatten-top: golden pass over {sc.model.layers} layers x {wl.m} tokens, then its cycle model")
    tp = golden_pass(layers=sc.model.layers, heads=wl.heads, d_head=wl.e, tokens=wl.m, fx=fx, policy=pol,
                     real="minilm" in sc.model.name.lower(), seed=sc.seed, d_ff=sc.model.d_ff)
    if tp.tokens != wl.m:
        raise SpecError("--seq-len", f"the real text has {tp.tokens} tokens, fewer than {wl.m}", f"1..{tp.tokens}")
    cyc = top_cycles(tp.run, cfg, timing)
    ana = pass_cycles(arch, layers_from_run(tp.run, arch), tokens=sequence_length(tp.run),
                      max_len=(1 << cfg.len_bits) - 1)
    kept = [(int(lr.alive.size), int(lr.heads.size)) for lr in tp.run.layers]
    an = float(ana["cycles"])
    from attnforge.sim.analytical.engine import evaluate

    eng = float(evaluate(sc.accelerator.name, sc.model, p=wl.p, m=wl.m, batch=1, arch=arch, policy=pol).cycles)
    text = (f"spatten-top {arch.name} on {wl.name} ({tp.source}) {wl.m} tokens, {sc.model.layers} layers, policy "
            f"token {pol.token_ratio} head {pol.head_ratio} V {pol.v_ratio} threshold {pol.threshold}, memory "
            f"{vars(timing)}\n  kept (tokens, heads) per layer: {kept}\n"
            f"  cycle model: {cyc['cycles']:,} cycles, {cyc['requests']:,} memory requests, {cyc['beats']:,} beats\n"
            f"  analytical:  {an:,.0f} cycles ({an / cyc['cycles'] - 1:+.2%} vs the cycle model; refetch rate and "
            f"top-k cycles measured on this pass)\n"
            f"  analytical engine (policy only, no tensors): {eng:,.0f} cycles ({eng / cyc['cycles'] - 1:+.2%})")
    return {"fidelity": "cycle", "design": "spatten-top", "arch": arch.name, "workload": wl.name,
            "tensors": tp.source, "tokens": wl.m, "layers": sc.model.layers, "kept_tokens_heads": kept,
            "memory": vars(timing), "cycles": cyc["cycles"], "mem_requests": cyc["requests"],
            "mem_beats": cyc["beats"], "analytical_cycles": an, "analytical_engine_cycles": eng, **sc.describe(),
            "_text": text}


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
        print(json.dumps(finite_json(rows), indent=2, allow_nan=False))
        return 0
    print(f"top-k engine, {args.comparators} comparators, {args.trials} random int8 vectors per point")
    print(f"{'n':>6} {'k':>6} {'mean':>9} {'min':>7} {'max':>7} {'cyc/elem':>9}")
    for r in rows:
        print(f"{r['n']:>6} {r['k']:>6} {r['mean']:>9.1f} {r['min']:>7} {r['max']:>7} {r['per_element']:>9.3f}")
    return 0
