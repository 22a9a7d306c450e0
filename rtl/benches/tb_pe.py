"""cocotb bench of the MAC PE against sim.fusemax.golden.pe_mac (workload dot products, random, extremes, robustness)."""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from tb_harness import check_stream, config, setup_block

from attnforge.sim.contract import designs as contract
from attnforge.sim.contract import pe_acc_bits
from attnforge.sim.fusemax.cycle_model import pe_cycles
from attnforge.sim.fusemax.golden import pe_mac, quantize, workload_head


def _contract() -> contract.Contract:
    return contract.pe(**config()["params"])


def _jobs(runs: list[tuple[np.ndarray, np.ndarray]], in_bits: int, acc_bits: int) -> tuple[list[int], list[list[int]]]:
    beats, expected = [], []
    lay = _contract()["i"]
    for a, b in runs:
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            beats.append(lay.pack({"a": int(x), "b": int(y), "last": int(i == len(a) - 1)}))
        expected.append([pe_mac(a, b, acc_bits)])
    return beats, expected


async def _check(h: Any, label: str, runs: list[tuple[np.ndarray, np.ndarray]], exact: bool) -> None:
    p = config()["params"]
    acc = pe_acc_bits(p["in_bits"], p["depth"])
    beats, expected = _jobs(runs, p["in_bits"], acc)
    await check_stream(h, label, beats, expected, _contract()["o"], pe_cycles([len(a) for a, _ in runs]), exact)


def _random_runs(rng: np.random.Generator, n: int, max_len: int, in_bits: int) -> list[tuple[np.ndarray, np.ndarray]]:
    lo, hi = -(1 << (in_bits - 1)), 1 << (in_bits - 1)
    return [(rng.integers(lo, hi, L), rng.integers(lo, hi, L)) for L in rng.integers(1, max_len + 1, n)]


@cocotb.test()
async def test_workloads(dut: Any) -> None:
    """Dot products of quantized workload query and key rows (QK scores), no stalls, exact cycles."""
    cfg = config()
    p = cfg["params"]
    h = await setup_block(dut, cfg["seed"])
    for wl in cfg["workloads"]:
        e = min(p["depth"], 64)
        q, k, _ = workload_head(wl, 4, 4, e, 1, seed=cfg["seed"])
        qi, _ = quantize(q, p["in_bits"])
        ki, _ = quantize(k, p["in_bits"])
        await _check(h, wl, [(qi[i], ki[j]) for i in range(4) for j in range(2)], True)


@cocotb.test()
async def test_random_backpressure(dut: Any) -> None:
    """Random operands and lengths; first without stalls (cycles exact), then with random gaps and back-pressure."""
    cfg = config()
    p = cfg["params"]
    n, max_len = cfg["shapes"][0]
    rng = np.random.default_rng(cfg["seed"])
    h = await setup_block(dut, cfg["seed"])
    await _check(h, "random", _random_runs(rng, n, min(max_len, p["depth"]), p["in_bits"]), True)
    h2 = await setup_block(dut, cfg["seed"] + 1, p_valid=0.6, p_ready=0.5)
    await _check(h2, "random-stalls", _random_runs(rng, n, min(max_len, p["depth"]), p["in_bits"]), False)


@cocotb.test()
async def test_extremes(dut: Any) -> None:
    """All -128, all 127 and -128 x 127 over the full depth: the accumulator must not overflow."""
    p = config()["params"]
    d, lo, hi = p["depth"], -(1 << (p["in_bits"] - 1)), (1 << (p["in_bits"] - 1)) - 1
    h = await setup_block(dut, 0)
    runs = [(np.full(d, lo), np.full(d, lo)), (np.full(d, hi), np.full(d, hi)), (np.full(d, lo), np.full(d, hi))]
    await _check(h, "extremes", runs, True)


@cocotb.test()
async def test_reset_midrun(dut: Any) -> None:
    """Reset halfway through an accumulation; the next runs must start from a clean accumulator."""
    cfg = config()
    p = cfg["params"]
    rng = np.random.default_rng(cfg["seed"] + 9)
    h = await setup_block(dut, cfg["seed"])
    beats, _ = _jobs(_random_runs(rng, 3, p["depth"], p["in_bits"]), p["in_bits"], pe_acc_bits(p["in_bits"], p["depth"]))
    h.sources["i"].queue.extend(beats)
    await h.run(lambda: len(h.sources["i"].fired) >= max(1, len(beats) // 2))
    await h.reset(2)
    await _check(h, "reset-midrun", _random_runs(rng, 3, p["depth"], p["in_bits"]), True)
