"""Bit-exact golden model of the whole SpAtten accelerator (``spatten-top``): a multi-layer pass with cascade token
and head pruning, local V pruning and progressive quantization, in the RTL's fixed point.

Why a whole pass and not per-query checks: cascade pruning makes every layer depend on the importance the earlier
layers accumulated *on chip* (integer sums of the probabilities the hardware computed), so the kept token and head
sets of layer l, and therefore every fetch and every cycle of layer l, are only right if layers 0..l-1 ran exactly
as the hardware runs them. SpAtten is an attention co-processor (paper Sec. II-B): the host runs the projections
and the FFN in float and hands the accelerator, per layer, the Q/K/V codes of the tokens and heads still alive;
the accelerator keeps the importance accumulators across layers and decides at each layer boundary which tokens
and heads survive (paper Fig. 8, Sec. III-A/B).

Per layer ``l`` with its :class:`LayerCfg` (data, as the RTL's layer descriptor carries it):

1. boundary: if ``tokens`` is below the alive count, token top-k over the cumulative token importance of the
   alive tokens (input order: ascending original position) keeps ``tokens`` of them; the same for heads with
   the head importance. Both through :func:`hw_topk` (the top-k engine: first-element pivots, earliest ties);
2. the host quantizes the layer's Q, K, V of the alive heads and tokens (one symmetric scale per tensor per
   layer, so one exponent constant ``alpha`` per layer descriptor);
3. every alive head, every query -- the last ``queries`` alive tokens: all of them in an encoder layer, the newest
   in a generation step -- (head by head, query by query as paper Sec. IV-A): the one-query pipeline
   :func:`attnforge.sim.spatten.golden.pipeline` with ``kv`` V rows kept (local V pruning) and the threshold;
4. token importance += the query's final probabilities (at the alive tokens' positions); head importance +=
   ``sum_f |out_f|`` of every output vector of the head (integer, unsigned).

The float sides (host projections, output projection, FFN) follow :mod:`attnforge.sim.spatten.algorithm`, so the
run can be compared with the numpy pruned model and with PyTorch's unpruned MiniLM (:func:`compare`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from attnforge.sim.contract.fixedpoint import quantize
from attnforge.sim.contract.spatten_fx import SpattenFx
from attnforge.sim.contract.spatten_top import SpattenTopCfg
from attnforge.sim.fusemax.golden import alpha_for
from attnforge.sim.spatten import algorithm
from attnforge.sim.spatten.golden import QueryJob, pipeline, split_k
from attnforge.sim.spatten.pruning import HEAD_UNPRUNED_FRACTION, TOKEN_UNPRUNED_FRACTION, kept_counts, layer_ratios
from attnforge.sim.spatten.realdata import Encoder, LayerWeights, _layer_norm, minilm_path, real_inputs
from attnforge.sim.spatten.topk_golden import HwTopK, hw_topk
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.spatten_policy import Policy

IntArray = np.ndarray
#: the host's float Q, K, V ([heads, tokens, d]) of a layer's alive tokens and heads
Tensors = Callable[[IntArray, IntArray], tuple[np.ndarray, ...]]

#: A real text of well over 128 MiniLM tokens (our own words) for whole-model runs.
LONG_TEXT = (
    "Attention accelerators spend most of their energy moving keys and values from memory, so the designers of "
    "SpAtten asked which of those bytes are really needed. Their answer has three parts. First, tokens that receive "
    "little attention in early layers rarely matter later, so a cumulative importance score is kept for every "
    "token, and at each layer boundary only the most important tokens survive; the others are never fetched "
    "again. Second, whole heads whose outputs stay small contribute little to the following projection, so heads "
    "are ranked by the magnitude of what they produce and the weakest are dropped. Third, keys are fetched with "
    "only their most significant bits first; when the resulting probabilities are flat, the least significant "
    "bits are fetched as well and the row is computed again. A quick-select engine finds the top entries in "
    "linear time, which keeps the pruning decisions off the critical path. Together these ideas cut memory "
    "traffic by an order of magnitude while the accuracy of the language model stays the same, as the authors "
    "show on many benchmarks of different lengths and tasks."
)


@dataclass(frozen=True)
class LayerCfg:
    """One layer descriptor: tokens and heads alive in the layer (after the boundary top-k), V rows kept per query
    (local V pruning), the LSB-refetch threshold (Q0.prob_frac) and the query rows: the last ``queries`` alive
    tokens (None: every alive token, an encoder layer; 1: a generation step, paper Sec. II-A)."""

    tokens: int
    heads: int
    kv: int
    threshold: int
    queries: int | None = None
    #: a later generation iteration's first layer (the descriptor's ``carry`` with ``first``): the context length
    #: the token list restarts from, the importance carried over; its newest token ctx-1 (the new query) is kept
    restart: int | None = None
    #: a later layer's ``carry``: the alive list's last token (the newest, a decoder's query) is kept beside the
    #: top ``tokens - 1`` of the others, whatever its importance
    keep_last: bool = False

    @property
    def carry(self) -> bool:
        """The descriptor's ``carry`` bit."""
        return self.restart is not None or self.keep_last

    @property
    def n_queries(self) -> int:
        return self.tokens if self.queries is None else self.queries


