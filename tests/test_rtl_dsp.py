"""The DSP mapping of a registered multiply (rtl/dsp.py): the plain Amaranth pipeline and the MULT18X18D with its own
registers compute the same values in the same cycles. Both are exported to Verilog and run side by side in Icarus,
the primitive through tests/data/hdl/mult18x18d_model.v (the modes attnforge uses, from Lattice's sysDSP guide),
with random operands, a random clock enable and a reset in the middle of the run."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from amaranth import Module, Shape, ShapeCastable, signed, unsigned
from amaranth.back import verilog
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from attnforge.rtl.common import split_mul
from attnforge.rtl.dsp import dsp_primitives
from attnforge.sim.specs.errors import SpecError

MODEL = Path(__file__).parent / "data" / "hdl" / "mult18x18d_model.v"


class _Mul(wiring.Component):
    """``split_mul`` of two ports, its sum on ``y``."""

    def __init__(self, a: ShapeCastable, b: ShapeCastable, operand_regs: bool, product_regs: bool, stall: bool) -> None:
        self.flags = (operand_regs, product_regs, stall)
        width = Shape.cast(a).width + Shape.cast(b).width + 2
        super().__init__({"a": In(a), "b": In(b), "en": In(1), "y": Out(signed(width))})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        op, pr, stall = self.flags
        m.d.comb += self.y.eq(split_mul(m, self.a, self.b, "mul", operand_regs=op, product_regs=pr,
                                        en=self.en if stall else None))
        return m


class _Bank(wiring.Component):
    """Every variant's ``_Mul`` side by side (``v<i>``, fed the low bits of shared ``a`` and ``b``), so that one
    export and one Icarus build check them all: an export costs ~0.7 s of Amaranth and yosys, and 15 tests of two
    exports and a build each made this file the fast set's third-longest (38 s)."""

    def __init__(self, variants: list[tuple[ShapeCastable, ShapeCastable, tuple[bool, bool, bool]]]) -> None:
        self.variants = variants
        ports = {"a": In(WIDE), "b": In(WIDE), "en": In(1)}
        ports.update({f"y{i}": Out(signed(_y_bits(a, b))) for i, (a, b, _) in enumerate(variants)})
        super().__init__(ports)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        for i, (a, b, flags) in enumerate(self.variants):
            u = m.submodules[f"v{i}"] = _Mul(a, b, *flags)
            m.d.comb += [u.a.eq(self.a[:Shape.cast(a).width]), u.b.eq(self.b[:Shape.cast(b).width]), u.en.eq(self.en),
                         getattr(self, f"y{i}").eq(u.y)]
        return m


WIDE = 32  # what one $random gives: at least the widest operand below (24 bits)


def _y_bits(a: ShapeCastable, b: ShapeCastable) -> int:
    return Shape.cast(a).width + Shape.cast(b).width + 2


def _tb(outputs: list[int], cycles: int) -> str:
    """Both banks driven by the same random operands, enable and reset; per variant, the cycles whose results differ
    and those with a non-zero result."""
    decl = "".join(f"  wire [{w - 1}:0] p{i}, q{i};\n  integer bad{i} = 0, nz{i} = 0;\n" for i, w in enumerate(outputs))
    conn = "".join(f", .y{i}(%s{i})" for i in range(len(outputs)))
    check = "".join(f"      if (i >= 4 && p{i} !== q{i}) begin bad{i} = bad{i} + 1; "
                    f'$display("DIFF {i} %0d %h %h", i, p{i}, q{i}); end\n      if (p{i} != 0) nz{i} = nz{i} + 1;\n'
                    for i in range(len(outputs)))
    report = "".join(f'    $display("RESULT {i} %0d %0d", bad{i}, nz{i});\n' for i in range(len(outputs)))
    return f"""`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 1, en = 0;
  reg [{WIDE - 1}:0] a = 0, b = 0;
{decl}  plain u0(.clk(clk), .rst(rst), .a(a), .b(b), .en(en){conn % tuple("p" * len(outputs))});
  prim u1(.clk(clk), .rst(rst), .a(a), .b(b), .en(en){conn % tuple("q" * len(outputs))});
  always #5 clk = ~clk;
  integer i;
  initial begin
    @(negedge clk); @(negedge clk); rst = 0;
    for (i = 0; i < {cycles}; i = i + 1) begin
      a = $random; b = $random; en = ($random & 3) != 0; rst = (i == {cycles // 2});
      @(negedge clk);
      // from the 4th cycle: Icarus leaves the plain form's combinational sum unknown until its inputs first change
{check}    end
{report}    $finish;
  end
endmodule
"""


