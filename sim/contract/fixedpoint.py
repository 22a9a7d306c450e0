"""Fixed-point primitives shared bit for bit by the golden model and the RTL.

Every rounding rule lives here once, written so that the Amaranth code in ``rtl/`` can mirror it with the
same shifts and adds:

* :func:`round_shift` is an arithmetic right shift that rounds half *up* (towards +inf): add ``2**(s-1)``, then
  floor-shift. That is one adder and a wire shift in hardware, and it is the only rounding used after
  multiplications.
* :func:`quantize` is the one place where floats become int8: symmetric per-tensor scale ``max|x| / 127``,
  round half *away from zero*, clip to [-128, 127].
* :func:`exp2_neg` is the exponent unit: ``2**(-t)`` for a non-negative fixed-point ``t`` with ``tf`` fraction
  bits, as a ``2**tf``-entry table of ``2**(-k / 2**tf)`` in Q1.``p_frac`` and a rounding right shift by the
  integer part. No multiplier, one small ROM, one barrel shifter.
* :func:`reciprocal` is ``floor(2**rb / d)``, exactly what a restoring divider produces.

All functions take numpy int64 arrays (or Python ints) and check that every intermediate fits the hardware
width it is given, so an overflow is an exception here instead of a silent wrap in the RTL.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np

IntArray = np.ndarray


class FixedPointOverflow(OverflowError):
    """A value does not fit the register width the RTL gives it."""


def check_width(x: IntArray | int, bits: int, signed: bool, what: str) -> None:
    """Raise :class:`FixedPointOverflow` if any value of ``x`` needs more than ``bits`` bits."""
    a = np.asarray(x, dtype=np.int64)
    if a.size == 0:
        return
    lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    mn, mx = int(a.min()), int(a.max())
    if mn < lo or mx > hi:
        kind = "signed" if signed else "unsigned"
        raise FixedPointOverflow(f"{what}: range [{mn}, {mx}] does not fit {bits}-bit {kind} [{lo}, {hi}]")


def round_shift(x: IntArray | int, s: int | IntArray) -> IntArray:
    """``round(x / 2**s)`` with ties towards +inf: ``(x + 2**(s-1)) >> s`` (arithmetic shift); ``s = 0`` is ``x``."""
    xa = np.asarray(x, dtype=np.int64)
    sa = np.asarray(s, dtype=np.int64)
    half = np.where(sa > 0, np.left_shift(np.int64(1), np.maximum(sa - 1, 0)), 0)
    return np.right_shift(xa + half, sa)


def quantize(x: np.ndarray, bits: int = 8) -> tuple[IntArray, float]:
    """Symmetric per-tensor quantization to signed ``bits``: returns (ints, scale) with ``x ~= ints * scale``.

    The scale is ``max|x| / (2**(bits-1) - 1)`` (1.0 for an all-zero tensor); rounding is half away from zero.
    """
    qmax = (1 << (bits - 1)) - 1
    amax = float(np.max(np.abs(x))) if x.size else 0.0
    scale = amax / qmax if amax > 0 else 1.0
    y = np.asarray(x, dtype=np.float64) / scale
    q = np.sign(y) * np.floor(np.abs(y) + 0.5)
    return np.clip(q, -qmax - 1, qmax).astype(np.int64), scale


def exp2_table(tf: int, p_frac: int) -> tuple[int, ...]:
    """ROM contents: ``round(2**p_frac * 2**(-k / 2**tf))`` for k in [0, 2**tf); no entry is a tie."""
    n = 1 << tf
    return tuple(int(math.floor((1 << p_frac) * 2.0 ** (-k / n) + 0.5)) for k in range(n))


def exp2_neg(t: IntArray, tf: int, p_frac: int) -> IntArray:
    """``2**(-t / 2**tf)`` in Q1.p_frac for ``t >= 0``: table on the fraction, rounding shift by the integer part.

    The integer part ``n`` beyond ``p_frac`` gives 0 (the value is below half an LSB for every table entry).
    """
    ta = np.asarray(t, dtype=np.int64)
    if ta.size and int(ta.min()) < 0:
        raise ValueError("exp2_neg: t must be non-negative")
    lut = np.asarray(exp2_table(tf, p_frac), dtype=np.int64)
    n = np.right_shift(ta, tf)
    fr = np.bitwise_and(ta, (1 << tf) - 1)
    big = n > p_frac
    val = round_shift(lut[fr], np.where(big, 0, n))
    return np.where(big, 0, val)


def reciprocal(d: IntArray, rb: int, qw: int, d_min: int) -> IntArray:
    """``floor(2**rb / d)`` for ``d >= d_min``; saturates to ``2**qw - 1`` below ``d_min`` (the divider's domain)."""
    da = np.asarray(d, dtype=np.int64)
    ok = da >= d_min
    q = np.where(ok, np.floor_divide(np.int64(1) << rb, np.where(ok, da, 1)), (1 << qw) - 1)
    return q


def choose_alpha(alpha: float, tf: int, alpha_bits: int = 16, max_shift: int = 63) -> tuple[int, int]:
    """Encode a positive real ``alpha`` as (alpha_q, shift) with ``alpha * 2**tf ~= alpha_q / 2**shift``.

    ``alpha_q`` is normalized into [2**(alpha_bits-1), 2**alpha_bits) for the most precision; the shift is
    clamped to [1, max_shift] (the port width), saturating ``alpha_q`` if alpha is out of range.
    """
    if not alpha > 0:
        raise ValueError("alpha must be positive")
    target = alpha * (1 << tf)
    shift = alpha_bits - 1 - math.floor(math.log2(target))
    shift = min(max(shift, 1), max_shift)
    aq = int(math.floor(target * 2.0**shift + 0.5))
    if aq >= 1 << alpha_bits:  # rounding carried into the next power of two, or alpha too large for the clamp
        if shift > 1 and aq < 1 << (alpha_bits + 1):
            shift -= 1
            aq = int(math.floor(target * 2.0**shift + 0.5))
        aq = min(aq, (1 << alpha_bits) - 1)
    return max(aq, 1), shift


def clog2(n: int) -> int:
    """Bits to count to ``n`` (ceil(log2 n)), 0 for n <= 1."""
    return max(int(n) - 1, 0).bit_length()


@dataclass(frozen=True)
class FixedPointConfig:
    """Every width and rounding constant of the FuseMax tile datapath, derived from the RTL's sizes.

    The RTL builds its registers from these properties and the export manifest records them, so the golden
    model and the hardware cannot disagree about a width.
    """

    e: int = 8  #: head dimension of Q and K
    f: int = 8  #: head dimension of V
    rows: int = 4  #: keys per key tile (2D array rows, M0)
    max_keys: int = 256  #: longest key sequence the accumulators are sized for
    in_bits: int = 8  #: Q/K/V operand width
    tf: int = 6  #: fraction bits of the exponent argument (table has 2**tf entries)
    p_frac: int = 15  #: probabilities are Q1.p_frac (1.0 = 2**p_frac)
    out_frac: int = 7  #: output fraction bits: out = AV / scale_v * 2**out_frac
    alpha_bits: int = 16  #: width of the score-to-exponent multiplier constant
    alpha_shift_bits: int = 6  #: width of its shift

    def to_dict(self) -> dict[str, int]:
        d: dict[str, int] = asdict(self)
        for k in ("score_bits", "d_bits", "t_bits", "prob_bits", "rd_bits", "rnv_bits", "rb", "qw", "out_bits",
                  "key_tiles_bits"):
            d[k] = getattr(self, k)
        return d

    @cached_property
    def score_bits(self) -> int:
        """QK accumulator: E products of two int8 (each in [-16256, 16384])."""
        return 2 * self.in_bits + clog2(self.e)

    @cached_property
    def d_bits(self) -> int:
        """Unsigned distance max - score."""
        return self.score_bits + 1

    @cached_property
    def t_bits(self) -> int:
        """Exponent argument after scaling; saturated so the integer part alone says 'zero'."""
        return self.d_bits + self.alpha_bits

    @cached_property
    def prob_bits(self) -> int:
        return self.p_frac + 1

    @cached_property
    def rd_bits(self) -> int:
        """Running denominator: at most max_keys probabilities of 1.0 (unsigned)."""
        return self.prob_bits + clog2(self.max_keys)

    @cached_property
    def rnv_bits(self) -> int:
        """Running numerator (signed): at most max_keys * 1.0 * 128 in magnitude."""
        return self.prob_bits + self.in_bits + clog2(self.max_keys) + 1

    @cached_property
    def rb(self) -> int:
        """Reciprocal scale: 2**rb / RD keeps 16+ significant bits for every RD up to max_keys * 2**p_frac."""
        return 2 * self.p_frac + 1 + clog2(self.max_keys)

    @cached_property
    def qw(self) -> int:
        """Quotient width = restoring-divider iterations: RD >= 2**p_frac gives floor(2**rb/RD) <= 2**(rb-p_frac)."""
        return self.rb - self.p_frac + 1

    @cached_property
    def out_bits(self) -> int:
        return self.in_bits + self.out_frac + 1

    @cached_property
    def key_tiles_bits(self) -> int:
        return clog2(self.max_keys // self.rows + 1)

    def validate(self) -> None:
        if self.max_keys % self.rows:
            raise ValueError(f"max_keys={self.max_keys} must be a multiple of rows={self.rows}")
        if self.max_keys > 1024:
            raise ValueError("max_keys <= 1024 keeps every product inside 64 bits")


#: Documented worst-case error of the fixed-point attention datapath (golden and RTL alike) against float
#: attention on the *float* inputs,
#: in units of the largest |V|. Quantizing Q/K/V to int8 dominates (and grows with the softmax's sharpness,
#: as Q/K rounding moves the scores); the exp table, the Q1.15 probabilities, the rescale rounding and the
#: 7-bit output add ~0.001. Measured (tests/test_golden.py): max 0.0047 at unit variance, 0.023 with Q/K/V
#: scaled up to 3x; the bound keeps a 2x margin over the latter.
ERROR_BOUND_REL_VMAX = 0.05