def check_layer(lc: LayerCfg, alive_tokens: int, alive_heads: int, d: int, fx: SpattenFx, max_heads: int) -> None:
    """The descriptor checks the hardware makes before it starts a layer (it answers a failing one with an error):
    k = 0, k above what is alive, sizes above the configured maxima, a head dimension the adder tree cannot tap."""
    fx.check_d(d)
    if lc.restart is not None:
        alive_tokens, alive_heads = lc.restart, lc.heads
    if lc.carry and lc.tokens == 1 and alive_tokens != 1:
        raise SpecError("tokens", "carry keeps the newest token and at least one other", "2..")
    if not 1 <= alive_tokens <= fx.max_n:
        raise SpecError("n", f"{alive_tokens} tokens outside 1..{fx.max_n}", f"1..{fx.max_n}")
    if not 1 <= alive_heads <= max_heads:
        raise SpecError("heads", f"{alive_heads} heads outside 1..{max_heads}", f"1..{max_heads}")
    for name, k, n in (("tokens", lc.tokens, alive_tokens), ("heads", lc.heads, alive_heads), ("kv", lc.kv, lc.tokens),
                       ("queries", lc.n_queries, lc.tokens)):
        if not 1 <= k <= n:
            raise SpecError(name, f"keep count {k} outside 1..{n}", f"1..{n}")
    if not 0 <= lc.threshold <= 1 << fx.prob_frac:
        raise SpecError("threshold", f"{lc.threshold} outside 0..{1 << fx.prob_frac} (Q0.{fx.prob_frac})")


def schedule(policy: Policy, n_layers: int, heads: int, length: int, fx: SpattenFx) -> list[LayerCfg]:
    """Layer descriptors for a policy, with exactly the kept counts of :func:`algorithm.forward` (the paper's
    schedule: first 15% of layers keep every token, 30% every head, linear ramp after; local V keeps
    ``floor(n (1 - v_ratio))`` of the layer's ``n`` tokens), so the two runs can be compared layer by layer."""
    tok = kept_counts(length, layer_ratios(n_layers, policy.token_ratio, TOKEN_UNPRUNED_FRACTION, "token_ratio"))
    hd = kept_counts(heads, layer_ratios(n_layers, policy.head_ratio, HEAD_UNPRUNED_FRACTION, "head_ratio"))
    thr = int(math.floor(policy.threshold * (1 << fx.prob_frac) + 0.5))
    out = []
    for t, h in zip(tok.tolist(), hd.tolist(), strict=True):
        kv = max(1, int(math.floor(t * (1.0 - policy.v_ratio) + 1e-9)))
        out.append(LayerCfg(int(t), int(h), kv, thr))
    return out


@dataclass(frozen=True)
class LayerImage:
    """What the host writes to memory for one layer: codes of the alive heads and tokens ([heads, tokens, d]),
    their scales and the layer's exponent constant."""

    q: IntArray
    k: IntArray
    v: IntArray
    alpha_q: int
    alpha_sh: int
    scale_q: float
    scale_k: float
    scale_v: float


def quantize_layer(q: np.ndarray, k: np.ndarray, v: np.ndarray, fx: SpattenFx) -> LayerImage:
    """One symmetric scale per tensor per layer (one ``alpha`` in the descriptor), 12-bit Q/K codes, V at v_bits."""
    qi, sq = quantize(q, fx.word_bits)
    ki, sk = quantize(k, fx.word_bits)
    vi, sv = quantize(v, fx.v_bits)
    aq, ash = alpha_for(sq, sk, q.shape[-1], fx.fx)
    return LayerImage(qi, ki, vi, aq, ash, sq, sk, sv)


