"""cocotb bench of the SpAtten one-query pipeline: the testbench is the DRAM (attnforge.sim.spatten.cycle_model.MemoryModel);
outputs bit-exact with attnforge.sim.spatten.golden.pipeline, V rows requested exactly as the golden top-k keeps them, cycles
equal to attnforge.sim.spatten.cycle_model.pipeline_cycles, and the output's error against float attention recorded."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

import cocotb
import numpy as np
from tb_fx_common import fx_cfg, head_dims, random_job
from tb_harness import Harness, config, record, setup_streams

from attnforge.sim.spatten.cycle_model import (
    MemoryModel,
    pipeline_cycles,
    pipeline_out_word,
    pipeline_q_beat,
    refused,
    stream_cycles,
    tap_words,
)
from attnforge.sim.spatten.golden import PipelineResult, QueryJob, dequantize, float_reference, pipeline, workload_jobs


def _serve(h: Harness, mem: MemoryModel, seen: dict[str, int]) -> None:
    """Answer every new K and V request (the memory model queues the beats on kmem / vmem)."""
    for stream in ("kreq", "vreq"):
        req = h.sinks[stream].beats
        while seen[stream] < len(req):
            name, beats = mem.answer(stream, req[seen[stream]])
            h.sources[name].queue.extend(beats)
            seen[stream] += 1


def _clear(h: Harness) -> None:
    for s in h.sources.values():
        s.fired.clear()
    for k in h.sinks.values():
        k.clear()


def _expect(job: QueryJob, cfg: Any) -> tuple[PipelineResult | None, int, list[int]]:
    """Golden result (None: refused), output word, tap words."""
    if refused(job, cfg):
        return None, pipeline_out_word(None, cfg), []
    res = pipeline(job, cfg)
    return res, pipeline_out_word(res, cfg), tap_words(res, cfg)


async def _run(h: Harness, label: str, jobs: list[tuple[QueryJob, tuple | None]], exact: bool) -> None:
    """One job at a time: output, tap, K and V requests against the golden, cycles against pipeline_cycles."""
    cfg = fx_cfg()
    c0, t0 = h.cycle, time.perf_counter()
    bad = bad_cycles = rtl_total = model_total = refetches = 0
    err_max = err_ref = 0.0
    first_err = ""
    for job, floats in jobs:
        res, want, taps = _expect(job, cfg)
        mem = MemoryModel(job, cfg)
        _clear(h)
        h.sources["q"].queue.append(pipeline_q_beat(job, cfg))
        seen = {"kreq": 0, "vreq": 0}
        while not h.sinks["o"].beats:
            await h.step()
            _serve(h, mem, seen)
            if h.cycle - c0 > 500_000:
                raise AssertionError("pipeline timeout")
        got = h.sinks["o"].beats[0]
        v_kept = sorted(i for kind, idx in mem.requests if kind == 2 for i in idx)
        kinds = [kind for kind, _ in mem.requests if kind != 2]
        want_kinds = [] if res is None else [0, 1] if res.refetch else [0]
        ok = got == want and v_kept == ([] if res is None else res.kept) and kinds == want_kinds
        ok = ok and h.sinks["p"].beats == taps
        rtl = h.sinks["o"].fired[-1] - h.sources["q"].fired[0]
        model = pipeline_cycles(job, cfg, res)
        bad += int(not ok)
        bad_cycles += int(exact and rtl != model)
        rtl_total += rtl
        model_total += model
        refetches += int(res is not None and res.refetch)
        if floats is not None and res is not None:
            q, k, v = floats
            ref = float_reference(q, k, v, res.kept)
            err = float(np.max(np.abs(dequantize(res.out, job, cfg) - ref)))
            err_max = max(err_max, err)
            err_ref = max(err_ref, float(np.max(np.abs(v))))
        if (not ok or (exact and rtl != model)) and not first_err:
            first_err = (f"n={job.n} d={job.d} kv={job.kv}: out {'ok' if got == want else 'DIFFERS'}, V rows "
                         f"{'ok' if res is None or v_kept == res.kept else 'differ'}, K requests {kinds}, tap "
                         f"{'ok' if h.sinks['p'].beats == taps else 'differs'}, cycles {rtl} vs model {model}")
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


async def _run_stream(h: Harness, label: str, jobs: list[QueryJob], exact: bool) -> None:
    """Jobs back to back (two in flight): every output and tap beat in order against the golden, and every query
    and output handshake cycle against stream_cycles."""
    cfg = fx_cfg()
    c0, t0 = h.cycle, time.perf_counter()
    exp = [_expect(j, cfg) for j in jobs]
    mem = MemoryModel(jobs, cfg)
    _clear(h)
    h.sources["q"].queue.extend(pipeline_q_beat(j, cfg) for j in jobs)
    seen = {"kreq": 0, "vreq": 0}
    while len(h.sinks["o"].beats) < len(jobs):
        await h.step()
        _serve(h, mem, seen)
        if h.cycle - c0 > 500_000:
            raise AssertionError("pipeline timeout")
    got = h.sinks["o"].beats
    ok_out = got == [w for _, w, _ in exp] and h.sinks["p"].beats == [t for _, _, ts in exp for t in ts]
    q0 = h.sources["q"].fired[0]
    rtl = [(q - q0, o - q0) for q, o in zip(h.sources["q"].fired, h.sinks["o"].fired, strict=True)]
    model = stream_cycles(jobs, cfg, [r for r, _, _ in exp])
    ok_cyc = not exact or rtl == model
    first = next((i for i, (a, b) in enumerate(zip(rtl, model, strict=True)) if a != b), None)
    err = None if ok_out and ok_cyc else (f"outputs {'ok' if ok_out else 'DIFFER'}; first cycle mismatch at job "
                                          f"{first}: rtl {rtl[first] if first is not None else '-'} vs model "
                                          f"{model[first] if first is not None else '-'}")
    alone = sum(pipeline_cycles(j, cfg, r) for j, (r, _, _) in zip(jobs, exp, strict=True))
    record({"workload": label, "passed": ok_out and ok_cyc, "rtl_cycles": rtl[-1][1], "sim_cycles": model[-1][1]
            if exact else None, "no_stall_cycles": model[-1][1], "one_at_a_time_cycles": alone,
            "max_abs_error": int(not ok_out), "jobs": len(jobs), "cycles_simulated": h.cycle - c0,
            "wall_s": time.perf_counter() - t0, "backpressure": not exact, "error": err})
    assert ok_out and ok_cyc, f"{label}: {err}"


async def _setup(dut: Any, p_valid: float = 1.0, p_ready: float = 1.0) -> Harness:
    return await setup_streams(dut, config()["seed"], ["q", "kmem", "vmem"], ["kreq", "vreq", "p", "o"], p_valid, p_ready)


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


def _refused_jobs(rng: np.random.Generator) -> list[QueryJob]:
    """One job per check the pipeline makes: kv = 0, kv > n, n = 0, n > max_n, a head dimension below min_d and
    above max_d, a threshold above 1.0."""
    cfg = fx_cfg()
    good = random_job(rng, cfg, n=5, d=cfg.min_d)
    z = np.zeros((0, cfg.min_d), np.int64)
    big = np.zeros((cfg.max_n + 1, cfg.min_d), np.int64)
    small, wide = np.zeros((3, cfg.min_d // 2), np.int64), np.zeros((3, cfg.max_d * 2), np.int64)
    return [replace(good, kv=0), replace(good, kv=6), replace(good, k=z, v=z, kv=0), replace(good, k=big, v=big),
            replace(good, q=good.q[:cfg.min_d // 2], k=small, v=small, kv=1),
            replace(good, q=np.zeros(cfg.max_d * 2, np.int64), k=wide, v=wide, kv=1),
            replace(good, threshold=(1 << cfg.prob_frac) + 1)]


@cocotb.test()
async def test_refused(dut: Any) -> None:
    """Every bad job is answered with one error beat and the pipeline is idle again: a good job right after each."""
    rng = np.random.default_rng(config()["seed"] + 4)
    cfg = fx_cfg()
    jobs = []
    for bad in _refused_jobs(rng):
        jobs += [(bad, None), (random_job(rng, cfg), None)]
    h = await _setup(dut)
    await _run(h, "refused", jobs, True)


@cocotb.test()
async def test_back_to_back(dut: Any) -> None:
    """Queries back to back, two in flight (refused jobs among them): outputs, taps and every handshake cycle."""
    rng = np.random.default_rng(config()["seed"] + 5)
    cfg = fx_cfg()
    jobs = [j for j, _ in _workload(config()["seed"])][:8] + [random_job(rng, cfg) for _ in range(6)]
    jobs.insert(3, _refused_jobs(rng)[1])
    h = await _setup(dut)
    await _run_stream(h, "back-to-back", jobs, True)


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
