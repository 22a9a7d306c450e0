"""MAC processing element: the 2D array's unit of work (QK and SLNV are both multiply-accumulates).

Input stream beats carry ``a | b << in_bits | last << 2*in_bits``; the PE accumulates ``a * b`` exactly in an
``acc_bits``-wide register sized for ``depth`` products (no overflow possible) and, after the beat flagged
``last``, offers the sum on its output stream two cycles later (operands and product are registered first, for
Fmax). Input is refused while a result waits, which is what gives the 2D array (built from these PEs) its
drain-then-accumulate rhythm.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from sim.golden.fixedpoint import clog2


def pe_acc_bits(in_bits: int, depth: int) -> int:
    """Bits for the exact sum of ``depth`` products of two signed ``in_bits`` numbers."""
    return 2 * in_bits + clog2(depth)


class PE(wiring.Component):
    """Signed MAC PE with stream in (a, b, last) and stream out (accumulated sum)."""

    def __init__(self, in_bits: int = 8, depth: int = 64) -> None:
        self.in_bits, self.depth = in_bits, depth
        self.acc_bits = pe_acc_bits(in_bits, depth)
        super().__init__({
            "i": In(stream.Signature(unsigned(2 * in_bits + 1))),
            "o": Out(stream.Signature(signed(self.acc_bits))),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        w = self.in_bits
        a = self.i.payload[:w].as_signed()
        b = self.i.payload[w:2 * w].as_signed()
        last = self.i.payload[2 * w]
        acc = Signal(signed(self.acc_bits))
        fresh = Signal(init=1)
        pending = Signal()
        # Three stages, one register per ECP5 DSP boundary: stage 0 registers the operands (the broadcast across
        # the 2D array is a long route on its own), stage 1 the product (multiply alone), stage 2 accumulates
        # (carry chain alone). Together in one cycle they miss 100 MHz on ECP5; split, each meets it.
        a_r = Signal(signed(w))
        b_r = Signal(signed(w))
        s0_valid, s0_last, s0_fresh = Signal(), Signal(), Signal()
        prod = Signal(signed(2 * w))
        s1_valid, s1_last, s1_fresh = Signal(), Signal(), Signal()
        # While a run's last beat is still in the pipeline the input is refused, so a new run's first beat
        # cannot overwrite the sum before it has been offered.
        m.d.comb += [self.i.ready.eq(~pending & ~(s0_valid & s0_last) & ~(s1_valid & s1_last)),
                     self.o.valid.eq(pending), self.o.payload.eq(acc)]
        m.d.sync += [s0_valid.eq(self.i.valid & self.i.ready), s1_valid.eq(s0_valid)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [a_r.eq(a), b_r.eq(b), s0_last.eq(last), s0_fresh.eq(fresh), fresh.eq(last)]
        with m.If(s0_valid):
            m.d.sync += [prod.eq(a_r * b_r), s1_last.eq(s0_last), s1_fresh.eq(s0_fresh)]
        with m.If(s1_valid):
            m.d.sync += [acc.eq(Mux(s1_fresh, 0, acc) + prod), pending.eq(s1_last)]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += pending.eq(0)
        return m
