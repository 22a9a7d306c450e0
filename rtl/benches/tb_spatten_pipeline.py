"""cocotb bench of the SpAtten one-query pipeline: the testbench is the DRAM (attnforge.sim.spatten.cycle_model.MemoryModel);
outputs bit-exact with attnforge.sim.spatten.golden.pipeline, V rows requested exactly as the golden top-k keeps them, cycles
equal to attnforge.sim.spatten.cycle_model.pipeline_cycles, and the output's error against float attention recorded."""

from __future__ import annotations

import time
from typing import Any

import cocotb
import numpy as np
from tb_fx_common import fx_cfg, head_dims, random_job
from tb_harness import Harness, config, record, setup_streams

from attnforge.sim.spatten.cycle_model import MemoryModel, pipeline_cycles, pipeline_out_word, pipeline_q_beat
from attnforge.sim.spatten.golden import QueryJob, dequantize, float_reference, pipeline, workload_jobs


async def _run(h: Harness, label: str, jobs: list[tuple[QueryJob, tuple | None]], exact: bool) -> None:
    cfg = fx_cfg()
    c0, t0 = h.cycle, time.perf_counter()
    bad = bad_cycles = rtl_total = model_total = refetches = 0
    err_max = err_ref = 0.0
    first_err = ""
    for job, floats in jobs:
        res = pipeline(job, cfg)
        mem = MemoryModel(job, cfg)
        for s in h.sources.values():
            s.fired.clear()
        for k in h.sinks.values():
            k.clear()
        h.sources["q"].queue.append(pipeline_q_beat(job, cfg))
        seen = 0
        while not h.sinks["o"].beats:
            await h.step()
            req = h.sinks["req"].beats
            while seen < len(req):
                name, beats = mem.answer(req[seen])
                h.sources[name].queue.extend(beats)
                seen += 1
            if h.cycle - c0 > 500_000:
                raise AssertionError("pipeline timeout")
        got = h.sinks["o"].beats[0]
        want = pipeline_out_word(res, cfg)
        v_kept = sorted(i for kind, idx in mem.requests if kind == 2 for i in idx)
        kinds = [kind for kind, _ in mem.requests if kind != 2]
        ok = got == want and v_kept == res.kept and kinds == ([0, 1] if res.refetch else [0])
        rtl = h.sinks["o"].fired[-1] - h.sources["q"].fired[0]
        model = pipeline_cycles(job, cfg, res)
        bad += int(not ok)
        bad_cycles += int(exact and rtl != model)
        rtl_total += rtl
        model_total += model
        refetches += int(res.refetch)
        if floats is not None:
            q, k, v = floats
            ref = float_reference(q, k, v, res.kept)
            err = float(np.max(np.abs(dequantize(res.out, job, cfg) - ref)))
            err_max = max(err_max, err)
            err_ref = max(err_ref, float(np.max(np.abs(v))))
        if (not ok or (exact and rtl != model)) and not first_err:
            first_err = (f"n={job.n} d={job.d} kv={job.kv}: out {'ok' if got == want else 'DIFFERS'}, V rows "
                         f"{'ok' if v_kept == res.kept else 'differ'}, K requests {kinds}, cycles {rtl} vs model {model}")
        await h.step()
    passed = bad == 0 and bad_cycles == 0
    row = {"workload": label, "passed": passed, "rtl_cycles": rtl_total, "sim_cycles": model_total if exact else None,
           "no_stall_cycles": model_total, "max_abs_error": bad, "jobs": len(jobs), "refetch_jobs": refetches,
           "cycles_simulated": h.cycle - c0, "wall_s": time.perf_counter() - t0, "backpressure": not exact,
           "error": first_err or None}
    if err_ref:
        row.update(float_max_abs_error=err_max, float_max_abs_error_rel_vmax=err_max / err_ref)
    record(row)
    assert passed, f"{label}: {first_err}"


async def _setup(dut: Any, p_valid: float = 1.0, p_ready: float = 1.0) -> Harness:
    return await setup_streams(dut, config()["seed"], ["q", "kmem", "vmem"], ["req", "o"], p_valid, p_ready)


def _workload(seed: int) -> list[tuple[QueryJob, tuple]]:
    cfg, c = fx_cfg(), config()
    out = []
    for wl in c["workloads"]:
        for count, n in c["shapes"]:
            for i, d in enumerate(head_dims(cfg)):
                for thr in (0.05, 0.5):
                    out += workload_jobs(wl, min(n, cfg.max_n), d, max(1, count // 2), cfg,
                                         kv_frac=(0.25, 1.0)[i % 2], threshold=thr, seed=seed)
    return out


@cocotb.test()
async def test_workloads(dut: Any) -> None:
    """Real (MiniLM) or workload attention rows, both refetch outcomes, several kept fractions and head dims."""
    h = await _setup(dut)
    await _run(h, "+".join(config()["workloads"]), _workload(config()["seed"]), True)


@cocotb.test()
async def test_random(dut: Any) -> None:
    rng = np.random.default_rng(config()["seed"] + 1)
    h = await _setup(dut)
    await _run(h, "random", [(random_job(rng, fx_cfg()), None) for _ in range(8)], True)


@cocotb.test()
async def test_corners(dut: Any) -> None:
    """All scores equal, kv = 1, kv = n, n = 1, n not a multiple of the scores per beat, threshold 0 and 1.0."""
    cfg, rng = fx_cfg(), np.random.default_rng(7)
    one = 1 << cfg.prob_frac
    d = cfg.min_d
    n = cfg.s + 3 if cfg.s + 3 <= cfg.max_n else cfg.max_n
    v = rng.integers(-2048, 2048, (n, d))
    eq = QueryJob(np.ones(d, np.int64), np.ones((n, d), np.int64), v, max(1, n // 2), one, 1 << 15, 30)
    jobs = [eq, QueryJob(eq.q, eq.k, v, 1, 0, 1 << 15, 30), QueryJob(eq.q, eq.k, v, n, one, 1 << 15, 30),
            random_job(rng, cfg, n=1), random_job(rng, cfg, n=cfg.max_n, d=cfg.max_d)]
    h = await _setup(dut)
    await _run(h, "corners", [(j, None) for j in jobs], True)


@cocotb.test()
async def test_random_stalls(dut: Any) -> None:
    rng = np.random.default_rng(config()["seed"] + 2)
    h = await _setup(dut, 0.6, 0.5)
    await _run(h, "random-stalls", [(random_job(rng, fx_cfg()), None) for _ in range(5)], False)


@cocotb.test()
async def test_reset_midrun(dut: Any) -> None:
    rng = np.random.default_rng(config()["seed"] + 3)
    h = await _setup(dut)
    h.sources["q"].queue.append(pipeline_q_beat(random_job(rng, fx_cfg(), n=fx_cfg().max_n), fx_cfg()))
    for _ in range(6):
        await h.step()
    await h.reset()
    await _run(h, "reset-midrun", [(random_job(rng, fx_cfg()), None) for _ in range(2)], True)
