"""1D vector unit: FuseMax's 1D array (running max, exp, add, rescale-multiply, reciprocal), ``width`` lanes.

Two layers, as for the PE and the 2D array (:mod:`attnforge.rtl.pe`, :mod:`attnforge.rtl.array2d`), so that the
stream block and the FuseMax tile engine run the same verified operators:

* the operator units, free-running (no tags, no handshake; the caller delays its tags alongside):
  :class:`MulRound`, the pipelined ``round_shift(a * b, shift) + add`` (the rescale of a running sum by a factor,
  ``FM_ACC_PIPE``, and the output multiply of ``FM_OUT_PIPE``), the pipelined exponent unit
  :class:`attnforge.rtl.common.ExpPipe` (``FM_EXP_PIPE``) and the restoring divider
  :class:`attnforge.rtl.common.Reciprocal`. :class:`Vector1DCore` is ``width`` lanes of them, the tile engine's 1D
  array (PRM exponent, RD and RNV rescales, output multiply, one shared reciprocal).
* :class:`Vector1D`, the stream block (design ``vector1d``). One input beat is an operation on all lanes:
  ``op | a lanes | b lanes`` (the contract's :func:`attnforge.sim.contract.designs.vector1d`; an exp command's b
  lanes hold the alpha word); the output beat is the lane results, in command order. mul is a :class:`MulRound`,
  exp a distance register and an :class:`attnforge.rtl.common.ExpPipe`, recip the shared
  :class:`attnforge.rtl.common.Reciprocal`; max and add are one comparator or adder. Each op has its own latency
  (:func:`attnforge.sim.contract.depths.vec_latency`: 1, 4, 9 and ``qw + 2`` cycles), ops of one kind stream back
  to back, and a command waits while its result would overtake or land on an older one's; the exact count is
  :func:`attnforge.sim.fusemax.cycle_model.vector1d_cycles`. Opcodes and semantics are
  :data:`attnforge.sim.fusemax.golden.VEC_OPS` and :func:`attnforge.sim.fusemax.golden.vector1d`.
"""
from __future__ import annotations

from amaranth import Cat, Const, Module, Mux, Shape, ShapeCastable, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from attnforge.rtl.common import (
    ExpPipe,
    Reciprocal,
    delay,
    lanes,
    pack_value,
    split_mul,
    stream_of,
    sync_en,
    view,
)
from attnforge.sim.contract import FM_ACC_PIPE, FM_OUT_PIPE, vec_latency
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.designs import VEC_OPS
from attnforge.sim.contract.fixedpoint import FixedPointConfig