@dataclass
class Importance:
    """The on-chip accumulators: cumulative token importance per original position, head importance per head."""

    tokens: IntArray
    heads: IntArray

    @classmethod
    def zeros(cls, n_tokens: int, n_heads: int) -> Importance:
        return cls(np.zeros(n_tokens, np.int64), np.zeros(n_heads, np.int64))

    def add_query(self, probs: IntArray, alive: IntArray, head: int, out: IntArray) -> None:
        """One query's contribution: its probabilities to the alive tokens, sum |out| to its head."""
        self.tokens[alive] += np.asarray(probs, np.int64)
        self.heads[head] += int(np.abs(np.asarray(out, np.int64)).sum())


@dataclass(frozen=True)
class LayerRun:
    """What one layer did on the accelerator."""

    cfg: LayerCfg
    alive: IntArray  #: original token positions alive in the layer (ascending)
    heads: IntArray  #: heads alive (ascending)
    token_topk: HwTopK | None  #: the boundary token top-k (None: nothing to prune)
    head_topk: HwTopK | None
    image: LayerImage
    out: IntArray  #: [heads, queries, d] attention outputs (out_frac fraction bits)
    refetch: IntArray  #: [heads, queries] bool: the query's row refetched LSBs
    max_p: IntArray  #: [heads, queries] first-pass max probability
    kept_v: list[list[list[int]]]  #: per head, per query: V rows fetched (indices into ``alive``)
    probs: IntArray  #: [heads, queries, tokens] final probabilities (what the importance block adds)
    token_imp: IntArray  #: token importance after the layer (original positions)
    head_imp: IntArray

    @property
    def queries(self) -> IntArray:
        """Original positions of the query rows: the last ``queries`` alive tokens."""
        return self.alive[self.alive.size - self.out.shape[1]:]


@dataclass
class TopRun:
    """A whole pass: per-layer runs, the final hidden states of the surviving tokens and their positions."""

    layers: list[LayerRun] = field(default_factory=list)
    hidden: np.ndarray | None = None
    alive: IntArray | None = None


def boundary(imp: Importance, alive: IntArray, heads: IntArray, lc: LayerCfg,
             comparators: int) -> tuple[IntArray, IntArray, HwTopK | None, HwTopK | None]:
    """The layer-boundary top-k runs: token importance of the alive tokens, head importance of the alive heads.
    A carried iteration (``lc.restart``) starts from the whole context; with ``carry`` (a restart, or a later
    layer's ``keep_last``) the list's last token, the newest (a decoder's query, whose importance may be far
    below the older tokens'), is kept beside the top ``tokens - 1`` of the others."""
    tk = hk = None
    if lc.restart is not None:
        alive, heads = np.arange(lc.restart), np.arange(lc.heads)
    if lc.carry and lc.tokens < alive.size:
        tk = hw_topk(imp.tokens[alive[:-1]].tolist(), lc.tokens - 1, comparators)
        alive = np.append(alive[:-1][tk.indices], alive[-1])
    elif lc.tokens < alive.size:
        tk = hw_topk(imp.tokens[alive].tolist(), lc.tokens, comparators)
        alive = alive[tk.indices]
    if lc.heads < heads.size:
        hk = hw_topk(imp.heads[heads].tolist(), lc.heads, comparators)
        heads = heads[hk.indices]
    return alive, heads, tk, hk


def attend(img: LayerImage, lc: LayerCfg, alive: IntArray, heads: IntArray, imp: Importance,
           fx: SpattenFx) -> tuple[IntArray, IntArray, IntArray, list[list[list[int]]], IntArray]:
    """Every alive head, every query row (the last ``queries`` alive tokens) through the one-query pipeline;
    importance updated as the hardware does (from the query rows only)."""
    nh, n, d = img.q.shape
    nq = lc.n_queries
    out = np.zeros((nh, nq, d), np.int64)
    refetch = np.zeros((nh, nq), bool)
    max_p = np.zeros((nh, nq), np.int64)
    probs = np.zeros((nh, nq, n), np.int64)
    kept: list[list[list[int]]] = []
    for hi in range(nh):
        kept.append([])
        for p in range(nq):
            job = QueryJob(img.q[hi, n - nq + p], img.k[hi], img.v[hi], lc.kv, lc.threshold, img.alpha_q,
                           img.alpha_sh)
            r = pipeline(job, fx)
            out[hi, p], refetch[hi, p], max_p[hi, p], probs[hi, p] = r.out, r.refetch, r.max_prob, r.probs
            kept[hi].append(r.kept)
            imp.add_query(r.probs, alive, int(heads[hi]), r.out)
    return out, refetch, max_p, kept, probs


