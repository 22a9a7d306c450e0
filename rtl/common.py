"""Arithmetic building blocks shared by every RTL block, written to mirror :mod:`attnforge.sim.contract.fixedpoint`.

Keeping one definition of the rounding shift, the exponent unit and the restoring divider means the PE array,
the 1D vector unit and the tile engine cannot drift apart from each other or from the golden model. Also the one
adapter from the hardware contract's plain-data layouts (:mod:`attnforge.sim.contract`) to Amaranth: ports stay flat
unsigned (Yosys crashes on top-level ports typed with struct/array layouts), payload fields are read through a
:class:`amaranth.lib.data.View` and written with :func:`pack_value`, both by name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from amaranth import Cat, Const, Elaboratable, Module, Mux, Shape, Signal, Value, ValueCastable, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.wiring import In, Out

from attnforge.rtl.dsp import registered_product, sync_en
from attnforge.sim.contract import Array, Contract, Field, Layout, Struct, vmax_levels
from attnforge.sim.contract.fixedpoint import FixedPointConfig, clog2, exp2_table


def to_amaranth(layout: Layout) -> data.Layout | Shape:
    """The contract layout as an Amaranth shape: a field's ``signed``/``unsigned`` shape, an array's
    :class:`~amaranth.lib.data.ArrayLayout`, a struct's :class:`~amaranth.lib.data.StructLayout` (members in order,
    the first in the lowest bits, as the contract packs them)."""
    if isinstance(layout, Field):
        return signed(layout.width) if layout.signed else unsigned(layout.width)
    if isinstance(layout, Array):
        return data.ArrayLayout(to_amaranth(layout.elem), layout.count)
    return data.StructLayout({f.name: to_amaranth(f) for f in layout.fields})


def view(layout: Layout, value: Value) -> data.View | Value:
    """Read a flat payload by field name (a scalar layout gives the value itself, signed if the field is)."""
    if isinstance(layout, Field):
        v = Value.cast(value)
        return v.as_signed() if layout.signed else v.as_unsigned()
    return data.View(to_amaranth(layout), value)


def pack_value(layout: Layout, values: object) -> Value:
    """The flat payload of ``values`` (a mapping per struct, a sequence per array, a value or int per field): the
    Amaranth mirror of ``layout.pack``. Any member may instead be given whole, as an int or as a value already in its
    layout (a view, another payload). A value wider than its member keeps its low bits, as a slice would; a
    narrower one is an error, because concatenating it would shift every later field."""
    if isinstance(values, int):
        return Const(values, layout.width)
    if isinstance(values, (Value, ValueCastable)):
        v = Value.cast(values)
        assert len(v) >= layout.width, f"{layout.name}: {len(v)} bits for a {layout.width}-bit member"
        return v[:layout.width]
    if isinstance(layout, Struct):
        assert isinstance(values, Mapping)
        extra = set(values) - {f.name for f in layout.fields}
        assert not extra, f"{layout.name}: no members {sorted(extra)}"
        return Cat(*(pack_value(f, values[f.name]) for f in layout.fields))
    if isinstance(layout, Array):
        vals = list(values)  # type: ignore[call-overload]
        assert len(vals) == layout.count, f"{layout.name}: {len(vals)} values for {layout.count} lanes"
        return Cat(*(pack_value(layout.elem, v) for v in vals))
    raise TypeError(f"{layout.name}: cannot pack {values!r}")


def stream_of(layout: Layout) -> stream.Signature:
    """A stream signature whose payload is the layout's width, flat unsigned (see the module docstring)."""
    return stream.Signature(unsigned(layout.width))


def contract_ports(c: Contract) -> dict[str, wiring.Member]:
    """Every stream of a design's contract as a port of its component signature, in the contract's direction."""
    return {name: (In if s.direction == "in" else Out)(stream_of(s.layout)) for name, s in c.streams.items()}


def lanes(payload: Value, n: int, bits: int, is_signed: bool = True) -> list[Value]:
    """Slice a packed payload into its lanes."""
    out = [payload[i * bits:(i + 1) * bits] for i in range(n)]
    return [v.as_signed() for v in out] if is_signed else out


