"""`attnforge reproduce spatten`: SpAtten's headline results beside ours, every number computed here.

Benchmarks (paper section V-A): BERT-Base/Large on CoLA, SST-2, MRPC, STS-B, QQP, MNLI-m, MNLI-mm, QNLI, RTE,
SQuAD v1.1 and v2.0 at each task's average length (22), and GPT-2-Small/Medium on WikiText-2, WikiText-103, PTB
and One-Billion-Word with a 992-token prompt and 32 generated tokens (8), each from its file under
workloads/spatten/ with its own settings. All go through the shared engine with the "spatten" builder; a GPT-2
benchmark is its 32 decode steps (context 993..1024), as the paper measures it (Table IV), and the causal prompt
pass is reported apart. The DRAM baseline is FP32 unpruned K and V (docs/spatten.md §Evaluation). The shipped
SpAtten traces are replayed as well, and the golden model reports the accuracy proxy on real MiniLM attention
when the optional extra is installed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from attnforge.reports import spatten_arch
from attnforge.reports.paper import Row
from attnforge.reports.paper import format_rows as _format_rows
from attnforge.sim.analytical.engine import Evaluation, evaluate_scenario, run_schedule
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.progress import phase
from attnforge.sim.specs.scenario import Scenario
from attnforge.sim.specs.spatten_policy import A3_APPROX_SPEEDUP, BERT, FP32_BITS, GPT2, Policy, breakdown_policies
from attnforge.sim.specs.spatten_policy import POLICIES as POLICY_REGISTRY
from attnforge.workloads import get_model
from attnforge.workloads.spatten_benchmarks import (
    GENERATED,
    PHASES,
    PROMPT,
    Benchmark,
    benchmarks,
    fc_gflops,
    warmup_steps,
)

TRACE_DIR = Path(__file__).resolve().parent.parent / "workloads" / "traces"
SMALL_TRACE = "summary-gpt2-small-wikitext2-per8.csv"
SMALL_BASE = "summary-gpt2-small-wikitext2-per8-step1+dedic.csv"
MEDIUM_TRACE = "summary-gpt2-medium-wikitext2-per0-hp-step5+dedic+glob_p+local_p+hp+topk+quant.csv"
MEDIUM_BASE = "summary-gpt2-medium-ptb-per0.csv"


@dataclass
class Totals:
    """One benchmark on one accelerator: summed over its passes (GPT-2: summarization + 32 decode steps)."""

    cycles: float
    dram_bytes: float
    energy_j: float
    flops: float
    dense_flops: float
    fp32_dense_bytes: float
    seconds: float
    #: K and V alone (the tensors the paper's DRAM reduction counts): bytes moved and elements fetched.
    kv_dram_bytes: float = 0.0
    kv_elements: float = 0.0
    #: K alone (MSBs and LSBs): what progressive quantization acts on.
    k_dram_bytes: float = 0.0
    k_elements: float = 0.0
    #: What bounds the run, for the deviation notes: summed compute and DRAM cycles, the cycles of the stages
    #: (layers) whose DRAM time exceeds their compute, busy cycles per module, tokens kept (mean over passes).
    compute_cycles: float = 0.0
    memory_cycles: float = 0.0
    memory_bound_cycles: float = 0.0
    busy: dict[str, float] = field(default_factory=dict)
    tokens_kept: float = 1.0
    #: Fixed-cost cycles of the summarization passes (sim/spatten/stalls.py): head switches, layer-boundary top-k,
    #: and the pipeline drain at layer ends.
    stalls: dict[str, float] = field(default_factory=dict)

    @property
    def tflops(self) -> float:
        return self.flops / self.seconds / 1e12

    @property
    def effective_gops(self) -> float:
        return self.dense_flops / self.seconds / 1e9

    @property
    def dram_reduction(self) -> float:
        """FP32 dense K+V bytes over the K+V bytes moved (MSBs, LSBs, kept V): the same tensors on both sides."""
        return self.fp32_dense_bytes / self.kv_dram_bytes

    @property
    def pruning_reduction(self) -> float:
        """The part of dram_reduction that pruning gives: dense K+V elements over those fetched."""
        return self.fp32_dense_bytes / 4 / self.kv_elements

    @property
    def quant_reduction(self) -> float:
        """The part that quantization gives: the fetched elements at 32 bits over their bytes moved."""
        return self.kv_elements * 4 / self.kv_dram_bytes

    @property
    def k_quant_reduction(self) -> float:
        """Quantization's part on K alone: the fetched K elements at 32 bits over their MSB and LSB bytes."""
        return self.k_elements * 4 / self.k_dram_bytes

    @property
    def memory_bound_share(self) -> float:
        """Fraction of the cycles spent in stages that wait on DRAM."""
        return self.memory_bound_cycles / self.cycles

    @property
    def achieved_gbs(self) -> float:
        """GB/s the DRAM delivers while it moves this run's bytes (the HBM model's efficiency x the peak)."""
        return self.dram_bytes / (self.memory_cycles / (self.cycles / self.seconds)) / 1e9


def _sum(evs: list[Evaluation], d: int, layers: int, heads: int, kv_lens: list[np.ndarray]) -> Totals:
    cyc = sum(float(np.sum(e.cycles)) for e in evs)
    clock = evs[0].arch.clock_hz
    fp32 = sum(float(np.sum(2 * layers * heads * m * d * 4)) for m in kv_lens)
    busy: dict[str, float] = {}
    for e in evs:
        for k, v in e.schedule.busy.items():
            busy[k] = busy.get(k, 0.0) + float(np.sum(v))
    return Totals(
        cycles=cyc,
        dram_bytes=sum(float(np.sum(e.schedule.dram_bytes)) for e in evs),
        energy_j=sum(float(np.sum(e.energy_j)) for e in evs),
        flops=sum(float(np.sum(e.schedule.flops)) for e in evs),
        dense_flops=sum(float(np.sum(e.schedule.extra["dense_flops"])) for e in evs),
        fp32_dense_bytes=fp32,
        seconds=cyc / clock,
        kv_dram_bytes=sum(float(np.sum(e.schedule.extra["kv_dram_bytes"])) for e in evs),
        kv_elements=sum(float(np.sum(e.schedule.extra["kv_elements"])) for e in evs),
        k_dram_bytes=sum(float(np.sum(e.schedule.extra["k_dram_bytes"])) for e in evs),
        k_elements=sum(float(np.sum(e.schedule.extra["k_elements"])) for e in evs),
        compute_cycles=sum(float(np.sum(e.compute_cycles)) for e in evs),
        memory_cycles=sum(float(np.sum(e.memory_cycles)) for e in evs),
        memory_bound_cycles=sum(_memory_bound_cycles(e) for e in evs),
        busy=busy,
        tokens_kept=float(np.mean([np.mean(e.schedule.extra.get("tokens_kept", 1.0)) for e in evs])),
        stalls={k: sum(float(np.sum(e.schedule.extra.get(f"{k}_cycles", 0.0))) for e in evs) for k in STALLS},
    )


#: The fixed-cost terms a schedule's extra carries as ``<name>_cycles``, in the order the BERT note names them.
STALLS = ("head_switch", "boundary", "barrier")


def _memory_bound_cycles(ev: Evaluation) -> float:
    """Cycles of the stages whose time is their DRAM time (stage time above its compute)."""
    out = 0.0
    for st in ev.schedule.stages:
        t = np.asarray(ev.stage_cycles[st.name], dtype=np.float64)
        out += float(np.sum(np.where(t > np.asarray(st.compute_cycles(), dtype=np.float64) * (1 + 1e-9), t, 0.0)))
    return out


