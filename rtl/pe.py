"""MAC processing element: the 2D array's unit of work (QK and SLNV are both multiply-accumulates).

Two layers, so that every 2D array in the toolkit runs the same verified MAC:

* :class:`PECore`, the datapath: ``PE_PIPE`` free-running registers (operands, product, retimed product, for Fmax)
  in front of an accumulator that adds the product when told to and restarts at a run's first product. It never
  stalls and carries no tags: the caller delays its beat tags alongside (one tag line can serve a whole array).
  :class:`attnforge.rtl.array2d.Array2DCore` is a grid of them, and the FuseMax tile engine's 2D array is that grid.
* :class:`PE`, the stream block: a :class:`PECore` with its tag line and handshake. Input beats carry
  ``a | b << in_bits | last << 2*in_bits``; the PE accumulates ``a * b`` exactly in an ``acc_bits``-wide register
  sized for ``depth`` products (no overflow possible) and, after the beat flagged ``last``, offers the sum on its
  output stream ``PE_PIPE`` cycles later. Input is refused while a result waits, which is what gives the stream 2D
  array its drain-then-accumulate rhythm.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Cat, Module, Mux, Shape, ShapeCastable, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from attnforge.rtl.common import stream_of, view
from attnforge.rtl.dsp import registered_product
from attnforge.sim.contract import PE_PIPE, pe_acc_bits
from attnforge.sim.contract import designs as contract

__all__ = ["PE", "PECore", "StreamTags", "pe_acc_bits", "stream_tags"]


class PECore(wiring.Component):
    """The MAC datapath, free-running: ``prod`` is ``a * b`` of ``PE_PIPE`` cycles ago, one register per ECP5 DSP
    boundary: the operands (the broadcast across a 2D array is a long route on its own), the product (multiply
    alone), then retimed copies of the product (yosys does not absorb the product register into the MULT18X18D, and
    in an 8x8 array nextpnr placed the DSP far from the accumulator: two hops let each register sit near its end).
    The accumulate (carry chain alone) is the next stage: with ``acc_en``, ``acc`` takes ``sum``, which is ``prod``
    plus ``acc`` (plus 0 when ``first``: the product opens a new run). ``acc_en`` and ``first`` describe the
    product now on ``prod``, so the caller delays its tags by ``PE_PIPE``; the PE stream block, the stream 2D array
    and the FuseMax tile engine all build on this one core, so ``PE_PIPE`` in :mod:`attnforge.sim.contract` is one
    number for all of them and for their cycle models. ``sum`` is combinational (the tile engine captures a run's
    last sum into its S register in the same cycle as ``acc``).

    With ``tag_reg`` the PE registers ``acc_en`` and ``first`` itself: the caller gives them a cycle early (delayed
    by ``PE_PIPE - 1``), and each PE's accumulator reads its own copy. In an array, one shared tag register in front
    of every accumulator was a die-spanning route into the accumulate's carry chain (fusemax-top at 8x4 on ECP5:
    8.8 ns of routing from it to one PE); a copy per PE leaves that route a whole cycle to itself."""

    def __init__(self, a_shape: ShapeCastable, b_shape: ShapeCastable, acc_shape: ShapeCastable,
                 tag_reg: bool = False) -> None:
        assert PE_PIPE == 3, "operand registers, a product register and its copy: the DSP's three stages"
        self.tag_reg = tag_reg
        self.prod_shape = self.product_shape(a_shape, b_shape)
        super().__init__({
            "a": In(a_shape), "b": In(b_shape), "acc_en": In(1), "first": In(1),
            "prod": Out(self.prod_shape), "acc": Out(acc_shape), "sum": Out(acc_shape),
        })

    @staticmethod
    def product_shape(a_shape: ShapeCastable, b_shape: ShapeCastable) -> Shape:
        """The shape of ``prod``: signed, wide enough for any product of the operand shapes."""
        return signed(Shape.cast(a_shape).width + Shape.cast(b_shape).width)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        # operand registers, product register, its retimed copy: one DSP's three register stages (rtl/dsp.py)
        m.d.comb += self.prod.eq(registered_product(m, self.a, self.b, "mul", in_regs=True, pipe_reg=True))
        acc_en, first = self.acc_en, self.first
        if self.tag_reg:  # this PE's own copies, a cycle behind the ports
            acc_en, first = Signal(name="acc_en_r"), Signal(name="first_r")
            m.d.sync += [acc_en.eq(self.acc_en), first.eq(self.first)]
        m.d.comb += self.sum.eq(Mux(first, 0, self.acc) + self.prod)
        with m.If(acc_en):
            m.d.sync += self.acc.eq(self.sum)
        return m


@dataclass
class StreamTags:
    """A stream block's beat tags as they leave the ``PE_PIPE`` tag line, beside the product they describe."""

    valid: Value  #: a beat's product is on the cores' ``prod``
    last: Value  #: ... and it is its run's last
    first: Value  #: ... and its run's first
    busy: Value  #: a run's last beat is somewhere in the line (the stream refuses input meanwhile)


def stream_tags(m: Module, fire: Value, last: Value) -> StreamTags:
    """The tag line of a stream MAC block (the PE, the stream 2D array): valid, last and first ride ``PE_PIPE``
    free-running registers beside the :class:`PECore`'s data registers, which need no enables (what they hold is
    used only under the matching valid bit). A beat is its run's first when the previous taken beat was a last."""
    fresh = Signal(init=1)
    valid = [Signal(name=f"s{i}_valid") for i in range(PE_PIPE)]
    lasts = [Signal(name=f"s{i}_last") for i in range(PE_PIPE)]
    freshes = [Signal(name=f"s{i}_fresh") for i in range(PE_PIPE)]
    m.d.sync += valid[0].eq(fire)
    with m.If(fire):
        m.d.sync += [lasts[0].eq(last), freshes[0].eq(fresh), fresh.eq(last)]
    for i in range(1, PE_PIPE):
        m.d.sync += [valid[i].eq(valid[i - 1]), lasts[i].eq(lasts[i - 1]), freshes[i].eq(freshes[i - 1])]
    busy = Cat(*(v & la for v, la in zip(valid, lasts, strict=True))).any()
    return StreamTags(valid[-1], lasts[-1], freshes[-1], busy)


class PE(wiring.Component):
    """Signed MAC PE with stream in (a, b, last) and stream out (accumulated sum): a :class:`PECore` behind a
    handshake."""

    def __init__(self, in_bits: int = 8, depth: int = 64) -> None:
        self.in_bits, self.depth = in_bits, depth
        self.acc_bits = pe_acc_bits(in_bits, depth)
        self.contract = contract.pe(in_bits, depth)
        super().__init__({"i": In(stream_of(self.contract["i"])), "o": Out(stream_of(self.contract["o"]))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        beat = view(self.contract["i"], self.i.payload)
        a, b = Value.cast(beat.a), Value.cast(beat.b)
        m.submodules.core = core = PECore(a.shape(), b.shape(), signed(self.acc_bits))
        pending = Signal()
        fire = self.i.valid & self.i.ready
        tags = stream_tags(m, fire, beat.last)
        # While a run's last beat is still in the pipeline the input is refused, so a new run's first beat
        # cannot overwrite the sum before it has been offered.
        m.d.comb += [self.i.ready.eq(~pending & ~tags.busy), self.o.valid.eq(pending), self.o.payload.eq(core.acc),
                     core.a.eq(a), core.b.eq(b), core.acc_en.eq(tags.valid), core.first.eq(tags.first)]
        with m.If(tags.valid):
            m.d.sync += pending.eq(tags.last)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += pending.eq(0)
        return m
