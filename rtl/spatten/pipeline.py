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

from dataclasses import dataclass

from amaranth import Module, Mux, Signal, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory, ReadPort, WritePort

from attnforge.rtl.common import contract_ports, pack_value, view
from attnforge.rtl.spatten.progquant import ProgQuant
from attnforge.rtl.spatten.pv import PV
from attnforge.rtl.spatten.qk import QK
from attnforge.rtl.spatten.softmax import Softmax
from attnforge.rtl.spatten.topk import TopK
from attnforge.sim.contract import Struct
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.designs import KIND_LSB, KIND_MSB, KIND_V
from attnforge.sim.contract.spatten_fx import SpattenFx


@dataclass
class _Blocks:
    """The chained blocks (registry components) and the FIFO of kept probabilities waiting for their V rows."""

    qk: QK
    sm: Softmax
    pq: ProgQuant
    topk: TopK
    pv: PV
    pairs: SyncFIFO

    @property
    def probs(self) -> Struct:
        """The probability row beat: softmax output, prob buffer rows, kept pairs."""
        return self.sm.contract["o"]


@dataclass
class _Ctl:
    """The registers the FSM drives: the job (``qwords``, ``job`` read through ``f``) and its result (``refetch``,
    ``max_p`` of the first pass); the pass (``q_pending``: Q x K still needs the query beat; ``pass2``: the LSB
    rerun); the K stream (``k_on``, ``kcnt`` beats); the prob buffer (``pcnt`` rows written, ``rows`` of them
    final, ``trd`` read into the top-k while ``t_on``); a pending K region request (``kreq`` of ``kreq_kind``)."""

    qwords: Signal
    job: Signal
    f: data.View
    refetch: Signal
    max_p: Signal
    q_pending: Signal
    pass2: Signal
    kcnt: Signal
    k_on: Signal
    pcnt: Signal
    rows: Signal
    trd: Signal
    t_on: Signal
    kreq: Signal
    kreq_kind: Signal


_Port = tuple[WritePort, ReadPort]  #: a buffer's write port and read port


