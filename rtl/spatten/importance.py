"""SpAtten's cascade-pruning accumulators (paper Sec. III-A/B, Fig. 8): cumulative token importance (the attention
probabilities of a token's column, summed over queries, heads and layers) and head importance (``sum_f |out[f]|``
of a head's outputs), held on chip, read out in the top-k engine's input format so that a top wires importance ->
top-k at a layer boundary.

Streams (layouts :func:`attnforge.sim.contract.designs.importance`; golden and exact cycles
:mod:`attnforge.sim.spatten.importance_golden`):

* ``i``: every job on one stream, so a read always sees the adds before it: ``clear``, ``add_tokens`` (S softmax
  probabilities per beat with their token ids), ``add_head`` (one attention-output vector and its head),
  ``read_tokens`` / ``read_heads`` (S ids per beat: the entries to stream out, e.g. the currently kept tokens).
* ``o``: read-out beats, the top-k ``i`` layout (``imp_bits`` unsigned scores, the job's n and k copied).
* ``r``: one answer per job (op, err), raised once the job has taken effect; the next job is taken after it.

The accumulators are registers, so S token lanes with arbitrary ids add in one cycle: each lane's id is decoded to
a one-hot row (registered), a per-token delta (the sum of the lanes naming that token, so a repeated id in one beat
adds twice, as the golden does) is registered, then added. A job the block cannot honour (see the contract) is
consumed whole and answered err=1 without touching any accumulator: nothing waits on it and the block is idle
again after the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Const, Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO

from attnforge.rtl.common import and_or, contract_ports, credit_room, onehot, pack_value, view
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.depths import IMP_GATHER_PIPE
from attnforge.sim.contract.spatten_fx import ImportanceCfg

OPS = contract.IMP_OPS


@dataclass
class _Job:
    """The job as the current beat sees it (the first beat's fields, or the registers later beats read) and the
    strobes the datapaths start from: ``take`` (a beat is taken), ``last`` (it is the job's last), ``lane_ok``."""

    op: Value
    skip: Value
    first: Value
    last: Value
    lane_ok: list[Value]
    take: Value


@dataclass
class _Answer:
    """The answer register ``r`` and the job's running error flag (a lane out of range)."""

    valid: Signal
    op: Signal
    err: Signal
    job_err: Signal


class Importance(wiring.Component):
    def __init__(self, cfg: ImportanceCfg) -> None:
        cfg.validate()
        self.cfg = cfg
        self.contract = contract.importance(cfg)
        super().__init__(contract_ports(self.contract))

    def elaborate(self, platform: object) -> Module:
        m = Module()
        c = self.cfg
        IB = c.imp_bits
        # Every accumulator in _ACC_COPIES copies that take the same updates, each gathered by its own group of
        # read-out lanes (``tok``/``head`` name copy 0): one register read by all S lanes' gathers routed 4-9 ns
        # on ECP5 in spatten-top (the lanes' gather registers sit apart, beside their output lanes).
        self.tok_c = [[Signal(unsigned(IB), name=f"tok{t}_c{i}") for t in range(c.fx.max_n)] for i in range(_ACC_COPIES)]
        self.head_c = [[Signal(unsigned(IB), name=f"head{h}_c{i}") for h in range(c.max_heads)]
                       for i in range(_ACC_COPIES)]
        self.tok, self.head = self.tok_c[0], self.head_c[0]
        acc_all = [x for copy in (*self.tok_c, *self.head_c) for x in copy]
        ans = _Answer(Signal(name="r_valid"), Signal(3, name="r_op"), Signal(name="r_err"), Signal(name="job_err"))
        hold = Signal()  # the job's last beat is taken; its answer is pending
        room = Signal(init=1)  # the read-out's output FIFO has a free entry for every beat in flight and one more
        m.d.comb += [self.i.ready.eq(~hold & room), self.r.valid.eq(ans.valid),
                     self.r.payload.eq(pack_value(self.contract["r"], {"op": ans.op, "err": ans.err}))]
        with m.If(self.r.ready & ans.valid):
            m.d.sync += [ans.valid.eq(0), hold.eq(0)]
        job = self._control(m, hold, ans)
        with m.If(job.take & job.skip & job.last):
            m.d.sync += [ans.valid.eq(1), ans.err.eq(1)]
        go = job.take & ~job.skip
        clr = Signal()  # a clear job was taken last cycle: the accumulators are zeroed now
        m.d.sync += clr.eq(go & (job.op == OPS["clear"]))
        with m.If(go & (job.op == OPS["clear"])):
            m.d.sync += [ans.valid.eq(1), ans.err.eq(0)]
        self._tokens(m, go & (job.op == OPS["add_tokens"]), job, ans)
        self._heads(m, go & (job.op == OPS["add_head"]), ans)
        self._read(m, go & ((job.op == OPS["read_tokens"]) | (job.op == OPS["read_heads"])), job, ans, room)
        # The zeroing follows the clear beat by one register, so the job checks on the input beat do not drive
        # every accumulator's reset (the Fmax path otherwise). No job can see the difference: no add is in flight
        # when a clear is taken (it waits for the previous answer), and the next job is taken at the earliest the
        # cycle after the clear's answer, two cycles after the beat, its first read or add later still.
        with m.If(clr):
            m.d.sync += [x.eq(0) for x in acc_all]
        return m

    # ---------------------------------------------------------------- job control
    def _control(self, m: Module, hold: Signal, ans: _Answer) -> _Job:
        """The first beat brings op, n, k, dlog and is checked; later beats of the job (``left`` still to take)
        reuse the registers. Returns the current beat's view of the job."""
        c, S = self.cfg, self.cfg.s
        iv = view(self.contract["i"], self.i.payload)
        in_job = Signal()
        left = Signal(c.n_bits)
        rem = Signal(c.n_bits)  # entries not yet taken
        cur_op = Signal(3)
        skip = Signal()
        take = Signal()
        m.d.comb += take.eq(self.i.valid & self.i.ready)
        op, n = iv.op, iv.n
        multi = (op == OPS["add_tokens"]) | (op == OPS["read_tokens"]) | (op == OPS["read_heads"])
        beats = Signal(c.n_bits + 1)
        m.d.comb += beats.eq(Mux(multi & (n != 0), (n + S - 1) >> (S.bit_length() - 1), 1))
        bad = self._bad(iv)
        f_op, f_skip = Mux(in_job, cur_op, op), Mux(in_job, skip, bad)
        f_left, f_rem = Mux(in_job, left, beats - 1), Mux(in_job, rem, n)
        last = f_left == 0
        with m.If(take):
            m.d.sync += [in_job.eq(~last), left.eq(f_left - 1), rem.eq(Mux(f_rem > S, f_rem - S, 0))]
            with m.If(last):
                m.d.sync += hold.eq(1)
            with m.If(~in_job):
                m.d.sync += [cur_op.eq(op), skip.eq(bad), ans.op.eq(op), ans.job_err.eq(0)]
        return _Job(f_op, f_skip, ~in_job, last, [f_rem > j for j in range(S)], take)

    def _bad(self, iv: object) -> Value:
        """The refusal predicate on a first beat (``importance_golden.refused``)."""
        c, fx = self.cfg, self.cfg.fx
        op, n, k, dlog = iv.op, iv.n, iv.k, iv.dlog
        lo, hi = fx.min_d.bit_length() - 1, fx.max_d.bit_length() - 1
        n_tok = (n == 0) | (n > fx.max_n)
        k_bad = (k == 0) | (k > n)
        return Mux(op == OPS["clear"], 0,
                   Mux(op == OPS["add_tokens"], n_tok,
                       Mux(op == OPS["add_head"], (dlog < lo) | (dlog > hi) | (iv.idx[0] >= c.max_heads),
                           Mux(op == OPS["read_tokens"], n_tok | k_bad,
                               Mux(op == OPS["read_heads"], (n == 0) | (n > c.max_heads) | k_bad, 1)))))

    # ---------------------------------------------------------------- token accumulation
    def _tokens(self, m: Module, start: Value, job: _Job, ans: _Answer) -> None:
        """Lane register; each lane's id decoded to a one-hot row (registered, so no comparator sits in front of
        the adders); a registered per-token delta in two halves (the lanes naming the token, summed); then the
        add."""
        c, S, PB, N = self.cfg, self.cfg.s, self.cfg.fx.prob_bits, self.cfg.fx.max_n
        iv = view(self.contract["i"], self.i.payload)
        v1, l1 = Signal(name="t1_valid"), Signal(name="t1_last")
        ids = [Signal(c.idx_bits, name=f"t1_id{j}") for j in range(S)]
        ps = [Signal(PB, name=f"t1_p{j}") for j in range(S)]
        on = [Signal(name=f"t1_on{j}") for j in range(S)]
        # the data registers load every beat (no enable): the next stage reads them only the cycle after a start
        m.d.sync += [v1.eq(start), l1.eq(job.last)]
        m.d.sync += [x.eq(iv.idx[j]) for j, x in enumerate(ids)]
        m.d.sync += [x.eq(iv.probs[j]) for j, x in enumerate(ps)]
        m.d.sync += [x.eq(job.lane_ok[j]) for j, x in enumerate(on)]
        v2, l2, e2 = Signal(name="t2_valid"), Signal(name="t2_last"), Signal(name="t2_err")
        hot = [Signal(N, name=f"t2_hot{j}") for j in range(S)]
        m.d.sync += [v2.eq(v1), l2.eq(l1), e2.eq(sum(on[j] & (ids[j] >= N) for j in range(S)) != 0)]
        m.d.sync += [hot[j].eq(Mux(on[j], (1 << ids[j])[:N], 0)) for j in range(S)]
        # One copy of each lane's probability per group of tokens, zero unless the lane names a token of the group:
        # a single register fanned out to every token's adder was the ECP5 Fmax path (6 ns of routing); the masks
        # keep the copies distinct, so synthesis does not merge them back into one.
        groups = _token_groups(N)
        p2 = [[Signal(PB, name=f"t2_p{g}_{j}") for j in range(S)] for g in range(len(groups))]
        for g, (lo, hi) in enumerate(groups):
            m.d.sync += [p2[g][j].eq(Mux(on[j] & (ids[j] >= lo) & (ids[j] < hi), ps[j], 0)) for j in range(S)]
        v3, l3, e3 = Signal(name="t3_valid"), Signal(name="t3_last"), Signal(name="t3_err")
        # Each token's delta in two halves (the lanes' first and second half, summed apart), added to the
        # accumulator together: the adds are split two and two between the stages instead of the 8-lane sum in one
        # (on ECP5 that sum was a critical path of spatten-top); no cycle is added.
        halves = [range(0, (S + 1) // 2), range((S + 1) // 2, S)]
        delta = [[Signal(PB + max(1, len(h)).bit_length(), name=f"delta{t}_{i}") for i, h in enumerate(halves)]
                 for t in range(N)]
        m.d.sync += [v3.eq(v2), l3.eq(l2), e3.eq(e2)]
        for g, (lo, hi) in enumerate(groups):
            for t in range(lo, hi):
                m.d.sync += [d.eq(sum((Mux(hot[j][t], p2[g][j], 0) for j in h), Const(0, PB)))
                             for d, h in zip(delta[t], halves, strict=True)]
        with m.If(v3):
            for tok in self.tok_c:
                m.d.sync += [x.eq(x + d[0] + d[1]) for x, d in zip(tok, delta, strict=True)]
            m.d.sync += ans.job_err.eq(ans.job_err | e3)
            with m.If(l3):
                m.d.sync += [ans.valid.eq(1), ans.err.eq(ans.job_err | e3)]

    # ---------------------------------------------------------------- head accumulation
    def _heads(self, m: Module, start: Value, ans: _Answer) -> None:
        """Beat register (lanes beyond D zeroed), magnitudes, the adder tree one registered level at a time, then
        the head's accumulator and the answer."""
        c, fx = self.cfg, self.cfg.fx
        iv = view(self.contract["i"], self.i.payload)
        v = Signal(name="h1_valid")
        hid = Signal(c.idx_bits, name="h1_head")
        lanes = [Signal(signed(fx.out_bits), name=f"h1_o{f}") for f in range(fx.max_d)]
        m.d.sync += v.eq(start)  # the data registers load every beat (no enable): read only after a start
        m.d.sync += hid.eq(iv.idx[0])
        m.d.sync += [x.eq(Mux((f >> iv.dlog) == 0, iv.out[f], 0)) for f, x in enumerate(lanes)]
        mags = [Signal(unsigned(fx.out_bits), name=f"h2_m{f}") for f in range(fx.max_d)]
        m.d.sync += [x.eq(Mux(y < 0, -y, y)) for x, y in zip(mags, lanes, strict=True)]
        level: list[Value] = list(mags)
        valid, hreg = Signal(name="h2_valid"), Signal(c.idx_bits, name="h2_head")
        m.d.sync += [valid.eq(v), hreg.eq(hid)]
        for lvl in range(c.abs_tree_pipe):
            nxt = [Signal(c.head_sum_bits, name=f"hs{lvl}_{i}") for i in range(len(level) // 2)]
            m.d.sync += [x.eq(level[2 * i] + level[2 * i + 1]) for i, x in enumerate(nxt)]
            nv, nh = Signal(name=f"hs{lvl}_valid"), Signal(c.idx_bits, name=f"hs{lvl}_head")
            m.d.sync += [nv.eq(valid), nh.eq(hreg)]
            level, valid, hreg = nxt, nv, nh
        with m.If(valid):
            for h in range(c.max_heads):
                with m.If(hreg == h):
                    m.d.sync += [copy[h].eq(copy[h] + level[0]) for copy in self.head_c]
            m.d.sync += [ans.valid.eq(1), ans.err.eq(0)]

    # ---------------------------------------------------------------- read-out
    def _read(self, m: Module, start: Value, job: _Job, ans: _Answer, room: Signal) -> None:
        """Id register, the gather register (partial AND-ORs over groups of accumulators, ``IMP_GATHER_PIPE``),
        then a FIFO where the output register was (its head is ``o``, readable the cycle after the write, as the
        register was). The stages never stall: a beat is taken only on a credit (``room``: the FIFO can hold every
        beat in flight and one more), so ``o.ready`` only pops the FIFO and reaches none of the stages' enables (on
        ECP5 the top-k's ready ran through the stall into every gather register's enable: spatten-top's critical
        path). With a consumer that takes a beat per cycle the timing is the register's. The answer is raised with
        the last beat. Each lane's id is also kept decoded (one-hot over the token and over the head accumulators,
        zero out of range; a lane past the count is zeroed at the output): the read is then an AND-OR over the
        accumulators, whose select bits each drive one accumulator's word, instead of a mux tree whose binary select
        bits reach every accumulator (the Fmax path of the binary form)."""
        c, S = self.cfg, self.cfg.s
        iv = view(self.contract["i"], self.i.payload)
        lay = self.contract["o"]
        v1, l1, heads = Signal(name="rd_valid"), Signal(name="rd_last"), Signal(name="rd_heads")
        ids = [Signal(c.idx_bits, name=f"rd_id{j}") for j in range(S)]
        on = [Signal(name=f"rd_on{j}") for j in range(S)]
        n, k = Signal(c.n_bits, name="rd_n"), Signal(c.n_bits, name="rd_k")
        sel_t = [Signal(len(self.tok), name=f"rd_st{j}") for j in range(S)]
        sel_h = [Signal(len(self.head), name=f"rd_sh{j}") for j in range(S)]
        is_h = job.op == OPS["read_heads"]
        v2, l2, e2 = Signal(name="rd2_valid"), Signal(name="rd2_last"), Signal(name="rd2_err")
        assert IMP_GATHER_PIPE == 1, "one gather register: the golden's read cycles count IMP_GATHER_PIPE"
        depth = IMP_GATHER_PIPE + 3  # a beat holds its credit from its take to the cycle after its pop
        m.submodules.rd_fifo = fifo = SyncFIFO(width=lay.width, depth=depth)
        pop = fifo.r_rdy & self.o.ready
        # A beat is counted a cycle after its take (``v1``, the take registered), so the job checks behind the
        # take stay off ``room``'s input (on ECP5 that path measured 98.36 MHz alone); the one beat that may be
        # taken but not yet counted is reserved: a take needs two credits left. While the output is taken as it
        # comes, two credits are always left (depth 4).
        credit_room(m, depth, v1, pop, room, reserve=2)
        m.d.comb += [self.o.valid.eq(fifo.r_rdy), self.o.payload.eq(fifo.r_data), fifo.r_en.eq(self.o.ready)]
        m.d.sync += [v1.eq(start), l1.eq(job.last), v2.eq(v1), l2.eq(l1)]
        # the id registers load on every cycle (not only on a start: the job checks stay off their enables); the
        # gather reads them only after a start
        m.d.sync += [x.eq(iv.idx[j]) for j, x in enumerate(ids)]
        m.d.sync += [x.eq(job.lane_ok[j]) for j, x in enumerate(on)]
        m.d.sync += heads.eq(is_h)
        # the lanes past the job's count are zeroed at the output (``on2_t``, ``on2_h``), not in the selects: the
        # count's compare on the input beat ran into every select register (on ECP5 a critical path of
        # spatten-top); so is the other list's half (a token read's head gathers and a head read's token gathers):
        # the op's decode ran into every select register too
        m.d.sync += [x.eq(onehot(iv.idx[j], len(self.tok))) for j, x in enumerate(sel_t)]
        m.d.sync += [x.eq(onehot(iv.idx[j], len(self.head))) for j, x in enumerate(sel_h)]
        on2_t = [Signal(name=f"rd2_ont{j}") for j in range(S)]
        on2_h = [Signal(name=f"rd2_onh{j}") for j in range(S)]
        m.d.sync += [x.eq(y & ~heads) for x, y in zip(on2_t, on, strict=True)]
        m.d.sync += [x.eq(y & heads) for x, y in zip(on2_h, on, strict=True)]
        with m.If(start & job.first):
            m.d.sync += [n.eq(iv.n), k.eq(iv.k)]
        n_tp, n_hp = len(_groups(self.tok)), len(_groups(self.head))
        parts = [[Signal(c.imp_bits, name=f"rd_part{j}_{g}") for g in range(n_tp + n_hp)] for j in range(S)]
        # The gather stage (IMP_GATHER_PIPE): one partial AND-OR per group of accumulators. Its registers load
        # every cycle (only ``v2`` beats are written on, and their selects were loaded with the take), so the
        # take's register drives no enable over them (on ECP5 that fan-out routed 8 ns in spatten-top).
        for j in range(S):
            copy = j * _ACC_COPIES // S  # the accumulator copy this lane's group gathers from
            grps = (_groups(list(zip(sel_t[j], self.tok_c[copy], strict=True)))
                    + _groups(list(zip(sel_h[j], self.head_c[copy], strict=True))))
            m.d.sync += [p.eq(and_or(Cat(*(b for b, _ in grp)), [w for _, w in grp]))
                         for p, grp in zip(parts[j], grps, strict=True)]
        limit = Mux(heads, c.max_heads, c.fx.max_n)
        m.d.sync += e2.eq(sum(on[j] & (ids[j] >= limit) for j in range(S)) != 0)
        scores = [Mux(on2_t[j], _or(parts[j][:n_tp]), 0) | Mux(on2_h[j], _or(parts[j][n_tp:]), 0) for j in range(S)]
        m.d.comb += [fifo.w_en.eq(v2), fifo.w_data.eq(pack_value(lay, {"scores": scores, "job": {"n": n, "k": k}}))]
        with m.If(v2):
            m.d.sync += ans.job_err.eq(ans.job_err | e2)
            with m.If(l2):
                m.d.sync += [ans.valid.eq(1), ans.err.eq(ans.job_err | e2)]


#: Copies of every token and head accumulator, each read by a contiguous group of the read-out's lanes.
_ACC_COPIES = 2


#: Accumulators per partial AND-OR of the read-out's gather stage (a LUT4-sized OR of AND terms per bit).
_GATHER_GROUP = 4


#: Copies of each token lane's probability register in the accumulation (each feeds a contiguous group of tokens).
_TOKEN_COPIES = 4


def _token_groups(n: int) -> list[tuple[int, int]]:
    """``[lo, hi)`` token ranges, one per probability copy: ``_TOKEN_COPIES`` near-equal groups (fewer if n is)."""
    k = min(_TOKEN_COPIES, n)
    return [(g * n // k, (g + 1) * n // k) for g in range(k)]


def _groups(items: list) -> list[list]:
    """``items`` in consecutive groups of ``_GATHER_GROUP`` (the last may be shorter)."""
    return [items[i:i + _GATHER_GROUP] for i in range(0, len(items), _GATHER_GROUP)]


def _or(words: list[Signal]) -> Value:
    out: Value = Const(0, len(words[0]))
    for w in words:
        out = out | w
    return out
