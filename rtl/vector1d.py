"""1D vector unit: FuseMax's 1D array (running max, exp, add, rescale-multiply, reciprocal), ``width`` lanes.

One input beat is an operation on all lanes: ``op | a lanes | b lanes`` (the contract's
:func:`attnforge.sim.contract.designs.vector1d`; an exp command's b lanes hold the alpha word); the output beat is
the lane results. max/add/mul/exp take one cycle and stream back to back; recip runs the shared restoring
divider (``qw`` cycles) and blocks new input meanwhile. Opcodes and semantics are :data:`attnforge.sim.fusemax.golden.VEC_OPS`
and :func:`attnforge.sim.fusemax.golden.vector1d`.
"""

from __future__ import annotations

from amaranth import Cat, Module, Mux, Shape, ShapeCastable, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from attnforge.rtl.common import (
    ExpPipe,
    Reciprocal,
    exp_unit,
    lanes,
    pack_value,
    round_shift_const,
    split_mul,
    stream_of,
    view,
)
from attnforge.sim.contract import FM_ACC_PIPE, FM_OUT_PIPE
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.designs import VEC_OPS
from attnforge.sim.contract.fixedpoint import FixedPointConfig


class Vector1D(wiring.Component):
    """``width``-lane 1D array with a command stream in and a result stream out."""

    def __init__(self, width: int = 4, data_bits: int = 40, max_keys: int = 256) -> None:
        self.width, self.data_bits, self.max_keys = width, data_bits, max_keys
        self.cfg = FixedPointConfig(max_keys=max_keys, rows=1)
        if data_bits < max(self.cfg.alpha_bits + self.cfg.alpha_shift_bits, self.cfg.qw + 1, self.cfg.d_bits):
            raise ValueError("data_bits too narrow for the exp/recip operands")
        self.contract = contract.vector1d(width, data_bits, max_keys)
        super().__init__({"i": In(stream_of(self.contract["i"])), "o": Out(stream_of(self.contract["o"]))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        cfg, W, D = self.cfg, self.width, self.data_bits
        beat = view(self.contract["i"], self.i.payload)
        op, a, b = beat.op, [beat.a[i] for i in range(W)], [beat.b[i] for i in range(W)]
        alpha = self.contract.words["exp_operand"]
        m.submodules.recip = recip = Reciprocal(W, D, cfg)
        res = [Signal(signed(D), name=f"res{i}") for i in range(W)]
        pending = Signal()
        is_recip = op == VEC_OPS["recip"]
        fire = self.i.valid & self.i.ready
        m.d.comb += [self.i.ready.eq((~pending | self.o.ready) & ~recip.busy & ~recip.done),
                     self.o.valid.eq(pending), self.o.payload.eq(pack_value(self.contract["o"], res))]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += pending.eq(0)
        m.d.comb += [recip.start.eq(fire & is_recip), recip.d.eq(beat.a.as_value())]
        with m.If(recip.done):
            m.d.sync += pending.eq(1)
            for i in range(W):
                m.d.sync += res[i].eq(recip.q[i * cfg.qw:(i + 1) * cfg.qw])
        with m.If(fire & ~is_recip):
            m.d.sync += pending.eq(1)
        for i in range(W):
            al = view(alpha, b[i][:alpha.width])
            e = exp_unit(m, a[i].as_unsigned()[:cfg.d_bits], al.alpha_q, al.alpha_sh, cfg, f"exp{i}")
            with m.If(fire):
                with m.Switch(op):
                    with m.Case(VEC_OPS["max"]):
                        m.d.sync += res[i].eq(Mux(a[i] > b[i], a[i], b[i]))
                    with m.Case(VEC_OPS["add"]):
                        m.d.sync += res[i].eq(a[i] + b[i])
                    with m.Case(VEC_OPS["mul"]):
                        m.d.sync += res[i].eq(round_shift_const(a[i] * b[i], cfg.p_frac))
                    with m.Case(VEC_OPS["exp"]):
                        m.d.sync += res[i].eq(e)
        return m


class MulRound(wiring.Component):
    """``round_shift(a * b, shift) + add`` as a free-running pipeline: the 1D array's rescale of a running sum by a
    factor (FuseMax's RD and RNV by PRM) and its output multiply (RNV by 1/RD).

    Stages: :func:`attnforge.rtl.common.split_mul`'s operand copies per DSP (``operand_regs``), the partial products,
    with ``product_regs`` their second register, then their sum plus the rounding half; ``res`` is that sum shifted,
    plus ``add`` (combinational: the caller's register on it is the last stage). So ``res`` is the result for the
    ``a`` / ``b`` of :attr:`latency` cycles earlier and the ``add`` of now: the caller delays ``add`` (and its tags)
    alongside, as it does a :class:`attnforge.rtl.pe.PECore`'s. With ``stall`` every stage also waits on ``en``
    (an output pipeline that holds still while its consumer does not take); without it there is no ``en`` and no
    enable logic at all. The sum register is as wide as any product plus the half (two bits over the operands), so
    ``res`` is exact and only the caller's register truncates."""

    def __init__(self, a_shape: ShapeCastable, b_shape: ShapeCastable, shift: int, add_shape: ShapeCastable | None = None,
                 *, operand_regs: bool = True, product_regs: bool = False, stall: bool = False) -> None:
        assert shift >= 1, "the rounding half is 2**(shift - 1)"
        self.shift, self.operand_regs, self.product_regs, self.stall = shift, operand_regs, product_regs, stall
        self.latency = self.stages(operand_regs, product_regs)  #: cycles from ``a`` / ``b`` to ``res``
        self.sum_shape = signed(Shape.cast(a_shape).width + Shape.cast(b_shape).width + 2)
        super().__init__(self.members(a_shape, b_shape, shift, add_shape, stall))

    @staticmethod
    def stages(operand_regs: bool, product_regs: bool) -> int:
        """Register stages in front of ``res``: the optional operand copies, the partial products, their optional
        second register, the sum."""
        return 2 + int(operand_regs) + int(product_regs)

    @staticmethod
    def members(a_shape: ShapeCastable, b_shape: ShapeCastable, shift: int, add_shape: ShapeCastable | None,
                stall: bool) -> dict[str, wiring.Member]:
        """The ports (a static method, so that an array of units can declare its own ports without building one):
        ``res`` exactly as wide as the shifted sum plus ``add``."""
        scaled = Signal(signed(Shape.cast(a_shape).width + Shape.cast(b_shape).width + 2)) >> shift
        res = scaled if add_shape is None else scaled + Signal(add_shape)
        members = {"a": In(a_shape), "b": In(b_shape), "res": Out(res.shape())}
        if add_shape is not None:
            members["add"] = In(add_shape)
        if stall:
            members["en"] = In(1)
        return members

    def elaborate(self, platform: object) -> Module:
        m = Module()
        pp, pp_sum = split_mul(self.a, self.b, "m", operand_regs=self.operand_regs, product_regs=self.product_regs)
        acc = Signal(self.sum_shape, name="sum")
        stmts = [*pp, acc.eq(pp_sum + (1 << (self.shift - 1)))]
        if self.stall:
            with m.If(self.en):
                m.d.sync += stmts
        else:
            m.d.sync += stmts
        scaled = acc >> self.shift
        m.d.comb += self.res.eq(scaled + self.add if "add" in self.signature.members else scaled)
        return m


class Vector1DCore(wiring.Component):
    """FuseMax's 1D array as ``width`` lanes of free-running operator units, the datapath the tile engine
    (:class:`attnforge.rtl.fusemax_tile.FuseMaxTile`) instantiates for its ``cols`` query lanes. Per lane:

    * ``exp``: an :class:`attnforge.rtl.common.ExpPipe` (PRM = exp of RM' - RM): ``exp[i]`` is the exponential of
      the ``exp_d[i]`` of ``FM_EXP_PIPE - 1`` cycles earlier; ``alpha_q`` / ``alpha_sh`` are run constants (each
      unit keeps its own register copy of them).
    * ``rd``: a :class:`MulRound` rescale of the running denominator, ``rd_next[i] = round_shift(rd_run[i] *
      rd_factor[i], p_frac) + rd_add[i]`` for run and factor of ``FM_ACC_PIPE - 1`` cycles earlier and the add of
      now; ``rnv``: the same for a running numerator (signed, ``rnv_bits``). Two units, because FuseMax rescales RD
      and RNV by the same PRM in overlapping cycles (RD after a tile's SLN, RNV during its SLNV).
    * ``out``: the output multiply :class:`MulRound`, ``out_res[i] = round_shift(out_a[i] * out_b[i], rb - out_frac)``
      of ``FM_OUT_PIPE - 2`` advancing cycles earlier (operand copies, partial products, their copies, sum), every
      stage held while ``out_en`` is low.

    And one :class:`attnforge.rtl.common.Reciprocal` over all lanes (``recip_d``, ``recip_start``, ``recip_q``,
    ``recip_done``): the restoring divider is iterative, so one shared unit costs no throughput (FuseMax divides
    once per query tile). The core holds no state of the algorithm (RM, PRM, RD, RNV and their valid tags are the
    caller's), so a stream block or another schedule can reuse it with its own sequencing."""

    def __init__(self, width: int, fx: FixedPointConfig) -> None:
        self.width, self.fx = width, fx
        self.out_shift = fx.rb - fx.out_frac
        W = width
        #: per role: MulRound's arguments (a, b, shift, add shapes; product_regs, stall)
        self._units: dict[str, tuple[tuple, bool, bool]] = {
            "rd": ((unsigned(fx.rd_bits), unsigned(fx.prob_bits), fx.p_frac, unsigned(fx.rd_bits)), False, False),
            "rnv": ((signed(fx.rnv_bits), unsigned(fx.prob_bits), fx.p_frac, signed(fx.rnv_bits)), False, False),
            "out": ((signed(fx.rnv_bits), unsigned(fx.qw), self.out_shift, None), True, True),
        }
        assert MulRound.stages(True, False) + 1 == FM_ACC_PIPE, "operand copies, partial products, sum, shift and add"
        assert MulRound.stages(True, True) + 2 == FM_OUT_PIPE, "RNV read, the multiply's four stages, output register"
        members: dict[str, wiring.Member] = {
            "alpha_q": In(fx.alpha_bits), "alpha_sh": In(fx.alpha_shift_bits),
            "exp_d": In(fx.d_bits).array(W), "exp": Out(fx.prob_bits).array(W),
            "out_en": In(1), "recip_start": In(1), "recip_d": In(unsigned(fx.rd_bits)).array(W),
            "recip_q": Out(unsigned(fx.qw)).array(W), "recip_done": Out(1),
        }
        for role, (args, _, stall) in self._units.items():
            ports = {"a": "run", "b": "factor", "add": "add", "res": "next"} if role != "out" else \
                {"a": "a", "b": "b", "res": "res"}
            unit_members = MulRound.members(*args, stall)
            for port, suffix in ports.items():
                member = unit_members[port]
                members[f"{role}_{suffix}"] = (In if member.flow == wiring.In else Out)(member.shape).array(W)
        super().__init__(members)

    def _unit(self, role: str) -> MulRound:
        """A new :class:`MulRound` for ``role`` (``rd``, ``rnv`` or ``out``)."""
        args, product_regs, stall = self._units[role]
        return MulRound(*args, product_regs=product_regs, stall=stall)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        fx, W = self.fx, self.width
        m.submodules.recip = recip = Reciprocal(W, fx.rd_bits, fx)
        m.d.comb += [recip.start.eq(self.recip_start), recip.d.eq(Cat(*self.recip_d)), self.recip_done.eq(recip.done),
                     *(self.recip_q[i].eq(q) for i, q in enumerate(lanes(recip.q, W, fx.qw, is_signed=False)))]
        for i in range(W):
            m.submodules[f"exp{i}"] = unit = ExpPipe(fx, fx.d_bits)
            m.d.comb += [unit.d.eq(self.exp_d[i]), unit.alpha_q.eq(self.alpha_q), unit.alpha_sh.eq(self.alpha_sh),
                         self.exp[i].eq(unit.e)]
            for role in ("rd", "rnv"):
                m.submodules[f"{role}{i}"] = unit = self._unit(role)
                m.d.comb += [unit.a.eq(getattr(self, f"{role}_run")[i]), unit.b.eq(getattr(self, f"{role}_factor")[i]),
                             unit.add.eq(getattr(self, f"{role}_add")[i]), getattr(self, f"{role}_next")[i].eq(unit.res)]
            m.submodules[f"out{i}"] = unit = self._unit("out")
            m.d.comb += [unit.a.eq(self.out_a[i]), unit.b.eq(self.out_b[i]), unit.en.eq(self.out_en),
                         self.out_res[i].eq(unit.res)]
        return m