def _evaluate(accel: str, model: str, lens: list[int], policy: Policy, overrides: dict[str, object] | None = None,
              **kw: object) -> Evaluation:
    """One Scenario of the reproduction, with the run's arch overrides (reports/spatten_arch.py), then ``overrides``."""
    ov = {**spatten_arch.current(), **(overrides or {})}
    return evaluate_scenario(Scenario.build(accelerator=accel, workload=model, seq_lens=lens, batch=1, policy=policy,
                                            overrides=ov or None, **kw))  # type: ignore[arg-type]


def without_heads(policy: Policy) -> Policy:
    """The same settings with every head kept: the paper reports token + local V pruning apart from head pruning
    (section V-B: 3.8x over GPT-2; head pruning 1.1x on its own), and Table IV's runs prune no heads."""
    return policy.with_(head_keep=None, head_ratio=0.0)


def warmup_policy(policy: Policy) -> Policy:
    """The settings of a generation step before token pruning starts: every token kept, and the warm-up steps' own
    LSB refetch rates where the policy has them (rows over every key are flatter); the rest unchanged."""
    warm = policy.with_(name=f"{policy.name} warm-up", token_ratio=0.0, token_keep=None, warmup_steps=0,
                        warmup_lsb_refetch_layers=None)
    rates = policy.warmup_lsb_refetch_layers
    if rates is None:
        return warm
    return warm.with_(lsb_refetch_layers=rates, lsb_refetch_rate=float(np.mean(rates)))


def run_phase(bench: Benchmark, phase: str | None = None, accel: str = "spatten", policy: Policy | None = None) -> Totals:
    """One benchmark on one accelerator. BERT: one summarization pass at the task's length (no phase applies).
    GPT-2: ``generate`` (default, what the paper measures) runs the 32 decode steps, the first ``warmup_steps``
    with every token kept; ``prompt`` the causal summarization pass over the prompt; ``both`` their sum."""
    pol = policy or bench.policy
    mdl = get_model(bench.model)
    if not bench.generative:
        if phase not in (None, "prompt"):
            raise SpecError("phase", f"{bench.name} is an encoder benchmark: one summarization pass, no generation")
        ev = _evaluate(accel, bench.model, [bench.length], pol)
        return _sum([ev], mdl.d_head, mdl.layers, mdl.heads, [np.asarray(bench.length)])
    ph = phase or "generate"
    if ph not in PHASES:
        raise SpecError("phase", f"unknown phase {ph!r}", PHASES)
    evs: list[Evaluation] = []
    lens: list[np.ndarray] = []
    # Each part runs one policy on all its points (a Scenario refuses warm-up steps it cannot split): the prompt
    # and the pruned generation steps the steady settings, the warm-up steps their own.
    steady = pol.with_(warmup_steps=0, warmup_lsb_refetch_layers=None)
    if ph in ("prompt", "both"):
        evs.append(_evaluate(accel, bench.model, [bench.length], steady, causal=True))
        lens.append(np.asarray(bench.length))
    if ph in ("generate", "both"):
        ctx = [bench.length + 1 + i for i in range(bench.generate)]
        warm = min(pol.warmup_steps, len(ctx))
        for part, sp in ((ctx[:warm], warmup_policy(pol)), (ctx[warm:], steady)):
            if part:
                evs.append(_evaluate(accel, bench.model, part, sp, causal=True, stage="decode"))
                lens.append(np.asarray(part))
    return _sum(evs, mdl.d_head, mdl.layers, mdl.heads, lens)


def run_benchmark(model: str, length: int | None, policy: Policy, accel: str = "spatten",
                  phase: str | None = None) -> Totals:
    """A model at one length with one policy: BERT (``length``: one summarization pass) or GPT-2 (``length``
    None: the paper's 32 generation steps after a 992-token prompt; ``phase`` as in :func:`run_phase`)."""
    gen = 0 if length is not None else GENERATED
    bench = Benchmark(name=f"{model}/custom", model=model, dataset="", length=length or PROMPT, generate=gen,
                      policy=policy, trace=None, sources=(), path="")
    return run_phase(bench, phase, accel=accel)


def gpt2_policy() -> Policy:
    """Generic GPT-2 settings for runs that are not one of the paper's benchmarks (the GPU comparison): the named
    GPT-2 policy with the LSB refetch rate of SpAtten's real GPT-2-Small trace."""
    small = next(b for b in benchmarks() if b.name == "gpt2-small/WikiText-2")
    return GPT2.with_(lsb_refetch_rate=small.policy.lsb_refetch_rate)


def _geo(xs: list[float]) -> float:
    return float(np.exp(np.mean(np.log(xs))))


def _trace_rows() -> tuple[list[Row], list[str], dict[str, str]]:
    from attnforge.sim.spatten.trace import load_trace, trace_schedule

    rows: list[Row] = []
    notes: list[str] = []
    measured: dict[str, str] = {}
    fpb: dict[str, float] = {}
    arch = spatten_arch.arch()
    for label, pruned, base in (("GPT-2-Small", SMALL_TRACE, SMALL_BASE), ("GPT-2-Medium", MEDIUM_TRACE, MEDIUM_BASE)):
        if not (TRACE_DIR / pruned).exists() or not (TRACE_DIR / base).exists():
            notes.append(f"{label} trace rows skipped: {TRACE_DIR} not present")
            continue
        trace = load_trace(TRACE_DIR / pruned)
        sp, sm = trace_schedule(trace, arch)
        sb, _ = trace_schedule(load_trace(TRACE_DIR / base), arch)
        ep, eb = run_schedule("spatten", sp, arch), run_schedule("spatten", sb, arch)
        bp, bb = float(sp.dram_bytes), float(sb.dram_bytes)
        fpb[label] = float(sp.flops) / bp
        if label == "GPT-2-Medium" and "GPT-2-Small" in fpb:
            measured[f"trace {label}: throughput (TFLOPS)"] = _trace_note(label, ep, float(sp.flops), bp,
                                                                           fpb["GPT-2-Small"]) + (
                "; this trace records the speedup breakdown's static step (K 8+4 = 12 bits fetched whole on every "
                "row), not the final progressive setting its benchmark runs")
        ref = 28.9 if label == "GPT-2-Small" else 9.0
        rows += [
            Row(f"trace {label}: DRAM reduction vs FP32 dense K+V", ref, sm.dram_bytes_fp32_dense / bp,
                "docs/spatten.md §Traces (derived from the traces)"),
            Row(f"trace {label}: throughput (TFLOPS)", 0.43, float(sp.flops) / float(ep.latency_s) / 1e12,
                "paper V-C (GPT-2 average)"),
            Row(f"trace {label}: dense / executed FLOPs", float("nan"),
                float(sp.extra["dense_flops"]) / float(sp.flops), "ours only (the trace's own pruning)"),
            Row(f"trace {label}: speedup vs its unpruned trace", float("nan"), float(eb.cycles) / float(ep.cycles),
                "ours only"),
            Row(f"trace {label}: DRAM reduction vs its unpruned trace", float("nan"), bb / bp, "ours only"),
        ]
        if sm.lsb_refetch_rate > 0:
            rows += _refetch_rows(label, trace.rows, measured)
    return rows, notes, measured


