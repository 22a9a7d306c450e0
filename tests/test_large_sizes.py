"""Sizes up to the Scenario's cap (2**30 tokens, batch 2**20): counts never wrap, results stay physical and
monotone, and the query-block and causal searches take closed forms instead of loops that grow with the length."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import attnforge
from attnforge.mappings.build import _causal_factor

LENGTHS = [1 << k for k in (20, 23, 24, 27, 30)]  # 1M .. 1G, past where int64 products used to wrap (16M)


@pytest.mark.parametrize("accel", ["unfused", "flat", "fusemax", "fusemax-top", "spatten", "spatten-1/8"])
def test_long_sequences_stay_physical_and_monotone(accel: str) -> None:
    res = attnforge.simulate(accelerator=accel, workload="bert-base", seq_lens=LENGTHS)
    for r in res:
        assert r.cycles > 0 and r.energy_j > 0 and r.dram_bytes > 0 and r.flops > 0
        assert all(0.0 <= u <= 1.0 for u in r.utilization.values())
        assert all(v >= 0 for v in r.energy_breakdown_j.values())
    assert all(b.cycles > a.cycles and b.energy_j > a.energy_j for a, b in zip(res, res[1:], strict=False))


def test_huge_batch_energy_stays_positive() -> None:
    r = attnforge.simulate(accelerator="flat", workload="bert-base", seq_lens=[1 << 20], batch=100_000)[0]
    one = attnforge.simulate(accelerator="flat", workload="bert-base", seq_lens=[1 << 20], batch=1)[0]
    assert r.energy_j > 0 and r.cycles == pytest.approx(100_000 * one.cycles, rel=1e-9)


def test_causal_billion_tokens_returns() -> None:
    """A per-query loop made this take minutes (34 s at 1e8 tokens); the closed form answers at once."""
    r = attnforge.simulate(accelerator="fusemax", workload="gpt2-small", seq_lens=[1 << 30], batch=1)[0]
    half = attnforge.simulate(accelerator="fusemax", workload="gpt2-small", seq_lens=[1 << 30], batch=1,
                              causal=False)[0]
    assert r.causal and 0 < r.flops < half.flops


def test_causal_billion_tokens_on_the_whole_accelerator_returns() -> None:
    """fusemax-top's small query blocks made the causal tile count an array of 2^30 / P0 blocks (3 GB, 9 s)."""
    r = attnforge.simulate(accelerator="fusemax-top", workload="gpt2-small", seq_lens=[1 << 30], batch=1)[0]
    assert r.causal and r.cycles > 0 and r.flops > 0


@given(st.integers(1, 4000), st.integers(-4000, 4000), st.integers(1, 300), st.integers(1, 300))
def test_causal_tile_count_equals_the_count_block_by_block(p: int, extra: int, p0: int, m0: int) -> None:
    """The floor-sum closed form against the count it replaced: block i of P0 queries reaches key
    min(M, i P0 + M - P), i.e. that many keys over M0 rounded up, at most all TM key tiles (more queries than
    keys included, where the first blocks' reach is negative)."""
    m = max(1, p + extra)
    tp, tm = -(-p // p0), -(-m // m0)
    reach = np.minimum(m, np.arange(1, tp + 1, dtype=np.int64) * p0 + (m - p))
    assert _causal_factor(p, m, p0, m0)[0] == int(np.minimum(tm, -(-reach // m0)).sum()) / (tp * tm)
