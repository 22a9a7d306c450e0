"""cocotb bench of the 2D PE array against attnforge.sim.fusemax.golden.array2d_matmul (workload QK tiles, random, extremes)."""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from tb_harness import check_stream, config, setup_block

from attnforge.sim.contract import designs as contract
from attnforge.sim.contract import pe_acc_bits
from attnforge.sim.fusemax.cycle_model import array2d_cycles
from attnforge.sim.fusemax.golden import array2d_matmul, quantize, workload_head


async def _check(h: Any, label: str, jobs: list[tuple[np.ndarray, np.ndarray]], exact: bool) -> None:
    p = config()["params"]
    acc = pe_acc_bits(p["in_bits"], p["depth"])
    c = contract.array2d(**p)
    beats, expected = [], []
    for a, b in jobs:  # a [E, rows], b [E, cols]
        for e in range(a.shape[0]):
            beats.append(c["i"].pack({"a": [int(x) for x in a[e]], "b": [int(x) for x in b[e]],
                                      "last": int(e == a.shape[0] - 1)}))
        expected += [list(r) for r in array2d_matmul(a, b, acc)]
    await check_stream(h, label, beats, expected, c["o"], array2d_cycles(p["rows"], [a.shape[0] for a, _ in jobs]), exact)


def _random_jobs(rng: np.random.Generator, n: int, max_e: int) -> list[tuple[np.ndarray, np.ndarray]]:
    p = config()["params"]
    lo, hi = -(1 << (p["in_bits"] - 1)), 1 << (p["in_bits"] - 1)
    out = []
    for e in rng.integers(1, min(max_e, p["depth"]) + 1, n):
        out.append((rng.integers(lo, hi, (e, p["rows"])), rng.integers(lo, hi, (e, p["cols"]))))
    return out


@cocotb.test()
async def test_workloads(dut: Any) -> None:
    """QK^T tiles of quantized workload heads: K tile along rows, Q tile along columns."""
    cfg = config()
    p = cfg["params"]
    h = await setup_block(dut, cfg["seed"])
    e = min(p["depth"], 64)
    for wl in cfg["workloads"]:
        q, k, _ = workload_head(wl, p["cols"], 2 * p["rows"], e, 1, seed=cfg["seed"])
        qi, _ = quantize(q, p["in_bits"])
        ki, _ = quantize(k, p["in_bits"])
        jobs = [(ki[j * p["rows"]:(j + 1) * p["rows"]].T, qi.T) for j in range(2)]
        await _check(h, wl, jobs, True)


@cocotb.test()
async def test_random_backpressure(dut: Any) -> None:
    cfg = config()
    n, max_e = cfg["shapes"][0]
    rng = np.random.default_rng(cfg["seed"])
    h = await setup_block(dut, cfg["seed"])
    await _check(h, "random", _random_jobs(rng, n, max_e), True)
    h2 = await setup_block(dut, cfg["seed"] + 1, p_valid=0.6, p_ready=0.5)
    await _check(h2, "random-stalls", _random_jobs(rng, n, max_e), False)


@cocotb.test()
async def test_extremes(dut: Any) -> None:
    """Full-depth accumulations of -128 x -128, 127 x 127 and -128 x 127."""
    p = config()["params"]
    d, R, C = p["depth"], p["rows"], p["cols"]
    lo, hi = -(1 << (p["in_bits"] - 1)), (1 << (p["in_bits"] - 1)) - 1
    h = await setup_block(dut, 0)
    jobs = [(np.full((d, R), lo), np.full((d, C), lo)), (np.full((d, R), hi), np.full((d, C), hi)),
            (np.full((d, R), lo), np.full((d, C), hi))]
    await _check(h, "extremes", jobs, True)


@cocotb.test()
async def test_reset_midrun(dut: Any) -> None:
    cfg = config()
    rng = np.random.default_rng(cfg["seed"] + 9)
    h = await setup_block(dut, cfg["seed"])
    p = cfg["params"]
    h.sources["i"].queue.extend(range(1, 2 * p["rows"]))  # junk beats, last flag clear or set at random
    await h.run(lambda: len(h.sources["i"].fired) >= p["rows"])
    await h.reset(2)
    await _check(h, "reset-midrun", _random_jobs(rng, 3, 16), True)