def accuracy_row() -> tuple[list[Row], list[str]]:
    """Accuracy proxy of the BERT settings on MiniLM (real when installed), and its measured LSB refetch rate."""
    from attnforge.sim.spatten.algorithm import accuracy_proxy
    from attnforge.sim.spatten.realdata import load_inputs

    enc, xs = load_inputs("auto")
    acc_b = accuracy_proxy(enc, xs, BERT)
    acc_g = accuracy_proxy(enc, xs, GPT2.with_(token_ratio=0.5))
    src = enc.source
    return [
        Row(f"accuracy proxy: cosine, BERT settings ({src})", 1.0, acc_b.cosine, "paper: no accuracy loss"),
        Row(f"accuracy proxy: cosine, 6+4 progressive, token 0.5 ({src})", 1.0, acc_g.cosine, "paper: no accuracy loss"),
        Row(f"LSB refetch rate, 6+4 thr 0.1 ({src})", float("nan"), acc_g.lsb_refetch_rate,
            "ours only (the paper quantizes BERT statically, III-D; its 5.9% is GPT-2's: trace rows)"),
    ], []


#: Why a row is more than 15% off, for the rows whose reason is not a measurement of this run (the others are
#: computed in :func:`reproduce` from what bounds the run: docs/spatten.md §Reproduce table).
EXPLANATIONS: dict[str, str] = {
    "GPT-2-Medium FC GFLOPs, if the 992-token prompt counted":
        "not a deviation: shows that Table IV's 19.3 GFLOPs cannot include the prompt (row above: the 32 generation "
        "steps alone give 19.3)",
    "accuracy proxy: cosine, BERT settings":
        "no fine-tuning (the paper fine-tunes ~2 GPU-hours per task after pruning) and the inputs are ~20 tokens "
        "(MiniLM sentences, or the seeded synthetic encoder without the [real] extra)",
    "accuracy proxy: cosine, 6+4 progressive, token 0.5":
        "no fine-tuning (the paper fine-tunes ~2 GPU-hours per task after pruning) and the inputs are ~20 tokens, "
        "where removing half of them is far harsher than on 1000-token GPT-2 inputs; without the [real] extra the "
        "encoder is seeded synthetic, not a trained model",
}


# ---- deviation notes computed from the run (what bounds each row, measured, not assumed) ----

def _span(xs: list[float], fmt: str = "{:.2f}") -> str:
    """``lo-hi`` of measured values (one value when they agree at the shown precision)."""
    lo, hi = fmt.format(min(xs)), fmt.format(max(xs))
    return lo if lo == hi else f"{lo}-{hi}"


def _ratio(t: Totals, a: str, b: str) -> float:
    return t.busy.get(a, 0.0) / max(t.busy.get(b, 0.0), 1e-300)


def _mem(t: Totals) -> float:
    """DRAM time over compute time: above 1, the DRAM is what the run waits on."""
    return t.memory_cycles / max(t.compute_cycles, 1e-300)


def _bound_of(ts: list[Totals], label: str) -> str:
    """One phrase for a group of runs: DRAM time over compute, share of cycles waiting on DRAM, achieved HBM."""
    share = sum(t.memory_bound_cycles for t in ts) / sum(t.cycles for t in ts)
    pct = f"{share:.0%}" if share >= 0.01 else f"{share:.1%}"
    return (f"{label}: DRAM time {_span([_mem(t) for t in ts])}x the compute time, {pct} of the cycles in layers "
            f"that wait on DRAM, HBM delivering {_span([t.achieved_gbs for t in ts], '{:.0f}')} GB/s while it moves "
            "the bytes")


def _headline_notes(benches: list[Benchmark], res: dict[str, Totals], tok: dict[str, Totals],
                    peak: float) -> dict[str, str]:
    """Notes of the headline rows, from the runs (``res``) and, for token + local V pruning, the runs that keep
    every head (``tok``)."""
    bert = [res[b.name] for b in benches if not b.generative]
    small = [res[b.name] for b in benches if b.model == "gpt2-small"]
    med = [res[b.name] for b in benches if b.model == "gpt2-medium"]
    bert_pr = float(np.mean([tok[b.name].pruning_reduction for b in benches if not b.generative]))
    gpt_pr = [tok[b.name].pruning_reduction for b in benches if b.generative]
    gpt_q = [res[b.name].quant_reduction for b in benches if b.generative]
    all_pr = [tok[b.name].pruning_reduction for b in benches]
    traced = [tok[f"gpt2-{size}/WikiText-2"].pruning_reduction for size in ("small", "medium")]

    def q_of(model: str) -> list[float]:
        return [res[b.name].quant_reduction for b in benches if b.model == model]
    kept = float(np.mean([t.tokens_kept for t in bert]))
    qk_busy = sum(t.busy["qk"] for t in bert) / sum(t.cycles for t in bert)

    def tf(ts: list[Totals]) -> float:
        return sum(t.flops for t in ts) / sum(t.seconds for t in ts) / 1e12

    def fpb(ts: list[Totals]) -> float:
        return sum(t.flops for t in ts) / sum(t.dram_bytes for t in ts)

    return {
        "DRAM reduction by token + local V pruning, 30-benchmark mean":
            f"counted as the paper counts it, without head pruning (section V-B reports that apart, 1.1x): 22 of "
            f"the 30 are BERT passes of under ~160 tokens, where our settings keep {kept:.0%} of the tokens "
            f"(BERT mean {bert_pr:.2f}x); the paper's 1.9x over 30 with 3.8x over GPT-2 leaves BERT ~1.2x (arithmetic "
            f"mean) to ~1.5x (geometric); the geometric mean of our 30 is {_geo(all_pr):.2f}x (and of their whole DRAM "
            f"reduction {_geo([res[b.name].dram_reduction for b in benches]):.2f}x)",
        "DRAM reduction by token + local V pruning, GPT-2 mean":
            f"our eight GPT-2 settings fetch {_span(gpt_pr, '{:.1f}')}x fewer K+V elements than dense (geometric "
            f"mean {_geo(gpt_pr):.2f}x); the two WikiText-2 files, whose kept tokens and V are SpAtten's own "
            f"traces', {traced[0]:.1f}x (Small) and {traced[1]:.1f}x (Medium), geometric mean {_geo(traced):.2f}x, so "
            "the paper's 3.8x comes from settings that prune less than its released traces do on average",
        "DRAM reduction by quantization vs FP32, 30-benchmark mean":
            "BERT's static 8-bit K and V give exactly 4.0x against 32 bits and are 22 of the 30 benchmarks; GPT-2 "
            f"gives {_span(gpt_q, '{:.1f}')}x (GPT-2-Medium, 8-bit K MSBs and V: {_span(q_of('gpt2-medium'))}x; "
            f"GPT-2-Small, 6-bit K MSBs and V: {_span(q_of('gpt2-small'))}x); the paper's 32 / (6 + 0.059 x 4) = "
            "5.1x is K alone at 6+4 bits, measured on the GPT-2-Small benchmarks in the row \"K alone\"",
        "throughput BERT (TFLOPS, executed FLOPs)": _bert_note(benches, res, qk_busy),
        "throughput GPT-2 (TFLOPS, executed FLOPs)":
            f"the generation steps wait on HBM ({_bound_of(med, 'GPT-2-Medium')}; {_bound_of(small, 'GPT-2-Small')}; "
            f"peak {peak:.0f} GB/s); the busiest compute module is the local-V top-k engine (busy "
            f"{_span([_ratio(t, 'topk', 'qk') for t in small + med])}x Q x K). GPT-2-Small reaches {tf(small):.2f} "
            f"TFLOPS, GPT-2-Medium {tf(med):.2f}: Medium's 8-bit K MSBs and 8-bit V give {fpb(med):.2f} executed FLOPs "
            f"per DRAM byte against Small's {fpb(small):.2f} (6-bit K MSBs, 6-bit V)",
    }


