"""Golden model of the SpAtten algorithm on seeded synthetic tensors: schedule, cascade, importance, quantization."""

import numpy as np
import pytest

from attnforge.sim.spatten.algorithm import accuracy_proxy, dense_runs, forward, synthetic_refetch_rate
from attnforge.sim.spatten.pruning import TokenImportance, kept_counts, layer_ratios
from attnforge.sim.spatten.quant import msb_only, progressive_attention, quantize
from attnforge.sim.spatten.realdata import synthetic_inputs
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.spatten_policy import BERT, GPT2, Policy, parse_setting


def test_layer_schedule_unpruned_prefix_and_average():
    r = layer_ratios(12, 0.6, 0.15)
    assert (r[:2] == 0).all() and (r[2:] > 0).all()
    assert np.isclose(r[2:].mean(), 0.6)
    assert np.isclose(r[2] + r[-1], 1.2) and np.all(np.diff(r[2:]) >= 0)
    h = layer_ratios(12, 0.3, 0.30)
    assert (h[:4] == 0).all() and np.isclose(h[4:].mean(), 0.3)
    assert kept_counts(1024, np.array([0.1, 0.3])).ravel().tolist() == [921, 716]


@pytest.mark.parametrize("field,kw", [("token_ratio", {"token_ratio": 1.0}), ("head_ratio", {"head_ratio": -0.1}),
                                      ("v_ratio", {"v_ratio": 1.5}), ("threshold", {"threshold": 0.0}),
                                      ("threshold", {"threshold": 1.01})])
def test_bad_policy_values(field, kw):
    with pytest.raises(SpecError, match=field):
        Policy(**kw)


def test_bad_quant_setting():
    with pytest.raises(SpecError):
        parse_setting("5+4")
    with pytest.raises(SpecError):
        Policy(quantize=True, progressive=True, k_msb=7)
    assert parse_setting("6+4") == (6, 4) and parse_setting("8") == (8, 0)


def test_importance_accumulates_across_steps():
    imp = TokenImportance(4)
    alive = np.arange(4)
    imp.accumulate(np.array([[[0.7, 0.1, 0.1, 0.1]]]), alive)  # generation step 1
    imp.accumulate(np.array([[[0.1, 0.1, 0.1, 0.7]]]), alive)  # step 2
    assert np.allclose(imp.scores, [0.8, 0.2, 0.2, 0.8])
    assert imp.prune(alive, 2).tolist() == [0, 3]


def test_msb_only_truncates_low_bits():
    codes, _ = quantize(np.array([0.5, -0.26, 1.0]), 10)
    m = msb_only(codes, 4)
    assert (m % 16 == 0).all() and (np.abs(codes - m) < 16).all()


def test_progressive_refetches_flat_rows_only():
    rng = np.random.default_rng(0)
    k = rng.standard_normal((64, 64))
    q_flat = rng.standard_normal((4, 64)) * 0.01
    q_sharp = k[:4] * 3.0
    r = progressive_attention(np.vstack([q_flat, q_sharp]), k, msb=6, threshold=0.1)
    assert r.refetch.tolist() == [True] * 4 + [False] * 4
    assert r.lsb_refetch_rate == 0.5 and r.k_bits_fetched == 6 + 4 * 0.5
    assert np.allclose(r.probs.sum(axis=-1), 1.0)


def test_cascade_forward_on_synthetic_encoder():
    enc, xs = synthetic_inputs(lengths=(40,), seed=3)
    dense = forward(enc, xs[0])
    assert dense.alive.size == 40 and dense.lsb_refetch_rate == 0.0
    pol = Policy(token_ratio=0.5, head_ratio=0.4, v_ratio=0.5, quantize=True, k_msb=6, v_bits=8, progressive=True)
    run = forward(enc, xs[0], pol)
    toks = [s.tokens for s in run.layers]
    heads = [s.heads for s in run.layers]
    assert toks[0] == 40 and all(a >= b for a, b in zip(toks, toks[1:], strict=False)) and toks[-1] < 40  # cascade
    assert heads[:2] == [12, 12] and heads[-1] < 12
    assert set(run.alive.tolist()) <= set(range(40))
    first = run.layers[0]
    assert first.values_fetched == first.heads * 40 * 20  # local V keeps half of every row


def test_accuracy_proxy_drops_with_pruning():
    enc, xs = synthetic_inputs(lengths=(24, 32), seed=1)
    dense = dense_runs(enc, xs)
    mild = accuracy_proxy(enc, xs, BERT.with_(token_ratio=0.1, head_ratio=0.0), dense)
    hard = accuracy_proxy(enc, xs, GPT2.with_(token_ratio=0.8, head_ratio=0.5), dense)
    assert 0.5 < hard.cosine < mild.cosine <= 1.0 + 1e-9
    assert hard.tokens_kept < mild.tokens_kept
    # the shared dense runs are the ones each call would make itself
    assert accuracy_proxy(enc, xs, GPT2.with_(token_ratio=0.8, head_ratio=0.5)) == hard
    with pytest.raises(ValueError, match="dense runs"):
        accuracy_proxy(enc, xs, BERT, dense[:1])


def test_synthetic_refetch_rate_in_range_and_monotone_in_threshold():
    lo = synthetic_refetch_rate(256, msb=6, lsb=4, threshold=0.02)
    hi = synthetic_refetch_rate(256, msb=6, lsb=4, threshold=0.3)
    assert 0.0 <= lo < hi <= 1.0


@pytest.mark.parametrize("keys", [1, 65, 993, 4096])
def test_synthetic_refetch_rate_is_progressive_attention_on_each_heads_first_keys(keys):
    """The rate reads each synthetic head's first ``keys`` keys of one cached draw (a generation run asks for a new
    length at every step, and a longer context adds keys to the same heads): it must equal progressive_attention
    on Q and those keys drawn directly."""
    rng = np.random.default_rng(0)
    temp = rng.uniform(0.5, 4.0, 12)[:, None, None]
    q = rng.standard_normal((12, 8, 64)) * temp
    k = rng.standard_normal((12, 4096, 64))[:, :keys]
    for msb, lsb, thr in ((6, 4, 0.05), (4, 4, 0.3), (8, 0, 0.9)):
        direct = progressive_attention(q, k, msb=msb, lsb=lsb, threshold=thr).lsb_refetch_rate
        assert synthetic_refetch_rate(keys, msb=msb, lsb=lsb, threshold=thr) == direct


def test_synthetic_refetch_rate_moves_smoothly_with_the_context():
    """A longer context adds keys to the same synthetic rows, so neighbouring lengths (16 keys apart) differ by at
    most two of the 96 rows; drawing each length afresh moved the rate by up to three rows (sampling noise that
    showed as +-1.5% of a GPT-2 sweep's cycles)."""
    ks = range(1024, 2049, 16)
    rates = np.array([synthetic_refetch_rate(k, msb=6, lsb=4, threshold=0.1) for k in ks])
    assert np.max(np.abs(np.diff(rates))) * 96 <= 2 + 1e-9
    assert rates[-1] > rates[0]  # longer rows are flatter

