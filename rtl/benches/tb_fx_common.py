"""Shared stimulus for the SpAtten datapath benches: the configuration, job vectors and the head dimensions the
adder tree supports, all from attnforge.sim.spatten.golden (the one golden model)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import cocotb
import numpy as np
from tb_harness import Harness, config, reset_midrun, run_jobs, setup_streams

from attnforge.sim.contract.spatten_fx import SpattenFx
from attnforge.sim.spatten.golden import QueryJob, workload_jobs


def fx_cfg() -> SpattenFx:
    p = config()["params"]
    return SpattenFx(lanes=p["lanes"], min_d=p["min_d"], max_d=p["max_d"], max_n=p["max_n"])


def head_dims(cfg: SpattenFx) -> list[int]:
    d, out = cfg.min_d, []
    while d <= cfg.max_d:
        out.append(d)
        d *= 2
    return out


def jobs_for_case(seed: int) -> list[QueryJob]:
    """Workload jobs for every (workload, shape) of the case: shape = (jobs, n); D cycles through the supported
    head dimensions, kept fraction and threshold vary so both progressive-quant outcomes occur."""
    cfg, c = fx_cfg(), config()
    out = []
    for wl in c["workloads"]:
        for count, n in c["shapes"]:
            for i, d in enumerate(head_dims(cfg)):
                for thr in (0.05, 0.6):
                    jobs = workload_jobs(wl, min(n, cfg.max_n), d, max(1, count // 2), cfg, kv_frac=(0.3, 1.0)[i % 2],
                                         threshold=thr, seed=seed)
                    out += [j for j, _ in jobs]
    return out


def random_job(rng: np.random.Generator, cfg: SpattenFx, n: int | None = None, d: int | None = None,
               narrow: bool = False) -> QueryJob:
    dims = head_dims(cfg)
    d = d or int(rng.choice(dims))
    n = n or int(rng.integers(1, cfg.max_n + 1))
    hi = 3 if narrow else (1 << (cfg.word_bits - 1)) - 1
    q = rng.integers(-hi - 1, hi + 1, d)
    k = rng.integers(-hi - 1, hi + 1, (n, d))
    v = rng.integers(-(1 << (cfg.v_bits - 1)), 1 << (cfg.v_bits - 1), (n, d))
    aq = int(rng.integers(1 << 15, 1 << 16))
    ash = int(rng.integers(20, 40))
    return QueryJob(q, k, v, int(rng.integers(1, n + 1)), int(rng.integers(0, (1 << cfg.prob_frac) + 1)), aq, ash)


Job = tuple[dict[str, list[int]], dict[str, list[int]], int]


def standard_tests(job: Callable[[QueryJob], Job], sources: list[str], sinks: list[str], first: str,
                   last: str) -> dict[str, Any]:
    """The four tests every single-job datapath bench runs -- workload rows, random jobs, random back-pressure, a
    mid-run reset -- for a bench that turns a :class:`QueryJob` into (feeds, expected beats, model cycles)."""

    async def setup(dut: Any, p_valid: float = 1.0, p_ready: float = 1.0) -> Harness:
        return await setup_streams(dut, config()["seed"], sources, sinks, p_valid, p_ready)

    async def test_workloads(dut: Any) -> None:
        h = await setup(dut)
        await run_jobs(h, "+".join(config()["workloads"]), [job(j) for j in jobs_for_case(config()["seed"])],
                       first, last, True)

    async def test_random(dut: Any) -> None:
        rng = np.random.default_rng(config()["seed"] + 1)
        h = await setup(dut)
        await run_jobs(h, "random", [job(random_job(rng, fx_cfg())) for _ in range(10)], first, last, True)

    async def test_random_stalls(dut: Any) -> None:
        rng = np.random.default_rng(config()["seed"] + 2)
        h = await setup(dut, 0.6, 0.5)
        await run_jobs(h, "random-stalls", [job(random_job(rng, fx_cfg())) for _ in range(6)], first, last, False)

    async def test_reset_midrun(dut: Any) -> None:
        rng = np.random.default_rng(config()["seed"] + 3)
        jobs = [job(random_job(rng, fx_cfg(), n=fx_cfg().max_n)) for _ in range(3)]
        h = await setup(dut)
        await reset_midrun(h, jobs[0][0], 7, jobs[1:], first, last)

    tests = (test_workloads, test_random, test_random_stalls, test_reset_midrun)
    return {"_setup": setup, **{t.__name__: cocotb.test()(t) for t in tests}}  # a bench does globals().update(...)


def bad_row_counts(cfg: SpattenFx) -> list[list[int]]:
    """Beat counts of rows that break the row rule (attnforge.sim.spatten.golden.row_refused): an empty row, an
    empty beat at the end, a count above S, a short beat before the last, and one entry more than max_n."""
    s = cfg.s
    over = [s] * (cfg.max_n // s) + [cfg.max_n % s + 1]
    counts = [[0], [s, 0], over]
    if s + 1 <= (1 << s.bit_length()) - 1:  # the count field can say more than S (not at S = 1: one bit)
        counts.append([s + 1])
    if s > 1:  # a beat can be short (at S = 1 every non-empty beat is full)
        counts.append([s - 1, s])
    return counts


async def refusal_then_good(h: Harness, label: str, pairs: list[tuple[Job, Job]], first: str, last: str,
                            exact: bool) -> None:
    """Each refused job followed by a good one, one run: the answers and (if ``exact``) the cycles of both."""
    await run_jobs(h, label, [j for pair in pairs for j in pair], first, last, exact)


def refusal_test(setup: Callable[..., Any], mix: Callable[[int], list[tuple[Job, Job]]], first: str, last: str,
                 doc: str) -> Any:
    """The refusal test of a single-job datapath bench: ``mix(seed)`` gives (refused job, good job) pairs, run once
    without stalls (answers and cycles exact) and once under random valid/ready stalls (answers exact)."""

    async def test_refused_jobs(dut: Any) -> None:
        h = await setup(dut)
        await refusal_then_good(h, "refused", mix(config()["seed"] + 11), first, last, True)
        h2 = await setup(dut, 0.6, 0.5)
        await refusal_then_good(h2, "refused-stalls", mix(config()["seed"] + 12), first, last, False)

    test_refused_jobs.__doc__ = doc
    return cocotb.test()(test_refused_jobs)

