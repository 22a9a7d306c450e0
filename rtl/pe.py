"""MAC processing element: the 2D array's unit of work (QK and SLNV are both multiply-accumulates).

Input stream beats carry ``a | b << in_bits | last << 2*in_bits``; the PE accumulates ``a * b`` exactly in an
``acc_bits``-wide register sized for ``depth`` products (no overflow possible) and, after the beat flagged
``last``, offers the sum on its output stream ``PE_PIPE`` cycles later (operands, product and a retimed product are
registered first, for Fmax). Input is refused while a result waits, which is what gives the 2D array (built from these PEs) its
drain-then-accumulate rhythm.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from attnforge.rtl.common import stream_of, view
from attnforge.sim.contract import PE_PIPE, pe_acc_bits
from attnforge.sim.contract import designs as contract

__all__ = ["PE", "mac_pipeline", "pe_acc_bits"]


def mac_pipeline(m: Module, a: Value, b: Value, name: str) -> Signal:
    """The MAC's multiply as ``PE_PIPE`` free-running registers, one per ECP5 DSP boundary: the operands (the
    broadcast across a 2D array is a long route on its own), the product (multiply alone), then retimed copies of
    the product (yosys does not absorb the product register into the MULT18X18D, and in an 8x8 array nextpnr
    placed the DSP far from the accumulator: two hops let each register sit near its end). Returns the product of
    the operands of ``PE_PIPE`` cycles ago; the accumulate (carry chain alone) is the caller's next stage, and the
    caller tracks validity alongside. The PE and the FuseMax tile engine's 2D array share it, so ``PE_PIPE`` in
    :mod:`attnforge.sim.contract` is one number for both and for their cycle models."""
    a_r = Signal(Value.cast(a).shape(), name=f"{name}_a")
    b_r = Signal(Value.cast(b).shape(), name=f"{name}_b")
    width = len(a_r) + len(b_r)
    data = Signal(signed(width), name=f"{name}_p")
    m.d.sync += [a_r.eq(a), b_r.eq(b), data.eq(a_r * b_r)]
    for i in range(2, PE_PIPE):
        nxt = Signal(signed(width), name=f"{name}_p{i}")
        m.d.sync += nxt.eq(data)
        data = nxt
    return data


class PE(wiring.Component):
    """Signed MAC PE with stream in (a, b, last) and stream out (accumulated sum)."""

    def __init__(self, in_bits: int = 8, depth: int = 64) -> None:
        self.in_bits, self.depth = in_bits, depth
        self.acc_bits = pe_acc_bits(in_bits, depth)
        self.contract = contract.pe(in_bits, depth)
        super().__init__({"i": In(stream_of(self.contract["i"])), "o": Out(stream_of(self.contract["o"]))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        beat = view(self.contract["i"], self.i.payload)
        a, b, last = beat.a, beat.b, beat.last
        acc = Signal(signed(self.acc_bits))
        fresh = Signal(init=1)
        pending = Signal()
        # The pipeline never stalls (the accumulator takes a product every cycle), so the data registers need
        # no enables: what they hold is used only under the matching valid bit.
        data = mac_pipeline(m, a, b, "mac")
        valid = [Signal(name=f"s{i}_valid") for i in range(PE_PIPE)]
        lasts = [Signal(name=f"s{i}_last") for i in range(PE_PIPE)]
        freshes = [Signal(name=f"s{i}_fresh") for i in range(PE_PIPE)]
        # While a run's last beat is still in the pipeline the input is refused, so a new run's first beat
        # cannot overwrite the sum before it has been offered.
        busy = Cat(*(v & la for v, la in zip(valid, lasts, strict=True))).any()
        m.d.comb += [self.i.ready.eq(~pending & ~busy), self.o.valid.eq(pending), self.o.payload.eq(acc)]
        m.d.sync += valid[0].eq(self.i.valid & self.i.ready)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [lasts[0].eq(last), freshes[0].eq(fresh), fresh.eq(last)]
        for i in range(1, PE_PIPE):
            m.d.sync += [valid[i].eq(valid[i - 1]), lasts[i].eq(lasts[i - 1]), freshes[i].eq(freshes[i - 1])]
        with m.If(valid[-1]):
            m.d.sync += [acc.eq(Mux(freshes[-1], 0, acc) + data), pending.eq(lasts[-1])]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += pending.eq(0)
        return m
