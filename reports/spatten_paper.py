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

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

from attnforge.reports import spatten_arch
from attnforge.reports.paper import Row
from attnforge.reports.paper import format_rows as _format_rows
from attnforge.reports.spatten_runs import (
    STALLS,
    Totals,
    bound_phrase,
    busy_ratio,
    dram_bound_cycles,
    evaluate_run,
    geomean,
    mem_ratio,
    run_phase,
    spread,
    sum_runs,
    without_heads,
)
from attnforge.reports.spatten_table3 import _table3_rows
from attnforge.sim.analytical.engine import Evaluation, run_schedule
from attnforge.sim.specs.progress import phase
from attnforge.sim.specs.spatten_policy import BERT, FP32_BITS, GPT2, breakdown_policies
from attnforge.workloads import get_model
from attnforge.workloads.spatten_benchmarks import (
    GENERATED,
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
                "row), not the final progressive setting its benchmark runs; the paper's GPT-2 average at that step is "
                f"0.43 / {PROGRESSIVE_GAIN} (Fig. 20's progressive gain), the row below")
        ref = 28.9 if label == "GPT-2-Small" else 9.0
        rows += [
            Row(f"trace {label}: DRAM reduction vs FP32 dense K+V", ref, sm.dram_bytes_fp32_dense / bp,
                "docs/spatten.md §Traces (derived from the traces)"),
            Row(f"trace {label}: throughput (TFLOPS)", 0.43, float(sp.flops) / float(ep.latency_s) / 1e12,
                "paper V-C (GPT-2 average)"),
            *_static_step_row(label, float(sp.flops) / float(ep.latency_s) / 1e12),
            Row(f"trace {label}: dense / executed FLOPs", float("nan"),
                float(sp.extra["dense_flops"]) / float(sp.flops), "ours only (the trace's own pruning)"),
            Row(f"trace {label}: speedup vs its unpruned trace", float("nan"), float(eb.cycles) / float(ep.cycles),
                "ours only"),
            Row(f"trace {label}: DRAM reduction vs its unpruned trace", float("nan"), bb / bp, "ours only"),
        ]
        if sm.lsb_refetch_rate > 0:
            rows += _refetch_rows(label, trace.rows, measured)
    return rows, notes, measured


#: Paper Fig. 20's last step on the 8 GPT-2 benchmarks: progressive quantization gains 1.7x over static.
PROGRESSIVE_GAIN = 1.7


def _static_step_row(label: str, tflops: float) -> list[Row]:
    """The Medium trace beside the paper's throughput at the step it records.

    Its file name (``step5+dedic+...+quant``) and its widths (K 8+4 fetched whole) are the speedup breakdown's
    static-quantization step, which the paper's final 0.43 TFLOPS (V-C) reaches only after progressive quantization's
    further 1.7x (Fig. 20): at the static step the paper's GPT-2 average is 0.43 / 1.7. Executed FLOPs barely move
    between the two steps (the LSB recomputes of 5.9% of the rows), so throughput scales with the speedup.
    """
    if label != "GPT-2-Medium":
        return []
    return [Row(f"trace {label}: throughput against the paper's static step (TFLOPS, 0.43 / {PROGRESSIVE_GAIN})",
                0.43 / PROGRESSIVE_GAIN, tflops, "paper V-C and Fig. 20 (the step this trace records)")]


