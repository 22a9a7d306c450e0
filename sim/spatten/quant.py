"""Progressive quantization: fetch K's MSBs, compute the row's probabilities, refetch LSBs only when the row is flat.

Why it works (paper section III-D): dp_i/ds_j = p_i(delta_ij - p_j), so a score error moves the probabilities by at
most about 2p(1-p) <= 0.5 of itself; when one token dominates (large max probability) a coarse score is enough,
and when the distribution is flat (max probability below the threshold) the LSBs are fetched, concatenated below
the MSBs, and the row is recomputed once. K is linear, symmetric, (MSB+LSB)-bit; MSBs land in the top bits and
the missing LSBs read as zero (the RTL's write-masked 12-bit words), so an MSB-only value is the full code
truncated to its top bits.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnforge.sim.specs.spatten_policy import LSB_BITS, check_threshold


def quantize(x: np.ndarray, bits: int, axis: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Linear symmetric quantization to signed ``bits``-bit codes; returns (codes, scale), x ~= codes * scale.

    One scale per tensor (``axis`` None) or per slice along ``axis`` (per head, say), from the max magnitude.
    """
    a = np.asarray(x, dtype=np.float64)
    qmax = 2 ** (bits - 1) - 1
    amax = np.max(np.abs(a)) if axis is None else np.max(np.abs(a), axis=axis, keepdims=True)
    scale = np.where(amax > 0, amax / qmax, 1.0)
    codes = np.clip(np.rint(a / scale), -qmax - 1, qmax).astype(np.int64)
    return codes, scale


def msb_only(codes: np.ndarray, lsb: int) -> np.ndarray:
    """The value the datapath sees before the LSB refetch: the low ``lsb`` bits are zero (MSBs in the top bits)."""
    return (codes >> lsb) << lsb


def softmax(s: np.ndarray, axis: int = -1) -> np.ndarray:
    z = s - np.max(s, axis=axis, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=axis, keepdims=True)


@dataclass(frozen=True)
class ProgressiveResult:
    """Probabilities the datapath ends with, which rows refetched LSBs, and the mean bits fetched per K element."""

    probs: np.ndarray
    refetch: np.ndarray
    k_bits_fetched: float

    @property
    def lsb_refetch_rate(self) -> float:
        return float(np.mean(self.refetch)) if self.refetch.size else 0.0


def progressive_attention(
    q: np.ndarray,
    k: np.ndarray,
    *,
    msb: int,
    lsb: int = LSB_BITS,
    threshold: float = 0.1,
    progressive: bool = True,
    mask: np.ndarray | None = None,
) -> ProgressiveResult:
    """Attention probabilities with K quantized to MSB+LSB bits, judged per query row.

    q: (..., Lq, D), k: (..., Lk, D). With ``progressive`` each row first uses MSB-only keys; rows whose max
    probability is below ``threshold`` are recomputed once with the full MSB+LSB keys (and counted as refetches).
    Without it (BERT's static quantization) every row uses the full MSB+LSB codes and nothing is refetched.
    ``mask`` (broadcastable to the scores, True = keep) applies causal or padding masks.
    """
    check_threshold(threshold)
    codes, scale = quantize(k, msb + lsb)
    p_full = _probs(q, codes * scale, mask)
    if not progressive or lsb == 0:
        return ProgressiveResult(p_full, np.zeros(p_full.shape[:-1], dtype=bool), float(msb + lsb))
    p_msb = _probs(q, msb_only(codes, lsb) * scale, mask)
    refetch = np.max(p_msb, axis=-1) < threshold
    probs = np.where(refetch[..., None], p_full, p_msb)
    return ProgressiveResult(probs, refetch, msb + lsb * float(np.mean(refetch)))


def msb_refetch_rows(q: np.ndarray, k: np.ndarray, *, msb: int, lsb: int, threshold: float) -> np.ndarray:
    """Which rows :func:`progressive_attention` would refetch (the same decision, bit for bit), without the full-
    precision pass it also computes for the rows' final probabilities: all a refetch rate needs."""
    check_threshold(threshold)
    codes, scale = quantize(k, msb + lsb)
    p_msb = _probs(q, msb_only(codes, lsb) * scale, None)
    return np.zeros(p_msb.shape[:-1], dtype=bool) if lsb == 0 else np.max(p_msb, axis=-1) < threshold


def _probs(q: np.ndarray, k: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Row-softmax of q k^T / sqrt(D), masked positions (False) at zero probability."""
    qf = np.asarray(q, dtype=np.float64)
    s = qf @ np.swapaxes(k, -1, -2) / np.sqrt(qf.shape[-1])
    if mask is not None:
        s = np.where(mask, s, -np.inf)
    return softmax(s)


def quantize_dequantize(x: np.ndarray, bits: int) -> np.ndarray:
    """Static quantization round trip (V, and BERT's K): what the 12-bit datapath computes with."""
    if bits >= 16:
        return np.asarray(x, dtype=np.float64)
    codes, scale = quantize(x, bits)
    return codes * scale