def _host_tail(h: np.ndarray, ctx: np.ndarray, heads: IntArray, lw: LayerWeights, enc: Encoder) -> np.ndarray:
    """The host's float work after attention: pruned heads contribute zeros, output projection, FFN."""
    n, dh = h.shape[0], enc.d_head
    full = np.zeros((enc.heads, n, dh))
    full[heads] = ctx
    attn = full.transpose(1, 0, 2).reshape(n, enc.heads * dh)
    h = _layer_norm(h + attn @ lw.wo + lw.bo, lw.ln1_g, lw.ln1_b, enc.eps)
    return _layer_norm(h + algorithm.gelu(h @ lw.w1 + lw.b1) @ lw.w2 + lw.b2, lw.ln2_g, lw.ln2_b, enc.eps)


def run_layer(imp: Importance, alive: IntArray, heads: IntArray, lc: LayerCfg, tensors: Tensors,
              fx: SpattenFx, image: Callable[[IntArray, IntArray], LayerImage] | None = None) -> LayerRun:
    """One descriptor on the accelerator: the boundary top-k, the host's quantization of the kept rows
    (``tensors(alive, heads)`` gives the float Q, K, V as [heads, tokens, d]; ``image(alive, heads)``, where given,
    the codes the host wrote earlier), the query rows' attention."""
    alive, heads, tk, hk = boundary(imp, alive, heads, lc, fx.s)
    img = image(alive, heads) if image else quantize_layer(*tensors(alive, heads), fx)
    out, refetch, max_p, kept, probs = attend(img, lc, alive, heads, imp, fx)
    return LayerRun(lc, alive, heads, tk, hk, img, out, refetch, max_p, kept, probs, imp.tokens.copy(),
                    imp.heads.copy())


def forward(enc: Encoder, x: np.ndarray, layers: list[LayerCfg], fx: SpattenFx, d: int | None = None) -> TopRun:
    """Run the encoder on one embedded sentence with the accelerator doing attention (``d``: head dimension the
    accelerator sees; the first ``d`` channels of each head when below the model's, for small test instances)."""
    if len(layers) != len(enc.layers):
        raise SpecError("layers", f"{len(layers)} descriptors for a {len(enc.layers)}-layer model")
    dh = enc.d_head
    d = dh if d is None else d
    h = np.asarray(x, np.float64)
    alive, heads = np.arange(h.shape[0]), np.arange(enc.heads)
    imp = Importance.zeros(h.shape[0], enc.heads)
    run = TopRun()
    for lc, lw in zip(layers, enc.layers, strict=True):
        check_layer(lc, alive.size, heads.size, d, fx, enc.heads)

        def tensors(sel: IntArray, hs: IntArray, h: np.ndarray = h, alive: IntArray = alive,
                    lw: LayerWeights = lw) -> tuple[np.ndarray, ...]:
            x = h[np.searchsorted(alive, sel)]
            return tuple((x @ w + b).reshape(sel.size, enc.heads, dh).transpose(1, 0, 2)[hs][..., :d]
                         for w, b in ((lw.wq, lw.bq), (lw.wk, lw.bk), (lw.wv, lw.bv)))

        lr = run_layer(imp, alive, heads, lc, tensors, fx)
        h, alive, heads = h[np.searchsorted(alive, lr.alive)], lr.alive, lr.heads
        ctx = np.zeros((heads.size, alive.size, dh))
        ctx[..., :d] = lr.out * lr.image.scale_v / (1 << fx.out_frac)
        h = _host_tail(h, ctx, heads, lw, enc)
        run.layers.append(lr)
    run.hidden, run.alive = h, alive
    return run


