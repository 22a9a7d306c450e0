"""Bit-exact golden model of SpAtten's attention datapath RTL (``rtl/spatten/``): Q x K, softmax, progressive
quantization, prob x V, and the one-query pipeline that chains them with the top-k engine.

The released SpAtten RTL is not numerically faithful (12-bit truncating multipliers, a pass-through softmax;
docs/spatten.md §Block latencies), so this datapath is ours, built from the same fixed-point primitives as the FuseMax
golden model (:mod:`attnforge.sim.contract.fixedpoint`): exact integer dot products, the base-2 exponent ROM, the restoring
divider and round-half-up shifts. One query of one head:

==================  =====================================================================================
step                 fixed-point form
==================  =====================================================================================
K word               ``k = msb << lsb_bits | (lsb if refetched else 0)`` (MSBs in the top bits, 12-bit word)
Q x K                ``s_j = sum_d q_d * k_jd`` exact (``score_bits``)
softmax              ``e_j = exp_unit(max s - s_j)`` in Q1.15, ``recip = floor(2**rb / sum e)``,
                     ``p_j = round_shift(e_j * recip, rb - prob_frac)`` (unsigned Q0.``prob_frac``)
progressive quant    refetch LSBs and recompute once iff ``max_j p_j < threshold`` (threshold in Q0.prob_frac)
local-V top-k        :func:`attnforge.sim.spatten.topk_golden.hw_topk` on the probabilities, k = ``kv``
prob x V             ``out_d = round_shift(sum_{kept j} p_j * v_jd, prob_frac - out_frac)``
==================  =====================================================================================

Cycle models of every block live here too (``*_cycles``); the cocotb benches assert them exactly.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from attnforge.sim.contract.fixedpoint import check_width, quantize, reciprocal, round_shift
from attnforge.sim.contract.spatten_fx import SpattenFx
from attnforge.sim.fusemax.golden import alpha_for, exp_unit
from attnforge.sim.spatten.topk_golden import hw_topk
from attnforge.sim.specs.errors import SpecError

IntArray = np.ndarray


# ---------------------------------------------------------------- numerics


def split_k(k: IntArray, cfg: SpattenFx) -> tuple[IntArray, IntArray]:
    """12-bit K codes -> (signed MSB part, unsigned LSB part): the two DRAM regions of progressive quantization."""
    k = np.asarray(k, np.int64)
    check_width(k, cfg.word_bits, True, "K code")
    return np.right_shift(k, cfg.lsb_bits), np.bitwise_and(k, (1 << cfg.lsb_bits) - 1)


def assemble(msb: IntArray, lsb: IntArray | None, cfg: SpattenFx) -> IntArray:
    """The bit-width converter: MSBs into the top bits of the on-chip word, LSBs (or zeros) below."""
    word = np.left_shift(np.asarray(msb, np.int64), cfg.lsb_bits)
    return word if lsb is None else word | np.asarray(lsb, np.int64)


def qk(q: IntArray, k: IntArray, cfg: SpattenFx) -> IntArray:
    """Scores of one query against keys [n, D]: exact integer dot products."""
    s = np.asarray(k, np.int64) @ np.asarray(q, np.int64)
    check_width(s, cfg.score_bits, True, "Q x K score")
    return s


@dataclass(frozen=True)
class SoftmaxFx:
    probs: IntArray  #: unsigned Q0.prob_frac
    denominator: int  #: sum of the Q1.15 exponentials
    recip: int


def softmax(scores: IntArray, alpha_q: int, alpha_sh: int, cfg: SpattenFx) -> SoftmaxFx:
    """Fixed-point softmax of one row, as the RTL computes it (exp pass, one division, normalize pass)."""
    s = np.asarray(scores, np.int64)
    fx = cfg.fx
    e = exp_unit(int(s.max()) - s, alpha_q, alpha_sh, fx)
    den = int(e.sum())
    check_width(den, fx.rd_bits, False, "softmax denominator")
    recip = int(reciprocal(den, fx.rb, fx.qw, 1 << fx.p_frac))
    p = round_shift(e * recip, fx.rb - cfg.prob_frac)
    check_width(p, cfg.prob_bits, False, "probability")
    return SoftmaxFx(p, den, recip)


def decide(probs: IntArray, threshold: int) -> tuple[bool, int]:
    """Progressive-quantization decision: (refetch LSBs?, max probability)."""
    mx = int(np.max(probs))
    return mx < threshold, mx


# ---------------------------------------------------------------- what the blocks refuse
# A refused job changes nothing and is answered by one error beat (the contract's ``err`` fields); the beats and
# cycles of those answers are in :mod:`attnforge.sim.spatten.cycle_model` (``*_refused``).

def qk_refused(n: int, dlog: int, cfg: SpattenFx) -> bool:
    """Q x K cannot run a job with no keys, more keys than ``max_n``, or a head dimension the tree has no tap for."""
    return not 1 <= n <= cfg.max_n or not cfg.min_d.bit_length() - 1 <= dlog <= cfg.max_d.bit_length() - 1


def row_refused(counts: Sequence[int], cfg: SpattenFx) -> bool:
    """The row streams' rule (softmax, decision): a row is beats of S lanes, each full but the last,
    none empty, at most ``max_n`` entries in all (the buffers and accumulators are sized for that)."""
    c = [int(x) for x in counts]
    return (not c or any(x == 0 or x > cfg.s for x in c) or any(x != cfg.s for x in c[:-1])
            or sum(c) > cfg.max_n)


def pv_refused(counts: Sequence[int], cfg: SpattenFx) -> bool:
    """prob x V takes the top-k's output rows, so empty and short beats are legal; it refuses a beat above S lanes
    or more than ``max_n`` rows in all (what its accumulators are sized for)."""
    c = [int(x) for x in counts]
    return not c or any(x > cfg.s for x in c) or sum(c) > cfg.max_n


def decision_refused(counts: Sequence[int], threshold: int, cfg: SpattenFx) -> bool:
    """The decision also refuses a threshold above 1.0 (``check_job``'s range)."""
    return row_refused(counts, cfg) or threshold > 1 << cfg.prob_frac


def pv(probs: IntArray, v: IntArray, cfg: SpattenFx) -> IntArray:
    """prob x V over the kept rows: exact accumulation, one rounding shift at the end."""
    acc = np.asarray(probs, np.int64) @ np.asarray(v, np.int64)
    check_width(acc, cfg.acc_bits, True, "prob x V accumulator")
    out = round_shift(acc, cfg.prob_frac - cfg.out_frac)
    check_width(out, cfg.out_bits, True, "attention output")
    return out


@dataclass(frozen=True)
class QueryJob:
    """One query of one head with its memory image: what the pipeline's testbench serves."""

    q: IntArray  #: [D] signed word_bits
    k: IntArray  #: [n, D] signed word_bits codes (MSB and LSB regions are split from them)
    v: IntArray  #: [n, D] signed v_bits
    kv: int  #: V vectors kept by the local-V top-k
    threshold: int  #: Q0.prob_frac
    alpha_q: int
    alpha_sh: int
    scale_q: float = 1.0
    scale_k: float = 1.0
    scale_v: float = 1.0

    @property
    def n(self) -> int:
        return int(self.k.shape[0])

    @property
    def d(self) -> int:
        return int(self.k.shape[1])


@dataclass(frozen=True)
class PipelineResult:
    out: IntArray  #: [D] attention output (out_frac fraction bits, units of scale_v)
    refetch: bool
    max_prob: int  #: of the first (MSB-only) pass
    probs: IntArray  #: the probabilities the top-k saw
    kept: list[int]  #: V rows fetched (ascending)
    scores: IntArray


def check_job(job: QueryJob, cfg: SpattenFx) -> None:
    cfg.check_d(job.d)
    if not 1 <= job.n <= cfg.max_n:
        raise SpecError("n", f"{job.n} keys outside 1..{cfg.max_n}", f"1..{cfg.max_n}")
    if not 1 <= job.kv <= job.n:
        raise SpecError("kv", f"{job.kv} kept values outside 1..n = {job.n}", f"1..{job.n}")
    if not 0 <= job.threshold <= 1 << cfg.prob_frac:
        raise SpecError("threshold", f"{job.threshold} outside 0..{1 << cfg.prob_frac} (Q0.{cfg.prob_frac})")
    check_width(job.q, cfg.word_bits, True, "Q")
    check_width(job.k, cfg.word_bits, True, "K")
    check_width(job.v, cfg.v_bits, True, "V")


def pipeline(job: QueryJob, cfg: SpattenFx) -> PipelineResult:
    """The whole one-query datapath, bit exact with ``rtl/spatten/pipeline.py``."""
    check_job(job, cfg)
    msb, lsb = split_k(job.k, cfg)
    s1 = qk(job.q, assemble(msb, None, cfg), cfg)
    sm = softmax(s1, job.alpha_q, job.alpha_sh, cfg)
    refetch, mx = decide(sm.probs, job.threshold)
    scores = s1
    if refetch:
        scores = qk(job.q, assemble(msb, lsb, cfg), cfg)
        sm = softmax(scores, job.alpha_q, job.alpha_sh, cfg)
    top = hw_topk(sm.probs.tolist(), job.kv, cfg.s)
    kept = top.indices
    out = pv(sm.probs[kept], job.v[kept], cfg)
    return PipelineResult(out, refetch, mx, sm.probs, kept, scores)


def quantize_job(q: np.ndarray, k: np.ndarray, v: np.ndarray, kv: int, threshold: float, cfg: SpattenFx) -> QueryJob:
    """Float q [D], k [n, D], v [n, D] -> a job: per-tensor symmetric 12-bit codes, exponent constant from scales."""
    qi, sq = quantize(np.asarray(q)[None, :], cfg.word_bits)
    ki, sk = quantize(k, cfg.word_bits)
    vi, sv = quantize(v, cfg.v_bits)
    aq, ash = alpha_for(sq, sk, k.shape[1], cfg.fx)
    thr = int(math.floor(threshold * (1 << cfg.prob_frac) + 0.5))
    return QueryJob(qi[0], ki, vi, kv, thr, aq, ash, sq, sk, sv)


def dequantize(out: IntArray, job: QueryJob, cfg: SpattenFx) -> np.ndarray:
    return np.asarray(out, np.float64) * job.scale_v / (1 << cfg.out_frac)


def float_reference(q: np.ndarray, k: np.ndarray, v: np.ndarray, kept: list[int]) -> np.ndarray:
    """Float attention of the query over the keys, with V pruned to the same kept rows (probabilities unnormalized
    after pruning, as SpAtten's local V pruning leaves them)."""
    s = np.asarray(k, np.float64) @ np.asarray(q, np.float64) / math.sqrt(k.shape[1])
    p = np.exp(s - s.max())
    p /= p.sum()
    return p[kept] @ np.asarray(v, np.float64)[kept]


def workload_jobs(name: str, n: int, d: int, count: int, cfg: SpattenFx, *, kv_frac: float = 0.5,
                  threshold: float = 0.1, seed: int = 0) -> list[tuple[QueryJob, tuple[np.ndarray, ...]]]:
    """``count`` query jobs with their float operands. ``name`` ``minilm``: a real model's attention (MiniLM layer 0,
    embedded sentences; seeded synthetic encoder when the ``real`` extra is absent), keys capped at the sentence
    length; any workload name: its seeded tensors (:func:`attnforge.sim.fusemax.golden.workload_head`)."""
    if name == "minilm":
        from attnforge.sim.spatten.realdata import load_inputs

        enc, xs = load_inputs("auto", seed)
        lw, dh = enc.layers[0], enc.d_head
        heads = []
        for x in xs:
            q, k, v = (x @ w + b for w, b in ((lw.wq, lw.bq), (lw.wk, lw.bk), (lw.wv, lw.bv)))
            for h in range(enc.heads):
                sl = slice(h * dh, h * dh + d)
                heads.append((q[:, sl], k[:n, sl], v[:n, sl]))
    else:
        from attnforge.sim.fusemax.golden import workload_head

        heads = []
        for h in range(max(1, -(-count // 4))):
            q, k, v = workload_head(name, 4, n, d, d, seed=seed, head=h)
            heads.append((q, k, v))
    out = []
    for i in range(count):
        q, k, v = heads[i % len(heads)]
        row = q[(i // len(heads)) % q.shape[0]]
        kv = max(1, min(k.shape[0], round(kv_frac * k.shape[0])))
        out.append((quantize_job(row, k, v, kv, threshold, cfg), (row, k, v)))
    return out
