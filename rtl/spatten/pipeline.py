"""SpAtten's per-query attention pipeline: one query against ``n`` keys and values fetched from a memory model.

The blocks are the registry's own (:class:`QK`, :class:`Softmax`, :class:`ProgQuant`, :class:`TopK`, :class:`PV`),
chained as paper Fig. 8 chains them:

1. request the K MSB region; MSB beats pass the bit-width converter (LSBs zero) into Q x K and are kept in the
   MSB bank; scores go through the softmax; probabilities go to the prob buffer and the decision unit;
2. if the row's max probability is below the threshold: request the LSB region, reassemble every word from the
   MSB bank and the LSB beat, and rerun Q x K and the softmax once (the decision of the rerun is not used);
3. the prob buffer streams into the local-V top-k (k = ``kv``); each output row of kept (probability, index)
   pairs becomes one V request; the V rows that come back meet their probabilities in prob x V;
4. one output beat: the attention output, whether LSBs were refetched, and the first pass's max probability.

Streams (layouts :func:`attnforge.sim.contract.designs.spatten_pipeline`; golden
:func:`attnforge.sim.spatten.golden.pipeline`; cycles :func:`attnforge.sim.spatten.cycle_model.pipeline_cycles`):

* ``q`` in: ``max_d`` query words | job (n | log2 D | kv | threshold | alpha_q | alpha_sh).
* ``req`` out: kind (0 K MSB region, 1 K LSB region, 2 V rows) | ``S`` indices | count.
* ``kmem`` in: ``lanes`` K MSB codes per beat (LSB beats: ``lanes`` LSB codes in the low bits).
* ``vmem`` in: ``S`` V rows of ``max_d`` values, in the order of the request's indices.
* ``o`` out: ``max_d`` outputs | refetch | max probability.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory

from attnforge.rtl.common import contract_ports, pack_value, view
from attnforge.rtl.spatten.progquant import ProgQuant
from attnforge.rtl.spatten.pv import PV
from attnforge.rtl.spatten.qk import QK
from attnforge.rtl.spatten.softmax import Softmax
from attnforge.rtl.spatten.topk import TopK
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.designs import KIND_LSB, KIND_MSB, KIND_V
from attnforge.sim.contract.spatten_fx import SpattenFx


class SpattenPipeline(wiring.Component):
    def __init__(self, cfg: SpattenFx) -> None:
        cfg.validate()
        self.cfg = cfg
        self.contract = contract.spatten_pipeline(cfg)
        super().__init__(contract_ports(self.contract))

    def elaborate(self, platform: object) -> Module:
        m = Module()
        c = self.cfg
        S, L = c.s, c.lanes
        m.submodules.qk = qk = QK(c)
        m.submodules.sm = sm = Softmax(c)
        m.submodules.pq = pq = ProgQuant(c)
        m.submodules.topk = topk = TopK(comparators=S, max_n=c.max_n, data_bits=c.prob_bits, signed_data=0)
        m.submodules.pv = pv = PV(c)

        # ---- job registers
        qv = view(self.contract["q"], self.q.payload)
        qwords = Signal(c.max_d * c.word_bits)
        job = Signal(self.contract.words["job"].width, name="job")
        f = view(self.contract.words["job"], job)
        refetch = Signal()
        max_p = Signal(c.prob_bits)
        probs = sm.contract["o"]  # the probability row beat: softmax output, prob buffer rows, kept pairs
        q_pending = Signal()  # QK still needs this job's query beat (once per pass)
        pass2 = Signal()

        # ---- storage: MSB bank (one K line per beat) and the prob buffer (one S-lane row per beat)
        kdepth = max(2, -(-c.max_n * c.max_d // L))
        m.submodules.kbank = kbank = Memory(shape=unsigned(L * c.msb_bits), depth=kdepth, init=[])
        kb_wr, kb_rd = kbank.write_port(), kbank.read_port()
        pdepth = max(2, -(-c.max_n // S))
        m.submodules.pbuf = pbuf = Memory(shape=unsigned(probs["probs"].width), depth=pdepth, init=[])
        pb_wr, pb_rd = pbuf.write_port(), pbuf.read_port()
        m.submodules.pairs = fifo = SyncFIFO(width=probs.width, depth=4)

        # ---- Q x K front end: query beat, K beats through the bit-width converter
        m.d.comb += [qk.q.valid.eq(q_pending),
                     qk.q.payload.eq(pack_value(qk.contract["q"], {"q": qwords, "job": {"n": f.n, "dlog": f.dlog}}))]
        with m.If(qk.q.valid & qk.q.ready):
            m.d.sync += q_pending.eq(0)
        kcnt = Signal(range(kdepth + 1))
        kfire = Signal()
        k_on = Signal()
        m.d.comb += [kfire.eq(self.kmem.valid & self.kmem.ready),
                     kb_rd.addr.eq(Mux(kfire, kcnt + 1, kcnt)),  # prefetch: the MSB line of the next LSB beat
                     kb_wr.addr.eq(kcnt), kb_wr.data.eq(self.kmem.payload), kb_wr.en.eq(kfire & ~pass2),
                     pq.i.valid.eq(self.kmem.valid & k_on), self.kmem.ready.eq(pq.i.ready & k_on)]
        lsb_line = self.kmem.payload[:self.contract.words["kmem_lsb"].width]  # an LSB beat: the LSB codes, low bits
        pq_in = pq.contract["i"]
        m.d.comb += pq.i.payload.eq(Mux(pass2, pack_value(pq_in, {"msb": kb_rd.data, "lsb": lsb_line, "use_lsb": 1}),
                                        pack_value(pq_in, {"msb": self.kmem.payload, "lsb": 0, "use_lsb": 0})))
        with m.If(kfire):
            m.d.sync += kcnt.eq(kcnt + 1)
        wiring.connect(m, pq.o, qk.k)
        m.d.comb += [sm.i.valid.eq(qk.s.valid), qk.s.ready.eq(sm.i.ready),
                     sm.i.payload.eq(pack_value(sm.contract["i"], {"row": qk.s.payload, "alpha": f.alpha}))]

        # ---- softmax out -> prob buffer + decision unit
        pcnt = Signal(range(pdepth + 1))
        sfire = Signal()
        m.d.comb += [pq.p.valid.eq(sm.o.valid), sm.o.ready.eq(pq.p.ready), sfire.eq(sm.o.valid & sm.o.ready),
                     pq.p.payload.eq(pack_value(pq.contract["p"], {"row": sm.o.payload, "thr": f.thr})),
                     pb_wr.addr.eq(pcnt), pb_wr.data.eq(view(probs, sm.o.payload).probs), pb_wr.en.eq(sfire),
                     pq.d.ready.eq(1)]
        with m.If(sfire):
            m.d.sync += pcnt.eq(pcnt + 1)

        # ---- prob buffer -> top-k (prefetching read, one row per cycle)
        rows = Signal(range(pdepth + 1))
        trd = Signal(range(pdepth + 1))
        t_on = Signal()
        tfire = Signal()
        m.d.comb += [topk.i.valid.eq(t_on & (trd < rows)), tfire.eq(topk.i.valid & topk.i.ready),
                     pb_rd.addr.eq(Mux(tfire, trd + 1, trd)),
                     topk.i.payload.eq(pack_value(topk.contract["i"], {"scores": pb_rd.data, "job": {"n": f.n, "k": f.kv}}))]
        with m.If(tfire):
            m.d.sync += trd.eq(trd + 1)

        # ---- top-k out -> V request + pending probabilities; V rows + probabilities -> prob x V
        tv = view(topk.contract["o"], topk.o.payload)
        kreq = Signal()
        kreq_kind = Signal(2)
        m.d.comb += [fifo.w_data.eq(pack_value(probs, {"probs": tv.values, "count": tv.count, "last": tv.last}))]
        req = self.contract["req"]
        # plain Mux assignments, not an If block: Icarus leaves an ``always @*`` unevaluated (X) until an input changes
        v_mode = ~kreq
        m.d.comb += [self.req.valid.eq(kreq | (topk.o.valid & fifo.w_rdy)),
                     self.req.payload.eq(Mux(kreq, pack_value(req, {"kind": kreq_kind, "indices": 0, "count": 0}),
                                             pack_value(req, {"kind": KIND_V, "indices": tv.indices, "count": tv.count}))),
                     topk.o.ready.eq(v_mode & self.req.ready & fifo.w_rdy),
                     fifo.w_en.eq(v_mode & topk.o.valid & self.req.ready)]
        fp = view(probs, fifo.r_data)
        m.d.comb += [pv.i.valid.eq(self.vmem.valid & fifo.r_rdy), self.vmem.ready.eq(pv.i.ready & fifo.r_rdy),
                     fifo.r_en.eq(self.vmem.valid & pv.i.ready),
                     pv.i.payload.eq(pack_value(pv.contract["i"], {"probs": fp.probs, "v": self.vmem.payload,
                                                                   "count": fp.count, "last": fp.last}))]
        m.d.comb += [self.o.valid.eq(pv.o.valid), pv.o.ready.eq(self.o.ready),
                     self.o.payload.eq(pack_value(self.contract["o"], {"out": pv.o.payload, "refetch": refetch,
                                                                       "max_p": max_p}))]
        dv = view(pq.contract["d"], pq.d.payload)

        # ---- control
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.q.valid):
                    m.d.sync += [qwords.eq(qv.q.as_value()), q_pending.eq(1), pass2.eq(0), job.eq(qv.job.as_value()),
                                 kcnt.eq(0), pcnt.eq(0), trd.eq(0), kreq.eq(1), kreq_kind.eq(KIND_MSB)]
                    m.next = "KREQ"
            with m.State("KREQ"):
                with m.If(self.req.ready):
                    m.d.sync += [kreq.eq(0), k_on.eq(1)]
                    m.next = "PASS"
            with m.State("PASS"):
                with m.If(pq.d.valid):
                    m.d.sync += [k_on.eq(0), kcnt.eq(0), rows.eq(pcnt)]
                    with m.If(pass2 | ~dv.refetch):
                        m.d.sync += [t_on.eq(1), pcnt.eq(0)]
                        m.next = "TOPK"
                    with m.Else():
                        m.d.sync += [pass2.eq(1), q_pending.eq(1), pcnt.eq(0), kreq.eq(1), kreq_kind.eq(KIND_LSB)]
                        m.next = "KREQ"
                    with m.If(~pass2):
                        m.d.sync += [refetch.eq(dv.refetch), max_p.eq(dv.max_p)]
            with m.State("TOPK"):
                with m.If(self.o.valid & self.o.ready):
                    m.d.sync += t_on.eq(0)
                    m.next = "IDLE"
        m.d.comb += self.q.ready.eq(fsm.ongoing("IDLE"))  # continuous: see rtl/spatten/topk.py
        return m
