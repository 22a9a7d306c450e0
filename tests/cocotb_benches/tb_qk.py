"""cocotb bench of the SpAtten Q x K unit against sim.spatten.fx.qk (bit-exact scores, exact cycles)."""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from tb_fx_common import fx_cfg, head_dims, jobs_for_case, random_job
from tb_harness import config, reset_midrun, run_jobs, setup_streams

from sim.spatten.fx import QueryJob, qk
from sim.spatten.fx_stream import k_beats, qk_cycles, qk_q_beat, row_words


def _job(j: QueryJob) -> tuple[dict, dict, int]:
    cfg = fx_cfg()
    return ({"q": [qk_q_beat(j.q, j.n, j.d, cfg)], "k": k_beats(j.k, cfg)},
            {"s": row_words(qk(j.q, j.k, cfg).tolist(), cfg.score_bits, cfg)}, qk_cycles(j.n, j.d, cfg))


async def _setup(dut: Any, p_valid: float = 1.0, p_ready: float = 1.0) -> Any:
    return await setup_streams(dut, config()["seed"], ["q", "k"], ["s"], p_valid, p_ready)


@cocotb.test()
async def test_workloads(dut: Any) -> None:
    h = await _setup(dut)
    await run_jobs(h, "+".join(config()["workloads"]), [_job(j) for j in jobs_for_case(config()["seed"])], "k", "s", True)


@cocotb.test()
async def test_random(dut: Any) -> None:
    rng = np.random.default_rng(config()["seed"] + 1)
    h = await _setup(dut)
    await run_jobs(h, "random", [_job(random_job(rng, fx_cfg())) for _ in range(12)], "k", "s", True)


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


@cocotb.test()
async def test_random_stalls(dut: Any) -> None:
    rng = np.random.default_rng(config()["seed"] + 2)
    h = await _setup(dut, 0.6, 0.5)
    await run_jobs(h, "random-stalls", [_job(random_job(rng, fx_cfg())) for _ in range(8)], "k", "s", False)


@cocotb.test()
async def test_reset_midrun(dut: Any) -> None:
    rng = np.random.default_rng(config()["seed"] + 3)
    jobs = [_job(random_job(rng, fx_cfg(), n=fx_cfg().max_n)) for _ in range(3)]
    h = await _setup(dut)
    await reset_midrun(h, jobs[0][0], 7, jobs[1:], "k", "s")
