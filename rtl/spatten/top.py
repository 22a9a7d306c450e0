"""``spatten-top``: SpAtten as a whole accelerator (paper Fig. 8): one layer of multi-head attention per layer
descriptor, all alive heads and the descriptor's queries, with cascade token and head pruning held on chip across layers.

Parts (all registry blocks except the glue here): the two-queries-in-flight :class:`SpattenPipeline`, the
:class:`Importance` accumulators, a :class:`TopK` engine for the layer-boundary token and head top-k, and three
fetchers on one memory port (layouts :func:`attnforge.sim.contract.designs.spatten_top`; golden
:mod:`attnforge.sim.spatten.top_golden`):

* the **alive lists**: registers holding the original ids of the alive tokens (ascending) and heads;
* the **controller**: takes a descriptor and checks it (the verdict registered: one CHECK cycle; a bad one is
  answered ``r`` err=1, back to idle); the first
  layer clears the importance and starts from every token and head; a later one runs the boundary top-k when it
  keeps fewer tokens (heads) than are alive: the importance block streams the alive tokens' scores into the top-k
  and the kept positions compact the alive list in place (kept positions ascend, so a write never lands on an entry
  still to be read); then every (head, query) runs, and ``r`` answers once every output and importance add is done;
* the **Q fetcher** fetches the Q row of the next (head, query) -- the queries are the last ``queries`` alive
  tokens: all of them for an encoder layer, the newest one for a generation step (paper Sec. II-A) -- into a
  2-entry buffer (credit counted), which feeds the pipeline's ``q`` with the layer's job word;
* the **K fetcher** answers the pipeline's ``kreq``: it walks the alive list and requests runs of consecutive alive
  tokens (one burst per run) from the MSB or LSB region of the front job's head; the rows go straight to ``kmem``;
* the **V fetcher** answers ``vreq``: one row request per kept index (the alive list maps it to a token), the rows
  gathered into one ``vmem`` beat per request (local V pruning: pruned rows are never requested);
* the **importance feeder**: the pipeline's probability tap becomes ``add_tokens`` (ids from the alive list), its
  output beat ``add_head``; the output beat also leaves on ``o`` with its head and token.

Requests are granted K first, then V, then Q. Rows are addressed ``base + head * stride + token``.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Array, Cat, Const, Module, Mux, Signal, Value
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFO

from attnforge.rtl.common import OneHotFSM, SkidBuffer, contract_ports, local_copies, pack_value, view
from attnforge.rtl.spatten.importance import Importance
from attnforge.rtl.spatten.pipeline import SpattenPipeline
from attnforge.rtl.spatten.topk import TopK
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.depths import SP_COMPACT_REG, SP_DESC_REG, SP_IMP_SLICES, SP_Q_REQ_REG, SP_TOPK_SLICES
from attnforge.sim.contract.fixedpoint import clog2
from attnforge.sim.contract.spatten_top import TAG_K, TAG_Q, TAG_V, SpattenTopCfg

OPS = contract.IMP_OPS


def _fit(x: Value, bits: int) -> Value:
    """Zero-extend (or cut) to ``bits``: payload members take exactly their width."""
    x = Value.cast(x)
    return x[:bits] if len(x) >= bits else Cat(x, Const(0, bits - len(x)))


@dataclass
class _Lists:
    """The alive token ids (``tok``, ``n`` of them) and head ids (``head``, ``h`` of them)."""

    tok: Array
    n: Signal
    head: Array
    h: Signal
    #: ``n - 1`` kept as a register beside ``n`` (the newest token's position): ``n`` also drives the answer port,
    #: and on ECP5 its route and the subtraction in front of the 16-way read of ``tok`` were a critical path
    n_last: Signal


@dataclass
class _Reading:
    """The controller's list read: the beat, which list (``heads``: the head list, else the token list), the
    compaction's write position, and with carry the newest token's id and the cycle it is put after the kept ones."""

    beat: Signal
    heads: Signal
    wpos: Signal
    newest: Signal
    put: Signal


@dataclass
class _Req:
    """One fetcher's request: valid, address, length; ``grant`` is driven by the arbiter."""

    valid: Signal
    addr: Signal
    len: Signal
    grant: Signal


