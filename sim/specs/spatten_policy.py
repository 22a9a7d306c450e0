"""SpAtten's algorithm settings as spec data: the Policy of one run, its validators, and the named settings.

A Policy is *input*, like the per-task hyper-parameters the paper tunes (section V-A); every figure downstream is
computed from it. It lives with the specs (below the models) so that the Scenario can resolve and check one
without importing a model; the SpAtten models (pruning, progressive quantization, the builder) read it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.registry import Registry

#: The five MSB+LSB settings of the paper (4+4 .. 12+4); LSBs are always 4 bits.
MSB_SETTINGS: tuple[int, ...] = (4, 6, 8, 10, 12)
LSB_BITS = 4


def check_threshold(thr: float, field: str = "threshold") -> float:
    """The requant threshold compares against a probability: it must lie in (0, 1]."""
    try:
        val = float(thr)
    except (TypeError, ValueError):
        raise SpecError(field, f"not a number: {thr!r}", "(0, 1]") from None
    if not (0.0 < val <= 1.0) or math.isnan(val):
        raise SpecError(field, f"{thr!r} is outside (0, 1]", "(0, 1]")
    return val


def check_bits(msb: int, lsb: int = LSB_BITS, field: str = "quant") -> None:
    """Only the paper's settings exist in hardware (the bit-width converter's MUX table)."""
    if msb not in MSB_SETTINGS or lsb != LSB_BITS:
        raise SpecError(field, f"{msb}+{lsb} is not a SpAtten setting", [f"{m}+{LSB_BITS}" for m in MSB_SETTINGS])


def parse_setting(text: str) -> tuple[int, int]:
    """'6+4' -> (6, 4); a bare '8' means static 8-bit (no LSB part)."""
    s = str(text).strip()
    try:
        if "+" in s:
            a, b = s.split("+", 1)
            msb, lsb = int(a), int(b)
            check_bits(msb, lsb, "--quant")
            return msb, lsb
        msb = int(s)
    except ValueError:
        raise SpecError("--quant", f"not a bit setting: {text!r}", "e.g. 6+4, 8+4 or a static width 8") from None
    if msb not in (*MSB_SETTINGS, 16):
        raise SpecError("--quant", f"static width {msb} is not supported", (*MSB_SETTINGS, 16))
    return msb, 0


def check_ratio(ratio: float, field: str) -> float:
    """A pruning ratio is the fraction removed: 0 keeps everything, 1 would remove everything (not allowed)."""
    try:
        val = float(ratio)
    except (TypeError, ValueError):
        raise SpecError(field, f"not a number: {ratio!r}", "[0, 1)") from None
    if not (0.0 <= val < 1.0):
        raise SpecError(field, f"{ratio!r} is outside [0, 1)", "[0, 1)")
    return val



def check_fraction(val: object, field: str) -> float:
    """A share of the layers in [0, 1]."""
    try:
        v = float(val)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SpecError(field, f"not a number: {val!r}", "[0, 1]") from None
    if not (0.0 <= v <= 1.0):
        raise SpecError(field, f"{val!r} is outside [0, 1]", "[0, 1]")
    return v


def check_schedule(keep: object, field: str) -> tuple[float, ...]:
    """A per-layer kept fraction: a non-empty list of numbers in (0, 1], one per layer."""
    if isinstance(keep, (str, bytes)) or not hasattr(keep, "__iter__"):
        raise SpecError(field, f"must be a list of kept fractions, one per layer, got {keep!r}")
    out = []
    for i, k in enumerate(keep):  # type: ignore[attr-defined]
        try:
            v = float(k)
        except (TypeError, ValueError):
            raise SpecError(f"{field}[{i}]", f"not a number: {k!r}", "(0, 1]") from None
        if not (0.0 < v <= 1.0):
            raise SpecError(f"{field}[{i}]", f"{k!r} is outside (0, 1]", "(0, 1]")
        out.append(v)
    if not out:
        raise SpecError(field, "is empty; give one kept fraction per layer")
    return tuple(out)


def check_key_keep(keep: object, fetch_pruned: bool, field: str = "query_key_keep") -> float:
    """A per-query key keep fraction lies in (0, 1]; below 1 the candidates are chosen on chip after every K and V
    is fetched (A3's candidate search reads the whole key matrix), so it cannot go with a fetch of pruned keys."""
    try:
        v = float(keep)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise SpecError(field, f"not a number: {keep!r}", "(0, 1]") from None
    if isinstance(keep, bool) or not (0.0 < v <= 1.0):
        raise SpecError(field, f"{keep!r} is outside (0, 1]", "(0, 1]")
    if v < 1.0 and fetch_pruned:
        raise SpecError(field, f"{keep!r} needs fetch_pruned false: per-query candidates are picked after every K "
                        "and V is fetched")
    return v


#: Bits per element of K/V/Q when a run does not quantize: the datapath's native 12-bit fixed point, which is
#: also what SpAtten's own flow does with unquantized traces (key bits -1 become 8 + forced 4-bit LSB; docs/spatten.md §Traces).
NATIVE_BITS = 12
#: Q arrives at 16 bits in every shipped trace (quant_query_bit).
QUERY_BITS = 16
#: The model's own FP32 tensors: the baseline of the paper's DRAM reductions (docs/spatten.md §DRAM reduction).
FP32_BITS = 32
#: Widths an unquantized fetch may have: the datapath's native word, half or single precision.
RAW_BITS = (NATIVE_BITS, 16, FP32_BITS)


@dataclass(frozen=True)
class Policy:
    """One run's algorithm settings.

    token_ratio / head_ratio: average pruning ratio over the *pruned* layers (the layer schedule spreads it);
    v_ratio: local V pruning ratio per query row; quantize: K/V quantized (else NATIVE_BITS);
    k_msb + k_lsb: K setting, progressive = MSB first and LSB on demand (GPT-2), else static MSB+LSB (BERT);
    v_bits: static V width; threshold: max-probability threshold of the LSB decision;
    raw_bits: bits per K, V and Q element fetched when not quantizing (NATIVE_BITS, or FP32_BITS to fetch the
    model's FP32 tensors as they are);
    lsb_refetch_rate: fix the refetch fraction instead of measuring it with the golden model;
    topk_parallelism: comparators per top-k engine (None: the arch's); fetch_pruned: False models designs (A3,
    MNNFast) that fetch every K and V before deciding what to skip;
    query_key_keep: the fraction of its (token-kept) keys each query scores, A3's per-query candidate selection:
    every query stays and every K and V is still fetched (it needs ``fetch_pruned=False``), only the query's Q x K,
    softmax and prob x V shrink.
    """

    name: str = "custom"
    token_ratio: float = 0.0
    head_ratio: float = 0.0
    v_ratio: float = 0.0
    quantize: bool = False
    k_msb: int = 8
    k_lsb: int = LSB_BITS
    v_bits: int = 8
    progressive: bool = False
    threshold: float = 0.1
    lsb_refetch_rate: float | None = None
    topk_parallelism: int | None = None
    fetch_pruned: bool = True
    #: Which layers prune: the leading fraction of layers that keep every token / every head (paper section V-A:
    #: 15% and 30%); the ramp over the rest averages token_ratio / head_ratio.
    token_unpruned_fraction: float = 0.15
    head_unpruned_fraction: float = 0.30
    #: Measured per-layer schedules instead of the ramp (a real trace's kept fraction of the tokens and of the
    #: heads, one entry per layer); None: the ramp above.
    token_keep: tuple[float, ...] | None = None
    head_keep: tuple[float, ...] | None = None
    #: Generation steps that run before any token is pruned (importance is still accumulating; the shipped
    #: GPT-2 traces prune from their second step on).
    warmup_steps: int = 0
    #: Measured LSB refetch fraction per layer (a trace's; the first layers, whose attention is flattest, refetch
    #: most); None: lsb_refetch_rate, or the golden model's measurement, for every layer.
    lsb_refetch_layers: tuple[float, ...] | None = None
    #: The same per layer for the warm-up steps, which keep every token: over ~1000 keys the rows are flatter and
    #: refetch more (SpAtten's GPT-2-Small trace: 35% in its unpruned first step, 6.1% in the pruned ones);
    #: None: the warm-up steps refetch as lsb_refetch_layers says.
    warmup_lsb_refetch_layers: tuple[float, ...] | None = None
    raw_bits: int = NATIVE_BITS
    #: Per-query key keep fraction (A3): 1.0 scores every key.
    query_key_keep: float = 1.0

    def __post_init__(self) -> None:
        check_ratio(self.token_ratio, "token_ratio")
        check_ratio(self.head_ratio, "head_ratio")
        check_ratio(self.v_ratio, "v_ratio")
        check_fraction(self.token_unpruned_fraction, "token_unpruned_fraction")
        check_fraction(self.head_unpruned_fraction, "head_unpruned_fraction")
        for fld in ("token_keep", "head_keep"):
            keep = getattr(self, fld)
            if keep is not None:
                object.__setattr__(self, fld, check_schedule(keep, fld))
        for fld in ("lsb_refetch_layers", "warmup_lsb_refetch_layers"):
            if getattr(self, fld) is not None:
                rates = tuple(float(r) for r in getattr(self, fld))
                if not rates or any(not (0.0 <= r <= 1.0) for r in rates):
                    raise SpecError(fld, "must be fractions in [0, 1], one per layer")
                object.__setattr__(self, fld, rates)
        if isinstance(self.warmup_steps, bool) or not isinstance(self.warmup_steps, int) or self.warmup_steps < 0:
            raise SpecError("warmup_steps", f"must be an integer >= 0, got {self.warmup_steps!r}")
        if self.warmup_lsb_refetch_layers is not None and not self.warmup_steps:
            raise SpecError("warmup_lsb_refetch_layers", "are the warm-up steps' rates, but warmup_steps is 0")
        check_threshold(self.threshold, "threshold")
        check_key_keep(self.query_key_keep, self.fetch_pruned)
        if self.raw_bits not in RAW_BITS:
            raise SpecError("raw_bits", f"{self.raw_bits!r} is not an unquantized width", RAW_BITS)
        if self.quantize:
            if self.progressive:
                check_bits(self.k_msb, self.k_lsb, "quant")
            elif self.k_msb + self.k_lsb not in (*MSB_SETTINGS, 16) and self.k_msb not in MSB_SETTINGS:
                raise SpecError("quant", f"static width {self.k_msb}+{self.k_lsb} is not supported")
            if self.v_bits not in (*MSB_SETTINGS, 16):
                raise SpecError("v_bits", f"{self.v_bits} is not a supported width", (*MSB_SETTINGS, 16))
        if self.lsb_refetch_rate is not None and not (0.0 <= self.lsb_refetch_rate <= 1.0):
            raise SpecError("lsb_refetch_rate", f"{self.lsb_refetch_rate!r} is outside [0, 1]", "[0, 1]")
        if self.topk_parallelism is not None and self.topk_parallelism < 1:
            raise SpecError("topk_parallelism", f"must be >= 1, got {self.topk_parallelism}")

    @staticmethod
    def dense() -> Policy:
        return Policy(name="dense")

    def with_(self, **kw: object) -> Policy:
        return replace(self, **kw)  # type: ignore[arg-type]

    @property
    def k_bits_static(self) -> int:
        """Bits per K element fetched up front: MSBs when progressive, the whole code otherwise."""
        if not self.quantize:
            return self.raw_bits
        return self.k_msb if self.progressive else self.k_msb + self.k_lsb

    @property
    def v_bits_fetched(self) -> int:
        return self.v_bits if self.quantize else self.raw_bits

    @property
    def q_bits_fetched(self) -> int:
        """Q's width in DRAM: 16 bits when quantizing (every shipped trace), else the unquantized width."""
        return QUERY_BITS if self.quantize else self.raw_bits


# ---- named settings -------------------------------------------------------------------------------------------
# GPT-2 (generation): ~4x token pruning without loss on GPT-2-Small/PTB (paper Fig. 21); with the first 15% of
# layers unpruned that is an average ratio of 0.9 over the other layers ((2 + 10 x 0.1) / 12 = 0.25 kept). V kept
# ~0.2 of the keys and 6+4 progressive K with 6-bit V, as in the shipped GPT-2-Small trace (docs/spatten.md §Traces); threshold
# 0.1 is the paper's typical value (section III-D). Head ratio 0.1: the paper's average head reduction is 1.1x.
GPT2 = Policy(name="gpt2", token_ratio=0.9, head_ratio=0.1, v_ratio=0.8, quantize=True, k_msb=6, k_lsb=LSB_BITS,
              v_bits=6, progressive=True, threshold=0.1)
# BERT (summarization, short inputs, compute-bound): small token ratios (inputs < 100 tokens; ~1.2x head pruning
# without loss on BERT-Base/CoLA, Fig. 21) and static quantization only (no refetch, section III-D) at 8 bits. No
# local V pruning: in summarization V is fetched whole into the V SRAM anyway, and on rows of < 100 keys the
# quick-select's per-round overhead costs more cycles than the prob x V work it would save (measured by the
# builder: SST-2 runs 6x slower with v_ratio 0.2). These are our settings; the paper lists no per-task ratios.
BERT = Policy(name="bert", token_ratio=0.3, head_ratio=0.15, v_ratio=0.0, quantize=True, k_msb=8, k_lsb=0, v_bits=8,
              progressive=False, threshold=0.1)

def auto_policy(causal: bool) -> Policy:
    """The paper's split: generative (causal) models get progressive quantization, encoders static."""
    return GPT2 if causal else BERT


#: How the released hardware simulation fetches a trace row whose widths say "unquantized" (-1), the Fig. 20
#: steps before quantization: the fetcher's bit-width converter takes 4-, 6- or 8-bit fields, so K comes as 8-bit
#: MSBs plus its 4-bit LSBs fetched for every row (the requant threshold forced to its maximum, so every row is
#: recomputed once) and V as 8 bits (docs/spatten.md §Speedup breakdown).
UNQUANTIZED_FETCH: dict[str, object] = {"quantize": True, "progressive": True, "k_msb": 8, "k_lsb": LSB_BITS,
                                        "v_bits": 8, "lsb_refetch_rate": 1.0}


def breakdown_policies(base: Policy) -> list[tuple[str, Policy]]:
    """The cumulative steps of the paper's Fig. 20 speedup breakdown, each adding one technique to the last.

    Before the top-k engine step the top-k runs on a single comparator (the paper's parallelism-1 engine). Before
    the quantization steps K and V are fetched as the released hardware fetches an unquantized trace
    (:data:`UNQUANTIZED_FETCH`); the quantization steps then apply ``base``'s widths (static: the whole MSB+LSB
    code and V at once; progressive: K's MSBs first, LSBs for the rows that need them).
    """
    dense = Policy(name="dedicated datapath", **UNQUANTIZED_FETCH)
    tok = dense.with_(name="+token pruning", token_ratio=base.token_ratio, token_keep=base.token_keep,
                      token_unpruned_fraction=base.token_unpruned_fraction, warmup_steps=base.warmup_steps,
                      v_ratio=base.v_ratio, topk_parallelism=1)
    head = tok.with_(name="+head pruning", head_ratio=base.head_ratio, head_keep=base.head_keep,
                     head_unpruned_fraction=base.head_unpruned_fraction)
    topk = head.with_(name="+top-k engine", topk_parallelism=None)
    static = topk.with_(name="+static quantization", quantize=base.quantize, k_msb=base.k_msb, k_lsb=base.k_lsb,
                        v_bits=base.v_bits, progressive=False, lsb_refetch_rate=None)
    prog = static.with_(name="+progressive quantization", progressive=base.progressive, threshold=base.threshold,
                        lsb_refetch_rate=base.lsb_refetch_rate, lsb_refetch_layers=base.lsb_refetch_layers,
                        warmup_lsb_refetch_layers=base.warmup_lsb_refetch_layers)
    return [(p.name, p) for p in (dense, tok, head, topk, static, prog)]

# A3 and MNNFast as the SpAtten paper describes them (section V-B): they fetch all of Q, K and V before deciding
# what to skip, so pruning saves compute but no DRAM traffic, and neither drops a query or a token (no cascade).
# A3 (Ham et al., HPCA 2020) keeps every query and, per query and head, scores only the candidate keys its greedy
# search over pre-sorted key columns picks, then runs softmax and prob x V over those candidates alone. Its keep
# fraction follows from the 1.73x geometric-mean speedup A3 reports for its approximation over its own exact
# pipeline: that pipeline's time per query is proportional to the keys it processes (dot product, exponent and
# output stages each take one key per step), and the candidate search runs as a stage of its own beside them, so
# 1.73x faster means 1 / 1.73 = 58% of the keys per query. This is an upper bound on the kept share (any search
# time inside the 1.73x would make it smaller). The key-column sorting A3 needs as pre-processing (SpAtten
# section V-B) is not modelled: no cycles or energy are charged for it (docs/spatten.md §Table III).
# MNNFast prunes only V rows per query (GPT-2's ratio).
A3_APPROX_SPEEDUP = 1.73
A3 = Policy(name="a3", query_key_keep=1.0 / A3_APPROX_SPEEDUP, fetch_pruned=False)
MNNFAST = Policy(name="mnnfast", v_ratio=GPT2.v_ratio, fetch_pruned=False)
#: The named policies (the Fig. 20 breakdown steps as "gpt2 <step>"), built once at import.
POLICIES: Registry[Policy] = Registry("policy", [
    *((p.name, p) for p in (Policy.dense(), GPT2, BERT, A3, MNNFAST)),
    *((f"gpt2 {label}", pol) for label, pol in breakdown_policies(GPT2)),
])
#: Policy names a Scenario accepts: the named settings above, and "auto" (GPT-2 settings for causal models,
#: BERT settings otherwise).
POLICY_NAMES: tuple[str, ...] = ("auto", *POLICIES)


def policy_for(name: str, causal: bool) -> Policy:
    """A named policy; "auto" follows the paper's split between generative and encoder models."""
    if name == "auto":
        return auto_policy(causal)
    if name not in POLICIES:  # listed with "auto", which is no entry of its own
        raise SpecError("policy", f"unknown policy {name!r}", POLICY_NAMES)
    return POLICIES.get(name)
