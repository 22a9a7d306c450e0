"""SpAtten top-k engine: quick-select rounds with C comparators per array, FIFO_L / FIFO_R, zero eliminators, and
an order-preserving filter pass over the buffered input.

Streams (see :mod:`sim.spatten.hw_topk` for the bit layout and the exact cycle model):

* ``i``: ``C`` scores per beat (``data_bits`` each, lane ``l`` in bits ``[l*w, (l+1)*w)``), then ``n`` and ``k``
  (read on the first beat of a job; ``1 <= k <= n <= max_n``). The last beat may be partial (``n % C``).
* ``o``: one beat per input row: kept values (C lanes), their indices (C lanes), ``count``, ``last``.

Round 1 runs on the input stream while it is written to the original buffer (pivot = element 0). Later rounds
read the chosen FIFO (pivot = its first element, captured as it was written). Three row buffers rotate: the
round's source ``s``, FIFO_R at ``(s+1) % 3`` and FIFO_L at ``(s+2) % 3``. Each comparator array's output is
compacted by a zero eliminator and a packer (realign) writes only full rows, plus one partial row in the
flush cycle that also makes the decision (0-based target t = k - 1):
|R| > t -> R; |R| + eq <= t -> t -= |R| + eq, L; else k-th = pivot, keep t - |R| + 1 ties.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from rtl.spatten.zero_elim import prefix_sum, zero_eliminate
from sim.spatten.hw_topk import cnt_bits, idx_bits, n_bits


class TopK(wiring.Component):
    def __init__(self, comparators: int = 16, max_n: int = 256, data_bits: int = 8, signed_data: int = 1) -> None:
        if comparators < 1 or comparators & (comparators - 1):
            raise ValueError(f"comparators must be a power of two, got {comparators}")
        self.C, self.max_n, self.B, self.signed_data = comparators, max_n, data_bits, bool(signed_data)
        self.rows = -(-max_n // comparators)
        self.NB, self.IB, self.CB = n_bits(max_n), idx_bits(max_n), cnt_bits(comparators)
        super().__init__({
            "i": In(stream.Signature(unsigned(comparators * data_bits + 2 * self.NB))),
            "o": Out(stream.Signature(unsigned(comparators * (data_bits + self.IB) + self.CB + 1))),
        })

    def _lanes(self, word: Value) -> list[Value]:
        out = [word[j * self.B:(j + 1) * self.B] for j in range(self.C)]
        return [v.as_signed() for v in out] if self.signed_data else out

    def elaborate(self, platform: object) -> Module:
        m = Module()
        C, B, NB, IB = self.C, self.B, self.NB, self.IB
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
            bufs.append((mem.write_port(), mem.read_port()))

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
        keep = Signal(range(self.max_n + 1))

        # ---------------------------------------------------------------- the round datapath (comparator arrays)
        p_valid = Signal()
        p_word = Signal(W)
        p_mask = Signal(C)
        p_pivot = Signal(dshape)
        vals = self._lanes(p_word)
        gt = [Signal(name=f"gt{j}") for j in range(C)]
        lt = [Signal(name=f"lt{j}") for j in range(C)]
        eq = [Signal(name=f"eq{j}") for j in range(C)]
        for j in range(C):
            m.d.comb += [gt[j].eq(p_mask[j] & (vals[j] > p_pivot)), lt[j].eq(p_mask[j] & (vals[j] < p_pivot)),
                         eq[j].eq(p_mask[j] & (vals[j] == p_pivot))]
        raw = [p_word[j * B:(j + 1) * B] for j in range(C)]
        ze_r, c_r = zero_eliminate(m, gt, raw, B, "zer")
        ze_l, c_l = zero_eliminate(m, lt, raw, B, "zel")
        n_eq = Signal(range(C + 1))
        m.d.comb += n_eq.eq(sum(e for e in eq))

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
            with m.Switch(pcnt):
                for c0 in range(C):
                    with m.Case(c0):
                        m.d.comb += comb2.eq(Cat(buf[:c0 * B], *ze, Const(0, (C - c0) * B)) if c0 else Cat(*ze))
            tot = Signal(range(2 * C + 1), name=f"pk_tot{p}")
            m.d.comb += tot.eq(pcnt + c)
            with m.If(p_valid):
                m.d.sync += cnt_tot.eq(cnt_tot + c)
                with m.If((cnt_tot == 0) & (c != 0)):
                    m.d.sync += first.eq(ze[0])
                with m.If(tot >= C):
                    m.d.comb += [wr_en[p].eq(1), wr_data[p].eq(comb2[:W])]
                    m.d.sync += [buf.eq(comb2[W:]), pcnt.eq(tot - C), wr_row[p].eq(wr_row[p] + 1)]
                with m.Else():
                    m.d.sync += [buf.eq(comb2[:W]), pcnt.eq(tot)]
            with m.If(flush & (pcnt != 0)):
                m.d.comb += [wr_en[p].eq(1), wr_data[p].eq(buf)]
            with m.If(restart):
                m.d.sync += [pcnt.eq(0), wr_row[p].eq(0), cnt_tot.eq(0)]
        with m.If(p_valid):
            m.d.sync += cnt_eq.eq(cnt_eq + n_eq)
        with m.If(restart):
            m.d.sync += cnt_eq.eq(0)

        # buffer b is FIFO_R when b == (src+1)%3, FIFO_L when b == (src+2)%3
        for b, (wp, rp) in enumerate(bufs):
            is_r = src == (b - 1) % 3
            is_l = src == (b - 2) % 3
            m.d.comb += [wp.addr.eq(Mux(is_r, wr_row[0], wr_row[1])), wp.data.eq(Mux(is_r, wr_data[0], wr_data[1])),
                         wp.en.eq(Mux(is_r, wr_en[0], Mux(is_l, wr_en[1], 0))), rp.addr.eq(iss_row)]
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
        eq_seen = Signal(range(self.max_n + 1))
        o_valid = Signal()
        o_payload = Signal(len(self.o.payload))
        m.d.comb += [self.o.valid.eq(o_valid), self.o.payload.eq(o_payload)]
        adv = Signal()
        m.d.comb += adv.eq(~o_valid | self.o.ready)
        fvals = self._lanes(o_rd.data)
        fmask = [Signal(name=f"fmask{j}") for j in range(C)]
        fbet = [Signal(name=f"fbet{j}") for j in range(C)]
        feq = [Signal(name=f"feq{j}") for j in range(C)]
        for j in range(C):
            m.d.comb += [fmask[j].eq(f_base + j < n), fbet[j].eq(fmask[j] & (fvals[j] > kth)),
                         feq[j].eq(fmask[j] & (fvals[j] == kth))]
        eq_excl = prefix_sum(m, feq, "feqps")
        fkeep = [Signal(name=f"fkeep{j}") for j in range(C)]
        for j in range(C):
            m.d.comb += fkeep[j].eq(fbet[j] | (feq[j] & (eq_seen + eq_excl[j] + 1 <= keep)))
        pairs = [Cat(o_rd.data[j * B:(j + 1) * B], (f_base + j)[:IB]) for j in range(C)]
        ze_o, c_o = zero_eliminate(m, fkeep, pairs, B + IB, "zeo")
        out_word = Cat(*[x[:B] for x in ze_o], *[x[B:] for x in ze_o], c_o, f_last)

        # ---------------------------------------------------------------- FSM
        i_lanes = self._lanes(self.i.payload)
        i_n = self.i.payload[W:W + NB]
        i_k = self.i.payload[W + NB:W + 2 * NB]
        n_cur = Signal(range(self.max_n + 1))
        m.d.comb += [o_wr.addr.eq(in_row), o_wr.data.eq(self.i.payload[:W]), o_rd.addr.eq(f_issue), o_rd.en.eq(0)]

        with m.FSM() as fsm:
            with m.State("LOAD"):
                m.d.comb += [n_cur.eq(Mux(in_row == 0, i_n, n)), p_word.eq(self.i.payload[:W]),
                             p_pivot.eq(Mux(in_row == 0, i_lanes[0], pivot))]
                for j in range(C):
                    m.d.comb += p_mask[j].eq(in_base + j < n_cur)
                with m.If(self.i.valid):
                    m.d.comb += [p_valid.eq(1), o_wr.en.eq(1)]
                    m.d.sync += [in_row.eq(in_row + 1), in_base.eq(in_base + C)]
                    with m.If(in_row == 0):
                        m.d.sync += [n.eq(i_n), t.eq(i_k - 1), pivot.eq(i_lanes[0])]
                    with m.If(in_base + C >= n_cur):
                        m.next = "FLUSH"
            with m.State("FLUSH"):
                m.d.comb += [flush.eq(1), restart.eq(1)]
                m.d.sync += [iss_row.eq(0), iss_base.eq(0), proc_base.eq(0), pending.eq(0), in_row.eq(0), in_base.eq(0)]
                with m.If(cnt_r > t):
                    m.d.sync += [src.eq(Mux(src == 2, 0, src + 1)), cand.eq(cnt_r), pivot.eq(firsts[0])]
                    m.next = "RUN"
                with m.Elif(cnt_r + cnt_eq <= t):
                    m.d.sync += [src.eq(Mux(src == 0, 2, src - 1)), cand.eq(cnt_l), pivot.eq(firsts[1]),
                                 t.eq(t - cnt_r - cnt_eq)]
                    m.next = "RUN"
                with m.Else():
                    m.d.sync += [kth.eq(pivot), keep.eq(t - cnt_r + 1), f_issue.eq(0), f_s1.eq(0), f_base.eq(0),
                                 eq_seen.eq(0), o_valid.eq(0)]
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
                        m.next = "FLUSH"
            with m.State("FILTER"):
                with m.If(self.o.ready & o_valid):
                    m.d.sync += o_valid.eq(0)
                    with m.If(o_payload[-1]):
                        m.d.sync += src.eq(0)
                        m.next = "LOAD"
                with m.If(adv):
                    m.d.comb += o_rd.en.eq(1)
                    with m.If(f_issue * C < n):
                        m.d.sync += [f_issue.eq(f_issue + 1), f_s1.eq(1), f_last.eq((f_issue + 1) * C >= n)]
                    with m.Else():
                        m.d.sync += f_s1.eq(0)
                    with m.If(f_s1):
                        m.d.sync += [o_valid.eq(1), o_payload.eq(out_word), f_base.eq(f_base + C),
                                     eq_seen.eq(eq_seen + sum(e for e in feq))]
        # outside the FSM body so it is a continuous assignment: Icarus never evaluates an ``always @*`` whose
        # inputs keep their initial values, which left ``i.ready`` X until the first state change
        m.d.comb += self.i.ready.eq(fsm.ongoing("LOAD"))
        return m