def round_shift_const(x: Value, s: int) -> Value:
    """``(x + 2**(s-1)) >> s``: round half towards +inf, as :func:`attnforge.sim.contract.fixedpoint.round_shift`."""
    return x if s == 0 else (x + (1 << (s - 1))) >> s


def round_shift_var(x: Value, s: Value) -> Value:
    """Rounding shift by a run-time amount: ``floor((x + 2**(s-1)) / 2**s)`` computed as ``(x >> s)`` plus bit
    ``s - 1`` of ``x`` (0 when ``s = 0``). Equal to adding the half before shifting, but the adder is as narrow as
    the shifted result instead of as wide as ``x``, off the barrel shifter's path (the softmax's critical path)."""
    return (x >> s) + ((x << 1) >> s)[0]


def round_shift_coarse(x: Value, s: Value, fine_bits: int) -> tuple[Value, Value]:
    """First half of a two-cycle :func:`round_shift_var`: shift by the multiple of ``2**fine_bits`` in ``s`` and keep
    the bit just below it (the round bit when the fine part is 0). Register both, then :func:`round_shift_fine`."""
    c = Cat(Const(0, fine_bits), s[fine_bits:])
    return x >> c, ((x << 1) >> c)[0]


def round_shift_fine(xc: Value, rb: Value, s: Value, fine_bits: int) -> Value:
    """Second half: shift by the low ``fine_bits`` of ``s`` and add the round bit (bit ``s - 1`` of the input)."""
    f = s[:fine_bits]
    return (xc >> f) + (Cat(rb, xc) >> f)[0]


def vmax(values: Sequence[Value]) -> Value:
    """Balanced comparator tree (signed values)."""
    vals = list(values)
    while len(vals) > 1:
        nxt = [Mux(a > b, a, b) for a, b in zip(vals[0::2], vals[1::2], strict=False)]
        if len(vals) % 2:
            nxt.append(vals[-1])
        vals = nxt
    return vals[0]


#: Unsigned operand bits one ECP5 MULT18X18D takes (18-bit signed inputs).
DSP_A_BITS = 17


def split_mul(m: Module, a: Value, b: Value, name: str, *, operand_regs: bool = False, product_regs: bool = False,
              en: Value | None = None) -> Value:
    """``a * b`` for a pipelined datapath, both operands cut into DSP-sized pieces (the top piece of a signed operand
    signed, the others unsigned), each partial product a :func:`attnforge.rtl.dsp.registered_product` (its registers
    added to ``m``, advancing with ``en`` when given); returns the value that adds the registered pieces back (the
    caller registers it in the next stage). Without the cut, yosys maps a wide product to several DSPs plus a carry
    chain in one cycle.

    Each flag adds one register stage (one cycle) for Fmax: ``operand_regs`` gives every partial product its own copy
    of its two operand pieces (off whatever mux or fan-out feeds it), ``product_regs`` registers each partial product
    a second time. In plain Amaranth yosys leaves these registers in the fabric; elaborated for synthesis
    (:func:`attnforge.rtl.dsp.dsp_primitives`) the operand and product registers are the DSP's own input and output
    registers. Both off (the default): one register stage, the partial products."""
    def pieces(v: Value) -> list[tuple[int, Value]]:
        v = Value.cast(v)
        out = []
        for off in range(0, len(v), DSP_A_BITS):
            p = v[off:off + DSP_A_BITS]
            out.append((off, p.as_signed() if v.shape().signed and off + DSP_A_BITS >= len(v) else p))
        return out

    terms: list[Value] = []
    for oa, pa in pieces(a):
        for ob, pb in pieces(b):
            r = registered_product(m, pa, pb, f"{name}_pp{oa}_{ob}", in_regs=operand_regs, pipe_reg=product_regs, en=en)
            terms.append(r << (oa + ob) if oa + ob else r)
    return sum(terms[1:], terms[0])


