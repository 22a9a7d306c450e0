"""SpAtten's Q x K unit: one query broadcast against a K buffer line of ``lanes`` words per cycle, products reduced
by a reconfigurable adder tree into ``lanes / D`` D-way dot products (D chosen at run time), collected into beats
of ``S = lanes / min_d`` scores.

Streams (bit layout in :mod:`sim.spatten.fx`; golden :func:`sim.spatten.fx.qk`, cycles :func:`qk_cycles`):

* ``q``: ``max_d`` query words | ``n`` | ``log2 D`` -- one beat per job, before its keys.
* ``k``: ``lanes`` K words per beat, keys back to back (``lanes / D`` keys per beat, zero padded at the end).
* ``s``: ``S`` scores | count | last; every beat full except the last, so the softmax and the top-k downstream
  never see a hole. With ``D > min_d`` one output beat gathers ``D / min_d`` input beats.

Two register stages (products, then the tree and the collector) stall together on output back-pressure.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out

from rtl.common import lanes
from sim.spatten.fx import SpattenFx


def count_bits(s: int) -> int:
    return s.bit_length()


class QK(wiring.Component):
    def __init__(self, cfg: SpattenFx) -> None:
        cfg.validate()
        self.cfg = cfg
        super().__init__({
            "q": In(stream.Signature(unsigned(cfg.max_d * cfg.word_bits + cfg.n_bits + cfg.dlog_bits))),
            "k": In(stream.Signature(unsigned(cfg.lanes * cfg.word_bits))),
            "s": Out(stream.Signature(unsigned(cfg.s * cfg.score_bits + count_bits(cfg.s) + 1))),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        c = self.cfg
        W, L, S, SB = c.word_bits, c.lanes, c.s, c.score_bits
        dlogs = list(range(c.min_d.bit_length() - 1, c.max_d.bit_length()))
        qv = [Signal(signed(W), name=f"q{i}") for i in range(c.max_d)]
        dlog = Signal(c.dlog_bits)
        left = Signal(range(c.max_n + 1))  # keys not yet taken from the k stream
        gk = Signal(range(c.s + 1))  # keys gathered into the current output beat
        grp = Signal(range(max(2, c.max_d // c.min_d)))  # input beat within the current output beat
        busy = Signal()
        qin = lanes(self.q.payload, c.max_d, W)
        m.d.comb += self.q.ready.eq(~busy)
        with m.If(self.q.valid & ~busy):
            m.d.sync += [busy.eq(1), dlog.eq(self.q.payload[c.max_d * W + c.n_bits:]), grp.eq(0),
                         left.eq(self.q.payload[c.max_d * W:c.max_d * W + c.n_bits])]
            m.d.sync += [qv[i].eq(qin[i]) for i in range(c.max_d)]

        o_valid = Signal()
        o_lanes = [Signal(signed(SB), name=f"o{i}") for i in range(S)]
        o_cnt = Signal(range(S + 1))
        o_last = Signal()
        m.d.comb += [self.s.valid.eq(o_valid),
                     self.s.payload.eq(Cat(*[Mux(i < o_cnt, o_lanes[i], 0)[:SB] for i in range(S)], o_cnt, o_last))]
        adv = Signal()
        m.d.comb += adv.eq(~o_valid | self.s.ready)

        # stage 1: broadcast Q (lane j multiplies q[j mod D]) and multiply
        kin = lanes(self.k.payload, L, W)
        prod = [Signal(signed(2 * W), name=f"p{j}") for j in range(L)]
        s1_valid, s1_grp, s1_end, s1_last = Signal(), Signal.like(grp), Signal(), Signal()
        s1_cnt = Signal(range(S + 1))
        s1_dlog = Signal.like(dlog)  # the next job's q may arrive while this beat is still in stage 2
        per = Signal(range(L + 1))  # keys per input beat = lanes >> dlog
        ratio = Signal(range(c.max_d // c.min_d + 1))  # input beats per output beat = D / min_d
        with m.Switch(dlog):
            for dl in dlogs:
                with m.Case(dl):
                    m.d.comb += [per.eq(L >> dl), ratio.eq((1 << dl) // c.min_d)]
        take = Signal()
        m.d.comb += [self.k.ready.eq(busy & adv), take.eq(self.k.valid & busy & adv)]
        with m.If(adv):
            m.d.sync += s1_valid.eq(take)
        with m.If(take):
            last_in = left <= per
            gk_new = Mux(grp == 0, 0, gk) + Mux(last_in, left, per)
            m.d.sync += [gk.eq(gk_new), s1_cnt.eq(gk_new), s1_dlog.eq(dlog)]
            m.d.sync += [left.eq(Mux(last_in, 0, left - per)), s1_grp.eq(grp),
                         s1_end.eq(last_in | (grp == ratio - 1)), s1_last.eq(last_in)]
            m.d.sync += grp.eq(Mux(last_in | (grp == ratio - 1), 0, grp + 1))
            with m.If(last_in):
                m.d.sync += busy.eq(0)
            for j in range(L):
                qj = Signal(signed(W), name=f"qb{j}")
                with m.Switch(dlog):
                    for dl in dlogs:
                        with m.Case(dl):
                            m.d.comb += qj.eq(qv[j % (1 << dl)])
                m.d.sync += prod[j].eq(qj * kin[j])

        # stage 2: the adder tree, tapped at level log2 D, into the collector
        tree = [list(prod)]
        while len(tree[-1]) > 1:
            prev = tree[-1]
            nxt = []
            for i in range(len(prev) // 2):
                x = Signal(signed(SB), name=f"t{len(tree)}_{i}")
                m.d.comb += x.eq(prev[2 * i] + prev[2 * i + 1])
                nxt.append(x)
            tree.append(nxt)
        with m.If(adv):
            m.d.sync += o_valid.eq(s1_valid & s1_end)
            with m.If(s1_valid):
                with m.Switch(s1_dlog):
                    for dl in dlogs:
                        with m.Case(dl):
                            g = L >> dl
                            for i in range(S):
                                with m.If(s1_grp == i // g):
                                    m.d.sync += o_lanes[i].eq(tree[dl][i % g])
                with m.If(s1_end):
                    m.d.sync += [o_last.eq(s1_last), o_cnt.eq(s1_cnt)]
        return m
