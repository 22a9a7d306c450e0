"""MAC processing element: the 2D array's unit of work (QK and SLNV are both multiply-accumulates).

Input stream beats carry ``a | b << in_bits | last << 2*in_bits``; the PE accumulates ``a * b`` exactly in an
``acc_bits``-wide register sized for ``depth`` products (no overflow possible) and, after the beat flagged
``last``, offers the sum on its output stream ``PE_PIPE`` cycles later (operands, product and a retimed product are
registered first, for Fmax). Input is refused while a result waits, which is what gives the 2D array (built from these PEs) its
drain-then-accumulate rhythm.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from attnforge.sim.fixedpoint import clog2
from attnforge.sim.fusemax.cycle_model import PE_PIPE


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
        # One register per ECP5 DSP boundary: the operands (the broadcast across the 2D array is a long route on
        # its own), the product (multiply alone), a retimed copy of the product (yosys does not absorb the product
        # register into the MULT18X18D, and in an 8x8 array nextpnr placed the DSP far from the accumulator: two
        # hops let each register sit near its end), then the accumulate (carry chain alone). PE_PIPE in
        # sim/cycle.py counts the registers before the accumulator; the cycle model and this loop share it.
        a_r = Signal(signed(w))
        b_r = Signal(signed(w))
        prod = Signal(signed(2 * w))
        valid = [Signal(name=f"s{i}_valid") for i in range(PE_PIPE)]
        lasts = [Signal(name=f"s{i}_last") for i in range(PE_PIPE)]
        freshes = [Signal(name=f"s{i}_fresh") for i in range(PE_PIPE)]
        # While a run's last beat is still in the pipeline the input is refused, so a new run's first beat
        # cannot overwrite the sum before it has been offered.
        busy = Cat(*(v & la for v, la in zip(valid, lasts, strict=True))).any()
        m.d.comb += [self.i.ready.eq(~pending & ~busy), self.o.valid.eq(pending), self.o.payload.eq(acc)]
        # The pipeline never stalls (the accumulator takes a product every cycle), so the data registers need
        # no enables: what they hold is used only under the matching valid bit.
        m.d.sync += [valid[0].eq(self.i.valid & self.i.ready), a_r.eq(a), b_r.eq(b), prod.eq(a_r * b_r)]
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [lasts[0].eq(last), freshes[0].eq(fresh), fresh.eq(last)]
        data = prod
        for i in range(1, PE_PIPE):
            m.d.sync += [valid[i].eq(valid[i - 1]), lasts[i].eq(lasts[i - 1]), freshes[i].eq(freshes[i - 1])]
            if i >= 2:
                nxt = Signal(signed(2 * w), name=f"prod_r{i}")
                m.d.sync += nxt.eq(data)
                data = nxt
        with m.If(valid[-1]):
            m.d.sync += [acc.eq(Mux(freshes[-1], 0, acc) + data), pending.eq(lasts[-1])]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += pending.eq(0)
        return m
