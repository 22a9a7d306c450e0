"""SpAtten's Q x K unit: one query broadcast against a K buffer line of ``lanes`` words per cycle, products reduced
by a reconfigurable adder tree into ``lanes / D`` D-way dot products (D chosen at run time), collected into beats
of ``S = lanes / min_d`` scores.

Streams (layouts :func:`attnforge.sim.contract.designs.qk`; golden :func:`attnforge.sim.spatten.golden.qk`, cycles
:func:`attnforge.sim.spatten.cycle_model.qk_cycles`):

* ``q``: ``max_d`` query words | job (``n`` | ``log2 D``) -- one beat per job, before its keys.
* ``k``: ``lanes`` K words per beat, keys back to back (``lanes / D`` keys per beat, zero padded at the end).
* ``s``: ``S`` scores | count | last | err; every beat full except the last, so the softmax and the top-k
  downstream never see a hole. With ``D > min_d`` one output beat gathers ``D / min_d`` input beats.

A job the tree cannot run (n = 0, n > max_n, log2 D outside the tree's taps) is refused: its q beat is taken, none
of its keys (their count depends on a D the tree may not have), and it is answered by one beat (count 0, last 1,
err 1) that follows the previous job's beats down the pipeline, so the order of answers is the order of jobs.
``QK(cfg, refuse=False)`` leaves that path out, for a parent that refuses every such job before it reaches the
block (:class:`attnforge.rtl.spatten.pipeline.SpattenPipeline` checks each job in its IDLE state): the query's
``ready`` is then ``not busy`` alone, where the refusal made it wait for the pipeline to advance, which tied it to
the output's back-pressure (on ECP5 that chain, from the scores' stream slice through ``ready`` to the parent's
query register, was a critical path of spatten-top).

The product register, one register per adder-tree level up to log2 max_d, and the collector register stall
together on output back-pressure.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, Value, signed
from amaranth.lib import wiring

from attnforge.rtl.common import contract_ports, pack_value, view
from attnforge.rtl.dsp import registered_product
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.spatten_fx import SpattenFx


class QK(wiring.Component):
    def __init__(self, cfg: SpattenFx, refuse: bool = True) -> None:
        cfg.validate()
        self.cfg = cfg
        self.refuse = refuse  #: whether the block refuses jobs it cannot run (see the module docstring)
        self.contract = contract.qk(cfg)
        super().__init__(contract_ports(self.contract))

    @property
    def _dlogs(self) -> list[int]:
        """log2 of every head dimension the adder tree serves (min_d .. max_d)."""
        return list(range(self.cfg.min_d.bit_length() - 1, self.cfg.max_d.bit_length()))

    def _tree(self, m: Module, prod: list[Signal], meta0: tuple[Signal, ...],
              adv: Value) -> tuple[dict[int, list[Value]], tuple[Signal, ...]]:
        """The adder tree, one registered level per cycle up to log2 max_d (``qk_tree_pipe`` in the contract), the
        beat's metadata carried alongside. A tap at a lower level (D < max_d) is delayed to leave the tree together
        with the top level. Returns the D-way sums per log2 D, and the metadata at the top."""
        dlogs, L, SB = self._dlogs, self.cfg.lanes, self.cfg.score_bits
        meta = [meta0]
        tree = [list(prod)]
        taps: dict[int, list[Value]] = {0: list(prod)} if dlogs[0] == 0 else {}  # D = 1: the products themselves
        for lvl in range(1, dlogs[-1] + 1):
            prev = tree[-1]
            nxt = [Signal(signed(SB), name=f"t{lvl}_{i}") for i in range(len(prev) // 2)]
            stage = tuple(Signal.like(x, name=f"{x.name}_t{lvl}") for x in meta[-1])
            with m.If(adv):
                m.d.sync += [x.eq(prev[2 * i] + prev[2 * i + 1]) for i, x in enumerate(nxt)]
                m.d.sync += [x.eq(y) for x, y in zip(stage, meta[-1], strict=True)]
            tree.append(nxt)
            meta.append(stage)
            for dl in dlogs:
                if dl < lvl:  # carry the lower taps along, one register per level
                    held = [Signal(signed(SB), name=f"tap{dl}_{lvl}_{i}") for i in range(L >> dl)]
                    with m.If(adv):
                        m.d.sync += [x.eq(y) for x, y in zip(held, taps[dl], strict=True)]
                    taps[dl] = held
                elif dl == lvl:
                    taps[dl] = nxt
        return taps, meta[-1]

    def elaborate(self, platform: object) -> Module:
        m = Module()
        c = self.cfg
        W, L, S, SB = c.word_bits, c.lanes, c.s, c.score_bits
        dlogs = self._dlogs
        # the query broadcast, resolved when the q beat arrives (D is known then): lane j holds q[j mod D], so the
        # product stage is the multiply alone
        qb = [Signal(signed(W), name=f"qb{j}") for j in range(L)]
        dlog = Signal(c.dlog_bits)
        left = Signal(range(c.max_n + 1))  # keys not yet taken from the k stream
        gk = Signal(range(c.s + 1))  # keys gathered into the current output beat
        grp = Signal(range(max(2, c.max_d // c.min_d)))  # input beat within the current output beat
        busy = Signal()
        qv = view(self.contract["q"], self.q.payload)
        bad = Signal()  # the job cannot be run: answered with one error beat, its keys are not taken
        if self.refuse:
            m.d.comb += bad.eq((qv.job.n == 0) | (qv.job.n > c.max_n) | (qv.job.dlog < dlogs[0])
                               | (qv.job.dlog > dlogs[-1]))
        refuse = Signal()
        with m.If(self.q.valid & ~busy & ~bad):
            m.d.sync += [busy.eq(1), dlog.eq(qv.job.dlog), grp.eq(0), left.eq(qv.job.n)]
            with m.Switch(qv.job.dlog):
                for dl in dlogs:
                    with m.Case(dl):
                        m.d.sync += [qb[j].eq(qv.q[j % (1 << dl)]) for j in range(L)]

        o_valid = Signal()
        o_lanes = [Signal(signed(SB), name=f"o{i}") for i in range(S)]
        o_cnt = Signal(range(S + 1))
        o_last = Signal()
        o_err = Signal()
        beat = {"scores": [Mux(i < o_cnt, o_lanes[i], 0) for i in range(S)], "count": o_cnt, "last": o_last,
                "err": o_err}
        m.d.comb += [self.s.valid.eq(o_valid), self.s.payload.eq(pack_value(self.contract["s"], beat))]
        adv = Signal()
        m.d.comb += adv.eq(~o_valid | self.s.ready)
        # a refused job enters the pipeline as an empty beat (count 0, last, err) behind the previous job's beats
        m.d.comb += [self.q.ready.eq(~busy & (adv | ~bad)), refuse.eq(self.q.valid & ~busy & bad & adv)]

        # stage 1: broadcast Q (lane j multiplies q[j mod D]) and multiply
        kin = view(self.contract["k"], self.k.payload)
        s1_valid, s1_grp, s1_end, s1_last = Signal(), Signal.like(grp), Signal(), Signal()
        s1_cnt = Signal(range(S + 1))
        s1_dlog = Signal.like(dlog)  # the next job's q may arrive while this beat is still in stage 2
        per = Signal(range(L + 1))  # keys per input beat = lanes >> dlog
        ratio = Signal(range(c.max_d // c.min_d + 1))  # input beats per output beat = D / min_d
        with m.Switch(dlog):
            for dl in dlogs:
                with m.Case(dl):
                    m.d.comb += [per.eq(L >> dl), ratio.eq((1 << dl) // c.min_d)]
        take = Signal()
        m.d.comb += [self.k.ready.eq(busy & adv), take.eq(self.k.valid & busy & adv)]
        s1_err = Signal()
        with m.If(adv):
            m.d.sync += [s1_valid.eq(take | refuse), s1_err.eq(refuse)]
        with m.If(refuse):
            m.d.sync += [s1_cnt.eq(0), s1_end.eq(1), s1_last.eq(1), s1_grp.eq(0), s1_dlog.eq(dlogs[0])]
        with m.If(take):
            last_in = left <= per
            gk_new = Mux(grp == 0, 0, gk) + Mux(last_in, left, per)
            m.d.sync += [gk.eq(gk_new), s1_cnt.eq(gk_new), s1_dlog.eq(dlog)]
            m.d.sync += [left.eq(Mux(last_in, 0, left - per)), s1_grp.eq(grp),
                         s1_end.eq(last_in | (grp == ratio - 1)), s1_last.eq(last_in)]
            m.d.sync += grp.eq(Mux(last_in | (grp == ratio - 1), 0, grp + 1))
            with m.If(last_in):
                m.d.sync += busy.eq(0)

        # the product register of each lane, loaded with the beat it takes: the DSP's own output register in synthesis
        prod = [registered_product(m, qb[j], kin[j], f"p{j}", in_regs=False, pipe_reg=False, en=take) for j in range(L)]
        taps, (t_valid, t_grp, t_end, t_last, t_cnt, t_dlog, t_err) = self._tree(
            m, prod, (s1_valid, s1_grp, s1_end, s1_last, s1_cnt, s1_dlog, s1_err), adv)
        self._collect(m, taps, (t_valid, t_grp, t_end, t_last, t_cnt, t_dlog, t_err),
                      (o_valid, o_lanes, o_last, o_cnt, o_err), adv)
        return m

    def _collect(self, m: Module, taps: dict[int, list[Value]], meta: tuple[Signal, ...],
                 out: tuple[Signal, list[Signal], Signal, Signal, Signal], adv: Value) -> None:
        """The collector: the tree's D-way sums of each input beat into their lanes of the output beat (input beat
        ``grp`` of D / min_d fills lanes grp * L/D ..), the beat offered when its last input beat lands."""
        t_valid, t_grp, t_end, t_last, t_cnt, t_dlog, t_err = meta
        o_valid, o_lanes, o_last, o_cnt, o_err = out
        with m.If(adv):
            m.d.sync += o_valid.eq(t_valid & t_end)
            with m.If(t_valid):
                with m.Switch(t_dlog):
                    for dl in self._dlogs:
                        with m.Case(dl):
                            g = self.cfg.lanes >> dl
                            for i in range(self.cfg.s):
                                with m.If(t_grp == i // g):
                                    m.d.sync += o_lanes[i].eq(taps[dl][i % g])
                with m.If(t_end):
                    m.d.sync += [o_last.eq(t_last), o_cnt.eq(t_cnt), o_err.eq(t_err)]
