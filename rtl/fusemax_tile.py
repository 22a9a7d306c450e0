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

from amaranth import Array, Cat, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from attnforge.rtl.common import Reciprocal, contract_ports, exp_unit, lanes, pack_value, round_shift_const, view, vmax, vsum
from attnforge.sim.contract import SM_LATENCY
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.fixedpoint import FixedPointConfig


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
        })

    def elaborate(self, platform: object) -> Module:  # one datapath, kept in one place on purpose
        m = Module()
        fx, R, C, E, F = self.fx, self.rows, self.cols, self.e, self.f
        ib, kb = fx.in_bits, fx.key_tiles_bits
        IDLE, RUN, RECIP, OUT = range(4)

        # ---------------------------------------------------------------- sequencer state
        state = Signal(range(4))
        n_tiles = Signal(kb)
        alpha_q = Signal(fx.alpha_bits)
        alpha_sh = Signal(fx.alpha_shift_bits)
        is_qk = Signal()  # current MAC segment: QK (1) or SLNV (0)
        cnt = Signal(range(max(E, F) + 1))  # beat within the segment
        qk_next = Signal(kb + 1)  # key tile of the current/next QK segment
        sv_next = Signal(kb + 1)  # key tile of the current/next SLNV segment
        s_full = Signal()  # S holds a tile's scores not yet turned into SLN
        sln_full = Signal()  # SLN holds a tile's probabilities not yet multiplied into RNV
        sm_step = Signal(range(SM_LATENCY))  # 0: idle (step 0 starts from idle); 1, 2: softmax steps 1, 2
        sm_first = Signal()  # the pending softmax step is the first key tile's (RM = -inf, PRM = 0)
        out_cnt = Signal(range(F + 1))

        m.d.comb += [self.cfg.ready.eq(state == IDLE), self.busy.eq(state != IDLE)]
        cfg_in = view(self.contract["cfg"], self.cfg.payload)
        with m.If(self.cfg.valid & self.cfg.ready):
            m.d.sync += [state.eq(RUN), n_tiles.eq(cfg_in.n_tiles),
                         alpha_q.eq(cfg_in.alpha.alpha_q), alpha_sh.eq(cfg_in.alpha.alpha_sh),
                         is_qk.eq(1), cnt.eq(0), qk_next.eq(0), sv_next.eq(0), s_full.eq(0), sln_full.eq(0),
                         sm_step.eq(0), sm_first.eq(1), out_cnt.eq(0)]

        # ---------------------------------------------------------------- handshakes
        first_qk = qk_next == 0
        qk_seg = (state == RUN) & is_qk
        sv_seg = (state == RUN) & ~is_qk
        m.d.comb += [
            self.k.ready.eq(qk_seg & (~first_qk | self.q.valid)),
            self.q.ready.eq(qk_seg & first_qk & self.k.valid),
            self.v.ready.eq(sv_seg & sln_full),
        ]
        qk_fire = Signal()
        sv_fire = Signal()
        m.d.comb += [qk_fire.eq(self.k.valid & self.k.ready), sv_fire.eq(self.v.valid & self.v.ready),
                     self.mac_active.eq(qk_fire | sv_fire)]

        # segment order: QK0, QK1, SV0, QK2, SV1, ..., QK(n-1), SV(n-2), SV(n-1)
        qk_last = qk_fire & (cnt == E - 1)
        sv_last = sv_fire & (cnt == F - 1)
        with m.If(qk_fire):
            m.d.sync += cnt.eq(cnt + 1)
        with m.If(sv_fire):
            m.d.sync += cnt.eq(cnt + 1)
        with m.If(qk_last):
            m.d.sync += [cnt.eq(0), qk_next.eq(qk_next + 1), is_qk.eq(first_qk & (n_tiles > 1))]
        with m.If(sv_last):
            m.d.sync += [cnt.eq(0), sv_next.eq(sv_next + 1), sln_full.eq(0)]
            with m.If(sv_next + 1 == n_tiles):
                m.d.sync += [state.eq(RECIP)]
            with m.Else():
                m.d.sync += is_qk.eq(qk_next < n_tiles)

        # ---------------------------------------------------------------- Q register file, operand lanes
        q_in, k_in, v_in = ([view(self.contract[s], getattr(self, s).payload)[i] for i in range(n)]
                            for s, n in (("q", C), ("k", R), ("v", R)))
        qrf = [[Signal(signed(ib), name=f"q_{e}_{c}") for c in range(C)] for e in range(E)]
        with m.If(qk_fire & first_qk):
            with m.Switch(cnt):
                for e in range(E):
                    with m.Case(e):
                        m.d.sync += [qrf[e][c].eq(q_in[c]) for c in range(C)]
        q_cur = [Mux(first_qk, q_in[c], Array(qrf[e][c] for e in range(E))[cnt]) for c in range(C)]

        # ---------------------------------------------------------------- 2D array: one MAC per PE
        acc = [[Signal(signed(fx.score_bits), name=f"acc_{r}_{c}") for c in range(C)] for r in range(R)]
        s_reg = [[Signal(signed(fx.score_bits), name=f"s_{r}_{c}") for c in range(C)] for r in range(R)]
        sln = [[Signal(fx.prob_bits, name=f"sln_{r}_{c}") for c in range(C)] for r in range(R)]
        prod = [[Signal(signed(fx.prob_bits + 1 + ib), name=f"prod_{r}_{c}") for c in range(C)] for r in range(R)]
        for r in range(R):
            for c in range(C):
                mul_a = Mux(is_qk, q_cur[c], sln[r][c])  # QK: Q[e, p0]; SLNV: SLN[m0, p0]
                mul_b = Mux(is_qk, k_in[r], v_in[r])  # QK: K[e, m0]; SLNV: V[m0, f]
                m.d.comb += prod[r][c].eq(mul_a * mul_b)
                nxt = Mux(cnt == 0, 0, acc[r][c]) + prod[r][c]
                with m.If(qk_fire):
                    m.d.sync += acc[r][c].eq(nxt)
                with m.If(qk_last):
                    m.d.sync += s_reg[r][c].eq(nxt)
        with m.If(qk_last):
            m.d.sync += s_full.eq(1)

        # ---------------------------------------------------------------- softmax step (1D array + PE exp units)
        rm = [Signal(signed(fx.score_bits), name=f"rm_{c}") for c in range(C)]
        rm_new = [Signal(signed(fx.score_bits), name=f"rmn_{c}") for c in range(C)]
        prm = [Signal(fx.prob_bits, name=f"prm_{c}") for c in range(C)]
        rd = [Signal(fx.rd_bits, name=f"rd_{c}") for c in range(C)]
        start_sm = Signal()  # softmax step 0 this cycle: S holds the next tile and SLN is free
        m.d.comb += start_sm.eq((sm_step == 0) & s_full & ~sln_full & (state == RUN))
        with m.If(start_sm):
            m.d.sync += sm_step.eq(1)
        with m.Elif(sm_step != 0):
            m.d.sync += sm_step.eq(Mux(sm_step == SM_LATENCY - 1, 0, sm_step + 1))
        for c in range(C):
            lm = vmax([s_reg[r][c] for r in range(R)])  # LM: column max
            with m.If(start_sm):  # step 0: RM' = max(RM, LM)
                m.d.sync += rm_new[c].eq(Mux(sm_first | (lm > rm[c]), lm, rm[c]))
            e_prm = exp_unit(m, (rm_new[c] - rm[c]).as_unsigned()[:fx.d_bits], alpha_q, alpha_sh, fx, f"prm{c}")
            with m.If(sm_step == 1):  # step 1: SLN, PRM, RM <= RM'
                m.d.sync += [prm[c].eq(Mux(sm_first, 0, e_prm)), rm[c].eq(rm_new[c])]
            for r in range(R):
                e_sln = exp_unit(m, (rm_new[c] - s_reg[r][c]).as_unsigned()[:fx.d_bits], alpha_q, alpha_sh, fx,
                                 f"sln{r}_{c}")
                with m.If(sm_step == 1):
                    m.d.sync += sln[r][c].eq(e_sln)
            sld = vsum([sln[r][c] for r in range(R)])  # SLD: column sum
            with m.If(sm_step == 2):  # step 2: RD = PRM * RD + SLD
                m.d.sync += rd[c].eq(round_shift_const(rd[c] * prm[c], fx.p_frac) + sld)
        with m.If(sm_step == 2):
            m.d.sync += [s_full.eq(0), sm_first.eq(0), sln_full.eq(1)]

        # ---------------------------------------------------------------- SLNV column sums -> RNV (1D array)
        rnv = [[Signal(signed(fx.rnv_bits), name=f"rnv_{f}_{c}") for c in range(C)] for f in range(F)]
        fsel = Mux(state == OUT, out_cnt, cnt)
        rnv_cur = [Array(rnv[f][c] for f in range(F))[fsel] for c in range(C)]
        for c in range(C):
            slnv = vsum([prod[r][c] for r in range(R)])
            new = round_shift_const(rnv_cur[c] * prm[c], fx.p_frac) + slnv
            for f in range(F):
                with m.If(sv_fire & (cnt == f)):
                    m.d.sync += rnv[f][c].eq(new)

        # ---------------------------------------------------------------- AV = RNV * (1 / RD)
        m.submodules.recip = recip = Reciprocal(C, fx.rd_bits, fx)
        m.d.comb += [recip.start.eq(sv_last & (sv_next + 1 == n_tiles)), recip.d.eq(Cat(*rd))]
        with m.If(recip.done):
            m.d.sync += state.eq(OUT)
        inv = lanes(recip.q, C, fx.qw, is_signed=False)
        outs = [round_shift_const(rnv_cur[c] * inv[c], fx.rb - fx.out_frac)[:fx.out_bits] for c in range(C)]
        m.d.comb += [self.o.valid.eq(state == OUT), self.o.payload.eq(pack_value(self.contract["o"], outs))]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += out_cnt.eq(out_cnt + 1)
            with m.If(out_cnt == F - 1):
                m.d.sync += state.eq(IDLE)
        return m