def _bert_note(benches: list[Benchmark], res: dict[str, Totals], qk_busy: float) -> str:
    """What the BERT passes spend their cycles on: module work, the fixed costs per head switch and per layer
    boundary, and how the summed throughput weighs the short tasks against SQuAD's long passes."""
    names = [b.name for b in benches if not b.generative]
    bert = [res[n] for n in names]
    cyc = sum(t.cycles for t in bert)
    share = {k: sum(t.stalls.get(k, 0.0) for t in bert) / cyc for k in STALLS}
    tfl = {n: res[n].tflops for n in names}
    lo, hi = min(tfl, key=tfl.__getitem__), max(tfl, key=tfl.__getitem__)
    long_ = [n for n in names if "squad" in n.lower()]
    flop_share = sum(res[n].flops for n in long_) / sum(t.flops for t in bert)
    geo = _geo(list(tfl.values()))
    return (f"BERT is compute-bound here ({_bound_of(bert, 'the 22 passes')}); Q x K is busy {qk_busy:.0%} of the "
            f"cycles. Fixed costs: head switches {share['head_switch']:.1%} (waiting for a K allocation, freed only "
            "at the oldest resident head's last requant decision, and its refill's round trip), the token/head "
            f"top-k at pruning layer boundaries {share['boundary']:.1%}, the pipeline drain at layer ends "
            f"{share['barrier']:.1%}. Per task {tfl[lo]:.2f} ({lo}) to {tfl[hi]:.2f} ({hi}) "
            f"TFLOPS, geometric mean {geo:.2f}; this row sums FLOPs over time, so the four SQuAD passes "
            f"({flop_share:.0%} of the FLOPs) set it")


#: The BERT fixed-cost terms turned off or set otherwise (arch overrides), for the note beside the BERT row.
STALL_VARIANTS = (
    ("no fixed costs (no allocator, top-k beside the pipe)",
     {"spatten.kv_buffer_allocations": None, "spatten.layer_topk_serial": False}),
    ("the released controller's decision window of 8 added", {"spatten.decision_window": 8}),
    ("a two-head double buffer instead of 16 allocations", {"spatten.kv_buffer_allocations": 2}),
)


def bert_tflops(benches: list[Benchmark], overrides: dict[str, object] | None = None) -> float:
    """Executed TFLOPS summed over the BERT benchmarks on the spatten preset with ``overrides``."""
    tots = []
    for b in benches:
        if b.generative:
            continue
        mdl = get_model(b.model)
        ev = _evaluate("spatten", b.model, [b.length], b.policy, overrides=overrides)
        tots.append(_sum([ev], mdl.d_head, mdl.layers, mdl.heads, [np.asarray(b.length)]))
    return sum(t.flops for t in tots) / sum(t.seconds for t in tots) / 1e12


def bert_stall_note(benches: list[Benchmark]) -> str:
    """The BERT row with each fixed-cost term changed (the row's own note says where its cycles go)."""
    alt = "; ".join(f"{label}: {bert_tflops(benches, ov):.3f}" for label, ov in STALL_VARIANTS)
    return f"throughput BERT with one fixed-cost term changed (TFLOPS; docs/spatten.md §BERT throughput): {alt}"


def _latency_note(nohead: list[Totals], paper_ms: float, peak: float) -> str:
    ours = float(np.mean([t.seconds for t in nohead])) * 1e3
    bw = sum(t.dram_bytes for t in nohead) / sum(t.memory_cycles / (t.cycles / t.seconds) for t in nohead) / 1e9
    return (f"our 32 steps wait on HBM ({_bound_of(nohead, 'GPT-2-Medium, no head pruning')}, peak {peak:.0f} GB/s; "
            f"K 8-bit MSBs + LSBs on 5.9% of the rows, V 8-bit); with the same bytes, SpAtten-e2e's {paper_ms} ms would need ~"
            f"{bw * ours / paper_ms:.0f} GB/s delivered, or fewer bytes than our settings move")


def _breakdown_notes(tots: dict[str, list[Totals]], gpt: list[Benchmark]) -> dict[str, str]:
    names = list(tots)
    dense, tok, topk, static, prog = (tots[n] for n in (names[0], names[1], names[3], names[4], names[5]))

    def geo(a: list[Totals], b: list[Totals], model: str | None = None) -> float:
        return _geo([x.cycles / y.cycles for x, y, bm in zip(a, b, gpt, strict=True) if model in (None, bm.model)])

    def kv(a: list[Totals], b: list[Totals], model: str) -> float:
        """K+V bytes of step a over those of step b on one model size (what a memory-bound step gains at most)."""
        return _geo([x.kv_dram_bytes / y.kv_dram_bytes for x, y, bm in zip(a, b, gpt, strict=True)
                     if bm.model == model])

    ms = {m: next(b.policy for b in gpt if b.model == m) for m in ("gpt2-small", "gpt2-medium")}
    sm, md = ms["gpt2-small"], ms["gpt2-medium"]
    unq = "K as 8-bit MSBs + 4-bit LSBs on every row and V at 8 bits, as the released hardware fetches unquantized rows"
    fp32 = tots.get("fp32", [])
    return {
        "speedup breakdown: +token pruning":
            f"the dedicated datapath (fetching {unq}) waits on HBM (DRAM time {_span([_mem(t) for t in dense], '{:.1f}')}x "
            "compute); token pruning with this step's 1-comparator top-k cuts the bytes and turns the steps "
            f"compute-bound on the top-k (busy {_span([_ratio(t, 'topk', 'qk') for t in tok], '{:.1f}')}x Q x K, "
            f"DRAM time {_span([_mem(t) for t in tok])}x compute), so the step gains the dedicated DRAM time over "
            f"the 1-comparator top-k time ({geo(dense, tok):.2f}x); the paper measured 1.1x",
        "speedup breakdown: +top-k engine":
            f"the 16-comparator engine cuts the top-k's busy cycles {geo(tok, topk):.1f}x overall and the steps wait "
            f"on HBM again (DRAM time {_span([_mem(t) for t in topk])}x compute)",
        "speedup breakdown: +static quantization":
            "the steps are memory-bound after the top-k engine step ("
            f"{_span([t.memory_bound_share for t in topk], '{:.0%}')} of the cycles wait on DRAM), but before "
            f"quantization the hardware already fetches {unq}: GPT-2-Medium's static {md.k_msb + md.k_lsb}-bit K "
            f"and {md.v_bits}-bit V move the same bytes ({kv(topk, static, 'gpt2-medium'):.2f}x fewer; "
            f"{geo(topk, static, 'gpt2-medium'):.2f}x faster) and GPT-2-Small's {sm.k_msb + sm.k_lsb}-bit K, "
            f"{sm.v_bits}-bit V {kv(topk, static, 'gpt2-small'):.2f}x fewer ({geo(topk, static, 'gpt2-small'):.2f}x "
            "faster); a geometric mean of 1.6x over the 8 benchmarks needs GPT-2-Medium to gain too, but its static "
            "step (K 8+4 fetched whole, V 8-bit, what its released step-5 trace records) moves what the hardware's "
            "unquantized fetch moves",
        "speedup breakdown: +progressive quantization":
            f"K's MSBs first ({sm.k_msb} bits on GPT-2-Small, {md.k_msb} on GPT-2-Medium, LSBs for the rows that "
            f"need them) cuts the K+V bytes {kv(static, prog, 'gpt2-small'):.2f}x and "
            f"{kv(static, prog, 'gpt2-medium'):.2f}x ({geo(static, prog, 'gpt2-small'):.2f}x and "
            f"{geo(static, prog, 'gpt2-medium'):.2f}x faster), after which "
            f"{_span([t.memory_bound_share for t in prog], '{:.0%}')} of the cycles wait on DRAM; 1.7x would need "
            "more than the MSB/LSB split of these widths removes",
        "speedup breakdown: all techniques vs dedicated datapath":
            f"product of the steps above: the pruning steps follow the paper's ({geo(dense, topk):.2f}x against "
            f"1.1 x 1.1 x 3 = 3.6x), the two quantization steps do not ({geo(topk, prog):.2f}x against "
            "1.6 x 1.7 = 2.7x): against the hardware's own unquantized fetch the released traces' widths cannot give "
            "more (see the two quantization rows)",
        "speedup breakdown: both quantization steps from FP32 K/V":
            "from the models' FP32 K and V the released traces' widths cut the K+V bytes "
            + (f"{kv(fp32, prog, 'gpt2-small'):.1f}x on GPT-2-Small and {kv(fp32, prog, 'gpt2-medium'):.1f}x on "
               f"GPT-2-Medium ({geo(fp32, prog):.2f}x faster)" if fp32 else "several times")
            + "; the paper's 2.7x lies between this and the hardware's own unquantized baseline, so Fig. 20's "
            "quantization steps start from neither with these widths",
    }


