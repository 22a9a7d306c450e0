"""The fixed-point golden model: rounding rules, exp/reciprocal units, overflow checks, error against float."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from attnforge.sim.fusemax.golden import (
    ERROR_BOUND_REL_VMAX,
    FixedPointConfig,
    FixedPointOverflow,
    attention_fx,
    check_width,
    dequantize_output,
    error_vs_float,
    exp2_neg,
    exp2_table,
    from_ints,
    quantize,
    quantize_attention,
    reciprocal,
    round_shift,
    vector1d,
    workload_head,
)


def test_round_shift_ties_go_up() -> None:
    assert round_shift(np.array([5, 6, 7, -5, -6, -7]), 1).tolist() == [3, 3, 4, -2, -3, -3]
    assert round_shift(np.array([3]), 0).tolist() == [3]


@given(st.integers(-(1 << 40), 1 << 40), st.integers(1, 20))
def test_round_shift_is_nearest(x: int, s: int) -> None:
    r = int(round_shift(x, s))
    assert abs(r * (1 << s) - x) <= (1 << (s - 1))
    assert r == math.floor(x / (1 << s) + 0.5)


def test_quantize_round_half_away_and_scale() -> None:
    q, s = quantize(np.array([-1.0, 0.5 / 127, -0.5 / 127, 1.0]))
    assert s == pytest.approx(1 / 127)
    assert q.tolist() == [-127, 1, -1, 127]
    z, s0 = quantize(np.zeros(3))
    assert s0 == 1.0 and z.tolist() == [0, 0, 0]


def test_exp2_table_and_unit_accuracy() -> None:
    lut = exp2_table(6, 15)
    assert lut[0] == 1 << 15 and len(lut) == 64
    t = np.arange(0, 64 * 20)
    got = exp2_neg(t, 6, 15) / 2**15
    ref = 2.0 ** (-t / 64)
    assert np.max(np.abs(got - ref)) <= 2**-15  # table rounding + shift rounding: under one LSB
    assert exp2_neg(np.array([64 * 16, 64 * 100]), 6, 15).tolist() == [0, 0]
    with pytest.raises(ValueError):
        exp2_neg(np.array([-1]), 6, 15)


def _restoring(d: int, rb: int, qw: int) -> int:
    """Bit-serial restoring division as the RTL does it, starting from the known remainder 2**(rb-qw)."""
    r, q = 1 << (rb - qw), 0
    for _ in range(qw):
        r <<= 1
        bit = int(r >= d)
        r -= d * bit
        q = (q << 1) | bit
    return q


@given(st.integers(1 << 15, (1 << 23) - 1))
def test_reciprocal_matches_restoring_divider(d: int) -> None:
    fx = FixedPointConfig(max_keys=256)
    assert int(reciprocal(np.array([d]), fx.rb, fx.qw, 1 << 15)[0]) == _restoring(d, fx.rb, fx.qw) == (1 << fx.rb) // d


def test_reciprocal_saturates_below_domain() -> None:
    fx = FixedPointConfig(max_keys=64)
    assert reciprocal(np.array([0, 100]), fx.rb, fx.qw, 1 << 15).tolist() == [(1 << fx.qw) - 1] * 2


def test_check_width_catches_overflow() -> None:
    check_width(np.array([-128, 127]), 8, True, "x")
    with pytest.raises(FixedPointOverflow):
        check_width(np.array([128]), 8, True, "x")
    with pytest.raises(FixedPointOverflow):
        check_width(np.array([-1]), 8, False, "x")


@pytest.mark.parametrize(("e", "rows", "m"), [(8, 4, 16), (16, 8, 64), (64, 4, 64), (8, 4, 256)])
def test_error_vs_float_within_bound(e: int, rows: int, m: int) -> None:
    fx = FixedPointConfig(e=e, f=e, rows=rows, max_keys=256)
    worst, rel = 0.0, []
    for seed in range(10):
        rng = np.random.default_rng(seed)
        q, k, v = (rng.standard_normal(s) * rng.uniform(0.3, 3) for s in ((8, e), (m, e), (m, e)))
        qa = quantize_attention(q, k, v, fx)
        out, _ = attention_fx(qa, fx)
        rep = error_vs_float(dequantize_output(out, qa, fx), q, k, v)
        assert rep.within_bound, rep
        worst = max(worst, rep.max_abs_rel_vmax)
        rel.append(rep.mean_rel)
    assert worst < ERROR_BOUND_REL_VMAX
    assert np.mean(rel) < 0.03


def test_arithmetic_error_alone_is_small() -> None:
    """Against float attention on the *dequantized* int8 inputs, only the exp/rounding/reciprocal error remains."""
    fx = FixedPointConfig(e=16, f=16, rows=4, max_keys=64)
    q, k, v = workload_head("bert-base", 8, 64, 16, 16)
    qa = quantize_attention(q, k, v, fx)
    out, _ = attention_fx(qa, fx)
    rep = error_vs_float(dequantize_output(out, qa, fx), qa.q * qa.scale_q, qa.k * qa.scale_k, qa.v * qa.scale_v)
    assert rep.max_abs_rel_vmax < 0.003


def test_extremes_do_not_overflow_and_equal_scores_average() -> None:
    fx = FixedPointConfig(e=8, f=8, rows=4, max_keys=64)
    for val in (-128, 127):
        q = np.full((4, 8), val)
        out, tr = attention_fx(from_ints(q, q.repeat(16, 0)[:64], np.full((64, 8), val), fx, 1.0), fx)
        assert (out == val << fx.out_frac).all()  # every weight equal: the average of a constant
    rng = np.random.default_rng(0)
    v = rng.integers(-128, 128, (16, 8))
    k = np.tile(rng.integers(-128, 128, (1, 8)), (16, 1))
    out, tr = attention_fx(from_ints(rng.integers(-128, 128, (4, 8)), k, v, fx), fx)
    assert (tr.rd == 16 << 15).all()
    assert np.abs(out / 2**fx.out_frac - v.mean(0)).max() < 2 / 2**fx.out_frac


def test_golden_rejects_overflowing_configuration() -> None:
    fx = FixedPointConfig(e=8, f=8, rows=4, max_keys=16)
    with pytest.raises(ValueError):
        attention_fx(from_ints(np.zeros((4, 8)), np.zeros((32, 8)), np.zeros((32, 8)), fx), fx)


def test_vector1d_ops() -> None:
    fx = FixedPointConfig(max_keys=256, rows=1)
    a, b = np.array([3, -7]), np.array([-2, 5])
    assert vector1d("max", a, b, 40, fx).tolist() == [3, 5]
    assert vector1d("add", a, b, 40, fx).tolist() == [1, -2]
    assert vector1d("mul", np.array([1 << 20, -3]), np.array([1 << 14, 1 << 14]), 40, fx).tolist() == [1 << 19, -1]
    assert vector1d("recip", np.array([1 << 15, -1]), np.zeros(2, np.int64), 40, fx).tolist() == [1 << (fx.rb - 15), 0]
    with pytest.raises(ValueError):
        vector1d("div", a, b, 40, fx)
