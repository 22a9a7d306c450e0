"""SpAtten's top-k engine: quick-select for the k-th largest value, then an order-preserving filter pass.

Why quick-select: it finds the threshold in O(n) average comparisons (about 2.3-4 n/16 cycles with 16
comparators) where a sorter costs O(n log n) time and O(n log^2 n) hardware. The convention here is the one the
RTL uses (docs/spatten.md §Top-k engine): a 0-based target t = k - 1, and when the k-th value has
ties, exactly t - |R| + 1 of the tied elements are kept, the earliest ones in input order. The paper's Alg. 3
(target = k) sends the Fig. 9 example the wrong way; :func:`quick_select` is unit-tested against that example.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from attnforge.sim.specs.errors import SpecError

#: Fixed cost of one quick-select round besides streaming the elements (zero eliminator, pivot pick, FIFO swap);
#: docs/spatten.md §Top-k engine: one round costs about ceil(m/16) + 3 cycles.
ROUND_OVERHEAD_CYCLES = 3


@dataclass(frozen=True)
class TopK:
    """Kept indices (ascending, i.e. input order), the k-th largest value, and what the engine spent on it."""

    indices: np.ndarray
    kth: float
    keep_equal: int
    rounds: int
    cycles: int
    compared: int


def check_k(n: int, k: int, field: str = "k") -> None:
    """k must lie in [0, n]: the engine cannot keep more elements than it was given."""
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)):
        raise SpecError(field, f"must be an integer, got {k!r}")
    if k < 0 or k > n:
        raise SpecError(field, f"k = {k} is outside [0, n] for n = {n}", f"0..{n}")


def partition_round(cand: np.ndarray, pivot: float, target: int) -> tuple[np.ndarray | None, int, int]:
    """One quick-select round as the engine runs it: candidates above the pivot go right, below go left, equal ones
    are only counted. Returns the next candidates and 0-based target (``None`` when the pivot is the answer: the
    (target+1)-th largest) and how many were above the pivot. Shared by :func:`quick_select` and the tie-aware
    cycle expectation (:mod:`attnforge.sim.spatten.topk_cycles`)."""
    right, left = cand[cand > pivot], cand[cand < pivot]
    side, nxt_target = round_side(right.size, cand.size - right.size - left.size, target)
    return {"right": right, "left": left}.get(side), nxt_target, right.size


def round_side(above: int, equal: int, target: int) -> tuple[str | None, int]:
    """Where a quick-select round goes on, from how many candidates were above and equal to the pivot: "right"
    (the answer is above it), "left" (below it, with the target less those above and equal) or None (the pivot is
    the (target+1)-th largest). The one rule of :func:`partition_round` and of the histogram rows of
    :mod:`attnforge.sim.spatten.topk_cycles`."""
    if above > target:
        return "right", target
    if above + equal <= target:
        return "left", target - above - equal
    return None, target


def quick_select(x: np.ndarray, k: int, *, parallelism: int = 16, rng: np.random.Generator | None = None) -> TopK:
    """Top-k of a 1-D array with SpAtten's semantics.

    Rounds stream the current candidates against a pivot (random element of the candidates, drawn from ``rng``;
    the first element when ``rng`` is None, which makes the result deterministic): elements above go right,
    below go left, equal ones are only counted. Returns the kept indices in input order.
    """
    a = np.asarray(x, dtype=np.float64).reshape(-1)
    n = a.size
    check_k(n, k)
    if parallelism < 1:
        raise SpecError("topk parallelism", f"must be >= 1, got {parallelism}")
    if k == 0:
        return TopK(np.zeros(0, dtype=np.int64), float("inf"), 0, 0, 0, 0)
    target = k - 1  # 0-based: the answer is the (target+1)-th largest
    cand = a
    rounds = cycles = compared = 0
    while True:
        m = cand.size
        pivot = cand[int(rng.integers(m))] if rng is not None else cand[0]
        rounds += 1
        cycles += -(-m // parallelism) + ROUND_OVERHEAD_CYCLES
        compared += 2 * m
        nxt, new_target, right_size = partition_round(cand, pivot, target)
        if nxt is None:
            kth = float(pivot)
            keep_equal = target - right_size + 1
            break
        cand, target = nxt, new_target
    # Filter pass over the buffered input: everything better than kth, plus the first keep_equal ties.
    better = a > kth
    equal = a == kth
    eq_rank = np.cumsum(equal)  # inclusive prefix sum, as the RTL's PrefixSum
    keep = better | (equal & (eq_rank <= keep_equal))
    idx = np.flatnonzero(keep)
    return TopK(idx, kth, int(keep_equal), rounds, cycles, compared)


def topk_indices(x: np.ndarray, k: int) -> np.ndarray:
    """Deterministic top-k (first-element pivots): the set SpAtten keeps, in input order."""
    return quick_select(x, k).indices


@lru_cache(maxsize=16384)
def _rank_sizes(n: int, k: int, trials: int, seed: int) -> tuple[np.ndarray, float, float]:
    """Monte-Carlo of quick-select on distinct values: only ranks matter, so simulate ranks (vectorised over trials).

    Returns the candidates of every trial at every round (rounds x trials, 0 once a trial has found its answer),
    mean elements compared and mean rounds. Why apart from the cycles: the rounds do not depend on the engine's
    parallelism, so engines of 1 to 32 comparators share one run per (n, k).
    """
    rng = np.random.default_rng(seed)
    m = np.full(trials, n, dtype=np.int64)
    t = np.full(trials, k - 1, dtype=np.int64)
    live = np.ones(trials, dtype=bool)
    sizes = []
    compared = np.zeros(trials)
    rounds = np.zeros(trials)
    while live.any():
        j = (rng.random(trials) * m).astype(np.int64)  # pivot's 0-based rank from the top among m candidates
        sizes.append(np.where(live, m, 0))
        compared += np.where(live, 2 * m, 0)
        rounds += live
        go_right = live & (j > t)
        go_left = live & (j < t)
        m = np.where(go_right, j, np.where(go_left, m - j - 1, m))
        t = np.where(go_left, t - j - 1, t)
        live = go_right | go_left
    out = np.stack(sizes)
    out.flags.writeable = False
    return out, float(compared.mean()), float(rounds.mean())


def round_cycles(sizes: np.ndarray, parallelism: int, overhead: int) -> np.ndarray:
    """Cycles of each quick-select round of ``sizes`` candidates (0: no round): the candidates streamed
    ``parallelism`` per cycle plus the round's fixed cost. Shared by both Monte-Carlo expectations (ranks here,
    quantized probabilities in :mod:`attnforge.sim.spatten.topk_cycles`)."""
    return np.where(sizes > 0, -(-sizes // parallelism) + overhead, 0)


def _rank_rounds(n: int, k: int, parallelism: int, trials: int, seed: int) -> tuple[float, float, float]:
    """Mean cycles (ceil(m / parallelism) + the round overhead per round), elements compared and rounds."""
    sizes, compared, rounds = _rank_sizes(n, k, trials, seed)
    cycles = round_cycles(sizes, parallelism, ROUND_OVERHEAD_CYCLES).sum(axis=0, dtype=np.float64)
    return float(cycles.mean()), compared, rounds


@lru_cache(maxsize=65536)
def expected_topk(n: int, k: int, parallelism: int, trials: int = 256, seed: int = 0) -> tuple[float, float, float]:
    """Mean (cycles, comparisons, rounds) of one top-k of k out of n with a random pivot (seeded, cached).

    This is the statistical latency the official flow charges (TopKLatencyModel), used by the schedule builder and
    the trace replay; k = 0 or k = n needs no selection and costs nothing.
    """
    if n <= 0 or k <= 0 or k >= n:
        return 0.0, 0.0, 0.0
    return _rank_rounds(int(n), int(k), int(parallelism), trials, seed)


def expected_topk_v(n: np.ndarray, k: np.ndarray, parallelism: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised :func:`expected_topk` over arrays of n and k: (cycles, comparisons)."""
    nn, kk = np.broadcast_arrays(np.asarray(n, dtype=np.int64), np.asarray(k, dtype=np.int64))
    cyc = np.zeros(nn.shape)
    cmp_ = np.zeros(nn.shape)
    for idx in np.ndindex(nn.shape):
        c, e, _ = expected_topk(int(nn[idx]), int(kk[idx]), int(parallelism))
        cyc[idx], cmp_[idx] = c, e
    return cyc, cmp_
