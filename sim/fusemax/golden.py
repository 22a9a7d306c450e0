"""Bit-exact golden model of every RTL block, and its error against float attention.

The FuseMax 1-pass cascade (``sim/analytical/cascade.py``, docs/fusemax.md §Cascade) in the integer arithmetic the RTL uses:

====================  ============================================================================
Einsum                 fixed-point form (per query p, key tile m1 of ``rows`` keys)
====================  ============================================================================
QK                     ``S = Q_i8 . K_i8`` exact integer dot product (``score_bits``)
LM, RM                 ``RM' = max(RM, max_m0 S)`` (integer; the first tile takes LM)
SLN                    ``exp2_neg(round_shift((RM' - S) * alpha_q, alpha_sh))`` in Q1.15
PRM                    same unit on ``RM' - RM``; 0 on the first tile (RM = -inf)
SLD, RD                ``RD = round_shift(RD * PRM, 15) + sum_m0 SLN``
SLNV, RNV              ``RNV = round_shift(RNV * PRM, 15) + sum_m0 SLN * V_i8``
AV                     ``recip = floor(2**rb / RD)``; ``out = round_shift(RNV * recip, rb - out_frac)``
====================  ============================================================================

``alpha = scale_q * scale_k * log2(e) / sqrt(E)`` turns integer score distances into base-2 exponents, so
``exp(s - max) = 2**(-t)``. The output is int with ``out_frac`` fraction bits in units of ``scale_v``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attnforge.sim.contract.designs import VEC_OPS
from attnforge.sim.contract.fixedpoint import (
    ERROR_BOUND_REL_VMAX,
    FixedPointConfig,
    FixedPointOverflow,
    check_width,
    choose_alpha,
    exp2_neg,
    exp2_table,
    quantize,
    reciprocal,
    round_shift,
)

IntArray = np.ndarray



@dataclass(frozen=True)
class QuantizedAttention:
    """One head's int8 operands and the scales that map them (and the output) back to reals."""

    q: IntArray  #: [P, E] int8 values
    k: IntArray  #: [M, E]
    v: IntArray  #: [M, F]
    scale_q: float
    scale_k: float
    scale_v: float
    alpha_q: int
    alpha_sh: int

    @property
    def alpha(self) -> float:
        return self.scale_q * self.scale_k * math.log2(math.e) / math.sqrt(self.q.shape[1])


def alpha_for(scale_q: float, scale_k: float, e: int, cfg: FixedPointConfig) -> tuple[int, int]:
    """The (alpha_q, alpha_sh) config words of the tile engine for these scales and head dimension."""
    alpha = scale_q * scale_k * math.log2(math.e) / math.sqrt(e)
    return choose_alpha(alpha, cfg.tf, cfg.alpha_bits, (1 << cfg.alpha_shift_bits) - 1)


def quantize_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, cfg: FixedPointConfig) -> QuantizedAttention:
    """Quantize float Q [P,E], K [M,E], V [M,F] per tensor and derive the exponent constant."""
    qi, sq = quantize(q, cfg.in_bits)
    ki, sk = quantize(k, cfg.in_bits)
    vi, sv = quantize(v, cfg.in_bits)
    aq, ash = alpha_for(sq, sk, q.shape[1], cfg)
    return QuantizedAttention(qi, ki, vi, sq, sk, sv, aq, ash)


def from_ints(q: IntArray, k: IntArray, v: IntArray, cfg: FixedPointConfig, scale: float = 1 / 32) -> QuantizedAttention:
    """Operands given directly as ints (extreme-value tests) with one common scale."""
    aq, ash = alpha_for(scale, scale, q.shape[1], cfg)
    as64 = [np.asarray(x, dtype=np.int64) for x in (q, k, v)]
    return QuantizedAttention(as64[0], as64[1], as64[2], scale, scale, scale, aq, ash)


