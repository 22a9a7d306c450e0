"""1D vector unit: FuseMax's 1D array (running max, exp, add, rescale-multiply, reciprocal), ``width`` lanes.

One input beat is an operation on all lanes: ``op | a lanes | b lanes`` (the contract's
:func:`attnforge.sim.contract.designs.vector1d`; an exp command's b lanes hold the alpha word); the output beat is
the lane results. max/add/mul/exp take one cycle and stream back to back; recip runs the shared restoring
divider (``qw`` cycles) and blocks new input meanwhile. Opcodes and semantics are :data:`attnforge.sim.fusemax.golden.VEC_OPS`
and :func:`attnforge.sim.fusemax.golden.vector1d`.
"""

from __future__ import annotations

from amaranth import Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from attnforge.rtl.common import Reciprocal, exp_unit, pack_value, round_shift_const, stream_of, view
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
