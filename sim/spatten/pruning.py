"""Cascade token pruning, cascade head pruning, local value pruning and the per-layer ratio schedule.

The three differ in scope, which is what reimplementations most often get wrong (docs/spatten.md §Pruning and quantization):
- token pruning is global and cascades: a token pruned at layer l never reappears (its Q, K and V are never
  fetched again); its score is the *cumulative* column sum of attention probabilities over queries, heads, layers
  and, for generation, over steps;
- head pruning also cascades, but scores heads by the magnitude of their outputs (the FC mixes heads, so
  large-output heads matter), not by probabilities;
- local V pruning is per head and per query: only that row's V fetches are skipped.
All selections go through the quick-select engine of :mod:`attnforge.sim.spatten.topk_algorithm`, so ties resolve as in hardware.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from attnforge.sim.spatten.topk_algorithm import topk_indices
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.spatten_policy import check_ratio

#: docs/spatten.md §Pruning and quantization (paper §V): the first 15% of layers keep every token, the first 30% every head.
TOKEN_UNPRUNED_FRACTION = 0.15
HEAD_UNPRUNED_FRACTION = 0.30


def layer_ratios(n_layers: int, avg_ratio: float, unpruned_fraction: float, field: str = "ratio") -> np.ndarray:
    """Per-layer pruning ratios: the first ``ceil(unpruned_fraction * n)`` layers get 0, the rest a linear ramp.

    The ramp runs from r_start to r_end with r_start + r_end = 2 avg_ratio (paper section V-A), so the pruned
    layers average exactly ``avg_ratio``. The spread is as wide as possible (r_start = 0) while r_end stays
    below 1; a ratio here is the fraction of the *original* tokens gone by that layer, so the ramp is also what
    makes the kept sets nested (cascade).
    """
    avg = check_ratio(avg_ratio, field)
    if n_layers <= 0:
        raise SpecError("layers", f"must be positive, got {n_layers}")
    n0 = min(n_layers, math.ceil(unpruned_fraction * n_layers - 1e-9))
    out = np.zeros(n_layers)
    n_pruned = n_layers - n0
    if n_pruned == 0 or avg == 0.0:
        return out
    if n_pruned == 1:
        out[n0] = avg
        return out
    half = min(avg, 0.999 - avg)  # r_start = avg - half >= 0 and r_end = avg + half < 1
    out[n0:] = np.linspace(avg - half, avg + half, n_pruned)
    return out


def kept_counts(length: int | np.ndarray, ratios: np.ndarray) -> np.ndarray:
    """Tokens (or heads) kept per layer: floor(L (1 - r)) as Alg. 2's k = L1 (1 - p_t), never below 1."""
    lens = np.asarray(length)
    r = np.asarray(ratios).reshape((-1,) + (1,) * lens.ndim)
    return np.maximum(1, np.floor(lens * (1.0 - r) + 1e-9)).astype(np.int64)


@dataclass
class TokenImportance:
    """Cumulative token importance s_t over the original token positions (persists across layers and steps)."""

    n_tokens: int
    scores: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.scores = np.zeros(self.n_tokens)

    def accumulate(self, probs: np.ndarray, alive: np.ndarray) -> None:
        """Add the column sums of ``probs`` (heads, queries, keys over the alive tokens) to their tokens' scores."""
        cols = np.asarray(probs).reshape(-1, probs.shape[-1]).sum(axis=0)
        self.scores[alive] += cols

    def prune(self, alive: np.ndarray, keep: int) -> np.ndarray:
        """Keep the ``keep`` most important of the alive tokens (quick-select semantics, input order kept)."""
        if keep >= alive.size:
            return alive
        return alive[topk_indices(self.scores[alive], keep)]


@dataclass
class HeadImportance:
    """Cumulative head importance s_h = sum over layers, queries and channels of |attention_out[h]|."""

    n_heads: int
    scores: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.scores = np.zeros(self.n_heads)

    def accumulate(self, head_out: np.ndarray, alive: np.ndarray) -> None:
        """``head_out`` is (alive heads, queries, d_head): magnitudes, not probabilities.

        See docs/spatten.md §Pruning and quantization.
        """
        self.scores[alive] += np.abs(head_out).reshape(head_out.shape[0], -1).sum(axis=1)

    def prune(self, alive: np.ndarray, keep: int) -> np.ndarray:
        if keep >= alive.size:
            return alive
        return alive[topk_indices(self.scores[alive], keep)]


def local_v_keep(probs: np.ndarray, v_ratio: float) -> np.ndarray:
    """Boolean mask of the V vectors fetched per (head, query) row: the top (1 - v_ratio) by probability.

    Pruned V are simply not fetched; their probabilities do not reach prob x V (no renormalisation, as the
    datapath has already divided by the full denominator).
    """
    r = check_ratio(v_ratio, "v_ratio")
    p = np.asarray(probs)
    n = p.shape[-1]
    keep = max(1, int(math.floor(n * (1.0 - r) + 1e-9)))
    mask = np.zeros(p.shape, dtype=bool)
    if keep >= n:
        mask[...] = True
        return mask
    # A stable descending sort keeps exactly quick-select's set: everything above the k-th value plus the
    # earliest ties (tests/test_spatten_topk.py checks the two agree); vectorised because rows are many.
    order = np.argsort(-p, axis=-1, kind="stable")[..., :keep]
    np.put_along_axis(mask, order, True, axis=-1)
    return mask


def query_candidates(keys: np.ndarray | float, keep: float) -> np.ndarray:
    """Keys one query scores under per-query key pruning (A3's candidate selection): ``keep`` of the keys it
    sees, rounded up and at least one. Unlike token pruning nothing cascades: the query itself stays, every
    other query picks its own candidates, and all keys are still fetched for the search, so only the query's
    Q x K, softmax and prob x V shrink (docs/spatten.md §Table III)."""
    kk = np.asarray(keys, dtype=np.float64)
    if keep >= 1.0:
        return kk
    return np.maximum(1.0, np.ceil(kk * keep - 1e-9))