def accuracy_row() -> tuple[list[Row], list[str]]:
    """Accuracy proxy of the BERT settings on MiniLM (real when installed), and its measured LSB refetch rate."""
    from attnforge.sim.spatten.algorithm import accuracy_proxy, dense_runs
    from attnforge.sim.spatten.realdata import load_inputs

    enc, xs = load_inputs("auto")
    dense = dense_runs(enc, xs)
    acc_b = accuracy_proxy(enc, xs, BERT, dense)
    acc_g = accuracy_proxy(enc, xs, GPT2.with_(token_ratio=0.5), dense)
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
            f"mean) to ~1.5x (geometric); the geometric mean of our 30 is {geomean(all_pr):.2f}x (and of their whole DRAM "
            f"reduction {geomean([res[b.name].dram_reduction for b in benches]):.2f}x)",
        "DRAM reduction by token + local V pruning, GPT-2 mean":
            f"our eight GPT-2 settings fetch {spread(gpt_pr, '{:.1f}')}x fewer K+V elements than dense (geometric "
            f"mean {geomean(gpt_pr):.2f}x); the two WikiText-2 files, whose kept tokens and V are SpAtten's own "
            f"traces', {traced[0]:.1f}x (Small) and {traced[1]:.1f}x (Medium), geometric mean {geomean(traced):.2f}x, so "
            "the paper's 3.8x comes from settings that prune less than its released traces do on average",
        "DRAM reduction by quantization vs FP32, 30-benchmark mean":
            "BERT's static 8-bit K and V give exactly 4.0x against 32 bits and are 22 of the 30 benchmarks; GPT-2 "
            f"gives {spread(gpt_q, '{:.1f}')}x (GPT-2-Medium, 8-bit K MSBs and V: {spread(q_of('gpt2-medium'))}x; "
            f"GPT-2-Small, 6-bit K MSBs and V: {spread(q_of('gpt2-small'))}x); the paper's 32 / (6 + 0.059 x 4) = "
            "5.1x is K alone at 6+4 bits, measured on the GPT-2-Small benchmarks in the row \"K alone\"",
        "throughput BERT (TFLOPS, executed FLOPs)": _bert_note(benches, res, qk_busy),
        "throughput GPT-2 (TFLOPS, executed FLOPs)":
            f"the generation steps wait on HBM ({bound_phrase(med, 'GPT-2-Medium')}; {bound_phrase(small, 'GPT-2-Small')}; "
            f"peak {peak:.0f} GB/s); the busiest compute module is the local-V top-k engine (busy "
            f"{spread([busy_ratio(t, 'topk', 'qk') for t in small + med])}x Q x K). GPT-2-Small reaches {tf(small):.2f} "
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
    geo = geomean(list(tfl.values()))
    return (f"BERT is compute-bound here ({bound_phrase(bert, 'the 22 passes')}); Q x K is busy {qk_busy:.0%} of the "
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
        ev = evaluate_run("spatten", b.model, [b.length], b.policy, overrides=overrides)
        tots.append(sum_runs([ev], mdl.d_head, mdl.layers, mdl.heads, [np.asarray(b.length)]))
    return sum(t.flops for t in tots) / sum(t.seconds for t in tots) / 1e12


def bert_stall_note(benches: list[Benchmark]) -> str:
    """The BERT row with each fixed-cost term changed (the row's own note says where its cycles go)."""
    alt = "; ".join(f"{label}: {bert_tflops(benches, ov):.3f}" for label, ov in STALL_VARIANTS)
    return f"throughput BERT with one fixed-cost term changed (TFLOPS; docs/spatten.md §BERT throughput): {alt}"


def barrier_note(benches: list[Benchmark]) -> str:
    """The GPT-2 rows with a barrier per layer (``hbm.layer_barrier``): what the busiest channel of each layer's
    shared kept set would cost if the channels could not run on into the next layer's requests."""
    gpt = [b for b in benches if b.generative]
    with spatten_arch.overridden({**spatten_arch.current(), "hbm.layer_barrier": True}):
        runs = [run_phase(b) for b in gpt]
    tput = sum(r.flops for r in runs) / sum(r.seconds for r in runs) / 1e12
    ms = medium_ms(benches, {"hbm.layer_barrier": True})
    return (f"GPT-2 with a barrier per layer (hbm.layer_barrier=true: each layer waits for its busiest channel; "
            f"docs/spatten.md §Memory system): throughput {tput:.3f} TFLOPS, GPT-2-Medium attention latency {ms:.2f} ms")


def medium_ms(benches: list[Benchmark], overrides: dict[str, object] | None = None) -> float:
    """Mean latency (ms) of the GPT-2-Medium generation runs with every head kept (Table IV's setting), on the run's
    arch with ``overrides`` on top."""
    with spatten_arch.overridden({**spatten_arch.current(), **(overrides or {})}):
        return float(np.mean([run_phase(b, policy=without_heads(b.policy)).seconds
                              for b in benches if b.model == "gpt2-medium"])) * 1e3


def inflight_for(benches: list[Benchmark], target_ms: float, most: int = 64,
                 step: int = 4) -> tuple[int | None, int, float]:
    """The fewest requests in flight per channel at which the GPT-2-Medium runs take ``target_ms`` (None when no
    count up to ``most`` does), and the fastest count seen with its time, found by running them again. The runs'
    K, LSB and V streams each gain from more requests in flight by their own row-hit rate, so no single rate gives
    the answer; and past ~30 in flight the round trip each query waits for grows faster than the bandwidth, so the
    time has a minimum. The scan goes ``step`` counts at a time until it meets the target or passes the minimum,
    then one at a time over the last stride."""
    own = spatten_arch.arch().hbm.outstanding
    times = {own: medium_ms(benches)}

    def at(k: int) -> float:
        if k not in times:
            times[k] = medium_ms(benches, {"hbm.outstanding": k})
        return times[k]

    k = own
    while at(k) > target_ms and k < most:
        nxt = min(k + step, most)
        if at(nxt) > at(k) and k > own:  # past the minimum: it lies within a stride of k
            break
        k = nxt
    for j in range(max(own, k - step + 1), min(k + step, most) + 1):
        if at(j) <= target_ms:
            return j, j, at(j)
    best = min(times, key=lambda j: (times[j], j))
    return None, best, times[best]


def _latency_note(benches: list[Benchmark], nohead: list[Totals], paper_ms: float, peak: float) -> str:
    ours = float(np.mean([t.seconds for t in nohead])) * 1e3
    bw = sum(t.dram_bytes for t in nohead) / sum(t.memory_cycles / (t.cycles / t.seconds) for t in nohead) / 1e9
    n, best_k, best = inflight_for(benches, paper_ms)
    driver = spatten_arch.arch().hbm.outstanding
    inflight = (f"our HBM delivers that with {n} requests in flight per channel; the released driver allows {driver}"
                if n else f"no number of requests in flight gets there in our HBM: the fastest, {best_k} per channel "
                f"against the released driver's {driver}, gives {best:.2f} ms, as each query's round trip grows")
    return (f"our 32 steps wait on HBM ({bound_phrase(nohead, 'GPT-2-Medium, no head pruning')}, peak {peak:.0f} GB/s; "
            f"K 8-bit MSBs + LSBs on 5.9% of the rows, V 8-bit); with the same bytes, SpAtten-e2e's {paper_ms} ms would need ~"
            f"{bw * ours / paper_ms:.0f} GB/s delivered ({inflight}), or fewer bytes than our settings move")


def _breakdown_notes(tots: dict[str, list[Totals]], gpt: list[Benchmark]) -> dict[str, str]:
    names = list(tots)
    dense, tok, topk, static, prog = (tots[n] for n in (names[0], names[1], names[3], names[4], names[5]))

    def geo(a: list[Totals], b: list[Totals], model: str | None = None) -> float:
        return geomean([x.cycles / y.cycles for x, y, bm in zip(a, b, gpt, strict=True) if model in (None, bm.model)])

    def kv(a: list[Totals], b: list[Totals], model: str) -> float:
        """K+V bytes of step a over those of step b on one model size (what a memory-bound step gains at most)."""
        return geomean([x.kv_dram_bytes / y.kv_dram_bytes for x, y, bm in zip(a, b, gpt, strict=True)
                     if bm.model == model])

    ms = {m: next(b.policy for b in gpt if b.model == m) for m in ("gpt2-small", "gpt2-medium")}
    sm, md = ms["gpt2-small"], ms["gpt2-medium"]
    unq = "K as 8-bit MSBs + 4-bit LSBs on every row and V at 8 bits, as the released hardware fetches unquantized rows"
    fp32 = tots.get("fp32", [])
    return {
        "speedup breakdown: +token pruning":
            f"the dedicated datapath (fetching {unq}) waits on HBM (DRAM time {spread([mem_ratio(t) for t in dense], '{:.1f}')}x "
            "compute); token pruning with this step's 1-comparator top-k cuts the bytes and turns the steps "
            f"compute-bound on the top-k (busy {spread([busy_ratio(t, 'topk', 'qk') for t in tok], '{:.1f}')}x Q x K, "
            f"DRAM time {spread([mem_ratio(t) for t in tok])}x compute), so the step gains the dedicated DRAM time over "
            f"the 1-comparator top-k time ({geo(dense, tok):.2f}x); the paper measured 1.1x",
        "speedup breakdown: +top-k engine":
            f"the 16-comparator engine cuts the top-k's busy cycles {geo(tok, topk):.1f}x overall and the steps wait "
            f"on HBM again (DRAM time {spread([mem_ratio(t) for t in topk])}x compute)",
        "speedup breakdown: +static quantization":
            "the steps are memory-bound after the top-k engine step ("
            f"{spread([t.memory_bound_share for t in topk], '{:.0%}')} of the cycles wait on DRAM), but before "
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
            f"{spread([t.memory_bound_share for t in prog], '{:.0%}')} of the cycles wait on DRAM; 1.7x would need "
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
    share = dram_bound_cycles(ev) / float(np.sum(ev.cycles))
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
        "GPT-2-Medium attention latency, 32 steps (ms)": _latency_note(benches, nohead, 2.13, peak),
        "GPT-2 token + local V pruning (dense / executed FLOPs)":
            f"our eight GPT-2 settings execute {spread(ratios, '{:.1f}')}x fewer attention FLOPs than dense; "
            "SpAtten's own two GPT-2 traces execute {trace} fewer (trace rows below), at the paper's 3.8x: ours "
            f"is above it because the PTB files (paper Fig. 21's lossless 4x token pruning: "
            f"{spread([r for r, b in zip(ratios, gpt, strict=True) if b.dataset == 'PTB'], '{:.1f}')}x) and 1BW's "
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
                geomean([a / c for a, c in zip(cyc[prev], cyc[cur], strict=True)]), "paper Fig. 20 (GPT-2)")
            for prev, cur in zip(names, names[1:], strict=False)]
    rows.append(Row("speedup breakdown: all techniques vs dedicated datapath", 209 / 22.1,
                    geomean([a / c for a, c in zip(cyc[names[0]], cyc[names[-1]], strict=True)]), "paper Fig. 20"))
    # The two quantization steps again, from the top-k engine step fetching the models' FP32 K and V as they are
    # (the baseline of the paper's DRAM reductions): what Fig. 20's 1.6 x 1.7 would be against that baseline.
    fp32 = [run_phase(b, policy=pol.with_(name="+top-k engine, FP32 K/V", quantize=False, raw_bits=FP32_BITS,
                                          lsb_refetch_rate=None))
            for b in gpt for name, pol in breakdown_policies(b.policy) if name == "+top-k engine"]
    rows.append(Row("speedup breakdown: both quantization steps from FP32 K/V", 1.6 * 1.7,
                    geomean([a.cycles / c for a, c in zip(fp32, cyc[names[-1]], strict=True)]),
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
            geomean([r.flops / r.seconds / 1e12 for r in bert]), "paper V-C (averaging not stated)"),
        Row("throughput GPT-2, geometric mean of the 8 (TFLOPS)", 0.43,
            geomean([r.flops / r.seconds / 1e12 for r in gpt]), "paper V-C (averaging not stated)"),
        Row("throughput BERT, arithmetic mean of the 22 (TFLOPS)", 1.61,
            float(np.mean([r.flops / r.seconds / 1e12 for r in bert])), "paper V-C (averaging not stated)"),
        Row("throughput GPT-2, arithmetic mean of the 8 (TFLOPS)", 0.43,
            float(np.mean([r.flops / r.seconds / 1e12 for r in gpt])), "paper V-C (averaging not stated)"),
    ]
    phase("reproduce spatten: GPT-2 beside Table IV, and the prompt phase apart")
    peak = spatten_arch.arch().dram.bandwidth_gib_s * 2**30 / 1e9
    measured = _headline_notes(benches, res, tok, peak)
    phase("reproduce spatten: BERT fixed costs, each term changed (docs/spatten.md §Stalls)")
    notes.append(bert_stall_note(benches))
    notes.append(barrier_note(benches))
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
    said = (f"{both[0]:.2f}x (Small) and {both[1]:.2f}x (Medium), geometric mean {geomean(both):.2f}x"  # type: ignore[arg-type]
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