class Vector1D(wiring.Component):
    """``width``-lane 1D array with a command stream in and a result stream out, built from the pipelined units of
    the tile engine's 1D array: per lane a :class:`MulRound` for mul and an :class:`attnforge.rtl.common.ExpPipe`
    (behind a distance register) for exp, one shared :class:`attnforge.rtl.common.Reciprocal`; max and add are one
    adder or comparator into the output register."""

    def __init__(self, width: int = 4, data_bits: int = 40, max_keys: int = 256) -> None:
        self.width, self.data_bits, self.max_keys = width, data_bits, max_keys
        self.cfg = FixedPointConfig(max_keys=max_keys, rows=1)
        if data_bits < max(self.cfg.alpha_bits + self.cfg.alpha_shift_bits, self.cfg.qw + 1, self.cfg.d_bits):
            raise ValueError("data_bits too narrow for the exp/recip operands")
        self.contract = contract.vector1d(width, data_bits, max_keys)
        super().__init__({"i": In(stream_of(self.contract["i"])), "o": Out(stream_of(self.contract["o"]))})

    def elaborate(self, platform: object) -> Module:
        """The output register ``res`` is every op's last stage; the whole datapath advances when it is free or being
        taken (``adv``), so a stalled output holds every unit still. A beat is taken only when its result cannot
        collide with, or overtake, an older one still in a unit (:func:`_may_issue`); a recip only into an empty
        datapath, and nothing else until its quotient is in ``res``. So ``i.ready`` depends on the offered opcode
        (the beat must be held while it is offered, as the stream rules require anyway)."""
        m = Module()
        cfg, W, D = self.cfg, self.width, self.data_bits
        beat = view(self.contract["i"], self.i.payload)
        is_op = {name: beat.op == code for name, code in VEC_OPS.items()}
        m.submodules.recip = recip = Reciprocal(W, D, cfg)
        res = [Signal(signed(D), name=f"res{i}") for i in range(W)]
        pending = Signal()  # res holds a result not yet taken
        adv, fire = Signal(), Signal()
        # one-bit tags beside each unit: the last is high when the op's result is on its unit's output
        mul_t = delay(m, fire & is_op["mul"], vec_latency("mul", cfg.qw) - 1, "mul_t", adv)[1:]
        exp_t = delay(m, fire & is_op["exp"], vec_latency("exp", cfg.qw) - 1, "exp_t", adv)[1:]
        lines = {"mul": mul_t, "exp": exp_t}
        one_cycle = ~is_op["mul"] & ~is_op["exp"] & ~is_op["recip"]  # max, add (and an undefined opcode)
        may = Mux(is_op["mul"], _may_issue(lines, vec_latency("mul", cfg.qw)),
                  is_op["exp"] | _may_issue(lines, 1))  # an exp is the longest: it never overtakes
        m.d.comb += [adv.eq(~pending | self.o.ready), fire.eq(self.i.valid & self.i.ready),
                     self.i.ready.eq(adv & ~recip.busy & ~recip.done & may),
                     self.o.valid.eq(pending), self.o.payload.eq(pack_value(self.contract["o"], res)),
                     recip.start.eq(fire & is_op["recip"]), recip.d.eq(beat.a.as_value())]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += pending.eq(0)
        for i in range(W):
            a, b = beat.a[i], beat.b[i]
            mul, e = self._lane_units(m, i, a, b, adv)
            with m.If(adv):
                with m.If(fire & one_cycle):
                    m.d.sync += res[i].eq(Mux(is_op["add"], a + b, Mux(a > b, a, b)))
                with m.If(mul_t[-1]):
                    m.d.sync += res[i].eq(mul)
                with m.If(exp_t[-1]):
                    m.d.sync += res[i].eq(e)
            with m.If(recip.done):
                m.d.sync += res[i].eq(recip.q[i * cfg.qw:(i + 1) * cfg.qw])
        with m.If(adv & ((fire & one_cycle) | mul_t[-1] | exp_t[-1]) | recip.done):
            m.d.sync += pending.eq(1)
        return m

    def _lane_units(self, m: Module, i: int, a: Value, b: Value, adv: Value) -> tuple[Value, Value]:
        """Lane ``i``'s mul and exp units, fed from the command beat and advancing with the output: the product
        ``round_shift(a * b, p_frac)`` of ``vec_latency('mul') - 1`` advancing cycles earlier (the tile's rescale
        with nothing added) and the exponential of the ``a`` of ``vec_latency('exp') - 1`` cycles earlier, its
        alpha word from the same beat's ``b`` (the unit delays its shift amount alongside)."""
        cfg = self.cfg
        m.submodules[f"mul{i}"] = mul = MulRound(signed(self.data_bits), signed(self.data_bits), cfg.p_frac, stall=True)
        al = view(self.contract.words["exp_operand"], b[:self.contract.words["exp_operand"].width])
        dist = Signal(cfg.d_bits, name=f"dist{i}")  # the distance register in front of the exponent unit
        with m.If(adv):
            m.d.sync += dist.eq(a.as_unsigned()[:cfg.d_bits])
        m.submodules[f"exp{i}"] = unit = ExpPipe(cfg, cfg.d_bits, per_beat=True, stall=True)
        m.d.comb += [mul.a.eq(a), mul.b.eq(b), mul.en.eq(adv), unit.d.eq(dist), unit.alpha_q.eq(al.alpha_q),
                     unit.alpha_sh.eq(al.alpha_sh), unit.en.eq(adv)]
        return mul.res, unit.e



def _may_issue(lines: dict[str, list[Signal]], latency: int) -> Value:
    """Whether an op of ``latency`` may be taken now: no older op in a unit has ``latency`` or more advancing cycles
    to go (its result would land on, or after, the new one's). A tag at element ``k - 1`` of a line of ``n`` has
    ``n + 1 - k`` cycles to go."""
    busy = [line[k - 1] for line in lines.values() for k in range(1, len(line) + 2 - latency)]
    return ~Cat(*busy).any() if busy else Const(1)


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
        en = self.en if self.stall else None
        pp_sum = split_mul(m, self.a, self.b, "m", operand_regs=self.operand_regs, product_regs=self.product_regs, en=en)
        acc = Signal(self.sum_shape, name="sum")
        sync_en(m, en, [acc.eq(pp_sum + (1 << (self.shift - 1)))])
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
      and RNV by the same PRM in overlapping cycles (RD after a tile's SLN, RNV during its SLNV). Their operand copies
      (one per DSP) keep the PRM buffer's parity select and the route to the DSPs apart (on ECP5 the two together
      were the critical path); they have no second product register, because one more stage would raise ``fm_min_f``
      (f >= 9 at 8 rows, where the default f is 8).
    * ``out``: the output multiply :class:`MulRound`, ``out_res[i] = round_shift(out_a[i] * out_b[i], rb - out_frac)``
      of ``FM_OUT_PIPE - 2`` advancing cycles earlier (operand copies, partial products, their copies, sum), every
      stage held while ``out_en`` is low.

    And one :class:`attnforge.rtl.common.Reciprocal` over all lanes (``recip_d``, ``recip_start``, ``recip_q``,
    ``recip_done``): the restoring divider is iterative, so one shared unit costs no throughput (FuseMax divides
    once per query tile). The core holds no state of the algorithm (RM, PRM, RD, RNV and their valid tags are the
    caller's, as a :class:`attnforge.rtl.pe.PECore`'s tags are). :class:`Vector1D` builds on the same unit classes,
    not on this core: its operands are ``data_bits``-wide signed lanes and it needs one multiplier per lane, not
    three."""

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
