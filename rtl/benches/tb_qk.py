"""cocotb bench of the SpAtten Q x K unit against attnforge.sim.spatten.golden.qk (bit-exact scores, exact cycles)."""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from tb_fx_common import fx_cfg, head_dims, random_job, standard_tests
from tb_harness import run_jobs

from attnforge.sim.spatten.cycle_model import k_beats, qk_cycles, qk_q_beat, row_words
from attnforge.sim.spatten.golden import QueryJob, qk


def _job(j: QueryJob) -> tuple[dict, dict, int]:
    cfg = fx_cfg()
    return ({"q": [qk_q_beat(j.q, j.n, j.d, cfg)], "k": k_beats(j.k, cfg)},
            {"s": row_words(qk(j.q, j.k, cfg).tolist(), cfg.score_bits, cfg)}, qk_cycles(j.n, j.d, cfg))


globals().update(standard_tests(_job, ["q", "k"], ["s"], "k", "s"))  # workloads, random, stalls, reset
_setup = globals()["_setup"]


@cocotb.test()
async def test_corners(dut: Any) -> None:
    """One key, a full row, n not a multiple of the keys per beat, extreme operands (largest |score|)."""
    cfg, rng = fx_cfg(), np.random.default_rng(3)
    jobs = []
    for d in head_dims(cfg):
        for n in (1, cfg.max_n, max(1, cfg.keys_per_beat(d) + 1), max(1, cfg.s - 1)):
            j = random_job(rng, cfg, n=min(n, cfg.max_n), d=d)
            jobs.append(j)
        lo = -(1 << (cfg.word_bits - 1))
        jobs.append(QueryJob(np.full(d, lo), np.full((3, d), lo), np.zeros((3, d), np.int64), 1, 0, 1 << 15, 30))
    h = await _setup(dut)
    await run_jobs(h, "corners", [_job(j) for j in jobs], "k", "s", True)
