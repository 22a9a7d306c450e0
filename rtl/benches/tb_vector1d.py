"""cocotb bench of the 1D vector unit against attnforge.sim.fusemax.golden.vector1d (softmax-state ops from workloads, random)."""

from __future__ import annotations

from typing import Any

import cocotb
import numpy as np
from tb_harness import check_stream, config, setup_block

from attnforge.sim.contract import designs as contract
from attnforge.sim.fusemax.cycle_model import vector1d_cycles
from attnforge.sim.fusemax.golden import (
    VEC_OPS,
    FixedPointConfig,
    attention_fx,
    exp_unit,
    quantize_attention,
    vector1d,
    workload_head,
)


def _cmd(op: str, a: np.ndarray, b: np.ndarray) -> int:
    """One command beat (the contract's vector1d ``i`` layout)."""
    return contract.vector1d(**config()["params"])["i"].pack({"op": VEC_OPS[op], "a": [int(x) for x in a],
                                                              "b": [int(x) for x in b]})


def _fx() -> FixedPointConfig:
    return FixedPointConfig(max_keys=config()["params"]["max_keys"], rows=1)


def _alpha(alpha_q: np.ndarray | int, alpha_sh: np.ndarray | int) -> np.ndarray:
    """Exp-command b lanes: the alpha word (the contract's ``exp_operand``) per lane."""
    word = contract.vector1d(**config()["params"]).words["exp_operand"]
    w = config()["params"]["width"]
    return np.array([word.pack({"alpha_q": int(q), "alpha_sh": int(s)})
                     for q, s in zip(np.broadcast_to(alpha_q, w), np.broadcast_to(alpha_sh, w), strict=True)], np.int64)


async def _check(h: Any, label: str, ops: list[tuple[str, np.ndarray, np.ndarray]], exact: bool) -> None:
    p = config()["params"]
    D, fx = p["data_bits"], _fx()
    beats = [_cmd(op, a, b) for op, a, b in ops]
    expected = [list(vector1d(op, a, b, D, fx)) for op, a, b in ops]
    await check_stream(h, label, beats, expected, contract.vector1d(**p)["o"],
                       vector1d_cycles([op for op, _, _ in ops], fx.qw), exact)


def _random_ops(rng: np.random.Generator, n: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
    p = config()["params"]
    W, D, fx = p["width"], p["data_bits"], _fx()
    big = 1 << (D - 2)
    ops = []
    for op in rng.choice(list(VEC_OPS), n):
        if op in ("max", "add"):
            a, b = rng.integers(-big, big, W), rng.integers(-big, big, W)
        elif op == "mul":
            a, b = rng.integers(-(1 << (D - 18)), 1 << (D - 18), W), rng.integers(0, (1 << fx.p_frac) + 1, W)
        elif op == "exp":
            a = rng.integers(0, 1 << fx.d_bits, W)
            b = _alpha(rng.integers(1 << 15, 1 << 16, W), rng.integers(1, 1 << fx.alpha_shift_bits, W))
        else:  # recip: softmax denominators, plus a lane below the divider's domain (saturates)
            a = rng.integers(1 << fx.p_frac, 1 << fx.rd_bits, W)
            a[rng.integers(0, W)] = int(rng.integers(0, 1 << fx.p_frac))
            b = np.zeros(W, dtype=np.int64)
        ops.append((str(op), np.asarray(a, np.int64), np.asarray(b, np.int64)))
    return ops


@cocotb.test()
async def test_workloads(dut: Any) -> None:
    """The 1D-array steps of attention on a quantized workload head: RM max, PRM exp, RD rescale, 1/RD."""
    cfg = config()
    W, fx0 = cfg["params"]["width"], _fx()
    h = await setup_block(dut, cfg["seed"])
    for wl in cfg["workloads"]:
        fx = FixedPointConfig(e=16, f=16, rows=4, max_keys=min(64, fx0.max_keys - fx0.max_keys % 4 or 4))
        q, k, v = workload_head(wl, W, fx.max_keys, 16, 16, seed=cfg["seed"])
        qa = quantize_attention(q, k, v, fx)
        _, tr = attention_fx(qa, fx)
        s = qa.q @ qa.k.T
        alpha = _alpha(qa.alpha_q, qa.alpha_sh)
        d = tr.rm - s[:, 0]
        ops = [("max", s[:, 0], s[:, 1]), ("exp", d, alpha), ("mul", tr.rnv[:, 0], exp_unit(d, qa.alpha_q, qa.alpha_sh, fx)),
               ("add", tr.rd, tr.rd), ("recip", tr.rd, np.zeros(W, np.int64))]
        await _check(h, wl, ops, True)


@cocotb.test()
async def test_random_backpressure(dut: Any) -> None:
    cfg = config()
    n = cfg["shapes"][0][0]
    rng = np.random.default_rng(cfg["seed"])
    h = await setup_block(dut, cfg["seed"])
    await _check(h, "random", _random_ops(rng, n), True)
    h2 = await setup_block(dut, cfg["seed"] + 1, p_valid=0.6, p_ready=0.5)
    await _check(h2, "random-stalls", _random_ops(rng, n), False)


@cocotb.test()
async def test_extremes(dut: Any) -> None:
    """Lane extremes: largest distances (exp -> 0), distance 0 (exp -> 1.0), RD at 1.0 and at its maximum."""
    p = config()["params"]
    W, fx = p["width"], _fx()
    h = await setup_block(dut, 0)
    amax = _alpha((1 << 16) - 1, 1)
    ops = [("exp", np.full(W, (1 << fx.d_bits) - 1), amax), ("exp", np.zeros(W, np.int64), amax),
           ("recip", np.full(W, 1 << fx.p_frac), np.zeros(W, np.int64)),
           ("recip", np.full(W, (1 << fx.rd_bits) - 1), np.zeros(W, np.int64)),
           ("mul", np.full(W, -(1 << (p["data_bits"] - 18))), np.full(W, 1 << fx.p_frac))]
    await _check(h, "extremes", ops, True)


@cocotb.test()
async def test_reset_midrun(dut: Any) -> None:
    """Reset while a reciprocal is iterating; the divider and the output register must come back clean."""
    cfg = config()
    rng = np.random.default_rng(cfg["seed"] + 9)
    h = await setup_block(dut, cfg["seed"])
    p, fx = cfg["params"], _fx()
    W = p["width"]
    h.sources["i"].queue.append(_cmd("recip", np.full(W, 1 << fx.p_frac), np.zeros(W, np.int64)))
    await h.run(lambda: len(h.sources["i"].fired) >= 1)
    await h.step()
    await h.step()
    await h.reset(2)
    await _check(h, "reset-midrun", _random_ops(rng, 8), True)
