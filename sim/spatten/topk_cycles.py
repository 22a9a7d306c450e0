"""Expected cycles of the top-k engine from the RTL's exact cycle formula, over random pivots.

:func:`attnforge.sim.spatten.topk_golden.hw_topk` gives the exact cycles of one job on given data:
``R0 + D + sum_{later rounds}(ceil(m/C) + 2 + D) + 2 + F + R0`` with ``R0 = ceil(n/C)``, ``D = ROUND_PIPE`` and
``F = FILTER_PIPE``. The analytical model needs the mean over jobs without the data, so this runs the same round
recurrence on ranks (the first element of an unordered candidate set is a uniformly random rank) and splits the
cost into the two parts the hardware can overlap. The inputs are what the engine really sorts: softmax
probabilities quantized to the datapath's 12-bit words, where most small probabilities share a code, and quick-select
removes every element equal to the pivot in one round, so ties end the search early (the rank-only recurrence with
distinct values overestimates the RTL's cycles on real rows by 10-30%):

* **select**: loading the job (round 1 partitions the stream as it arrives, at ``min(C, in_rate)`` per cycle,
  since the engine cannot take elements faster than softmax produces them) and the later quick-select rounds;
* **filter**: the order-preserving pass over the buffered input that emits the kept elements.

The released SpAtten TopK puts a data FIFO between the two, so the filter of one query runs while quick-select
works on the next (``SpattenModules.topk_filter_overlap``); our RTL runs them back to back (select + filter is
exactly ``hw_topk``'s formula when ``in_rate >= C``).

Rows past :data:`EXACT_ROW_MAX` keys are drawn as histograms of their codes (:func:`_code_histogram`), so the
cost of the expectation does not grow with the sequence length.
"""

from __future__ import annotations

import math
from functools import lru_cache
from statistics import NormalDist

import numpy as np

from attnforge.sim.contract import FILTER_PIPE, ROUND_PIPE
from attnforge.sim.contract.spatten_fx import SpattenFx
from attnforge.sim.spatten.topk_algorithm import partition_round, round_cycles, round_side

#: Score spreads (std of Q.K / sqrt(D) per row) the engine's inputs are drawn from when no workload fixes one: the
#: synthetic heads' temperatures of :func:`attnforge.sim.spatten.algorithm.synthetic_refetch_rate`, 0.5 to 4.
SYNTHETIC_SCORE_STD: tuple[float, ...] = tuple(float(x) for x in np.linspace(0.5, 4.0, 8))
#: Longest row drawn score by score; longer ones (keys past 64k) are drawn as a histogram of their codes.
EXACT_ROW_MAX = 1 << 16
#: Scores of a longer row drawn one by one, at first: the largest ones, the only ones whose codes can be non-zero.
TAIL_DRAWS = 1 << 10


def _row(rng: np.random.Generator, n: int, std: float, frac: int) -> np.ndarray:
    """One row of probabilities as the engine sees them: softmax of n scores of spread ``std``, quantized to
    unsigned Q0.frac (the datapath's probability words), so small probabilities tie at the same codes."""
    s = rng.standard_normal(n) * std
    p = np.exp(s - s.max())
    return np.floor(p / p.sum() * 2**frac)


def _select_sizes(rng: np.random.Generator, row: np.ndarray, t: int) -> list[int]:
    """Candidates at every quick-select round of one row (random pivot; ``t`` the 0-based target)."""
    sizes, cand = [], row
    while cand is not None:
        sizes.append(cand.size)
        cand, t, _ = partition_round(cand, cand[rng.integers(cand.size)], t)
    return sizes


def _band_normals(rng: np.random.Generator, size: int, lo: float, hi: float) -> np.ndarray:
    """``size`` standard normals conditioned on lo < z <= hi (lo > 0, hi may be inf): Robert's (1995) exponential
    proposal shifted to lo, of rate a = (lo + sqrt(lo^2 + 4)) / 2, accepted with probability exp(-(z - a)^2 / 2)
    (most are), and those past hi dropped."""
    a = (lo + math.sqrt(lo * lo + 4.0)) / 2.0
    out = np.zeros(0)
    while out.size < size:
        z = lo + rng.exponential(1.0 / a, size=2 * (size - out.size) + 16)
        z = z[(rng.random(z.size) < np.exp(-((z - a) ** 2) / 2.0)) & (z <= hi)]
        out = np.concatenate([out, z])
    return out[:size]


