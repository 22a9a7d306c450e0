"""SpAtten's per-query attention pipeline: queries against ``n`` keys and values fetched from a memory model, two
queries in flight.

The blocks are the registry's own (:class:`QK`, :class:`Softmax`, :class:`ProgQuant`, :class:`TopK`, :class:`PV`),
chained as paper Fig. 8 chains them, in two halves with their own control so that the *front* (Q x K, softmax,
decision) of the next query overlaps the *back* (top-k, V, prob x V) of the previous one (paper Sec. IV-A: the
critical path is fully pipelined):

1. front: request the K MSB region; MSB beats pass the bit-width converter (LSBs zero) into Q x K and are kept in
   the MSB bank; scores go through the softmax; probabilities go to the front's bank of the prob buffer and the
   decision unit;
2. front: if the row's max probability is below the threshold: request the LSB region, reassemble every word from
   the MSB bank and the LSB beat, and rerun Q x K and the softmax once (the decision of the rerun is not used);
3. hand-off: when the back is idle, the front hands it the job and its prob buffer bank (ping-pong: two banks)
   and takes the next query;
4. back: the bank streams into the local-V top-k (k = ``kv``) and, row by row, out of the probability tap ``p``
   (for the importance accumulators); each top-k output row of kept (probability, index) pairs becomes one V
   request; the V rows that come back meet their probabilities in prob x V;
5. back: one output beat: the attention output, whether LSBs were refetched, and the first pass's max probability.

A job outside ``1 <= kv <= n <= max_n``, a head dimension the tree cannot tap or a threshold above 1.0 is refused:
consumed, handed to the back like a job, and answered in order with one ``o`` beat carrying ``error``.

Streams (layouts :func:`attnforge.sim.contract.designs.spatten_pipeline`; golden
:func:`attnforge.sim.spatten.golden.pipeline`; cycles :func:`attnforge.sim.spatten.cycle_model.pipeline_cycles` for one
job, :func:`attnforge.sim.spatten.cycle_model.stream_cycles` for jobs back to back):

* ``q`` in: ``max_d`` query words | job (n | log2 D | kv | threshold | alpha_q | alpha_sh).
* ``kreq`` out: kind (0 K MSB region, 1 K LSB region).   ``kmem`` in: ``lanes`` K codes per beat.
* ``vreq`` out: ``S`` indices | count.   ``vmem`` in: ``S`` V rows of ``max_d`` values, in the request's order.
* ``p`` out: ``S`` probabilities | count | last (the tap).
* ``o`` out: ``max_d`` outputs | refetch | max probability | error.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Const, Module, Mux, Signal, Value, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory, ReadPort, WritePort

from attnforge.rtl.common import OneHotFSM, SkidBuffer, contract_ports, credit_room, pack_value, view
from attnforge.rtl.spatten.progquant import ProgQuant
from attnforge.rtl.spatten.pv import PV
from attnforge.rtl.spatten.qk import QK
from attnforge.rtl.spatten.softmax import Softmax
from attnforge.rtl.spatten.topk import TopK
from attnforge.sim.contract import SP_BACK_SLICES, SP_FRONT_SLICES, Struct
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.designs import KIND_LSB, KIND_MSB
from attnforge.sim.contract.fixedpoint import clog2
from attnforge.sim.contract.spatten_fx import SpattenFx


@dataclass
class _Blocks:
    """The chained blocks (registry components), the FIFO of kept probabilities waiting for their V rows, the
    tap's output register FIFO, and the front's registered stream slices: bit-width converter to Q x K (``k_sl``)
    and Q x K to the softmax (``s_sl``), which cut the chain of ``ready`` from the softmax's state through Q x K's
    and the converter's stall enables to ``kmem`` (SP_FRONT_SLICES in the contract counts them)."""

    qk: QK
    sm: Softmax
    pq: ProgQuant
    topk: TopK
    pv: PV
    pairs: SyncFIFO
    tap: SyncFIFO
    k_sl: SkidBuffer
    s_sl: SkidBuffer
    o_sl: SkidBuffer  #: the top-k's output rows to the V side (SP_BACK_SLICES)

    @property
    def probs(self) -> Struct:
        """The probability row beat: softmax output, prob buffer rows, kept pairs, the tap."""
        return self.sm.contract["o"]


