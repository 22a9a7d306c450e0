"""2D PE array (rows x cols), output stationary, built from :class:`rtl.pe.PE` instances.

Each input beat broadcasts ``a[r]`` along row ``r`` and ``b[c]`` down column ``c`` (FuseMax's QK: K rows over
the m0 rank, Q columns over p0), so PE(r, c) accumulates ``sum_e a[e, r] * b[e, c]``. The beat flagged
``last`` ends the accumulation; the array then drains one row per output beat (``cols`` lanes of ``acc_bits``).
"""

from __future__ import annotations

from functools import reduce

from amaranth import Cat, Module, Signal, Value
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from attnforge.rtl.common import pack_value, stream_of, view
from attnforge.rtl.pe import PE
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract import pe_acc_bits


def vor(values: list[Value]) -> Value:
    """Bitwise OR of equally wide values."""
    return reduce(lambda a, b: a | b, values)


class Array2D(wiring.Component):
    """Output-stationary int8 MAC array with a stream of (a-vector, b-vector, last) in and result rows out."""

    def __init__(self, rows: int = 4, cols: int = 4, in_bits: int = 8, depth: int = 64) -> None:
        self.rows, self.cols, self.in_bits, self.depth = rows, cols, in_bits, depth
        self.acc_bits = pe_acc_bits(in_bits, depth)
        self.contract = contract.array2d(rows, cols, in_bits, depth)
        super().__init__({"i": In(stream_of(self.contract["i"])), "o": Out(stream_of(self.contract["o"]))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        w, R, C = self.in_bits, self.rows, self.cols
        pes = [[PE(w, self.depth) for _ in range(C)] for _ in range(R)]
        all_ready = Signal()
        beat = view(self.contract["i"], self.i.payload)
        pe_beat = pes[0][0].contract["i"]
        m.d.comb += all_ready.eq(Cat(*(pe.i.ready for row in pes for pe in row)).all())
        m.d.comb += self.i.ready.eq(all_ready)
        row_sel = Signal(range(R))
        row_words = []
        for r in range(R):
            for c in range(C):
                pe = pes[r][c]
                m.submodules[f"pe_{r}_{c}"] = pe
                m.d.comb += [pe.i.payload.eq(pack_value(pe_beat, {"a": beat.a[r], "b": beat.b[c], "last": beat.last})),
                             pe.i.valid.eq(self.i.valid & all_ready), pe.o.ready.eq(self.o.ready & (row_sel == r))]
            row_words.append(pack_value(self.contract["o"], [pes[r][c].o.payload for c in range(C)]))
        # AND-OR selection rather than an indexed Array: Amaranth emits the latter as an `always @*` case
        # statement, which Icarus leaves at X until one of its inputs changes (none does right after reset).
        sel = [row_sel == r for r in range(R)]
        m.d.comb += [self.o.valid.eq(Cat(*(sel[r] & pes[r][0].o.valid for r in range(R))).any()),
                     self.o.payload.eq(vor([row_words[r] & sel[r].replicate(len(row_words[r])) for r in range(R)]))]
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += row_sel.eq(0 if R == 1 else (row_sel + 1) % R)
        return m
