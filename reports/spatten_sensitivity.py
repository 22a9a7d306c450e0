"""SpAtten's sensitivity studies beside ours, and average power per run beside the paper's chip power.

The paper sweeps the top-k comparators and the K/V SRAM size on one GPT-2 task (Fig. 19a/b) and credits static
and progressive quantization with 1.6x and 1.7x on the GPT-2 benchmarks (Fig. 20). We replay the shipped
GPT-2-Small trace (real generation steps: its kept keys, kept values, bit widths and LSB refetches) on the
spatten arch with one field changed at a time, so every ratio comes from the module and memory models, not from a
fit: comparators move the top-k engine's rounds, SRAM size only matters where K/V are reused (never in generation),
channels move the HBM's achieved bandwidth, and the K/V widths move the bytes each step fetches.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from attnforge.reports.spatten_arch import arch as spatten_arch
from attnforge.reports.spatten_arch import current as spatten_arch_current
from attnforge.reports.spatten_arch import overridden as spatten_arch_overridden
from attnforge.sim.analytical.engine import run_schedule
from attnforge.sim.spatten.trace import Trace, load_trace, trace_schedule
from attnforge.sim.specs.arch import Arch

TRACE = Path(__file__).resolve().parent.parent / "workloads" / "traces" / "summary-gpt2-small-wikitext2-per8.csv"
#: The memory-bound trace (GPT-2-Medium, its static step): where the HBM's requests in flight show.
MEMORY_TRACE = TRACE.parent / "summary-gpt2-medium-wikitext2-per0-hp-step5+dedic+glob_p+local_p+hp+topk+quant.csv"
#: Paper Fig. 19a: overall GFLOPS of one GPT-2 task against comparators per top-k array.
PAPER_COMPARATORS: dict[int, float] = {1: 168, 2: 299, 4: 485, 8: 653, 16: 776, 32: 771}
#: Paper Fig. 19b: GFLOPS against the K (and V) SRAM size in KB.
PAPER_SRAM_KB: dict[int, float] = {196: 776, 392: 785, 784: 775}
#: Paper Table II: SpAtten's total power (compute logic 1.36 W + SRAM 1.24 W + DRAM 5.71 W).
PAPER_POWER_W = 8.30


@dataclass
class Point:
    """One run of a sweep: its setting, throughput and average power."""

    label: str
    gflops: float
    power_w: float
    bound: str
    #: DRAM bandwidth while the traffic moves (bytes over the memory time) and over the whole run.
    dram_gb_s: float = 0.0
    avg_dram_gb_s: float = 0.0


def run(trace: Trace, arch: Arch, label: str) -> Point:
    """Replay ``trace`` on ``arch``: executed GFLOPS, average power and what bounds it."""
    sched, _ = trace_schedule(trace, arch)
    ev = run_schedule(arch.name, sched, arch)
    sec = float(ev.latency_s)
    bound = "memory" if float(ev.memory_cycles) > float(ev.compute_cycles) else "compute"
    mem_s = float(ev.memory_cycles) / arch.clock_hz
    by = float(sched.dram_bytes)
    return Point(label, float(sched.flops) / sec / 1e9, float(ev.energy_j) / sec, bound, by / mem_s / 1e9,
                 by / sec / 1e9)


def _widths(trace: Trace, k_bits: int, v_bits: int) -> Trace:
    """The trace with every row's K MSB and V widths set (LSB refetches unchanged)."""
    rows = trace.rows.copy()
    rows["quant_key_bit"] = k_bits
    rows["quant_value_bit"] = v_bits
    return replace(trace, rows=rows)