def decode_step(layers: list[LayerCfg], heads: int, d: int, fx: SpattenFx, seed: int = 0,
                salience: float = 1.5, sharpness: float = 1.5) -> TopRun:
    """One generation step (one query per head: ``queries = 1`` in every descriptor) of a decoder whose K/V cache
    holds ``layers[0].tokens`` alive tokens, the newest last, on seeded tensors (no model weights): per layer and
    head K, V ~ N(0, 1) and the query ``sharpness`` x N(0, 1); every K row also carries ``salience`` x z_t along a
    per-head direction the query leans to, z_t ~ N(0, 1) one per token for the whole model -- so some tokens are
    attended in every layer, as the paper's cumulative importance presumes (Sec. III-A) -- and the newest token
    the most salient (a decoder's query attends to its own token), so it stays alive and stays the query (the top
    takes the last alive token). The first descriptor clears the importance (the top's ``first``), so the cascade
    pruning of layers 1.. ranks tokens by what this step's queries attended."""
    return decode_steps([layers], heads, d, fx, seed, salience, sharpness)


def decode_steps(iterations: list[list[LayerCfg]], heads: int, d: int, fx: SpattenFx, seed: int = 0,
                 salience: float = 1.5, sharpness: float = 1.5) -> TopRun:
    """Several generation iterations, one after the other, with the importance carried across them (GPT-2's
    scores accumulate over iterations, paper Sec. III-A): the first iteration as :func:`decode_step`; each later
    one starts from its context (``restart`` of its first descriptor, the top's ``carry``: the newest token, the
    new query, kept beside the top ``tokens - 1`` of the others by the importance accumulated so far), then prunes
    in cascade. Layer ``l`` of every iteration reads one K/V cache (the same seeded rows per token), and every
    generated token is the most salient, as the newest token of :func:`decode_step` is."""
    if iterations[0][0].restart is not None:
        raise SpecError("restart", "the first iteration starts from a cleared importance (no restart)")
    for it in iterations[1:]:
        if it[0].restart is None:
            raise SpecError("restart", "every later iteration's first descriptor restarts from its context")
    n0 = iterations[0][0].tokens
    n = max([n0] + [it[0].restart for it in iterations[1:]])  # type: ignore[list-item]
    z = np.random.default_rng([seed, 1 << 20]).standard_normal(n)
    z[n0 - 1:] = z.max() + 1.0
    alive, hs = np.arange(n0), np.arange(heads)
    imp = Importance.zeros(n, heads)
    run = TopRun()
    caches: dict[int, tuple[tuple[np.ndarray, ...], LayerImage]] = {}
    for layers in iterations:
        for li, lc in enumerate(layers):
            check_layer(lc, alive.size, hs.size, d, fx, heads)
            if li not in caches:
                caches[li] = _decoder_layer(np.random.default_rng([seed, li]), z, heads, d, fx, salience, sharpness)
            (q, k, v), full = caches[li]

            def tensors(sel: IntArray, sh: IntArray, q: np.ndarray = q, k: np.ndarray = k,
                        v: np.ndarray = v) -> tuple[np.ndarray, ...]:
                return tuple(a[sh][:, sel] for a in (q, k, v))

            def image(sel: IntArray, sh: IntArray, full: LayerImage = full) -> LayerImage:
                return dataclasses.replace(full, q=full.q[sh][:, sel], k=full.k[sh][:, sel], v=full.v[sh][:, sel])

            lr = run_layer(imp, alive, hs, lc, tensors, fx, image)
            alive, hs = lr.alive, lr.heads
            run.layers.append(lr)
    run.alive = alive
    return run


def _decoder_layer(rng: np.random.Generator, z: np.ndarray, heads: int, d: int, fx: SpattenFx, salience: float,
                   sharpness: float) -> tuple[tuple[np.ndarray, ...], LayerImage]:
    """One decoder layer's seeded Q, K, V for every token of the context ([heads, n, d], :func:`decode_steps`) and
    their codes as the host writes them into the layer's K/V cache: one scale per tensor over the whole cache,
    each token's rows written once and read by every later iteration (a scale over the alive rows alone would
    rewrite the cache whenever pruning changed the maximum)."""
    n = z.size
    u = rng.standard_normal((heads, 1, d))
    u /= np.linalg.norm(u, axis=-1, keepdims=True)
    k = rng.standard_normal((heads, n, d)) + salience * z[None, :, None] * u
    v = rng.standard_normal((heads, n, d))
    q = sharpness * rng.standard_normal((heads, n, d)) + sharpness * np.sqrt(d) / 4 * u
    return (q, k, v), quantize_layer(q, k, v, fx)


# ---------------------------------------------------------------- float comparisons


