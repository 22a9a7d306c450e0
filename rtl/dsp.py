"""One registered multiply, as plain Amaranth or as the FPGA's DSP block with its own registers.

Every multiplier of both accelerators is a small pipeline: optional operand registers, the product register, an
optional second product register. Written as plain Amaranth, yosys maps the multiply onto an ECP5 MULT18X18D and
leaves the registers in the fabric; nextpnr does not place them next to the DSP, so each register -> DSP ->
register path is mostly routing (measured in docs/results.md: these paths held both tops near 77-80 MHz). For
synthesis the operand registers and the product register are instantiated as the MULT18X18D's own input and
output registers; the second product register stays in the fabric, free to sit anywhere on the route from the DSP
to the logic that adds its product (with it inside the DSP too, as the pipeline register, that route was 11 ns
in the FuseMax top: measured, docs/results.md). Same stages, same clock enable, same synchronous reset, so the
cycle models do not change.

Simulation and the cocotb benches use the plain form (the primitive has no simulation model in the open tools); the
primitive form is chosen for one elaboration with :func:`dsp_primitives` (``attnforge synth`` does, and ``attnforge
rtl --dsp ecp5`` writes such Verilog for a vendor flow). ``tests/test_rtl_dsp.py`` simulates both forms side by side
in Icarus, the primitive through a behavioural model of the MULT18X18D written from Lattice's sysDSP user guide
(TN1267), and checks that they agree cycle for cycle.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from amaranth import ClockSignal, Const, Instance, Module, ResetSignal, Signal, Value, signed

from attnforge.sim.specs.errors import SpecError

#: targets whose DSP block :func:`registered_product` can instantiate
DSP_TARGETS: tuple[str, ...] = ("ecp5",)
#: the MULT18X18D's operand width (signed)
ECP5_MUL_BITS = 18

_TARGET: ContextVar[str | None] = ContextVar("attnforge_dsp_target", default=None)


@contextmanager
def dsp_primitives(target: str | None) -> Iterator[None]:
    """Elaborate the designs built inside this block with ``target``'s DSP primitives (``None``: plain Amaranth).

    A context, not a constructor argument, because the multipliers sit five levels down (tile -> 1D array -> exponent
    unit -> split multiply) and the choice concerns only how the netlist is written, never what it computes."""
    if target is not None and target not in DSP_TARGETS:
        raise SpecError("--dsp", f"unknown DSP target {target!r}", DSP_TARGETS)
    token = _TARGET.set(target)
    try:
        yield
    finally:
        _TARGET.reset(token)


def dsp_target() -> str | None:
    """The DSP target of the elaboration in progress (``None``: plain Amaranth)."""
    return _TARGET.get()


def registered_product(m: Module, a: Value, b: Value, name: str, *, in_regs: bool, pipe_reg: bool,
                       en: Value | None = None) -> Signal:
    """``a * b`` behind ``1 + in_regs + pipe_reg`` register stages (operand registers, product register, second
    product register), every stage advancing with ``en`` when given. The result is signed, one bit wider than the
    operands need, as :func:`attnforge.rtl.common.split_mul` sums it."""
    a, b = Value.cast(a), Value.cast(b)
    out = Signal(signed(len(a) + len(b) + 1), name=name)
    prod = Signal(out.shape(), name=f"{name}_p") if pipe_reg else out  # the product register
    stmts = [out.eq(prod)] if pipe_reg else []  # its second register, in the fabric in both forms
    if dsp_target() == "ecp5" and max(_signed_bits(a), _signed_bits(b)) <= ECP5_MUL_BITS:
        _ecp5_mult(m, a, b, prod, name, in_regs=in_regs, en=en)
    else:
        if in_regs:
            a_r, b_r = Signal.like(a, name=f"{name}_a"), Signal.like(b, name=f"{name}_b")
            stmts += [a_r.eq(a), b_r.eq(b)]
            a, b = a_r, b_r
        stmts.append(prod.eq(a * b))
    if stmts:
        sync_en(m, en, stmts)
    return out


def sync_en(m: Module, en: Value | None, stmts: list) -> None:
    """Add ``stmts`` to the sync domain, under ``en`` when there is one (no enable logic at all without)."""
    if en is None:
        m.d.sync += stmts
    else:
        with m.If(en):
            m.d.sync += stmts


def _signed_bits(v: Value) -> int:
    """Bits ``v`` takes as a signed operand (an unsigned value needs one more, its zero sign bit)."""
    return len(v) + (0 if v.shape().signed else 1)


def _ecp5_mult(m: Module, a: Value, b: Value, out: Signal, name: str, *, in_regs: bool, en: Value | None) -> None:
    """The MULT18X18D, both operands sign-extended to 18 bits and multiplied as signed (an unsigned operand is
    zero-extended first, so its value is kept), its registers on CLK0 / CE0 / RST0 (nextpnr times a clocked
    MULT18X18D only from CLK0), the output register always on: it is the product register."""
    a18 = Signal(signed(ECP5_MUL_BITS), name=f"{name}_a18")
    b18 = Signal(signed(ECP5_MUL_BITS), name=f"{name}_b18")
    p36 = Signal(signed(2 * ECP5_MUL_BITS), name=f"{name}_p36")
    m.d.comb += [a18.eq(a), b18.eq(b), out.eq(p36)]
    clk = "CLK0"
    params = {
        "p_REG_INPUTA_CLK": clk if in_regs else "NONE", "p_REG_INPUTB_CLK": clk if in_regs else "NONE",
        "p_REG_PIPELINE_CLK": "NONE", "p_REG_OUTPUT_CLK": clk,
        **{f"p_REG_{r}_{k}": f"{k}0" for r in ("INPUTA", "INPUTB", "INPUTC", "PIPELINE", "OUTPUT") for k in ("CE", "RST")},
        "p_REG_INPUTC_CLK": "NONE", "p_CLK0_DIV": "ENABLED", "p_GSR": "DISABLED", "p_RESETMODE": "SYNC",
        "p_MULT_BYPASS": "DISABLED", "p_SOURCEB_MODE": "B_INPUT", "p_CAS_MATCH_REG": "FALSE",
        "p_HIGHSPEED_CLK": "NONE",
    }
    ports = {
        **{f"i_A{i}": a18[i] for i in range(ECP5_MUL_BITS)}, **{f"i_B{i}": b18[i] for i in range(ECP5_MUL_BITS)},
        **{f"i_C{i}": Const(0, 1) for i in range(ECP5_MUL_BITS)},
        "i_SIGNEDA": Const(1, 1), "i_SIGNEDB": Const(1, 1), "i_SOURCEA": Const(0, 1), "i_SOURCEB": Const(0, 1),
        "i_CLK0": ClockSignal(), "i_CE0": Const(1, 1) if en is None else en, "i_RST0": ResetSignal(),
        **{f"i_{p}{k}": Const(0, 1) for p in ("CLK", "CE", "RST") for k in (1, 2, 3)},
        **{f"o_P{i}": p36[i] for i in range(2 * ECP5_MUL_BITS)},
    }
    m.submodules[f"{name}_dsp"] = Instance("MULT18X18D", **params, **ports)
