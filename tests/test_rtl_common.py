"""Shared RTL arithmetic checked exhaustively against the golden model's definition (small widths)."""

from __future__ import annotations

import numpy as np
import pytest
from amaranth import Module, Signal, signed, unsigned
from amaranth.sim import Simulator

from attnforge.rtl.common import round_shift_coarse, round_shift_fine, round_shift_var
from attnforge.sim.contract.fixedpoint import round_shift


@pytest.mark.parametrize("shape", [signed(7), unsigned(7)], ids=["signed", "unsigned"])
def test_round_shift_var_equals_golden_rounding(shape) -> None:
    """The shift-then-add-the-round-bit form equals adding the half before shifting, for every x and shift."""
    m = Module()
    x, s, y = Signal(shape), Signal(4), Signal(signed(10))
    m.d.comb += y.eq(round_shift_var(x, s))
    sim = Simulator(m)
    lo, hi = (-64, 64) if shape.signed else (0, 128)
    bad: list[tuple[int, int, int, int]] = []

    async def tb(ctx) -> None:
        for xv in range(lo, hi):
            for sv in range(16):
                ctx.set(x, xv)
                ctx.set(s, sv)
                want = int(round_shift(np.array([xv]), sv)[0])
                if ctx.get(y) != want:
                    bad.append((xv, sv, ctx.get(y), want))

    sim.add_testbench(tb)
    sim.run()
    assert not bad


@pytest.mark.parametrize("shape", [signed(7), unsigned(7)], ids=["signed", "unsigned"])
def test_two_cycle_rounding_shift_equals_golden(shape) -> None:
    """Coarse shift + kept round bit, then fine shift + round bit: the same as the one-step rounding shift."""
    m = Module()
    x, s, y = Signal(shape), Signal(4), Signal(signed(10))
    xc, rb = round_shift_coarse(x, s, 2)
    m.d.comb += y.eq(round_shift_fine(xc, rb, s, 2))
    sim = Simulator(m)
    lo, hi = (-64, 64) if shape.signed else (0, 128)
    bad: list[tuple[int, int]] = []

    async def tb(ctx) -> None:
        for xv in range(lo, hi):
            for sv in range(16):
                ctx.set(x, xv)
                ctx.set(s, sv)
                if ctx.get(y) != int(round_shift(np.array([xv]), sv)[0]):
                    bad.append((xv, sv))

    sim.add_testbench(tb)
    sim.run()
    assert not bad


@pytest.mark.parametrize(("a_shape", "b_shape", "add", "product_regs", "stall"), [
    (unsigned(30), unsigned(16), unsigned(30), False, False),  # RD's rescale: unsigned run, two DSP pieces
    (signed(40), unsigned(16), signed(40), False, False),  # RNV's: signed run, three pieces
    (signed(40), unsigned(20), None, True, True),  # the output multiply: second product register, stalls
], ids=["rd", "rnv", "out"])
def test_mul_round_pipeline_equals_golden(a_shape, b_shape, add, product_regs, stall) -> None:
    """The 1D array's pipelined multiply (:class:`attnforge.rtl.vector1d.MulRound`): ``res`` is
    ``round_shift(a * b, shift) + add`` for the operands of ``latency`` advancing cycles earlier and today's ``add``,
    and a low ``en`` holds every stage (a stalled stage must neither lose nor repeat an operand)."""
    from attnforge.rtl.vector1d import MulRound

    shift = 15
    dut = MulRound(a_shape, b_shape, shift, add, product_regs=product_regs, stall=stall)
    assert dut.latency == 3 + int(product_regs)
    rng = np.random.default_rng(7)
    n = 60

    def draw(shape) -> list[int]:
        lo, hi = (-(1 << (shape.width - 1)), 1 << (shape.width - 1)) if shape.signed else (0, 1 << shape.width)
        return [int(x) for x in rng.integers(lo, hi, n)]

    a, b = draw(a_shape), draw(b_shape)
    adds = draw(add) if add is not None else [0] * n
    ens = [bool(x) for x in rng.integers(0, 2, 4 * n)] if stall else [True] * (4 * n)
    bad: list[tuple[int, int, int]] = []

    async def tb(ctx) -> None:
        taken = 0  # operand pairs the pipeline has taken (one per advancing cycle)
        for en in ens:
            if stall:
                ctx.set(dut.en, en)
            if en:
                k = taken - dut.latency  # the pair whose result is on ``res`` now
                if 0 <= k < n:
                    if add is not None:
                        ctx.set(dut.add, adds[k])
                    want = int(round_shift(np.array([a[k] * b[k]], np.int64), shift)[0]) + adds[k]
                    if ctx.get(dut.res) != want:
                        bad.append((k, ctx.get(dut.res), want))
                ctx.set(dut.a, a[min(taken, n - 1)])
                ctx.set(dut.b, b[min(taken, n - 1)])
                taken += 1
            else:
                ctx.set(dut.a, 0)  # what is offered while stalled must not enter
                ctx.set(dut.b, 0)
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert sum(ens) >= n + dut.latency, "every pair's result was checked"
    assert not bad


