"""SpAtten's prob x V unit: ``S`` probabilities per cycle, each broadcast across its V row of ``max_d`` values; the
products of a column are reduced by an S-way adder tree (``max_d`` trees, the paper's 64 eight-way trees) into a
``max_d``-wide accumulator, rounded once when the row's last beat has been added.

Streams (golden :func:`sim.spatten.fx.pv`, cycles :func:`sim.spatten.fx.pv_cycles`):

* ``i``: ``S`` probabilities | ``S x max_d`` V values (row-major, rows beyond D zero) | count | last.
* ``o``: ``max_d`` outputs (``out_frac`` fraction bits), one beat per job.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.common import lanes, round_shift_const, vsum
from rtl.spatten.qk import count_bits
from sim.spatten.fx import SpattenFx


class PV(wiring.Component):
    def __init__(self, cfg: SpattenFx) -> None:
        cfg.validate()
        self.cfg = cfg
        s, d = cfg.s, cfg.max_d
        super().__init__({
            "i": In(stream.Signature(unsigned(s * cfg.prob_bits + s * d * cfg.v_bits + count_bits(s) + 1))),
            "o": Out(stream.Signature(unsigned(d * cfg.out_bits))),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        c = self.cfg
        S, D, PB, VB = c.s, c.max_d, c.prob_bits, c.v_bits
        pl = self.i.payload
        probs = lanes(pl, S, PB, is_signed=False)
        vals = lanes(pl[S * PB:], S * D, VB)
        cnt = pl[S * PB + S * D * VB:S * PB + S * D * VB + count_bits(S)]
        last = pl[-1]

        o_valid = Signal()
        o_payload = Signal(len(self.o.payload))
        adv = Signal()
        m.d.comb += [self.o.valid.eq(o_valid), self.o.payload.eq(o_payload), adv.eq(~o_valid | self.o.ready),
                     self.i.ready.eq(adv)]
        prod = [[Signal(signed(PB + VB + 1), name=f"p{r}_{d}") for d in range(D)] for r in range(S)]
        s1_valid, s1_last = Signal(), Signal()
        acc = [Signal(signed(c.acc_bits), name=f"acc{d}") for d in range(D)]
        with m.If(adv):
            m.d.sync += s1_valid.eq(self.i.valid)
            with m.If(self.i.valid):
                m.d.sync += s1_last.eq(last)
                for r in range(S):
                    pr = Mux(r < cnt, Cat(probs[r], Const(0, 1)).as_signed(), 0)
                    for d in range(D):
                        m.d.sync += prod[r][d].eq(pr * vals[r * D + d])
            # stage 2: column trees into the accumulators
            with m.If(s1_valid):
                for d in range(D):
                    col = Signal(signed(c.acc_bits), name=f"col{d}")
                    m.d.comb += col.eq(vsum([prod[r][d] for r in range(S)]))
                    total = acc[d] + col
                    m.d.sync += acc[d].eq(Mux(s1_last, 0, total))
                    with m.If(s1_last):
                        m.d.sync += o_payload[d * c.out_bits:(d + 1) * c.out_bits].eq(
                            round_shift_const(total, c.prob_frac - c.out_frac))
                m.d.sync += o_valid.eq(s1_last)
            with m.Else():
                m.d.sync += o_valid.eq(0)
        return m
