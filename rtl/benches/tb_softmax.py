"""cocotb bench of the SpAtten fixed-point softmax against attnforge.sim.spatten.golden.softmax (bit-exact, exact cycles)."""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from tb_fx_common import bad_row_counts, fx_cfg, refusal_test, standard_tests
from tb_harness import run_jobs

from attnforge.sim.spatten.cycle_model import (
    bad_row,
    softmax_cycles,
    softmax_in_words,
    softmax_out_words,
    softmax_refused_row,
)
from attnforge.sim.spatten.golden import QueryJob, qk


def _row(scores: list[int], aq: int, ash: int) -> tuple[dict, dict, int]:
    cfg = fx_cfg()
    return ({"i": softmax_in_words(scores, aq, ash, cfg)}, {"o": softmax_out_words(scores, aq, ash, cfg)},
            softmax_cycles(len(scores), cfg))


def _job(j: QueryJob) -> tuple[dict, dict, int]:
    return _row(qk(j.q, j.k, fx_cfg()).tolist(), j.alpha_q, j.alpha_sh)


globals().update(standard_tests(_job, ["i"], ["o"], "i", "o"))  # workloads, random, stalls, reset
_setup = globals()["_setup"]


@cocotb.test()
async def test_corners(dut: Any) -> None:
    """All scores equal (uniform row), one score, one dominant score, widest score range, n % S != 0."""
    cfg = fx_cfg()
    hi = (1 << (cfg.score_bits - 2))
    rows = [[5] * cfg.max_n, [7], [0] * (cfg.s + 1) + [hi], [-hi, hi] * (cfg.s // 2 + 1), list(range(cfg.s * 2 + 1))]
    h = await _setup(dut)
    await run_jobs(h, "corners", [_row(r[:cfg.max_n], 1 << 15, 30) for r in rows], "i", "o", True)


def _refused_mix(seed: int) -> list:
    cfg, rng = fx_cfg(), np.random.default_rng(seed)
    pairs = []
    for counts in bad_row_counts(cfg):
        bad = softmax_refused_row(bad_row(counts, cfg, rng, cfg.score_bits - 2), 1 << 15, 30, cfg)
        n = int(rng.integers(1, cfg.max_n + 1))
        good = _row(rng.integers(-500, 500, n).tolist(), 1 << 15, 30)
        pairs.append((({"i": bad[0]}, {"o": bad[1]}, bad[2]), good))
    return pairs


test_refused_jobs = refusal_test(
    _setup, _refused_mix, "i", "o",
    "Rows that break the row rule are taken whole and answered by one error beat; the next row is exact.")
