"""Expected cycles of the top-k engine from the RTL's exact cycle formula, over random pivots.

:func:`attnforge.sim.spatten.topk_golden.hw_topk` gives the exact cycles of one job on given data:
``R0 + D + sum_{later rounds}(ceil(m/C) + 2 + D) + 2 + F + R0`` with ``R0 = ceil(n/C)``, ``D = ROUND_PIPE`` and
``F = FILTER_PIPE``. The analytical model needs the mean over jobs without the data, so this runs the same round
recurrence on ranks (the first element of an unordered candidate set is a uniformly random rank) and splits the
cost into the two parts the hardware can overlap:

* **select**: loading the job (round 1 partitions the stream as it arrives, at ``min(C, in_rate)`` per cycle,
  since the engine cannot take elements faster than softmax produces them) and the later quick-select rounds;
* **filter**: the order-preserving pass over the buffered input that emits the kept elements.

The released SpAtten TopK puts a data FIFO between the two, so the filter of one query runs while quick-select
works on the next (``SpattenModules.topk_filter_overlap``); our RTL runs them back to back (select + filter is
exactly ``hw_topk``'s formula when ``in_rate >= C``).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from attnforge.sim.contract import FILTER_PIPE, ROUND_PIPE


def _rounds(n: int, k: int, c: int, overhead: int, trials: int, seed: int) -> tuple[float, float]:
    """Mean cycles of the later rounds and mean elements compared in all rounds, over random pivot ranks."""
    rng = np.random.default_rng(seed)
    m = np.full(trials, n, dtype=np.int64)
    t = np.full(trials, k - 1, dtype=np.int64)
    live = np.ones(trials, dtype=bool)
    later = np.zeros(trials)
    compared = np.zeros(trials)
    first = True
    while live.any():
        if not first:  # round 1 ran on the input stream (counted as the load)
            later += np.where(live, -(-m // c) + overhead, 0)
        compared += np.where(live, m, 0)
        first = False
        j = (rng.random(trials) * m).astype(np.int64)  # the pivot's 0-based rank from the top
        go_right = live & (j > t)  # more than t elements above the pivot: the answer is among them
        go_left = live & (j < t)
        m = np.where(go_right, j, np.where(go_left, m - j - 1, m))
        t = np.where(go_left, t - j - 1, t)
        live = go_right | go_left
    return float(later.mean()), float(compared.mean())


@lru_cache(maxsize=65536)
def engine_cycles(n: int, k: int, comparators: int, in_rate: int, round_overhead: int | None = None,
                  trials: int = 4096, seed: int = 0) -> tuple[float, float, float]:
    """Mean (select, filter, comparisons) of one top-k of k out of n: select = load + D + later rounds of
    ceil(m/C) + overhead each (overhead None: the RTL's 2 + D), filter = 2 + F + ceil(n/C); comparisons count both
    comparator arrays in every round plus the filter's two flags."""
    if n <= 0 or k <= 0:
        return 0.0, 0.0, 0.0
    c = int(comparators)
    over = 2 + ROUND_PIPE if round_overhead is None else int(round_overhead)
    later, compared = _rounds(int(n), int(min(k, n)), c, over, trials, seed)
    load = -(-n // min(c, max(1, int(in_rate))))
    select = load + min(over, ROUND_PIPE) + later
    filt = 2 + FILTER_PIPE + -(-n // c)
    return float(select), float(filt), 2.0 * compared + 2.0 * n


def engine_cycles_v(n: np.ndarray, k: np.ndarray, comparators: int, in_rate: int,
                    round_overhead: int | None = None) -> tuple[np.ndarray, ...]:
    """:func:`engine_cycles` over arrays of n and k: (select, filter, comparisons)."""
    nn, kk = np.broadcast_arrays(np.asarray(n, dtype=np.int64), np.asarray(k, dtype=np.int64))
    out = np.zeros((3, *nn.shape))
    for idx in np.ndindex(nn.shape):
        out[(slice(None), *idx)] = engine_cycles(int(nn[idx]), int(kk[idx]), int(comparators), int(in_rate),
                                                 round_overhead)
    return out[0], out[1], out[2]


def occupancy(select: np.ndarray, filt: np.ndarray, overlap: bool) -> np.ndarray:
    """Cycles the engine is busy per job in steady state: the slower of its two halves when the filter of one job
    overlaps the selection of the next, else their sum."""
    return np.maximum(select, filt) if overlap else select + filt


__all__ = ["engine_cycles", "engine_cycles_v", "occupancy"]
