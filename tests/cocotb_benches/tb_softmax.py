"""cocotb bench of the SpAtten fixed-point softmax against sim.spatten.fx.softmax (bit-exact, exact cycles)."""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from tb_fx_common import fx_cfg, jobs_for_case, random_job
from tb_harness import config, reset_midrun, run_jobs, setup_streams

from sim.spatten.fx import QueryJob, qk
from sim.spatten.fx_stream import softmax_cycles, softmax_in_words, softmax_out_words


def _row(scores: list[int], aq: int, ash: int) -> tuple[dict, dict, int]:
    cfg = fx_cfg()
    return ({"i": softmax_in_words(scores, aq, ash, cfg)}, {"o": softmax_out_words(scores, aq, ash, cfg)},
            softmax_cycles(len(scores), cfg))


def _job(j: QueryJob) -> tuple[dict, dict, int]:
    return _row(qk(j.q, j.k, fx_cfg()).tolist(), j.alpha_q, j.alpha_sh)


async def _setup(dut: Any, p_valid: float = 1.0, p_ready: float = 1.0) -> Any:
    return await setup_streams(dut, config()["seed"], ["i"], ["o"], p_valid, p_ready)


@cocotb.test()
async def test_workloads(dut: Any) -> None:
    h = await _setup(dut)
    await run_jobs(h, "+".join(config()["workloads"]), [_job(j) for j in jobs_for_case(config()["seed"])], "i", "o", True)


@cocotb.test()
async def test_random(dut: Any) -> None:
    rng = np.random.default_rng(config()["seed"] + 1)
    h = await _setup(dut)
    await run_jobs(h, "random", [_job(random_job(rng, fx_cfg())) for _ in range(10)], "i", "o", True)


@cocotb.test()
async def test_corners(dut: Any) -> None:
    """All scores equal (uniform row), one score, one dominant score, widest score range, n % S != 0."""
    cfg = fx_cfg()
    hi = (1 << (cfg.score_bits - 2))
    rows = [[5] * cfg.max_n, [7], [0] * (cfg.s + 1) + [hi], [-hi, hi] * (cfg.s // 2 + 1), list(range(cfg.s * 2 + 1))]
    h = await _setup(dut)
    await run_jobs(h, "corners", [_row(r[:cfg.max_n], 1 << 15, 30) for r in rows], "i", "o", True)


@cocotb.test()
async def test_random_stalls(dut: Any) -> None:
    rng = np.random.default_rng(config()["seed"] + 2)
    h = await _setup(dut, 0.6, 0.5)
    await run_jobs(h, "random-stalls", [_job(random_job(rng, fx_cfg())) for _ in range(6)], "i", "o", False)


@cocotb.test()
async def test_reset_midrun(dut: Any) -> None:
    rng = np.random.default_rng(config()["seed"] + 3)
    jobs = [_job(random_job(rng, fx_cfg(), n=fx_cfg().max_n)) for _ in range(3)]
    h = await _setup(dut)
    await reset_midrun(h, jobs[0][0], 7, jobs[1:], "i", "o")
