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

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnforge.reports.paper import Row
from attnforge.reports.paper import format_rows as _format_rows
from attnforge.sim.analytical.engine import Evaluation, evaluate_scenario, run_schedule
from attnforge.sim.specs.arch import get_preset
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.progress import phase
from attnforge.sim.specs.scenario import Scenario
from attnforge.sim.specs.spatten_policy import BERT, GPT2, Policy, breakdown_policies
from attnforge.sim.specs.spatten_policy import POLICIES as POLICY_REGISTRY
from attnforge.workloads import get_model
from attnforge.workloads.spatten_benchmarks import GENERATED, PHASES, PROMPT, Benchmark, benchmarks, fc_gflops

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

    @property
    def tflops(self) -> float:
        return self.flops / self.seconds / 1e12

    @property
    def effective_gops(self) -> float:
        return self.dense_flops / self.seconds / 1e9


def _sum(evs: list[Evaluation], d: int, layers: int, heads: int, kv_lens: list[np.ndarray]) -> Totals:
    cyc = sum(float(np.sum(e.cycles)) for e in evs)
    clock = evs[0].arch.clock_hz
    fp32 = sum(float(np.sum(2 * layers * heads * m * d * 4)) for m in kv_lens)
    return Totals(
        cycles=cyc,
        dram_bytes=sum(float(np.sum(e.schedule.dram_bytes)) for e in evs),
        energy_j=sum(float(np.sum(e.energy_j)) for e in evs),
        flops=sum(float(np.sum(e.schedule.flops)) for e in evs),
        dense_flops=sum(float(np.sum(e.schedule.extra["dense_flops"])) for e in evs),
        fp32_dense_bytes=fp32,
        seconds=cyc / clock,
    )


def _evaluate(accel: str, model: str, lens: list[int], policy: Policy, **kw: object) -> Evaluation:
    return evaluate_scenario(Scenario.build(accelerator=accel, workload=model, seq_lens=lens, batch=1, policy=policy,
                                            **kw))  # type: ignore[arg-type]


def warmup_policy(policy: Policy) -> Policy:
    """The settings of a generation step before token pruning starts: every token kept, the rest unchanged."""
    return policy.with_(name=f"{policy.name} warm-up", token_ratio=0.0, token_keep=None)


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
    if ph in ("prompt", "both"):
        evs.append(_evaluate(accel, bench.model, [bench.length], pol, causal=True))
        lens.append(np.asarray(bench.length))
    if ph in ("generate", "both"):
        ctx = [bench.length + 1 + i for i in range(bench.generate)]
        warm = min(pol.warmup_steps, len(ctx))
        for part, sp in ((ctx[:warm], warmup_policy(pol)), (ctx[warm:], pol)):
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


def _trace_rows() -> tuple[list[Row], list[str]]:
    from attnforge.sim.spatten.trace import load_trace, trace_schedule

    rows: list[Row] = []
    notes: list[str] = []
    arch = get_preset("spatten")
    for label, pruned, base in (("GPT-2-Small", SMALL_TRACE, SMALL_BASE), ("GPT-2-Medium", MEDIUM_TRACE, MEDIUM_BASE)):
        if not (TRACE_DIR / pruned).exists() or not (TRACE_DIR / base).exists():
            notes.append(f"{label} trace rows skipped: {TRACE_DIR} not present")
            continue
        sp, sm = trace_schedule(load_trace(TRACE_DIR / pruned), arch)
        sb, _ = trace_schedule(load_trace(TRACE_DIR / base), arch)
        ep, eb = run_schedule("spatten", sp, arch), run_schedule("spatten", sb, arch)
        bp, bb = float(sp.dram_bytes), float(sb.dram_bytes)
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
    return rows, notes


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
        Row(f"LSB refetch rate, 6+4 thr 0.1 ({src})", 0.059, acc_g.lsb_refetch_rate, "paper III-D (5.9%)"),
    ], []