CASES = [  # (a shape, b shape): two pieces each, a signed top piece; one piece each (the PE's int8 operands)
    (signed(24), unsigned(20)), (signed(8), signed(8)), (unsigned(17), signed(18)),
]
FLAGS = [(True, True, True), (True, True, False), (True, False, True), (False, False, False), (False, True, True)]
VARIANTS = [(a, b, f) for a, b in CASES for f in FLAGS]


def _name(a: ShapeCastable, b: ShapeCastable, flags: tuple[bool, bool, bool]) -> str:
    return "op{}_pr{}_en{}".format(*map(int, flags)) + f"-{a}x{b}"


def _submodule(text: str, top: str, i: int) -> str:
    """The Verilog of ``top``'s submodule ``v<i>`` (where its DSP instances are)."""
    return text.split(f"module \\{top}.v{i} ", 1)[1].split("endmodule", 1)[0]


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog is not installed")
def test_primitive_equals_plain_pipeline(tmp_path: Path) -> None:
    """Each of the 15 variants (3 operand shapes x 5 register/enable settings): one DSP per partial product, the
    registers where rtl/dsp.py puts them, and the same results as the plain form in every cycle."""
    plain = verilog.convert(_Bank(VARIANTS), name="plain", emit_src=False)
    with dsp_primitives("ecp5"):
        prim = verilog.convert(_Bank(VARIANTS), name="prim", emit_src=False)
    assert "MULT18X18D" not in plain
    for i, (a, b, flags) in enumerate(VARIANTS):
        body = _submodule(prim, "prim", i)
        pieces = ((Shape.cast(a).width + 16) // 17) * ((Shape.cast(b).width + 16) // 17)
        assert body.count("MULT18X18D ") == pieces, f"{_name(a, b, flags)}: one DSP per partial product"
        # the operand and product registers are the DSP's; a second product register stays in the fabric (rtl/dsp.py)
        assert ("REG_INPUTA_CLK(\"CLK0\")" in body) == flags[0], _name(a, b, flags)
        assert body.count("REG_OUTPUT_CLK(\"CLK0\")") == pieces, _name(a, b, flags)
        assert "REG_PIPELINE_CLK(\"CLK0\")" not in body, _name(a, b, flags)
    files = {"plain.v": plain, "prim.v": prim, "tb.v": _tb([_y_bits(a, b) for a, b, _ in VARIANTS], 400)}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    subprocess.run(["iverilog", "-g2012", "-o", "sim", "-s", "tb", *files, str(MODEL)], cwd=tmp_path, check=True)
    out = subprocess.run(["vvp", "-n", "sim"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    results = {int(i): (int(bad), int(nz)) for i, bad, nz in (ln.split()[1:4] for ln in out.splitlines()
                                                               if ln.startswith("RESULT"))}
    assert sorted(results) == list(range(len(VARIANTS))), out
    for i, (a, b, flags) in enumerate(VARIANTS):
        bad, nonzero = results[i]
        diffs = [ln for ln in out.splitlines() if ln.startswith(f"DIFF {i} ")][:5]  # cycle, plain, primitive
        assert bad == 0, f"{_name(a, b, flags)}: {bad} cycles differ, first: {diffs}"
        assert nonzero > 300, f"{_name(a, b, flags)}: the products must be exercised, not zero"


def test_unknown_dsp_target_is_refused() -> None:
    with pytest.raises(SpecError, match="ice40|ecp5"), dsp_primitives("xilinx"):
        pass
