"""SpAtten's softmax in fixed point: the row is buffered while its maximum is found, then one pass computes the
exponentials (the FuseMax exponent unit, one per lane) and their sum, one restoring division gives the reciprocal,
and a second pass recomputes each exponential and multiplies it by the reciprocal.

Recomputing the exponentials in the normalize pass instead of storing them keeps the buffer at the scores' width and
costs nothing extra: the exponent units would otherwise sit idle in that pass.

Streams (layouts :func:`attnforge.sim.contract.designs.softmax`; golden :func:`attnforge.sim.spatten.golden.softmax`,
cycles :func:`attnforge.sim.spatten.cycle_model.softmax_cycles`):

* ``i``: row (``S`` scores | count | last) | alpha (alpha_q | alpha_sh: the exponent constant, read on a row's first
  beat). The row part is what the buffer stores.
* ``o``: ``S`` probabilities (unsigned Q0.prob_frac) | count | last | err -- the input's beat shape plus ``err``.

A row that breaks the row rule (a beat with count 0 or above S, a short beat before the last, more than max_n
entries: the buffer's size) is taken up to its last beat, not computed, and answered by one beat with err=1.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Module, Mux, Shape, Signal, Value, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory, ReadPort, WritePort

from attnforge.rtl.common import (
    OneHotFSM,
    Reciprocal,
    contract_ports,
    credit_room,
    exp2_rom,
    exp2_scale,
    local_copies,
    pack_value,
    round_shift_coarse,
    round_shift_const,
    round_shift_fine,
    split_mul,
    view,
    vmax_levels,
    vmax_pipelined,
)
from attnforge.sim.contract import SOFTMAX_EXP_PIPE, SOFTMAX_NORM_PIPE, count_bits
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.fixedpoint import clog2
from attnforge.sim.contract.spatten_fx import SpattenFx

FINE = 3  #: the exponent argument's rounding shift: coarse (multiples of 8) in one cycle, fine (0..7) in the next


@dataclass
class _Regs:
    """The registers the FSM shares with the datapath: the row (``nb`` beats, maximum ``mx``, exponent constant
    ``aq``/``ash``), the denominator ``den``, the read position (``iss`` beats issued, ``pend``: a beat is being
    read), the MAX countdown ``wait``; the output FIFO's credits (``room``: NORM may issue a beat) and ``err_v``
    (the error beat is offered); the row rule's state: ``tot`` entries so far, ``over`` (bit c: ``tot + c >
    max_n``, kept beside ``tot`` so the check on a beat's count is a bit select, not an adder in the load path),
    ``rej`` (refusing the rest of a row) and ``refuse`` (this cycle the refused row's last beat is taken)."""

    nb: Signal
    mx: Signal
    aq: Signal
    ash: Signal
    den: Signal
    iss: Signal
    pend: Signal
    wait: Signal
    room: Signal
    err_v: Signal
    tot: Signal
    over: Signal
    rej: Signal
    refuse: Signal
    load_beat: Signal  #: a beat is taken in LOAD this cycle (written to the row buffer, refused or not)


@dataclass
class _Exp:
    """The exponent pipeline's results: the EXP pass's exponentials (``valid``, ``last`` on the row's last beat;
    their sum ``esum`` a register, valid a cycle later with ``sum_valid``) and the NORM pass's probabilities with the
    beat's count, last flag and valid at the pipeline's end."""

    valid: Signal
    last: Signal
    esum: Signal
    sum_valid: Signal
    probs: list[Value]
    out_valid: Signal
    out_count: Signal
    out_last: Signal


class Softmax(wiring.Component):
    def __init__(self, cfg: SpattenFx) -> None:
        cfg.validate()
        self.cfg = cfg
        self.contract = contract.softmax(cfg)
        self.row = self.contract["i"]["row"]  # the part of an input beat the row buffer keeps
        self.beat_bits = self.row.width
        super().__init__(contract_ports(self.contract))

    def _unpack(self, word: Value) -> tuple[list[Value], Value, Value]:
        """A buffered row beat's scores, count and last flag."""
        row = view(self.row, word)
        return [row.scores[j] for j in range(self.cfg.s)], row.count, row.last

    def elaborate(self, platform: object) -> Module:
        """The row buffer and the divider, the exponent pipeline, the row maximum, the FSM over the passes, and the
        output FIFO; in this order, the order the ``comb`` defaults and their overrides must keep."""
        m = Module()
        depth = max(2, -(-self.cfg.max_n // self.cfg.s))
        m.submodules.buf = buf = Memory(shape=unsigned(self.beat_bits), depth=depth, init=[])
        wr, rd = buf.write_port(), buf.read_port()
        m.submodules.div = div = Reciprocal(1, self.cfg.fx.rd_bits, self.cfg.fx)
        r = self._registers(depth)
        exp = self._exp_pipeline(m, r, rd.data, div.q[:self.cfg.fx.qw])
        iv = view(self.contract["i"], self.i.payload)
        # the divider takes the last beat's sum from its register (DIV0 is the cycle that sum lands in ``den``)
        self._buffer_write(m, r, wr, iv.row.as_value())
        m.d.comb += [div.d.eq(r.den + exp.esum),
                     # the buffer is read at ``iss`` on every cycle: only EXP and NORM issue (``pend``), and the
                     # pipeline drops what else is read, so the FSM's state reaches no read-data enable (on ECP5 that
                     # enable's route over the read register was a critical path of spatten-top)
                     rd.en.eq(1), rd.addr.eq(r.iss)]
        self._row_max(m, r, iv.row.as_value())
        out, issue = self._output(m, r)
        in_load, in_norm = self._fsm(m, r, rd, div, exp, iv, (out, issue))
        m.d.comb += [out.w_en.eq(exp.out_valid & in_norm),
                     out.w_data.eq(pack_value(self.contract["o"], {"probs": exp.probs, "count": exp.out_count,
                                                                   "last": exp.out_last, "err": 0}))]
        with m.If(r.refuse):  # the answer to a refused row: its error beat, offered until taken (ERR)
            m.d.sync += r.err_v.eq(1)
        m.d.comb += self.i.ready.eq(in_load)  # continuous: see rtl/spatten/topk.py
        return m

    def _output(self, m: Module, r: _Regs) -> tuple[SyncFIFO, Signal]:
        """The output FIFO, where the output register was (its head is ``o``, readable the cycle after the write, as
        the register was), and NORM's credits: a beat is issued into the exponent pipeline only when the FIFO can
        hold it and every beat ahead of it (``room``), so the pipeline never stalls and ``o.ready`` reaches none of
        its registers' enables (on ECP5 the stall enable's fan-out over every lane's registers, DSPs included, was
        9 ns of routing on spatten-top's critical path). A beat holds its credit from its issue to the cycle after
        its pop: ``SOFTMAX_NORM_PIPE + 3`` credits issue one beat per cycle while ``o`` is taken as it comes,
        the timing of the stalling register. The error beat of a refused row is offered from ``err_v`` (the FIFO is
        empty from LOAD to ERR)."""
        depth = SOFTMAX_NORM_PIPE + 3
        lay = self.contract["o"]
        m.submodules.out = out = SyncFIFO(width=lay.width, depth=depth)
        pop = out.r_rdy & self.o.ready
        issue = Signal(name="issue")  # set by NORM
        credit_room(m, depth, issue, pop, r.room)
        err = lay.pack({"probs": [], "count": 0, "last": 1, "err": 1})
        m.d.comb += [self.o.valid.eq(out.r_rdy | r.err_v), self.o.payload.eq(Mux(r.err_v, err, out.r_data)),
                     out.r_en.eq(self.o.ready)]
        return out, issue

    def _registers(self, depth: int) -> _Regs:
        """The registers of :class:`_Regs`, each named as its field."""
        fx = self.cfg.fx
        shapes: dict[str, int | range | Shape] = {
            "nb": range(depth + 1), "mx": signed(self.cfg.score_bits), "aq": fx.alpha_bits, "ash": fx.alpha_shift_bits,
            "den": fx.rd_bits, "iss": range(depth + 1), "pend": 1, "wait": range(vmax_levels(self.cfg.s) + 1),
            "room": 1, "err_v": 1, "tot": range(self.cfg.max_n + 1), "rej": 1,
            "refuse": 1, "load_beat": 1}
        sigs = {name: Signal(shape, name=name) for name, shape in shapes.items()}
        sigs["room"] = Signal(name="room", init=1)  # every credit is free after reset
        over0 = sum(1 << c for c in range(self.cfg.s + 1) if c > self.cfg.max_n)  # tot = 0
        return _Regs(**sigs, over=Signal(self.cfg.s + 1, name="over", init=over0))

    def _over(self, tot: Value) -> Value:
        """``over`` for a running total ``tot``: bit c is whether c more entries would pass max_n."""
        return Cat(*(tot + c > self.cfg.max_n for c in range(self.cfg.s + 1)))

    # ---------------------------------------------------------------- the exponent pipeline
    def _exp_pipeline(self, m: Module, r: _Regs, rd_data: Value, recip: Value) -> _Exp:
        """The exponent pipeline, shared by both passes: distance, operand copies, partial products by alpha, their
        second register, their sum, coarse and fine rounding shift, ROM, shifter (and in NORM the operand copies, the
        partial products by the reciprocal, their second register and their sum), one
        register each (SOFTMAX_EXP_PIPE / SOFTMAX_NORM_PIPE in the contract count them). It never stalls: NORM
        issues a beat only on a credit of the output FIFO (:meth:`_output`). The beat's valid, count and last flag
        travel alongside in ``v*``, ``c*``, ``l*``."""
        c, fx = self.cfg, self.cfg.fx
        sc, cnt, last = self._unpack(rd_data)
        n_st = SOFTMAX_NORM_PIPE
        vs = [Signal(name=f"v{k}") for k in range(n_st)]
        cs = [Signal(count_bits(c.s), name=f"c{k}") for k in range(n_st)]
        ls = [Signal(name=f"l{k}") for k in range(n_st)]
        m.d.sync += [vs[0].eq(r.pend), cs[0].eq(cnt), ls[0].eq(last)]
        m.d.sync += [x.eq(y) for k in range(1, n_st) for x, y in ((vs[k], vs[k - 1]), (cs[k], cs[k - 1]),
                                                                 (ls[k], ls[k - 1]))]
        lanes_eq = [self._exp_lane(m, j, sc[j], cs[SOFTMAX_EXP_PIPE - 2], r, recip) for j in range(c.s)]
        # the beat's sum registered (every cycle) before it is added to ``den``: the lanes' adder tree and the
        # accumulating add in one cycle were a critical path of spatten-top on ECP5. No cycle is added: the last
        # beat's sum is added in DIV0, straight into the divider's input (see :meth:`elaborate`).
        esum, sum_valid = Signal(fx.rd_bits, name="esum"), Signal(name="esum_valid")
        m.d.sync += [esum.eq(sum(e for e, _ in lanes_eq)), sum_valid.eq(vs[SOFTMAX_EXP_PIPE - 1])]
        probs = [round_shift_const(q, fx.rb - c.prob_frac)[:c.prob_bits] for _, q in lanes_eq]
        return _Exp(valid=vs[SOFTMAX_EXP_PIPE - 1], last=ls[SOFTMAX_EXP_PIPE - 1], esum=esum, sum_valid=sum_valid,
                    probs=probs,
                    out_valid=vs[-1], out_count=cs[-1], out_last=ls[-1])  # e[] is valid with the EXP_PIPE taps

    def _exp_lane(self, m: Module, j: int, score: Value, count: Signal, r: _Regs,
                  recip: Value) -> tuple[Signal, Signal]:
        """Lane ``j`` of the exponent pipeline (its registers load every cycle): returns the
        exponential (0 beyond the beat's ``count``) and its product by the reciprocal."""
        fx = self.cfg.fx
        dist = Signal(fx.d_bits, name=f"dist{j}")
        prod = Signal(fx.d_bits + fx.alpha_bits, name=f"prod{j}")
        xc = Signal(fx.d_bits + fx.alpha_bits, name=f"xc{j}")
        xrb = Signal(name=f"xrb{j}")
        targ = Signal(fx.t_bits, name=f"targ{j}")
        rom = Signal(fx.prob_bits, name=f"rom{j}")
        rsh = Signal(clog2(fx.p_frac + 1), name=f"rsh{j}")
        rzero = Signal(name=f"rzero{j}")
        e = Signal(fx.prob_bits, name=f"e{j}")
        q = Signal(fx.prob_bits + fx.qw, name=f"q{j}")
        lut, sh, zero = exp2_rom(m, targ, fx, f"exp{j}")
        m.d.sync += [rom.eq(lut), rsh.eq(sh), rzero.eq(zero)]
        pp_sum = split_mul(m, dist, r.aq, f"da{j}", operand_regs=True, product_regs=True)
        # the lane's own copy of the exponent constant's shift (loaded in LOAD, first read in EXP, cycles later): on
        # ECP5 one register routed to every lane's rounding shifter was spatten-top's critical path (6 ns of route)
        ash = local_copies(m, r.ash, 1, f"ash_l{j}_")[0]
        qq_sum = split_mul(m, recip, e, f"er{j}", operand_regs=True, product_regs=True)
        m.d.sync += [dist.eq(r.mx - score), prod.eq(pp_sum),
                     *(x.eq(v) for x, v in zip((xc, xrb), round_shift_coarse(prod, ash, FINE), strict=True)),
                     targ.eq(round_shift_fine(xc, xrb, ash, FINE)),
                     e.eq(Mux(j < count, exp2_scale(rom, rsh, rzero), 0)),
                     q.eq(qq_sum)]
        return e, q

    # ---------------------------------------------------------------- the row maximum
    def _row_max(self, m: Module, r: _Regs, row: Value) -> None:
        """The row maximum: a comparator tree registered per level behind the load, then the fold into ``mx``. EXP
        waits softmax_max_wait cycles so that the last beat's fold lands before the first distance is taken."""
        S, SB = self.cfg.s, self.cfg.score_bits
        lo = -(1 << (SB - 1))
        isc, icnt, _ = self._unpack(row)
        lv = vmax_levels(S)
        bm = vmax_pipelined(m, [Mux(j < icnt, isc[j], lo) for j in range(S)], signed(SB), "bmax")
        bv = [Signal(name=f"bv{k}") for k in range(lv)]
        bfirst = [Signal(name=f"bfirst{k}") for k in range(lv)]
        m.d.sync += [bv[0].eq(self.i.valid & self.i.ready), bfirst[0].eq(r.nb == 0)]
        m.d.sync += [x.eq(y) for k in range(1, lv) for x, y in ((bv[k], bv[k - 1]), (bfirst[k], bfirst[k - 1]))]
        with m.If(bv[-1]):
            m.d.sync += r.mx.eq(Mux(bfirst[-1] | (bm > r.mx), bm, r.mx))

    def _beat_bad(self, row: Value, over: Signal) -> Value:
        """A beat that breaks the row rule (contract ``row_refusal``): count 0 or above S, short before the last
        beat, or the row past max_n entries (the buffer's size; ``over`` precomputed, see :class:`_Regs`)."""
        _, cnt, last = self._unpack(row)
        S = self.cfg.s
        return (cnt == 0) | (cnt > S) | (~last & (cnt != S)) | over.bit_select(cnt, 1)

    # ---------------------------------------------------------------- the FSM
    def _buffer_write(self, m: Module, r: _Regs, wr: WritePort, row: Value) -> None:
        """Every beat taken in LOAD is written at ``nb``, a refused one too (``nb`` does not move on it and is back
        at 0 after a refused row: nothing reads what it wrote), so the row rule's checks stay off the write
        enable. The write is registered (a cycle later) when the row maximum's tree has a level: MAX then lasts at
        least a cycle, so the last beat lands before EXP's first read. On ECP5 the enable's route to the LUT-RAM
        slices behind the input's valid was a critical path of spatten-top."""
        if vmax_levels(self.cfg.s) >= 2:
            en, addr, data = Signal(name="buf_we"), Signal.like(r.nb, name="buf_wa"), Signal(len(row), name="buf_wd")
            m.d.sync += [en.eq(r.load_beat), addr.eq(r.nb), data.eq(row)]
        else:
            en, addr, data = r.load_beat, r.nb, row
        m.d.comb += [wr.en.eq(en), wr.addr.eq(addr), wr.data.eq(data)]

    def _fsm(self, m: Module, r: _Regs, rd: ReadPort, div: Reciprocal, exp: _Exp,
             iv: data.View, output: tuple[SyncFIFO, Signal]) -> tuple[Value, Value]:
        """LOAD (buffer the row, fold its maximum; a row that breaks the row rule is taken to its last beat without
        being buffered, then ERR holds its error beat until taken) -> MAX (wait for the last fold; skipped when the tree is one
        level) -> EXP (the exponentials' sum) -> DIV0, DIV1 (the reciprocal) -> NORM (the probabilities out).
        Returns whether it is in LOAD and in NORM."""
        lv = vmax_levels(self.cfg.s)  # MAX lasts lv - 1 cycles
        out, issue = output
        _, _, ilast = self._unpack(iv.row.as_value())
        bad = Signal()
        m.d.comb += bad.eq(r.rej | self._beat_bad(iv.row.as_value(), r.over))
        st = OneHotFSM(("LOAD", "ERR", "MAX", "EXP", "DIV0", "DIV1", "NORM"), "fsm_state")
        with m.If(st.ongoing("LOAD")):
            m.d.comb += r.load_beat.eq(self.i.valid)
            with m.If(self.i.valid & bad):
                m.d.sync += r.rej.eq(~ilast)
                with m.If(ilast):
                    m.d.comb += r.refuse.eq(1)
                    m.d.sync += [r.nb.eq(0), r.tot.eq(0), r.over.eq(r.over.init)]
                    st.next(m, "ERR")
            with m.Elif(self.i.valid):
                nxt = Mux(ilast, 0, r.tot + iv.row.count)
                m.d.sync += [r.nb.eq(r.nb + 1), r.tot.eq(nxt), r.over.eq(self._over(nxt))]
                with m.If(r.nb == 0):
                    m.d.sync += [r.aq.eq(iv.alpha.alpha_q), r.ash.eq(iv.alpha.alpha_sh)]
                with m.If(ilast):
                    m.d.sync += [r.iss.eq(0), r.pend.eq(0), r.den.eq(0), r.wait.eq(max(0, lv - 2))]
                    st.next(m, "EXP" if lv == 1 else "MAX")
        with m.If(st.ongoing("ERR")):
            with m.If(self.o.ready):
                m.d.sync += r.err_v.eq(0)
                st.next(m, "LOAD")
        with m.If(st.ongoing("MAX")):
            with m.If(r.wait == 0):
                st.next(m, "EXP")
            with m.Else():
                m.d.sync += r.wait.eq(r.wait - 1)
        with m.If(st.ongoing("EXP")):
            m.d.sync += [r.pend.eq(r.iss < r.nb), r.iss.eq(Mux(r.iss < r.nb, r.iss + 1, r.iss))]
            with m.If(exp.sum_valid):  # the beats' sums, a cycle after their exponentials; the last in DIV0
                m.d.sync += r.den.eq(r.den + exp.esum)
            with m.If(exp.valid & exp.last):
                st.next(m, "DIV0")
        with m.If(st.ongoing("DIV0")):
            m.d.comb += div.start.eq(1)
            st.next(m, "DIV1")
        with m.If(st.ongoing("DIV1")):
            with m.If(div.done):
                m.d.sync += [r.iss.eq(0), r.pend.eq(0)]
                st.next(m, "NORM")
        with m.If(st.ongoing("NORM")):  # a beat is issued on a credit of the output FIFO
            with m.If(self.o.ready & out.r_rdy & view(self.contract["o"], out.r_data).last):
                m.d.sync += r.nb.eq(0)
                st.next(m, "LOAD")
            m.d.sync += [r.pend.eq(issue), r.iss.eq(r.iss + issue)]
        # outside the FSM body: a continuous assignment (Icarus leaves an ``always @*`` unevaluated until an input
        # changes, see rtl/spatten/topk.py)
        m.d.comb += issue.eq(st.ongoing("NORM") & (r.iss < r.nb) & r.room)
        return st.ongoing("LOAD"), st.ongoing("NORM")
