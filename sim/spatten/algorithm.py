"""The SpAtten golden model: an encoder forward pass that prunes and quantizes exactly as the algorithm says.

Why a forward pass and not a post-hoc look at attention maps: cascade pruning changes what later layers see (a
pruned token is gone from every later Q, K, V and FFN), so the kept sets, the importance scores, the LSB refetch
decisions and the accuracy proxy (cosine similarity of the final hidden states against the dense run) only come
out right if the pruned model is actually run. The same code with every knob off is the dense reference, and it
matches HF transformers' BertModel on MiniLM (tests/test_spatten_realdata.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from attnforge.sim.spatten.pruning import (
    HEAD_UNPRUNED_FRACTION,
    TOKEN_UNPRUNED_FRACTION,
    HeadImportance,
    TokenImportance,
    kept_counts,
    layer_ratios,
    local_v_keep,
)
from attnforge.sim.spatten.quant import msb_refetch_rows, progressive_attention, quantize_dequantize
from attnforge.sim.spatten.realdata import Encoder, _layer_norm
from attnforge.sim.specs.spatten_policy import Policy

_erf = np.frompyfunc(math.erf, 1, 1)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as BERT uses."""
    return 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0)).astype(np.float64))


@dataclass
class LayerStats:
    """What one layer did: tokens and heads alive, rows that refetched LSBs, V vectors fetched."""

    tokens: int
    heads: int
    rows: int
    refetch_rows: int
    keys_fetched: int
    values_fetched: int
    k_bits: float


@dataclass
class GoldenRun:
    """Final hidden states of the surviving tokens (by original position) and per-layer statistics."""

    hidden: np.ndarray
    alive: np.ndarray
    layers: list[LayerStats] = field(default_factory=list)
    probs: list[np.ndarray] = field(default_factory=list)

    @property
    def lsb_refetch_rate(self) -> float:
        rows = sum(s.rows for s in self.layers)
        return sum(s.refetch_rows for s in self.layers) / rows if rows else 0.0

    @property
    def tokens_kept(self) -> float:
        """Mean over layers of the fraction of tokens alive."""
        n0 = self.layers[0].tokens
        return float(np.mean([s.tokens / n0 for s in self.layers]))

    @property
    def heads_kept(self) -> float:
        h0 = self.layers[0].heads
        return float(np.mean([s.heads / h0 for s in self.layers]))


def forward(enc: Encoder, x: np.ndarray, policy: Policy | None = None, keep_probs: bool = False) -> GoldenRun:
    """Run the encoder on one embedded sentence (L, d_model); ``policy`` None is the dense float reference."""
    n_layers, n_heads, dh = len(enc.layers), enc.heads, enc.d_head
    length = x.shape[0]
    pol = policy or Policy.dense()
    tok_keep = kept_counts(length, layer_ratios(n_layers, pol.token_ratio, TOKEN_UNPRUNED_FRACTION, "token_ratio"))
    head_keep = kept_counts(n_heads, layer_ratios(n_layers, pol.head_ratio, HEAD_UNPRUNED_FRACTION, "head_ratio"))
    alive = np.arange(length)
    heads = np.arange(n_heads)
    t_imp = TokenImportance(length)
    h_imp = HeadImportance(n_heads)
    h = np.asarray(x, dtype=np.float64)
    run = GoldenRun(hidden=h, alive=alive)
    for li, lw in enumerate(enc.layers):
        # Cascade: apply the pruning decided by the scores accumulated so far (layer granularity).
        keep_t = int(tok_keep[li])
        if keep_t < alive.size:
            sel = t_imp.prune(alive, keep_t)
            h = h[np.searchsorted(alive, sel)]
            alive = sel
        keep_h = int(head_keep[li])
        if keep_h < heads.size:
            heads = h_imp.prune(heads, keep_h)
        n = alive.size

        def split(y: np.ndarray, n: int = n, heads: np.ndarray = heads) -> np.ndarray:
            return y.reshape(n, n_heads, dh).transpose(1, 0, 2)[heads]

        q = split(h @ lw.wq + lw.bq)
        k = split(h @ lw.wk + lw.bk)
        v = split(h @ lw.wv + lw.bv)
        if pol.quantize:
            pr = progressive_attention(q, k, msb=pol.k_msb, lsb=pol.k_lsb, threshold=pol.threshold,
                                       progressive=pol.progressive)
            probs, refetch, kbits = pr.probs, pr.refetch, pr.k_bits_fetched
            vq = quantize_dequantize(v, pol.v_bits)
        else:
            s = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
            s = s - s.max(axis=-1, keepdims=True)
            e = np.exp(s)
            probs, refetch, kbits = e / e.sum(axis=-1, keepdims=True), np.zeros(q.shape[:2], dtype=bool), 32.0
            vq = v
        t_imp.accumulate(probs, alive)
        vmask = local_v_keep(probs, pol.v_ratio) if pol.v_ratio > 0 else np.ones(probs.shape, dtype=bool)
        ctx = (probs * vmask) @ vq  # (alive heads, n, dh)
        h_imp.accumulate(ctx, heads)
        full = np.zeros((n_heads, n, dh))
        full[heads] = ctx  # pruned heads contribute nothing to the output projection
        attn = full.transpose(1, 0, 2).reshape(n, n_heads * dh)
        h = _layer_norm(h + attn @ lw.wo + lw.bo, lw.ln1_g, lw.ln1_b, enc.eps)
        h = _layer_norm(h + gelu(h @ lw.w1 + lw.b1) @ lw.w2 + lw.b2, lw.ln2_g, lw.ln2_b, enc.eps)
        run.layers.append(LayerStats(
            tokens=n, heads=int(heads.size), rows=int(refetch.size), refetch_rows=int(refetch.sum()),
            keys_fetched=int(heads.size * n), values_fetched=int(vmask.sum()), k_bits=float(kbits),
        ))
        if keep_probs:
            run.probs.append(probs)
    run.hidden, run.alive = h, alive
    return run