#: Why a row is more than 15% off, each claim checked against the model (docs/spatten.md §Reproduce table).
EXPLANATIONS: dict[str, str] = {
    "DRAM reduction, 30-benchmark mean (FP32 dense K+V)":
        "22 of the 30 are BERT summarization passes, where every surviving token of a head moves its 16-bit Q in "
        "(128 B) and its 12-bit output out (96 B) besides its 8-bit K and V (128 B): 352 B against the FP32 K+V "
        "baseline's 512 B, so BERT's reduction is only ~1.45x its token reduction (BERT mean 2.2x, our settings keep "
        "~72% of the tokens); the 8 GPT-2 generation benchmarks reach ~20x. The paper does not say which tensors "
        "its 10x counts",
    "throughput BERT (TFLOPS, executed FLOPs)":
        "our pipeline keeps Q x K and prob x V busy on every 8-key line (no local V pruning in BERT, V fetched "
        "whole), so BERT runs near the 2 TFLOPS roof; the paper's cycle-level RTL + Ramulator run has stalls "
        "(buffer allocation, crossbar, per-query control) we do not model",
    "throughput GPT-2 (TFLOPS, executed FLOPs)":
        "the generation steps are bound by the local-V top-k engine (its busy cycles are 2.0-2.4x Q x K's on the "
        "eight GPT-2 benchmarks, DRAM time 31-72% of the compute time) with DRAM at its peak rate; the paper's "
        "RTL + Ramulator HBM adds DRAM timing our peak-bandwidth DRAM lacks",
    "GPT-2-Medium attention latency, 32 steps (ms)":
        "our GPT-2-Medium steps are bound by the local-V top-k engine with DRAM at its peak rate; SpAtten-e2e's 2.13 "
        "ms comes from the RTL with Ramulator's HBM timing, which our peak-bandwidth DRAM does not model",
    "GPT-2 token + local V pruning (dense / executed FLOPs)":
        "our eight GPT-2 settings execute 3.1-5.8x fewer attention FLOPs than dense, and SpAtten's own GPT-2-Small "
        "WikiText-2 trace alone executes 5.1x fewer (trace rows below), so the paper's 3.8x average counts "
        "differently or comes from settings that prune less than its released traces",
    "GPT-2-Medium FC GFLOPs, if the 992-token prompt counted":
        "not a deviation: shows that Table IV's 19.3 GFLOPs cannot include the prompt (row above: the 32 generation "
        "steps alone give 19.3)",
    "speedup breakdown: +token pruning":
        "before the top-k engine step our top-k has one comparator, so the per-query local-V top-k (~3.1 n cycles "
        "against n/8 for Q x K) costs more than pruning saves: a slowdown; the paper measured 1.1x",
    "speedup breakdown: +top-k engine":
        "the other side of the step above: with a 1-comparator engine the local-V top-k is ~3.1 n cycles per query "
        "against n/8 for Q x K, so adding the 16-comparator engine recovers far more than the paper's 3x",
    "speedup breakdown: +static quantization":
        "after pruning our GPT-2 steps are bound by the local-V top-k engine (busy 2.0-2.4x Q x K), "
        "not by DRAM (memory time 31-72% of the compute time), so fewer bits do not speed them up",
    "speedup breakdown: +progressive quantization":
        "as for static quantization: the steps are top-k bound, so the MSB-only fetch saves DRAM bytes but no time; "
        "the GPT-2-Medium settings are static 12-bit K (no progressive step at all)",
    "speedup breakdown: all techniques vs dedicated datapath":
        "product of the steps above; the quantization steps that our top-k-bound steps cannot show",
    "accuracy proxy: cosine, BERT settings":
        "no fine-tuning (the paper fine-tunes ~2 GPU-hours per task after pruning) and the inputs are ~20 tokens "
        "(MiniLM sentences, or the seeded synthetic encoder without the [real] extra)",
    "accuracy proxy: cosine, 6+4 progressive, token 0.5":
        "no fine-tuning (the paper fine-tunes ~2 GPU-hours per task after pruning) and the inputs are ~20 tokens, "
        "where removing half of them is far harsher than on 1000-token GPT-2 inputs; without the [real] extra the "
        "encoder is seeded synthetic, not a trained model",
    "LSB refetch rate, 6+4 thr 0.1":
        "MiniLM's attention (6 layers, 32-dim heads, a sentence-embedding model) is flatter than GPT-2's, and the "
        "seeded synthetic encoder (without the [real] extra) has no learned peaks at all; the real GPT-2 trace's "
        "own rate is 7.0% at threshold 0.05 and is what its benchmarks use",
    "SpAtten1/8 effective throughput (GOP/s, dense-equivalent)":
        "dense-equivalent GOP/s credits every pruned op, summed over the 30 benchmarks",
    "A3 effective throughput (GOP/s)":
        "our A3 fetches every K and V at 12 bits through 64 GB/s: on the GPT-2 benchmarks, whose time dominates the "
        "sum, it is memory-bound (gpt2-small/PTB: 13.5M memory cycles against 1.4M compute); the paper's 221 is "
        "A3's compute roof (128 GFLOPS) x its 1.73 approximation speedup, which ignores bandwidth",
    "MNNFast effective throughput (GOP/s)":
        "same bandwidth bound as A3 in our model; the paper used its own MNNFast simulator",
}


