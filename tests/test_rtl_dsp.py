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


def _tb(a_bits: int, b_bits: int, y_bits: int, cycles: int) -> str:
    """Both forms driven by the same random operands, enable and reset; counts mismatches and non-zero results."""
    return f"""`timescale 1ns/1ps
module tb;
  reg clk = 0, rst = 1, en = 0;
  reg [{a_bits - 1}:0] a = 0;
  reg [{b_bits - 1}:0] b = 0;
  wire [{y_bits - 1}:0] yp, yq;
  plain u0(.clk(clk), .rst(rst), .a(a), .b(b), .en(en), .y(yp));
  prim u1(.clk(clk), .rst(rst), .a(a), .b(b), .en(en), .y(yq));
  always #5 clk = ~clk;
  integer i, bad = 0, nz = 0;
  initial begin
    @(negedge clk); @(negedge clk); rst = 0;
    for (i = 0; i < {cycles}; i = i + 1) begin
      a = {{$random, $random}}; b = {{$random, $random}}; en = ($random & 3) != 0; rst = (i == {cycles // 2});
      @(negedge clk);
      // from the 4th cycle: Icarus leaves the plain form's combinational sum unknown until its inputs first change
      if (i >= 4 && yp !== yq) begin bad = bad + 1; $display("DIFF %0d %h %h", i, yp, yq); end
      if (yp != 0) nz = nz + 1;
    end
    $display("RESULT %0d %0d", bad, nz);
    $finish;
  end
endmodule
"""


CASES = [  # (a shape, b shape): two pieces each, a signed top piece; one piece each (the PE's int8 operands)
    (signed(24), unsigned(20)), (signed(8), signed(8)), (unsigned(17), signed(18)),
]


@pytest.mark.skipif(shutil.which("iverilog") is None, reason="Icarus Verilog is not installed")
@pytest.mark.parametrize("shapes", CASES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("flags", [(True, True, True), (True, True, False), (True, False, True), (False, False, False),
                                   (False, True, True)], ids=lambda f: "op{}_pr{}_en{}".format(*map(int, f)))
def test_primitive_equals_plain_pipeline(shapes: tuple, flags: tuple, tmp_path: Path) -> None:
    a, b = shapes
    plain = verilog.convert(_Mul(a, b, *flags), name="plain", emit_src=False)
    with dsp_primitives("ecp5"):
        prim = verilog.convert(_Mul(a, b, *flags), name="prim", emit_src=False)
    pieces = ((Shape.cast(a).width + 16) // 17) * ((Shape.cast(b).width + 16) // 17)
    assert "MULT18X18D" not in plain
    assert prim.count("MULT18X18D ") == pieces, "one DSP per partial product"
    # the operand and product registers are the DSP's; a second product register stays in the fabric (rtl/dsp.py)
    assert ("REG_INPUTA_CLK(\"CLK0\")" in prim) == flags[0] and prim.count("REG_OUTPUT_CLK(\"CLK0\")") == pieces
    assert "REG_PIPELINE_CLK(\"CLK0\")" not in prim
    y_bits = Shape.cast(a).width + Shape.cast(b).width + 2
    files = {"plain.v": plain, "prim.v": prim, "tb.v": _tb(Shape.cast(a).width, Shape.cast(b).width, y_bits, 400)}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    subprocess.run(["iverilog", "-g2012", "-o", "sim", "-s", "tb", *files, str(MODEL)], cwd=tmp_path, check=True)
    out = subprocess.run(["vvp", "-n", "sim"], cwd=tmp_path, capture_output=True, text=True, check=True).stdout
    bad, nonzero = map(int, out.split("RESULT")[1].split()[:2])
    assert bad == 0, f"{bad} cycles differ: {out}"
    assert nonzero > 300, "the products must be exercised, not zero"


def test_unknown_dsp_target_is_refused() -> None:
    with pytest.raises(SpecError, match="ice40|ecp5"), dsp_primitives("xilinx"):
        pass