#: Paper Table III, and how its A3 figure is made (docs/spatten.md §Table III): A3's throughput is its compute roof,
#: 128 GFLOPS (2d multipliers at d = 64, one op per multiplier per cycle, 1 GHz), times the 1.73x geometric-mean
#: speedup of A3's approximation, 128 x 1.73 = 221; no benchmark is simulated and DRAM does not enter.
TABLE3_PAPER = {"SpAtten1/8": 360.0, "A3": 221.0, "MNNFast": 120.0}
#: Table III energy efficiency (GOP/J). MNNFast's assumes 1 W as an ASIC (its FPGA draws 10 W); both A3 and
#: SpAtten1/8 are charged the same DRAM power.
TABLE3_PAPER_GOPJ = {"SpAtten1/8": 382.0, "A3": 269.0, "MNNFast": 120.0}
#: Table III's MNNFast power: no measurement or simulation but an assumption, its 10 W Zynq-7020 FPGA taken to draw
#: 1 W as an ASIC, so the paper's 120 GOP/J is its 120 GOP/s over 1 W. Our activity-based energy for MNNFast (SpAtten1/8's
#: energy per action) is a different quantity and is reported beside it as ours only.
MNNFAST_ASSUMED_W = 1.0
#: Paper Table II: SpAtten's chip power, 1.36 W logic + 1.24 W SRAM + 5.71 W DRAM (8.30 W; §Power and area).
TABLE2_W = {"logic": 1.36, "sram": 1.24, "dram": 5.71}
A3_ROOF_GFLOPS = 128.0
#: Each Table III design as we model it: accelerator name, and the policy it runs every benchmark with (None: the
#: benchmark's own SpAtten settings).
TABLE3_ACCELS = (("SpAtten1/8", "spatten-1/8", None), ("A3", "a3", "a3"), ("MNNFast", "mnnfast", "mnnfast"))


def effective_gops(t: Totals) -> float:
    """Dense-equivalent GOP/s of one run: the dense attention's ops over the time taken, so every pruned op counts
    as done. Table III must count this way: SpAtten1/8's 360 exceeds its 128 multipliers' 256 GOP/s roof."""
    return t.dense_flops / t.seconds / 1e9


def energy_gopj(t: Totals) -> float:
    """Dense-equivalent GOP per joule: effective GOP/s over the run's average power, so a geometric mean of it is the
    mean GOP/s over the mean power (the split the energy rows' notes give)."""
    return t.dense_flops / t.energy_j / 1e9


def compute_bound_gops(t: Totals) -> float:
    """Dense-equivalent GOP/s if DRAM never stalled: the dense ops over the compute time alone. This is what a
    roof times an approximation speedup measures (the paper's A3 figure), taken from our own A3 model."""
    return t.dense_flops / (t.compute_cycles * t.seconds / t.cycles) / 1e9


def table3_mean(tots: list[Totals], metric: Callable[[Totals], float] = effective_gops) -> float:
    """Geometric mean over benchmarks (paper section V-A reports geometric means); over the same benchmarks the
    ratio of two designs' means is the geometric mean of their per-benchmark speedups."""
    return _geo([metric(t) for t in tots])


def _table3_note(name: str, tots: list[Totals], benches: list[Benchmark], peak: float) -> str:
    """What sets one design's Table III row: its BERT and GPT-2 means and what bounds the GPT-2 runs."""
    split = "; ".join(_group_note(label, [t for t, b in zip(tots, benches, strict=True) if b.generative == gen],
                                  [b for b in benches if b.generative == gen], peak)
                      for label, gen in (("BERT", False), ("GPT-2", True)) if any(b.generative == gen for b in benches))
    split += f"; summed ops over summed time instead: {effective_gops(_pool(tots)):.0f}"
    if name == "SpAtten1/8":
        return f"SpAtten1/8 (1/8 of the multipliers and of the HBM): {split}"
    if name == "A3":
        ratio = table3_mean(tots, lambda t: t.dense_flops / t.flops)
        return (f"our A3 keeps every query and token and fetches all of Q, K and V at 12 bits, on SpAtten1/8's "
                f"resources; each query scores 1/{A3_APPROX_SPEEDUP} of its keys (A3's candidates, rounded up) and "
                f"weighs only their V rows, so it executes {ratio:.2f}x fewer ops than dense (geometric mean; "
                f"{A3_APPROX_SPEEDUP}x before rounding, the speedup A3 reports for its approximation): {split}. "
                "The paper's 221 is no simulation but a roof x speedup that ignores bandwidth (row below)")
    return f"MNNFast (V pruning only, every K and V fetched): {split}; the paper used its own MNNFast simulator"


def _group_note(label: str, tots: list[Totals], benches: list[Benchmark], peak: float) -> str:
    """One model family's geometric mean, and for GPT-2 what it waits on."""
    out = f"geometric mean {table3_mean(tots):.0f} GOP/s over the {len(tots)} {label} benchmarks"
    if label == "GPT-2":
        out += f", which wait on DRAM ({_bound_of(tots, label)}, peak {peak:.0f} GB/s"
        ptb = [t for t, b in zip(tots, benches, strict=True) if b.name == "gpt2-small/PTB"]
        out += (f"; gpt2-small/PTB: {ptb[0].memory_cycles / 1e6:.1f}M memory cycles against "
                f"{ptb[0].compute_cycles / 1e6:.1f}M compute)" if ptb else ")")
    return out


def _pool(tots: list[Totals]) -> Totals:
    """The benchmarks as one run: summed dense ops and summed time (the averaging this table used before)."""
    return Totals(cycles=sum(t.cycles for t in tots), dram_bytes=0.0, energy_j=0.0, flops=0.0,
                  dense_flops=sum(t.dense_flops for t in tots), fp32_dense_bytes=0.0,
                  seconds=sum(t.seconds for t in tots))


