"""2D PE array (rows x cols), output stationary, built from :class:`attnforge.rtl.pe.PECore` instances.

Two layers, as for the PE:

* :class:`Array2DCore`, the grid: ``rows`` x ``cols`` :class:`attnforge.rtl.pe.PECore` submodules, ``row[r]``
  broadcast along row ``r`` and ``col[c]`` down column ``c``, so PE(r, c) multiplies ``row[r] * col[c]``; optionally
  a per-PE ``local`` operand that replaces the column one (FuseMax's SLNV multiplies each PE's own probability by
  the V row). One ``acc_en`` / ``first`` pair drives every accumulator, so the caller keeps one tag line for the
  whole grid. The FuseMax tile engine's 2D array is an :class:`Array2DCore`.
* :class:`Array2D`, the stream block: an :class:`Array2DCore` with the PE's tag line and handshake. Each input beat
  broadcasts ``a[r]`` along row ``r`` and ``b[c]`` down column ``c`` (FuseMax's QK: K rows over the m0 rank, Q
  columns over p0), so PE(r, c) accumulates ``sum_e a[e, r] * b[e, c]``. The beat flagged ``last`` ends the
  accumulation; the array then drains one row per output beat (``cols`` lanes of ``acc_bits``), and takes no input
  until the last row has been taken.
"""

from __future__ import annotations

from functools import reduce

from amaranth import Cat, Module, ShapeCastable, Signal, Value, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from attnforge.rtl.common import pack_value, stream_of, view
from attnforge.rtl.pe import PECore, stream_tags
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract import pe_acc_bits

__all__ = ["Array2D", "Array2DCore", "vor"]


def vor(values: list[Value]) -> Value:
    """Bitwise OR of equally wide values."""
    return reduce(lambda a, b: a | b, values)


class Array2DCore(wiring.Component):
    """``rows`` x ``cols`` free-running :class:`attnforge.rtl.pe.PECore` instances with row and column operand
    broadcast. ``prod[r][c]``, ``acc[r][c]`` and ``sum[r][c]`` are PE(r, c)'s ports; ``acc_en`` and ``first`` reach
    every PE and describe the products now on ``prod`` (``PE_PIPE`` cycles after their operands). With ``local``
    the column operand is per PE: PE(r, c) takes ``local[r][c]`` (no ``col`` ports), for a caller that selects
    each PE's operand into its own register. (A select here, between a shared register and the PE's operand
    register, which in synthesis is the DSP's own input register, put two LUT levels and two 4-5 ns routes on the
    FuseMax top's critical path on ECP5.) With ``tag_reg`` every PE registers its own ``acc_en`` / ``first``
    (:class:`attnforge.rtl.pe.PECore`), which the caller then gives a cycle early."""

    def __init__(self, rows: int, cols: int, row_shape: ShapeCastable, col_shape: ShapeCastable,
                 acc_shape: ShapeCastable, local: bool = False, tag_reg: bool = False) -> None:
        self.rows, self.cols, self.local_ports, self.tag_reg = rows, cols, local, tag_reg
        self.row_shape, self.col_shape, self.acc_shape = row_shape, col_shape, acc_shape
        prod_shape = PECore.product_shape(row_shape, col_shape)
        members = {
            "row": In(row_shape).array(rows), "acc_en": In(1), "first": In(1),
            "prod": Out(prod_shape).array(rows, cols), "acc": Out(acc_shape).array(rows, cols),
            "sum": Out(acc_shape).array(rows, cols),
        }
        members |= {"local": In(col_shape).array(rows, cols)} if local else {"col": In(col_shape).array(cols)}
        super().__init__(members)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        for r in range(self.rows):
            for c in range(self.cols):
                m.submodules[f"pe_{r}_{c}"] = pe = PECore(self.row_shape, self.col_shape, self.acc_shape,
                                                          tag_reg=self.tag_reg)
                col = self.local[r][c] if self.local_ports else self.col[c]
                m.d.comb += [pe.a.eq(self.row[r]), pe.b.eq(col), pe.acc_en.eq(self.acc_en), pe.first.eq(self.first),
                             self.prod[r][c].eq(pe.prod), self.acc[r][c].eq(pe.acc), self.sum[r][c].eq(pe.sum)]
        return m


class Array2D(wiring.Component):
    """Output-stationary int8 MAC array with a stream of (a-vector, b-vector, last) in and result rows out: an
    :class:`Array2DCore` behind one tag line and a handshake."""

    def __init__(self, rows: int = 4, cols: int = 4, in_bits: int = 8, depth: int = 64) -> None:
        self.rows, self.cols, self.in_bits, self.depth = rows, cols, in_bits, depth
        self.acc_bits = pe_acc_bits(in_bits, depth)
        self.contract = contract.array2d(rows, cols, in_bits, depth)
        super().__init__({"i": In(stream_of(self.contract["i"])), "o": Out(stream_of(self.contract["o"]))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        R, C = self.rows, self.cols
        beat = view(self.contract["i"], self.i.payload)
        m.submodules.grid = grid = Array2DCore(R, C, signed(self.in_bits), signed(self.in_bits), signed(self.acc_bits))
        tags = stream_tags(m, self.i.valid & self.i.ready, beat.last)
        # One result flag per row: a row's flag drops as the row is taken, and input waits for all of them (and
        # for a last beat still in the pipeline), so a new run cannot overwrite a row before it has been offered.
        pending = [Signal(name=f"pending_{r}") for r in range(R)]
        row_sel = Signal(range(R))
        sel = [row_sel == r for r in range(R)]
        m.d.comb += [self.i.ready.eq(~Cat(*pending).any() & ~tags.busy), grid.acc_en.eq(tags.valid),
                     grid.first.eq(tags.first), *(grid.row[r].eq(beat.a[r]) for r in range(R)),
                     *(grid.col[c].eq(beat.b[c]) for c in range(C))]
        row_words = [pack_value(self.contract["o"], [grid.acc[r][c] for c in range(C)]) for r in range(R)]
        # AND-OR selection rather than an indexed Array: Amaranth emits the latter as an `always @*` case
        # statement, which Icarus leaves at X until one of its inputs changes (none does right after reset).
        m.d.comb += [self.o.valid.eq(Cat(*(sel[r] & pending[r] for r in range(R))).any()),
                     self.o.payload.eq(vor([row_words[r] & sel[r].replicate(len(row_words[r])) for r in range(R)]))]
        with m.If(tags.valid):
            m.d.sync += [p.eq(tags.last) for p in pending]
        for r in range(R):
            with m.If(self.o.ready & sel[r] & pending[r]):
                m.d.sync += pending[r].eq(0)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += row_sel.eq(0 if R == 1 else (row_sel + 1) % R)
        return m