@dataclass
class _Front:
    """The front's registers: the job (``qwords``, ``job`` read through ``f``; ``err`` when refused), the pass
    (``q_pending``: Q x K still needs the query beat; ``pass2``: the LSB rerun), the K stream (``k_on``, ``kcnt``
    beats), the rows written to its prob buffer ``bank`` (``pcnt``), a pending K region request (``kreq`` of
    ``kreq_kind``), the first pass's decision (``refetch``, ``max_p``)."""

    qwords: Signal
    job: Signal
    f: data.View
    err: Signal
    q_pending: Signal
    pass2: Signal
    kcnt: Signal
    k_on: Signal
    pcnt: Signal
    bank: Signal
    kreq: Signal
    kreq_kind: Signal
    refetch: Signal
    max_p: Signal


@dataclass
class _Back:
    """The back's registers, loaded at the hand-off: ``busy``; the job's ``n``, ``kv``, ``err``, its result
    (``refetch``, ``max_p``); its prob buffer ``bank`` of ``rows`` rows, ``trd`` read into the top-k while ``t_on``;
    ``t_more``: ``t_on and trd < rows``, kept as a register beside ``trd`` (the compare ran through the top-k's input
    valid into its first-beat job checks: a critical path of spatten-top on ECP5)."""

    busy: Signal
    n: Signal
    kv: Signal
    err: Signal
    refetch: Signal
    max_p: Signal
    bank: Signal
    rows: Signal
    trd: Signal
    t_on: Signal
    t_more: Signal


_Port = tuple[WritePort, ReadPort]  #: a buffer's write port and read port


