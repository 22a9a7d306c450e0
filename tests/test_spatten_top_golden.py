"""The whole-accelerator golden (sim/spatten/top_golden.py): cascade pruning in fixed point, checked against the
numpy pruned model and the unpruned reference, and its descriptor checks (what the top refuses)."""

from __future__ import annotations

import numpy as np
import pytest

from attnforge.sim.contract.spatten_fx import SpattenFx
from attnforge.sim.spatten import algorithm
from attnforge.sim.spatten import top_golden as tg
from attnforge.sim.spatten.realdata import minilm_path, synthetic_inputs
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.spatten_policy import Policy

FX = SpattenFx(lanes=16, min_d=4, max_d=8, max_n=64)


def _small(seed: int = 0, length: int = 40) -> tuple:
    enc, xs = synthetic_inputs(layers=4, heads=4, d_model=32, d_ff=64, lengths=(length,), seed=seed)
    return enc, xs[0]


def test_unpruned_pass_tracks_dense_float():
    """Every token, head and V row kept, threshold 1.0 (every row refetches, so K is full 12-bit): the only
    difference from the float dense forward is 12-bit quantization, so the final states stay close."""
    enc, x = _small()
    n = x.shape[0]
    layers = [tg.LayerCfg(n, enc.heads, n, 1 << FX.prob_frac)] * len(enc.layers)
    run = tg.forward(enc, x, layers, FX)
    dense = algorithm.forward(enc, x).hidden
    rel = np.linalg.norm(run.hidden - dense) / np.linalg.norm(dense)
    assert rel < 0.02, rel
    assert all(lr.refetch.all() for lr in run.layers)


def test_cascade_matches_numpy_pruned_model():
    """Same schedule as the numpy pruned model: per-layer counts equal, token and head sets nested layer to layer
    (cascade), the same final tokens as the float model, and the final states close to it."""
    enc, x = _small(1)
    pol = Policy(token_ratio=0.4, head_ratio=0.4, v_ratio=0.3, threshold=0.1)
    sched = tg.schedule(pol, len(enc.layers), enc.heads, x.shape[0], FX)
    run = tg.forward(enc, x, sched, FX)
    assert [lr.alive.size for lr in run.layers] == [c.tokens for c in sched]
    assert [lr.heads.size for lr in run.layers] == [c.heads for c in sched]
    assert sched[-1].tokens < x.shape[0] and sched[-1].heads < enc.heads
    for a, b in zip(run.layers, run.layers[1:], strict=False):
        assert set(b.alive) <= set(a.alive) and set(b.heads) <= set(a.heads)
    cmp = tg.compare(run, enc, x, pol)
    assert cmp.counts_match and cmp.same_final_tokens
    assert cmp.rel_err_pruned < 0.05, cmp


def test_boundary_keeps_the_most_important():
    """The token and head top-k at a boundary keep exactly the largest accumulated importances (earliest on ties),
    whatever pivots the engine took; V rows kept per query are the kv largest probabilities."""
    enc, x = _small(2)
    pol = Policy(token_ratio=0.5, head_ratio=0.5, v_ratio=0.5)
    run = tg.forward(enc, x, tg.schedule(pol, len(enc.layers), enc.heads, x.shape[0], FX), FX)
    for prev, lr in zip(run.layers, run.layers[1:], strict=False):
        for imp, before, after in ((prev.token_imp, prev.alive, lr.alive), (prev.head_imp, prev.heads, lr.heads)):
            order = sorted(before.tolist(), key=lambda i: (-imp[i], i))[:after.size]
            assert sorted(order) == after.tolist()
    lr = run.layers[-1]
    assert all(len(rows) == lr.cfg.kv for head in lr.kept_v for rows in head)


def test_importance_is_cumulative():
    """Token importance only grows, layer after layer, and only at alive tokens; head importance likewise."""
    enc, x = _small(3)
    pol = Policy(token_ratio=0.4, head_ratio=0.3)
    run = tg.forward(enc, x, tg.schedule(pol, len(enc.layers), enc.heads, x.shape[0], FX), FX)
    prev_t, prev_h = np.zeros_like(run.layers[0].token_imp), np.zeros_like(run.layers[0].head_imp)
    for lr in run.layers:
        grew = np.flatnonzero(lr.token_imp != prev_t)
        assert set(grew) <= set(lr.alive) and (lr.token_imp >= prev_t).all()
        assert set(np.flatnonzero(lr.head_imp != prev_h)) <= set(lr.heads)
        prev_t, prev_h = lr.token_imp, lr.head_imp