@dataclass(frozen=True)
class Comparison:
    """Errors of the accelerator's pass (fixed-point attention, float host) on the surviving tokens' final hidden
    states: against the numpy pruned model (same schedule, float attention) and the unpruned reference (PyTorch's
    MiniLM when the ``real`` extra and torch are present, else the numpy dense forward, which matches it)."""

    rel_err_pruned: float
    cos_pruned: float
    rel_err_dense: float
    cos_dense: float
    dense_source: str
    same_final_tokens: bool  #: the numpy pruned model kept the same final token set
    counts_match: bool  #: per-layer token and head counts equal the numpy model's


def _errors(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    rel = float(np.linalg.norm(a - b) / np.linalg.norm(b))
    cos = float(np.mean(np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))))
    return rel, cos


def torch_dense(ids: list[int]) -> np.ndarray | None:
    """PyTorch's unpruned MiniLM (HF transformers, eager attention) on token ids; None without torch or the extra."""
    path = minilm_path()
    try:
        import torch  # type: ignore[import-not-found]
        import transformers  # type: ignore[import-not-found]
    except ImportError:
        return None
    if path is None:
        return None
    model = transformers.AutoModel.from_pretrained(str(path), attn_implementation="eager").eval()
    with torch.no_grad():
        return model(torch.tensor([ids])).last_hidden_state[0].double().numpy()


def compare(run: TopRun, enc: Encoder, x: np.ndarray, policy: Policy, ids: list[int] | None = None) -> Comparison:
    """The run against the numpy pruned model (``policy`` with float attention) and the unpruned reference."""
    assert run.hidden is not None and run.alive is not None
    pruned = algorithm.forward(enc, x, policy.with_(quantize=False))
    rel_p, cos_p = _errors(run.hidden, pruned.hidden) if np.array_equal(pruned.alive, run.alive) else \
        _errors(run.hidden[np.isin(run.alive, pruned.alive)], pruned.hidden[np.isin(pruned.alive, run.alive)])
    dense = torch_dense(ids) if ids is not None and enc.real else None
    source = "torch" if dense is not None else "numpy"
    if dense is None:
        dense = algorithm.forward(enc, x).hidden
    rel_d, cos_d = _errors(run.hidden, dense[run.alive])
    counts = all(a.tokens == lr.alive.size and a.heads == lr.heads.size
                 for a, lr in zip(pruned.layers, run.layers, strict=True))
    return Comparison(rel_p, cos_p, rel_d, cos_d, source, bool(np.array_equal(pruned.alive, run.alive)), counts)


def text_input(text: str = LONG_TEXT) -> tuple[Encoder, np.ndarray, list[int]]:
    """MiniLM, one embedded text and its token ids (needs the ``real`` extra)."""
    enc, xs = real_inputs((text,))
    from tokenizers import Tokenizer  # type: ignore[import-not-found]

    path = minilm_path()
    assert path is not None
    ids = Tokenizer.from_file(str(path / "tokenizer.json")).encode(text).ids
    return enc, xs[0], list(ids)


# ---------------------------------------------------------------- the RTL's view of a run


@dataclass(frozen=True)
class HwRun:
    """What the ``spatten-top`` bench needs: descriptor beats, the memory image (word i at address i), and the
    expected ``o`` and ``r`` beats (:func:`attnforge.sim.contract.designs.spatten_top`)."""

    desc: list[int]
    memory: list[int]
    o: list[int]
    r: list[int]


def _layer_slots(run: TopRun) -> list[int]:
    """Each layer's position in its generation iteration (a carried iteration's first layer restarts at 0)."""
    out: list[int] = []
    for li, lr in enumerate(run.layers):
        out.append(0 if li == 0 or lr.cfg.restart is not None else out[-1] + 1)
    return out