@pytest.mark.parametrize("with_kill", [False, True], ids=["plain", "kill"])
def test_exp_pipe_equals_golden_and_kill_zeroes(with_kill: bool) -> None:
    """:class:`attnforge.rtl.common.ExpPipe` behind a register: ``FM_EXP_PIPE`` cycles after a distance, the golden
    exponent unit's value, 0 where the argument underflows (distances up to the width's top) and 0 where ``kill``
    was high ``FM_EXP_PIPE - 2`` cycles after the distance (the ROM stage reads it), whatever the distance."""
    from amaranth import Module as Mod

    from attnforge.rtl.common import ExpPipe
    from attnforge.sim.contract import FM_EXP_PIPE
    from attnforge.sim.contract.fixedpoint import FixedPointConfig, choose_alpha
    from attnforge.sim.fusemax.golden import exp_unit

    cfg = FixedPointConfig(e=8, f=8, rows=4, max_keys=64)
    aq, ash = choose_alpha(1.0 / np.sqrt(8) / np.log(2), cfg.tf, cfg.alpha_bits, (1 << cfg.alpha_shift_bits) - 1)
    rng = np.random.default_rng(3)
    n = 200
    ds = [int(x) for x in rng.integers(0, 1 << cfg.d_bits, n)]
    ds[:8] = [0, 1, 2, 3, (1 << cfg.d_bits) - 1, 0, 5, 0]  # 1.0, small distances and the underflowing top
    kills = [bool(x) for x in rng.integers(0, 2, n)] if with_kill else [False] * n
    m = Mod()
    m.submodules.unit = unit = ExpPipe(cfg, cfg.d_bits, kill=with_kill)
    d, e = Signal(cfg.d_bits), Signal(cfg.prob_bits)
    dr = Signal(cfg.d_bits)
    m.d.sync += [dr.eq(d), e.eq(unit.e)]  # the registered distance in front, the caller's register behind
    m.d.comb += [unit.d.eq(dr), unit.alpha_q.eq(aq), unit.alpha_sh.eq(ash)]
    want = [0 if k else int(exp_unit(np.array([x]), aq, ash, cfg)[0]) for x, k in zip(ds, kills, strict=True)]
    got: list[int] = []

    async def tb(ctx) -> None:
        for t in range(n + FM_EXP_PIPE + 2):
            ctx.set(d, ds[t] if t < n else 0)
            if with_kill:  # the distance taken at t (registered: in d at t + 1) meets kill at t + FM_EXP_PIPE - 1
                j = t - (FM_EXP_PIPE - 1)
                ctx.set(unit.kill, kills[j] if 0 <= j < n else 0)
            await ctx.tick()
            if t >= FM_EXP_PIPE:
                got.append(ctx.get(e))

    sim = Simulator(m)
    sim.add_clock(1e-6)
    sim.add_testbench(tb)
    sim.run()
    assert got[:n] == want
    assert want[4] == 0 and int(exp_unit(np.array([0]), aq, ash, cfg)[0]) == 1 << cfg.p_frac
    assert not with_kill or 0 < sum(kills) < n