@pytest.mark.parametrize(("field", "cfg", "tokens", "heads", "d"), [
    ("tokens", tg.LayerCfg(0, 4, 1, 0), 10, 4, 8),
    ("tokens", tg.LayerCfg(11, 4, 1, 0), 10, 4, 8),
    ("heads", tg.LayerCfg(10, 5, 1, 0), 10, 4, 8),
    ("kv", tg.LayerCfg(10, 4, 11, 0), 10, 4, 8),
    ("kv", tg.LayerCfg(10, 4, 0, 0), 10, 4, 8),
    ("n", tg.LayerCfg(10, 4, 1, 0), 0, 4, 8),
    ("n", tg.LayerCfg(10, 4, 1, 0), FX.max_n + 1, 4, 8),
    ("heads", tg.LayerCfg(10, 4, 1, 0), 10, 9, 8),
    ("d", tg.LayerCfg(10, 4, 1, 0), 10, 4, 6),
    ("d", tg.LayerCfg(10, 4, 1, 0), 10, 4, 16),
    ("threshold", tg.LayerCfg(10, 4, 1, (1 << FX.prob_frac) + 1), 10, 4, 8),
    ("queries", tg.LayerCfg(10, 4, 1, 0, queries=0), 10, 4, 8),
    ("queries", tg.LayerCfg(10, 4, 1, 0, queries=11), 10, 4, 8),
    ("tokens", tg.LayerCfg(1, 4, 1, 0, queries=1, keep_last=True), 10, 4, 8),  # only the newest kept
    ("tokens", tg.LayerCfg(1, 4, 1, 0, queries=1, restart=10), 0, 0, 8),
    ("n", tg.LayerCfg(4, 4, 1, 0, queries=1, restart=FX.max_n + 1), 0, 0, 8),
])
def test_bad_descriptors_refused(field, cfg, tokens, heads, d):
    with pytest.raises(SpecError) as e:
        tg.check_layer(cfg, tokens, heads, d, FX, max_heads=8)
    assert e.value.field == field


@pytest.mark.slow
@pytest.mark.skipif(minilm_path() is None, reason="needs the real extra (MiniLM)")
def test_minilm_long_text():
    """All 6 MiniLM layers on a >= 128-token text: the schedule's counts, the numpy pruned model's final tokens,
    close to it in float, and the errors against PyTorch's unpruned MiniLM measured (pruning dominates them)."""
    enc, x, ids = tg.text_input()
    assert x.shape[0] >= 128
    fx = SpattenFx(lanes=32, min_d=4, max_d=32, max_n=256)
    pol = Policy(token_ratio=0.3, head_ratio=0.2, v_ratio=0.3, threshold=0.1)
    run = tg.forward(enc, x, tg.schedule(pol, 6, enc.heads, x.shape[0], fx), fx)
    cmp = tg.compare(run, enc, x, pol, ids)
    assert cmp.counts_match and cmp.same_final_tokens and cmp.dense_source == "torch"
    assert cmp.rel_err_pruned < 0.05 and cmp.cos_dense > 0.5, cmp


def test_importance_matches_the_block_golden():
    """Replaying every query's adds through the importance block's golden gives the same accumulators layer after
    layer, and its read-out of the alive tokens (what the top wires into the top-k) picks the same survivors."""
    from attnforge.sim.contract import designs
    from attnforge.sim.contract.spatten_top import SpattenTopCfg
    from attnforge.sim.spatten import importance_golden as ig
    from attnforge.sim.spatten.topk_golden import hw_topk

    enc, x = _small(4, length=20)
    t = SpattenTopCfg(FX, max_heads=enc.heads, max_layers=len(enc.layers))
    pol = Policy(token_ratio=0.4, head_ratio=0.4, v_ratio=0.3)
    run = tg.forward(enc, x, tg.schedule(pol, len(enc.layers), enc.heads, x.shape[0], FX), FX)
    st = ig.ImportanceState(t.imp)
    lay = designs.topk(FX.s, t.imp.max_entries, t.imp.imp_bits, 0)["i"]
    for lr, nxt in zip(run.layers, [*run.layers[1:], None], strict=True):
        for hi, h in enumerate(lr.heads.tolist()):
            for p in range(lr.alive.size):
                st.run(ig.add_tokens(lr.alive.tolist(), lr.probs[hi, p].tolist()))
                st.run(ig.add_head(h, lr.out[hi, p].tolist()))
        assert st.tokens[:x.shape[0]].tolist() == lr.token_imp.tolist()
        assert st.heads.tolist() == lr.head_imp.tolist()
        if nxt is not None and nxt.token_topk is not None:
            beats = st.run(ig.read_tokens(lr.alive.tolist(), nxt.cfg.tokens)).o
            scores = [v for b in beats for v in lay.unpack(b)["scores"]][:lr.alive.size]
            assert lr.alive[hw_topk(scores, nxt.cfg.tokens, FX.s).indices].tolist() == nxt.alive.tolist()