def _table3_rows(benches: list[Benchmark]) -> tuple[list[Row], dict[str, str]]:
    """Paper Table III: SpAtten1/8, A3 and MNNFast at equal multipliers (128) and bandwidth (64 GB/s), each a
    geometric mean of dense-equivalent GOP/s over the 30 benchmarks, the speedups the abstract quotes, and A3's
    DRAM-free throughput beside its bandwidth-bound one (docs/spatten.md §Table III says why each is counted so)."""
    peak = spatten_arch.arch("spatten-1-8").dram.bandwidth_gib_s * 2**30 / 1e9
    tots = {name: [run_phase(b, accel=accel, policy=POLICY_REGISTRY[pol] if pol else None) for b in benches]
            for name, accel, pol in TABLE3_ACCELS}
    gm = {name: table3_mean(ts) for name, ts in tots.items()}
    rows: list[Row] = []
    notes: dict[str, str] = {}
    for name, ts in tots.items():
        metric = f"{name} effective throughput, geometric mean of the {len(benches)} (GOP/s, dense-equivalent)"
        rows.append(Row(metric, TABLE3_PAPER[name], gm[name], "paper Table III"))
        notes[metric] = _table3_note(name, ts, benches, peak)
    _energy_rows(tots, gm, rows, notes)
    a3_roof = table3_mean(tots["A3"], compute_bound_gops)
    metric = f"A3 throughput with DRAM ignored, geometric mean of the {len(benches)} (GOP/s, dense-equivalent)"
    rows.append(Row(metric, A3_ROOF_GFLOPS * A3_APPROX_SPEEDUP, a3_roof,
                    "paper Table III (128 GFLOPS roof x 1.73 speedup)"))
    arch = spatten_arch.arch("spatten-1-8")
    mults = arch.spatten.qk_multipliers + arch.spatten.pv_multipliers
    notes[metric] = (f"the same quantity as the paper's (no DRAM time), from our A3 model: its {mults} multipliers "
                     f"give {2 * mults * arch.clock_hz / 1e9:.0f} GOP/s counting a multiply-add as 2 ops, as "
                     "SpAtten's own 2 TFLOPS peak does (the paper's A3 roof counts 1; so counted, its 1.73x gives "
                     f"{2 * mults * arch.clock_hz / 1e9 * A3_APPROX_SPEEDUP:.0f}, ours "
                     f"{a3_roof / (2 * mults * arch.clock_hz / 1e9 * A3_APPROX_SPEEDUP):.0%} of it: candidates are "
                     "rounded up per query and SpAtten1/8's pipeline does not keep every multiplier busy on short BERT "
                     "rows, docs/spatten.md §BERT throughput); the key sorting A3 needs beforehand is not charged")
    # The paper's A3 roof (128 GFLOPS from A3's 128 multipliers) counts a multiply-add as one op, where SpAtten's
    # own 2 TFLOPS counts two: the same DRAM-free throughput counted the paper's way for A3.
    rows.append(Row(f"A3 throughput with DRAM ignored, a multiply-add counted as one op (GOP/s, geometric mean of "
                    f"the {len(benches)})", A3_ROOF_GFLOPS * A3_APPROX_SPEEDUP, a3_roof / 2,
                    "paper Table III (its A3 roof's op count)"))
    notes[rows[-1].metric] = (f"the row above halved: Table III's A3 figure is {A3_ROOF_GFLOPS:g} GFLOPS from {mults} "
                              f"multipliers at 1 GHz times the 1.73x approximation speedup, one op per multiply-add")
    for other, paper in (("A3", 1.6), ("MNNFast", 3.0)):
        rows.append(Row(f"SpAtten1/8 speedup over {other} (geometric mean of the {len(benches)})", paper,
                        gm["SpAtten1/8"] / gm[other], "paper abstract / Table III"))
        notes[rows[-1].metric] = (f"the ratio of the two throughput rows above ({gm['SpAtten1/8']:.0f} / "
                                  f"{gm[other]:.0f}); the paper's is {TABLE3_PAPER['SpAtten1/8']:.0f} / "
                                  f"{TABLE3_PAPER[other]:.0f}, with {other}'s figure not simulated on these "
                                  "benchmarks (see its row)")
    return rows, notes


def _energy_rows(tots: dict[str, list[Totals]], gm: dict[str, float], rows: list[Row], notes: dict[str, str]) -> None:
    """Table III's energy efficiency per design from our activity-based energy; MNNFast's paper figure is an
    assumed power, not an energy, so its row is set beside the same quantity computed our way and the paper's way."""
    for name, ts in tots.items():
        assumed = name == "MNNFast"
        metric = (f"{name} energy efficiency, geometric mean of the {len(ts)} (GOP/J, dense-equivalent)"
                  + (", from activity" if assumed else ""))
        rows.append(Row(metric, float("nan") if assumed else TABLE3_PAPER_GOPJ[name], table3_mean(ts, energy_gopj),
                        "ours only (the paper assumes MNNFast's power, row below)" if assumed else "paper Table III"))
        paper_w = TABLE3_PAPER[name] / TABLE3_PAPER_GOPJ[name]
        notes[metric] = (f"{gm[name]:.0f} GOP/s at {table3_mean(ts, lambda t: t.energy_j / t.seconds):.2f} W "
                         f"(geometric means), against the paper's {TABLE3_PAPER[name]:.0f} GOP/s at {paper_w:.2f} W; "
                         "every design here is charged SpAtten1/8's energy per action and its HBM, whose modules are "
                         "not all busy at once (Table II's powers add up as if they were; docs/spatten.md §Energy and "
                         "power)")
        if assumed:
            rows.append(Row(f"MNNFast energy efficiency at the paper's assumed {MNNFAST_ASSUMED_W:g} W (GOP/J)",
                            TABLE3_PAPER_GOPJ[name], gm[name] / MNNFAST_ASSUMED_W, "paper Table III (1 W as an ASIC)"))
            notes[rows[-1].metric] = (f"Table III counts MNNFast's energy as its throughput over an assumed "
                                      f"{MNNFAST_ASSUMED_W:g} W (its FPGA draws 10 W), so this row divides our MNNFast "
                                      f"throughput ({gm[name]:.0f} GOP/s) by the same {MNNFAST_ASSUMED_W:g} W")
        elif name == "SpAtten1/8":
            _constant_power_row(gm[name], rows, notes)


def _constant_power_row(gops: float, rows: list[Row], notes: dict[str, str]) -> None:
    """SpAtten1/8's energy efficiency counted as Table III counts it: a throughput over a constant power. A3's
    269 GOP/J is its 221 GOP/s (a roof times a speedup, no run) over 0.82 W, so the table's energy column cannot
    come from activity; SpAtten1/8's power is taken as Table II's chip scaled to its resources (logic and SRAM by
    the multipliers, DRAM by the bandwidth), with every module drawing its Table II power all the time."""
    full, eighth = spatten_arch.arch(), spatten_arch.arch("spatten-1-8")
    m_frac = ((eighth.spatten.qk_multipliers + eighth.spatten.pv_multipliers)
              / (full.spatten.qk_multipliers + full.spatten.pv_multipliers))
    bw_frac = eighth.dram.bandwidth_gib_s / full.dram.bandwidth_gib_s
    watts = (TABLE2_W["logic"] + TABLE2_W["sram"]) * m_frac + TABLE2_W["dram"] * bw_frac
    metric = f"SpAtten1/8 energy efficiency at Table II's power scaled to it, {watts:.2f} W (GOP/J)"
    rows.append(Row(metric, TABLE3_PAPER_GOPJ["SpAtten1/8"], gops / watts, "paper Table III (throughput / power)"))
    notes[metric] = (f"our SpAtten1/8 throughput ({gops:.0f} GOP/s) over Table II's {sum(TABLE2_W.values()):.2f} W "
                     f"chip with logic and SRAM scaled by the multipliers ({m_frac:g}) and DRAM by the bandwidth "
                     f"({bw_frac:g}); the paper's own figures imply "
                     f"{TABLE3_PAPER['SpAtten1/8'] / TABLE3_PAPER_GOPJ['SpAtten1/8']:.2f} W")