class SpattenTop(wiring.Component):
    def __init__(self, cfg: SpattenTopCfg) -> None:
        self.cfg = cfg.validate()
        self.contract = contract.spatten_top(cfg)
        super().__init__(contract_ports(self.contract))

    def elaborate(self, platform: object) -> Module:
        m = Module()
        t, fx = self.cfg, self.cfg.fx
        m.submodules.pipe = pipe = SpattenPipeline(fx)
        m.submodules.imp = imp = Importance(t.imp)
        m.submodules.topk = topk = TopK(comparators=fx.s, max_n=t.topk_n, data_bits=t.imp.imp_bits, signed_data=0)
        # The boundary top-k takes the importance read-out through a registered stream slice (SP_TOPK_SLICES): on
        # ECP5 the read-out's storage ran through the top-k's first-beat job checks into its buffer's write enable.
        assert SP_TOPK_SLICES == 1, "one slice: the top's cycle models count SP_TOPK_SLICES"
        m.submodules.topk_sl = topk_sl = SkidBuffer(len(imp.o.payload))
        wiring.connect(m, imp.o, topk_sl.i)
        wiring.connect(m, topk_sl.o, topk.i)
        m.d.comb += [imp.r.ready.eq(1)]
        # The importance input is a registered stream slice (SP_IMP_SLICES): the controller's and the feeder's
        # muxes and alive-list lookups end at its register instead of running into the block's job checks.
        assert SP_IMP_SLICES == 1, "one slice: the top's cycle model walks one"
        m.submodules.imp_sl = imp_sl = SkidBuffer(len(imp.i.payload))
        wiring.connect(m, imp_sl.o, imp.i)
        lists = _Lists(Array(Signal(fx.idx_bits, name=f"alive{i}") for i in range(fx.max_n)), Signal(fx.n_bits),
                       Array(Signal(t.head_bits, name=f"ahead{i}") for i in range(t.max_heads)), Signal(t.heads_n_bits),
                       Signal(fx.n_bits, name="alive_last"))
        desc = Signal(self.contract["desc"].width)
        dv = view(self.contract["desc"], desc)
        reqs = {tag: _Req(Signal(name=f"r{tag}_valid"), Signal(t.addr_bits, name=f"r{tag}_addr"),
                          Signal(t.len_bits, name=f"r{tag}_len"), Signal(name=f"r{tag}_grant")) for tag in (0, 1, 2)}
        self._arbiter(m, reqs)
        run = Signal()  # the controller is in RUN: the fetchers and the feeder work
        qf_done, issued = Signal(), Signal(fx.n_bits + t.heads_n_bits + 1)
        # Lanes below the layer's head dimension 2**dlog, registered (the descriptor holds still from IDLE to DONE
        # and the first Q row comes back cycles after it is taken): Q rows and outputs are masked with it.
        lane_on = Signal(fx.max_d)
        m.d.sync += lane_on.eq(Cat(*((f >> dv.dlog) == 0 for f in range(fx.max_d))))
        heads = self._qfetch(m, pipe, dv, lists, reqs[TAG_Q], run, qf_done, issued, lane_on)
        hoff = self._head_offsets(m, dv)
        kready = self._kfetch(m, pipe, dv, lists, reqs[TAG_K], heads[0], hoff)
        vready = self._vfetch(m, pipe, dv, lists, reqs[TAG_V], heads[1], hoff)
        tag = view(self.contract["mresp"], self.mresp.payload).tag
        m.d.comb += self.mresp.ready.eq(Mux(tag == TAG_K, kready, Mux(tag == TAG_V, vready, 1)))
        feed_en = Signal()  # the controller is in RUN: the importance block takes the feeder's jobs
        outs, fed, feed = self._outputs(m, pipe, imp_sl.i, imp.contract["i"], dv, lists, heads[2], feed_en, lane_on)
        self._controller(m, (imp_sl.i, imp.contract["i"]), topk, dv, desc, lists, (run, feed_en),
                         (qf_done, issued, outs, fed), feed)
        return m

    # ---------------------------------------------------------------- memory port
    def _arbiter(self, m: Module, reqs: dict[int, _Req]) -> None:
        """Fixed priority K, V, Q; the response's tag routes it (see the fetchers)."""
        lay = self.contract["mreq"]
        order = [TAG_K, TAG_V, TAG_Q]
        m.d.comb += self.mreq.valid.eq(sum(reqs[g].valid for g in order) != 0)
        payload = pack_value(lay, {"addr": reqs[TAG_Q].addr, "len": reqs[TAG_Q].len, "tag": TAG_Q})
        for g in reversed(order[:-1]):
            payload = Mux(reqs[g].valid, pack_value(lay, {"addr": reqs[g].addr, "len": reqs[g].len, "tag": g}), payload)
        m.d.comb += self.mreq.payload.eq(payload)
        before: Value = 0
        for g in order:
            m.d.comb += reqs[g].grant.eq(reqs[g].valid & ~before & self.mreq.ready)
            before = before | reqs[g].valid

    def _resp(self, tag: int) -> tuple[Value, data.View]:
        rv = view(self.contract["mresp"], self.mresp.payload)
        return self.mresp.valid & (rv.tag == tag), rv

    def _head_offsets(self, m: Module, dv: data.View) -> Array:
        """``h * stride`` for every head h, registered (the descriptor holds still in RUN): the K and V fetchers
        look their head's row offset up instead of multiplying (on ECP5 the V fetcher's head label, read from its
        LUT-RAM FIFO, through a multiplier and the base adder was spatten-top's critical path)."""
        t = self.cfg
        hoff = Array(Signal(t.addr_bits, name=f"hoff{h}") for h in range(t.max_heads))
        m.d.sync += [hoff[h].eq((h * dv.stride)[:t.addr_bits]) for h in range(t.max_heads)]
        return hoff

    # ---------------------------------------------------------------- Q fetcher
    def _qfetch(self, m: Module, pipe: SpattenPipeline, dv: data.View, lists: _Lists, req: _Req, run: Signal,
                done: Signal, issued: Signal, lane_on: Signal) -> tuple[Signal, SyncFIFO, SyncFIFO]:
        """Q rows of (head hi, query pi) in order into a 2-entry buffer (credits: requests in flight + buffered
        <= 2); the buffer feeds ``pipe.q``. ``done``: every Q row requested and handed to the pipeline (credits
        back to 2) -- with few jobs (one query, one or two heads) every request is granted before any job issues,
        so the requests alone would end the layer early. Returns the front job's head and the FIFOs of (head,
        token) labels the back (V fetcher) and the outputs read."""
        t, fx = self.cfg, self.cfg.fx
        hi, qi = Signal(t.heads_n_bits), Signal(fx.n_bits)  # head, query (0..queries-1) of the next request
        # The queries are the last ``queries`` alive tokens: list position ``pi`` = n - queries + qi, kept as a
        # counter beside ``qi`` (loaded outside RUN from the registered descriptor, whose ``tokens`` is the list's
        # length ``n`` throughout RUN), so no subtract or add sits in front of the alive-list lookup (on ECP5 the
        # two carry chains, the lookup and the row adder were the whole top's critical path).
        pbase = (dv.tokens - dv.queries)[:fx.n_bits]
        pi = Signal(fx.n_bits, name="q_pos")
        cred = Signal(range(3), init=2)
        lab_w = t.head_bits + fx.idx_bits
        m.submodules.qbuf = qbuf = SyncFIFO(width=fx.max_d * fx.word_bits + lab_w, depth=2)
        m.submodules.qlab = qlab = SyncFIFO(width=lab_w, depth=2)  # labels of Q requests in flight
        m.submodules.vlab = vlab = SyncFIFO(width=t.head_bits, depth=4)  # heads of jobs in the pipeline (V side)
        m.submodules.olab = olab = SyncFIFO(width=lab_w, depth=4)  # (head, token) of jobs in the pipeline (outputs)
        head, tok = lists.head[hi], lists.tok[pi]
        granted = Signal()  # every Q row of the layer requested
        busy = run & ~granted
        m.d.comb += done.eq(granted & (cred == 2))
        # The Q row base of every head id, in two free-running registers (``h * stride``, then the base added):
        # the descriptor register is loaded at least three cycles before RUN (it leaves IDLE, then CHECK, then
        # CLEAR or BOUND), so the bases are ready for the first request and no multiplier sits in front of the
        # memory request (requests can leave back to back, so a base cannot follow ``hi`` a cycle late); the
        # product and the add in one cycle were a critical path of spatten-top on ECP5.
        qoff = [Signal(t.addr_bits, name=f"qoff{h}") for h in range(t.max_heads)]
        qrow = Array(Signal(t.addr_bits, name=f"qrow{h}") for h in range(t.max_heads))
        m.d.sync += [qoff[h].eq((h * dv.stride)[:t.addr_bits]) for h in range(t.max_heads)]
        m.d.sync += [qrow[h].eq((dv.q_base + qoff[h])[:t.addr_bits]) for h in range(t.max_heads)]
        # The request itself is registered (SP_Q_REQ_REG): address and label are computed from (hi, qi) a cycle
        # ahead, so neither the alive-list lookups nor the row-base adder sit in front of the memory request. The
        # register holds the current (hi, qi)'s request from the cycle after they (or the lists, before RUN) last
        # changed: ``fresh`` is low on RUN's first cycle and the cycle after each grant.
        assert SP_Q_REQ_REG == 1, "one request register: the cycle models count SP_Q_REQ_REG"
        fresh, addr_r, lab_r = Signal(), Signal(t.addr_bits), Signal(lab_w)
        m.d.sync += [fresh.eq(run & ~req.grant), addr_r.eq((qrow[head] + tok)[:t.addr_bits]),
                     lab_r.eq(head | (tok << t.head_bits))]
        m.d.comb += [req.valid.eq(busy & fresh & (cred != 0) & qlab.w_rdy), req.len.eq(1), req.addr.eq(addr_r),
                     qlab.w_en.eq(req.grant), qlab.w_data.eq(lab_r)]
        wrap = qi + 1 == dv.queries
        last_q = wrap & (hi + 1 == lists.h)
        with m.If(req.grant):
            m.d.sync += [qi.eq(Mux(wrap, 0, qi + 1)), pi.eq(Mux(wrap, pbase, pi + 1)), hi.eq(Mux(wrap, hi + 1, hi))]
            with m.If(last_q):
                m.d.sync += granted.eq(1)
        rvalid, rv = self._resp(TAG_Q)
        qrow_in = Cat(*(rv.data.word_select(f, fx.word_bits) & lane_on[f].replicate(fx.word_bits)
                        for f in range(fx.max_d)))
        m.d.comb += [qbuf.w_en.eq(rvalid), qbuf.w_data.eq(Cat(qrow_in, qlab.r_data)), qlab.r_en.eq(rvalid)]
        qfire = pipe.q.valid & pipe.q.ready
        # The tree is always tapped at max_d (one key per beat): a head dimension D below it runs with the query's
        # lanes D.. zeroed above, so those lanes of every key add nothing, whatever the memory holds there.
        job = {"n": lists.n, "dlog": clog2(fx.max_d), "kv": dv.kv, "thr": dv.thr, "alpha": dv.alpha}
        m.d.comb += [pipe.q.valid.eq(qbuf.r_rdy & vlab.w_rdy & olab.w_rdy), qbuf.r_en.eq(qfire),
                     pipe.q.payload.eq(pack_value(pipe.contract["q"], {"q": qbuf.r_data[:fx.max_d * fx.word_bits],
                                                                       "job": job})),
                     vlab.w_en.eq(qfire), olab.w_en.eq(qfire), olab.w_data.eq(qbuf.r_data[fx.max_d * fx.word_bits:]),
                     vlab.w_data.eq(qbuf.r_data[fx.max_d * fx.word_bits:][:t.head_bits])]
        m.d.sync += cred.eq(cred - req.grant + qfire)
        front = Signal(t.head_bits)  # head of the pipeline's front job: its K requests
        with m.If(qfire):
            m.d.sync += [front.eq(qbuf.r_data[fx.max_d * fx.word_bits:][:t.head_bits]), issued.eq(issued + 1)]
        with m.If(~run):
            m.d.sync += [hi.eq(0), qi.eq(0), pi.eq(pbase), granted.eq(0), issued.eq(0)]
        return front, vlab, olab

    # ---------------------------------------------------------------- K fetcher
    def _kfetch(self, m: Module, pipe: SpattenPipeline, dv: data.View, lists: _Lists, req: _Req,
                head: Signal, hoff: Array) -> Value:
        """Runs of consecutive alive tokens, one burst each (at most 2**len_bits - 1 rows), from the requested
        region; the rows pass to ``kmem`` as they come (one key per beat: lanes == max_d)."""
        t, fx = self.cfg, self.cfg.fx
        on, lsb = Signal(), Signal()
        pos, start, ln = Signal(fx.n_bits), Signal(fx.idx_bits), Signal(t.len_bits)
        tok = lists.tok[pos]
        # ``pos < n`` kept as a register beside ``pos`` (set with every change of ``pos``; the list holds still
        # while a pass walks it): the compare ran on through the request valid and the arbiter into the Q
        # fetcher's enables (an ECP5 Fmax path)
        more = Signal(name="kf_more")
        ahead = pos + 1 < lists.n
        # A run grows while the next alive token follows the previous one: ``tok[p] == tok[p-1] + 1`` for every
        # position, registered (the list holds still in RUN and its first K request comes many cycles after RUN's
        # first), so the run test is a one-bit lookup, not an id lookup, an adder and a compare in front of the
        # memory request (same cycles: tok[pos] == start + ln exactly when position pos continues the run).
        follows = Signal(fx.max_n)
        m.d.sync += follows.eq(Cat(Const(0, 1), *(lists.tok[p] == lists.tok[p - 1] + 1 for p in range(1, fx.max_n))))
        fol = Signal(name="kf_follows")  # follows[pos], kept beside ``pos`` as ``more`` is (no mux before the valid)
        ext = on & more & (ln != 0) & fol & (ln != (1 << t.len_bits) - 1)
        fol_ahead = follows.bit_select(pos + 1, 1)
        kv = view(pipe.contract["kreq"], pipe.kreq.payload)
        # The region's row base, registered: it is read two cycles after the kreq handshake at the earliest (the
        # walk first loads ``start``), by then it holds this pass's region and the front job's head (set at its q
        # handshake, before its kreq), so no multiplier sits in front of the memory request.
        kbase = Signal(t.addr_bits)
        m.d.sync += kbase.eq((Mux(lsb, dv.l_base, dv.k_base) + hoff[head])[:t.addr_bits])
        m.d.comb += [pipe.kreq.ready.eq(~on), req.valid.eq(on & (ln != 0) & ~ext), req.len.eq(ln),
                     req.addr.eq((kbase + start)[:t.addr_bits])]
        with m.If(pipe.kreq.valid & ~on):
            m.d.sync += [on.eq(1), lsb.eq(kv.kind == 1), pos.eq(0), more.eq(lists.n != 0), fol.eq(0), ln.eq(0)]
        with m.If(ext):
            m.d.sync += [ln.eq(ln + 1), pos.eq(pos + 1), more.eq(ahead), fol.eq(fol_ahead)]
        with m.Elif(on & (ln == 0) & more):
            m.d.sync += [start.eq(tok), ln.eq(1), pos.eq(pos + 1), more.eq(ahead), fol.eq(fol_ahead)]
        with m.Elif(req.grant):
            with m.If(more):
                m.d.sync += [start.eq(tok), ln.eq(1), pos.eq(pos + 1), more.eq(ahead), fol.eq(fol_ahead)]
            with m.Else():
                m.d.sync += [ln.eq(0), on.eq(0)]
        rvalid, rv = self._resp(TAG_K)
        m.d.comb += [pipe.kmem.valid.eq(rvalid), pipe.kmem.payload.eq(rv.data[:fx.lanes * fx.msb_bits])]
        return pipe.kmem.ready

    # ---------------------------------------------------------------- V fetcher
    def _vfetch(self, m: Module, pipe: SpattenPipeline, dv: data.View, lists: _Lists, req: _Req,
                vlab: SyncFIFO, hoff: Array) -> Value:
        """Issue side: one row request per kept index of the V request; collect side: the rows in order into one
        ``vmem`` beat per request (a FIFO of counts links the two). Returns the collect side's ready."""
        fx = self.cfg.fx
        s = fx.s
        pv = view(pipe.contract["vreq"], pipe.vreq.payload)
        m.submodules.vcnt = vcnt = SyncFIFO(width=clog2(s + 1) + 1, depth=4)
        on, j = Signal(), Signal(range(s + 1))
        cnt = Signal(range(s + 1))
        # The back job's head row, registered: its head leads ``vlab`` from the previous job's output handshake
        # on, many cycles before its V request (hand-off, then the top-k), so no multiplier sits in front of the
        # memory request; the kept indices' row addresses (that base plus the alive list's token id) are taken
        # with the V request, so neither the id lookup nor the adder sits there either.
        vbase = Signal(self.cfg.addr_bits)
        m.d.sync += vbase.eq((dv.v_base + hoff[vlab.r_data])[:self.cfg.addr_bits])
        addrs = Array(Signal(self.cfg.addr_bits, name=f"vaddr{i}") for i in range(s))
        # Each address lane looks the kept index up in its own copy of the alive list (a LocalReg a cycle behind
        # the list, placed beside the lane): one list read by every lane's 16-way mux routed 6 ns on ECP5. A
        # cycle behind is never seen: the list is written only at layer boundaries, and a V request needs a
        # query's Q and K fetched and its scores through the softmax and the top-k after RUN is entered.
        ib = fx.idx_bits
        alive = [Array(c[t * ib:(t + 1) * ib] for t in range(fx.max_n))
                 for c in local_copies(m, Cat(*lists.tok), s, "alive_v")]
        m.d.comb += [pipe.vreq.ready.eq(~on & vcnt.w_rdy), vcnt.w_en.eq(pipe.vreq.valid & ~on),
                     vcnt.w_data.eq(pv.count)]
        with m.If(pipe.vreq.valid & ~on):
            m.d.sync += [on.eq(pv.count != 0), j.eq(0), cnt.eq(pv.count)]
            m.d.sync += [addrs[i].eq((vbase + alive[i][pv.indices[i]])[:self.cfg.addr_bits]) for i in range(s)]
        m.d.comb += [req.valid.eq(on), req.len.eq(1), req.addr.eq(addrs[j])]
        with m.If(req.grant):
            m.d.sync += j.eq(j + 1)
            with m.If(j + 1 == cnt):
                m.d.sync += on.eq(0)
        # collect
        rowb = fx.max_d * fx.v_bits
        rows = Signal(s * rowb)
        col, got, full = Signal(), Signal(range(s + 1)), Signal()
        need = Signal(range(s + 1))
        # ``got != need`` kept as a register beside ``got`` (``want``) and the row slot to write as a one-hot
        # register (``slot``): the compare and the slot decoder ran into every gathered row's write enable (on ECP5
        # a critical path of spatten-top)
        want, slot = Signal(name="v_want"), Signal(s, name="v_slot")
        rvalid, rv = self._resp(TAG_V)
        m.d.comb += [vcnt.r_en.eq(~col & vcnt.r_rdy)]
        with m.If(~col & vcnt.r_rdy):
            # the rows are not cleared: prob x V zeroes the probabilities past the beat's count, so rows past it
            # (last job's) add nothing (the clear's enable over every row bit was a critical path on ECP5)
            m.d.sync += [col.eq(1), got.eq(0), need.eq(vcnt.r_data), want.eq(vcnt.r_data != 0), slot.eq(1)]
        with m.If(col & ~want):
            m.d.sync += full.eq(1)
        take = rvalid & col & want & ~full
        with m.If(take):
            m.d.sync += [got.eq(got + 1), want.eq(got + 1 != need), slot.eq(slot << 1)]
        # The row is written a cycle after its take, from a register of the response and a one-hot register of
        # the slot and the take, so each row's write enable is a register's output and the take's logic stays off
        # its fan-out (on ECP5 the enable net over a row's bits, next to the prob x V multipliers, was a critical
        # path of spatten-top). Same cycles: ``full`` rises two cycles after the last take, the row lands one after.
        wen, wdat = Signal(s, name="v_wen"), Signal(rowb, name="v_wdat")
        m.d.sync += [wen.eq(Mux(take, slot, 0)), wdat.eq(rv.data[:rowb])]
        for i in range(s):
            with m.If(wen[i]):
                m.d.sync += rows.word_select(i, rowb).eq(wdat)
        m.d.comb += [pipe.vmem.valid.eq(full), pipe.vmem.payload.eq(rows)]
        with m.If(pipe.vmem.valid & pipe.vmem.ready):
            m.d.sync += [full.eq(0), col.eq(0)]
        m.d.comb += vlab.r_en.eq(pipe.o.valid & pipe.o.ready)  # the back's job is done: next head
        return col & want & ~full

    # ---------------------------------------------------------------- outputs and the importance feeder
    def _outputs(self, m: Module, pipe: SpattenPipeline, imp_i: object, ilay: data.Layout, dv: data.View,
                 lists: _Lists, olab: SyncFIFO, feed_en: Signal,
                 lane_on: Signal) -> tuple[Signal, Signal, tuple[Value, Value]]:
        """``o`` beats with their labels; a copy of every output (and the tap) feeds the importance block:
        add_tokens per tap row (ids from the alive list), then add_head per output. Returns the output and feed
        counters of the layer and the feeder's (valid, beat) for the importance input."""
        t, fx = self.cfg, self.cfg.fx
        s = fx.s
        po = view(pipe.contract["o"], pipe.o.payload)
        m.submodules.ocopy = ocopy = SyncFIFO(width=fx.max_d * fx.out_bits + t.head_bits, depth=2)
        lab_head, lab_tok = olab.r_data[:t.head_bits], olab.r_data[t.head_bits:]
        ofire = pipe.o.valid & pipe.o.ready
        # output lanes past the head dimension are zero (their V lanes may hold anything)
        out = Cat(*(po.out.as_value().word_select(f, fx.out_bits) & lane_on[f].replicate(fx.out_bits)
                    for f in range(fx.max_d)))
        m.d.comb += [self.o.valid.eq(pipe.o.valid & ocopy.w_rdy), pipe.o.ready.eq(self.o.ready & ocopy.w_rdy),
                     self.o.payload.eq(pack_value(self.contract["o"], {
                         "out": out, "head": lab_head, "token": lab_tok, "refetch": po.refetch, "max_p": po.max_p})),
                     olab.r_en.eq(ofire), ocopy.w_en.eq(ofire),
                     ocopy.w_data.eq(out | (lab_head << (fx.max_d * fx.out_bits)))]
        outs, fed = Signal(fx.n_bits + t.heads_n_bits + 1), Signal(fx.n_bits + t.heads_n_bits + 1)
        with m.If(ofire):
            m.d.sync += outs.eq(outs + 1)
        tap = view(pipe.contract["p"], pipe.p.payload)
        head_mode, beat = Signal(), Signal(fx.n_bits)
        ib, nb = t.imp.idx_bits, t.imp.n_bits
        ids = [_fit(lists.tok[(beat << clog2(s)) + j], ib) for j in range(s)]
        tok_beat = pack_value(ilay, {"op": OPS["add_tokens"], "n": _fit(lists.n, nb), "k": 0, "dlog": dv.dlog,
                                     "idx": ids, "probs": tap.probs, "out": 0})
        head_beat = pack_value(ilay, {"op": OPS["add_head"], "n": 1, "k": 0, "dlog": dv.dlog,
                                      "idx": [_fit(ocopy.r_data[fx.max_d * fx.out_bits:], ib)] + [0] * (s - 1),
                                      "probs": 0, "out": ocopy.r_data[:fx.max_d * fx.out_bits]})
        feed = (Mux(head_mode, ocopy.r_rdy, pipe.p.valid), Mux(head_mode, head_beat, tok_beat))
        feed_fire = feed[0] & imp_i.ready & feed_en
        m.d.comb += [pipe.p.ready.eq(~head_mode & imp_i.ready & feed_en),
                     ocopy.r_en.eq(head_mode & imp_i.ready & feed_en)]
        with m.If(feed_fire):
            with m.If(head_mode):
                m.d.sync += [head_mode.eq(0), fed.eq(fed + 1)]
            with m.Else():
                m.d.sync += beat.eq(beat + 1)
                with m.If(tap.last):
                    m.d.sync += [head_mode.eq(1), beat.eq(0)]
        return outs, fed, feed

    # ---------------------------------------------------------------- controller
    def _bad(self, d: data.View, lists: _Lists) -> Value:
        """The descriptor checks (the contract's desc stream lists them)."""
        t, fx = self.cfg, self.cfg.fx
        common = ((d.tokens == 0) | (d.heads == 0) | (d.kv == 0) | (d.kv > d.tokens) | (d.queries == 0)
                  | (d.queries > d.tokens) | (d.thr > (1 << fx.prob_frac))
                  | (d.dlog < clog2(fx.min_d)) | (d.dlog > clog2(fx.max_d)))
        first = (d.tokens > fx.max_n) | (d.heads > t.max_heads) | (d.stride < d.tokens)
        # carry keeps the list's last token (the newest, a decoder's query) and tokens - 1 others by importance:
        # tokens = 1 only where one token is there (the top-k takes no k = 0 job)
        carry = ((d.ctx > fx.max_n) | (d.tokens > d.ctx) | ((d.tokens == 1) & (d.ctx != 1))
                 | (d.stride < d.ctx))
        later = ((d.tokens > lists.n) | (d.heads > lists.h) | (d.ctx != 0)
                 | (d.carry & (d.tokens == 1) & (lists.n != 1)))
        return common | Mux(d.first, first | Mux(d.carry, carry, d.ctx != d.tokens), later)

    def _controller(self, m: Module, imp_in: tuple[object, data.Layout], topk: TopK, dv: data.View, desc: Signal,
                    lists: _Lists, modes: tuple[Signal, Signal], counts: tuple[Signal, Signal, Signal, Signal],
                    feed: tuple[Value, Value]) -> None:
        """IDLE -> (ERR | CLEAR | boundary top-k for tokens, then heads) -> RUN -> DONE -> IDLE. ``imp_in``: the
        importance input (its slice's) and its layout."""
        t, fx = self.cfg, self.cfg.fx
        s = fx.s
        qf_done, issued, outs, fed = counts
        imp_i = imp_in[0]
        dw = view(self.contract["desc"], self.desc.payload)
        rd_beat, rd_heads = Signal(fx.n_bits), Signal()
        # with carry the token top-k leaves out the list's last entry, the newest token: its id is kept aside while
        # the token list is read (``newest``), and written after the kept ones the cycle after the top-k's last
        # beat (``put``), while the head list is read or skipped (no cycle added; no top-k output bit and no list
        # lookup in front of the list's registers)
        n_rd = Mux(rd_heads, lists.h, lists.n - dv.carry)
        newest, put = Signal(fx.idx_bits), Signal()
        m.d.sync += put.eq(0)
        ib = t.imp.idx_bits
        ids = [_fit(Mux(rd_heads, lists.head[((rd_beat << clog2(s)) + j)[:t.head_bits]],
                        lists.tok[(rd_beat << clog2(s)) + j]), ib) for j in range(s)]
        wpos = Signal(fx.n_bits)
        done_last = self._compact(m, topk, lists, rd_heads, wpos)
        m.d.comb += topk.o.ready.eq(1)
        keep = Mux(rd_heads, dv.heads, dv.tokens - dv.carry)
        # the list keeps what it has (``keep == n_rd``), compared without the subtractions (the carried token is
        # taken from both sides): on ECP5 the subtractor's carry chain ran into the importance input's valid
        same = Mux(rd_heads, dv.heads == lists.h, dv.tokens == lists.n)
        # The descriptor's checks are registered beside it (SP_DESC_REG, one CHECK cycle per descriptor): on ECP5
        # the checks' compares on the input payload ran into the next state and every alive-list register's enable
        # (a carried iteration's restart), a critical path of the top.
        assert SP_DESC_REG == 1, "one CHECK cycle: the cycle models count SP_DESC_REG"
        bad = Signal()
        # One flip-flop per state (OneHotFSM): RUN and CLEAR select the importance input's payload, a mux over every
        # bit of its slice's two registers, and a binary state's decode in front of that fan-out was a critical path
        # of spatten-top on ECP5. Comb outputs come from ``st.ongoing()`` in plain assignments after the states,
        # never from inside a state: Icarus leaves an ``always @*`` block unevaluated (X) until an input changes.
        st = OneHotFSM(("IDLE", "CHECK", "ERR", "CLEAR", "BOUND", "TOPK", "RUN", "DONE"), "fsm_state")
        with m.If(st.ongoing("IDLE")):  # the descriptor and its checks' verdict into registers (SP_DESC_REG)
            with m.If(self.desc.valid):
                m.d.sync += [desc.eq(self.desc.payload), bad.eq(self._bad(dw, lists))]
                st.next(m, "CHECK")
        with m.If(st.ongoing("CHECK")):
            with m.If(bad):
                st.next(m, "ERR")
            with m.Elif(dv.first & ~dv.carry):
                st.next(m, "CLEAR")
            with m.Else():
                m.d.sync += [rd_heads.eq(0), rd_beat.eq(0), wpos.eq(0)]
                with m.If(dv.first):  # a carried iteration: the lists restart, the importance stays
                    self._restart(m, lists, dv.ctx, dv.heads)
                st.next(m, "BOUND")
        with m.If(st.ongoing("ERR")):
            with m.If(self.r.ready):
                st.next(m, "IDLE")
        with m.If(st.ongoing("CLEAR")):
            # the lists restart on every CLEAR cycle, not on the clear beat's take: the same values each time, read
            # by no one before RUN, and the importance slice's ready stays off the lists' enables (on ECP5 that
            # ready's route into every alive-list register was a spatten-top critical path)
            self._restart(m, lists, dv.tokens, dv.heads)
            with m.If(imp_i.ready):
                st.next(m, "RUN")
        self._bound_states(m, st, _Reading(rd_beat, rd_heads, wpos, newest, put), lists, dv,
                           (same, imp_i.ready, n_rd, done_last))
        with m.If(st.ongoing("RUN")):
            with m.If(qf_done & (outs == issued) & (fed == issued)):
                st.next(m, "DONE")
        with m.If(st.ongoing("DONE")):
            m.d.sync += [outs.eq(0), fed.eq(0)]
            with m.If(self.r.ready):
                st.next(m, "IDLE")
        for i in range(fx.max_n):  # carry: the newest token after the tokens - 1 kept ones
            with m.If(put & (dv.tokens == i + 1)):
                m.d.sync += lists.tok[i].eq(newest)
        self._ctl_outputs(m, st, lists, imp_in, modes, feed, (same, n_rd, rd_heads, keep, ids))

    def _bound_states(self, m: Module, st: OneHotFSM, rd: _Reading, lists: _Lists, dv: data.View,
                      conds: tuple[Value, Value, Value, Value]) -> None:
        """BOUND and TOPK: read one list's scores into the top-k (or skip a list that keeps what it has), then
        wait for the compaction to write the kept ids; tokens first, then heads, then RUN. ``conds``: the list
        keeps what it has, the importance input is ready, the list's length, the compaction's last write."""
        same, imp_ready, n_rd, done_last = conds
        with m.If(st.ongoing("BOUND")):  # read the scores of one list into the top-k, or skip it
            with m.If(~rd.heads):
                m.d.sync += rd.newest.eq(lists.tok[lists.n_last])
            with m.If(same):
                with m.If(rd.heads):
                    st.next(m, "RUN")
                with m.Else():
                    m.d.sync += [rd.heads.eq(1), rd.beat.eq(0), rd.wpos.eq(0)]
            with m.Elif(imp_ready):
                m.d.sync += rd.beat.eq(rd.beat + 1)
                with m.If(((rd.beat + 1) << clog2(self.cfg.fx.s)) >= n_rd):
                    st.next(m, "TOPK")
        with m.If(st.ongoing("TOPK")):  # the compaction writes the kept ids; the list shrinks with the last beat's write
            with m.If(done_last):
                with m.If(rd.heads):
                    m.d.sync += lists.h.eq(dv.heads)
                    st.next(m, "RUN")
                with m.Else():
                    m.d.sync += [lists.n.eq(dv.tokens), lists.n_last.eq(dv.tokens - 1), rd.heads.eq(1), rd.beat.eq(0),
                                 rd.wpos.eq(0), rd.put.eq(dv.carry)]
                    st.next(m, "BOUND")

    def _ctl_outputs(self, m: Module, st: OneHotFSM, lists: _Lists, imp_in: tuple[object, data.Layout],
                     modes: tuple[Signal, Signal], feed: tuple[Value, Value],
                     read: tuple[Value, Value, Value, Value, list[Value]]) -> None:
        """The controller's outputs, from its states (never from inside one, see ``_controller``): the descriptor
        and answer ports, the run and feed enables, and the importance input's beat (the controller's own clear
        and list-read beats, or the pipeline's feed while RUN). ``read``: the list being read, as ``_controller``
        derives it (skipped, length, which list, kept count, the beat's ids)."""
        imp_i, ilay = imp_in
        run, feed_en = modes
        same, n_rd, rd_heads, keep, ids = read
        nb = self.cfg.imp.n_bits
        ctl_valid, ctl_beat = Signal(), Signal(ilay.width)
        err_s, done_s, clear_s = st.ongoing("ERR"), st.ongoing("DONE"), st.ongoing("CLEAR")
        read_s = st.ongoing("BOUND") & ~same
        op = Mux(rd_heads, OPS["read_heads"], OPS["read_tokens"])
        read_beat = pack_value(ilay, {"op": op, "n": _fit(n_rd, nb), "k": _fit(keep, nb), "dlog": 0, "idx": ids,
                                      "probs": 0, "out": 0})
        m.d.comb += [self.desc.ready.eq(st.ongoing("IDLE")), run.eq(st.ongoing("RUN")), feed_en.eq(st.ongoing("RUN")),
                     self.r.valid.eq(err_s | done_s),
                     self.r.payload.eq(pack_value(self.contract["r"], {"err": err_s, "tokens": lists.n,
                                                                       "heads": lists.h})),
                     ctl_valid.eq(clear_s | read_s), ctl_beat.eq(Mux(clear_s, OPS["clear"], read_beat))]
        valid, beat = feed
        m.d.comb += [imp_i.valid.eq(Mux(feed_en, valid, ctl_valid)), imp_i.payload.eq(Mux(feed_en, beat, ctl_beat))]

    def _restart(self, m: Module, lists: _Lists, tokens: Value, heads: Value) -> None:
        """The alive lists from scratch: tokens 0..tokens-1 and heads 0..heads-1 (a first descriptor)."""
        m.d.sync += [lists.n.eq(tokens), lists.n_last.eq(tokens - 1), lists.h.eq(heads)]
        m.d.sync += [lists.tok[i].eq(i) for i in range(self.cfg.fx.max_n)]
        m.d.sync += [lists.head[i].eq(i) for i in range(self.cfg.max_heads)]

    def _compact(self, m: Module, topk: TopK, lists: _Lists, heads: Signal, wpos: Signal) -> Signal:
        """Each top-k output beat: the kept positions (ascending) pick their ids from the list into registers
        (``SP_COMPACT_REG``), written the cycle after at the next free positions. Returns a register that is high
        in the cycle the job's last beat is written. Kept positions ascend and a beat's write positions are below
        the next beat's kept positions, so the pick of one beat never reads what the write before it changes.
        On ECP5 the pick's mux, the position compares and every list entry's write enable in one cycle from the
        top-k's output register were a critical path of the top."""
        t, fx = self.cfg, self.cfg.fx
        assert SP_COMPACT_REG == 1, "one pick register: the top's cycle models count SP_COMPACT_REG"
        tkv = view(topk.contract["o"], topk.o.payload)
        fire = topk.o.valid
        # the pick stage: ids, the beat's count and its first write position
        wv, wlast, wcount, wat = Signal(), Signal(), Signal.like(tkv.count), Signal.like(wpos)
        m.d.sync += [wv.eq(fire), wlast.eq(fire & tkv.last), wcount.eq(tkv.count), wat.eq(wpos)]
        with m.If(fire):
            m.d.sync += wpos.eq(wpos + tkv.count)
        # Written element by element: entry i takes lane j's id when ``wat + j == i`` (later lanes win, as later
        # statements do). An Array target indexed by a signal elaborates, for every entry and lane, a case over every
        # index value: for max_n 128 that was half of the exported Verilog (5.2 MB -> 2.5 MB), at max_n 1024 200 MB
        # that Verilator could not build (12.7 MB now), for the same decoder in hardware.
        # ``wat + j == i`` is tested as ``wat == i - j`` (a compare with a constant, no adder before the enables;
        # the head list's positions wrap at head_bits as its truncated sum did)
        hb = t.head_bits
        lanes = [(lists.tok, fx.max_n, ~heads, lambda v: v, lambda i, j: (wat == i - j) if i >= j else 0),
                 (lists.head, t.max_heads, heads, lambda v: v[:hb], lambda i, j: wat[:hb] == (i - j) % (1 << hb))]
        for lst, size, on, cut, at in lanes:
            name = "head" if lst is lists.head else "tok"
            picked = [Signal.like(lst[0], name=f"{name}_pick{j}") for j in range(fx.s)]
            m.d.sync += [picked[j].eq(lst[cut(tkv.indices[j])]) for j in range(fx.s)]
            for i in range(size):
                for j in range(fx.s):
                    with m.If(wv & on & (j < wcount) & at(i, j)):
                        m.d.sync += lst[i].eq(picked[j])
        return wlast