def vsum_pipelined(m: Module, values: Sequence[Value], shape: object, name: str) -> Value:
    """Balanced adder tree with a register after every level (its inputs are taken as they are: the caller's are
    registered already), ``clog2(len(values))`` cycles from the inputs to the result; no enable, the caller tracks
    validity with a matching shift register (see :func:`delay`)."""
    vals: list[Value] = list(values)
    lvl = 0
    while len(vals) > 1:
        nxt = [a + b for a, b in zip(vals[0::2], vals[1::2], strict=False)]
        if len(vals) % 2:
            nxt.append(vals[-1])
        regs = [Signal(shape, name=f"{name}_l{lvl}_{i}") for i in range(len(nxt))]
        m.d.sync += [r.eq(v) for r, v in zip(regs, nxt, strict=True)]
        vals, lvl = regs, lvl + 1
    return vals[0]


def onehot(idx: Value, n: int) -> Value:
    """``n`` bits, bit e set when ``idx == e`` (all zero for an index out of range)."""
    return Cat(*(idx == e for e in range(n)))


def and_or(sel: Value, words: Sequence[Value]) -> Value:
    """The word whose one-hot select bit is set (0 when none is). Why not a mux indexed by a counter: each select
    bit drives one word's AND terms, where a binary index's bits each reach every word through a decoder (on ECP5
    such reads, a counter's fan-out then a mux tree, were the Fmax paths of both tops)."""
    out: Value = Const(0, len(words[0]))
    for e, w in enumerate(words):
        out = out | Mux(sel[e], w, 0)
    return out


def delay(m: Module, value: Value, n: int, name: str, en: Value | None = None) -> list[Value]:
    """``value`` and its copies delayed 1..n cycles: element ``k`` is ``value`` as it was ``k`` cycles ago (``k``
    advancing cycles with ``en``, for a pipeline that stalls as a whole; free-running registers without). The tags
    (valid, flags, indices) that travel alongside a pipeline's data."""
    out: list[Value] = [value]
    for k in range(1, n + 1):
        r = Signal.like(Value.cast(value), name=f"{name}_d{k}")
        sync_en(m, en, [r.eq(out[-1])])
        out.append(r)
    return out


def exp_pipe(m: Module, d: Value, alpha_q: Value, alpha_sh: Value | tuple[Value, Value], cfg: FixedPointConfig, name: str,
             en: Value | None = None, kill: Value | None = None) -> Value:
    """The exponent unit as ``FM_EXP_PIPE`` - 1 free-running register stages behind the (registered) distance ``d``:
    operand copies per DSP, partial products by alpha, their second register (:func:`split_mul`'s two flags: on
    ECP5 a bare register -> DSP -> register path was the tile's critical path, 4-6 ns of routing on each side of the
    DSP's 3.9), their sum, coarse and fine rounding shift, ROM; returns the shifter's output
    (combinational), which is ``2**(-d * alpha)`` for the distance of ``FM_EXP_PIPE - 1`` cycles ago: the caller's
    register on it is the last stage. Same arithmetic as :func:`exp_unit` (:func:`round_shift_var` in two steps).

    ``alpha_sh`` is read by the coarse and the fine shift stage, 4 and 5 cycles after ``d``: a run constant, or a pair
    (the value for the coarse stage, for the fine stage) where the constant changes from beat to beat. With ``en``
    every register waits for it (a pipeline that stalls as a whole).

    An underflow (argument past the ROM's range) and ``kill`` (read with the ROM stage's inputs, ``FM_EXP_PIPE - 2``
    cycles after ``d``: a caller's "this result is 0", e.g. a hidden key) zero the ROM register and its round bit,
    so the last stage is the fine shift and its rounding add alone: a zero select after that add, and the caller's
    own one in front of its register, were two LUT levels and their routes on fusemax-top's ECP5 critical path."""
    sh_coarse, sh_fine = alpha_sh if isinstance(alpha_sh, tuple) else (alpha_sh, alpha_sh)
    pp_sum = split_mul(m, d, alpha_q, f"{name}_da", operand_regs=True, product_regs=True, en=en)
    prod = Signal(len(d) + len(alpha_q), name=f"{name}_prod")
    xc = Signal(len(prod), name=f"{name}_xc")
    xrb = Signal(name=f"{name}_xrb")
    targ = Signal(cfg.t_bits, name=f"{name}_targ")
    rom = Signal(cfg.prob_bits, name=f"{name}_rom")
    rrb = Signal(name=f"{name}_rrb")
    rsh = Signal(clog2(cfg.p_frac + 1), name=f"{name}_rsh")
    lut, sh, zero = exp2_rom(m, targ, cfg, name)
    z = zero if kill is None else zero | kill
    # the ROM stage also takes the coarse part of the result's rounding shift (same split as the argument's): the
    # whole variable shift, its rounding add and the zero select after the ROM register were the ECP5 Fmax path
    # of fusemax-top once the operand reads were fixed (10.9 ns)
    sync_en(m, en, [prod.eq(pp_sum), *(x.eq(v) for x, v in zip((xc, xrb), round_shift_coarse(prod, sh_coarse, EXP_FINE),
                                                                     strict=True)),
                    targ.eq(round_shift_fine(xc, xrb, sh_fine, EXP_FINE)),
                    *(x.eq(Mux(z, 0, v)) for x, v in zip((rom, rrb), round_shift_coarse(lut, sh, EXP_SCALE_FINE),
                                                           strict=True)),
                    rsh.eq(sh)])
    return round_shift_fine(rom, rrb, rsh, EXP_SCALE_FINE)  # 0 >> s plus a 0 round bit is 0