def _gpt2_rows(benches: list[Benchmark], res: dict[str, Totals]) -> list[Row]:
    """GPT-2 beside the paper's own GPT-2 figures: Table IV (GPT-2-Medium, mean of its four datasets, no head
    pruning) and section V-B's token + local V pruning average; the prompt phase reported apart."""
    med = [b for b in benches if b.model == "gpt2-medium"]
    nohead = [run_phase(b, policy=b.policy.with_(head_keep=None, head_ratio=0.0)) for b in med]
    gpt = [b for b in benches if b.generative]
    prompt = [run_phase(b, "prompt") for b in gpt]
    gen = [res[b.name] for b in gpt]
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
        Row("GPT-2 token + local V pruning (dense / executed FLOPs)", 3.8,
            float(np.mean([t.dense_flops / t.flops for t in gen])), "paper V-B (GPT-2 average)"),
        Row("GPT-2 prompt phase, 992 tokens causal (ms, mean of 8)", float("nan"),
            float(np.mean([t.seconds for t in prompt])) * 1e3, "ours only (not a paper benchmark)"),
        Row("GPT-2 prompt phase throughput (TFLOPS)", float("nan"),
            sum(t.flops for t in prompt) / sum(t.seconds for t in prompt) / 1e12, "ours only"),
        Row("GPT-2 generation, 32 steps (ms, mean of 8)", float("nan"), float(np.mean([t.seconds for t in gen])) * 1e3,
            "ours only"),
    ]


def _breakdown_rows(benches: list[Benchmark]) -> list[Row]:
    """GPT-2 speedup breakdown (paper Fig. 20): geometric mean over the 8 GPT-2 benchmarks, each with its own
    settings, one technique added at a time."""
    paper_steps = {"+token pruning": 1.1, "+head pruning": 1.1, "+top-k engine": 3.0, "+static quantization": 1.6,
                   "+progressive quantization": 1.7}
    gpt = [b for b in benches if b.generative]
    cyc: dict[str, list[float]] = {}
    for b in gpt:
        for name, pol in breakdown_policies(b.policy):
            cyc.setdefault(name, []).append(run_phase(b, policy=pol).cycles)
    names = list(cyc)
    rows = [Row(f"speedup breakdown: {cur}", paper_steps[cur],
                _geo([a / c for a, c in zip(cyc[prev], cyc[cur], strict=True)]), "paper Fig. 20 (GPT-2)")
            for prev, cur in zip(names, names[1:], strict=False)]
    rows.append(Row("speedup breakdown: all techniques vs dedicated datapath", 209 / 22.1,
                    _geo([a / c for a, c in zip(cyc[names[0]], cyc[names[-1]], strict=True)]), "paper Fig. 20"))
    return rows


