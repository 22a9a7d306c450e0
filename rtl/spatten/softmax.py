"""SpAtten's softmax in fixed point: the row is buffered while its maximum is found, then one pass computes the
exponentials (the FuseMax exponent unit, one per lane) and their sum, one restoring division gives the reciprocal,
and a second pass recomputes each exponential and multiplies it by the reciprocal.

Recomputing the exponentials in the normalize pass instead of storing them keeps the buffer at the scores' width and
costs nothing extra: the exponent units would otherwise sit idle in that pass.

Streams (layouts :func:`attnforge.sim.contract.designs.softmax`; golden :func:`attnforge.sim.spatten.golden.softmax`,
cycles :func:`attnforge.sim.spatten.cycle_model.softmax_cycles`):

* ``i``: row (``S`` scores | count | last) | alpha (alpha_q | alpha_sh: the exponent constant, read on a row's first
  beat). The row part is what the buffer stores.
* ``o``: ``S`` probabilities (unsigned Q0.prob_frac) | count | last -- the same beat shape as the input.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from attnforge.rtl.common import (
    Reciprocal,
    contract_ports,
    exp2_rom,
    exp2_scale,
    pack_value,
    round_shift_coarse,
    round_shift_const,
    round_shift_fine,
    split_product,
    view,
    vmax_levels,
    vmax_pipelined,
)
from attnforge.sim.contract import SOFTMAX_EXP_PIPE, SOFTMAX_NORM_PIPE, count_bits
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.fixedpoint import clog2
from attnforge.sim.contract.spatten_fx import SpattenFx

FINE = 3  #: the exponent argument's rounding shift: coarse (multiples of 8) in one cycle, fine (0..7) in the next


class Softmax(wiring.Component):
    def __init__(self, cfg: SpattenFx) -> None:
        cfg.validate()
        self.cfg = cfg
        self.contract = contract.softmax(cfg)
        self.row = self.contract["i"]["row"]  # the part of an input beat the row buffer keeps
        self.beat_bits = self.row.width
        super().__init__(contract_ports(self.contract))

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
            row = view(self.row, word)
            return [row.scores[j] for j in range(S)], row.count, row.last

        # The exponent pipeline, shared by both passes: distance, partial products by alpha, their sum, coarse and
        # fine rounding shift, ROM, shifter (and in NORM the partial products by the reciprocal and their sum), one register
        # each (SOFTMAX_EXP_PIPE / SOFTMAX_NORM_PIPE in sim/spatten/fx_stream.py count them). It advances with
        # `adv`, which is 1 outside NORM (no output is pending there), so output back-pressure in NORM stalls it
        # as a whole.
        adv = Signal()
        o_valid = Signal()
        o_payload = Signal(len(self.o.payload))
        m.d.comb += adv.eq(~o_valid | self.o.ready)
        sc, cnt, last = unpack_beat(rd.data)
        o_beat = view(self.contract["o"], o_payload)
        n_st = SOFTMAX_NORM_PIPE
        vs = [Signal(name=f"v{k}") for k in range(n_st)]
        cs = [Signal(CB, name=f"c{k}") for k in range(n_st)]
        ls = [Signal(name=f"l{k}") for k in range(n_st)]
        dist = [Signal(fx.d_bits, name=f"dist{j}") for j in range(S)]
        prod = [Signal(fx.d_bits + fx.alpha_bits, name=f"prod{j}") for j in range(S)]
        xc = [Signal(fx.d_bits + fx.alpha_bits, name=f"xc{j}") for j in range(S)]
        xrb = [Signal(name=f"xrb{j}") for j in range(S)]
        targ = [Signal(fx.t_bits, name=f"targ{j}") for j in range(S)]
        rom = [Signal(fx.prob_bits, name=f"rom{j}") for j in range(S)]
        rsh = [Signal(clog2(fx.p_frac + 1), name=f"rsh{j}") for j in range(S)]
        rzero = [Signal(name=f"rzero{j}") for j in range(S)]
        e = [Signal(fx.prob_bits, name=f"e{j}") for j in range(S)]
        q = [Signal(fx.prob_bits + fx.qw, name=f"q{j}") for j in range(S)]
        recip = div.q[:fx.qw]
        with m.If(adv):
            m.d.sync += [vs[0].eq(pend), cs[0].eq(cnt), ls[0].eq(last)]
            m.d.sync += [x.eq(y) for k in range(1, n_st) for x, y in ((vs[k], vs[k - 1]), (cs[k], cs[k - 1]),
                                                                     (ls[k], ls[k - 1]))]
            for j in range(S):
                lut, sh, zero = exp2_rom(m, targ[j], fx, f"exp{j}")
                m.d.sync += [rom[j].eq(lut), rsh[j].eq(sh), rzero[j].eq(zero)]
                pp_regs, pp_sum = split_product(dist[j], aq, f"da{j}")
                qq_regs, qq_sum = split_product(recip, e[j], f"er{j}")
                m.d.sync += [*pp_regs, *qq_regs]
                m.d.sync += [dist[j].eq(mx - sc[j]), prod[j].eq(pp_sum),
                             *(r.eq(v) for r, v in zip((xc[j], xrb[j]), round_shift_coarse(prod[j], ash, FINE), strict=True)),
                             targ[j].eq(round_shift_fine(xc[j], xrb[j], ash, FINE)),
                             e[j].eq(Mux(j < cs[SOFTMAX_EXP_PIPE - 2], exp2_scale(rom[j], rsh[j], rzero[j]), 0)),
                             q[j].eq(qq_sum)]
        ve, le = vs[SOFTMAX_EXP_PIPE - 1], ls[SOFTMAX_EXP_PIPE - 1]  # e[] is valid with these
        esum = Signal(fx.rd_bits)
        m.d.comb += esum.eq(sum(e))
        probs = [round_shift_const(qj, fx.rb - c.prob_frac)[:c.prob_bits] for qj in q]

        iv = view(self.contract["i"], self.i.payload)
        m.d.comb += [self.o.valid.eq(o_valid), self.o.payload.eq(o_payload), wr.data.eq(iv.row.as_value()),
                     wr.addr.eq(nb), div.d.eq(den), rd.en.eq(0)]  # read ports default to enabled
        isc, icnt, ilast = unpack_beat(iv.row.as_value())
        # the row maximum: a comparator tree registered per level behind the load, then the fold into mx. EXP
        # waits softmax_max_wait cycles so that the last beat's fold lands before the first distance is taken.
        lv = vmax_levels(S)
        bm = vmax_pipelined(m, [Mux(j < icnt, isc[j], lo) for j in range(S)], signed(SB), "bmax")
        bv = [Signal(name=f"bv{k}") for k in range(lv)]
        bfirst = [Signal(name=f"bfirst{k}") for k in range(lv)]
        m.d.sync += [bv[0].eq(self.i.valid & self.i.ready), bfirst[0].eq(nb == 0)]
        m.d.sync += [x.eq(y) for k in range(1, lv) for x, y in ((bv[k], bv[k - 1]), (bfirst[k], bfirst[k - 1]))]
        with m.If(bv[-1]):
            m.d.sync += mx.eq(Mux(bfirst[-1] | (bm > mx), bm, mx))
        wait = Signal(range(lv + 1))  # MAX lasts lv - 1 cycles (skipped when the tree is one level)

        with m.FSM() as fsm:
            with m.State("LOAD"):
                with m.If(self.i.valid):
                    m.d.comb += wr.en.eq(1)
                    m.d.sync += nb.eq(nb + 1)
                    with m.If(nb == 0):
                        m.d.sync += [aq.eq(iv.alpha.alpha_q), ash.eq(iv.alpha.alpha_sh)]
                    with m.If(ilast):
                        m.d.sync += [iss.eq(0), pend.eq(0), den.eq(0), wait.eq(max(0, lv - 2))]
                        m.next = "EXP" if lv == 1 else "MAX"
            with m.State("MAX"):
                with m.If(wait == 0):
                    m.next = "EXP"
                with m.Else():
                    m.d.sync += wait.eq(wait - 1)
            with m.State("EXP"):
                m.d.comb += [rd.addr.eq(iss), rd.en.eq(1)]
                m.d.sync += [pend.eq(iss < nb), iss.eq(Mux(iss < nb, iss + 1, iss))]
                with m.If(ve):
                    m.d.sync += den.eq(den + esum)
                    with m.If(le):
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
                with m.If(self.o.ready & o_valid & o_beat.last):
                    m.d.sync += nb.eq(0)
                    m.next = "LOAD"
                with m.If(adv):
                    m.d.comb += rd.en.eq(1)
                    m.d.sync += [pend.eq(iss < nb), iss.eq(Mux(iss < nb, iss + 1, iss))]
        with m.If(adv):
            m.d.sync += [o_valid.eq(vs[-1] & fsm.ongoing("NORM")),
                         o_payload.eq(pack_value(self.contract["o"], {"probs": probs, "count": cs[-1], "last": ls[-1]}))]
        m.d.comb += self.i.ready.eq(fsm.ongoing("LOAD"))  # continuous: see rtl/spatten/topk.py
        return m
