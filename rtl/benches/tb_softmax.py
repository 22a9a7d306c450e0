"""cocotb bench of the SpAtten fixed-point softmax against attnforge.sim.spatten.golden.softmax (bit-exact, exact cycles)."""

from __future__ import annotations

from typing import Any

import cocotb
from tb_fx_common import fx_cfg, standard_tests
from tb_harness import run_jobs

from attnforge.sim.spatten.cycle_model import softmax_cycles, softmax_in_words, softmax_out_words
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