class ExpPipe(wiring.Component):
    """:func:`exp_pipe` as its own module, with its own register copy of the exponent constant (one cycle behind
    the ``alpha_q`` / ``alpha_sh`` inputs, which are run constants). In an array of exponent units one shared
    constant register drives every shifter and multiplier (on ECP5 its routing alone took 11.7 ns at 4x4); with
    the hierarchy kept in synthesis (``--keep-hierarchy``) each unit's copy stays next to it. ``e`` is the
    exponential of the ``d`` of ``FM_EXP_PIPE - 1`` cycles earlier, as for :func:`exp_pipe`.

    Two options for a stream block that feeds it a new constant with every beat (the 1D vector unit's exp command):
    ``per_beat`` delays ``alpha_sh`` alongside the product to the two shift stages that read it (without, it is a run
    constant, read as it is now), and ``stall`` adds an ``en`` input that holds every register (the unit then counts
    advancing cycles, not cycles). ``kill`` adds a ``kill`` input that makes the result 0, read ``FM_EXP_PIPE - 2``
    cycles after ``d`` (see :func:`exp_pipe`): a caller that zeroes some results (the tile engine's hidden keys)
    keeps its select off the output."""

    def __init__(self, cfg: FixedPointConfig, d_bits: int, *, per_beat: bool = False, stall: bool = False,
                 kill: bool = False) -> None:
        self.cfg, self.per_beat, self.stall, self.has_kill = cfg, per_beat, stall, kill
        members = {"d": In(d_bits), "alpha_q": In(cfg.alpha_bits), "alpha_sh": In(cfg.alpha_shift_bits),
                   "e": Out(cfg.prob_bits)}
        super().__init__(members | ({"en": In(1)} if stall else {}) | ({"kill": In(1)} if kill else {}))

    def elaborate(self, platform: object) -> Module:
        m = Module()
        en = self.en if self.stall else None
        aq, ash = Signal.like(self.alpha_q, name="aq"), Signal.like(self.alpha_sh, name="ash")
        sync_en(m, en, [aq.eq(self.alpha_q), ash.eq(self.alpha_sh)])
        sh: Value | tuple[Value, Value] = ash
        if self.per_beat:  # ash is aligned with d; the coarse shift reads it 4 cycles later, the fine one 5
            line = [ash]
            for k in range(1, 6):
                line.append(Signal.like(ash, name=f"ash_d{k}"))
                sync_en(m, en, [line[k].eq(line[k - 1])])
            sh = (line[4], line[5])
        m.d.comb += self.e.eq(exp_pipe(m, self.d, aq, sh, self.cfg, "x", en, self.kill if self.has_kill else None))
        return m


#: Bits of the exponent argument's shift handled by the fine stage of :func:`exp_pipe` (the rest by the coarse one).
EXP_FINE = 3
#: Bits of the exponential's own rounding shift (by the argument's integer part) left to the stage after the ROM
#: register in :func:`exp_pipe` (the rest is done beside the ROM lookup).
EXP_SCALE_FINE = 2


