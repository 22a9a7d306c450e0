"""cocotb bench of the SpAtten importance accumulators against attnforge.sim.spatten.importance_golden (bit-exact
read-outs and answers, exact cycles per job, refused jobs answered and followed by good ones)."""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from tb_fx_common import jobs_for_case
from tb_harness import Harness, config, reset_midrun, run_jobs, setup_streams

from attnforge.sim.contract.spatten_fx import ImportanceCfg, SpattenFx
from attnforge.sim.spatten import importance_golden as ig
from attnforge.sim.spatten.golden import pv, qk, softmax

Job = tuple[dict[str, list[int]], dict[str, list[int]], int]


def imp_cfg() -> ImportanceCfg:
    p = config()["params"]
    fx = SpattenFx(lanes=p["lanes"], min_d=p["min_d"], max_d=p["max_d"], max_n=p["max_n"])
    return ImportanceCfg(fx, p["max_heads"], p["max_queries"], p["max_layers"])


def expect(state: ig.ImportanceState, jobs: list[ig.ImpJob]) -> list[Job]:
    """Each job's input beats, expected o and r beats and model cycles, the state advancing job by job."""
    out = []
    for j in jobs:
        res = state.run(j)
        out.append(({"i": ig.input_beats(j, state.cfg)}, {"o": res.o, "r": [res.r]}, res.cycles))
    return out


async def _setup(dut: Any, p_valid: float = 1.0, p_ready: float = 1.0) -> Harness:
    return await setup_streams(dut, config()["seed"], ["i"], ["o", "r"], p_valid, p_ready)


