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
