"""The registered stream slice (rtl/common.py SkidBuffer) alone, in the Amaranth simulator: random valid and ready
on both sides must keep every beat, in order; with both sides always willing it passes one beat per cycle, one
cycle late (the latency the contract counts as SKID_LATENCY); the same for slices wider than one data chunk (each
chunk with its own copies of the valid flags)."""

from __future__ import annotations

import random

import pytest
from amaranth.sim import Simulator

from attnforge.rtl.common import SkidBuffer
from attnforge.sim.contract import SKID_LATENCY


def _run(p_valid: float, p_ready: float, beats: int, seed: int,
         width: int = 16) -> tuple[list[int], list[tuple[int, int]]]:
    """Drive ``beats`` words through the slice; returns the words out and the (in, out) handshake cycles."""
    dut = SkidBuffer(width)
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    rng = random.Random(seed)
    words = [rng.randrange(1 << width) for _ in range(beats)]
    got: list[int] = []
    t_in: list[int] = []
    t_out: list[int] = []

    async def tb(ctx) -> None:
        sent, cyc = 0, 0
        while len(got) < beats and cyc < 20 * beats + 20:
            v = sent < beats and rng.random() < p_valid
            ctx.set(dut.i.valid, v)
            ctx.set(dut.i.payload, words[sent] if sent < beats else 0)
            ctx.set(dut.o.ready, rng.random() < p_ready)
            if v and ctx.get(dut.i.ready):
                t_in.append(cyc)
                sent += 1
            if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
                got.append(ctx.get(dut.o.payload))
                t_out.append(cyc)
            await ctx.tick()
            cyc += 1

    sim.add_testbench(tb)
    sim.run()
    assert got == words[:len(got)]
    return got, list(zip(t_in, t_out, strict=False))


@pytest.mark.parametrize(("p_valid", "p_ready", "seed"), [(0.5, 0.5, 0), (0.9, 0.3, 1), (0.3, 0.9, 2), (1.0, 0.6, 3)])
def test_skid_keeps_every_beat_in_order(p_valid: float, p_ready: float, seed: int) -> None:
    got, _ = _run(p_valid, p_ready, 150, seed)
    assert len(got) == 150


def test_skid_full_throughput_one_cycle_late() -> None:
    """Both sides always willing: beat k enters in cycle k and leaves in cycle k + SKID_LATENCY."""
    got, times = _run(1.0, 1.0, 64, 7)
    assert len(got) == 64
    assert times == [(k, k + SKID_LATENCY) for k in range(64)]


@pytest.mark.parametrize("width", [33, 100])
def test_wide_skid_chunks_keep_every_beat_in_order(width: int) -> None:
    """Wider than one chunk: each chunk's copies of the valid flags must select as the flags do."""
    got, _ = _run(0.7, 0.5, 150, 11 + width, width)
    assert len(got) == 150
    got, times = _run(1.0, 1.0, 40, 5, width)
    assert times == [(k, k + SKID_LATENCY) for k in range(40)]