def _code_histogram(rng: np.random.Generator, n: int, std: float, frac: int) -> tuple[np.ndarray, np.ndarray] | None:
    """A row like :func:`_row`, as (distinct codes, counts), drawn without drawing n scores. Why it can: the codes
    sum to at most 2^frac, so at most 2^frac of them are non-zero, a few hundred in practice. The scores above
    the normal's 1 - TAIL_DRAWS/n quantile (their number binomial) are drawn one by one; while that leaves a
    non-zero code undrawn, the same row is extended down to a quantile four times as far (the scores in the new
    band drawn the same way, so the row stays one unconditioned sample). None when even n/8 scores would not do
    (the caller then draws the row whole)."""
    z, hi, draws = np.zeros(0), math.inf, TAIL_DRAWS
    while draws <= n // 8:
        lo = -NormalDist().inv_cdf(draws / n)
        band = (_upper(lo) - _upper(hi)) / (1.0 - _upper(hi))  # P(lo < z <= hi | z <= hi)
        z = np.concatenate([z, _band_normals(rng, int(rng.binomial(n - z.size, band)), lo, hi)])
        hist = _tail_codes(n, std, frac, z, lo)
        if hist is not None:
            return hist
        hi, draws = lo, draws * 4
    return None


def _tail_codes(n: int, std: float, frac: int, z: np.ndarray,
                lo: float) -> tuple[np.ndarray, np.ndarray] | None:
    """The codes of a row whose scores above ``lo`` are ``std * z``; the n - len(z) others enter only through
    their sum, taken at its expectation (at n > EXACT_ROW_MAX its spread is ~1% of the softmax denominator or
    less), and all quantize to 0. None when they would not (a code of 1 or more at ``lo``)."""
    s = std * z
    top = float(s.max()) if s.size else std * lo
    # the others' sum of e^(std z - top): (n - len(z)) E[e^(std z) | z <= lo] e^-top, in logs (e^(std^2/2) overflows)
    bulk = (n - s.size) * math.exp(_log_mean_exp_below(std, lo) - top)
    denom = float(np.exp(s - top).sum()) + bulk
    if math.exp(std * lo - top) / denom * 2**frac >= 1.0:
        return None
    codes, counts = np.unique(np.floor(np.exp(s - top) / denom * 2**frac), return_counts=True)
    if codes.size == 0 or codes[0] != 0.0:
        codes, counts = np.concatenate([[0.0], codes]), np.concatenate([[0], counts])
    counts[0] += n - s.size
    return codes, counts


def _upper(x: float) -> float:
    """P(z > x) for a standard normal z, from erfc: exact in the far tail, where 1 - NormalDist.cdf cancels (and
    NormalDist.cdf(x) itself is 0 below x = -9)."""
    return 0.5 * math.erfc(x / math.sqrt(2.0))


def _log_mean_exp_below(std: float, lo: float) -> float:
    """log E[e^(std z) | z <= lo] for a standard normal z: std^2/2 + log Phi(lo - std) - log Phi(lo), with
    Phi(x) ~ phi(x) / -x (Mills' ratio) once Phi(lo - std) is too small for a float (std far above lo)."""
    x = lo - std
    tail = _upper(-x)  # Phi(x)
    if tail > 1e-300:
        log_tail = math.log(tail)
    else:  # x < -37: the ratio's relative error is below 1/x^2 < 0.1%
        log_tail = -x * x / 2.0 - math.log(-x * math.sqrt(2.0 * math.pi))
    return std * std / 2.0 + log_tail - math.log1p(-_upper(lo))


def _histogram_sizes(rng: np.random.Generator, codes: np.ndarray, counts: np.ndarray, t: int) -> list[int]:
    """:func:`_select_sizes` on a row given as (codes, counts): each round's pivot is an element drawn uniformly
    (a code with probability count / candidates) and the round goes on as :func:`partition_round` does
    (:func:`round_side`, the rule both share)."""
    sizes = []
    while True:
        m = int(counts.sum())
        sizes.append(m)
        pivot = codes[np.searchsorted(np.cumsum(counts), rng.integers(m), side="right")]
        keep = {"right": codes > pivot, "left": codes < pivot}
        side, t = round_side(int(counts[keep["right"]].sum()), int(counts[codes == pivot].sum()), t)
        if side is None:
            return sizes
        codes, counts = codes[keep[side]], counts[keep[side]]


