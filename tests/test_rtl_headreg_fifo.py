"""The register-headed FIFO (rtl/common.py HeadRegFIFO) against the plain model it replaces, Amaranth's SyncFIFO of
the same depth, side by side in the Amaranth simulator: with random writes (while there is room) and random reads,
both must show the same ``r_rdy``, ``r_data`` and ``w_rdy`` in every cycle, so swapping one for the other changes
no cycle of a design."""

from __future__ import annotations

import random
from collections.abc import Callable

import pytest
from amaranth import Module, Signal
from amaranth.lib.fifo import SyncFIFO
from amaranth.sim import Simulator

from attnforge.rtl.common import HeadRegFIFO, credit_room


def _pair(width: int, depth: int, zero_empty: bool = False) -> tuple[Module, HeadRegFIFO, SyncFIFO]:
    m = Module()
    m.submodules.dut = dut = HeadRegFIFO(width, depth, zero_empty)
    m.submodules.ref = ref = SyncFIFO(width=width, depth=depth)
    return m, dut, ref


def _run(m: Module, cycles: int, step: Callable[[object], None]) -> None:
    """Clock ``m`` for ``cycles`` cycles in the Amaranth simulator, ``step(ctx)`` (the checks, then the next
    inputs) before every edge."""
    sim = Simulator(m)
    sim.add_clock(1e-6)

    async def tb(ctx) -> None:
        for _ in range(cycles):
            step(ctx)
            await ctx.tick()

    sim.add_testbench(tb)
    sim.run()


@pytest.mark.parametrize(("depth", "p_write", "p_read", "seed", "zero_empty"),
                         [(2, 0.5, 0.5, 0, False), (4, 0.9, 0.3, 1, False), (8, 0.3, 0.9, 2, False),
                          (5, 1.0, 1.0, 3, False), (3, 0.8, 0.7, 4, False), (2, 0.5, 0.5, 5, True),
                          (4, 0.3, 0.9, 6, True)])
def test_headreg_fifo_matches_syncfifo(depth: int, p_write: float, p_read: float, seed: int,
                                       zero_empty: bool) -> None:
    """Same ``r_rdy``, ``r_data`` and ``w_rdy`` as SyncFIFO every cycle; with ``zero_empty``, ``r_data`` is also 0
    whenever nothing is readable (the top-k ORs its error flags into that idle output)."""
    m, dut, ref = _pair(12, depth, zero_empty)
    rng = random.Random(seed)
    seen = {"reads": 0}

    def step(ctx) -> None:
        assert ctx.get(dut.w_rdy) == ctx.get(ref.w_rdy)
        assert ctx.get(dut.r_rdy) == ctx.get(ref.r_rdy)
        if ctx.get(ref.r_rdy):
            assert ctx.get(dut.r_data) == ctx.get(ref.r_data)
        elif zero_empty:
            assert ctx.get(dut.r_data) == 0
        w = ctx.get(ref.w_rdy) and rng.random() < p_write
        r = rng.random() < p_read
        data = rng.randrange(1 << 12)
        for f in (dut, ref):
            ctx.set(f.w_en, w)
            ctx.set(f.w_data, data)
            ctx.set(f.r_en, r)
        seen["reads"] += int(r and ctx.get(ref.r_rdy))

    _run(m, 400, step)
    assert seen["reads"] > 50  # the comparison saw real traffic


def test_headreg_fifo_refuses_depth_below_two() -> None:
    with pytest.raises(ValueError, match="depth >= 2"):
        HeadRegFIFO(8, 1)


@pytest.mark.parametrize(("depth", "seed"), [(2, 0), (3, 1), (6, 2)])
def test_credit_room_tracks_syncfifo_w_rdy(depth: int, seed: int) -> None:
    """``credit_room`` (reserve 1) counting a FIFO's writes and reads is its ``w_rdy`` as a register: the spatten
    pipeline's tap uses it in place of the FIFO's level compare, so every cycle must agree."""
    m = Module()
    m.submodules.ref = ref = SyncFIFO(width=4, depth=depth)
    room = Signal(name="room", init=1)
    credit_room(m, depth, ref.w_en & ref.w_rdy, ref.r_en & ref.r_rdy, room)
    rng = random.Random(seed)
    full = {"cycles": 0}

    def step(ctx) -> None:
        assert ctx.get(room) == ctx.get(ref.w_rdy)
        full["cycles"] += 1 - ctx.get(ref.w_rdy)
        ctx.set(ref.w_en, ctx.get(room) and rng.random() < 0.7)
        ctx.set(ref.r_en, rng.random() < 0.5)

    _run(m, 300, step)
    assert full["cycles"] > 10  # the FIFO filled up, so a wrong count would have shown
