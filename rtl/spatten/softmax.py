"""SpAtten's softmax in fixed point: the row is buffered while its maximum is found, then one pass computes the
exponentials (the FuseMax exponent unit, one per lane) and their sum, one restoring division gives the reciprocal,
and a second pass recomputes each exponential and multiplies it by the reciprocal.

Recomputing the exponentials in the normalize pass instead of storing them keeps the buffer at the scores' width and
costs nothing extra: the exponent units would otherwise sit idle in that pass.

Streams (golden :func:`sim.spatten.fx.softmax`, cycles :func:`sim.spatten.fx.softmax_cycles`):

* ``i``: ``S`` scores | count | last | alpha_q | alpha_sh (the exponent constant, read on a row's first beat).
* ``o``: ``S`` probabilities (unsigned Q0.prob_frac) | count | last -- the same beat shape as the input.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.common import Reciprocal, exp_unit, lanes, round_shift_const, vmax
from rtl.spatten.qk import count_bits
from sim.spatten.fx import SpattenFx


class Softmax(wiring.Component):
    def __init__(self, cfg: SpattenFx) -> None:
        cfg.validate()
        self.cfg = cfg
        fx = cfg.fx
        self.beat_bits = cfg.s * cfg.score_bits + count_bits(cfg.s) + 1
        super().__init__({
            "i": In(stream.Signature(unsigned(self.beat_bits + fx.alpha_bits + fx.alpha_shift_bits))),
            "o": Out(stream.Signature(unsigned(cfg.s * cfg.prob_bits + count_bits(cfg.s) + 1))),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        c, fx = self.cfg, self.cfg.fx
        S, SB, CB = c.s, c.score_bits, count_bits(c.s)
        depth = max(2, -(-c.max_n // S))
        m.submodules.buf = buf = Memory(shape=unsigned(self.beat_bits), depth=depth, init=[])
        wr, rd = buf.write_port(), buf.read_port()
        m.submodules.div = div = Reciprocal(1, fx.rd_bits, fx)

        nb = Signal(range(depth + 1))  # beats in the row
        mx = Signal(signed(SB))
        aq = Signal(fx.alpha_bits)
        ash = Signal(fx.alpha_shift_bits)
        den = Signal(fx.rd_bits)
        iss = Signal(range(depth + 1))
        pend = Signal()
        lo = -(1 << (SB - 1))

        def unpack_beat(word: object) -> tuple[list, Signal, Signal]:
            sc = lanes(word, S, SB)
            return sc, word[S * SB:S * SB + CB], word[S * SB + CB]

        # exponent units on the buffered beat (both passes)
        sc, cnt, last = unpack_beat(rd.data)
        e = []
        for j in range(S):
            d = Signal(fx.d_bits, name=f"dist{j}")
            m.d.comb += d.eq(mx - sc[j])
            x = exp_unit(m, d, aq, ash, fx, f"exp{j}")
            ej = Signal(fx.prob_bits, name=f"e{j}")
            m.d.comb += ej.eq(Mux(j < cnt, x, 0))
            e.append(ej)
        esum = Signal(fx.rd_bits)
        m.d.comb += esum.eq(sum(e))
        recip = div.q[:fx.qw]
        probs = [round_shift_const(ej * recip, fx.rb - c.prob_frac)[:c.prob_bits] for ej in e]

        o_valid = Signal()
        o_payload = Signal(len(self.o.payload))
        m.d.comb += [self.o.valid.eq(o_valid), self.o.payload.eq(o_payload), wr.data.eq(self.i.payload[:self.beat_bits]),
                     wr.addr.eq(nb), div.d.eq(den), rd.en.eq(0)]  # read ports default to enabled
        adv = Signal()
        m.d.comb += adv.eq(~o_valid | self.o.ready)
        isc, icnt, ilast = unpack_beat(self.i.payload)

        with m.FSM() as fsm:
            with m.State("LOAD"):
                with m.If(self.i.valid):
                    bmax = vmax([Mux(j < icnt, isc[j], lo) for j in range(S)])
                    m.d.comb += wr.en.eq(1)
                    m.d.sync += [nb.eq(nb + 1), mx.eq(Mux((nb == 0) | (bmax > mx), bmax, mx))]
                    with m.If(nb == 0):
                        m.d.sync += [aq.eq(self.i.payload[self.beat_bits:self.beat_bits + fx.alpha_bits]),
                                     ash.eq(self.i.payload[self.beat_bits + fx.alpha_bits:])]
                    with m.If(ilast):
                        m.d.sync += [iss.eq(0), pend.eq(0), den.eq(0)]
                        m.next = "EXP"
            with m.State("EXP"):
                m.d.comb += [rd.addr.eq(iss), rd.en.eq(1)]
                m.d.sync += [pend.eq(iss < nb), iss.eq(Mux(iss < nb, iss + 1, iss))]
                with m.If(pend):
                    m.d.sync += den.eq(den + esum)
                    with m.If(iss == nb):
                        m.next = "DIV0"
            with m.State("DIV0"):
                m.d.comb += div.start.eq(1)
                m.next = "DIV1"
            with m.State("DIV1"):
                with m.If(div.done):
                    m.d.sync += [iss.eq(0), pend.eq(0)]
                    m.next = "NORM"
            with m.State("NORM"):
                m.d.comb += rd.addr.eq(iss)
                with m.If(self.o.ready & o_valid):
                    m.d.sync += o_valid.eq(0)
                    with m.If(o_payload[-1]):
                        m.d.sync += nb.eq(0)
                        m.next = "LOAD"
                with m.If(adv):
                    m.d.comb += rd.en.eq(1)
                    m.d.sync += [pend.eq(iss < nb), iss.eq(Mux(iss < nb, iss + 1, iss))]
                    with m.If(pend):
                        m.d.sync += [o_valid.eq(1), o_payload.eq(Cat(*probs, cnt, last))]
        m.d.comb += self.i.ready.eq(fsm.ongoing("LOAD"))  # continuous: see rtl/spatten/topk.py
        return m
