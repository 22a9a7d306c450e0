"""The one-flip-flop-per-state machine (rtl/common.py OneHotFSM) against the plain model it replaces, Amaranth's
``m.FSM``: the same four-state machine written both ways (transitions under nested conditions, two ``next`` calls
in one cycle where the later must win, a state left and re-entered), driven side by side with random inputs in the
Amaranth simulator; every cycle both must be in the same state and drive the same outputs, and exactly one state
flip-flop is set. Swapping one for the other therefore changes no cycle of a design (the spatten blocks' own
regressions check that again, cycle by cycle, on their workloads)."""

from __future__ import annotations

import random

import pytest
from amaranth import Module, Signal
from amaranth.sim import Simulator

from attnforge.rtl.common import OneHotFSM

STATES = ("IDLE", "A", "B", "WAIT")


def _binary(m: Module, go: Signal, sel: Signal, count: Signal, outs: dict[str, Signal]) -> None:
    with m.FSM() as fsm:
        with m.State("IDLE"):
            with m.If(go):
                m.d.sync += count.eq(0)
                m.next = "A"
        with m.State("A"):
            m.d.sync += count.eq(count + 1)
            with m.If(sel):
                m.next = "B"
            with m.If(count == 3):  # a later transition in the same cycle wins
                m.next = "WAIT"
        with m.State("B"):
            with m.If(sel):
                m.next = "A"
            with m.Else():
                m.next = "IDLE"
        with m.State("WAIT"):
            with m.If(go & sel):
                m.next = "IDLE"
    for s, o in outs.items():
        m.d.comb += o.eq(fsm.ongoing(s))


def _onehot(m: Module, go: Signal, sel: Signal, count: Signal, outs: dict[str, Signal]) -> OneHotFSM:
    st = OneHotFSM(STATES, "oh")
    with m.If(st.ongoing("IDLE")):
        with m.If(go):
            m.d.sync += count.eq(0)
            st.next(m, "A")
    with m.If(st.ongoing("A")):
        m.d.sync += count.eq(count + 1)
        with m.If(sel):
            st.next(m, "B")
        with m.If(count == 3):
            st.next(m, "WAIT")
    with m.If(st.ongoing("B")):
        with m.If(sel):
            st.next(m, "A")
        with m.Else():
            st.next(m, "IDLE")
    with m.If(st.ongoing("WAIT")):
        with m.If(go & sel):
            st.next(m, "IDLE")
    for s, o in outs.items():
        m.d.comb += o.eq(st.ongoing(s))
    return st


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_onehot_fsm_matches_amaranth_fsm(seed: int) -> None:
    m = Module()
    go, sel = Signal(), Signal()
    ref = {s: Signal(name=f"ref_{s}") for s in STATES}
    dut = {s: Signal(name=f"dut_{s}") for s in STATES}
    c_ref, c_dut = Signal(3), Signal(3)
    _binary(m, go, sel, c_ref, ref)
    st = _onehot(m, go, sel, c_dut, dut)
    sim = Simulator(m)
    sim.add_clock(1e-6)
    rng = random.Random(seed)
    visits = dict.fromkeys(STATES, 0)

    async def tb(ctx) -> None:
        for _ in range(500):
            state = [s for s in STATES if ctx.get(ref[s])]
            assert [s for s in STATES if ctx.get(dut[s])] == state
            assert bin(ctx.get(st.state)).count("1") == 1
            assert ctx.get(c_dut) == ctx.get(c_ref)
            visits[state[0]] += 1
            ctx.set(go, rng.random() < 0.5)
            ctx.set(sel, rng.random() < 0.3)
            await ctx.tick()

    sim.add_testbench(tb)
    sim.run()
    assert min(visits.values()) > 10  # every state was visited, WAIT (the later-wins transition) included


def test_onehot_fsm_refuses_unknown_and_duplicate_states() -> None:
    st = OneHotFSM(STATES, "oh")
    with pytest.raises(ValueError, match="no state 'C'; states are IDLE, A, B, WAIT"):
        st.ongoing("C")
    with pytest.raises(ValueError, match="distinct state names"):
        OneHotFSM(("A", "A"), "dup")