def vmax_pipelined(m: Module, values: Sequence[Value], shape: object, name: str) -> Signal:
    """Comparator tree with the inputs registered and a register after every level: one compare-and-select per
    cycle, ``vmax_levels`` cycles from the inputs to the result (no enable: the caller tracks validity with a
    matching shift register)."""
    regs = [Signal(shape, name=f"{name}_in{i}") for i in range(len(values))]
    m.d.sync += [r.eq(v) for r, v in zip(regs, values, strict=True)]
    vals: list[Value] = regs
    for lvl in range(vmax_levels(len(values)) - 1):
        nxt = [Mux(a > b, a, b) for a, b in zip(vals[0::2], vals[1::2], strict=False)]
        if len(vals) % 2:
            nxt.append(vals[-1])
        regs = [Signal(shape, name=f"{name}_l{lvl}_{i}") for i in range(len(nxt))]
        m.d.sync += [r.eq(v) for r, v in zip(regs, nxt, strict=True)]
        vals = regs
    return vals[0]


def vsum(values: Sequence[Value]) -> Value:
    """Balanced adder tree."""
    vals = list(values)
    while len(vals) > 1:
        nxt = [a + b for a, b in zip(vals[0::2], vals[1::2], strict=False)]
        if len(vals) % 2:
            nxt.append(vals[-1])
        vals = nxt
    return vals[0]


def exp_unit(m: Module, d: Value, alpha_q: Value, alpha_sh: Value, cfg: FixedPointConfig, name: str) -> Signal:
    """``2**(-d * alpha)`` in Q1.p_frac: one multiply by alpha, a rounding shift, a 2**tf-entry ROM and a shifter.

    Mirrors :func:`sim.fusemax.golden.exp_unit` (``round_shift(d * alpha_q, alpha_sh)`` then ``exp2_neg``). Combinational;
    a pipelined datapath registers between :func:`exp_arg` and :func:`exp2_neg` (and after the product) instead.
    """
    return exp2_neg(m, exp_arg(m, d * alpha_q, alpha_sh, cfg, name), cfg, name)


def exp_arg(m: Module, prod: Value, alpha_sh: Value, cfg: FixedPointConfig, name: str) -> Signal:
    """The exponent unit's first half: ``t = round_shift(d * alpha_q, alpha_sh)`` from the product ``d * alpha_q``."""
    t = Signal(cfg.t_bits, name=f"{name}_t")
    m.d.comb += t.eq(round_shift_var(prod, alpha_sh))
    return t


def exp2_neg(m: Module, t: Value, cfg: FixedPointConfig, name: str) -> Value:
    """The exponent unit's second half: ``2**(-t / 2**tf)`` by a 2**tf-entry ROM on the fraction and a rounding
    shift by the integer part (0 once it exceeds p_frac), as :func:`attnforge.sim.fusemax.golden.exp2_neg`. A pipelined datapath
    registers between :func:`exp2_rom` and :func:`exp2_scale` instead."""
    return exp2_scale(*exp2_rom(m, t, cfg, name))


def exp2_rom(m: Module, t: Value, cfg: FixedPointConfig, name: str) -> tuple[Signal, Value, Value]:
    """ROM value of the fraction of ``t``, the shift (integer part) and whether the result underflows to 0."""
    lut = Signal(cfg.prob_bits, name=f"{name}_lut")
    with m.Switch(t[:cfg.tf]):
        for k, val in enumerate(exp2_table(cfg.tf, cfg.p_frac)):
            with m.Case(k):
                m.d.comb += lut.eq(val)
    n = t[cfg.tf:]
    return lut, n[:clog2(cfg.p_frac + 1)], n > cfg.p_frac


def exp2_scale(lut: Value, sh: Value, zero: Value) -> Value:
    return Mux(zero, 0, round_shift_var(lut, sh))


