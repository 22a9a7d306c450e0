"""FuseMax attention tile engine: one output tile (``cols`` queries x F) with the 1-pass cascade, pipelined.

Binding (docs/fusemax.md §Cascade, §Mapping): the 2D array (``rows`` keys x ``cols`` queries, one MAC per PE) runs QK and
SLNV; each PE also owns an exponent unit for SLN, and the column reductions (LM max tree, SLD and SLNV adder
trees) feed the 1D array (``cols`` lanes), which keeps RM, PRM, RD and RNV per query and does the final
reciprocal and multiply. The 2D array is built from the verified blocks: a submodule
:class:`attnforge.rtl.array2d.Array2DCore` (the ``array2d`` design's grid) of :class:`attnforge.rtl.pe.PECore`
instances (the ``pe`` design's datapath), K or V broadcast along the rows, Q down the columns, and in SLNV each
PE's own SLN in place of Q. The operand-select register in front of it, the one tag line for the whole grid, the S
register and the visibility mask are the tile's.
The 1D array is built the same way: a submodule :class:`attnforge.rtl.vector1d.Vector1DCore` of ``cols`` lanes (the
operator units the ``vector1d`` design is built from): per lane the PRM :class:`attnforge.rtl.common.ExpPipe`, the
:class:`attnforge.rtl.vector1d.MulRound` rescales of RD and RNV and the output multiply, and one shared
:class:`attnforge.rtl.common.Reciprocal`. The max trees, RM, the distance registers, the PRM and RNV storage, RD, the
tag lines and the output register are the tile's.

The MAC order is FuseMax's: ``QK0, QK1, SLNV0, QK2, SLNV1, ..., QK(n-1), SLNV(n-2), SLNV(n-1)``, one beat a cycle.
Every stage is a free-running pipeline with a register after each DSP, carry chain or tree level (the depths are named
in :mod:`attnforge.sim.contract.depths`), its data tagged by a delayed valid bit: the MAC (an operand-select register,
then the ``PE_PIPE`` registers of :class:`attnforge.rtl.pe.PECore`: ``FM_MAC_PIPE``), the softmax step of a key tile
(registered max tree, RM, distances, the split exponent unit: ``fm_sm_latency``) running while the MACs do the next
tile's QK, the column trees, the rescales of RD and RNV by PRM (``FM_ACC_PIPE``), the reciprocal (started as soon as
the last RD is final, so it overlaps the last SLNV) and the output multiply (``FM_OUT_PIPE``). SLN and PRM are
double-buffered by key tile parity, so a tile's softmax can finish while the previous tile's SLNV still reads its SLN.
The schedule and its cycle count are :func:`attnforge.sim.fusemax.cycle_model.tile_schedule`, which must equal this
RTL exactly.

Streams (layouts: :func:`attnforge.sim.contract.designs.fusemax_tile`; packed lanes, lane 0 lowest):

* ``cfg``: ``n_tiles | alpha | pad_keys | causal | diag``; starts a run (refused: ``error`` pulses, stays idle).
* ``q``: E beats of ``cols`` int8 (Q[e, p0]); kept in a register file, may run ahead of K.
* ``k``: E beats per key tile of ``rows`` int8 (K[e, m0]); ``v``: F beats per key tile of ``rows`` int8 (V[m0, f]).
* ``o``: F beats of ``cols`` lanes of ``out_bits`` (AV[f, p0], ``out_frac`` fraction bits, units of scale_v).

``mac_active`` is high in every cycle the 2D array's MACs take a beat (for the utilization report); ``busy`` is
high from cfg acceptance to the last output beat.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amaranth import Cat, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import Out

from attnforge.rtl.array2d import Array2DCore
from attnforge.rtl.common import (
    ExpPipe,
    and_or,
    contract_ports,
    delay,
    local_copies,
    onehot,
    pack_value,
    view,
    vmax_pipelined,
    vsum_pipelined,
)
from attnforge.rtl.vector1d import Vector1DCore
from attnforge.sim.contract import (
    FM_ACC_PIPE,
    FM_EXP_PIPE,
    FM_MAC_PIPE,
    FM_OUT_PIPE,
    PE_PIPE,
    fm_min_e,
    fm_min_f,
    fm_tree_levels,
    vmax_levels,
)
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.designs import DIAG_BITS
from attnforge.sim.contract.fixedpoint import FixedPointConfig

IDLE, RUN = range(2)  #: the sequencer's states; a run's tail (RNV, 1/RD, output) has its own flag, ``tail``

_Grid = list[list[Value]]  #: one value per PE, ``[row][col]``


@dataclass
class _Seq:
    """The sequencer, shared by every part of the datapath: the run's cfg, the MAC segment in progress, the
    hand-over flags between the stages and the MAC strobes. One bundle rather than many arguments, because nearly
    every stage reads several of them."""

    state: Signal
    n_tiles: Signal
    alpha_q: Signal
    alpha_sh: Signal
    pad_keys: Signal  #: padding keys at the end of the last key tile
    causal: Signal
    is_qk: Signal  #: current MAC segment: QK (1) or SLNV (0)
    cnt: Signal  #: beat within the segment
    qk_next: Signal  #: key tile of the current/next QK segment
    sv_next: Signal  #: key tile of the current/next SLNV segment
    q_cnt: Signal  #: Q beats taken (the Q stream runs ahead of K into the register file)
    q_lead: Signal  #: in QK0, ``q_cnt - cnt``: how far the Q beats are ahead of the K beats
    q_open: Signal  #: ``state == RUN and q_cnt < E``, a register: the ``q`` stream's ready
    cap_tile: Signal  #: key tile whose scores the S register captures next
    sm_par: Signal  #: SLN / PRM buffer the next softmax step writes
    rd_tile: Signal  #: key tile of the next RD update
    rnv_done: Signal  #: the tail's last SLNV beat has been folded into RNV
    inv_done: Signal  #: the reciprocal holds the tail's 1 / RD
    tail: Signal  #: a run's MAC beats are all taken, its output is not over (the next run may start meanwhile)
    rd_pend: Signal  #: the last RD is final; the reciprocal starts once the previous tail is over
    qk_fire: Signal  #: a QK beat: the MACs take a K beat
    sv_fire: Signal  #: an SLNV beat: the MACs take a V beat
    sln_full: list[Signal]  #: per parity: the SLN buffer holds a tile's probabilities not yet multiplied into RNV
    seen: list[Signal]  #: per query lane: a visible key has been seen (else RM is -inf and PRM is 0)
    qk0: Signal  #: ``qk_next == 0`` as its own register (the K handshake reads it; no comparator on that path)
    #: ``qk0 and q_lead == 0`` as its own register: in QK0, Q beat ``cnt`` is not in the ring yet and comes straight
    #: from the stream. The K handshake and every column's Q operand select read it (on ECP5 the AND and the compare
    #: in front of that fan-out were the fusemax-top critical path: qk0 -> the per-PE operand registers)
    byp: Signal
    #: per query lane c, for the causal mask (key m is visible to lane c iff m <= diag + c): ``diag + c`` minus the
    #: first key of the tile S captures next
    lim: list[Signal]
    # derived once (each use must share the one expression), set by :meth:`FuseMaxTile._handshakes` / _segments
    first_qk: Value = field(init=False)  #: the current QK segment is QK0, which also takes the Q beats
    q_have: Value = field(init=False)  #: Q beat ``cnt`` is already in the register file
    qk_last: Value = field(init=False)  #: the last beat of a QK segment
    sv_last: Value = field(init=False)  #: the last beat of an SLNV segment
    run_end: Value = field(init=False)  #: the last beat of the last SLNV segment


@dataclass
class _MacOut:
    """The MAC pipeline's products ``FM_MAC_PIPE`` cycles after the beat was taken, and the beat's tags then."""

    prod: _Grid
    sum: _Grid  #: QK: the accumulator plus this product (the run's sum on its last beat)
    valid: Value
    qk: Value
    first: Value
    last: Value
    f: Value  #: SLNV: output row (beat within the segment)
    par: Value  #: SLNV: SLN / PRM buffer of the tile
    end: Value  #: the run's last SLNV beat


class FuseMaxTile(wiring.Component):
    """Attention output tile engine (rows x cols 2D array, cols-lane 1D array), every size a parameter."""

    def __init__(self, rows: int = 4, cols: int = 4, e: int = 8, f: int = 8, max_keys: int = 256) -> None:
        self.rows, self.cols, self.e, self.f, self.max_keys = rows, cols, e, f, max_keys
        self.fx = FixedPointConfig(e=e, f=f, rows=rows, max_keys=max_keys)
        self.fx.validate()
        if e < fm_min_e(rows) or f < fm_min_f(rows):
            raise ValueError(f"e={e}, f={f}: need e >= {fm_min_e(rows)}, f >= {fm_min_f(rows)} (see sim.contract.depths)")
        self.contract = contract.fusemax_tile(rows, cols, e, f, max_keys)
        self.cfg_bits = self.contract["cfg"].width
        super().__init__({
            **contract_ports(self.contract),
            "mac_active": Out(1),
            "busy": Out(1),
            "error": Out(1),  #: one cycle high: a cfg was refused (n_tiles = 0 or above max_keys / rows, bad pad_keys)
        })

    def elaborate(self, platform: object) -> Module:
        """The sequencer, then the datapath in dataflow order: Q register file, MAC pipeline, S capture and the
        softmax step (SLN, PRM), RD and the reciprocal, SLNV into RNV, and the output pipeline."""
        m = Module()
        seq = self._sequencer(m)
        self._vec = self._vector_core(m, seq)
        sln, prm = self._buffers()
        mac = self._mac_array(m, seq, self._q_operands(m, seq), sln)
        s_reg, vis_s, s_valid = self._capture(m, seq, mac)
        sln_w = self._softmax_step(m, seq, s_reg, vis_s, s_valid, sln, prm)
        self._rd(m, seq, sln, prm, sln_w)
        rnv = self._rnv(m, seq, mac, prm)
        self._output(m, seq, rnv)
        return m

    # ---------------------------------------------------------------- sequencer
    def _sequencer(self, m: Module) -> _Seq:
        """The sequencer's registers, loaded from the ``cfg`` beat; then the handshakes and the segment order."""
        E, F, kb, C = self.e, self.f, self.fx.key_tiles_bits, self.cols
        cfg_in = view(self.contract["cfg"], self.cfg.payload)
        shapes: dict[str, object] = {
            "state": range(2), "n_tiles": kb, "alpha_q": self.fx.alpha_bits, "alpha_sh": self.fx.alpha_shift_bits,
            "pad_keys": len(cfg_in.pad_keys), "causal": 1, "is_qk": 1,
            "cnt": range(max(E, F) + 1), "qk_next": kb + 1, "sv_next": kb + 1, "q_cnt": range(E + 1), "q_lead": range(E + 1),
            "q_open": 1, "cap_tile": kb + 1, "sm_par": 1, "rd_tile": kb + 1,
            "rnv_done": 1, "inv_done": 1, "tail": 1, "rd_pend": 1, "qk_fire": 1, "sv_fire": 1, "byp": 1}
        seq = _Seq(**{name: Signal(shape, name=name) for name, shape in shapes.items()},  # type: ignore[arg-type]
                   sln_full=[Signal(name=f"sln_full{i}") for i in range(2)],
                   seen=[Signal(name=f"seen_{c}") for c in range(C)], qk0=Signal(init=1, name="qk0"),
                   lim=[Signal(signed(max(DIAG_BITS, (self.max_keys + self.rows + C).bit_length()) + 2), name=f"lim_{c}")
                        for c in range(C)])
        m.d.comb += [self.cfg.ready.eq(seq.state == IDLE), self.busy.eq((seq.state != IDLE) | seq.tail)]
        # A run of no key tiles, of more than the counters were sized for, or a last tile of padding only, is
        # refused: the cfg is consumed, the engine stays idle and says so on ``error``.
        refuse = (cfg_in.n_tiles == 0) | (cfg_in.n_tiles > self.max_keys // self.rows) | (cfg_in.pad_keys >= self.rows)
        m.d.sync += self.error.eq(self.cfg.valid & self.cfg.ready & refuse)
        with m.If(self.cfg.valid & self.cfg.ready & ~refuse):
            m.d.sync += [seq.state.eq(RUN), seq.q_open.eq(1), seq.n_tiles.eq(cfg_in.n_tiles),
                         seq.alpha_q.eq(cfg_in.alpha.alpha_q), seq.alpha_sh.eq(cfg_in.alpha.alpha_sh),
                         seq.pad_keys.eq(cfg_in.pad_keys), seq.causal.eq(cfg_in.causal),
                         *(lim.eq(cfg_in.diag + c) for c, lim in enumerate(seq.lim)),
                         *(getattr(seq, n).eq(0) for n in ("cnt", "qk_next", "sv_next", "q_cnt", "q_lead", "cap_tile",
                                                           "sm_par", "rd_tile")),
                         seq.is_qk.eq(1), seq.qk0.eq(1), seq.byp.eq(1), *(s.eq(0) for s in seq.sln_full + seq.seen)]
        self._handshakes(m, seq)
        self._segments(m, seq)
        return seq

    def _handshakes(self, m: Module, seq: _Seq) -> None:
        """Q into its register file whenever a run has fewer than E Q beats (its ready never waits on another
        stream, so a driver may send all of Q before K); K in a QK segment (in QK0 once Q beat ``cnt`` is stored
        or offered); V in an SLNV segment once the tile's SLN buffer is full, and in a run's first SLNV segment once
        the previous run's tail is over (its output still reads RNV)."""
        seq.first_qk = seq.qk0  # == (qk_next == 0): both set by the cfg, left by the first QK's last beat
        # ``q_cnt > cnt`` as a register of its own (the difference, kept in QK0, the only segment that reads it):
        # the compare sat at the head of the K handshake, which on ECP5 ran on into the top's buffer read
        seq.q_have = seq.q_lead != 0
        qk_seg = (seq.state == RUN) & seq.is_qk
        sv_seg = (seq.state == RUN) & ~seq.is_qk
        m.d.comb += [
            self.k.ready.eq(qk_seg & (~seq.byp | self.q.valid)),  # ~byp == ~first_qk | q_have
            # a register (the run's state and q_cnt < E decided a beat early): the ready and the Q ring's write
            # enables then hang off it and the producer's valid only (their compare was an ECP5 Fmax path)
            self.q.ready.eq(seq.q_open),
            # a Mux, not an Array: Icarus leaves an Array's `always @*` at X until an input changes
            self.v.ready.eq(sv_seg & Mux(seq.sv_next[0], seq.sln_full[1], seq.sln_full[0])
                            & ((seq.sv_next != 0) | ~seq.tail)),
        ]
        q_fire = self.q.valid & self.q.ready
        with m.If(q_fire):
            m.d.sync += seq.q_cnt.eq(seq.q_cnt + 1)
            with m.If(seq.q_cnt == self.e - 1):
                m.d.sync += seq.q_open.eq(0)
        m.d.comb += [seq.qk_fire.eq(self.k.valid & self.k.ready), seq.sv_fire.eq(self.v.valid & self.v.ready),
                     self.mac_active.eq(seq.qk_fire | seq.sv_fire)]
        with m.If(seq.first_qk & (q_fire | seq.qk_fire)):  # never in the cfg cycle, whose load resets it
            lead = seq.q_lead + q_fire - seq.qk_fire
            m.d.sync += [seq.q_lead.eq(lead), seq.byp.eq(lead[:len(seq.q_lead)] == 0)]  # QK0's last beat: below

    def _segments(self, m: Module, seq: _Seq) -> None:
        """The segment order: QK0, QK1, SV0, QK2, SV1, ..., QK(n-1), SV(n-2), SV(n-1); then the tail."""
        seq.qk_last = seq.qk_fire & (seq.cnt == self.e - 1)
        seq.sv_last = seq.sv_fire & (seq.cnt == self.f - 1)
        seq.run_end = seq.sv_last & (seq.sv_next + 1 == seq.n_tiles)
        with m.If(seq.qk_fire | seq.sv_fire):
            m.d.sync += seq.cnt.eq(seq.cnt + 1)
        with m.If(seq.qk_last):
            m.d.sync += [seq.cnt.eq(0), seq.qk_next.eq(seq.qk_next + 1), seq.qk0.eq(0), seq.byp.eq(0),
                         seq.is_qk.eq(seq.first_qk & (seq.n_tiles > 1))]
        with m.If(seq.sv_last):
            m.d.sync += [seq.cnt.eq(0), seq.sv_next.eq(seq.sv_next + 1), seq.is_qk.eq(seq.qk_next < seq.n_tiles)]
            for b in range(2):
                with m.If(seq.sv_next[0] == b):
                    m.d.sync += seq.sln_full[b].eq(0)
        with m.If(seq.run_end):
            m.d.sync += [seq.state.eq(IDLE), seq.tail.eq(1)]

    # ---------------------------------------------------------------- datapath
    def _buffers(self) -> tuple[list[_Grid], list[list[Signal]]]:
        """SLN (per PE) and PRM (per lane), one copy per key tile parity."""
        fx, R, C = self.fx, self.rows, self.cols
        sln = [[[Signal(fx.prob_bits, name=f"sln{b}_{r}_{c}") for c in range(C)] for r in range(R)] for b in range(2)]
        prm = [[Signal(fx.prob_bits, name=f"prm{b}_{c}") for c in range(C)] for b in range(2)]
        return sln, prm

    def _vector_core(self, m: Module, seq: _Seq) -> Vector1DCore:
        """The 1D array's datapath (:class:`attnforge.rtl.vector1d.Vector1DCore`, ``cols`` lanes): per lane the PRM
        exponent unit, the RD and RNV rescales and the output multiply, and the shared reciprocal. Its operand and
        tag registers, RM, PRM, RD and RNV stay the tile's (:meth:`_softmax_step`, :meth:`_rd`, :meth:`_rnv`,
        :meth:`_output` drive its ports); here only the run's exponent constant reaches every lane."""
        m.submodules.vec = vec = Vector1DCore(self.cols, self.fx)
        m.d.comb += [vec.alpha_q.eq(seq.alpha_q), vec.alpha_sh.eq(seq.alpha_sh)]
        return vec

    def _q_operands(self, m: Module, seq: _Seq) -> list[Value]:
        """The Q operand per column: the query tile's E rows in a ring of registers that turns one row per QK beat
        (a QK segment reads rows 0..E-1 in order, so after a segment the ring is where it started), filled by the
        ``q`` stream in beat order; straight from the stream (bypass) in QK0 while Q beat ``cnt`` is only being
        offered.

        Why a ring: a register file read at row ``cnt`` put the counter's fan-out to every row and an E:1 mux in
        front of the per-PE operand registers (the fusemax-top Fmax path on ECP5). The ring turns a cycle late
        (``turn``: last cycle's QK beat, a register, so no handshake fans out to the ring), so row ``cnt`` is its
        entry ``turn``; a Q beat ``q_lead`` rows ahead of ``cnt`` lands at entry ``q_lead`` after this cycle's
        turn."""
        C, E = self.cols, self.e
        q_in = [view(self.contract["q"], self.q.payload)[i] for i in range(C)]
        ring = [[Signal(signed(self.fx.in_bits), name=f"q_{e}_{c}") for c in range(C)] for e in range(E)]
        turn = Signal(name="q_turn")
        m.d.sync += turn.eq(seq.qk_fire)
        fire = self.q.valid & self.q.ready
        for e in range(E):
            nxt = ring[(e + 1) % E]
            m.d.sync += [ring[e][c].eq(Mux(turn, nxt[c], ring[e][c])) for c in range(C)]
            with m.If(fire & (seq.q_lead == e)):  # after the turn above, so the write wins
                m.d.sync += [ring[e][c].eq(q_in[c]) for c in range(C)]
        return [Mux(seq.byp, q_in[c], Mux(turn, ring[1 % E][c], ring[0][c])) for c in range(C)]

    def _mac_array(self, m: Module, seq: _Seq, q_cur: list[Value], sln: list[_Grid]) -> _MacOut:
        """The 2D array (:class:`attnforge.rtl.array2d.Array2DCore`, ``rows`` x ``cols`` of the PE block's
        :class:`attnforge.rtl.pe.PECore`) behind an operand-select register per row and per PE: ``FM_MAC_PIPE`` in
        all. QK multiplies
        K (row operand) by Q (column operand), SLNV multiplies V by the tile's SLN (each PE's local operand); the
        accumulators take QK products only (:meth:`_capture` reads their sums), SLNV products go to the column tree
        (:meth:`_rnv`). The beat's tags travel alongside, one tag line for the whole grid."""
        fx, R, C = self.fx, self.rows, self.cols
        k_in = [view(self.contract["k"], self.k.payload)[i] for i in range(R)]
        v_in = [view(self.contract["v"], self.v.payload)[i] for i in range(R)]
        par = seq.sv_next[0]
        # the operand-select stage (the first of FM_MAC_PIPE): K or V per row; per PE, Q of its column (QK) or its
        # SLN of the parity buffer (SLNV), so that nothing but a route lies between this register and the PE's
        # operand register (the DSP's own input register in synthesis)
        b_sel = [Signal(signed(fx.in_bits), name=f"bsel_{r}") for r in range(R)]
        # the column operand is Q (signed) or SLN (unsigned): one shape that holds both
        col_shape = signed(max(fx.in_bits, fx.prob_bits + 1))
        o_sel = [[Signal(col_shape, name=f"osel_{r}_{c}") for c in range(C)] for r in range(R)]
        m.d.sync += [*(b_sel[r].eq(Mux(seq.is_qk, k_in[r], v_in[r])) for r in range(R)),  # QK: K[e, m0]; SLNV: V[m0, f]
                     *(o_sel[r][c].eq(Mux(seq.is_qk, q_cur[c], Mux(par, sln[1][r][c], sln[0][r][c])))  # Q[e, p0] / SLN
                       for r in range(R) for c in range(C))]
        m.submodules.grid = grid = Array2DCore(R, C, signed(fx.in_bits), col_shape, signed(fx.score_bits), local=True,
                                               tag_reg=True)
        m.d.comb += [*(grid.row[r].eq(b_sel[r]) for r in range(R)),
                     *(grid.local[r][c].eq(o_sel[r][c]) for r in range(R) for c in range(C))]
        assert FM_MAC_PIPE == 1 + PE_PIPE, "the operand-select stage above, then the PE's MAC pipeline"
        tags = [seq.qk_fire | seq.sv_fire, seq.is_qk, seq.cnt == 0, seq.qk_last, seq.cnt, par, seq.run_end]
        names = ["t_valid", "t_qk", "t_first", "t_last", "t_f", "t_par", "t_end"]
        lines = [delay(m, t, FM_MAC_PIPE, n) for t, n in zip(tags, names, strict=True)]
        out = _MacOut([[grid.prod[r][c] for c in range(C)] for r in range(R)],
                      [[grid.sum[r][c] for c in range(C)] for r in range(R)], *(ln[FM_MAC_PIPE] for ln in lines))
        # QK sums only, from each run's first; a cycle early, for the PEs' own tag registers
        early = {n: ln[FM_MAC_PIPE - 1] for n, ln in zip(names, lines, strict=True)}
        m.d.comb += [grid.acc_en.eq(early["t_valid"] & early["t_qk"]), grid.first.eq(early["t_first"])]
        return out

    def _visible(self, seq: _Seq) -> list[list[Value]]:
        """Per PE: the key of the tile being captured is visible to the query lane -- not padding of the last key
        tile, and with ``causal``, key ``cap_tile * rows + r <= diag + c``, i.e. ``lim[c] >= r`` (one comparison with
        a constant per PE; computing ``diag + c - cap_base`` here put two carry chains in front of it, the tile's
        critical path on ECP5)."""
        R, C = self.rows, self.cols
        last = seq.cap_tile == seq.n_tiles - 1
        vis = []
        for r in range(R):
            not_pad = ~last | (seq.pad_keys < R - r)
            vis.append([not_pad & (~seq.causal | (seq.lim[c] >= r)) for c in range(C)])
        return vis

    def _capture(self, m: Module, seq: _Seq, mac: _MacOut) -> tuple[_Grid, list[list[Signal]], Signal]:
        """QK accumulates in the PEs (:meth:`_mac_array`); the last beat's sum goes to S (with the tile's visibility
        mask) and pulses ``s_valid``, ``FM_MAC_PIPE + 1`` cycles after the last K beat. S is the tile's, not the PE's:
        it holds a key tile's scores for the softmax step while the accumulators already sum the next tile's."""
        fx, R, C = self.fx, self.rows, self.cols
        s_reg: _Grid = []
        vis_now = self._visible(seq)
        vis_s = [[Signal(name=f"vis_{r}_{c}") for c in range(C)] for r in range(R)]
        s_valid = Signal()
        cap = mac.valid & mac.qk & mac.last
        m.d.sync += s_valid.eq(cap)
        for r in range(R):
            row = []
            for c in range(C):
                s = Signal(signed(fx.score_bits), name=f"s_{r}_{c}")
                with m.If(cap):
                    m.d.sync += [s.eq(mac.sum[r][c]), vis_s[r][c].eq(vis_now[r][c])]
                row.append(s)
            s_reg.append(row)
        with m.If(cap):
            m.d.sync += [seq.cap_tile.eq(seq.cap_tile + 1), *(lim.eq(lim - R) for lim in seq.lim)]
        return s_reg, vis_s, s_valid

    def _softmax_step(self, m: Module, seq: _Seq, s_reg: _Grid, vis_s: list[list[Signal]], s_valid: Signal,
                      sln: list[_Grid], prm: list[list[Signal]]) -> Value:
        """A key tile's softmax step, ``fm_sm_latency(rows)`` cycles from S to the SLN / PRM buffer: the registered
        max tree over the visible keys (LM), RM' = max(RM, LM) (LM alone before the lane has seen a key), the
        distances RM' - S and RM' - RM, the split exponent unit; hidden keys get SLN = 0, a lane that had seen no
        key PRM = 0. Returns the write strobe (the cycle the buffer takes the tile)."""
        fx, R, C = self.fx, self.rows, self.cols
        vl = vmax_levels(R)
        score_min = -(1 << (fx.score_bits - 1))
        wr_at = vl + 2 + FM_EXP_PIPE - 1  # cycles from s_valid to the buffer write
        sv = delay(m, s_valid, wr_at, "sm_v")
        vis = [[delay(m, vis_s[r][c], wr_at, f"vis_{r}_{c}") for c in range(C)] for r in range(R)]
        for c in range(C):
            lm = vmax_pipelined(m, [Mux(vis_s[r][c], s_reg[r][c], score_min) for r in range(R)],
                                signed(fx.score_bits), f"lm{c}")
            rm = Signal(signed(fx.score_bits), name=f"rm_{c}")
            rm_prev = Signal(signed(fx.score_bits), name=f"rmp_{c}")
            with m.If(sv[vl]):  # RM stage; the lane has seen a key once one of its tile's keys is visible
                m.d.sync += [rm.eq(Mux(~seq.seen[c] | (lm > rm), lm, rm)), rm_prev.eq(rm),
                             seq.seen[c].eq(seq.seen[c] | Cat(*(vis[r][c][vl] for r in range(R))).any())]
            seen_before = delay(m, seq.seen[c], FM_EXP_PIPE + 1, f"seen{c}")[-1]  # as at the RM stage
            dp = Signal(fx.d_bits, name=f"dp_{c}")
            m.d.sync += dp.eq((rm - rm_prev).as_unsigned()[:fx.d_bits])  # distance stage (free-running)
            m.d.comb += self._vec.exp_d[c].eq(dp)
            e_prm = self._vec.exp[c]
            for b in range(2):
                with m.If(sv[wr_at] & (seq.sm_par == b)):
                    m.d.sync += prm[b][c].eq(Mux(seen_before, e_prm, 0))
            for r in range(R):
                dist = Signal(fx.d_bits, name=f"dist_{r}_{c}")
                m.d.sync += dist.eq((rm - s_reg[r][c]).as_unsigned()[:fx.d_bits])
                # a hidden key's SLN is 0: the unit zeroes it at its ROM stage, a cycle before the write
                e_sln = self._exp(m, seq, dist, f"esln{r}_{c}", ~vis[r][c][wr_at - 1])
                for b in range(2):
                    with m.If(sv[wr_at] & (seq.sm_par == b)):
                        m.d.sync += sln[b][r][c].eq(e_sln)
        for b in range(2):
            with m.If(sv[wr_at] & (seq.sm_par == b)):
                m.d.sync += [seq.sm_par.eq(1 - b), seq.sln_full[b].eq(1)]
        return sv[wr_at]

    def _exp(self, m: Module, seq: _Seq, d: Signal, name: str, kill: Value) -> Value:
        """One exponent unit per PE for SLN (the lanes' PRM units are the 1D array's), its own module with its own
        copy of the run's exponent constant (see :class:`attnforge.rtl.common.ExpPipe`); ``kill`` zeroes the
        result, read at the unit's ROM stage."""
        m.submodules[name] = unit = ExpPipe(self.fx, len(d), kill=True)
        m.d.comb += [unit.d.eq(d), unit.alpha_q.eq(seq.alpha_q), unit.alpha_sh.eq(seq.alpha_sh), unit.kill.eq(kill)]
        return unit.e

    def _rd(self, m: Module, seq: _Seq, sln: list[_Grid], prm: list[list[Signal]], sln_w: Value) -> None:
        """RD = round(RD * PRM) + SLD per lane, ``fm_tree_levels + FM_ACC_PIPE`` cycles after the SLN write; the last
        tile's RD starts the reciprocal (which then overlaps the last SLNV)."""
        fx, R, C = self.fx, self.rows, self.cols
        tl = fm_tree_levels(R)
        written = Signal()  # the buffer holds the tile: the tree's inputs are valid
        par = Signal()
        m.d.sync += written.eq(sln_w)
        with m.If(sln_w):
            m.d.sync += par.eq(seq.sm_par)
        v = delay(m, written, tl + FM_ACC_PIPE - 1, "rd_v")
        rd = [Signal(fx.rd_bits, name=f"rd_{c}") for c in range(C)]
        for c in range(C):
            sld = vsum_pipelined(m, [Mux(par, sln[1][r][c], sln[0][r][c]) for r in range(R)], fx.rd_bits, f"sld{c}")
            m.d.comb += [self._vec.rd_run[c].eq(rd[c]), self._vec.rd_factor[c].eq(Mux(par, prm[1][c], prm[0][c])),
                         self._vec.rd_add[c].eq(delay(m, sld, FM_ACC_PIPE - 1, f"sld{c}")[-1]),
                         self._vec.recip_d[c].eq(rd[c])]
            with m.If(v[-1]):
                m.d.sync += rd[c].eq(self._vec.rd_next[c])
        with m.If(v[-1]):
            m.d.sync += seq.rd_tile.eq(seq.rd_tile + 1)
        with m.If(v[-1] & (seq.rd_tile + 1 == seq.n_tiles)):
            m.d.sync += seq.rd_pend.eq(1)  # RD is final in the cycle after the write
        start = seq.rd_pend & ~seq.tail  # the previous tail's output reads 1/RD until it is over
        with m.If(start):
            m.d.sync += seq.rd_pend.eq(0)
        m.d.comb += self._vec.recip_start.eq(start)
        with m.If(self._vec.recip_done):
            m.d.sync += seq.inv_done.eq(1)

    def _rnv(self, m: Module, seq: _Seq, mac: _MacOut, prm: list[list[Signal]]) -> list[list[Signal]]:
        """RNV[f] = round(RNV[f] * PRM) + SLNV[f] per lane: the SLNV products summed by the registered column tree,
        then the RNV read, and the rescale. Returns the RNV register file ``[f][c]``."""
        fx, R, C, F = self.fx, self.rows, self.cols, self.f
        tl = fm_tree_levels(R)
        rnv = [[Signal(signed(fx.rnv_bits), name=f"rnv_{f}_{c}") for c in range(C)] for f in range(F)]
        depth = tl + 1 + FM_ACC_PIPE - 1  # tree, read, operands, partial products, sum: the write is the stage after
        v = delay(m, mac.valid & ~mac.qk, depth, "rn_v")
        fi = delay(m, mac.f, depth, "rn_f")
        par = delay(m, mac.par, tl + 1, "rn_par")[tl + 1]  # as the operand register reads PRM
        end = delay(m, mac.end, depth, "rn_end")
        # the read stage's row, one-hot (decoded a stage early, a register per row: the read is then an AND-OR
        # that no decoder sits in front of), one copy per lane (its own module: one register's fan-out to every
        # lane's read was the fusemax-top critical path on ECP5, 11.3 ns of routing)
        f_hot: list[Value] = [onehot(fi[0], F)] * C  # one row: no tree level, the read is in the MAC's output stage
        if tl:
            f_hot = local_copies(m, onehot(fi[tl - 1], F), C, "rn_fhot")
        for c in range(C):
            slnv = vsum_pipelined(m, [mac.prod[r][c] for r in range(R)], signed(fx.rnv_bits), f"slnv{c}")
            cur = Signal(signed(fx.rnv_bits), name=f"rnr_{c}")
            m.d.sync += cur.eq(and_or(f_hot[c], [rnv[f][c] for f in range(F)]))  # read stage
            m.d.comb += [self._vec.rnv_run[c].eq(cur), self._vec.rnv_factor[c].eq(Mux(par, prm[1][c], prm[0][c])),
                         self._vec.rnv_add[c].eq(delay(m, slnv, FM_ACC_PIPE, f"slnv{c}")[-1])]
            for f in range(F):
                # the write enable decoded a stage early into its own register per (f, c): decoding the row index
                # at the write put a LUT and an 8.6 ns route to F x C x rnv_bits clock enables on ECP5
                we = Signal(name=f"rnv_we_{f}_{c}")
                m.d.sync += we.eq(v[depth - 1] & (fi[depth - 1] == f))
                with m.If(we):
                    m.d.sync += rnv[f][c].eq(self._vec.rnv_next[c])
        with m.If(v[depth] & end[depth]):
            m.d.sync += seq.rnv_done.eq(1)
        return rnv

    def _output(self, m: Module, seq: _Seq, rnv: list[list[Signal]]) -> None:
        """AV = RNV * (1 / RD): once RNV and the reciprocal are final, F beats through the ``FM_OUT_PIPE``-stage
        output pipeline (RNV read, operand copies per DSP, partial products, their copies, their sum plus the rounding
        half, shift; the reciprocal holds 1/RD throughout, so its copies cost no cycle of their own); then back to
        IDLE.

        The pipeline never stalls: its last stage writes a FIFO whose head is ``o``, and a beat starts only on a
        credit (``room``: the FIFO's entries less the beats in flight or waiting), so a stalled output holds nothing
        but the start. A stalling pipeline put ``o.ready`` through a LUT onto every output multiply's DSP clock enable
        (on ECP5 a 4.6-4.9 ns route, the fusemax-top critical path). The FIFO write is where the output register was,
        so the cycles are the same while ``o`` is taken; the credits cover a beat from its start to the cycle after
        it is taken, so beats start back to back then."""
        fx, C, F = self.fx, self.cols, self.f
        depth = FM_OUT_PIPE + 1
        m.submodules.ofifo = fifo = SyncFIFO(width=len(self.o.payload), depth=depth)
        room = Signal(range(depth + 1), init=depth, name="o_room")
        o_fire = self.o.valid & self.o.ready
        f_out = Signal(range(F + 1))
        f_hot = Signal(F, init=1, name="o_fhot")  # row f_out one-hot: the RNV read is an AND-OR, no decoder
        out_cnt = Signal(range(F + 1))
        go = seq.tail & seq.rnv_done & (seq.inv_done | self._vec.recip_done) & (f_out < F) & (room != 0)
        vs = [Signal(name=f"o_v{i}") for i in range(FM_OUT_PIPE - 1)]  # valid of each stage before the output
        vec = self._vec
        m.d.comb += vec.out_en.eq(1)  # the multiply's stages advance every cycle, as the rest of the pipeline
        m.d.sync += [vs[0].eq(go), *(b.eq(a) for a, b in zip(vs, vs[1:], strict=False)), room.eq(room - go + o_fire)]
        for c in range(C):
            rd_ = Signal(signed(fx.rnv_bits), name=f"o_rnv{c}")
            m.d.sync += rd_.eq(and_or(f_hot, [rnv[f][c] for f in range(F)]))
            m.d.comb += [vec.out_a[c].eq(rd_), vec.out_b[c].eq(vec.recip_q[c])]
        with m.If(go):
            m.d.sync += [f_out.eq(f_out + 1), f_hot.eq(f_hot << 1)]
        m.d.comb += [fifo.w_en.eq(vs[-1]),
                     fifo.w_data.eq(pack_value(self.contract["o"], [vec.out_res[c][:fx.out_bits] for c in range(C)])),
                     self.o.valid.eq(fifo.r_rdy), self.o.payload.eq(fifo.r_data), fifo.r_en.eq(self.o.ready)]
        with m.If(o_fire):
            m.d.sync += out_cnt.eq(out_cnt + 1)
            with m.If(out_cnt == F - 1):  # the tail is over: ready for the next run's
                m.d.sync += [seq.tail.eq(0), f_out.eq(0), f_hot.eq(1), out_cnt.eq(0), seq.rnv_done.eq(0), seq.inv_done.eq(0)]
        assert FM_OUT_PIPE == 6, "RNV read, the core's operand copies, partial products, their copies, sum; shift"
