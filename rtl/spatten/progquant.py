"""SpAtten's progressive-quantization unit: the bit-width converter that assembles K's MSB and LSB parts into the
on-chip word, and the decision that asks for the LSBs when a row's probabilities are too flat.

Streams (layouts :func:`attnforge.sim.contract.designs.progquant`; golden :func:`attnforge.sim.spatten.golden.assemble`
/ :func:`attnforge.sim.spatten.golden.decide`, cycles in :mod:`attnforge.sim.spatten.cycle_model`):

* ``i`` -> ``o`` (assembly, one register stage): ``lanes`` MSB codes | ``lanes`` LSB codes | use_lsb ->
  ``lanes`` words ``msb << lsb_bits | (lsb if use_lsb else 0)``. MSBs land in the top bits, as the paper's
  write-masked 12-bit SRAM words do.
* ``p`` -> ``d`` (decision, store-and-forward over a row): row (``S`` probabilities | count | last) | threshold (read on
  the row's first beat) -> one beat ``refetch | max probability | err``, ``refetch = max < threshold``. The
  recompute request is ``refetch``: the pipeline answers it by fetching the LSB region and rerunning Q x K and
  softmax once. A row that breaks the row rule (count 0 or above S, a short beat before the last, more than max_n
  entries) or brings a threshold above 1.0 is answered ``0 | 0 | 1`` when its decision would have come.
"""

from __future__ import annotations

from amaranth import Const, Module, Mux, Signal, unsigned
from amaranth.lib import wiring

from attnforge.rtl.common import contract_ports, pack_value, view, vmax_levels, vmax_pipelined
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.spatten_fx import SpattenFx


class ProgQuant(wiring.Component):
    def __init__(self, cfg: SpattenFx) -> None:
        cfg.validate()
        self.cfg = cfg
        self.contract = contract.progquant(cfg)
        super().__init__(contract_ports(self.contract))

    def elaborate(self, platform: object) -> Module:
        m = Module()
        c = self.cfg
        L, S, LB, PB = c.lanes, c.s, c.lsb_bits, c.prob_bits

        # ---- assembly
        iv = view(self.contract["i"], self.i.payload)
        use = iv.use_lsb
        word = self.contract.words["k_word"]
        a_valid = Signal()
        a_adv = Signal()
        m.d.comb += [a_adv.eq(~a_valid | self.o.ready), self.i.ready.eq(a_adv), self.o.valid.eq(a_valid)]
        with m.If(a_adv):
            m.d.sync += a_valid.eq(self.i.valid)
            with m.If(self.i.valid):
                words = [pack_value(word, {"lsb": Mux(use, iv.lsb[j], Const(0, LB)), "msb": iv.msb[j]}) for j in range(L)]
                m.d.sync += self.o.payload.eq(pack_value(self.contract["o"], words))

        # ---- decision
        pv = view(self.contract["p"], self.p.payload)
        pr, cnt, last, thr_in = pv.row.probs, pv.row.count, pv.row.last, pv.thr
        first = Signal(init=1)  # the next beat taken starts a row
        fresh = Signal(init=1)  # the next beat folded starts a row
        run = Signal(PB)
        thr = Signal(PB)
        d_valid = Signal()
        # The row max through a comparator tree registered per level, then the fold into the running max and the
        # decision (decision_latency in sim/spatten/fx_stream.py). The whole path stalls while a decision waits,
        # so a later row's decision cannot overwrite it.
        en = Signal()
        m.d.comb += [en.eq(~d_valid | self.d.ready), self.d.valid.eq(d_valid), self.p.ready.eq(en)]
        with m.If(self.d.ready & d_valid):
            m.d.sync += d_valid.eq(0)
        lv = vmax_levels(S)
        bv = [Signal(name=f"bv{k}") for k in range(lv)]
        bl = [Signal(name=f"bl{k}") for k in range(lv)]
        bt = [Signal(PB, name=f"bt{k}") for k in range(lv)]
        be = [Signal(name=f"be{k}") for k in range(lv)]  # the row is refused (known on its last beat)
        take = self.p.valid & self.p.ready
        tot = Signal(range(c.max_n + 1))  # entries of the row so far
        rej = Signal()  # an earlier beat of the row broke the row rule
        t_now = Mux(first, thr_in, thr)
        bad = rej | (t_now > (1 << c.prob_frac)) | (cnt == 0) | (cnt > S) | (~last & (cnt != S)) | (tot + cnt > c.max_n)
        with m.If(en):
            bm = vmax_pipelined(m, [Mux(j < cnt, pr[j], 0) for j in range(S)], unsigned(PB), "pmax")
            with m.If(take):
                m.d.sync += [first.eq(last), rej.eq(bad & ~last), tot.eq(Mux(last | bad, 0, tot + cnt))]
            # the threshold is read on a row's first beat
            m.d.sync += [bv[0].eq(take), bl[0].eq(last), bt[0].eq(t_now), be[0].eq(bad)]
            m.d.sync += [x.eq(y) for k in range(1, lv) for x, y in ((bv[k], bv[k - 1]), (bl[k], bl[k - 1]),
                                                                     (bt[k], bt[k - 1]), (be[k], be[k - 1]))]
            with m.If(take):
                m.d.sync += thr.eq(Mux(first, thr_in, thr))
            with m.If(bv[-1]):
                new = Mux(fresh | (bm > run), bm, run)
                m.d.sync += [run.eq(new), fresh.eq(bl[-1])]
                with m.If(bl[-1]):
                    m.d.sync += [d_valid.eq(1), self.d.payload.eq(pack_value(self.contract["d"], {
                        "refetch": (new < bt[-1]) & ~be[-1], "max_p": Mux(be[-1], 0, new), "err": be[-1]}))]
        return m