@dataclass(frozen=True)
class Accuracy:
    """Cosine similarity of the surviving tokens' final hidden states, pruned+quantized vs dense, and run stats."""

    cosine: float
    cosine_min: float
    tokens_kept: float
    heads_kept: float
    lsb_refetch_rate: float
    source: str
    sentences: int


def dense_runs(enc: Encoder, xs: list[np.ndarray]) -> list[GoldenRun]:
    """The dense float reference of every sentence, to share among several :func:`accuracy_proxy` calls."""
    return [forward(enc, x) for x in xs]


def accuracy_proxy(enc: Encoder, xs: list[np.ndarray], policy: Policy,
                   dense: list[GoldenRun] | None = None) -> Accuracy:
    """Mean (and worst) per-token cosine similarity over all sentences, plus the pruning and refetch statistics.
    ``dense``: the sentences' dense runs (:func:`dense_runs`) when the caller compares several policies."""
    cos: list[float] = []
    rows = ref_rows = 0
    tk: list[float] = []
    hk: list[float] = []
    refs = dense if dense is not None else dense_runs(enc, xs)
    if len(refs) != len(xs):
        raise ValueError(f"{len(refs)} dense runs for {len(xs)} sentences")
    for x, dense_run in zip(xs, refs, strict=True):
        pruned = forward(enc, x, policy)
        a = pruned.hidden
        b = dense_run.hidden[pruned.alive]
        c = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
        cos.extend(c.tolist())
        rows += sum(s.rows for s in pruned.layers)
        ref_rows += sum(s.refetch_rows for s in pruned.layers)
        tk.append(pruned.tokens_kept)
        hk.append(pruned.heads_kept)
    return Accuracy(
        cosine=float(np.mean(cos)), cosine_min=float(np.min(cos)), tokens_kept=float(np.mean(tk)),
        heads_kept=float(np.mean(hk)), lsb_refetch_rate=ref_rows / rows if rows else 0.0, source=enc.source,
        sentences=len(xs),
    )


def synthetic_refetch_rate(
    keys: int, *, d: int = 64, msb: int, lsb: int, threshold: float, rows: int = 96, max_keys: int = 4096, seed: int = 0
) -> float:
    """Fraction of query rows whose MSB-only max probability falls below ``threshold``, on seeded synthetic data.

    Used when no real data or trace fixes the rate. Q and K are unit normal; each of the 12 synthetic heads gets
    a temperature in [0.5, 4] (score std), the spread between broad and sharp heads of trained models, so rows range
    from flat to peaked. A head's keys at any length are the first ``keys`` of its one draw, so a longer context
    adds keys to the same rows (as a growing cache does) instead of drawing new ones: the rate moves smoothly with
    the length, not by the sampling noise of 96 fresh rows (+-3% of rows between neighbouring lengths, which showed
    as +-1.5% of cycles). Key lengths above ``max_keys`` are evaluated at ``max_keys`` (cost bound; longer rows are
    flatter, so this underestimates refetches there).
    """
    return _synthetic_refetch_rate(int(min(keys, max_keys)), d, msb, lsb, float(threshold), rows, seed)


#: synthetic heads of :func:`synthetic_refetch_rate`
_SYNTH_HEADS = 12


@lru_cache(maxsize=4096)
def _synthetic_refetch_rate(keys: int, d: int, msb: int, lsb: int, threshold: float, rows: int, seed: int) -> float:
    q, k_all = _synthetic_stream(seed, max(1, rows // _SYNTH_HEADS), d, max(4096, 1 << (max(1, keys) - 1).bit_length()))
    return float(np.mean(msb_refetch_rows(q, k_all[:, : max(1, keys)], msb=msb, lsb=lsb, threshold=threshold)))


@lru_cache(maxsize=4)
def _synthetic_stream(seed: int, per: int, d: int, max_keys: int) -> tuple[np.ndarray, np.ndarray]:
    """The seeded heads' queries and ``max_keys`` keys per head; a length's K is each head's first keys.

    Drawn once and cached: a generation run asks for a new key length at every step and layer, and drawing K
    afresh each time was half of `simulate --phase generate`'s time.
    """
    rng = np.random.default_rng(seed)
    temp = rng.uniform(0.5, 4.0, _SYNTH_HEADS)[:, None, None]
    q = rng.standard_normal((_SYNTH_HEADS, per, d)) * temp
    k = rng.standard_normal((_SYNTH_HEADS, max_keys, d))
    q.flags.writeable = k.flags.writeable = False
    return q, k