def reproduce() -> tuple[list[Row], list[str]]:
    rows: list[Row] = []
    notes: list[str] = []
    benches = benchmarks()
    phase(f"reproduce spatten: {len(benches)} benchmarks (22 BERT tasks, 8 GPT-2 generation runs)")
    res = {b.name: run_phase(b) for b in benches}
    bert = [res[b.name] for b in benches if not b.generative]
    gpt = [res[b.name] for b in benches if b.generative]
    red = {b.name: res[b.name].fp32_dense_bytes / res[b.name].dram_bytes for b in benches}
    rows += [
        Row("DRAM reduction, 30-benchmark mean (FP32 dense K+V)", 10.0, float(np.mean(list(red.values()))),
            "paper abstract / V-B"),
        Row("DRAM reduction, GPT-2 mean", float("nan"), float(np.mean([red[b.name] for b in benches if b.generative])),
            "ours only"),
        Row("DRAM reduction, BERT mean", float("nan"),
            float(np.mean([red[b.name] for b in benches if not b.generative])), "ours only"),
        Row("throughput BERT (TFLOPS, executed FLOPs)", 1.61,
            sum(r.flops for r in bert) / sum(r.seconds for r in bert) / 1e12, "paper V-C, 22 BERT benchmarks"),
        Row("throughput GPT-2 (TFLOPS, executed FLOPs)", 0.43,
            sum(r.flops for r in gpt) / sum(r.seconds for r in gpt) / 1e12, "paper V-C, 8 GPT-2 benchmarks"),
    ]
    phase("reproduce spatten: GPT-2 beside Table IV, and the prompt phase apart")
    rows += _gpt2_rows(benches, res)
    phase("reproduce spatten: speedup breakdown, one technique at a time (paper Fig. 20)")
    rows += _breakdown_rows(benches)
    # SpAtten1/8 vs A3 vs MNNFast (paper Table III): dense-equivalent GOP/s, mean over the 30 benchmarks.
    phase("reproduce spatten: SpAtten1/8, A3 and MNNFast on the 30 benchmarks (paper Table III)")
    for accel, paper, name in (("spatten-1/8", 360, "SpAtten1/8"), ("a3", 221, "A3"), ("mnnfast", 120, "MNNFast")):
        tots = [run_phase(b, accel=accel, policy=None if accel == "spatten-1/8" else POLICY_REGISTRY[accel])
                for b in benches]
        gops = sum(t.dense_flops for t in tots) / sum(t.seconds for t in tots) / 1e9
        rows.append(Row(f"{name} effective throughput (GOP/s, dense-equivalent)" if name == "SpAtten1/8"
                        else f"{name} effective throughput (GOP/s)", paper, gops, "paper Table III"))
    rows.append(Row("SpAtten area (mm2)", 18.71, get_preset("spatten").area_mm2(), "paper Table II"))
    phase("reproduce spatten: replaying SpAtten's own GPT-2 traces")
    tr, tn = _trace_rows()
    rows += tr
    notes += tn
    try:
        phase("reproduce spatten: accuracy proxy on real all-MiniLM-L6-v2 attention (the slowest part, ~10-40 s)")
        ar, an = accuracy_row()
        rows += ar
        notes += an
    except ImportError as exc:  # pragma: no cover - only without safetensors/tokenizers
        notes.append(f"accuracy rows skipped: {exc}")
    # explanations are keyed by the metric without its data-source suffix, e.g. " (real:all-MiniLM-L6-v2)"
    rows = [Row(r.metric, r.paper, r.ours, r.source, EXPLANATIONS.get(r.metric, EXPLANATIONS.get(r.metric.split(" (")[0], "")))
            for r in rows]
    return rows, notes


def format_rows(rows: list[Row], notes: list[str] | None = None) -> str:
    return _format_rows(rows, notes, see="docs/spatten.md")