class Reciprocal(wiring.Component):
    """Restoring divider, ``lanes`` in parallel: ``floor(2**rb / d)`` in ``qw`` cycles, one quotient bit each.

    The dividend is a power of two, so the first ``rb + 1 - qw`` steps are known to leave remainder
    ``2**(rb - qw)`` with zero quotient bits (``d >= 2**p_frac``): the divider starts there and needs only
    ``qw`` iterations. Below the domain (``d < 2**p_frac``) it saturates like :func:`attnforge.sim.fusemax.golden.reciprocal`.
    Interface: pulse ``start`` with ``d`` valid; ``done`` pulses when ``q`` holds the results.
    """

    def __init__(self, n_lanes: int, d_bits: int, cfg: FixedPointConfig) -> None:
        self.n_lanes, self.d_bits, self.cfg = n_lanes, d_bits, cfg
        super().__init__({
            "start": In(1),
            "d": In(unsigned(n_lanes * d_bits)),
            "q": Out(unsigned(n_lanes * cfg.qw)),
            "busy": Out(1),
            "done": Out(1),
        })

    def elaborate(self, platform: object) -> Module:
        m = Module()
        cfg = self.cfg
        cnt = Signal(range(cfg.qw + 1))
        ds = [Signal(self.d_bits, name=f"d{i}") for i in range(self.n_lanes)]
        rs = [Signal(self.d_bits + 1, name=f"r{i}") for i in range(self.n_lanes)]
        qs = [Signal(cfg.qw, name=f"q{i}") for i in range(self.n_lanes)]
        low = [Signal(name=f"low{i}") for i in range(self.n_lanes)]
        m.d.comb += self.q.eq(Cat(*qs))
        m.d.sync += self.done.eq(0)
        d_in = lanes(self.d, self.n_lanes, self.d_bits, is_signed=False)
        with m.If(self.start):
            m.d.sync += [self.busy.eq(1), cnt.eq(0)]
            for i in range(self.n_lanes):
                m.d.sync += [ds[i].eq(d_in[i]), rs[i].eq(1 << (cfg.rb - cfg.qw)), qs[i].eq(0),
                             low[i].eq(d_in[i] < (1 << cfg.p_frac))]
        with m.Elif(self.busy):
            for i in range(self.n_lanes):
                r2 = Cat(Const(0, 1), rs[i])
                ge = r2 >= ds[i]
                m.d.sync += [rs[i].eq(Mux(ge, r2 - ds[i], r2)), qs[i].eq(Cat(ge, qs[i]))]
            m.d.sync += cnt.eq(cnt + 1)
            with m.If(cnt == cfg.qw - 1):
                m.d.sync += [self.busy.eq(0), self.done.eq(1)]
                for i in range(self.n_lanes):
                    with m.If(low[i]):
                        m.d.sync += qs[i].eq((1 << cfg.qw) - 1)
        return m


__all__ = [
    "and_or",
    "onehot",
    "contract_ports",
    "pack_value",
    "stream_of",
    "to_amaranth",
    "view",
    "round_shift_coarse",
    "round_shift_fine",
    "DSP_A_BITS",
    "split_mul",
    "vsum_pipelined",
    "delay",
    "exp_pipe",
    "sync_en",
    "ExpPipe",
    "EXP_FINE",
    "Reciprocal",
    "exp2_neg",
    "exp2_rom",
    "exp2_scale",
    "exp_arg",
    "exp_unit",
    "lanes",
    "round_shift_const",
    "round_shift_var",
    "signed",
    "vmax",
    "vmax_levels",
    "vmax_pipelined",
    "vsum",
]


class LocalReg(Elaboratable):
    """One register in a module of its own: ``q`` is ``d`` of the cycle before.

    Why a module: yosys merges registers with the same input inside a module (opt_merge; a ``keep`` attribute on
    the wire does not stop it), so copies of a high-fan-out control register made in one module end up one register
    again, its net spanning every lane. Under synthesis without flattening (``attnforge synth --keep-hierarchy``)
    each ``LocalReg`` stays a register of its own, which the placer puts next to the lane that reads it. In
    simulation it is a plain register."""

    def __init__(self, shape: int, name: str) -> None:
        self.d = Signal(shape, name=f"{name}_d")
        self.q = Signal(shape, name=f"{name}_q")

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.d.sync += self.q.eq(self.d)
        return m


def local_copies(m: Module, value: Value, n: int, name: str) -> list[Signal]:
    """``n`` copies of ``value`` registered (one cycle later), each a :class:`LocalReg` of its own: one per lane that
    reads it, in place of one register whose fan-out spans the lanes."""
    out = []
    for i in range(n):
        m.submodules[f"{name}{i}"] = r = LocalReg(len(Value.cast(value)), f"{name}{i}")
        m.d.comb += r.d.eq(value)
        out.append(r.q)
    return out


