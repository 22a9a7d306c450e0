"""cocotb bench of the SpAtten Q x K unit against attnforge.sim.spatten.golden.qk (bit-exact scores, exact cycles)."""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from tb_fx_common import fx_cfg, head_dims, random_job, refusal_then_good, standard_tests
from tb_harness import config, run_jobs

from attnforge.sim.spatten.cycle_model import k_beats, qk_cycles, qk_q_beat, qk_refused_job, row_words
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


def _bad_jobs() -> list[tuple[int, int]]:
    """(n, log2 D) of jobs the tree refuses: no keys, more than max_n, D below min_d or above max_d."""
    cfg = fx_cfg()
    lo, hi = cfg.min_d.bit_length() - 1, cfg.max_d.bit_length() - 1
    n_big = min((1 << cfg.n_bits) - 1, cfg.max_n + 1)
    out = [(0, lo), (n_big, hi), (0, hi)]
    if lo > 0:
        out.append((3, lo - 1))
    if hi + 1 < 1 << cfg.dlog_bits:
        out.append((3, hi + 1))
    return [(n, d) for n, d in out if n != cfg.max_n]


def _refused_mix(seed: int) -> list:
    """Every refused job, each followed by a good one; cycles from the q handshake (a good job's keys start the
    cycle after its q beat, so its model cycles are qk_cycles + 1)."""
    cfg, rng = fx_cfg(), np.random.default_rng(seed)
    pairs = []
    for n, dl in _bad_jobs():
        q, s, cyc = qk_refused_job(n, dl, cfg)
        feeds, expect, good = _job(random_job(rng, cfg))
        pairs.append((({"q": [q]}, {"s": s}, cyc), (feeds, expect, good + 1)))
    return pairs


@cocotb.test()
async def test_refused_jobs(dut: Any) -> None:
    """Refused jobs are answered by one error beat and leave the unit idle: the next job is exact; then the same
    mix under random gaps and back-pressure."""
    h = await _setup(dut)
    await refusal_then_good(h, "refused", _refused_mix(config()["seed"] + 11), "q", "s", True)
    h2 = await _setup(dut, 0.6, 0.5)
    await refusal_then_good(h2, "refused-stalls", _refused_mix(config()["seed"] + 12), "q", "s", False)
