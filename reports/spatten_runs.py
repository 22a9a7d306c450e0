"""Running SpAtten's paper benchmarks: one benchmark (or one of its phases) on one accelerator, summed into the
figures every report row is made from.

Why apart from the reports: the headline table (:mod:`attnforge.reports.spatten_paper`), Table III
(:mod:`attnforge.reports.spatten_table3`), the per-benchmark table and the GPU comparison all run the same
benchmarks the same way; this module is that one way. A GPT-2 benchmark is its 32 decode steps (the unpruned warm-up
steps apart, on their own settings), its causal prompt a separate phase; every run goes through a Scenario, with
the run's arch overrides (:mod:`attnforge.reports.spatten_arch`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from attnforge.reports import spatten_arch
from attnforge.sim.analytical.engine import Evaluation, evaluate_scenario
from attnforge.sim.memory import dram
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.scenario import Scenario
from attnforge.sim.specs.spatten_policy import GPT2, Policy
from attnforge.workloads import get_model
from attnforge.workloads.spatten_benchmarks import GENERATED, PHASES, PROMPT, Benchmark, benchmarks


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
    #: 32-byte HBM requests and the row activates among them (their ratio sets the achieved bandwidth).
    dram_requests: float = 0.0
    dram_activates: float = 0.0
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
    def row_hit_rate(self) -> float:
        """Fraction of the HBM requests that found their row open (no activate)."""
        return dram.row_hit(self.dram_requests, self.dram_activates)

    @property
    def memory_bound_share(self) -> float:
        """Fraction of the cycles spent in stages that wait on DRAM."""
        return self.memory_bound_cycles / self.cycles

    @property
    def achieved_gbs(self) -> float:
        """GB/s the DRAM delivers while it moves this run's bytes (the HBM model's efficiency x the peak)."""
        return dram.delivered_gb_s(self.dram_bytes, self.memory_cycles, self.cycles, self.seconds)


def sum_runs(evs: list[Evaluation], d: int, layers: int, heads: int, kv_lens: list[np.ndarray]) -> Totals:
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
        dram_requests=sum(float(np.sum(e.schedule.extra.get("dram_requests", 0.0))) for e in evs),
        dram_activates=sum(float(np.sum(e.schedule.extra.get("dram_activates", 0.0))) for e in evs),
        compute_cycles=sum(float(np.sum(e.compute_cycles)) for e in evs),
        memory_cycles=sum(float(np.sum(e.memory_cycles)) for e in evs),
        memory_bound_cycles=sum(dram_bound_cycles(e) for e in evs),
        busy=busy,
        tokens_kept=float(np.mean([np.mean(e.schedule.extra.get("tokens_kept", 1.0)) for e in evs])),
        stalls={k: sum(float(np.sum(e.schedule.extra.get(f"{k}_cycles", 0.0))) for e in evs) for k in STALLS},
    )


#: The fixed-cost terms a schedule's extra carries as ``<name>_cycles``, in the order the BERT note names them.
STALLS = ("head_switch", "boundary", "barrier")


def dram_bound_cycles(ev: Evaluation) -> float:
    """Cycles of the stages whose time is their DRAM time (stage time above its compute)."""
    out = 0.0
    for st in ev.schedule.stages:
        t = np.asarray(ev.stage_cycles[st.name], dtype=np.float64)
        out += float(np.sum(np.where(t > np.asarray(st.compute_cycles(), dtype=np.float64) * (1 + 1e-9), t, 0.0)))
    return out


def evaluate_run(accel: str, model: str, lens: list[int], policy: Policy, overrides: dict[str, object] | None = None,
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
        ev = evaluate_run(accel, bench.model, [bench.length], pol)
        return sum_runs([ev], mdl.d_head, mdl.layers, mdl.heads, [np.asarray(bench.length)])
    ph = phase or "generate"
    if ph not in PHASES:
        raise SpecError("phase", f"unknown phase {ph!r}", PHASES)
    evs: list[Evaluation] = []
    lens: list[np.ndarray] = []
    # Each part runs one policy on all its points (a Scenario refuses warm-up steps it cannot split): the prompt
    # and the pruned generation steps the steady settings, the warm-up steps their own.
    steady = pol.with_(warmup_steps=0, warmup_lsb_refetch_layers=None)
    if ph in ("prompt", "both"):
        evs.append(evaluate_run(accel, bench.model, [bench.length], steady, causal=True))
        lens.append(np.asarray(bench.length))
    if ph in ("generate", "both"):
        ctx = [bench.length + 1 + i for i in range(bench.generate)]
        warm = min(pol.warmup_steps, len(ctx))
        for part, sp in ((ctx[:warm], warmup_policy(pol)), (ctx[warm:], steady)):
            if part:
                evs.append(evaluate_run(accel, bench.model, part, sp, causal=True, stage="decode"))
                lens.append(np.asarray(part))
    return sum_runs(evs, mdl.d_head, mdl.layers, mdl.heads, lens)


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


def geomean(xs: list[float]) -> float:
    return float(np.exp(np.mean(np.log(xs))))


def spread(xs: list[float], fmt: str = "{:.2f}") -> str:
    """``lo-hi`` of measured values (one value when they agree at the shown precision)."""
    lo, hi = fmt.format(min(xs)), fmt.format(max(xs))
    return lo if lo == hi else f"{lo}-{hi}"


def busy_ratio(t: Totals, a: str, b: str) -> float:
    return t.busy.get(a, 0.0) / max(t.busy.get(b, 0.0), 1e-300)


def mem_ratio(t: Totals) -> float:
    """DRAM time over compute time: above 1, the DRAM is what the run waits on."""
    return t.memory_cycles / max(t.compute_cycles, 1e-300)


def bound_phrase(ts: list[Totals], label: str) -> str:
    """One phrase for a group of runs: DRAM time over compute, share of cycles waiting on DRAM, achieved HBM."""
    share = sum(t.memory_bound_cycles for t in ts) / sum(t.cycles for t in ts)
    pct = f"{share:.0%}" if share >= 0.01 else f"{share:.1%}"
    return (f"{label}: DRAM time {spread([mem_ratio(t) for t in ts])}x the compute time, {pct} of the cycles in layers "
            f"that wait on DRAM, HBM delivering {spread([t.achieved_gbs for t in ts], '{:.0f}')} GB/s while it moves "
            "the bytes")