def sweeps(trace_path: Path = TRACE, comparators: tuple[int, ...] = tuple(PAPER_COMPARATORS),
           sram_kb: tuple[int, ...] = tuple(PAPER_SRAM_KB), channels: tuple[int, ...] = (4, 8, 16, 32),
           widths: tuple[int, ...] = (12, 8, 6, 4), pending: tuple[int, ...] = (8, 12, 16, 20, 32),
           pending_trace: Path = MEMORY_TRACE) -> dict[str, list[Point]]:
    """The sweeps on the trace: comparators, SRAM size, HBM channels, K/V widths (K and V at one width); and the
    HBM's requests in flight per channel on the memory-bound ``pending_trace``."""
    tr = load_trace(trace_path)
    out: dict[str, list[Point]] = {"comparators": [], "sram": [], "channels": [], "widths": [], "pending": []}
    for c in comparators:
        out["comparators"].append(run(tr, spatten_arch("spatten", {"spatten.topk_comparators": c}), f"{c}"))
    for kb in sram_kb:
        out["sram"].append(run(tr, spatten_arch("spatten", {"spatten.kv_sram_bytes": kb * 196608 // 196}),
                               f"{kb} KB"))
    for ch in channels:
        arch = spatten_arch("spatten", {"hbm.channels": ch, "dram.bandwidth_gib_s": ch * 32e9 / 2**30})
        out["channels"].append(run(tr, arch, f"{ch} ch"))
    for b in widths:
        out["widths"].append(run(_widths(tr, b, b), spatten_arch(), f"K{b}/V{b}"))
    mem = load_trace(pending_trace) if pending else None
    for n in pending:
        out["pending"].append(run(mem, spatten_arch("spatten", {"hbm.outstanding": n}), f"{n}"))
    return out


#: The benchmark whose own runs set the comparator sweep's level beside Fig. 19a's GFLOPS (its settings are those
#: of the trace the sweeps replay: docs/spatten.md §Benchmarks and policies).
LEVEL_BENCHMARK = "gpt2-small/WikiText-2"


@dataclass
class Level:
    """One comparator count on a GPT-2 benchmark: executed GFLOPS of its generation steps alone and of the causal
    prompt pass with them (the paper's Fig. 19a names "one GPT-2 task" without saying which phases it counts)."""

    label: str
    generation_gflops: float
    with_prompt_gflops: float


def levels(comparators: tuple[int, ...] = tuple(PAPER_COMPARATORS), bench: str = LEVEL_BENCHMARK) -> list[Level]:
    """The benchmark run at each comparator count, generation alone and prompt plus generation, so the paper's
    absolute GFLOPS (776 at 16) can be set beside a phase: the trace sweep above gives the shape, not the level."""
    from attnforge.reports.spatten_runs import run_phase
    from attnforge.workloads.spatten_benchmarks import benchmarks

    b = next(x for x in benchmarks() if x.name == bench)
    out = []
    for c in comparators:
        with spatten_arch_overridden({**spatten_arch_current(), "spatten.topk_comparators": c}):
            gen, prompt = run_phase(b, "generate"), run_phase(b, "prompt")
        out.append(Level(f"{c}", gen.flops / gen.seconds / 1e9,
                         (gen.flops + prompt.flops) / (gen.seconds + prompt.seconds) / 1e9))
    return out


def format_levels(lv: list[Level], bench: str = LEVEL_BENCHMARK) -> str:
    """The level block: the paper's GFLOPS beside the benchmark's, each phase also relative to its 16 comparators."""
    ref = next(x for x in lv if x.label == "16")
    lines = [f"  {'comparators':<12} {'paper GFLOPS':>12} {'generation':>11} {'rel':>6} {'+ prompt':>9} {'rel':>6}  "
             f"(the level: {bench} benchmark, its own settings; docs/spatten.md §Module throughputs)"]
    for x in lv:
        lines.append(f"  {x.label:<12} {PAPER_COMPARATORS[int(x.label)]:>12.0f} {x.generation_gflops:>11.0f} "
                     f"{x.generation_gflops / ref.generation_gflops:>6.3f} {x.with_prompt_gflops:>9.0f} "
                     f"{x.with_prompt_gflops / ref.with_prompt_gflops:>6.3f}")
    return "\n".join(lines)


def _rel(points: list[Point], ref: str) -> dict[str, float]:
    base = next(p.gflops for p in points if p.label == ref)
    return {p.label: p.gflops / base for p in points}


def format_report(sw: dict[str, list[Point]]) -> str:
    """Text: each sweep as ours (GFLOPS, relative) beside the paper's relative figure where it gives one."""
    lines = ["", "sensitivity (GPT-2-Small trace, generation steps; throughput relative to the paper's setting)"]
    rel = _rel(sw["comparators"], "16")
    paper_rel = {str(c): g / PAPER_COMPARATORS[16] for c, g in PAPER_COMPARATORS.items()}
    lines.append(f"  {'comparators':<12} {'ours GFLOPS':>11} {'ours rel':>9} {'paper rel':>9}  bound")
    for p in sw["comparators"]:
        lines.append(f"  {p.label:<12} {p.gflops:>11.0f} {rel[p.label]:>9.3f} {paper_rel[p.label]:>9.3f}  {p.bound}")
    rel = _rel(sw["sram"], "196 KB")
    paper = {f"{k} KB": g / PAPER_SRAM_KB[196] for k, g in PAPER_SRAM_KB.items()}
    lines.append(f"  {'K/V SRAM':<12} {'':>11} {'ours rel':>9} {'paper rel':>9}")
    lines += [f"  {p.label:<12} {p.gflops:>11.0f} {rel[p.label]:>9.3f} {paper[p.label]:>9.3f}" for p in sw["sram"]]
    rel = _rel(sw["channels"], "16 ch")
    lines.append(f"  {'HBM channels':<12} {'':>11} {'ours rel':>9} {'':>9}  bound (paper: GPT-2 is memory-bound)")
    lines += [f"  {p.label:<12} {p.gflops:>11.0f} {rel[p.label]:>9.3f} {'':>9}  {p.bound}" for p in sw["channels"]]
    rel = _rel(sw["widths"], "K12/V12")
    lines.append(f"  {'K/V bits':<12} {'':>11} {'ours rel':>9} {'':>9}  (paper Fig. 20: static quantization 1.6x, "
                 "progressive a further 1.7x)")
    lines += [f"  {p.label:<12} {p.gflops:>11.0f} {rel[p.label]:>9.3f} {'':>9}  {p.bound}" for p in sw["widths"]]
    if sw.get("pending") and any(p.label == "16" for p in sw["pending"]):
        rel = _rel(sw["pending"], "16")
        lines.append(f"  {'in flight':<12} {'':>11} {'ours rel':>9} {'':>9}  bound, HBM GB/s (GPT-2-Medium trace; the "
                     "released driver allows 16 requests per channel: docs/spatten.md §Memory system)")
        lines += [f"  {p.label:<12} {p.gflops:>11.0f} {rel[p.label]:>9.3f} {'':>9}  {p.bound}, {p.dram_gb_s:.0f}"
                  for p in sw["pending"]]
    return "\n".join(lines)


def power_report(trace_paths: list[Path] | None = None) -> str:
    """Average power of the shipped GPT-2 trace replays and of BERT-Base/Large at the SQuAD and SST-2 lengths,
    beside the paper's 8.30 W chip (Table II; its DRAM share is counted from Ramulator's activates and reads)."""
    from attnforge.sim.analytical.engine import evaluate
    from attnforge.sim.specs.spatten_policy import BERT
    from attnforge.workloads import get_model

    lines = [f"average power (paper Table II: {PAPER_POWER_W} W chip = 1.36 logic + 1.24 SRAM + 5.71 DRAM)"]
    paths = trace_paths or sorted(TRACE.parent.glob("summary-gpt2-*per[08]*.csv"))
    for path in paths:
        if "step1" in path.name or "ptb-per0" in path.name:
            continue  # unpruned baselines
        p = run(load_trace(path), spatten_arch(), path.stem.removeprefix("summary-"))
        lines.append(f"  {p.label[:48]:<48} {p.power_w:6.2f} W  {p.gflops:6.0f} GFLOPS  {p.bound}-bound, HBM "
                     f"{p.dram_gb_s:.0f} GB/s achieved, {p.avg_dram_gb_s:.0f} GB/s average")
    for model, n in (("bert-base", 25), ("bert-base", 160), ("bert-large", 160)):
        ev = evaluate("spatten", get_model(model), p=n, m=n, batch=1, policy=BERT, arch=spatten_arch())
        w = float(np.sum(ev.energy_j)) / float(np.sum(ev.latency_s))
        lines.append(f"  {f'{model} seq {n} (BERT policy)':<48} {w:6.2f} W")
    return "\n".join(lines)


def report() -> str:
    """Both parts, as ``reproduce spatten`` prints them."""
    return format_report(sweeps()) + "\n" + format_levels(levels()) + "\n\n" + power_report()


__all__ = ["LEVEL_BENCHMARK", "PAPER_COMPARATORS", "PAPER_POWER_W", "PAPER_SRAM_KB", "Level", "Point", "format_levels",
           "format_report", "levels", "power_report", "report", "run", "sweeps"]