@lru_cache(maxsize=16384)
def _round_sizes(n: int, k: int, stds: tuple[float, ...], trials: int, seed: int,
                 exact_max: int = EXACT_ROW_MAX) -> tuple[np.ndarray, int]:
    """Candidates left at each quick-select round after the first, over all trials, and the elements compared in
    all rounds: quick-select with a random pivot on quantized probability rows. Elements equal to the pivot leave
    the candidates in the round that meets them, so ties (most small probabilities share a code) end the search
    early. Rows longer than ``exact_max`` are drawn as histograms (:func:`_code_histogram`), so a million-key row
    costs what a 64k one does. Why apart from the cycles: the rounds do not depend on the comparator count or the
    round overhead, so the comparator sweeps and the breakdown's engines (1 to 32 comparators) share one
    Monte-Carlo run per (n, k)."""
    rng = np.random.default_rng(seed)
    frac = SpattenFx().prob_frac
    later: list[int] = []
    compared = 0
    for tr in range(trials):
        std = stds[tr % len(stds)]
        hist = _code_histogram(rng, n, std, frac) if n > exact_max else None
        sizes = (_histogram_sizes(rng, *hist, k - 1) if hist is not None
                 else _select_sizes(rng, _row(rng, n, std, frac), k - 1))
        later += sizes[1:]  # round 1 ran on the input stream (counted as the load)
        compared += sum(sizes)
    arr = np.asarray(later, dtype=np.int64)
    arr.flags.writeable = False
    return arr, compared


def _rounds(n: int, k: int, c: int, overhead: int, stds: tuple[float, ...], trials: int,
            seed: int) -> tuple[float, float]:
    """Mean cycles of the later rounds (ceil(m/C) + overhead each) and mean elements compared in all rounds."""
    sizes, compared = _round_sizes(n, k, stds, trials, seed)
    later = float(round_cycles(sizes, c, overhead).sum(dtype=np.float64))
    return later / trials, compared / trials


@lru_cache(maxsize=65536)
def engine_cycles(n: int, k: int, comparators: int, in_rate: int, round_overhead: int | None = None,
                  score_std: tuple[float, ...] = SYNTHETIC_SCORE_STD, trials: int = 128,
                  seed: int = 0) -> tuple[float, float, float]:
    """Mean (select, filter, comparisons) of one top-k of k out of n: select = load + D + later rounds of
    ceil(m/C) + overhead each (overhead None: the RTL's 2 + D), filter = 2 + F + ceil(n/C); comparisons count both
    comparator arrays in every round plus the filter's two flags. ``score_std``: the rows' score spreads."""
    if n <= 0 or k <= 0:
        return 0.0, 0.0, 0.0
    c = int(comparators)
    over = 2 + ROUND_PIPE if round_overhead is None else int(round_overhead)
    later, compared = _rounds(int(n), int(min(k, n)), c, over, tuple(score_std), trials, seed)
    load = -(-n // min(c, max(1, int(in_rate))))
    select = load + min(over, ROUND_PIPE) + later
    filt = 2 + FILTER_PIPE + -(-n // c)
    return float(select), float(filt), 2.0 * compared + 2.0 * n


def engine_cycles_v(n: np.ndarray, k: np.ndarray, comparators: int, in_rate: int,
                    round_overhead: int | None = None,
                    score_std: tuple[float, ...] = SYNTHETIC_SCORE_STD) -> tuple[np.ndarray, ...]:
    """:func:`engine_cycles` over arrays of n and k: (select, filter, comparisons)."""
    nn, kk = np.broadcast_arrays(np.asarray(n, dtype=np.int64), np.asarray(k, dtype=np.int64))
    out = np.zeros((3, *nn.shape))
    for idx in np.ndindex(nn.shape):
        out[(slice(None), *idx)] = engine_cycles(int(nn[idx]), int(kk[idx]), int(comparators), int(in_rate),
                                                 round_overhead, tuple(score_std))
    return out[0], out[1], out[2]


def occupancy(select: np.ndarray, filt: np.ndarray, overlap: bool) -> np.ndarray:
    """Cycles the engine is busy per job in steady state: the slower of its two halves when the filter of one job
    overlaps the selection of the next, else their sum."""
    return np.maximum(select, filt) if overlap else select + filt


__all__ = ["engine_cycles", "engine_cycles_v", "occupancy"]