def exp_unit(d: IntArray, alpha_q: int, alpha_sh: int, cfg: FixedPointConfig) -> IntArray:
    """The PE/1D exponent unit: ``2**(-d * alpha)`` for an integer distance ``d >= 0``, in Q1.p_frac."""
    d = np.asarray(d, dtype=np.int64)
    check_width(d, cfg.d_bits, False, "exp distance")
    t = round_shift(d * np.int64(alpha_q), alpha_sh)
    check_width(t, cfg.t_bits, False, "exp argument")
    return exp2_neg(t, cfg.tf, cfg.p_frac)


@dataclass
class TileTrace:
    """Final running state per query (for debugging a mismatch stage by stage)."""

    rm: IntArray
    rd: IntArray
    rnv: IntArray
    recip: IntArray


def visible_keys(p: int, m: int, causal: bool = False, diag: int = 0) -> IntArray:
    """``[P, M]`` bool: which keys each query sees. Every key without ``causal``; with it, key ``m`` is visible to
    query ``p`` only if ``m <= diag + p`` (``diag``: position of query 0 minus that of key 0)."""
    vis = np.ones((p, m), dtype=bool)
    if causal:
        vis &= np.arange(m)[None, :] <= diag + np.arange(p)[:, None]
    return vis


def attention_fx(qa: QuantizedAttention, cfg: FixedPointConfig, causal: bool = False,
                 diag: int = 0) -> tuple[IntArray, TileTrace]:
    """The tile engine's output ``[P, F]`` (int, ``out_frac`` fraction bits, units of scale_v), bit exact.

    Any key count: the last key tile is padded, and a padded or causally hidden key is masked as the RTL masks it
    (its score leaves the tile max, its probability is 0). A query keeps a "seen" flag: until it has seen a visible
    key its running max takes the tile max as is and PRM is 0 (the first-tile rule); a query that sees no key at all
    ends with RD = 0, which the reciprocal saturates, and RNV = 0, so its output is 0."""
    q, k, v = qa.q, qa.k, qa.v
    rows = cfg.rows
    m = k.shape[0]
    if m == 0:
        raise ValueError("key length must be positive")
    if m > cfg.max_keys:
        raise ValueError(f"key length {m} exceeds max_keys={cfg.max_keys}")
    for name, x in (("q", q), ("k", k), ("v", v)):
        check_width(x, cfg.in_bits, True, name)
    p = q.shape[0]
    vis = visible_keys(p, m, causal, diag)
    score_min = -(1 << (cfg.score_bits - 1))
    rm = np.zeros(p, dtype=np.int64)
    rd = np.zeros(p, dtype=np.int64)
    rnv = np.zeros((p, v.shape[1]), dtype=np.int64)
    seen = np.zeros(p, dtype=bool)
    for j in range(-(-m // rows)):
        kt, vt, mt = k[j * rows:(j + 1) * rows], v[j * rows:(j + 1) * rows], vis[:, j * rows:(j + 1) * rows]
        s = q @ kt.T  # QK [P, keys of the tile]
        check_width(s, cfg.score_bits, True, "QK score")
        lm = np.where(mt, s, score_min).max(axis=1)  # LM over the visible keys
        rm_new = np.where(seen, np.maximum(rm, lm), lm)  # RM
        dist = np.where(mt, rm_new[:, None] - s, 0)
        sln = np.where(mt, exp_unit(dist, qa.alpha_q, qa.alpha_sh, cfg), 0)  # SLN
        prm = np.where(seen, exp_unit(np.where(seen, rm_new - rm, 0), qa.alpha_q, qa.alpha_sh, cfg), 0)  # PRM
        rd = round_shift(rd * prm, cfg.p_frac) + sln.sum(axis=1)  # SPD + SLD = RD
        check_width(rd, cfg.rd_bits, False, "running denominator RD")
        rnv = round_shift(rnv * prm[:, None], cfg.p_frac) + sln @ vt  # SPNV + SLNV = RNV
        check_width(rnv, cfg.rnv_bits, True, "running numerator RNV")
        rm, seen = rm_new, seen | mt.any(axis=1)
    recip = reciprocal(rd, cfg.rb, cfg.qw, 1 << cfg.p_frac)
    check_width(recip, cfg.qw, False, "reciprocal")
    out = round_shift(rnv * recip[:, None], cfg.rb - cfg.out_frac)
    check_width(out, cfg.out_bits, True, "output AV")
    return out, TileTrace(rm, rd, rnv, recip)


def dequantize_output(out: IntArray, qa: QuantizedAttention, cfg: FixedPointConfig) -> np.ndarray:
    return np.asarray(out, dtype=np.float64) * qa.scale_v / (1 << cfg.out_frac)


def float_attention(q: np.ndarray, k: np.ndarray, v: np.ndarray, vis: np.ndarray | None = None) -> np.ndarray:
    """Reference softmax(Q K^T / sqrt(E)) V in float64, numerically stable; ``vis`` masks keys per query."""
    s = (np.asarray(q, np.float64) @ np.asarray(k, np.float64).T) / math.sqrt(q.shape[1])
    if vis is not None:
        s = np.where(vis, s, -np.inf)
    s -= s.max(axis=1, keepdims=True)
    w = np.exp(s)
    w /= w.sum(axis=1, keepdims=True)
    return w @ np.asarray(v, np.float64)


@dataclass(frozen=True)
class ErrorReport:
    """Golden (or RTL) output against float attention."""

    max_abs: float  #: max |out - ref| in real units
    mean_rel: float  #: mean |out - ref| / mean |ref|
    max_abs_rel_vmax: float  #: max_abs / max|V|: the quantity the bound is stated in
    bound: float  #: the allowed max_abs for these operands (ERROR_BOUND_REL_VMAX * max|V|)

    @property
    def within_bound(self) -> bool:
        return self.max_abs <= self.bound


def error_vs_float(out_real: np.ndarray, q: np.ndarray, k: np.ndarray, v: np.ndarray,
                   vis: np.ndarray | None = None) -> ErrorReport:
    ref = float_attention(q, k, v, vis)
    err = np.abs(np.asarray(out_real, np.float64) - ref)
    vmax = float(np.max(np.abs(v))) or 1.0
    mean_ref = float(np.mean(np.abs(ref))) or 1.0
    return ErrorReport(float(err.max()), float(err.mean() / mean_ref), float(err.max() / vmax), ERROR_BOUND_REL_VMAX * vmax)


def workload_head(name: str, p: int, m: int, e: int, f: int, seed: int = 0, head: int = 0) -> tuple[np.ndarray, ...]:
    """Float Q [p,e], K [m,e], V [m,f] from a workload's seeded tensors (batch 0, one head, first e/f dims).

    The RTL regressions use small head dimensions, so the model's head is sliced; the values are the workload's
    own seeded tensors, which is what makes the vectors reproducible across runs and simulators.
    """
    if name == "minilm":
        return minilm_head(p, m, e, f, head)
    from attnforge.workloads import make_workload

    wl = make_workload(name, batch=1, p=p, m=m, seq_len=max(p, m), seed=seed)
    if e > wl.e or f > wl.f:
        raise ValueError(f"workload {name} has head dim {wl.e}; asked for e={e}, f={f}")
    t = wl.tensors()
    return t["q"][0, head, :, :e], t["k"][0, head, :, :e], t["v"][0, head, :, :f]


def minilm_head(p: int, m: int, e: int, f: int, head: int = 0, layer: int = 0,
                sentence: int = 0) -> tuple[np.ndarray, ...]:
    """Float Q [p,e], K [m,e], V [m,f] of a real model: all-MiniLM-L6-v2's ``layer`` on one embedded sentence
    (``sim/spatten/realdata.py``; its seeded synthetic stand-in when the ``real`` extra is not installed), the
    first p queries and m keys of the sentence, the head's first e/f dimensions."""
    from attnforge.sim.spatten.realdata import load_inputs

    enc, xs = load_inputs("auto")
    lw, dh, x = enc.layers[layer], enc.d_head, xs[sentence]
    if e > dh or f > dh or max(p, m) > x.shape[0]:
        raise ValueError(f"minilm: head dim {dh}, {x.shape[0]} tokens; asked for e={e}, f={f}, p={p}, m={m}")
    q, k, v = (x @ w + b for w, b in ((lw.wq, lw.bq), (lw.wk, lw.bk), (lw.wv, lw.bv)))
    lo = head * dh
    return q[:p, lo:lo + e], k[:m, lo:lo + e], v[:m, lo:lo + f]


# ---------------------------------------------------------------- the smaller blocks

def pe_mac(a: IntArray, b: IntArray, acc_bits: int) -> int:
    """MAC PE: the exact dot product of one accumulation run, checked against the accumulator width."""
    acc = int(np.dot(np.asarray(a, np.int64), np.asarray(b, np.int64)))
    check_width(acc, acc_bits, True, "PE accumulator")
    return acc


def array2d_matmul(a: IntArray, b: IntArray, acc_bits: int) -> IntArray:
    """2D array, output stationary: C[r, c] = sum_e A[e, r] * B[e, c] for A [E, rows], B [E, cols]."""
    c = np.asarray(a, np.int64).T @ np.asarray(b, np.int64)
    check_width(c, acc_bits, True, "array accumulator")
    return c




def vector1d(op: str, a: IntArray, b: IntArray, data_bits: int, cfg: FixedPointConfig) -> IntArray:
    """One 1D-array operation over all lanes.

    ``max``/``add``: signed lane-wise; ``mul``: ``round_shift(a * b, p_frac)`` (rescale by a Q1.15 factor);
    ``exp``: the exponent unit on distance ``a`` with ``b = alpha_q | alpha_sh << alpha_bits``;
    ``recip``: ``floor(2**rb / a)`` (saturating below 1.0 = 2**p_frac), the softmax denominator's reciprocal.
    """
    a = np.asarray(a, np.int64)
    b = np.asarray(b, np.int64)
    if op == "max":
        r = np.maximum(a, b)
    elif op == "add":
        r = a + b
    elif op == "mul":
        r = round_shift(a * b, cfg.p_frac)
    elif op == "exp":
        aq = np.bitwise_and(b, (1 << cfg.alpha_bits) - 1)
        ash = np.bitwise_and(np.right_shift(b, cfg.alpha_bits), (1 << cfg.alpha_shift_bits) - 1)
        check_width(a, cfg.d_bits, False, "exp distance")
        r = exp2_neg(round_shift(a * aq, ash), cfg.tf, cfg.p_frac)
    elif op == "recip":  # the divider sees the lane's raw bits: a negative lane is a huge unsigned denominator
        r = reciprocal(np.where(a < 0, a + (1 << data_bits), a), cfg.rb, cfg.qw, 1 << cfg.p_frac)
    else:
        raise ValueError(f"unknown 1D op {op!r}")
    check_width(r, data_bits, True, f"1D {op} result")
    return r


#: The golden model and the shared fixed-point primitives it is built from, importable from one place.
__all__ = [
    "ERROR_BOUND_REL_VMAX", "VEC_OPS", "ErrorReport", "FixedPointConfig", "FixedPointOverflow", "QuantizedAttention",
    "alpha_for", "array2d_matmul", "attention_fx", "check_width", "dequantize_output", "error_vs_float", "exp2_neg",
    "exp2_table", "exp_unit", "float_attention", "from_ints", "minilm_head", "pe_mac", "quantize", "quantize_attention",
    "reciprocal",
    "round_shift", "vector1d", "visible_keys", "workload_head",
]
