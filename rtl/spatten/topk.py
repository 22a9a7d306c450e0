"""SpAtten top-k engine: quick-select rounds with C comparators per array, FIFO_L / FIFO_R, zero eliminators, and
an order-preserving filter pass over the buffered input.

Streams (layouts :func:`attnforge.sim.contract.designs.topk`; golden and exact cycle model
:mod:`attnforge.sim.spatten.topk_golden`):

* ``i``: ``C`` scores per beat (``data_bits`` each, lane ``l`` in bits ``[l*w, (l+1)*w)``), then the job word ``n``,
  ``k`` (read on the first beat of a job; ``1 <= k <= n <= max_n``). The last beat may be partial (``n % C``).
* ``o``: one beat per input row: kept values (C lanes), their indices (C lanes), ``count``, ``last``.

Round 1 runs on the input stream while it is written to the original buffer (pivot = element 0). Later rounds
read the chosen FIFO (pivot = its first element, captured as it was written). Three row buffers rotate: the
round's source ``s``, FIFO_R at ``(s+1) % 3`` and FIFO_L at ``(s+2) % 3``. Each comparator array's output is
compacted by a zero eliminator and a packer (realign) writes only full rows, plus one partial row in the
flush cycle that also makes the decision (0-based target t = k - 1):
|R| > t -> R; |R| + eq <= t -> t -= |R| + eq, L; else k-th = pivot, keep t - |R| + 1 ties.

Both datapaths are pipelined so the engine closes timing at 100 MHz on ECP5 (the unpipelined comparator -> prefix
sum -> shifter -> packer -> LUT-RAM path ran at 34 MHz): a round registers the comparator operands, the comparator
flags and three zero-eliminator stages in front of the packers (``ROUND_PIPE``; a DRAIN state waits for it before
the flush), and the packers' FIFO writes are registered (the read ports are transparent, so the flush row can be
read back in the next cycle); the filter pass registers the flags, the tie prefix sum, the keep flags and two
zero-eliminator stages (``FILTER_PIPE``) and never stalls: its rows go to an output FIFO where the output register
was, and a row is read only on a credit of that FIFO (so the consumer's ready reaches none of the pass's enables).
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Const, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory, ReadPort, WritePort

from attnforge.rtl.common import HeadRegFIFO, OneHotFSM, contract_ports, credit_room, local_copies, pack_value, view
from attnforge.rtl.spatten.zero_elim import ZE_STAGES, popcount, prefix_sum, zero_eliminate_pipelined
from attnforge.sim.contract import FILTER_PIPE, ROUND_PIPE, count_bits, idx_bits, n_bits
from attnforge.sim.contract import designs as contract

_Port = tuple[WritePort, ReadPort]  #: a row buffer's write port and read port


@dataclass
class _Ctl:
    """The registers the FSM shares with the two datapaths, and the FSM's two strobes.

    Job: ``n`` scores, ``t`` the 0-based target within the candidates. Round: ``pivot``, ``cand`` candidates in
    buffer ``src``; LOAD's write position (``in_row``, ``in_base``), RUN's issue (``iss_*``) and process
    (``proc_base``, ``pending``) positions; ``drain`` counts the DRAIN state down. The packers count the elements
    they keep (``cnt_r``, ``cnt_l``) and keep the decision's two differences as registers (``slack_r = t - cnt_r``,
    ``slack_l = t - cnt_r - ties``), so FLUSH decides on their sign bits; the filter pass keeps the values above ``kth`` and
    counts ``rem``, the ties still to keep, down. ``flush``: the packers write their partial rows (FLUSH);
    ``restart``: they start the next round (also FLUSH). ``skip``: beats of a refused job still to consume (SKIP).
    """

    n: Signal
    t: Signal
    pivot: Signal
    cand: Signal
    src: Signal
    in_base: Signal
    in_row: Signal
    row0: Signal  #: ``in_row == 0``, kept as a register beside it (the job's first beat is the input's)
    iss_base: Signal
    iss_row: Signal
    proc_base: Signal
    pending: Signal
    cnt_r: Signal
    cnt_l: Signal
    slack_r: Signal
    slack_l: Signal
    kth: Signal
    rem: Signal
    drain: Signal
    flush: Signal
    restart: Signal
    skip: Signal
    #: the FSM, one flip-flop per state: LOAD (idle / round 1 on the input), SKIP, REFUSE, DRAIN, FLUSH, RUN, FILTER
    st: OneHotFSM


@dataclass
class _Operands:
    """The row entering the comparator arrays, driven by the FSM: the input beat in LOAD, the source FIFO in RUN."""

    valid: Signal
    word: Signal
    mask: Signal  #: lanes that hold a candidate (the last row may be partial)
    pivot: Signal


@dataclass
class _Compacted:
    """The comparator arrays' output ROUND_PIPE cycles later: per side (0: R, greater than the pivot; 1: L, less),
    the kept elements compacted to the low lanes and their count; and the number of ties, valid with ``valid``."""

    valid: Value
    n_eq: Value
    elems: tuple[list[Value], list[Value]]
    counts: tuple[Value, Value]


@dataclass
class _Packed:
    """The packers' FIFO writes (per side, 0: R, 1: L) and the first element each side kept (the next pivot)."""

    en: list[Signal]
    row: list[Signal]
    data: list[Signal]
    first: list[Signal]


