"""SpAtten's prob x V unit: ``S`` probabilities per cycle, each broadcast across its V row of ``max_d`` values; the
products of a column are reduced by an S-way adder tree (``max_d`` trees, the paper's 64 eight-way trees) into a
``max_d``-wide accumulator, rounded once when the row's last beat has been added (the accumulator starts at the
rounding's half, so the rounding is a shift).

Streams (layouts :func:`attnforge.sim.contract.designs.pv`; golden :func:`attnforge.sim.spatten.golden.pv`, cycles
:func:`attnforge.sim.spatten.cycle_model.pv_cycles`):

* ``i``: ``S`` probabilities | ``S x max_d`` V values (row-major, rows beyond D zero) | count | last.
* ``o``: ``max_d`` outputs (``out_frac`` fraction bits) | err, one beat per job.

A job with a beat count above S or more than max_n rows in all (what the accumulators are sized for) is taken to
its last beat and answered, when a job of as many beats would end, by
outputs 0 and err=1 (only the last beat's err travels: the flag is sticky over the job's beats). Empty and
short beats are legal anywhere: the top-k's output rows, which feed this unit in the pipeline, are such beats.
"""

from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring

from attnforge.rtl.common import HeadRegFIFO, contract_ports, credit_room, delay, split_mul, view
from attnforge.sim.contract import PV_MUL_PIPE, pv_tree_pipe
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.spatten_fx import SpattenFx


class PV(wiring.Component):
    def __init__(self, cfg: SpattenFx) -> None:
        cfg.validate()
        self.cfg = cfg
        self.contract = contract.pv(cfg)
        super().__init__(contract_ports(self.contract))

    def elaborate(self, platform: object) -> Module:
        m = Module()
        c = self.cfg
        S, D, PB, VB = c.s, c.max_d, c.prob_bits, c.v_bits
        beat = view(self.contract["i"], self.i.payload)
        probs, cnt, last = beat.probs, beat.count, beat.last

        # The pipeline never stalls: its results go to an output FIFO where the output register was (its head is
        # ``o``, readable the cycle after the write, as the register was), and a job's last beat is taken only on a
        # credit (``room``: the FIFO holds every result in flight and one more). So ``o.ready`` pops the FIFO only
        # and reaches no pipeline register's enable, the DSPs' clock enables included (on ECP5 the stall enable's
        # fan-out over them was a critical path of spatten-top). A result holds its credit from its job's last
        # beat to its pop: PV_MUL_PIPE + the tree levels + 3 credits take a one-beat job per cycle while ``o`` is
        # taken as it comes, the timing of the stalling output register.
        depth = PV_MUL_PIPE + pv_tree_pipe(c) + 3
        # its head in a register (HeadRegFIFO, SyncFIFO's timing): on ECP5 the LUT-RAM read behind the read
        # address register routed 7 ns into spatten-top's output FIFO
        m.submodules.ofifo = ofifo = HeadRegFIFO(len(self.o.payload), depth)
        res = Signal(len(self.o.payload))
        res_lanes = view(self.contract["o"], res)
        room = Signal(name="room", init=1)
        issue = self.i.valid & room & last  # a job's last beat is taken: its result will need an entry
        pop = ofifo.r_rdy & self.o.ready
        credit_room(m, depth, issue, pop, room)
        m.d.comb += [self.o.valid.eq(ofifo.r_rdy), self.o.payload.eq(ofifo.r_data), ofifo.r_en.eq(self.o.ready),
                     self.i.ready.eq(room)]
        take = self.i.valid & room
        # The accumulators start at the output rounding's half (round_shift_const adds 2**(s-1) before shifting), so
        # the result is the sum's high bits: no rounding adder after the accumulator's (on ECP5 the two adds in
        # series were a critical path of spatten-top). The half is far below acc_bits' headroom (a factor max_n).
        shift = c.prob_frac - c.out_frac
        half = (1 << (shift - 1)) if shift else 0
        acc = [Signal(signed(c.acc_bits), name=f"acc{d}", init=half) for d in range(D)]
        # an input register (probabilities masked by the count, V words), then split_mul's operand copies and two
        # product registers, so that each DSP has a register on both sides (PV_MUL_PIPE in all)
        s0_valid, s0_last, s0_err = Signal(), Signal(), Signal()
        pm = [Signal(signed(PB + 1), name=f"pm{r}") for r in range(S)]
        vv = [Signal(signed(VB), name=f"vv{i}") for i in range(S * D)]
        tot = Signal(range(c.max_n + 1))  # rows of the job so far
        rej = Signal()  # an earlier beat of the job broke the row rule
        bad = rej | (cnt > S) | (tot + cnt > c.max_n)  # empty and short beats are legal: top-k output rows
        prod = [[split_mul(m, pm[r], vv[r * D + d], f"p{r}_{d}", operand_regs=True, product_regs=True)
                 for d in range(D)] for r in range(S)]
        # every register below loads on every cycle (no stall enable)
        m.d.sync += s0_valid.eq(take)
        # the operand registers load on every cycle, a beat or not (``s0_valid`` low drops what they hold
        # before it reaches an accumulator), so the input's valid reaches none of their enables (on ECP5 its
        # fan-out over every operand register was a critical path of spatten-top)
        m.d.sync += [pm[r].eq(Mux(r < cnt, Cat(probs[r], Const(0, 1)).as_signed(), 0)) for r in range(S)]
        m.d.sync += [vv[r * D + d].eq(beat.v[r][d]) for r in range(S) for d in range(D)]
        with m.If(take):
            m.d.sync += [s0_last.eq(last), s0_err.eq(bad), rej.eq(bad & ~last), tot.eq(Mux(last | bad, 0, tot + cnt))]
        # the tags ride beside the multiplies
        tags = [tuple(delay(m, t, PV_MUL_PIPE - 1, n)[-1] for t, n in ((s0_valid, "mv"), (s0_last, "ml"),
                                                                          (s0_err, "me")))]
        # the column trees, one registered level per cycle (pv_tree_pipe in the contract), then the
        # accumulators and the output FIFO
        cols = [[prod[r][d] for r in range(S)] for d in range(D)]
        tv, tl, te = tags[-1]
        for lvl in range(pv_tree_pipe(c)):
            nv, nl, ne = Signal(name=f"tv{lvl}"), Signal(name=f"tl{lvl}"), Signal(name=f"te{lvl}")
            m.d.sync += [nv.eq(tv), nl.eq(tl), ne.eq(te)]
            nxt = []
            for d in range(D):
                vals = cols[d]
                sums = [a + b for a, b in zip(vals[0::2], vals[1::2], strict=False)] + (
                    [vals[-1]] if len(vals) % 2 else [])
                regs = [Signal(signed(c.acc_bits), name=f"col{d}_l{lvl}_{i}") for i in range(len(sums))]
                m.d.sync += [r.eq(v) for r, v in zip(regs, sums, strict=True)]
                nxt.append(regs)
            cols, tv, tl, te = nxt, nv, nl, ne
        totals = [acc[d] + cols[d][0] for d in range(D)]
        with m.If(tv):
            m.d.sync += [acc[d].eq(Mux(tl, half, totals[d])) for d in range(D)]
        m.d.comb += [*(res_lanes.o[d].eq(Mux(te, 0, totals[d] >> shift)) for d in range(D)),
                     res_lanes.err.eq(te), ofifo.w_en.eq(tv & tl), ofifo.w_data.eq(res)]
        return m