class SpattenPipeline(wiring.Component):
    def __init__(self, cfg: SpattenFx) -> None:
        cfg.validate()
        self.cfg = cfg
        self.contract = contract.spatten_pipeline(cfg)
        self.kdepth = max(2, -(-cfg.max_n * cfg.max_d // cfg.lanes))  # MSB bank: one K line per beat
        self.pdepth = max(2, -(-cfg.max_n // cfg.s))  # prob buffer bank: one S-lane row per beat
        self.rbits = (self.pdepth - 1).bit_length()  # row address bits of one bank
        super().__init__(contract_ports(self.contract))

    def elaborate(self, platform: object) -> Module:
        """The blocks and the buffers, the glue between them in dataflow order (Q x K front end, softmax, top-k,
        the V side), then the two FSMs; in this order because the FSMs' ``sync`` statements must come last."""
        m = Module()
        c = self.cfg
        m.submodules.qk = qk = QK(c, refuse=False)  # _refused below stops every job QK would refuse
        m.submodules.sm = sm = Softmax(c)
        m.submodules.pq = pq = ProgQuant(c)
        m.submodules.topk = topk = TopK(comparators=c.s, max_n=c.max_n, data_bits=c.prob_bits, signed_data=0)
        m.submodules.pv = pv = PV(c)
        fr, bk = self._front_regs(), self._back_regs()
        kbank, pbuf, fifo, tap = self._storage(m, sm.contract["o"])
        m.submodules.k_sl = k_sl = SkidBuffer(len(pq.o.payload))
        m.submodules.s_sl = s_sl = SkidBuffer(len(qk.s.payload))
        m.submodules.o_sl = o_sl = SkidBuffer(len(topk.o.payload))
        assert SP_FRONT_SLICES == 2 and SP_BACK_SLICES == 1  # k_sl, s_sl; o_sl
        wiring.connect(m, topk.o, o_sl.i)
        b = _Blocks(qk, sm, pq, topk, pv, fifo, tap, k_sl, s_sl, o_sl)
        hand = Signal()  # this cycle the front hands its job and bank to the back
        self._qk_front(m, b, fr, kbank)
        self._scores(m, b, fr, pbuf[0])
        self._topk_feed(m, b, fr, bk, pbuf[1], hand)
        self._v_side(m, b, bk)
        max_p = self._front_fsm(m, b, fr, bk, hand)
        self._back_ctl(m, fr, bk, hand, max_p)
        return m

    def _front_regs(self) -> _Front:
        c = self.cfg
        shapes: dict[str, int | range] = {
            "qwords": c.max_d * c.word_bits, "job": self.contract.words["job"].width, "err": 1, "q_pending": 1,
            "pass2": 1, "kcnt": range(self.kdepth + 1), "k_on": 1, "pcnt": range(self.pdepth + 1), "bank": 1,
            "kreq": 1, "kreq_kind": 2, "refetch": 1, "max_p": c.prob_bits}
        sigs = {name: Signal(shape, name=f"f_{name}") for name, shape in shapes.items()}
        return _Front(**sigs, f=view(self.contract.words["job"], sigs["job"]))

    def _back_regs(self) -> _Back:
        c, pdepth = self.cfg, self.pdepth
        shapes: dict[str, int | range] = {
            "busy": 1, "n": c.n_bits, "kv": c.n_bits, "err": 1, "refetch": 1, "max_p": c.prob_bits, "bank": 1,
            "rows": range(pdepth + 1), "trd": range(pdepth + 1), "t_on": 1, "t_more": 1}
        return _Back(**{name: Signal(shape, name=f"b_{name}") for name, shape in shapes.items()})

    def _storage(self, m: Module, probs: Struct) -> tuple[_Port, _Port, SyncFIFO, SyncFIFO]:
        """The MSB bank (one K line per beat), the prob buffer (two banks of one S-lane row per beat), the pairs
        FIFO and the tap's FIFO."""
        c = self.cfg
        m.submodules.kbank = kbank = Memory(shape=unsigned(c.lanes * c.msb_bits), depth=self.kdepth, init=[])
        kb_wr, kb_rd = kbank.write_port(), kbank.read_port()  # named here: the ports' nets take these names
        m.submodules.pbuf = pbuf = Memory(shape=unsigned(probs["probs"].width), depth=2 << self.rbits, init=[])
        pb_wr, pb_rd = pbuf.write_port(), pbuf.read_port()
        m.submodules.pairs = fifo = SyncFIFO(width=probs.width, depth=4)
        m.submodules.tap = tap = SyncFIFO(width=probs.width, depth=2)
        return (kb_wr, kb_rd), (pb_wr, pb_rd), fifo, tap

    def _addr(self, row: Value, bank: Value) -> Value:
        return Cat(row[:self.rbits], bank)

    def _qk_front(self, m: Module, b: _Blocks, fr: _Front, kbank: _Port) -> None:
        """Q x K front end: the query beat (once per pass), then the K beats through the bit-width converter
        (ProgQuant's input): pass 1 takes MSB beats (LSBs zero) and keeps them in the MSB bank; pass 2 reassembles
        every word from the bank and the LSB beat."""
        qk, pq, f = b.qk, b.pq, fr.f
        kb_wr, kb_rd = kbank
        m.d.comb += [qk.q.valid.eq(fr.q_pending),
                     qk.q.payload.eq(pack_value(qk.contract["q"], {"q": fr.qwords,
                                                                   "job": {"n": f.n, "dlog": f.dlog}}))]
        with m.If(qk.q.valid & qk.q.ready):
            m.d.sync += fr.q_pending.eq(0)
        kfire = Signal()
        m.d.comb += [kfire.eq(self.kmem.valid & self.kmem.ready),
                     kb_rd.addr.eq(Mux(kfire, fr.kcnt + 1, fr.kcnt)),  # prefetch: the MSB line of the next LSB beat
                     kb_wr.addr.eq(fr.kcnt), kb_wr.data.eq(self.kmem.payload), kb_wr.en.eq(kfire & ~fr.pass2),
                     pq.i.valid.eq(self.kmem.valid & fr.k_on), self.kmem.ready.eq(pq.i.ready & fr.k_on)]
        lsb_line = self.kmem.payload[:self.contract.words["kmem_lsb"].width]  # an LSB beat: the LSB codes, low bits
        pq_in = pq.contract["i"]
        m.d.comb += pq.i.payload.eq(Mux(fr.pass2,
                                        pack_value(pq_in, {"msb": kb_rd.data, "lsb": lsb_line, "use_lsb": 1}),
                                        pack_value(pq_in, {"msb": self.kmem.payload, "lsb": 0, "use_lsb": 0})))
        with m.If(kfire):
            m.d.sync += fr.kcnt.eq(fr.kcnt + 1)
        wiring.connect(m, pq.o, b.k_sl.i)
        wiring.connect(m, b.k_sl.o, qk.k)
        m.d.comb += [self.kreq.valid.eq(fr.kreq),
                     self.kreq.payload.eq(pack_value(self.contract["kreq"], {"kind": fr.kreq_kind}))]

    def _scores(self, m: Module, b: _Blocks, fr: _Front, pb_wr: WritePort) -> None:
        """Q x K's scores into the softmax (with the job's alpha); its probabilities into the decision unit (with
        the threshold) and the front's bank of the prob buffer."""
        qk, sm, pq, f, sl = b.qk, b.sm, b.pq, fr.f, b.s_sl
        wiring.connect(m, qk.s, sl.i)
        m.d.comb += [sm.i.valid.eq(sl.o.valid), sl.o.ready.eq(sm.i.ready),
                     sm.i.payload.eq(pack_value(sm.contract["i"], {"row": sl.o.payload, "alpha": f.alpha}))]
        sfire = Signal()
        m.d.comb += [pq.p.valid.eq(sm.o.valid), sm.o.ready.eq(pq.p.ready), sfire.eq(sm.o.valid & sm.o.ready),
                     pq.p.payload.eq(pack_value(pq.contract["p"], {"row": sm.o.payload, "thr": f.thr})),
                     pb_wr.addr.eq(self._addr(fr.pcnt, fr.bank)), pb_wr.data.eq(view(b.probs, sm.o.payload).probs),
                     pb_wr.en.eq(sfire), pq.d.ready.eq(1)]
        with m.If(sfire):
            m.d.sync += fr.pcnt.eq(fr.pcnt + 1)

    def _topk_feed(self, m: Module, b: _Blocks, fr: _Front, bk: _Back, pb_rd: ReadPort, hand: Signal) -> None:
        """The back's bank into the top-k (k = kv) and the tap, one row per cycle while ``t_on``; the read
        prefetches (the hand-off cycle already addresses row 0 of the bank being handed over)."""
        topk, tap, s = b.topk, b.tap, self.cfg.s
        tfire = Signal()
        # the tap's free entry as a register (the FIFO's own ``w_rdy`` is a compare of its level, and on ECP5 that
        # compare's route into the top-k's input handshake was a spatten-top critical path): the same value a
        # cycle after every write and read, since ``credit_room`` counts exactly the FIFO's writes and reads
        t_room = Signal(name="tap_room", init=1)
        credit_room(m, tap.depth, tfire, tap.r_rdy & tap.r_en, t_room)
        m.d.comb += [topk.i.valid.eq(bk.t_more & t_room),
                     tfire.eq(topk.i.valid & topk.i.ready),
                     pb_rd.addr.eq(Mux(hand, self._addr(Const(0, self.rbits), fr.bank),
                                       self._addr(Mux(tfire, bk.trd + 1, bk.trd), bk.bank))),
                     topk.i.payload.eq(pack_value(topk.contract["i"], {"scores": pb_rd.data,
                                                                       "job": {"n": bk.n, "k": bk.kv}}))]
        last = Signal()
        m.d.comb += [last.eq(bk.trd == bk.rows - 1), tap.w_en.eq(tfire),
                     tap.w_data.eq(pack_value(b.probs, {"probs": pb_rd.data, "last": last, "err": 0,
                                                        "count": Mux(last, bk.n - (bk.trd << clog2(s)), s)})),
                     self.p.valid.eq(tap.r_rdy), self.p.payload.eq(tap.r_data), tap.r_en.eq(self.p.ready)]
        with m.If(tfire):
            m.d.sync += [bk.trd.eq(bk.trd + 1), bk.t_more.eq(bk.trd + 1 < bk.rows)]

    def _v_side(self, m: Module, b: _Blocks, bk: _Back) -> None:
        """One V request per top-k output row, whose kept probabilities wait in the pairs FIFO; the V rows meet
        their probabilities in prob x V; its output is ours (or the error beat of a refused job)."""
        topk, rows, pv, fifo, probs = b.topk, b.o_sl.o, b.pv, b.pairs, b.probs
        tv = view(topk.contract["o"], rows.payload)
        m.d.comb += [fifo.w_data.eq(pack_value(probs, {"probs": tv.values, "count": tv.count, "last": tv.last,
                                                            "err": 0})),
                     self.vreq.valid.eq(rows.valid & fifo.w_rdy),
                     self.vreq.payload.eq(pack_value(self.contract["vreq"], {"indices": tv.indices, "count": tv.count})),
                     rows.ready.eq(self.vreq.ready & fifo.w_rdy),
                     fifo.w_en.eq(rows.valid & self.vreq.ready)]
        fp = view(probs, fifo.r_data)
        m.d.comb += [pv.i.valid.eq(self.vmem.valid & fifo.r_rdy), self.vmem.ready.eq(pv.i.ready & fifo.r_rdy),
                     fifo.r_en.eq(self.vmem.valid & pv.i.ready),
                     pv.i.payload.eq(pack_value(pv.contract["i"], {"probs": fp.probs, "v": self.vmem.payload,
                                                                   "count": fp.count, "last": fp.last}))]
        err = bk.busy & bk.err
        m.d.comb += [self.o.valid.eq(err | pv.o.valid), pv.o.ready.eq(self.o.ready & ~bk.err),
                     self.o.payload.eq(pack_value(self.contract["o"], {
                         "out": Mux(bk.err, 0, pv.o.payload), "refetch": bk.refetch, "max_p": bk.max_p,
                         "error": bk.err}))]

    def _refused(self, job: data.View) -> Value:
        """The job checks: n, kv, the head dimension and the threshold (a refused job never reaches a block)."""
        c = self.cfg
        return ((job.n == 0) | (job.n > c.max_n) | (job.kv == 0) | (job.kv > job.n) | (job.dlog < clog2(c.min_d))
                | (job.dlog > clog2(c.max_d)) | (job.thr > (1 << c.prob_frac)))

    def _front_fsm(self, m: Module, b: _Blocks, fr: _Front, bk: _Back, hand: Signal) -> Value:
        """IDLE (take the query; a refused one goes to HAND) -> KREQ (request a K region) -> PASS (one Q x K +
        softmax pass; the decision unit chooses the LSB rerun, back to KREQ, or the hand-off) -> [HAND (wait for
        the back)] -> IDLE. ``hand`` is high in the cycle the job and bank pass to the back; returns the first
        pass's max probability as it stands in that cycle."""
        qv = view(self.contract["q"], self.q.payload)
        dv = view(b.pq.contract["d"], b.pq.d.payload)
        final = Signal()
        m.d.comb += final.eq(b.pq.d.valid & (fr.pass2 | ~dv.refetch))
        st = OneHotFSM(("IDLE", "KREQ", "PASS", "HAND"), "fsm_state")
        with m.If(st.ongoing("IDLE")):
            with m.If(self.q.valid):
                m.d.sync += [fr.qwords.eq(qv.q.as_value()), fr.pass2.eq(0), fr.job.eq(qv.job.as_value()),
                             fr.kcnt.eq(0), fr.pcnt.eq(0), fr.refetch.eq(0), fr.max_p.eq(0)]
                with m.If(self._refused(qv.job)):
                    m.d.sync += fr.err.eq(1)
                    st.next(m, "HAND")
                with m.Else():
                    m.d.sync += [fr.err.eq(0), fr.q_pending.eq(1), fr.kreq.eq(1), fr.kreq_kind.eq(KIND_MSB)]
                    st.next(m, "KREQ")
        with m.If(st.ongoing("KREQ")):
            with m.If(self.kreq.ready):
                m.d.sync += [fr.kreq.eq(0), fr.k_on.eq(1)]
                st.next(m, "PASS")
        with m.If(st.ongoing("PASS")):
            with m.If(b.pq.d.valid):
                m.d.sync += [fr.k_on.eq(0), fr.kcnt.eq(0)]
                with m.If(~fr.pass2):
                    m.d.sync += [fr.refetch.eq(dv.refetch), fr.max_p.eq(dv.max_p)]
                with m.If(final):
                    with m.If(bk.busy):
                        st.next(m, "HAND")
                    with m.Else():
                        st.next(m, "IDLE")
                with m.Else():
                    m.d.sync += [fr.pass2.eq(1), fr.q_pending.eq(1), fr.pcnt.eq(0), fr.kreq.eq(1),
                                 fr.kreq_kind.eq(KIND_LSB)]
                    st.next(m, "KREQ")
        with m.If(st.ongoing("HAND")):
            with m.If(~bk.busy):
                st.next(m, "IDLE")
        m.d.comb += [self.q.ready.eq(st.ongoing("IDLE")),  # continuous: see rtl/spatten/topk.py
                     hand.eq(~bk.busy & ((st.ongoing("PASS") & final) | st.ongoing("HAND")))]
        return Mux(st.ongoing("PASS") & ~fr.pass2, dv.max_p, fr.max_p)

    def _back_ctl(self, m: Module, fr: _Front, bk: _Back, hand: Signal, max_p: Value) -> None:
        """The hand-off loads the back (and flips the front's bank); the output handshake frees it."""
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += [bk.busy.eq(0), bk.t_on.eq(0), bk.t_more.eq(0), bk.err.eq(0)]
        with m.If(hand):
            f = fr.f
            m.d.sync += [bk.busy.eq(1), bk.err.eq(fr.err), bk.n.eq(f.n), bk.kv.eq(f.kv), bk.refetch.eq(fr.pass2),
                         bk.max_p.eq(max_p), bk.bank.eq(fr.bank), bk.rows.eq(fr.pcnt), bk.trd.eq(0),
                         bk.t_on.eq(~fr.err), bk.t_more.eq(~fr.err & (fr.pcnt != 0)), fr.bank.eq(~fr.bank)]
