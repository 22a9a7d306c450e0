"""cocotb bench of the SpAtten top-k engine against attnforge.sim.spatten.topk_golden (bit-exact beats, exact cycles).

Cycles of one job: harness cycle of its last output handshake minus the cycle of its first input handshake
(``attnforge.sim.spatten.topk_golden.cycles``); exact when the input is offered every cycle and the output is always ready.
Case shapes: ``(jobs, n_max)`` for the random tests (the workload test uses ``n_max`` as the key length).
"""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from tb_harness import Harness, config, run_jobs, setup_block

from attnforge.sim.contract import n_bits
from attnforge.sim.spatten.topk_golden import hw_topk, input_beats, output_beats, refused_job


def _range(p: dict[str, int]) -> tuple[int, int]:
    b = p["data_bits"]
    return (-(1 << (b - 1)), (1 << (b - 1)) - 1) if p["signed_data"] else (0, (1 << b) - 1)


async def _jobs(h: Harness, label: str, jobs: list[tuple[list[int], int]], exact: bool) -> None:
    """Run (scores, k) jobs through the shared multi-stream checker: every output beat, and (if ``exact``) the
    cycles of each job against the model."""
    p = config()["params"]
    c, b, mx = p["comparators"], p["data_bits"], p["max_n"]
    await run_jobs(h, label, [({"i": input_beats(sc, k, c, b, mx)}, {"o": output_beats(sc, k, c, b, mx)},
                               hw_topk(sc, k, c).cycles) for sc, k in jobs], "i", "o", exact)


def _random_jobs(rng: np.random.Generator, count: int, n_max: int, p: dict[str, int], narrow: bool = False) -> list:
    lo, hi = _range(p)
    out = []
    for _ in range(count):
        n = int(rng.integers(1, n_max + 1))
        k = int(rng.integers(1, n + 1))
        vals = rng.integers(max(lo, -3), min(hi, 3) + 1, n) if narrow else rng.integers(lo, hi + 1, n)
        out.append(([int(v) for v in vals], k))
    return out


def _workload_jobs(name: str, n: int, rows: int, p: dict[str, int], seed: int) -> list:
    """Attention probabilities of one head (softmax of q k^T / sqrt(e)) quantized to the score range."""
    from attnforge.workloads import make_workload

    t = make_workload(name, batch=1, p=rows, m=n, seq_len=n, seed=seed).tensors()
    q, kk = t["q"][0, 0].astype(np.float64), t["k"][0, 0].astype(np.float64)
    s = q @ kk.T / np.sqrt(q.shape[1])
    prob = np.exp(s - s.max(axis=1, keepdims=True))
    prob /= prob.sum(axis=1, keepdims=True)
    _, hi = _range(p)
    ints = np.rint(prob / prob.max(axis=1, keepdims=True) * hi).astype(np.int64)
    fracs = (0.1, 0.25, 0.5, 0.05, 1.0, 0.75)
    return [([int(v) for v in ints[r]], max(1, min(n, round(fracs[r % len(fracs)] * n)))) for r in range(rows)]


@cocotb.test()
async def test_workloads(dut: Any) -> None:
    """Quantized attention-probability rows of real workload shapes (many ties near 0), exact cycles."""
    cfg = config()
    p = cfg["params"]
    n = min(p["max_n"], max(s[1] for s in cfg["shapes"]))
    h = await setup_block(dut, cfg["seed"])
    for wl in cfg["workloads"]:
        await _jobs(h, wl, _workload_jobs(wl, n, 4, p, cfg["seed"]), True)


@cocotb.test()
async def test_random_backpressure(dut: Any) -> None:
    """Random n, k and scores (wide and narrow value ranges): exact cycles, then random gaps and back-pressure."""
    cfg = config()
    p = cfg["params"]
    rng = np.random.default_rng(cfg["seed"])
    h = await setup_block(dut, cfg["seed"])
    for i, (count, n_max) in enumerate(cfg["shapes"]):
        n_max = min(n_max, p["max_n"])
        await _jobs(h, f"random-{n_max}", _random_jobs(rng, count, n_max, p, narrow=bool(i % 2)), True)
    h2 = await setup_block(dut, cfg["seed"] + 1, p_valid=0.6, p_ready=0.5)
    count, n_max = cfg["shapes"][0]
    await _jobs(h2, "random-stalls", _random_jobs(rng, count, min(n_max, p["max_n"]), p, narrow=True), False)


