"""cocotb bench of the SpAtten progressive-quantization unit: MSB/LSB assembly against attnforge.sim.spatten.golden.assemble and
the max-probability decision against attnforge.sim.spatten.golden.decide, bit-exact with exact cycles."""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from tb_fx_common import bad_row_counts, fx_cfg, jobs_for_case, random_job, refusal_then_good
from tb_harness import config, reset_midrun, run_jobs, setup_streams

from attnforge.sim.spatten.cycle_model import (
    assemble_cycles,
    assemble_in_words,
    bad_row,
    decision_cycles,
    decision_in_words,
    decision_refused_row,
    decision_word,
    k_beats,
)
from attnforge.sim.spatten.golden import QueryJob, assemble, decide, qk, softmax, split_k


def _assembly(j: QueryJob, use_lsb: bool) -> tuple[dict, dict, int]:
    cfg = fx_cfg()
    msb, lsb = split_k(j.k, cfg)
    words = assemble_in_words(msb, lsb, use_lsb, cfg)
    expected = k_beats(assemble(msb, lsb if use_lsb else None, cfg), cfg)
    return {"i": words}, {"o": expected}, assemble_cycles(len(words))


def _decision(j: QueryJob) -> tuple[dict, dict, int]:
    cfg = fx_cfg()
    p = softmax(qk(j.q, assemble(split_k(j.k, cfg)[0], None, cfg), cfg), j.alpha_q, j.alpha_sh, cfg).probs
    ref, mx = decide(p, j.threshold)
    return ({"p": decision_in_words(p.tolist(), j.threshold, cfg)}, {"d": [decision_word(ref, mx, cfg)]},
            decision_cycles(len(p), cfg))


async def _setup(dut: Any, p_valid: float = 1.0, p_ready: float = 1.0) -> Any:
    return await setup_streams(dut, config()["seed"], ["i", "p"], ["o", "d"], p_valid, p_ready)


@cocotb.test()
async def test_workloads(dut: Any) -> None:
    jobs = jobs_for_case(config()["seed"])
    h = await _setup(dut)
    label = "+".join(config()["workloads"])
    await run_jobs(h, label + "-assembly", [_assembly(j, i % 2 == 0) for i, j in enumerate(jobs)], "i", "o", True)
    refetches = sum(decide(softmax(qk(j.q, assemble(split_k(j.k, fx_cfg())[0], None, fx_cfg()), fx_cfg()),
                                   j.alpha_q, j.alpha_sh, fx_cfg()).probs, j.threshold)[0] for j in jobs)
    await run_jobs(h, label + "-decision", [_decision(j) for j in jobs], "p", "d", True,
                   {"refetch_rows": int(refetches), "rows": len(jobs)})


@cocotb.test()
async def test_random(dut: Any) -> None:
    rng = np.random.default_rng(config()["seed"] + 1)
    jobs = [random_job(rng, fx_cfg()) for _ in range(10)]
    h = await _setup(dut)
    await run_jobs(h, "random-assembly", [_assembly(j, bool(rng.integers(2))) for j in jobs], "i", "o", True)
    await run_jobs(h, "random-decision", [_decision(j) for j in jobs], "p", "d", True)


@cocotb.test()
async def test_corners(dut: Any) -> None:
    """Threshold equal to the max probability (no refetch: strict <), one above it, 0 and 1.0; extreme codes."""
    cfg, rng = fx_cfg(), np.random.default_rng(5)
    base = random_job(rng, cfg, n=cfg.s + 1)
    p = softmax(qk(base.q, assemble(split_k(base.k, cfg)[0], None, cfg), cfg), base.alpha_q, base.alpha_sh, cfg).probs
    mx = int(p.max())
    jobs = [QueryJob(base.q, base.k, base.v, 1, t, base.alpha_q, base.alpha_sh) for t in (mx, mx + 1, 0, 1 << cfg.prob_frac)]
    lo, hi = -(1 << (cfg.word_bits - 1)), (1 << (cfg.word_bits - 1)) - 1
    ext = QueryJob(base.q, np.where(np.arange(base.k.size).reshape(base.k.shape) % 2, lo, hi), base.v, 1, 0, 1 << 15, 30)
    h = await _setup(dut)
    await run_jobs(h, "corners-decision", [_decision(j) for j in jobs], "p", "d", True)
    await run_jobs(h, "corners-assembly", [_assembly(ext, True), _assembly(ext, False)], "i", "o", True)


@cocotb.test()
async def test_random_stalls(dut: Any) -> None:
    rng = np.random.default_rng(config()["seed"] + 2)
    jobs = [random_job(rng, fx_cfg()) for _ in range(6)]
    h = await _setup(dut, 0.6, 0.5)
    await run_jobs(h, "random-stalls-assembly", [_assembly(j, True) for j in jobs], "i", "o", False)
    await run_jobs(h, "random-stalls-decision", [_decision(j) for j in jobs], "p", "d", False)


@cocotb.test()
async def test_reset_midrun(dut: Any) -> None:
    rng = np.random.default_rng(config()["seed"] + 3)
    jobs = [random_job(rng, fx_cfg(), n=fx_cfg().max_n) for _ in range(3)]
    h = await _setup(dut)
    await reset_midrun(h, {**_assembly(jobs[0], True)[0], **_decision(jobs[0])[0]}, 5,
                       [_decision(j) for j in jobs[1:]], "p", "d")


def _refused_mix(seed: int) -> list:
    """Rows that break the row rule, and a well-formed row with a threshold above 1.0, each before a good row."""
    cfg, rng = fx_cfg(), np.random.default_rng(seed)
    one = 1 << cfg.prob_frac
    bad = [(bad_row(c, cfg, rng, cfg.prob_bits, signed=False), int(rng.integers(0, one + 1))) for c in bad_row_counts(cfg)]
    bad.append((bad_row([cfg.s, 1], cfg, rng, cfg.prob_bits, signed=False), one + 1))
    pairs = []
    for rows, thr in bad:
        ins, outs, cyc = decision_refused_row(rows, thr, cfg)
        pairs.append((({"p": ins}, {"d": outs}, cyc), _decision(random_job(rng, cfg))))
    return pairs


@cocotb.test()
async def test_refused_jobs(dut: Any) -> None:
    """Refused rows are answered (refetch 0, max_p 0, err 1) when a row of as many beats would be decided, and
    the next row's decision is exact."""
    h = await _setup(dut)
    await refusal_then_good(h, "refused", _refused_mix(config()["seed"] + 11), "p", "d", True)
    h2 = await _setup(dut, 0.6, 0.5)
    await refusal_then_good(h2, "refused-stalls", _refused_mix(config()["seed"] + 12), "p", "d", False)