def _refetch_rows(label: str, df: pd.DataFrame, measured: dict[str, str]) -> list[Row]:
    """The LSB refetch rate of a progressive trace, SpAtten's own decisions on real GPT-2 data: over all its steps
    and over the pruned steps alone (the paper does not say which steps its 5.9% averages)."""
    rq = df["if_requant"].to_numpy(dtype=np.float64)
    its = df["iteration_id"].to_numpy()
    warm = warmup_steps(df)
    steps = int(np.unique(its).size)
    later = its >= warm
    everywhere = Row(f"trace {label}: LSB refetch rate, all {steps} steps (SpAtten's own decisions)", 0.059,
                     float(rq.mean()), "paper III-D (5.9%)")
    first = df.loc[~later].groupby("layer_id")["if_requant"].mean()
    measured[everywhere.metric] = (
        f"the first {warm} step(s) keep every key (importance still accumulating): those rows spread over "
        f"{int(df.loc[~later, 'sentence_length_L'].max())} keys and {float(rq[~later].mean()):.0%} of them refetch "
        f"(every head in {int((first >= 1.0).sum())} of the {first.size} layers); the {steps - warm} pruned steps "
        f"refetch {float(rq[later].mean()):.1%} (row below), which the GPT-2-Small benchmarks charge apart from the "
        "warm-up step's rates; the paper does not say over which steps its 5.9% is taken")
    return [everywhere, Row(f"trace {label}: LSB refetch rate, the {steps - warm} pruned steps", 0.059,
                            float(rq[later].mean()), "paper III-D (5.9%)")]


def _trace_note(label: str, ev: Evaluation, flops: float, dram_bytes: float, other_fpb: float) -> str:
    mem, comp = float(np.sum(ev.memory_cycles)), float(np.sum(ev.compute_cycles))
    share = _memory_bound_cycles(ev) / float(np.sum(ev.cycles))
    bw = dram_bytes / (mem / ev.arch.clock_hz) / 1e9
    verb = "waits on HBM" if share > 0.5 else "is mostly compute-bound"
    return (f"the {label} trace {verb}: DRAM time {mem / comp:.2f}x the compute time, {share:.0%} of the cycles "
            f"in layers that wait on DRAM, {bw:.0f} GB/s delivered; its pruning and bit widths leave {flops / dram_bytes:.2f} "
            f"executed FLOPs per DRAM byte against the GPT-2-Small trace's {other_fpb:.2f}")


def _gpt2_rows(benches: list[Benchmark], res: dict[str, Totals],
               tok: dict[str, Totals]) -> tuple[list[Row], dict[str, str]]:
    """GPT-2 beside the paper's own GPT-2 figures: Table IV (GPT-2-Medium, mean of its four datasets, no head
    pruning) and section V-B's token + local V pruning average (every head kept: ``tok``); the prompt phase
    reported apart."""
    nohead = [tok[b.name] for b in benches if b.model == "gpt2-medium"]
    gpt = [b for b in benches if b.generative]
    prompt = [run_phase(b, "prompt") for b in gpt]
    gen = [res[b.name] for b in gpt]
    peak = spatten_arch.arch().dram.bandwidth_gib_s * 2**30 / 1e9
    ratios = [tok[b.name].dense_flops / tok[b.name].flops for b in gpt]
    notes = {
        "GPT-2-Medium attention latency, 32 steps (ms)": _latency_note(nohead, 2.13, peak),
        "GPT-2 token + local V pruning (dense / executed FLOPs)":
            f"our eight GPT-2 settings execute {_span(ratios, '{:.1f}')}x fewer attention FLOPs than dense; "
            "SpAtten's own two GPT-2 traces execute {trace} fewer (trace rows below), at the paper's 3.8x: ours "
            f"is above it because the PTB files (paper Fig. 21's lossless 4x token pruning: "
            f"{_span([r for r, b in zip(ratios, gpt, strict=True) if b.dataset == 'PTB'], '{:.1f}')}x) and 1BW's "
            "(set from Table IV) prune more than the traces' mean",
    }
    return [
        Row("GPT-2-Medium FC GFLOPs, the 32 generation steps", 19.3, fc_gflops("gpt2-medium", GENERATED),
            "paper Table IV: the benchmark is the generation"),
        Row("GPT-2-Medium FC GFLOPs, if the 992-token prompt counted", 19.3,
            fc_gflops("gpt2-medium", PROMPT + GENERATED), "paper Table IV (it does not)"),
        Row("GPT-2-Medium attention GFLOPs, 32 steps, dense", 3.3, float(np.mean([t.dense_flops for t in nohead])) / 1e9,
            "paper Table IV (GPU)"),
        Row("GPT-2-Medium attention GFLOPs, 32 steps, pruned, no head pruning", 0.9,
            float(np.mean([t.flops for t in nohead])) / 1e9, "paper Table IV (1BW's ratio is set from it)"),
        Row("GPT-2-Medium attention latency, 32 steps (ms)", 2.13,
            float(np.mean([t.seconds for t in nohead])) * 1e3, "paper Table IV (SpAtten-e2e)"),
        Row("GPT-2 token + local V pruning (dense / executed FLOPs)", 3.8, float(np.mean(ratios)),
            "paper V-B (GPT-2 average)"),
        Row("GPT-2 prompt phase, 992 tokens causal (ms, mean of 8)", float("nan"),
            float(np.mean([t.seconds for t in prompt])) * 1e3, "ours only (not a paper benchmark)"),
        Row("GPT-2 prompt phase throughput (TFLOPS)", float("nan"),
            sum(t.flops for t in prompt) / sum(t.seconds for t in prompt) / 1e12, "ours only"),
        Row("GPT-2 generation, 32 steps (ms, mean of 8)", float("nan"), float(np.mean([t.seconds for t in gen])) * 1e3,
            "ours only"),
    ], notes


def _breakdown_rows(benches: list[Benchmark]) -> tuple[list[Row], dict[str, str]]:
    """GPT-2 speedup breakdown (paper Fig. 20): geometric mean over the 8 GPT-2 benchmarks, each with its own
    settings, one technique added at a time."""
    paper_steps = {"+token pruning": 1.1, "+head pruning": 1.1, "+top-k engine": 3.0, "+static quantization": 1.6,
                   "+progressive quantization": 1.7}
    gpt = [b for b in benches if b.generative]
    tots: dict[str, list[Totals]] = {}
    for b in gpt:
        for name, pol in breakdown_policies(b.policy):
            tots.setdefault(name, []).append(run_phase(b, policy=pol))
    cyc = {name: [t.cycles for t in ts] for name, ts in tots.items()}
    names = list(cyc)
    rows = [Row(f"speedup breakdown: {cur}", paper_steps[cur],
                _geo([a / c for a, c in zip(cyc[prev], cyc[cur], strict=True)]), "paper Fig. 20 (GPT-2)")
            for prev, cur in zip(names, names[1:], strict=False)]
    rows.append(Row("speedup breakdown: all techniques vs dedicated datapath", 209 / 22.1,
                    _geo([a / c for a, c in zip(cyc[names[0]], cyc[names[-1]], strict=True)]), "paper Fig. 20"))
    # The two quantization steps again, from the top-k engine step fetching the models' FP32 K and V as they are
    # (the baseline of the paper's DRAM reductions): what Fig. 20's 1.6 x 1.7 would be against that baseline.
    fp32 = [run_phase(b, policy=pol.with_(name="+top-k engine, FP32 K/V", quantize=False, raw_bits=FP32_BITS,
                                          lsb_refetch_rate=None))
            for b in gpt for name, pol in breakdown_policies(b.policy) if name == "+top-k engine"]
    rows.append(Row("speedup breakdown: both quantization steps from FP32 K/V", 1.6 * 1.7,
                    _geo([a.cycles / c for a, c in zip(fp32, cyc[names[-1]], strict=True)]),
                    "paper Fig. 20 (static x progressive)"))
    tots["fp32"] = fp32
    return rows, _breakdown_notes(tots, gpt)