@cocotb.test()
async def test_corners(dut: Any) -> None:
    """All scores equal, k = 1, k = n, n = 1, n = max_n, n not a multiple of comparators, extremes, sorted."""
    cfg = config()
    p = cfg["params"]
    c, mx = p["comparators"], p["max_n"]
    lo, hi = _range(p)
    n_odd = min(mx, 2 * c + 3)
    rng = np.random.default_rng(cfg["seed"] + 3)
    r = [int(v) for v in rng.integers(lo, hi + 1, n_odd)]
    jobs = [([5] * n_odd, 1), ([5] * n_odd, n_odd), ([5] * n_odd, max(1, n_odd // 2)),
            (r, 1), (r, n_odd), ([7], 1), ([lo] * mx, mx), ([hi] * mx, 1),
            ([lo, hi] * (mx // 2) or [lo], max(1, mx // 2)), (list(range(mx)), 3 if mx >= 3 else 1),
            (list(range(mx))[::-1], mx), ([int(v) for v in rng.integers(lo, hi + 1, mx)], max(1, mx // 3))]
    jobs = [([min(hi, max(lo, v)) for v in s], k) for s, k in jobs]
    h = await setup_block(dut, cfg["seed"])
    await _jobs(h, "corners", jobs, True)


@cocotb.test()
async def test_reset_midrun(dut: Any) -> None:
    """Reset while a job is being loaded, then while its result is streaming out; the next jobs must be exact."""
    cfg = config()
    p = cfg["params"]
    c, b, mx = p["comparators"], p["data_bits"], p["max_n"]
    rng = np.random.default_rng(cfg["seed"] + 9)
    h = await setup_block(dut, cfg["seed"], p_ready=0.5)
    s, o = h.sources["i"], h.sinks["o"]
    (scores, k), = _random_jobs(rng, 1, mx, p)
    scores = scores + [0] * (max(2 * c, len(scores)) - len(scores))
    scores = scores[:mx]
    beats = input_beats(scores, k, c, b, mx)
    s.queue.extend(beats)
    await h.run(lambda: len(s.fired) >= max(1, len(beats) // 2))
    await h.reset(2)
    h.sinks["o"].p_ready = 1.0
    await _jobs(h, "reset-during-load", _random_jobs(rng, 2, mx, p), True)
    h.sinks["o"].p_ready = 0.3
    s.queue.extend(beats)
    o.clear()
    await h.run(lambda: len(o.beats) >= 1)
    await h.reset(3)
    h.sinks["o"].p_ready = 1.0
    await _jobs(h, "reset-midrun", _random_jobs(rng, 3, mx, p), True)


@cocotb.test()
async def test_refused_jobs(dut: Any) -> None:
    """Jobs outside 1 <= k <= n <= max_n (k = 0, k > n, n = 0, n > max_n) are consumed and answered with one error
    beat, exactly when the model says, and the engine runs the next valid job as if nothing happened; then the
    same mix under random gaps and back-pressure."""
    cfg = config()
    p = cfg["params"]
    c, b, mx = p["comparators"], p["data_bits"], p["max_n"]
    rng = np.random.default_rng(cfg["seed"] + 17)
    n_big = min((1 << n_bits(mx)) - 1, mx + 2 * c + 1)
    bad = [(0, 0), (0, 3), (5, 0), (5, 6), (min(mx, 3 * c + 1), min(mx, 3 * c + 1) + 1), (n_big, 1)]
    good = _random_jobs(rng, len(bad), mx, p)

    def mixed() -> list[tuple[dict[str, list[int]], dict[str, list[int]], int]]:
        out = []
        for (n, k), (sc, kk) in zip(bad, good, strict=True):
            ins, outs, cyc = refused_job(n, k, c, b, mx)
            out.append(({"i": ins}, {"o": outs}, cyc))
            out.append(({"i": input_beats(sc, kk, c, b, mx)}, {"o": output_beats(sc, kk, c, b, mx)}, hw_topk(sc, kk, c).cycles))
        return out

    h = await setup_block(dut, cfg["seed"])
    await run_jobs(h, "refused", mixed(), "i", "o", True)
    h2 = await setup_block(dut, cfg["seed"] + 5, p_valid=0.6, p_ready=0.5)
    await run_jobs(h2, "refused-stalls", mixed(), "i", "o", False)
