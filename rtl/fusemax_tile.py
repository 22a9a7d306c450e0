"""FuseMax attention tile engine: one output tile (``cols`` queries x F) with the 1-pass cascade.

Binding (docs/fusemax.md §Cascade, §Mapping): the 2D array (``rows`` keys x ``cols`` queries, one MAC per PE) runs QK and
SLNV; each PE also owns an exponent unit for SLN, and the column reductions (LM max tree, SLD and SLNV adder
trees) feed the 1D array (``cols`` lanes), which keeps RM, PRM, RD and RNV per query and does the final
reciprocal and multiply.

Pipelining as FuseMax binds it: the MAC order is ``QK0, QK1, SLNV0, QK2, SLNV1, ..., QK(n-1), SLNV(n-2),
SLNV(n-1)``. The softmax step of tile j (LM, RM, SLN, PRM, SLD, RD: :data:`sim.fusemax.cycle_model.SM_LATENCY` = 3 cycles)
runs on the 1D array and the PEs' exp units while the MACs do QK(j+1), so the MACs never wait in steady state;
only the last tile's softmax, the reciprocal (``qw`` cycles) and the F output beats are exposed. The
schedule and its cycle count are :func:`attnforge.sim.fusemax.cycle_model.tile_schedule`, which must equal this RTL exactly.

Streams (layouts: :func:`attnforge.sim.contract.designs.fusemax_tile`; packed lanes, lane 0 lowest):

* ``cfg``: ``n_tiles | alpha (alpha_q | alpha_sh)``; starts a run.
* ``q``: E beats of ``cols`` int8 (Q[e, p0]); consumed during QK0 and kept in a register file.
* ``k``: E beats per key tile of ``rows`` int8 (K[e, m0]); ``v``: F beats per key tile of ``rows`` int8 (V[m0, f]).
* ``o``: F beats of ``cols`` lanes of ``out_bits`` (AV[f, p0], ``out_frac`` fraction bits, units of scale_v).

``mac_active`` is high in every cycle the 2D array's MACs fire (for the utilization report); ``busy`` is high
from cfg acceptance to the last output beat.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from amaranth import Array, Cat, Module, Mux, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from attnforge.rtl.common import Reciprocal, contract_ports, exp_unit, lanes, pack_value, round_shift_const, view, vmax, vsum
from attnforge.sim.contract import SM_LATENCY
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.designs import DIAG_BITS
from attnforge.sim.contract.fixedpoint import FixedPointConfig

IDLE, RUN, RECIP, OUT = range(4)  #: the sequencer's states

_Grid = list[list[Signal]]  #: one signal per PE, ``[row][col]``


@dataclass
class _Seq:
    """The sequencer, shared by every part of the datapath: the run (``n_tiles``, the exponent constant), the MAC
    segment in progress, the hand-over flags between the stages, the softmax step, the output beat, and the MAC
    strobes. One bundle rather than many arguments, because nearly every stage reads several of them."""

    state: Signal
    n_tiles: Signal
    alpha_q: Signal
    alpha_sh: Signal
    is_qk: Signal  #: current MAC segment: QK (1) or SLNV (0)
    cnt: Signal  #: beat within the segment
    qk_next: Signal  #: key tile of the current/next QK segment
    sv_next: Signal  #: key tile of the current/next SLNV segment
    s_full: Signal  #: S holds a tile's scores not yet turned into SLN
    sln_full: Signal  #: SLN holds a tile's probabilities not yet multiplied into RNV
    sm_step: Signal  #: 0: idle (step 0 starts from idle); 1, 2: softmax steps 1, 2
    sm_tile: Signal  #: key tile of the pending/current softmax step
    sm_base: Signal  #: its first key (sm_tile * rows), for the causal mask
    pad_keys: Signal  #: padding keys at the end of the last key tile
    causal: Signal
    diag: Signal  #: causal: key m is visible to lane c iff m <= diag + c
    q_cnt: Signal  #: Q beats taken (the Q stream runs ahead of K into the register file)
    out_cnt: Signal
    qk_fire: Signal  #: a QK beat: the MACs fire on a K beat
    sv_fire: Signal  #: an SLNV beat: the MACs fire on a V beat
    seen: list[Signal]  #: per query lane: a visible key has been seen (else RM is -inf and PRM is 0)
    # derived once (each use must share the one expression), set by :meth:`FuseMaxTile._sequencer`
    first_qk: Value = field(init=False)  #: the current QK segment is QK0, which also takes the Q beats
    qk_last: Value = field(init=False)  #: the last beat of a QK segment
    q_have: Value = field(init=False)  #: Q beat ``cnt`` is already in the register file
    sv_last: Value = field(init=False)  #: the last beat of an SLNV segment


class FuseMaxTile(wiring.Component):
    """Attention output tile engine (rows x cols 2D array, cols-lane 1D array), every size a parameter."""

    def __init__(self, rows: int = 4, cols: int = 4, e: int = 8, f: int = 8, max_keys: int = 256) -> None:
        self.rows, self.cols, self.e, self.f, self.max_keys = rows, cols, e, f, max_keys
        self.fx = FixedPointConfig(e=e, f=f, rows=rows, max_keys=max_keys)
        self.fx.validate()
        self.contract = contract.fusemax_tile(rows, cols, e, f, max_keys)
        self.cfg_bits = self.contract["cfg"].width
        super().__init__({
            **contract_ports(self.contract),
            "mac_active": Out(1),
            "busy": Out(1),
            "error": Out(1),  #: one cycle high: a cfg was refused (n_tiles = 0 or above max_keys / rows)
        })

    def elaborate(self, platform: object) -> Module:
        """The sequencer, then the datapath in dataflow order: Q register file, 2D array (QK / SLNV MACs), softmax
        step, RNV, and AV = RNV / RD out. Called in this order because later ``sync`` statements to the same register
        win (the softmax step's ``sln_full <= 1`` over the sequencer's clear, ``state`` over the segment logic)."""
        m = Module()
        seq = self._sequencer(m)
        s_reg, sln, prod = self._pe_array(m, seq, self._q_operands(m, seq))
        prm, rd = self._softmax_step(m, seq, s_reg, sln)
        self._output(m, seq, rd, self._rnv(m, seq, prod, prm))
        return m

    # ---------------------------------------------------------------- sequencer
    def _sequencer(self, m: Module) -> _Seq:
        """The sequencer's registers, loaded from the ``cfg`` beat; then the handshakes and the segment order."""
        fx, E, F, kb = self.fx, self.e, self.f, self.fx.key_tiles_bits
        cfg_in = view(self.contract["cfg"], self.cfg.payload)
        shapes: dict[str, int | range] = {
            "state": range(4), "n_tiles": kb, "alpha_q": fx.alpha_bits, "alpha_sh": fx.alpha_shift_bits, "is_qk": 1,
            "cnt": range(max(E, F) + 1), "qk_next": kb + 1, "sv_next": kb + 1, "s_full": 1, "sln_full": 1,
            "sm_step": range(SM_LATENCY), "sm_tile": kb, "sm_base": range(self.max_keys + 1),
            "pad_keys": len(cfg_in.pad_keys), "causal": 1, "diag": signed(DIAG_BITS), "q_cnt": range(E + 1),
            "out_cnt": range(F + 1), "qk_fire": 1, "sv_fire": 1}
        seq = _Seq(**{name: Signal(shape, name=name) for name, shape in shapes.items()},
                   seen=[Signal(name=f"seen_{c}") for c in range(self.cols)])
        m.d.comb += [self.cfg.ready.eq(seq.state == IDLE), self.busy.eq(seq.state != IDLE)]
        # A run of no key tiles, or of more than the K/V storage and counters were sized for, is refused: the cfg
        # is consumed, the engine stays idle and says so on ``error`` (before, n_tiles = 0 waited forever).
        refuse = (cfg_in.n_tiles == 0) | (cfg_in.n_tiles > self.max_keys // self.rows) | (cfg_in.pad_keys >= self.rows)
        m.d.sync += self.error.eq(self.cfg.valid & self.cfg.ready & refuse)
        with m.If(self.cfg.valid & self.cfg.ready & ~refuse):
            m.d.sync += [seq.state.eq(RUN), seq.n_tiles.eq(cfg_in.n_tiles),
                         seq.alpha_q.eq(cfg_in.alpha.alpha_q), seq.alpha_sh.eq(cfg_in.alpha.alpha_sh),
                         seq.is_qk.eq(1), seq.cnt.eq(0), seq.qk_next.eq(0), seq.sv_next.eq(0), seq.s_full.eq(0),
                         seq.sln_full.eq(0), seq.sm_step.eq(0), seq.sm_tile.eq(0), seq.sm_base.eq(0),
                         seq.pad_keys.eq(cfg_in.pad_keys), seq.causal.eq(cfg_in.causal), seq.diag.eq(cfg_in.diag),
                         seq.q_cnt.eq(0), seq.out_cnt.eq(0), *(s.eq(0) for s in seq.seen)]
        self._handshakes(m, seq)
        self._segments(m, seq)
        return seq

    def _handshakes(self, m: Module, seq: _Seq) -> None:
        """Q into its register file whenever a run has fewer than E Q beats (its ready never waits on another
        stream, so a driver may send all of Q before K); K in a QK segment (in QK0 once Q beat ``cnt`` is stored
        or offered); V in an SLNV segment once SLN holds the tile's probabilities."""
        seq.first_qk = seq.qk_next == 0
        seq.q_have = seq.q_cnt > seq.cnt
        qk_seg = (seq.state == RUN) & seq.is_qk
        sv_seg = (seq.state == RUN) & ~seq.is_qk
        m.d.comb += [
            self.k.ready.eq(qk_seg & (~seq.first_qk | seq.q_have | self.q.valid)),
            self.q.ready.eq((seq.state == RUN) & (seq.q_cnt < self.e)),
            self.v.ready.eq(sv_seg & seq.sln_full),
        ]
        with m.If(self.q.valid & self.q.ready):
            m.d.sync += seq.q_cnt.eq(seq.q_cnt + 1)
        m.d.comb += [seq.qk_fire.eq(self.k.valid & self.k.ready), seq.sv_fire.eq(self.v.valid & self.v.ready),
                     self.mac_active.eq(seq.qk_fire | seq.sv_fire)]

    def _segments(self, m: Module, seq: _Seq) -> None:
        """The segment order: QK0, QK1, SV0, QK2, SV1, ..., QK(n-1), SV(n-2), SV(n-1); then the reciprocal."""
        seq.qk_last = seq.qk_fire & (seq.cnt == self.e - 1)
        seq.sv_last = seq.sv_fire & (seq.cnt == self.f - 1)
        with m.If(seq.qk_fire):
            m.d.sync += seq.cnt.eq(seq.cnt + 1)
        with m.If(seq.sv_fire):
            m.d.sync += seq.cnt.eq(seq.cnt + 1)
        with m.If(seq.qk_last):
            m.d.sync += [seq.cnt.eq(0), seq.qk_next.eq(seq.qk_next + 1),
                         seq.is_qk.eq(seq.first_qk & (seq.n_tiles > 1))]
        with m.If(seq.sv_last):
            m.d.sync += [seq.cnt.eq(0), seq.sv_next.eq(seq.sv_next + 1), seq.sln_full.eq(0)]
            with m.If(seq.sv_next + 1 == seq.n_tiles):
                m.d.sync += [seq.state.eq(RECIP)]
            with m.Else():
                m.d.sync += seq.is_qk.eq(seq.qk_next < seq.n_tiles)

    # ---------------------------------------------------------------- datapath
    def _q_operands(self, m: Module, seq: _Seq) -> list[Value]:
        """The Q operand per column: from the register file (row ``cnt``), which the ``q`` stream fills in beat
        order; straight from the stream (bypass) in QK0 while Q beat ``cnt`` is only being offered."""
        C, E = self.cols, self.e
        q_in = [view(self.contract["q"], self.q.payload)[i] for i in range(C)]
        qrf = [[Signal(signed(self.fx.in_bits), name=f"q_{e}_{c}") for c in range(C)] for e in range(E)]
        with m.If(self.q.valid & self.q.ready):
            with m.Switch(seq.q_cnt):
                for e in range(E):
                    with m.Case(e):
                        m.d.sync += [qrf[e][c].eq(q_in[c]) for c in range(C)]
        bypass = seq.first_qk & ~seq.q_have
        return [Mux(bypass, q_in[c], Array(qrf[e][c] for e in range(E))[seq.cnt]) for c in range(C)]

    def _pe_array(self, m: Module, seq: _Seq, q_cur: list[Value]) -> tuple[_Grid, _Grid, _Grid]:
        """The 2D array, one MAC per PE: QK accumulates Q x K into S (kept at the segment's last beat); SLNV
        multiplies SLN by V, summed per column by :meth:`_rnv`. Returns S, SLN (written by the softmax step) and
        the products."""
        fx, R, C = self.fx, self.rows, self.cols
        k_in = [view(self.contract["k"], self.k.payload)[i] for i in range(R)]
        v_in = [view(self.contract["v"], self.v.payload)[i] for i in range(R)]
        acc = [[Signal(signed(fx.score_bits), name=f"acc_{r}_{c}") for c in range(C)] for r in range(R)]
        s_reg = [[Signal(signed(fx.score_bits), name=f"s_{r}_{c}") for c in range(C)] for r in range(R)]
        sln = [[Signal(fx.prob_bits, name=f"sln_{r}_{c}") for c in range(C)] for r in range(R)]
        prod = [[Signal(signed(fx.prob_bits + 1 + fx.in_bits), name=f"prod_{r}_{c}") for c in range(C)]
                for r in range(R)]
        for r in range(R):
            for c in range(C):
                mul_a = Mux(seq.is_qk, q_cur[c], sln[r][c])  # QK: Q[e, p0]; SLNV: SLN[m0, p0]
                mul_b = Mux(seq.is_qk, k_in[r], v_in[r])  # QK: K[e, m0]; SLNV: V[m0, f]
                m.d.comb += prod[r][c].eq(mul_a * mul_b)
                nxt = Mux(seq.cnt == 0, 0, acc[r][c]) + prod[r][c]
                with m.If(seq.qk_fire):
                    m.d.sync += acc[r][c].eq(nxt)
                with m.If(seq.qk_last):
                    m.d.sync += s_reg[r][c].eq(nxt)
        with m.If(seq.qk_last):
            m.d.sync += seq.s_full.eq(1)
        return s_reg, sln, prod

    def _visible(self, seq: _Seq) -> list[list[Value]]:
        """Per PE: the key of the softmax step's tile is visible to the query lane -- not padding of the last key
        tile, and with ``causal``, key ``sm_base + r <= diag + c``."""
        R, C = self.rows, self.cols
        last = seq.sm_tile == seq.n_tiles - 1
        vis = []
        for r in range(R):
            not_pad = ~last | (seq.pad_keys < R - r)
            vis.append([not_pad & (~seq.causal | (seq.diag + c - seq.sm_base >= r)) for c in range(C)])
        return vis

    def _softmax_step(self, m: Module, seq: _Seq, s_reg: _Grid, sln: _Grid) -> tuple[list[Signal], list[Signal]]:
        """The softmax step of a key tile on the 1D array and the PEs' exp units, SM_LATENCY cycles, started once S
        holds the tile and SLN is free: step 0 RM' = max(RM, LM); step 1 SLN, PRM, RM <= RM'; step 2
        RD = PRM * RD + SLD. Hidden keys (:meth:`_visible`) leave LM and get SLN = 0; a lane that has not seen a
        visible key yet takes LM as RM' and PRM = 0. Returns PRM and RD."""
        fx, R, C = self.fx, self.rows, self.cols
        rm = [Signal(signed(fx.score_bits), name=f"rm_{c}") for c in range(C)]
        rm_new = [Signal(signed(fx.score_bits), name=f"rmn_{c}") for c in range(C)]
        prm = [Signal(fx.prob_bits, name=f"prm_{c}") for c in range(C)]
        rd = [Signal(fx.rd_bits, name=f"rd_{c}") for c in range(C)]
        vis = self._visible(seq)
        score_min = -(1 << (fx.score_bits - 1))
        start_sm = Signal()  # softmax step 0 this cycle: S holds the next tile and SLN is free
        m.d.comb += start_sm.eq((seq.sm_step == 0) & seq.s_full & ~seq.sln_full & (seq.state == RUN))
        with m.If(start_sm):
            m.d.sync += seq.sm_step.eq(1)
        with m.Elif(seq.sm_step != 0):
            m.d.sync += seq.sm_step.eq(Mux(seq.sm_step == SM_LATENCY - 1, 0, seq.sm_step + 1))
        for c in range(C):
            lm = vmax([Mux(vis[r][c], s_reg[r][c], score_min) for r in range(R)])  # LM: max over visible keys
            with m.If(start_sm):  # step 0: RM' = max(RM, LM)
                m.d.sync += rm_new[c].eq(Mux(~seq.seen[c] | (lm > rm[c]), lm, rm[c]))
            e_prm = exp_unit(m, (rm_new[c] - rm[c]).as_unsigned()[:fx.d_bits], seq.alpha_q, seq.alpha_sh, fx,
                             f"prm{c}")
            with m.If(seq.sm_step == 1):  # step 1: SLN, PRM, RM <= RM'
                m.d.sync += [prm[c].eq(Mux(seq.seen[c], e_prm, 0)), rm[c].eq(rm_new[c])]
            for r in range(R):
                e_sln = exp_unit(m, (rm_new[c] - s_reg[r][c]).as_unsigned()[:fx.d_bits], seq.alpha_q, seq.alpha_sh,
                                 fx, f"sln{r}_{c}")
                with m.If(seq.sm_step == 1):
                    m.d.sync += sln[r][c].eq(Mux(vis[r][c], e_sln, 0))
            sld = vsum([sln[r][c] for r in range(R)])  # SLD: column sum
            with m.If(seq.sm_step == 2):  # step 2: RD = PRM * RD + SLD; the lane has seen a key if one was visible
                m.d.sync += [rd[c].eq(round_shift_const(rd[c] * prm[c], fx.p_frac) + sld),
                             seq.seen[c].eq(seq.seen[c] | Cat(*(vis[r][c] for r in range(R))).any())]
        with m.If(seq.sm_step == 2):
            m.d.sync += [seq.s_full.eq(0), seq.sln_full.eq(1), seq.sm_tile.eq(seq.sm_tile + 1),
                         seq.sm_base.eq(seq.sm_base + R)]
        return prm, rd

    def _rnv(self, m: Module, seq: _Seq, prod: _Grid, prm: list[Signal]) -> list[Value]:
        """RNV on the 1D array: per SLNV beat f, RNV[f] = PRM * RNV[f] + the column sum of the products (SLNV).
        Returns RNV of the current beat (``cnt``, or the output beat ``out_cnt`` in OUT)."""
        fx, R, C, F = self.fx, self.rows, self.cols, self.f
        rnv = [[Signal(signed(fx.rnv_bits), name=f"rnv_{f}_{c}") for c in range(C)] for f in range(F)]
        fsel = Mux(seq.state == OUT, seq.out_cnt, seq.cnt)
        rnv_cur = [Array(rnv[f][c] for f in range(F))[fsel] for c in range(C)]
        for c in range(C):
            slnv = vsum([prod[r][c] for r in range(R)])
            new = round_shift_const(rnv_cur[c] * prm[c], fx.p_frac) + slnv
            for f in range(F):
                with m.If(seq.sv_fire & (seq.cnt == f)):
                    m.d.sync += rnv[f][c].eq(new)
        return rnv_cur

    def _output(self, m: Module, seq: _Seq, rd: list[Signal], rnv_cur: list[Value]) -> None:
        """AV = RNV * (1 / RD): the reciprocal starts after the last SLNV beat; then F output beats (RECIP -> OUT ->
        IDLE)."""
        fx, C, F = self.fx, self.cols, self.f
        m.submodules.recip = recip = Reciprocal(C, fx.rd_bits, fx)
        m.d.comb += [recip.start.eq(seq.sv_last & (seq.sv_next + 1 == seq.n_tiles)), recip.d.eq(Cat(*rd))]
        with m.If(recip.done):
            m.d.sync += seq.state.eq(OUT)
        inv = lanes(recip.q, C, fx.qw, is_signed=False)
        outs = [round_shift_const(rnv_cur[c] * inv[c], fx.rb - fx.out_frac)[:fx.out_bits] for c in range(C)]
        m.d.comb += [self.o.valid.eq(seq.state == OUT), self.o.payload.eq(pack_value(self.contract["o"], outs))]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += seq.out_cnt.eq(seq.out_cnt + 1)
            with m.If(seq.out_cnt == F - 1):
                m.d.sync += seq.state.eq(IDLE)