def _dram_rows(benches: list[Benchmark], res: dict[str, Totals], tok: dict[str, Totals]) -> list[Row]:
    """DRAM reduction against FP32 dense K and V, counting K and V on our side too (paper abstract: 10.0x on
    average; section V-B splits it into token + local V pruning, 1.9x over the 30 benchmarks and 3.8x over
    GPT-2, and section I credits progressive quantization with 5.1x; 1.9 x 5.1 = 9.7). Arithmetic means over
    the benchmarks, each benchmark's reduction = its pruning part x its quantization part; the token + local V
    part from the runs that keep every head (``tok``), since the paper gives head pruning apart."""
    def mean(attr: str, keep: str = "all", runs: dict[str, Totals] = res) -> float:
        sel = [b for b in benches if keep == "all" or b.generative == (keep == "gpt2")]
        return float(np.mean([getattr(runs[b.name], attr) for b in sel]))

    nan = float("nan")
    return [
        Row("DRAM reduction, 30-benchmark mean (FP32 dense K+V)", 10.0, mean("dram_reduction"),
            "paper abstract / V-B"),
        Row("DRAM reduction, GPT-2 mean", nan, mean("dram_reduction", "gpt2"), "ours only"),
        Row("DRAM reduction, BERT mean", nan, mean("dram_reduction", "bert"), "ours only"),
        Row("DRAM reduction by token + local V pruning, 30-benchmark mean", 1.9,
            mean("pruning_reduction", runs=tok), "paper V-B"),
        Row("DRAM reduction by token + local V pruning, GPT-2 mean", 3.8, mean("pruning_reduction", "gpt2", tok),
            "paper V-B"),
        Row("DRAM reduction by quantization vs FP32, 30-benchmark mean", 5.1, mean("quant_reduction"),
            "paper I (progressive quantization)"),
        # What the paper's 5.1x works out to (32 / (6 + 0.059 x 4)): K alone at 6-bit MSBs plus 4-bit LSBs on the
        # rows that refetch, measured here on the benchmarks that run that setting.
        Row("DRAM reduction by quantization vs FP32, K alone, GPT-2-Small mean (6+4 progressive)", 5.1,
            float(np.mean([res[b.name].k_quant_reduction for b in benches if b.model == "gpt2-small"])),
            "paper I (progressive quantization)"),
    ]


def reproduce() -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    benches = benchmarks()
    phase(f"reproduce spatten: {len(benches)} benchmarks (22 BERT tasks, 8 GPT-2 generation runs)")
    res = {b.name: run_phase(b) for b in benches}
    tok = {b.name: run_phase(b, policy=without_heads(b.policy)) for b in benches}
    bert = [res[b.name] for b in benches if not b.generative]
    gpt = [res[b.name] for b in benches if b.generative]
    rows += [*_dram_rows(benches, res, tok),
        Row("throughput BERT (TFLOPS, executed FLOPs)", 1.61,
            sum(r.flops for r in bert) / sum(r.seconds for r in bert) / 1e12, "paper V-C, 22 BERT benchmarks"),
        Row("throughput GPT-2 (TFLOPS, executed FLOPs)", 0.43,
            sum(r.flops for r in gpt) / sum(r.seconds for r in gpt) / 1e12, "paper V-C, 8 GPT-2 benchmarks"),
        # The paper reports its results as geometric means over benchmarks (V-A) but does not say how the two
        # throughputs average; the per-benchmark geometric mean is shown beside the summed FLOPs over time.
        Row("throughput BERT, geometric mean of the 22 (TFLOPS)", 1.61,
            _geo([r.flops / r.seconds / 1e12 for r in bert]), "paper V-C (averaging not stated)"),
        Row("throughput GPT-2, geometric mean of the 8 (TFLOPS)", 0.43,
            _geo([r.flops / r.seconds / 1e12 for r in gpt]), "paper V-C (averaging not stated)"),
    ]
    phase("reproduce spatten: GPT-2 beside Table IV, and the prompt phase apart")
    peak = spatten_arch.arch().dram.bandwidth_gib_s * 2**30 / 1e9
    measured = _headline_notes(benches, res, tok, peak)
    phase("reproduce spatten: BERT fixed costs, each term changed (docs/spatten.md §Stalls)")
    notes.append(bert_stall_note(benches))
    gr, gn = _gpt2_rows(benches, res, tok)
    rows += gr
    measured.update(gn)
    phase("reproduce spatten: speedup breakdown, one technique at a time (paper Fig. 20)")
    br, bn = _breakdown_rows(benches)
    rows += br
    measured.update(bn)
    phase("reproduce spatten: SpAtten1/8, A3 and MNNFast on the 30 benchmarks (paper Table III)")
    tr3, tn3 = _table3_rows(benches)
    rows += tr3
    measured.update(tn3)
    rows.append(Row("SpAtten area (mm2)", 18.71, spatten_arch.arch().area_mm2(), "paper Table II"))
    phase("reproduce spatten: replaying SpAtten's own GPT-2 traces")
    tr, tn, trn = _trace_rows()
    rows += tr
    notes += tn
    measured.update(trn)
    traced = {r.metric: r.ours for r in tr}
    both = [traced.get(f"trace GPT-2-{size}: dense / executed FLOPs") for size in ("Small", "Medium")]
    key = "GPT-2 token + local V pruning (dense / executed FLOPs)"
    said = (f"{both[0]:.2f}x (Small) and {both[1]:.2f}x (Medium), geometric mean {_geo(both):.2f}x"  # type: ignore[arg-type]
            if None not in both else "several times")
    measured[key] = measured[key].replace("{trace}", said)
    try:
        phase("reproduce spatten: accuracy proxy on real all-MiniLM-L6-v2 attention (the slowest part, ~10-40 s)")
        ar, an = accuracy_row()
        rows += ar
        notes += an
    except ImportError as exc:  # pragma: no cover - only without safetensors/tokenizers
        notes.append(f"accuracy rows skipped: {exc}")
    # explanations are keyed by the metric without its data-source suffix, e.g. " (real:all-MiniLM-L6-v2)"
    rows = [Row(r.metric, r.paper, r.ours, r.source, measured.get(r.metric) or EXPLANATIONS.get(
        r.metric, EXPLANATIONS.get(r.metric.split(" (")[0], ""))) for r in rows]
    return rows, notes


def format_rows(rows: list[Row], notes: list[str] | None = None) -> str:
    return _format_rows(rows, notes, see="docs/spatten.md")