class SpattenPipeline(wiring.Component):
    def __init__(self, cfg: SpattenFx) -> None:
        cfg.validate()
        self.cfg = cfg
        self.contract = contract.spatten_pipeline(cfg)
        self.kdepth = max(2, -(-cfg.max_n * cfg.max_d // cfg.lanes))  # MSB bank: one K line per beat
        self.pdepth = max(2, -(-cfg.max_n // cfg.s))  # prob buffer: one S-lane row per beat
        super().__init__(contract_ports(self.contract))

    def elaborate(self, platform: object) -> Module:
        """The blocks and the buffers, the glue between them in dataflow order (Q x K front end, softmax, top-k,
        the V side), then the FSM; in this order because the FSM's ``sync`` statements must come last (they win)."""
        m = Module()
        c = self.cfg
        m.submodules.qk = qk = QK(c)
        m.submodules.sm = sm = Softmax(c)
        m.submodules.pq = pq = ProgQuant(c)
        m.submodules.topk = topk = TopK(comparators=c.s, max_n=c.max_n, data_bits=c.prob_bits, signed_data=0)
        m.submodules.pv = pv = PV(c)
        ctl = self._control()
        kbank, pbuf, fifo = self._storage(m, sm.contract["o"])
        b = _Blocks(qk, sm, pq, topk, pv, fifo)
        self._qk_front(m, b, ctl, kbank)
        self._scores(m, b, ctl, pbuf[0])
        self._topk_feed(m, b, ctl, pbuf[1])
        self._v_side(m, b, ctl)
        self._fsm(m, b, ctl)
        return m

    def _control(self) -> _Ctl:
        """The registers of :class:`_Ctl`, each named as its field."""
        c, pdepth = self.cfg, self.pdepth
        shapes: dict[str, int | range] = {
            "qwords": c.max_d * c.word_bits, "job": self.contract.words["job"].width, "refetch": 1,
            "max_p": c.prob_bits, "q_pending": 1, "pass2": 1, "kcnt": range(self.kdepth + 1), "k_on": 1,
            "pcnt": range(pdepth + 1), "rows": range(pdepth + 1), "trd": range(pdepth + 1), "t_on": 1, "kreq": 1,
            "kreq_kind": 2}
        sigs = {name: Signal(shape, name=name) for name, shape in shapes.items()}
        return _Ctl(**sigs, f=view(self.contract.words["job"], sigs["job"]))

    def _storage(self, m: Module, probs: Struct) -> tuple[_Port, _Port, SyncFIFO]:
        """The MSB bank (one K line per beat), the prob buffer (one S-lane row per beat) and the pairs FIFO."""
        c = self.cfg
        m.submodules.kbank = kbank = Memory(shape=unsigned(c.lanes * c.msb_bits), depth=self.kdepth, init=[])
        kb_wr, kb_rd = kbank.write_port(), kbank.read_port()  # named here: the ports' nets take these names
        m.submodules.pbuf = pbuf = Memory(shape=unsigned(probs["probs"].width), depth=self.pdepth, init=[])
        pb_wr, pb_rd = pbuf.write_port(), pbuf.read_port()
        m.submodules.pairs = fifo = SyncFIFO(width=probs.width, depth=4)
        return (kb_wr, kb_rd), (pb_wr, pb_rd), fifo

    def _qk_front(self, m: Module, b: _Blocks, ctl: _Ctl, kbank: _Port) -> None:
        """Q x K front end: the query beat (once per pass), then the K beats through the bit-width converter
        (ProgQuant's input): pass 1 takes MSB beats (LSBs zero) and keeps them in the MSB bank; pass 2 reassembles
        every word from the bank and the LSB beat."""
        qk, pq, f = b.qk, b.pq, ctl.f
        kb_wr, kb_rd = kbank
        m.d.comb += [qk.q.valid.eq(ctl.q_pending),
                     qk.q.payload.eq(pack_value(qk.contract["q"], {"q": ctl.qwords,
                                                                   "job": {"n": f.n, "dlog": f.dlog}}))]
        with m.If(qk.q.valid & qk.q.ready):
            m.d.sync += ctl.q_pending.eq(0)
        kfire = Signal()
        m.d.comb += [kfire.eq(self.kmem.valid & self.kmem.ready),
                     kb_rd.addr.eq(Mux(kfire, ctl.kcnt + 1, ctl.kcnt)),  # prefetch: the MSB line of the next LSB beat
                     kb_wr.addr.eq(ctl.kcnt), kb_wr.data.eq(self.kmem.payload), kb_wr.en.eq(kfire & ~ctl.pass2),
                     pq.i.valid.eq(self.kmem.valid & ctl.k_on), self.kmem.ready.eq(pq.i.ready & ctl.k_on)]
        lsb_line = self.kmem.payload[:self.contract.words["kmem_lsb"].width]  # an LSB beat: the LSB codes, low bits
        pq_in = pq.contract["i"]
        m.d.comb += pq.i.payload.eq(Mux(ctl.pass2,
                                        pack_value(pq_in, {"msb": kb_rd.data, "lsb": lsb_line, "use_lsb": 1}),
                                        pack_value(pq_in, {"msb": self.kmem.payload, "lsb": 0, "use_lsb": 0})))
        with m.If(kfire):
            m.d.sync += ctl.kcnt.eq(ctl.kcnt + 1)
        wiring.connect(m, pq.o, qk.k)

    def _scores(self, m: Module, b: _Blocks, ctl: _Ctl, pb_wr: WritePort) -> None:
        """Q x K's scores into the softmax (with the job's alpha); its probabilities into the decision unit (with
        the threshold) and the prob buffer."""
        qk, sm, pq, f = b.qk, b.sm, b.pq, ctl.f
        m.d.comb += [sm.i.valid.eq(qk.s.valid), qk.s.ready.eq(sm.i.ready),
                     sm.i.payload.eq(pack_value(sm.contract["i"], {"row": qk.s.payload, "alpha": f.alpha}))]
        sfire = Signal()
        m.d.comb += [pq.p.valid.eq(sm.o.valid), sm.o.ready.eq(pq.p.ready), sfire.eq(sm.o.valid & sm.o.ready),
                     pq.p.payload.eq(pack_value(pq.contract["p"], {"row": sm.o.payload, "thr": f.thr})),
                     pb_wr.addr.eq(ctl.pcnt), pb_wr.data.eq(view(b.probs, sm.o.payload).probs), pb_wr.en.eq(sfire),
                     pq.d.ready.eq(1)]
        with m.If(sfire):
            m.d.sync += ctl.pcnt.eq(ctl.pcnt + 1)

    def _topk_feed(self, m: Module, b: _Blocks, ctl: _Ctl, pb_rd: ReadPort) -> None:
        """The prob buffer into the top-k (k = kv): a prefetching read, one row per cycle while ``t_on``."""
        topk, f = b.topk, ctl.f
        tfire = Signal()
        m.d.comb += [topk.i.valid.eq(ctl.t_on & (ctl.trd < ctl.rows)), tfire.eq(topk.i.valid & topk.i.ready),
                     pb_rd.addr.eq(Mux(tfire, ctl.trd + 1, ctl.trd)),
                     topk.i.payload.eq(pack_value(topk.contract["i"], {"scores": pb_rd.data,
                                                                       "job": {"n": f.n, "k": f.kv}}))]
        with m.If(tfire):
            m.d.sync += ctl.trd.eq(ctl.trd + 1)

    def _v_side(self, m: Module, b: _Blocks, ctl: _Ctl) -> None:
        """The ``req`` port (a pending K region request, else one V request per top-k output row, whose kept
        probabilities wait in the pairs FIFO); the V rows meet their probabilities in prob x V; its output is ours."""
        topk, pv, fifo, probs = b.topk, b.pv, b.pairs, b.probs
        tv = view(topk.contract["o"], topk.o.payload)
        m.d.comb += [fifo.w_data.eq(pack_value(probs, {"probs": tv.values, "count": tv.count, "last": tv.last, "err": 0}))]
        req = self.contract["req"]
        # plain Mux assignments, not an If block: Icarus leaves an ``always @*`` unevaluated (X) until an input changes
        v_mode = ~ctl.kreq
        m.d.comb += [self.req.valid.eq(ctl.kreq | (topk.o.valid & fifo.w_rdy)),
                     self.req.payload.eq(Mux(ctl.kreq,
                                             pack_value(req, {"kind": ctl.kreq_kind, "indices": 0, "count": 0}),
                                             pack_value(req, {"kind": KIND_V, "indices": tv.indices, "count": tv.count}))),
                     topk.o.ready.eq(v_mode & self.req.ready & fifo.w_rdy),
                     fifo.w_en.eq(v_mode & topk.o.valid & self.req.ready)]
        fp = view(probs, fifo.r_data)
        m.d.comb += [pv.i.valid.eq(self.vmem.valid & fifo.r_rdy), self.vmem.ready.eq(pv.i.ready & fifo.r_rdy),
                     fifo.r_en.eq(self.vmem.valid & pv.i.ready),
                     pv.i.payload.eq(pack_value(pv.contract["i"], {"probs": fp.probs, "v": self.vmem.payload,
                                                                   "count": fp.count, "last": fp.last}))]
        m.d.comb += [self.o.valid.eq(pv.o.valid), pv.o.ready.eq(self.o.ready),
                     self.o.payload.eq(pack_value(self.contract["o"], {"out": pv.o.payload, "refetch": ctl.refetch,
                                                                       "max_p": ctl.max_p}))]

    def _fsm(self, m: Module, b: _Blocks, ctl: _Ctl) -> None:
        """IDLE (take the query) -> KREQ (request a K region) -> PASS (one Q x K + softmax pass; the decision unit
        chooses the LSB rerun, back to KREQ, or) -> TOPK (top-k, V and prob x V until the output beat) -> IDLE."""
        qv = view(self.contract["q"], self.q.payload)
        dv = view(b.pq.contract["d"], b.pq.d.payload)
        with m.FSM() as fsm:
            with m.State("IDLE"):
                with m.If(self.q.valid):
                    m.d.sync += [ctl.qwords.eq(qv.q.as_value()), ctl.q_pending.eq(1), ctl.pass2.eq(0),
                                 ctl.job.eq(qv.job.as_value()), ctl.kcnt.eq(0), ctl.pcnt.eq(0), ctl.trd.eq(0),
                                 ctl.kreq.eq(1), ctl.kreq_kind.eq(KIND_MSB)]
                    m.next = "KREQ"
            with m.State("KREQ"):
                with m.If(self.req.ready):
                    m.d.sync += [ctl.kreq.eq(0), ctl.k_on.eq(1)]
                    m.next = "PASS"
            with m.State("PASS"):
                with m.If(b.pq.d.valid):
                    m.d.sync += [ctl.k_on.eq(0), ctl.kcnt.eq(0), ctl.rows.eq(ctl.pcnt)]
                    with m.If(ctl.pass2 | ~dv.refetch):
                        m.d.sync += [ctl.t_on.eq(1), ctl.pcnt.eq(0)]
                        m.next = "TOPK"
                    with m.Else():
                        m.d.sync += [ctl.pass2.eq(1), ctl.q_pending.eq(1), ctl.pcnt.eq(0), ctl.kreq.eq(1),
                                     ctl.kreq_kind.eq(KIND_LSB)]
                        m.next = "KREQ"
                    with m.If(~ctl.pass2):
                        m.d.sync += [ctl.refetch.eq(dv.refetch), ctl.max_p.eq(dv.max_p)]
            with m.State("TOPK"):
                with m.If(self.o.valid & self.o.ready):
                    m.d.sync += ctl.t_on.eq(0)
                    m.next = "IDLE"
        m.d.comb += self.q.ready.eq(fsm.ongoing("IDLE"))  # continuous: see rtl/spatten/topk.py
