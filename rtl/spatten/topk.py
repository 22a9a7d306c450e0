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
zero-eliminator stages (``FILTER_PIPE``), all stalled together by the output handshake.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory

from attnforge.rtl.common import contract_ports, pack_value, view
from attnforge.rtl.spatten.zero_elim import ZE_STAGES, popcount, prefix_sum, zero_eliminate_pipelined
from attnforge.sim.contract import FILTER_PIPE, ROUND_PIPE, count_bits, idx_bits, n_bits
from attnforge.sim.contract import designs as contract


class TopK(wiring.Component):
    def __init__(self, comparators: int = 16, max_n: int = 256, data_bits: int = 8, signed_data: int = 1) -> None:
        if comparators < 1 or comparators & (comparators - 1):
            raise ValueError(f"comparators must be a power of two, got {comparators}")
        self.C, self.max_n, self.B, self.signed_data = comparators, max_n, data_bits, bool(signed_data)
        self.rows = -(-max_n // comparators)
        self.NB, self.IB, self.CB = n_bits(max_n), idx_bits(max_n), count_bits(comparators)
        self.contract = contract.topk(comparators, max_n, data_bits, signed_data)
        super().__init__(contract_ports(self.contract))

    def _lanes(self, word: Value) -> list[Value]:
        """The scores of a buffered row (the input beat's ``scores`` array), signed when the data are."""
        row = view(self.contract["i"]["scores"], word)
        return [row[j] for j in range(self.C)]

    def elaborate(self, platform: object) -> Module:
        m = Module()
        C, B, IB = self.C, self.B, self.IB
        W = C * B
        depth = max(2, self.rows)
        dshape = signed(B) if self.signed_data else unsigned(B)

        # ---------------------------------------------------------------- storage
        m.submodules.orig = orig = Memory(shape=unsigned(W), depth=depth, init=[])
        o_wr, o_rd = orig.write_port(), orig.read_port()
        bufs = []
        for b in range(3):
            mem = Memory(shape=unsigned(W), depth=depth, init=[])
            m.submodules[f"fifo{b}"] = mem
            wport = mem.write_port()
            # transparent: the packers' writes are registered (below), so the flush row of a round is written in
            # the first cycle of the next round, the very cycle that may read it
            bufs.append((wport, mem.read_port(transparent_for=(wport,))))

        # ---------------------------------------------------------------- control registers
        n = Signal(range(self.max_n + 1))
        t = Signal(range(self.max_n + 1))
        pivot = Signal(dshape)
        cand = Signal(range(self.max_n + 1))  # candidates in the current (buffered) round
        src = Signal(range(3))
        in_base = Signal(range(self.max_n + C + 1))
        in_row = Signal(range(depth + 1))
        iss_base = Signal(range(self.max_n + C + 1))
        iss_row = Signal(range(depth + 1))
        proc_base = Signal(range(self.max_n + C + 1))
        pending = Signal()
        cnt_r = Signal(range(self.max_n + 1))
        cnt_l = Signal(range(self.max_n + 1))
        cnt_eq = Signal(range(self.max_n + 1))
        kth = Signal(dshape)
        rem = Signal(range(self.max_n + 1))  # ties of the k-th value still to keep in the filter pass
        drain = Signal(range(ROUND_PIPE))

        # ---------------------------------------------------------------- the round datapath (comparator arrays)
        p_valid = Signal()
        p_word = Signal(W)
        p_mask = Signal(C)
        p_pivot = Signal(dshape)
        # stage 1: registered operands (the LOAD/RUN and FIFO-select muxes are a long, high-fanout path on their
        # own); stage 2: registered comparator flags. ROUND_PIPE = these two + the zero eliminators' ZE_STAGES.
        q_valid = Signal()
        q_word = Signal(W)
        q_mask = Signal(C)
        q_pivot = Signal(dshape)
        m.d.sync += [q_valid.eq(p_valid), q_word.eq(p_word), q_mask.eq(p_mask), q_pivot.eq(p_pivot)]
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
        z_valid, n_eq = side_r[0], side_r[1:]

        # packers (realign): pk_buf holds pk_cnt < C elements; full rows are written to the FIFO buffers.
        flush = Signal()
        restart = Signal()
        wr_en = [Signal(name=f"pk_we{p}") for p in range(2)]
        wr_row = [Signal(range(depth + 1), name=f"pk_row{p}") for p in range(2)]
        wr_data = [Signal(W, name=f"pk_wd{p}") for p in range(2)]
        firsts = []
        for p, (ze, c, cnt_tot) in enumerate(((ze_r, c_r, cnt_r), (ze_l, c_l, cnt_l))):
            buf = Signal(W, name=f"pk_buf{p}")
            pcnt = Signal(range(C), name=f"pk_cnt{p}")
            first = Signal(dshape, name=f"pk_first{p}")
            firsts.append(first)
            comb2 = Signal(2 * W, name=f"pk_comb{p}")
            # balanced mux tree on the bits of pcnt, one continuous assignment: a ``Switch`` becomes an ``always @*``
            # that Icarus leaves X while its inputs keep their initial values (all-zero kept scores)
            opts: list[Value] = [Cat(buf[:c0 * B], *ze, Const(0, (C - c0) * B)) if c0 else Cat(*ze, Const(0, W))
                                 for c0 in range(C)]
            for bit in range(len(pcnt)):
                opts = [Mux(pcnt[bit], opts[i + 1], opts[i]) for i in range(0, len(opts), 2)]
            m.d.comb += comb2.eq(opts[0])
            tot = Signal(range(2 * C + 1), name=f"pk_tot{p}")
            m.d.comb += tot.eq(pcnt + c)
            with m.If(z_valid):
                m.d.sync += cnt_tot.eq(cnt_tot + c)
                with m.If((cnt_tot == 0) & (c != 0)):
                    m.d.sync += first.eq(ze[0])
                with m.If(tot >= C):
                    m.d.comb += wr_en[p].eq(1)
                    m.d.sync += [buf.eq(comb2[W:]), pcnt.eq(tot - C), wr_row[p].eq(wr_row[p] + 1)]
                with m.Else():
                    m.d.sync += [buf.eq(comb2[:W]), pcnt.eq(tot)]
            with m.If(flush & (pcnt != 0)):
                m.d.comb += wr_en[p].eq(1)
            # the data does not wait for ``tot >= C`` (only the write enable does): off the critical path
            m.d.comb += wr_data[p].eq(Mux(flush, buf, comb2[:W]))
            with m.If(restart):
                m.d.sync += [pcnt.eq(0), wr_row[p].eq(0), cnt_tot.eq(0)]
        with m.If(z_valid):
            m.d.sync += cnt_eq.eq(cnt_eq + n_eq)
        with m.If(restart):
            m.d.sync += cnt_eq.eq(0)

        # buffer b is FIFO_R when b == (src+1)%3, FIFO_L when b == (src+2)%3
        # the write is registered: packer mux -> FIFO select -> LUT-RAM write was the critical path
        for b, (wp, rp) in enumerate(bufs):
            is_r = src == (b - 1) % 3
            is_l = src == (b - 2) % 3
            w_en = Signal(name=f"buf{b}_we")
            w_addr = Signal.like(wp.addr, name=f"buf{b}_wa")
            w_data = Signal(W, name=f"buf{b}_wd")
            m.d.sync += [w_addr.eq(Mux(is_r, wr_row[0], wr_row[1])), w_data.eq(Mux(is_r, wr_data[0], wr_data[1])),
                         w_en.eq(Mux(is_r, wr_en[0], Mux(is_l, wr_en[1], 0)))]
            m.d.comb += [wp.addr.eq(w_addr), wp.data.eq(w_data), wp.en.eq(w_en), rp.addr.eq(iss_row)]
        rd_word = Signal(W)
        with m.Switch(src):
            for b in range(3):
                with m.Case(b):
                    m.d.comb += rd_word.eq(bufs[b][1].data)

        # ---------------------------------------------------------------- filter pass datapath
        f_issue = Signal(range(depth + 1))
        f_s1 = Signal()
        f_last = Signal()
        f_base = Signal(range(self.max_n + C + 1))
        o_valid = Signal()
        o_payload = Signal(len(self.o.payload))
        m.d.comb += [self.o.valid.eq(o_valid), self.o.payload.eq(o_payload)]
        adv = Signal()
        m.d.comb += adv.eq(~o_valid | self.o.ready)
        # every filter stage advances on ``adv`` (one stall enable for the whole pipeline); FILTER_PIPE stages
        # between the read data and the output register: flags, tie prefix sum, keep flags, 2 zero-eliminator stages
        assert FILTER_PIPE == 3 + ZE_STAGES - 1
        fvals = self._lanes(o_rd.data)
        g_valid = Signal()
        g_last = Signal()
        g_word = Signal(W)
        g_base = Signal.like(f_base)
        g_bet = Signal(C)
        g_eq = Signal(C)
        with m.If(adv):
            m.d.sync += [g_valid.eq(f_s1), g_word.eq(o_rd.data), g_base.eq(f_base), g_last.eq(f_last)]
            for j in range(C):
                fmask = f_base + j < n
                m.d.sync += [g_bet[j].eq(fmask & (fvals[j] > kth)), g_eq[j].eq(fmask & (fvals[j] == kth))]
            with m.If(f_s1):
                m.d.sync += f_base.eq(f_base + C)
        eq_excl = prefix_sum(m, [g_eq[j] for j in range(C)], "feqps")
        g_neq = popcount(m, [g_eq[j] for j in range(C)], "feqn")
        h_valid = Signal()
        h_last = Signal()
        h_word = Signal(W)
        h_base = Signal.like(f_base)
        h_bet = Signal(C)
        h_eq = Signal(C)
        h_excl = [Signal.like(e, name=f"h_excl{j}") for j, e in enumerate(eq_excl)]
        h_neq = Signal.like(g_neq)
        with m.If(adv):
            m.d.sync += [h_valid.eq(g_valid), h_last.eq(g_last), h_word.eq(g_word), h_base.eq(g_base),
                         h_bet.eq(g_bet), h_eq.eq(g_eq), h_neq.eq(g_neq)]
            m.d.sync += [h.eq(e) for h, e in zip(h_excl, eq_excl, strict=True)]
        # keep a tie while fewer than ``rem`` ties came before it (rem = keep - ties already seen, floored at 0)
        i_valid = Signal()
        i_last = Signal()
        i_word = Signal(W)
        i_base = Signal.like(f_base)
        i_keep = Signal(C)
        with m.If(adv):
            m.d.sync += [i_valid.eq(h_valid), i_last.eq(h_last), i_word.eq(h_word), i_base.eq(h_base)]
            for j in range(C):
                m.d.sync += i_keep[j].eq(h_bet[j] | (h_eq[j] & (h_excl[j] < rem)))
            with m.If(h_valid):
                m.d.sync += rem.eq(Mux(h_neq >= rem, 0, rem - h_neq))
        lc = (C - 1).bit_length()  # i_base is a multiple of C: lane j's index is i_base with j in the low bits
        pairs = [Cat(i_word[j * B:(j + 1) * B], Cat(Const(j, lc), i_base[lc:])[:IB]) for j in range(C)]
        ze_o, c_o, side_o = zero_eliminate_pipelined(m, [i_keep[j] for j in range(C)], pairs, B + IB, "zeo", en=adv,
                                                     side=Cat(i_valid, i_last), reg_out=False)
        out_word = pack_value(self.contract["o"], {"values": [x[:B] for x in ze_o], "indices": [x[B:] for x in ze_o],
                                                   "count": c_o, "last": side_o[1]})
        with m.If(adv):
            m.d.sync += o_valid.eq(side_o[0])
            with m.If(side_o[0]):
                m.d.sync += o_payload.eq(out_word)

        # ---------------------------------------------------------------- FSM
        iv = view(self.contract["i"], self.i.payload)
        i_row = iv.scores.as_value()
        i_lanes = self._lanes(i_row)
        i_n, i_k = iv.job.n, iv.job.k
        n_cur = Signal(range(self.max_n + 1))
        m.d.comb += [o_wr.addr.eq(in_row), o_wr.data.eq(i_row), o_rd.addr.eq(f_issue), o_rd.en.eq(0)]

        with m.FSM() as fsm:
            with m.State("LOAD"):
                m.d.comb += [n_cur.eq(Mux(in_row == 0, i_n, n)), p_word.eq(i_row),
                             p_pivot.eq(Mux(in_row == 0, i_lanes[0], pivot))]
                for j in range(C):
                    m.d.comb += p_mask[j].eq(in_base + j < n_cur)
                with m.If(self.i.valid):
                    m.d.comb += [p_valid.eq(1), o_wr.en.eq(1)]
                    m.d.sync += [in_row.eq(in_row + 1), in_base.eq(in_base + C)]
                    with m.If(in_row == 0):
                        m.d.sync += [n.eq(i_n), t.eq(i_k - 1), pivot.eq(i_lanes[0])]
                    with m.If(in_base + C >= n_cur):
                        m.d.sync += drain.eq(ROUND_PIPE - 1)
                        m.next = "DRAIN"
            with m.State("DRAIN"):  # the last row is still in the comparator / zero-eliminator pipeline
                m.d.sync += drain.eq(drain - 1)
                with m.If(drain == 0):
                    m.next = "FLUSH"
            with m.State("FLUSH"):
                m.d.comb += restart.eq(1)
                m.d.sync += [iss_row.eq(0), iss_base.eq(0), proc_base.eq(0), pending.eq(0), in_row.eq(0), in_base.eq(0)]
                with m.If(cnt_r > t):
                    m.d.sync += [src.eq(Mux(src == 2, 0, src + 1)), cand.eq(cnt_r), pivot.eq(firsts[0])]
                    m.next = "RUN"
                with m.Elif(cnt_r + cnt_eq <= t):
                    m.d.sync += [src.eq(Mux(src == 0, 2, src - 1)), cand.eq(cnt_l), pivot.eq(firsts[1]),
                                 t.eq(t - cnt_r - cnt_eq)]
                    m.next = "RUN"
                with m.Else():
                    m.d.sync += [kth.eq(pivot), rem.eq(t - cnt_r + 1), f_issue.eq(0), f_s1.eq(0), f_base.eq(0),
                                 o_valid.eq(0)]
                    m.next = "FILTER"
            with m.State("RUN"):
                m.d.comb += [p_word.eq(rd_word), p_pivot.eq(pivot), p_valid.eq(pending)]
                for j in range(C):
                    m.d.comb += p_mask[j].eq(proc_base + j < cand)
                with m.If(iss_base < cand):
                    m.d.sync += [iss_row.eq(iss_row + 1), iss_base.eq(iss_base + C), pending.eq(1)]
                with m.Else():
                    m.d.sync += pending.eq(0)
                with m.If(pending):
                    m.d.sync += proc_base.eq(proc_base + C)
                    with m.If(proc_base + C >= cand):
                        m.d.sync += drain.eq(ROUND_PIPE - 1)
                        m.next = "DRAIN"
            with m.State("FILTER"):
                with m.If(self.o.ready & o_valid & view(self.contract["o"], o_payload).last):
                    m.d.sync += src.eq(0)
                    m.next = "LOAD"
                with m.If(adv):
                    m.d.comb += o_rd.en.eq(1)
                    with m.If(f_issue * C < n):
                        m.d.sync += [f_issue.eq(f_issue + 1), f_s1.eq(1), f_last.eq((f_issue + 1) * C >= n)]
                    with m.Else():
                        m.d.sync += f_s1.eq(0)
        # outside the FSM body so they are continuous assignments: Icarus never evaluates an ``always @*`` whose
        # inputs keep their initial values, which left ``i.ready`` (and the packers' write data, through ``flush``)
        # X until the first state change
        m.d.comb += [self.i.ready.eq(fsm.ongoing("LOAD")), flush.eq(fsm.ongoing("FLUSH"))]
        return m