@dataclass
class _Filter:
    """The filter pass's read position (``issue`` rows issued; ``s1``/``last``/``base``: the row being read), the
    output FIFO and ``room``, its credit: a row may be read (the FIFO can hold it and every row in flight)."""

    issue: Signal
    s1: Signal
    last: Signal
    base: Signal
    fifo: HeadRegFIFO
    room: Signal
    read: Signal  #: a row is read this cycle (FILTER, a credit, rows left)
    #: the output is a refused job's error beat (offered while set; the FIFO is empty between jobs)
    err: Signal


@dataclass
class _Row:
    """A filter-pass row between two pipeline registers: valid, last row of the job, the row, lane 0's index."""

    valid: Signal
    last: Signal
    word: Signal
    base: Signal

    @classmethod
    def create(cls, prefix: str, width: int, base: Signal) -> _Row:
        return cls(Signal(name=f"{prefix}_valid"), Signal(name=f"{prefix}_last"), Signal(width, name=f"{prefix}_word"),
                   Signal.like(base, name=f"{prefix}_base"))


class TopK(wiring.Component):
    def __init__(self, comparators: int = 16, max_n: int = 256, data_bits: int = 8, signed_data: int = 1) -> None:
        if comparators < 1 or comparators & (comparators - 1):
            raise ValueError(f"comparators must be a power of two, got {comparators}")
        self.C, self.max_n, self.B, self.signed_data = comparators, max_n, data_bits, bool(signed_data)
        self.rows = -(-max_n // comparators)
        self.depth = max(2, self.rows)  # of every row buffer
        self.dshape = signed(data_bits) if self.signed_data else unsigned(data_bits)
        self.NB, self.IB, self.CB = n_bits(max_n), idx_bits(max_n), count_bits(comparators)
        self.contract = contract.topk(comparators, max_n, data_bits, signed_data)
        super().__init__(contract_ports(self.contract))

    def _lanes(self, word: Value) -> list[Value]:
        """The scores of a buffered row (the input beat's ``scores`` array), signed when the data are."""
        row = view(self.contract["i"]["scores"], word)
        return [row[j] for j in range(self.C)]

    def elaborate(self, platform: object) -> Module:
        """Storage, the round datapath (comparators, zero eliminators, packers, FIFO writes), the filter pass, and
        the FSM that drives both; the helpers are called in this order because later ``sync`` statements to the
        same register win (the FSM's resets come after the datapaths' updates)."""
        m = Module()
        orig, bufs = self._storage(m)
        ctl = self._control()
        ops = _Operands(Signal(name="p_valid"), Signal(self.C * self.B, name="p_word"), Signal(self.C, name="p_mask"),
                        Signal(self.dshape, name="p_pivot"))
        packed = self._packers(m, self._compare(m, ops), ctl)
        rd_word = self._fifo_ports(m, bufs, ctl, packed)
        fl = self._filter(m, orig[1], ctl)
        self._fsm(m, ctl, ops, orig, rd_word, packed.first, fl)
        return m

    # ---------------------------------------------------------------- storage and registers
    def _storage(self, m: Module) -> tuple[_Port, list[_Port]]:
        """The original buffer (the job's input rows, for the filter pass) and the three rotating row buffers."""
        W = self.C * self.B
        m.submodules.orig = orig = Memory(shape=unsigned(W), depth=self.depth, init=[])
        o_wr, o_rd = orig.write_port(), orig.read_port()  # named here: the ports' nets take these names
        bufs = []
        for b in range(3):
            mem = Memory(shape=unsigned(W), depth=self.depth, init=[])
            m.submodules[f"fifo{b}"] = mem
            wport = mem.write_port()
            # transparent: the packers' writes are registered (below), so the flush row of a round is written in
            # the first cycle of the next round, the very cycle that may read it
            bufs.append((wport, mem.read_port(transparent_for=(wport,))))
        return (o_wr, o_rd), bufs

    def _control(self) -> _Ctl:
        """The registers of :class:`_Ctl`, each named as its field."""
        n_rng, base_rng, row_rng = range(self.max_n + 1), range(self.max_n + self.C + 1), range(self.depth + 1)
        shapes: dict[str, Shape | range | int] = {
            "n": n_rng, "t": n_rng, "pivot": self.dshape, "cand": n_rng, "src": range(3),
            "in_base": base_rng, "in_row": row_rng, "iss_base": base_rng, "iss_row": row_rng, "proc_base": base_rng,
            "pending": 1, "cnt_r": n_rng, "cnt_l": n_rng, "slack_r": signed(self.NB + 1), "slack_l": signed(self.NB + 1),
            "kth": self.dshape, "rem": n_rng,
            "drain": range(ROUND_PIPE), "flush": 1, "restart": 1, "skip": self.NB}
        return _Ctl(**{name: Signal(shape, name=name) for name, shape in shapes.items()},
                    row0=Signal(name="row0", init=1),
                    st=OneHotFSM(("LOAD", "SKIP", "REFUSE", "DRAIN", "FLUSH", "RUN", "FILTER"), "fsm_state"))

    # ---------------------------------------------------------------- the round datapath
    def _compare(self, m: Module, ops: _Operands) -> _Compacted:
        """The comparator arrays and the zero eliminators. Stage 1 registers the operands (the LOAD/RUN and
        FIFO-select muxes are a long, high-fanout path on their own), stage 2 the comparator flags; ROUND_PIPE =
        these two + the zero eliminators' ZE_STAGES. Only the R side carries the valid flag and the tie count."""
        C, B, W = self.C, self.B, self.C * self.B
        q_valid = Signal()
        q_word = Signal(W)
        q_mask = Signal(C)
        q_pivot = Signal(self.dshape)
        m.d.sync += [q_valid.eq(ops.valid), q_word.eq(ops.word), q_mask.eq(ops.mask), q_pivot.eq(ops.pivot)]
        vals = self._lanes(q_word)
        a_valid = Signal()
        a_word = Signal(W)
        a_gt = Signal(C)
        a_lt = Signal(C)
        a_eq = Signal(C)
        m.d.sync += [a_valid.eq(q_valid), a_word.eq(q_word)]
        for j in range(C):
            m.d.sync += [a_gt[j].eq(q_mask[j] & (vals[j] > q_pivot)), a_lt[j].eq(q_mask[j] & (vals[j] < q_pivot)),
                         a_eq[j].eq(q_mask[j] & (vals[j] == q_pivot))]
        assert ROUND_PIPE == 2 + ZE_STAGES
        raw = [a_word[j * B:(j + 1) * B] for j in range(C)]
        a_neq = popcount(m, [a_eq[j] for j in range(C)], "neq")
        ze_r, c_r, side_r = zero_eliminate_pipelined(m, [a_gt[j] for j in range(C)], raw, B, "zer",
                                                     side=Cat(a_valid, a_neq))
        ze_l, c_l, _ = zero_eliminate_pipelined(m, [a_lt[j] for j in range(C)], raw, B, "zel")
        return _Compacted(valid=side_r[0], n_eq=side_r[1:], elems=(ze_r, ze_l), counts=(c_r, c_l))

    def _packers(self, m: Module, z: _Compacted, ctl: _Ctl) -> _Packed:
        """The packers (realign): ``pk_buf`` holds ``pk_cnt < C`` elements; full rows are written to the FIFOs, and
        in the flush cycle the partial row. They also count the kept elements and the ties, and remember the first
        kept element of each side, the next round's pivot."""
        C, B, W = self.C, self.B, self.C * self.B
        out = _Packed(en=[Signal(name=f"pk_we{p}") for p in range(2)],
                      row=[Signal(range(self.depth + 1), name=f"pk_row{p}") for p in range(2)],
                      data=[Signal(W, name=f"pk_wd{p}") for p in range(2)], first=[])
        for p, cnt_tot in enumerate((ctl.cnt_r, ctl.cnt_l)):
            ze, c = z.elems[p], z.counts[p]
            buf = Signal(W, name=f"pk_buf{p}")
            pcnt = Signal(range(C), name=f"pk_cnt{p}")
            first = Signal(self.dshape, name=f"pk_first{p}")
            out.first.append(first)
            comb2 = Signal(2 * W, name=f"pk_comb{p}")
            tot = Signal(range(2 * C + 1), name=f"pk_tot{p}")
            m.d.comb += tot.eq(pcnt + c)
            # pcnt's next value, also loaded into a copy of pcnt per output lane (a LocalReg each, equal to pcnt in
            # every cycle): each lane's mux reads its own copy, so no pcnt bit's route spans the packer (on ECP5 one
            # such route took 6.9 ns in spatten-top)
            pc_next = Signal.like(pcnt, name=f"pk_cnt_next{p}")
            # (If/Else, not one Mux: Icarus sees ``z.valid`` X until the FSM's first state change, and a Mux on an X
            # select would make pcnt X where ``if`` takes the else branch, as the register's enable did before)
            with m.If(z.valid):
                m.d.comb += pc_next.eq(Mux(tot >= C, tot - C, tot))
            with m.Else():
                m.d.comb += pc_next.eq(pcnt)
            with m.If(ctl.restart):
                m.d.comb += pc_next.eq(0)
            m.d.sync += pcnt.eq(pc_next)
            sels = local_copies(m, pc_next, 2 * C, f"pk_sel{p}_")
            # per output lane k, a balanced mux tree on the bits of its copy (Mux, one continuous assignment: a
            # ``Switch`` becomes an ``always @*`` that Icarus leaves X while its inputs keep their initial values)
            lanes: list[Value] = []
            for k in range(2 * C):
                opts = [buf[k * B:(k + 1) * B] if k < c0 else ze[k - c0] if k - c0 < C else Const(0, B)
                        for c0 in range(C)]
                for bit in range(len(pcnt)):
                    opts = [Mux(sels[k][bit], opts[i + 1], opts[i]) for i in range(0, len(opts), 2)]
                lanes.append(opts[0])
            m.d.comb += comb2.eq(Cat(*lanes))
            with m.If(z.valid):
                m.d.sync += cnt_tot.eq(cnt_tot + c)
                with m.If((cnt_tot == 0) & (c != 0)):
                    m.d.sync += first.eq(ze[0])
                with m.If(tot >= C):
                    m.d.comb += out.en[p].eq(1)
                    m.d.sync += [buf.eq(comb2[W:]), out.row[p].eq(out.row[p] + 1)]
                with m.Else():
                    m.d.sync += buf.eq(comb2[:W])
            with m.If(ctl.flush & (pcnt != 0)):
                m.d.comb += out.en[p].eq(1)
            # the data does not wait for ``tot >= C`` (only the write enable does): off the critical path
            m.d.comb += out.data[p].eq(Mux(ctl.flush, buf, comb2[:W]))
            with m.If(ctl.restart):
                m.d.sync += [out.row[p].eq(0), cnt_tot.eq(0)]
        # t - cnt_r and t - cnt_r - ties, counted down as the rows arrive (t is fixed within a round): FLUSH decides
        # on their sign bits instead of an add and two compares (that chain into the pivot's and the target's
        # muxes was the engine's Fmax path, 99.5 MHz on ECP5). FLUSH sets them for the next round (_decide).
        with m.If(z.valid):
            m.d.sync += [ctl.slack_r.eq(ctl.slack_r - z.counts[0]), ctl.slack_l.eq(ctl.slack_l - (z.counts[0] + z.n_eq))]
        return out

    def _fifo_ports(self, m: Module, bufs: list[_Port], ctl: _Ctl, pk: _Packed) -> Signal:
        """Route the packers to the rotating buffers and return the source buffer's read data. Buffer ``b`` is
        FIFO_R when ``b == (src+1)%3``, FIFO_L when ``b == (src+2)%3``. The write is registered: packer mux ->
        FIFO select -> LUT-RAM write was the critical path."""
        for b, (wp, rp) in enumerate(bufs):
            is_r = ctl.src == (b - 1) % 3
            is_l = ctl.src == (b - 2) % 3
            w_en = Signal(name=f"buf{b}_we")
            w_addr = Signal.like(wp.addr, name=f"buf{b}_wa")
            w_data = Signal(self.C * self.B, name=f"buf{b}_wd")
            m.d.sync += [w_addr.eq(Mux(is_r, pk.row[0], pk.row[1])), w_data.eq(Mux(is_r, pk.data[0], pk.data[1])),
                         w_en.eq(Mux(is_r, pk.en[0], Mux(is_l, pk.en[1], 0)))]
            m.d.comb += [wp.addr.eq(w_addr), wp.data.eq(w_data), wp.en.eq(w_en), rp.addr.eq(ctl.iss_row)]
        rd_word = Signal(self.C * self.B)
        with m.Switch(ctl.src):
            for b in range(3):
                with m.Case(b):
                    m.d.comb += rd_word.eq(bufs[b][1].data)
        return rd_word

    # ---------------------------------------------------------------- the filter pass datapath
    def _filter(self, m: Module, o_rd: ReadPort, ctl: _Ctl) -> _Filter:
        """The order-preserving filter pass over the original buffer: FILTER_PIPE stages between the read data and
        the output FIFO (flags, tie prefix sum, keep flags, 2 zero-eliminator stages), loading every cycle. The
        FIFO's head (a register: :class:`HeadRegFIFO`) is ``o``, readable the cycle after the write, as the output
        register was; a row holds its credit from its read to its pop (FILTER_PIPE + 3 cycles), so FILTER_PIPE + 3
        credits read a row per cycle while ``o`` is taken as it comes: the stalling register's timing. On ECP5, in
        spatten-top, that register's stall enable (the local-V top-k's output slice's ready) over the pass's every
        stage was a critical path."""
        depth = FILTER_PIPE + 3
        fl = _Filter(issue=Signal(range(self.depth + 1), name="f_issue"), s1=Signal(name="f_s1"),
                     last=Signal(name="f_last"), base=Signal(range(self.max_n + self.C + 1), name="f_base"),
                     fifo=HeadRegFIFO(len(self.o.payload), depth, zero_empty=True), room=Signal(name="f_room", init=1),
                     read=Signal(name="f_read"), err=Signal(name="o_err"))
        m.submodules.ofifo = fl.fifo
        pop = fl.fifo.r_rdy & self.o.ready
        credit_room(m, depth, fl.read, pop, fl.room)
        err_word = self.contract["o"].pack({"values": [], "indices": [], "count": 0, "last": 1, "error": 1})
        # the error beat is the empty FIFO's zero head with its flag bits set (the FIFO is empty between jobs): on
        # ECP5 a mux over every payload bit put ``err``'s fan-out in front of spatten-top's list compaction
        m.d.comb += [self.o.valid.eq(fl.fifo.r_rdy | fl.err), self.o.payload.eq(fl.fifo.r_data | Mux(fl.err, err_word, 0)),
                     fl.fifo.r_en.eq(self.o.ready)]
        assert FILTER_PIPE == 3 + ZE_STAGES - 1
        g, g_bet, g_eq = self._filter_flags(m, o_rd.data, ctl, fl)
        i, i_keep = self._filter_keep(m, g, g_bet, g_eq, ctl)
        self._filter_emit(m, i, i_keep, fl)
        return fl

    def _filter_flags(self, m: Module, rd_data: Value, ctl: _Ctl, fl: _Filter) -> tuple[_Row, Signal, Signal]:
        """Stage g: the lanes above the k-th value and the ties with it, among the job's ``n`` scores."""
        C = self.C
        fvals = self._lanes(rd_data)
        g = _Row.create("g", C * self.B, fl.base)
        g_bet = Signal(C)
        g_eq = Signal(C)
        m.d.sync += [g.valid.eq(fl.s1), g.word.eq(rd_data), g.base.eq(fl.base), g.last.eq(fl.last)]
        # a copy of the k-th value per lane, a cycle behind it (a LocalReg each): FLUSH sets ``kth``, the first
        # row is read in FILTER's first cycle and compared in the next, when the copies hold it. On ECP5 one
        # ``kth`` register's route to every lane's comparators was a critical path of spatten-top.
        kths = [x.as_signed() if self.signed_data else x for x in local_copies(m, ctl.kth, C, "kth_l")]
        for j in range(C):
            fmask = fl.base + j < ctl.n
            m.d.sync += [g_bet[j].eq(fmask & (fvals[j] > kths[j])), g_eq[j].eq(fmask & (fvals[j] == kths[j]))]
        with m.If(fl.s1):
            m.d.sync += fl.base.eq(fl.base + C)
        return g, g_bet, g_eq

    def _filter_keep(self, m: Module, g: _Row, g_bet: Signal, g_eq: Signal, ctl: _Ctl) -> tuple[_Row, Signal]:
        """Stage h: the ties before each lane (prefix sum) and in the row; stage i: the keep flags. A tie is kept
        while fewer than ``rem`` ties came before it (rem = keep - ties already seen, floored at 0)."""
        C = self.C
        eq_excl = prefix_sum(m, [g_eq[j] for j in range(C)], "feqps")
        g_neq = popcount(m, [g_eq[j] for j in range(C)], "feqn")
        h = _Row.create("h", C * self.B, g.base)
        h_bet = Signal(C)
        h_eq = Signal(C)
        h_excl = [Signal.like(e, name=f"h_excl{j}") for j, e in enumerate(eq_excl)]
        h_neq = Signal.like(g_neq)
        m.d.sync += [h.valid.eq(g.valid), h.last.eq(g.last), h.word.eq(g.word), h.base.eq(g.base),
                     h_bet.eq(g_bet), h_eq.eq(g_eq), h_neq.eq(g_neq)]
        m.d.sync += [x.eq(e) for x, e in zip(h_excl, eq_excl, strict=True)]
        i = _Row.create("i", C * self.B, g.base)
        i_keep = Signal(C)
        m.d.sync += [i.valid.eq(h.valid), i.last.eq(h.last), i.word.eq(h.word), i.base.eq(h.base)]
        for j in range(C):
            m.d.sync += i_keep[j].eq(h_bet[j] | (h_eq[j] & (h_excl[j] < ctl.rem)))
        with m.If(h.valid):
            m.d.sync += ctl.rem.eq(Mux(h_neq >= ctl.rem, 0, ctl.rem - h_neq))
        return i, i_keep

    def _filter_emit(self, m: Module, i: _Row, i_keep: Signal, fl: _Filter) -> None:
        """The kept (value, index) pairs compacted by a zero eliminator into the output FIFO."""
        C, B, IB = self.C, self.B, self.IB
        lc = (C - 1).bit_length()  # i.base is a multiple of C: lane j's index is i.base with j in the low bits
        pairs = [Cat(i.word[j * B:(j + 1) * B], Cat(Const(j, lc), i.base[lc:])[:IB]) for j in range(C)]
        ze_o, c_o, side_o = zero_eliminate_pipelined(m, [i_keep[j] for j in range(C)], pairs, B + IB, "zeo",
                                                     side=Cat(i.valid, i.last), reg_out=False)
        out_word = pack_value(self.contract["o"], {"values": [x[:B] for x in ze_o], "indices": [x[B:] for x in ze_o],
                                                   "count": c_o, "last": side_o[1], "error": 0})
        m.d.comb += [fl.fifo.w_en.eq(side_o[0]), fl.fifo.w_data.eq(out_word)]

    # ---------------------------------------------------------------- the FSM
    def _fsm(self, m: Module, ctl: _Ctl, ops: _Operands, orig: _Port, rd_word: Signal, firsts: list[Signal],
             fl: _Filter) -> None:
        """LOAD (round 1 on the input stream) -> DRAIN -> FLUSH (the decision) -> RUN (a round on a FIFO) -> DRAIN
        ... -> FLUSH -> FILTER -> LOAD; a refused job: LOAD -> (SKIP, its other beats) -> REFUSE -> LOAD."""
        o_wr, o_rd = orig
        i_row = view(self.contract["i"], self.i.payload).scores.as_value()
        m.d.comb += [o_wr.addr.eq(ctl.in_row), o_wr.data.eq(i_row), o_rd.addr.eq(fl.issue), o_rd.en.eq(0)]
        st = ctl.st
        with m.If(st.ongoing("LOAD")):
            self._load(m, ctl, ops, o_wr, fl)
        with m.If(st.ongoing("SKIP")):  # the rest of a refused job's beats: consumed, never stored or compared
            m.d.sync += [ctl.in_row.eq(0), ctl.in_base.eq(0), ctl.row0.eq(1)]
            with m.If(self.i.valid):
                m.d.sync += ctl.skip.eq(ctl.skip - 1)
                with m.If(ctl.skip == 1):
                    self._answer_error(m, ctl, fl)
        with m.If(st.ongoing("REFUSE")):  # the error beat is on the output: back to idle once it is taken
            m.d.sync += [ctl.in_row.eq(0), ctl.in_base.eq(0), ctl.row0.eq(1)]
            with m.If(self.o.ready):
                m.d.sync += fl.err.eq(0)
                st.next(m, "LOAD")
        with m.If(st.ongoing("DRAIN")):  # the last row is still in the comparator / zero-eliminator pipeline
            m.d.sync += ctl.drain.eq(ctl.drain - 1)
            with m.If(ctl.drain == 0):
                st.next(m, "FLUSH")
        # DRAIN's count is set in every other state, not on the last row's beat: that beat's compares (the input's
        # valid and ``n``) stay off the counter's enable (on ECP5 a spatten-top critical path)
        with m.Else():
            m.d.sync += ctl.drain.eq(ROUND_PIPE - 1)
        with m.If(st.ongoing("FLUSH")):
            self._decide(m, ctl, firsts, fl)
        with m.If(st.ongoing("RUN")):
            self._run(m, ctl, ops, rd_word)
        with m.If(st.ongoing("FILTER")):  # a row is read on a credit of the output FIFO
            with m.If(self.o.ready & fl.fifo.r_rdy & view(self.contract["o"], fl.fifo.r_data).last):
                m.d.sync += ctl.src.eq(0)
                st.next(m, "LOAD")
            m.d.comb += o_rd.en.eq(1)
            with m.If(fl.read):
                m.d.sync += [fl.issue.eq(fl.issue + 1), fl.last.eq((fl.issue + 1) * self.C >= ctl.n)]
            m.d.sync += fl.s1.eq(fl.read)
        m.d.comb += [self.i.ready.eq(st.ongoing("LOAD") | st.ongoing("SKIP")), ctl.flush.eq(st.ongoing("FLUSH")),
                     ctl.restart.eq(st.ongoing("FLUSH")),
                     fl.read.eq(st.ongoing("FILTER") & fl.room & (fl.issue * self.C < ctl.n))]

    def _load(self, m: Module, ctl: _Ctl, ops: _Operands, o_wr: WritePort, fl: _Filter) -> None:
        """LOAD: round 1 runs on the input stream while it is written to the original buffer; the first beat
        brings the job (``n``, ``k``) and the pivot (its element 0), so that beat uses them straight from the input.
        A job outside ``1 <= k <= n <= max_n`` is refused on that first beat (see :meth:`_refuse`)."""
        iv = view(self.contract["i"], self.i.payload)
        i_row = iv.scores.as_value()
        i_lanes = self._lanes(i_row)
        i_n, i_k = iv.job.n, iv.job.k
        bad = Signal(name="job_bad")
        m.d.comb += bad.eq(ctl.row0 & ((i_n == 0) | (i_n > self.max_n) | (i_k == 0) | (i_k > i_n)))
        n_cur = Signal(range(self.max_n + 1))
        m.d.comb += [n_cur.eq(Mux(ctl.row0, i_n, ctl.n)), ops.word.eq(i_row),
                     ops.pivot.eq(Mux(ctl.row0, i_lanes[0], ctl.pivot))]
        for j in range(self.C):
            m.d.comb += ops.mask[j].eq(ctl.in_base + j < n_cur)
        # The job registers load from every first beat, refused or not (a refused job never reads them: its
        # beats leave ``in_row`` at 0, where ``n_cur`` and the pivot come from the input), so the refusal check
        # stays off their enables (in spatten-top that check's net to them was the Fmax path). So does SKIP's
        # count of a refused job's other beats (read only in SKIP).
        beats = Signal(self.NB, name="job_beats")
        m.d.comb += beats.eq((i_n + self.C - 1) >> (self.C - 1).bit_length())
        with m.If(self.i.valid & ctl.row0):
            m.d.sync += [ctl.n.eq(i_n), ctl.t.eq(i_k - 1), ctl.pivot.eq(i_lanes[0]), ctl.slack_r.eq(i_k - 1),
                         ctl.slack_l.eq(i_k - 1), ctl.skip.eq(beats - 1)]
        # Every LOAD beat is stored and counted, a refused first beat too (SKIP and REFUSE put the write position
        # back to 0 and nothing reads what it wrote), so the refusal check stays off the buffer's write enable and
        # the position registers' enables (on ECP5, in spatten-top, the check's compares ran into them).
        with m.If(self.i.valid):
            m.d.comb += o_wr.en.eq(1)
            m.d.sync += [ctl.in_row.eq(ctl.in_row + 1), ctl.in_base.eq(ctl.in_base + self.C), ctl.row0.eq(0)]
            with m.If(ctl.in_base + self.C >= n_cur):
                ctl.st.next(m, "DRAIN")
        with m.If(self.i.valid & bad):  # after the above: its state wins
            self._refuse(m, ctl, beats, fl)
        with m.Elif(self.i.valid):
            m.d.comb += ops.valid.eq(1)

    def _refuse(self, m: Module, ctl: _Ctl, beats: Value, fl: _Filter) -> None:
        """A refused job is consumed whole, ``max(1, ceil(n/C))`` beats (``beats``; SKIP counts the other
        ``beats - 1``, loaded with the job registers), so the stream stays in step, without reaching the
        comparators or the buffers; its answer is one error beat (count 0, last 1) raised with its last beat.
        Without this a job with k = 0, k > n or n = 0 left the engine waiting forever."""
        with m.If(beats > 1):
            ctl.st.next(m, "SKIP")
        with m.Else():
            self._answer_error(m, ctl, fl)

    def _answer_error(self, m: Module, ctl: _Ctl, fl: _Filter) -> None:
        """Raise the error beat (the output shows the constant error word while ``err`` is set; the filter pass is
        idle between jobs) and wait for it to be taken."""
        m.d.sync += fl.err.eq(1)
        ctl.st.next(m, "REFUSE")

    def _decide(self, m: Module, ctl: _Ctl, firsts: list[Signal], fl: _Filter) -> None:
        """FLUSH: the packers write their partial rows and the round's decision is made (0-based target t):
        |R| > t -> R; |R| + eq <= t -> t -= |R| + eq, L; else k-th = pivot, keep t - |R| + 1 ties, filter."""
        m.d.sync += [ctl.iss_row.eq(0), ctl.iss_base.eq(0), ctl.proc_base.eq(0), ctl.pending.eq(0),
                     ctl.in_row.eq(0), ctl.in_base.eq(0), ctl.row0.eq(1)]
        with m.If(ctl.slack_r < 0):  # |R| > t
            m.d.sync += [ctl.src.eq(Mux(ctl.src == 2, 0, ctl.src + 1)), ctl.cand.eq(ctl.cnt_r), ctl.pivot.eq(firsts[0]),
                         ctl.slack_r.eq(ctl.t), ctl.slack_l.eq(ctl.t)]
            ctl.st.next(m, "RUN")
        with m.Elif(ctl.slack_l >= 0):  # |R| + eq <= t
            m.d.sync += [ctl.src.eq(Mux(ctl.src == 0, 2, ctl.src - 1)), ctl.cand.eq(ctl.cnt_l), ctl.pivot.eq(firsts[1]),
                         ctl.t.eq(ctl.slack_l), ctl.slack_r.eq(ctl.slack_l)]
            ctl.st.next(m, "RUN")
        with m.Else():
            m.d.sync += [ctl.kth.eq(ctl.pivot), ctl.rem.eq(ctl.slack_r + 1), fl.issue.eq(0), fl.s1.eq(0),
                         fl.base.eq(0)]
            ctl.st.next(m, "FILTER")

    def _run(self, m: Module, ctl: _Ctl, ops: _Operands, rd_word: Signal) -> None:
        """RUN: a later round reads the source FIFO, one row issued per cycle and processed in the next."""
        m.d.comb += [ops.word.eq(rd_word), ops.pivot.eq(ctl.pivot), ops.valid.eq(ctl.pending)]
        for j in range(self.C):
            m.d.comb += ops.mask[j].eq(ctl.proc_base + j < ctl.cand)
        with m.If(ctl.iss_base < ctl.cand):
            m.d.sync += [ctl.iss_row.eq(ctl.iss_row + 1), ctl.iss_base.eq(ctl.iss_base + self.C), ctl.pending.eq(1)]
        with m.Else():
            m.d.sync += ctl.pending.eq(0)
        with m.If(ctl.pending):
            m.d.sync += ctl.proc_base.eq(ctl.proc_base + self.C)
            with m.If(ctl.proc_base + self.C >= ctl.cand):
                ctl.st.next(m, "DRAIN")
