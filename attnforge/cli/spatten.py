"""SpAtten's pieces of the CLI: trace replay, the algorithm knobs on `simulate`, and `reproduce spatten`.

Kept apart from sim/cli.py so that file only gains three dispatch lines. Every bad value (ratio outside [0, 1),
threshold outside (0, 1], a malformed trace) is a SpecError, which attnforge.cli.main turns into one line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from attnforge.sim.specs.errors import SpecError

KNOBS: tuple[str, ...] = ("token_ratio", "head_ratio", "v_ratio", "quant", "threshold", "topk_parallelism")


def add_trace_option(p: argparse.ArgumentParser) -> None:
    """--trace and the SpAtten algorithm knobs on the simulate parser."""
    g = p.add_argument_group("SpAtten", "trace replay and algorithm settings (accelerators spatten, spatten-1/8)")
    g.add_argument("--trace", default=None, metavar="FILE",
                   help="replay a SpAtten workload trace CSV, e.g. workloads/traces/"
                        "summary-gpt2-small-wikitext2-per8.csv")
    g.add_argument("--baseline", default=None, metavar="FILE",
                   help="unpruned trace to compare against (default: an unpruned trace of the same model shape in the "
                        "trace's folder)")
    g.add_argument("--token-ratio", type=float, default=None, help="average token pruning ratio in [0, 1)")
    g.add_argument("--head-ratio", type=float, default=None, help="average head pruning ratio in [0, 1)")
    g.add_argument("--v-ratio", type=float, default=None, help="local V pruning ratio in [0, 1)")
    g.add_argument("--quant", default=None, help="K setting: MSB+LSB (progressive, e.g. 6+4) or a static width (8)")
    g.add_argument("--threshold", type=float, default=None, help="LSB refetch threshold on the max probability, (0, 1]")
    g.add_argument("--topk-parallelism", type=int, default=None, help="comparators per top-k engine (default: arch)")


def wants_spatten(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "trace", None)) or any(getattr(args, k, None) is not None for k in KNOBS)


def _policy(args: argparse.Namespace, causal: bool):
    from attnforge.mappings import get_accelerator
    from attnforge.mappings.spatten import policy_for
    from attnforge.sim.spatten.quant import parse_setting

    acc = get_accelerator(args.accel)
    if acc.builder != "spatten":
        raise SpecError("--accel", f"SpAtten options need a SpAtten accelerator, not {args.accel!r}",
                        ["spatten", "spatten-1/8"])
    base = policy_for(acc, causal)
    kw: dict[str, object] = {"name": "cli"}
    for k in ("token_ratio", "head_ratio", "v_ratio", "threshold", "topk_parallelism"):
        if getattr(args, k, None) is not None:
            kw[k] = getattr(args, k)
    if args.quant is not None:
        msb, lsb = parse_setting(args.quant)
        kw.update(quantize=True, k_msb=msb, k_lsb=lsb, progressive=lsb > 0, lsb_refetch_rate=None)
    return base.with_(**kw)


def _find_baseline(trace_path: Path, layers: int, heads: int) -> Path | None:
    """An unpruned, unquantized trace with the same layers and heads in the same folder."""
    from attnforge.sim.spatten.trace import load_trace

    for cand in sorted(trace_path.parent.glob("*.csv")):
        if cand.resolve() == trace_path.resolve():
            continue
        try:
            t = load_trace(cand)
        except SpecError:
            continue
        r = t.rows
        if (r["layer_id"].nunique() == layers and r["head_id"].max() + 1 == heads
                and (r["key_fetch_num"] == r["sentence_length_L"]).all() and (r["quant_key_bit"] == -1).all()):
            return cand
    return None


def run_trace(args: argparse.Namespace) -> int:
    """`simulate --trace FILE`: replay; or `simulate --accel spatten --token-ratio ...`: the builder with knobs."""
    from attnforge.mappings import get_accelerator
    from attnforge.sim.analytical.engine import run_schedule
    from attnforge.sim.specs.arch import get_preset, load_arch

    if not args.trace:
        return _simulate_with_knobs(args)
    from attnforge.sim.spatten.trace import load_trace, trace_schedule

    acc = get_accelerator(args.accel if args.accel != "fusemax" else "spatten")
    if acc.builder != "spatten":
        raise SpecError("--accel", f"--trace replays SpAtten traces; {args.accel!r} is not a SpAtten accelerator",
                        ["spatten", "spatten-1/8"])
    arch = load_arch(args.arch or acc.arch, _overrides(args)) if (args.arch or args.set) else get_preset(acc.arch)
    tr = load_trace(args.trace)
    sched, summ = trace_schedule(tr, arch, args.topk_parallelism)
    ev = run_schedule(acc.name, sched, arch)
    heads = int(tr.rows["head_id"].max() + 1)
    base_path = Path(args.baseline) if args.baseline else _find_baseline(Path(args.trace), summ.layers, heads)
    out: dict[str, object] = {
        "trace": tr.name, "accelerator": acc.name, "rows": summ.rows, "iterations": summ.iterations,
        "layers": summ.layers, "cycles": float(ev.cycles), "latency_s": float(ev.latency_s),
        "dram_bytes": float(sched.actions["dram.word"]), "energy_j": float(ev.energy_j),
        "energy_breakdown_j": {k: float(v) * 1e-12 for k, v in ev.energy_pj.items()},
        "tflops": float(sched.flops) / float(ev.latency_s) / 1e12,
        "bound": "compute" if float(ev.compute_cycles) >= float(ev.memory_cycles) else "memory",
        "dram_reduction_vs_fp32_dense": summ.dram_bytes_fp32_dense / float(sched.actions["dram.word"]),
        **{k: float(v) for k, v in sched.extra.items()},
    }
    if base_path is not None:
        bs, _ = trace_schedule(load_trace(base_path), arch, args.topk_parallelism)
        bev = run_schedule(acc.name, bs, arch)
        out.update({
            "baseline_trace": base_path.stem,
            "baseline_cycles": float(bev.cycles),
            "baseline_dram_bytes": float(bs.actions["dram.word"]),
            "baseline_energy_j": float(bev.energy_j),
            "speedup_vs_baseline": float(bev.cycles) / float(ev.cycles),
            "dram_reduction_vs_baseline": float(bs.actions["dram.word"]) / float(sched.actions["dram.word"]),
            "energy_reduction_vs_baseline": float(bev.energy_j) / float(ev.energy_j),
        })
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    w = max(len(k) for k in out)
    for k, v in out.items():
        if isinstance(v, dict):
            v = ", ".join(f"{a} {b:.3g} J" for a, b in v.items())
        elif isinstance(v, float):
            v = f"{v:.6g}"
        print(f"{k:<{w}}  {v}")
    return 0


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    from attnforge.cli.main import _overrides as parse

    return parse(args.set)


def _simulate_with_knobs(args: argparse.Namespace) -> int:
    from attnforge.cli.main import _arch_for, _lengths, _workload
    from attnforge.mappings import Accelerator, get_accelerator, register_accelerator
    from attnforge.mappings.spatten import register_policy
    from attnforge.reports.tables import breakdown_table, text_table
    from attnforge.sim.analytical.engine import simulate_sweep

    seqs = _lengths(args.seq_len)
    wl = _workload(args, seqs[0])
    pol = _policy(args, wl.causal)
    register_policy(pol)
    acc = get_accelerator(args.accel)
    name = f"{acc.name}"
    register_accelerator(Accelerator(f"{name}+cli", acc.arch, pol.name, acc.description + " (CLI settings)",
                                     builder="spatten"))
    res = simulate_sweep(f"{name}+cli", wl, seqs, scope=args.scope, arch=_arch_for(args.accel, args))
    if args.json:
        d = [r.to_dict() for r in res]
        print(json.dumps(d[0] if len(d) == 1 else d, indent=2))
    else:
        print(text_table(res))
        print()
        print(breakdown_table(res[-1]))
        print(", ".join(f"{k} {v:.4g}" for k, v in res[-1].extra.items()))
    return 0


def reproduce_spatten(args: argparse.Namespace) -> int:
    from attnforge.reports.spatten_paper import format_rows, reproduce

    t0 = time.perf_counter()
    rows, notes = reproduce()
    if args.json:
        print(json.dumps([{"metric": r.metric, "paper": None if r.paper != r.paper else r.paper, "ours": r.ours,
                           "source": r.source, "note": r.note} for r in rows], indent=2))
    else:
        print(format_rows(rows, notes))
        print(f"\n30 benchmarks, breakdown, Table III and trace replays in {time.perf_counter() - t0:.1f} s")
    return 0