def workload_jobs(cfg: ImportanceCfg, seed: int) -> list[ig.ImpJob]:
    """Real attention: each query job's probabilities (golden softmax) into the kept tokens' accumulators, its
    output (golden prob x V) into its head's, as heads and layers go by; then the read-outs a top would do."""
    fx, rng = cfg.fx, np.random.default_rng(seed)
    jobs = [ig.clear()]
    kept: list[int] = []
    for i, qj in enumerate(jobs_for_case(seed)[:12]):
        p = softmax(qk(qj.q, qj.k, fx), qj.alpha_q, qj.alpha_sh, fx).probs
        ids = sorted(rng.choice(fx.max_n, size=len(p), replace=False).tolist())
        kept = ids
        jobs.append(ig.add_tokens(ids, p.tolist()))
        out = pv(p, qj.v, fx).tolist()
        jobs.append(ig.add_head(i % cfg.max_heads, out))
    jobs.append(ig.read_tokens(kept, max(1, len(kept) // 2)))
    jobs.append(ig.read_heads(list(range(cfg.max_heads)), max(1, cfg.max_heads // 3)))
    return jobs


def random_jobs(cfg: ImportanceCfg, rng: np.random.Generator, count: int) -> list[ig.ImpJob]:
    """Every op with random sizes; repeated ids in a beat; head ids past max_heads in head reads (answered err)."""
    fx, s = cfg.fx, cfg.s
    pmax = (1 << fx.prob_bits) - 1
    top = 1 << cfg.idx_bits
    jobs: list[ig.ImpJob] = []
    for _ in range(count):
        kind = int(rng.integers(0, 5))
        if kind == 0:
            n = int(rng.integers(1, fx.max_n + 1))
            jobs.append(ig.add_tokens(rng.integers(0, fx.max_n, n).tolist(), rng.integers(0, pmax + 1, n).tolist()))
        elif kind == 1:
            d = 1 << int(rng.integers(fx.min_d.bit_length() - 1, fx.max_d.bit_length()))
            lo = 1 << (fx.out_bits - 1)
            jobs.append(ig.add_head(int(rng.integers(0, cfg.max_heads)), rng.integers(-lo, lo, d).tolist()))
        elif kind == 2:
            n = int(rng.integers(1, fx.max_n + 1))
            jobs.append(ig.read_tokens(rng.integers(0, min(top, fx.max_n), n).tolist(), int(rng.integers(1, n + 1))))
        elif kind == 3:
            n = int(rng.integers(1, cfg.max_heads + 1))
            jobs.append(ig.read_heads(rng.integers(0, min(top, cfg.max_heads + s), n).tolist(), int(rng.integers(1, n + 1))))
        else:
            jobs.append(ig.clear() if rng.random() < 0.3 else ig.read_heads([0], 1))
    return jobs


def bad_jobs(cfg: ImportanceCfg) -> list[ig.ImpJob]:
    """One of every refusal: n = 0, n above the maximum, k = 0, k > n, D outside the tree, a head past
    max_heads, an unknown op."""
    fx = cfg.fx
    n_big = min((1 << cfg.n_bits) - 1, fx.max_n + 2 * cfg.s + 1)
    big_h = min((1 << cfg.n_bits) - 1, cfg.max_heads + 1)
    out = [ig.ImpJob(ig.OPS["add_tokens"], n=0), ig.ImpJob(ig.OPS["add_tokens"], n=n_big),
           ig.ImpJob(ig.OPS["read_tokens"], n=3, k=0, idx=(0, 1, 2)), ig.ImpJob(ig.OPS["read_tokens"], n=3, k=4, idx=(0, 1, 2)),
           ig.ImpJob(ig.OPS["read_tokens"], n=0, k=0), ig.ImpJob(ig.OPS["read_heads"], n=big_h, k=1),
           ig.ImpJob(ig.OPS["add_head"], n=1, dlog=fx.max_d.bit_length(), idx=(0,)),
           ig.ImpJob(7, n=5)]
    if fx.min_d > 1:
        out.append(ig.ImpJob(ig.OPS["add_head"], n=1, dlog=fx.min_d.bit_length() - 2, idx=(0,)))
    if cfg.max_heads < 1 << cfg.idx_bits:
        out.append(ig.ImpJob(ig.OPS["add_head"], n=1, dlog=fx.min_d.bit_length() - 1, idx=(cfg.max_heads,),
                             out=(1,) * fx.min_d))
    return out


def refused_mix(cfg: ImportanceCfg, seed: int) -> list[ig.ImpJob]:
    """Every bad job followed by a good one: the block must be idle and unchanged after each refusal."""
    rng = np.random.default_rng(seed)
    good = random_jobs(cfg, rng, len(bad_jobs(cfg)))
    jobs = [ig.clear(), *random_jobs(cfg, rng, 3)]
    for b, g in zip(bad_jobs(cfg), good, strict=True):
        jobs += [b, g, ig.read_tokens(list(range(cfg.fx.max_n)), 1)]
    return jobs


@cocotb.test()
async def test_workloads(dut: Any) -> None:
    cfg = imp_cfg()
    h = await _setup(dut)
    await run_jobs(h, "+".join(config()["workloads"]), expect(ig.ImportanceState(cfg), workload_jobs(cfg, config()["seed"])),
                   "i", "r", True)


@cocotb.test()
async def test_random(dut: Any) -> None:
    cfg = imp_cfg()
    rng = np.random.default_rng(config()["seed"] + 1)
    h = await _setup(dut)
    await run_jobs(h, "random", expect(ig.ImportanceState(cfg), random_jobs(cfg, rng, 30)), "i", "r", True)


@cocotb.test()
async def test_refused_jobs(dut: Any) -> None:
    cfg = imp_cfg()
    h = await _setup(dut)
    await run_jobs(h, "refused", expect(ig.ImportanceState(cfg), refused_mix(cfg, config()["seed"] + 4)), "i", "r", True)


@cocotb.test()
async def test_random_stalls(dut: Any) -> None:
    cfg = imp_cfg()
    rng = np.random.default_rng(config()["seed"] + 2)
    h = await _setup(dut, 0.6, 0.5)
    jobs = [*random_jobs(cfg, rng, 12), *refused_mix(cfg, config()["seed"] + 5)]
    await run_jobs(h, "random-stalls", expect(ig.ImportanceState(cfg), jobs), "i", "r", False)


@cocotb.test()
async def test_reset_midrun(dut: Any) -> None:
    cfg = imp_cfg()
    h = await _setup(dut)
    n = cfg.fx.max_n
    abandoned = ig.input_beats(ig.add_tokens(list(range(n)), [5] * n), cfg)
    jobs = [ig.read_tokens(list(range(n)), 1), *random_jobs(cfg, np.random.default_rng(config()["seed"] + 3), 6)]
    await reset_midrun(h, {"i": abandoned}, 3, expect(ig.ImportanceState(cfg), jobs), "i", "r")