def hw_run(run: TopRun, t: SpattenTopCfg, length: int, heads: int, junk: int | None = None) -> HwRun:
    """Lay a golden run out as the host would: per layer four regions (Q, K MSB, K LSB, V) of ``heads x length``
    rows, row ``head * length + token``; rows of pruned tokens and heads stay zero (never fetched). Layer ``l`` of
    every generation iteration reads the same regions (one K/V cache per layer, as a decoder keeps it: the rows of
    a token are the same in every iteration, :func:`decode_steps`, which is checked here), so the image does not
    grow with the iterations; a layout beyond the top's ``addr_bits`` is refused (the addresses would wrap). A head
    dimension D below ``max_d`` fills lanes 0..D-1 of each row; ``junk`` (a seed) fills the lanes above with random
    codes instead of zeros, which the top must ignore (its outputs' upper lanes are zero either way)."""
    from attnforge.sim.contract import designs

    c, fx = designs.spatten_top(t), t.fx
    region = heads * length
    slots = _layer_slots(run)
    size = (max(slots) + 1) * 4 * region
    if size > 1 << t.addr_bits:
        raise SpecError("addr_bits", f"{max(slots) + 1} layers x 4 regions x {heads} heads x {length} rows are "
                        f"{size} rows, beyond the {1 << t.addr_bits} the top's {t.addr_bits} address bits reach")
    mem = [0] * size
    rng = None if junk is None else np.random.default_rng([junk, 7])

    def row(word: str, vals: list[int]) -> int:
        lay = c.words[word]
        if rng is not None and len(vals) < lay.count:
            vals = vals + rng.integers(0, 1 << lay.elem.width, lay.count - len(vals)).tolist()
        return lay.pack(vals)

    desc, outs, ans = [], [], []
    for li, lr in enumerate(run.layers):
        base = slots[li] * 4 * region
        img = lr.image
        msb, lsb = split_k(img.k, fx)
        rows = (("q_row", img.q), ("k_msb_row", msb), ("k_lsb_row", lsb), ("v_row", img.v))
        for hi, h in enumerate(lr.heads.tolist()):
            for pi, tok in enumerate(lr.alive.tolist()):
                for r, (word, arr) in enumerate(rows):
                    at = base + r * region + h * length + tok
                    val = row(word, arr[hi, pi].tolist())
                    if mem[at] and mem[at] != val and junk is None:
                        raise AssertionError(f"layer {li}: row {at} differs from an earlier iteration's")
                    mem[at] = mem[at] or val
            for qi, tok in enumerate(lr.queries.tolist()):
                outs.append(c["o"].pack({"out": lr.out[hi, qi].tolist(), "head": h, "token": tok,
                                         "refetch": int(lr.refetch[hi, qi]), "max_p": int(lr.max_p[hi, qi])}))
        lc = lr.cfg
        first = li == 0 or lc.restart is not None
        desc.append(c["desc"].pack({
            "first": int(first), "carry": int(lc.carry),
            "ctx": lc.restart if lc.restart is not None else (lc.tokens if first else 0), "tokens": lc.tokens,
            "queries": lc.n_queries, "heads": lc.heads, "kv": lc.kv,
            "thr": lc.threshold,
            "alpha": {"alpha_q": img.alpha_q, "alpha_sh": img.alpha_sh}, "dlog": img.q.shape[-1].bit_length() - 1,
            "stride": length, "q_base": base, "k_base": base + region, "l_base": base + 2 * region,
            "v_base": base + 3 * region}))
        ans.append(c["r"].pack({"err": 0, "tokens": lc.tokens, "heads": lc.heads}))
    return HwRun(desc, mem, outs, ans)


# ---------------------------------------------------------------- a generation step replayed from a SpAtten trace


def trace_layers(path: str, iteration: int, fx: SpattenFx) -> list[LayerCfg]:
    """Descriptors of one generation iteration of a SpAtten trace (one row per layer and head): per layer the
    trace's keys fetched (tokens alive), heads with a row, V rows fetched and the requant threshold; one query.
    The trace fixes only the counts; which tokens survive is the top's own top-k on its accumulated importance."""
    from attnforge.sim.spatten.trace import load_trace

    rows = load_trace(path).rows
    it = rows[rows["iteration_id"].astype(int) == iteration]
    if it.empty:
        raise SpecError("iteration", f"no rows for iteration {iteration} in {path}")
    out = []
    for layer, g in it.groupby("layer_id", sort=True):
        if g["key_fetch_num"].nunique() != 1 or g["value_fetch_num"].nunique() != 1:
            raise SpecError("trace", f"layer {layer}: heads of one layer fetch different counts (per-head pruning)")
        thr = int(math.floor(float(g["auto_requant_thres"].iloc[0]) * (1 << fx.prob_frac) + 0.5))
        out.append(LayerCfg(int(g["key_fetch_num"].iloc[0]), int(g["head_id"].nunique()),
                            int(g["value_fetch_num"].iloc[0]), thr, queries=1))
    return out