def test_decode_step_one_query_per_head():
    """A generation step: one query per (layer, alive head), the newest alive token; importance only from those
    rows (token importance after layer 0 = the column sums over the heads' one probability row each); cascade
    counts as the descriptors say, token sets nested."""
    layers = [tg.LayerCfg(24, 4, 8, 205, queries=1), tg.LayerCfg(16, 3, 6, 205, queries=1),
              tg.LayerCfg(9, 2, 4, 205, queries=1)]
    run = tg.decode_step(layers, 4, 8, FX, seed=2)
    assert [(lr.alive.size, lr.heads.size) for lr in run.layers] == [(24, 4), (16, 3), (9, 2)]
    assert all(lr.out.shape[:2] == (lr.heads.size, 1) and lr.queries.tolist() == [23] for lr in run.layers)
    lr0 = run.layers[0]
    assert np.array_equal(lr0.token_imp, lr0.probs[:, 0].sum(axis=0))
    assert all(np.isin(b.alive, a.alive).all() for a, b in zip(run.layers, run.layers[1:], strict=False))


def test_iterations_carry_importance_and_keep_the_newest_token():
    """A second generation iteration restarts from its context (one token longer) with the importance of the
    first kept: its first layer keeps the newest token (the new query, no importance yet) and the top
    ``tokens - 1`` of the others by the carried importance; ``keep_last`` keeps it in the later layers too, so
    every layer's query is the newest token. Without the carry the importance would be zero and the top-k would
    keep the earliest tokens."""
    it0 = [tg.LayerCfg(20, 4, 8, 205, queries=1), tg.LayerCfg(12, 2, 6, 205, queries=1, keep_last=True)]
    it1 = [tg.LayerCfg(14, 4, 8, 205, queries=1, restart=21), tg.LayerCfg(9, 2, 5, 205, queries=1, keep_last=True)]
    run = tg.decode_steps([it0, it1], 4, 8, FX, seed=0)
    carried = run.layers[1].token_imp
    r0 = run.layers[2]
    want = tg.hw_topk(carried[:20].tolist(), 13, FX.s).indices
    assert r0.alive.tolist() == sorted(want) + [20] and r0.alive.tolist() != list(range(13)) + [20]
    assert [lr.queries.tolist() for lr in run.layers] == [[19], [19], [20], [20]]
    delta = np.zeros(carried.size, np.int64)  # the layer adds its queries' probabilities on top of the carry
    delta[r0.alive] = r0.probs[:, 0].sum(axis=0)
    assert np.array_equal(r0.token_imp, carried + delta) and carried[20] == 0 < r0.token_imp[20]
    with pytest.raises(SpecError, match="restart"):
        tg.decode_steps([it1], 4, 8, FX)


def test_iterations_share_each_layers_kv_cache():
    """Layer l of every iteration reads one K/V cache: the host writes a token's codes once (one scale per layer
    over the whole cache), so the memory image of three iterations is the size of one, each later iteration's rows
    the same words; a layout beyond the top's address bits is refused (the top's addresses would wrap)."""
    from attnforge.sim.contract.spatten_top import SpattenTopCfg

    it0 = [tg.LayerCfg(20, 4, 8, 205, queries=1), tg.LayerCfg(12, 2, 6, 205, queries=1, keep_last=True)]
    later = [[tg.LayerCfg(14, 4, 8, 205, queries=1, restart=20 + i),
              tg.LayerCfg(9, 2, 5, 205, queries=1, keep_last=True)] for i in (1, 2)]
    run = tg.decode_steps([it0, *later], 4, 8, FX, seed=0)
    for li in (0, 1):  # one scale and exponent constant per layer for all iterations, whatever is alive
        imgs = [lr.image for lr in run.layers[li::2]]
        assert len({(i.scale_q, i.scale_k, i.scale_v, i.alpha_q, i.alpha_sh) for i in imgs}) == 1
    t = SpattenTopCfg(fx=SpattenFx(lanes=8, min_d=4, max_d=8, max_n=64), max_heads=4, addr_bits=12)
    hw = tg.hw_run(run, t, 22, 4)
    assert len(hw.memory) == 2 * 4 * 4 * 22  # two layers' regions, not six
    with pytest.raises(SpecError, match="addr_bits"):
        tg.hw_run(run, SpattenTopCfg(fx=t.fx, max_heads=4, addr_bits=9), 22, 4)


def test_trace_layers_are_the_trace_counts():
    """GPT-2-Small WikiText-2, generation iteration 1: per layer the keys and V rows the trace fetched, 12 heads, one
    query, the trace's requant threshold 0.05 in Q0.prob_frac."""
    from importlib import resources

    path = resources.files("attnforge.workloads").joinpath("traces", "summary-gpt2-small-wikitext2-per8.csv")
    layers = tg.trace_layers(str(path), 1, FX)
    assert [lc.tokens for lc in layers] == [921, 716] + [204] * 4 + [102] * 6
    assert [lc.kv for lc in layers] == [184, 143] + [40] * 4 + [20] * 6
    assert {(lc.heads, lc.n_queries, lc.threshold) for lc in layers} == {(12, 1, round(0.05 * (1 << FX.prob_frac)))}
    with pytest.raises(SpecError):
        tg.trace_layers(str(path), 99, FX)