class SkidBuffer(wiring.Component):
    """A registered stream slice: ``valid``/``payload`` and ``ready`` each leave a register, so neither the
    forward nor the backward handshake path runs through it combinationally (it cuts a long chain of blocks'
    handshakes into two timing paths).

    Why two entries: with only the output register, ``i.ready`` would have to follow ``o.ready`` in the same cycle
    (or the slice would take a beat every other cycle); the second (skid) register catches the one beat the
    producer sends in the cycle it cannot yet see the stall, so the slice passes one beat per cycle. Every beat
    is one cycle later than without the slice (``SKID_LATENCY`` in the contract's depths) while the consumer
    takes beats as they come; when the consumer stalls the slice holds up to two beats.
    """

    def __init__(self, width: int) -> None:
        self.width = width
        super().__init__({"i": In(stream.Signature(unsigned(width))), "o": Out(stream.Signature(unsigned(width)))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        out_v, sk_v = Signal(name="out_valid"), Signal(name="skid_valid")
        m.d.comb += [self.o.valid.eq(out_v), self.i.ready.eq(~sk_v)]
        take = self.o.ready | ~out_v  # the output register loads: the skid beat if there is one, else the input's
        sk_next, out_next = ~take & (sk_v | self.i.valid), Mux(take, sk_v | self.i.valid, out_v)
        m.d.sync += [sk_v.eq(sk_next), out_v.eq(out_next)]
        # The data move in chunks, each with its own copy of the two valid flags (LocalRegs loaded with the same
        # next values, so equal to them in every cycle): the flags select every data bit, and on ECP5 one skid
        # flag's route over a 220-bit slice's two registers took 11 ns in spatten-top.
        chunks = [(lo, min(lo + _SKID_CHUNK, self.width)) for lo in range(0, self.width, _SKID_CHUNK)]
        for c, (lo, hi) in enumerate(chunks):
            if len(chunks) == 1:
                out_c, sk_c = out_v, sk_v
            else:
                out_c, sk_c = (local_copies(m, nxt, 1, f"{nm}{c}_")[0] for nxt, nm in ((out_next, "ov"), (sk_next, "sv")))
            out_d, sk_d = Signal(hi - lo, name=f"out_data{c}"), Signal(hi - lo, name=f"skid_data{c}")
            m.d.comb += self.o.payload[lo:hi].eq(out_d)
            with m.If(self.o.ready | ~out_c):
                m.d.sync += out_d.eq(Mux(sk_c, sk_d, self.i.payload[lo:hi]))
            # the skid register copies the input whenever it is empty, so only its valid flag depends on the
            # input's valid (with the data enable on ``i.valid``, the producer's valid logic drove every data bit's
            # clock enable: on ECP5 that fan-out ended spatten-top's critical path)
            with m.If(~sk_c):
                m.d.sync += sk_d.eq(self.i.payload[lo:hi])
        return m


#: Data bits per copy of a SkidBuffer's valid flags.
_SKID_CHUNK = 32


class HeadRegFIFO(wiring.Component):
    """A FIFO with :class:`amaranth.lib.fifo.SyncFIFO`'s ports and timing (an entry written to an empty queue is
    readable the next cycle) whose head is a register: ``r_data`` leaves a flip-flop, so the LUT-RAM read sits in
    front of that register instead of in front of the consumer's logic (on ECP5 the LUT-RAM read and its route into
    spatten-top's list compaction were a critical path). A write goes straight to the head when the head is free
    after this cycle and the body is empty; otherwise to the body, whose first entry moves up when the head is taken.
    ``depth`` entries in all: the head and ``depth - 1`` in the body (the head is empty only while the body is).
    With ``zero_empty`` the head is zeroed when the queue empties, so ``r_data`` is 0 whenever ``r_rdy`` is low: a
    consumer can then OR a few flag bits into an idle output instead of a mux over every bit."""

    def __init__(self, width: int, depth: int, zero_empty: bool = False) -> None:
        if depth < 2:
            raise ValueError(f"HeadRegFIFO needs depth >= 2, got {depth}")
        self.width, self.depth, self.zero_empty = width, depth, zero_empty
        super().__init__({"w_en": In(1), "w_data": In(width), "w_rdy": Out(1),
                          "r_en": In(1), "r_data": Out(width), "r_rdy": Out(1)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.body = body = SyncFIFO(width=self.width, depth=self.depth - 1)
        head_v, head = Signal(name="head_valid"), Signal(self.width, name="head")
        free = ~head_v | self.r_en  # the head is empty after this cycle unless refilled
        direct = free & ~body.r_rdy  # a write now goes straight to the head
        m.d.comb += [self.r_data.eq(head), self.r_rdy.eq(head_v), self.w_rdy.eq(body.w_rdy | direct),
                     body.w_en.eq(self.w_en & ~direct), body.w_data.eq(self.w_data), body.r_en.eq(free)]
        with m.If(free):
            refill = Mux(self.w_en, self.w_data, 0) if self.zero_empty else self.w_data
            m.d.sync += [head_v.eq(body.r_rdy | self.w_en), head.eq(Mux(body.r_rdy, body.r_data, refill))]
        return m


def credit_room(m: Module, depth: int, used: Value, freed: Value, room: Signal, reserve: int = 1) -> None:
    """The credit count of a never-stalling pipeline in front of a ``depth``-entry output FIFO: ``used`` takes a
    credit (a beat that will need an entry), ``freed`` gives one back (a pop); ``room`` (a register the caller
    owns, init 1) is whether at least ``reserve`` credits are left after this cycle's changes. A producer issues
    only on ``room``, so the consumer's ready reaches the FIFO's read side and no pipeline register's enable.
    ``reserve`` 2 covers a beat taken but counted a cycle late (a registered ``used``)."""
    credits = Signal(range(depth + 1), init=depth, name=f"{room.name}_credits")
    m.d.sync += credits.eq(credits - used + freed)

    def at_least(c: int) -> Value:  # ``credits >= c`` as equalities (LUTs, not a carry chain)
        return Cat(Const(0, 1), *(credits == v for v in range(max(c, 0), depth + 1))).any()

    # ``credits - used + freed >= reserve`` with the late inputs (``used``, ``freed``: a consumer's ready, a FIFO's
    # level) only choosing among compares of the register: the add and compare in front of ``room`` were a carry
    # chain after the softmax output FIFO's level in spatten-top, a critical path on ECP5
    m.d.sync += room.eq(Mux(used & ~freed, at_least(reserve + 1), Mux(freed & ~used, at_least(reserve - 1),
                                                                       at_least(reserve))))


class OneHotFSM:
    """A state machine kept as one flip-flop per state (``state``, the first state's bit set at reset).

    Why not ``m.FSM()``: Amaranth encodes its states in binary and yosys cannot recode them (its ``fsm`` pass
    rejects Amaranth's state register: "incomplete input selection tree root"), so every state test is a decode of
    several bits in front of the enables it drives; in spatten-top on ECP5 the top-k's state decode and its route
    into the job registers' enables was the critical path. Here a state test is one flip-flop. Use it as ``m.FSM``
    is used: one ``with m.If(fsm.ongoing(s))`` per state body (the states exclude each other, so no Elif chain is
    needed) and :meth:`next` where ``m.next = s`` would be; a later :meth:`next` in the same cycle wins, as a later
    ``m.next`` does."""

    def __init__(self, states: Sequence[str], name: str) -> None:
        if len(set(states)) != len(states) or not states:
            raise ValueError(f"OneHotFSM {name!r} needs distinct state names, got {list(states)}")
        self.states = tuple(states)
        self.state = Signal(len(states), init=1, name=name)

    def _index(self, state: str) -> int:
        if state not in self.states:
            raise ValueError(f"OneHotFSM: no state {state!r}; states are {', '.join(self.states)}")
        return self.states.index(state)

    def ongoing(self, state: str) -> Value:
        """Whether the machine is in ``state``: its flip-flop."""
        return self.state[self._index(state)]

    def next(self, m: Module, state: str) -> None:
        """Enter ``state`` at the next clock edge (under the conditions this is called in)."""
        m.d.sync += self.state.eq(1 << self._index(state))
