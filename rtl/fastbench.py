"""Long RTL runs at simulator speed: stimulus and sinks on the HDL side, Python only at the start and the end.

Why: a cocotb bench that drives every cycle from Python runs ~90x slower than the same design under a plain
Verilog testbench (docs/toolchain.md §Simulators). For whole layers (millions of cycles) the bench must not wake
Python per cycle. So this module writes, for any registered design, a wrapper ``fb_top`` generated from the
design's stream contract (:mod:`attnforge.sim.contract.designs`):

- every input stream reads its beats from a memory initialised with ``$readmemh`` and offers them in order;
- every output stream writes the beats it accepts into a memory, dumped with ``$writememh`` when all expected
  beats have arrived (``done``);
- valid and ready gaps come from one LFSR per stream (``p_valid``/``p_ready`` as fractions, 1.0 = never stalls),
  so back-pressure runs at full speed too;
- ``cycles`` counts from the first input handshake to the last output handshake, inclusive of both cycles;
- every memory port of the contract (``Contract.memports``) is answered by a memory model instead
  (:mod:`attnforge.rtl.fastmem`: ``FastJob.memories`` preloads it, ``FastJob.mem_timing`` sets its timing, and
  ``FastResult.extra["mem"]`` reports its request and beat counts); its handshakes do not start or end ``cycles``.

Two drivers run the same wrapper: *raw* (a plain Verilog top that toggles the clock and finishes on ``done``,
built by iverilog or ``verilator --binary``) and *cocotb* (``rtl/benches/tb_fast.py``: a self-clocked top,
``fb_clocked``, and one ``await RisingEdge(done)``; even cocotb's GPI clock would wake the simulator's callbacks
twice a cycle). ``attnforge bench --rtl`` sets their speeds side by side.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from attnforge.rtl import verilator_flags as vflags
from attnforge.rtl.fastmem import memory_hex, memport_conns, memport_rtl
from attnforge.sim.contract.memport import MemPort, MemTiming
from attnforge.sim.specs.errors import SpecError

RESET_CYCLES = 2


@dataclass
class FastJob:
    """Everything one run needs: the design, its input beats per stream, and how many beats each output yields."""

    design: str
    params: dict[str, int]
    inputs: dict[str, list[int]]
    outputs: dict[str, int]
    p_valid: float = 1.0
    p_ready: float = 1.0
    seed: int = 1
    label: str = ""
    #: memory port name -> the words preloaded into its memory model (word ``i`` at address ``i``)
    memories: dict[str, list[int]] = field(default_factory=dict)
    #: memory port name -> its timing (``MemTiming()`` when absent)
    mem_timing: dict[str, MemTiming] = field(default_factory=dict)
    #: stop the run after this many cycles (0: no limit), so a design that hangs fails fast instead of at the timeout
    max_cycles: int = 0
    #: a short run (thousands of cycles): Verilator builds for build time, not run time (gcc -O0, no merge_cond:
    #: :func:`attnforge.rtl.verilator_flags.fastbench_profile`); same design, same cycles
    quick_build: bool = False


@dataclass
class FastResult:
    """What came back: the output beats per stream, the handshake-to-handshake cycles and the wall time."""

    outputs: dict[str, list[int]]
    cycles: int
    total_cycles: int
    seconds: float
    mode: str
    simulator: str
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def cycles_per_s(self) -> float:
        return self.total_cycles / self.seconds if self.seconds else 0.0


def _threshold(p: float, name: str) -> int:
    if not 0.0 < p <= 1.0:
        raise SpecError(name, f"{p} is outside (0, 1]", "(0, 1]")
    return min(256, max(1, round(p * 256)))


def _stream_rtl(name: str, width: int, direction: str, depth: int, thr: int, seed: int) -> str:
    """One stream's memory, counter, LFSR and handshake (Verilog-2005, read by Icarus, Verilator and Yosys)."""
    aw = max(1, (max(depth, 1) - 1).bit_length())
    lfsr = f"""  reg [31:0] {name}_lfsr = 32'h{seed & 0xFFFFFFFF or 1:08x};
  always @(posedge clk) {name}_lfsr <= {{{name}_lfsr[30:0], {name}_lfsr[31] ^ {name}_lfsr[21] ^ {name}_lfsr[1] ^ {name}_lfsr[0]}};
  wire {name}_go = ({{1'b0, {name}_lfsr[7:0]}} < 9'd{thr});
"""
    if direction == "in":
        return lfsr + f"""  reg [{width - 1}:0] {name}_mem [0:{max(depth, 1) - 1}];
  initial $readmemh("{name}.hex", {name}_mem);
  reg [{aw}:0] {name}_idx = 0;
  wire {name}_offer = !rst && ({name}_idx < {depth}) && {name}_go;
  reg {name}_hold = 0;
  wire {name}_valid = {name}_hold || {name}_offer;
  wire {name}_ready;
  wire {name}_fire = {name}_valid && {name}_ready;
  always @(posedge clk) begin
    if ({name}_fire) begin {name}_idx <= {name}_idx + 1; {name}_hold <= 0; end
    else if ({name}_valid) {name}_hold <= 1;
  end
"""
    return lfsr + f"""  reg [{width - 1}:0] {name}_mem [0:{max(depth, 1) - 1}];
  reg [{aw}:0] {name}_cnt = 0;
  wire {name}_valid;
  wire [{width - 1}:0] {name}_data;
  wire {name}_ready = !rst && ({name}_cnt < {depth}) && {name}_go;
  wire {name}_fire = {name}_valid && {name}_ready;
  always @(posedge clk) if ({name}_fire) begin {name}_mem[{name}_cnt] <= {name}_data; {name}_cnt <= {name}_cnt + 1; end
"""


def wrapper_verilog(top: str, streams: Mapping[str, tuple[int, str]], job: FastJob,
                    memports: Mapping[str, tuple[str, str, MemPort]] | None = None) -> str:
    """``fb_top(clk) -> done, cycles``: the DUT ``top`` between HDL-side sources and sinks, and a memory model on
    each memory port (``memports``: port -> (request stream, response stream, widths); see the module docstring)."""
    tv, tr = _threshold(job.p_valid, "p_valid"), _threshold(job.p_ready, "p_ready")
    body, conns, fires_in, fires_out, dones, dumps = [], [], [], [], [], []
    ported = {s for req, resp, _ in (memports or {}).values() for s in (req, resp)}
    for i, (name, (width, direction)) in enumerate(sorted(streams.items())):
        if name in ported:
            continue
        depth = len(job.inputs[name]) if direction == "in" else job.outputs[name]
        body.append(_stream_rtl(name, width, direction, depth, tv if direction == "in" else tr, job.seed * 7919 + i))
        if direction == "in":
            conns += [f".{name}__valid({name}_valid)", f".{name}__ready({name}_ready)",
                      f".{name}__payload({name}_mem[{name}_idx])"]
            fires_in.append(f"{name}_fire")
        else:
            conns += [f".{name}__valid({name}_valid)", f".{name}__ready({name}_ready)", f".{name}__payload({name}_data)"]
            fires_out.append(f"{name}_fire")
            dones.append(f"({name}_cnt == {depth})")
            dumps.append(f'$writememh("{name}.out.hex", {name}_mem);')
    for port, (req, resp, mp) in sorted((memports or {}).items()):
        body.append(memport_rtl(port, mp, job.mem_timing.get(port, MemTiming()), len(job.memories.get(port, []))))
        conns += memport_conns(port, req, resp)
        dumps.append(f'$writememh("{port}.stats.hex", {port}_stats);')
    anyin = " || ".join(fires_in) or "1'b0"
    anyout = " || ".join(fires_out) or "1'b0"
    return f"""// generated by attnforge.rtl.fastbench for {job.design} {json.dumps(job.params, sort_keys=True)}
module fb_top(input clk, output reg done = 0, output reg [63:0] cycles = 0, output reg [63:0] total = 0);
  reg [3:0] rst_cnt = 0;
  wire rst = rst_cnt < {RESET_CYCLES};
  always @(posedge clk) if (rst) rst_cnt <= rst_cnt + 1;
{''.join(body)}
  {top} dut(.clk(clk), .rst(rst), {", ".join(conns)});
  reg started = 0;
  reg [63:0] first = 0;
  wire all_done = {" && ".join(dones) or "1'b1"};
  always @(posedge clk) begin
    total <= total + 1;
    if (!started && ({anyin})) begin started <= 1; first <= total; end
    if ({anyout}) cycles <= total - (started ? first : total) + 1;
    if (all_done && !done) begin done <= 1; {" ".join(dumps)} end
{_watchdog(job.max_cycles)}  end
endmodule
"""


def _watchdog(limit: int) -> str:
    """A run past ``limit`` cycles prints one FASTBENCH line saying so and finishes (no ``done``: both drivers fail)."""
    if not limit:
        return ""
    return f"""    if (!done && total >= {limit}) begin $display("FASTBENCH cycle_limit={limit}"); $finish; end
"""


CLOCKED_TOP = """// self-clocked top for cocotb: the HDL toggles its own clock, so Python wakes only on done
`timescale 1ns/1ps
module fb_clocked(output done /*verilator public_flat_rd*/, output [63:0] cycles /*verilator public_flat_rd*/,
                  output [63:0] total /*verilator public_flat_rd*/);
  reg clk = 0;
  always #5 clk = ~clk;
  fb_top t(.clk(clk), .done(done), .cycles(cycles), .total(total));
endmodule
"""

RAW_TOP = """// plain Verilog driver: clock, wait for done, report, finish
`timescale 1ns/1ps
module fb_raw;
  reg clk = 0;
  wire done;
  wire [63:0] cycles, total;
  fb_top t(.clk(clk), .done(done), .cycles(cycles), .total(total));
  always #5 clk = ~clk;
  always @(posedge clk) if (done) begin
    $display("FASTBENCH cycles=%0d total=%0d", cycles, total);
    $finish;
  end
endmodule
"""


def _write_inputs(folder: Path, job: FastJob, streams: Mapping[str, tuple[int, str]],
                  memports: Mapping[str, tuple[str, str, MemPort]]) -> None:
    for name, (width, direction) in streams.items():
        if direction == "in" and name in job.inputs:
            digits = (width + 3) // 4
            (folder / f"{name}.hex").write_text("".join(f"{b:0{digits}x}\n" for b in job.inputs[name]) or "0\n")
    for port, (_, _, mp) in memports.items():
        (folder / f"{port}.mem.hex").write_text(memory_hex(job.memories.get(port, []), mp.data_bits))


def _hex_words(path: Path) -> list[int]:
    return [int(w, 16) for ln in path.read_text().splitlines() for w in ln.split("//")[0].split()]


def _read_outputs(folder: Path, job: FastJob) -> dict[str, list[int]]:
    return {name: _hex_words(folder / f"{name}.out.hex")[:n] for name, n in job.outputs.items()}


def _read_memstats(folder: Path, ports: Sequence[str]) -> dict[str, Any]:
    """``{"mem": {port: {"requests": r, "beats": b}}}`` for a design with memory ports, else ``{}``."""
    words = {p: _hex_words(folder / f"{p}.stats.hex") for p in ports}
    return {"mem": {p: {"requests": w[0], "beats": w[1]} for p, w in words.items()}} if ports else {}


Ports = dict[str, tuple[str, str, MemPort]]


def _streams(job: FastJob) -> tuple[str, dict[str, tuple[int, str]], Ports, Path]:
    """Export the DUT into a folder keyed by (design, params); return its top, stream widths, memory ports and
    Verilog. The job's inputs and outputs name every stream but the memory ports' (the memory model answers those)."""
    from attnforge.rtl.export import export
    from attnforge.rtl.regress import cache_dir, folder_lock
    from attnforge.sim.contract.designs import for_design

    contract = for_design(job.design, job.params)
    ports = {p: (req, resp, contract.memport(p)) for p, (req, resp) in contract.memports.items()}
    ported = {s for req, resp, _ in ports.values() for s in (req, resp)}
    streams = {n: (s.layout.width, s.direction) for n, s in contract.streams.items()}
    ins = {n for n, (_, d) in streams.items() if d == "in" and n not in ported}
    outs = {n for n, (_, d) in streams.items() if d == "out" and n not in ported}
    if set(job.inputs) != ins or set(job.outputs) != outs:
        raise SpecError("fastbench", f"{job.design}: inputs/outputs must name every stream but the memory ports'",
                        sorted(ins | outs))
    if not set(job.memories) | set(job.mem_timing) <= set(ports):
        raise SpecError("fastbench", f"{job.design}: memories/mem_timing name no memory port", sorted(ports))
    tag = hashlib.sha1(json.dumps([job.design, job.params], sort_keys=True).encode()).hexdigest()[:10]
    folder = cache_dir().parent / "fastbench" / f"{job.design}-{tag}"
    with folder_lock(folder):  # another worker may be writing the same instance's Verilog
        manifest = export(job.design, job.params, folder / "src")
    return str(manifest["top"]), streams, ports, (folder / "src" / str(manifest["verilog"])).resolve()


def _prepare(job: FastJob, workdir: Path, top_file: str, top_text: str) -> tuple[Path, list[str]]:
    """The wrapper, the driver top and the input memories in ``workdir``; returns the DUT's Verilog and the names
    of the memory ports."""
    top, streams, ports, dut = _streams(job)
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "fb_top.v").write_text(wrapper_verilog(top, streams, job, ports))
    (workdir / top_file).write_text(top_text)
    _write_inputs(workdir, job, streams, ports)
    return dut, sorted(ports)


def run_raw(job: FastJob, sim: str, workdir: Path) -> FastResult:
    """Build the wrapper under a plain Verilog top with ``sim`` and run it; the wall time covers the run only.
    Runs sharing ``workdir`` (same case on two test workers) take turns."""
    from attnforge.rtl.regress import folder_lock

    with folder_lock(workdir):
        return _run_raw(job, sim, workdir)


def _run_raw(job: FastJob, sim: str, workdir: Path) -> FastResult:
    dut, ports = _prepare(job, workdir, "fb_raw.v", RAW_TOP)
    exe = _build_raw(sim, workdir, dut, job.quick_build)
    t0 = time.perf_counter()
    out = subprocess.run(exe, cwd=workdir, capture_output=True, text=True, timeout=3600)
    secs = time.perf_counter() - t0
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("FASTBENCH")), None)
    if line and "cycle_limit" in line:
        raise RuntimeError(f"{sim} raw run of {job.design} passed its cycle limit ({job.max_cycles}) without finishing")
    if out.returncode or line is None:
        raise RuntimeError(f"{sim} raw run of {job.design} failed: {out.stdout[-800:]}{out.stderr[-800:]}")
    kv = dict(x.split("=") for x in line.split()[1:])
    return FastResult(_read_outputs(workdir, job), int(kv["cycles"]), int(kv["total"]), secs, "raw", sim,
                      _read_memstats(workdir, ports))


def _build_raw(sim: str, workdir: Path, dut: Path, quick_build: bool = False) -> list[str]:
    from attnforge.rtl.regress import sim_environment, verilator_bin

    sim_environment(sim)
    srcs = [str(workdir / "fb_raw.v"), str(workdir / "fb_top.v"), str(dut)]
    if sim == "icarus":
        subprocess.run(["iverilog", "-g2012", "-o", str(workdir / "raw.vvp"), "-s", "fb_raw", *srcs], check=True,
                       capture_output=True)
        return ["vvp", "-n", str(workdir / "raw.vvp")]
    args, make = vflags.fastbench_profile(quick_build)
    env = {**os.environ, "MAKEFLAGS": vflags.makeflags(make)}
    env.pop("VERILATOR_ROOT", None)
    obj = workdir / ("obj_raw_quick" if quick_build else "obj_raw")  # one per profile, as the cocotb build folder
    cmd = [str(verilator_bin() / "verilator"), "--binary", "--timing", "-Wno-fatal", *args,
           "-j", vflags.build_jobs(), "--top-module", "fb_raw", "-CFLAGS", "-fcoroutines", "--Mdir", str(obj),
           "-o", "fb_raw", *srcs]
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if res.returncode:
        raise RuntimeError(f"verilator build failed: {res.stdout[-1500:]}{res.stderr[-1500:]}")
    return [str(obj / "fb_raw")]


def run_cocotb(job: FastJob, sim: str, workdir: Path) -> FastResult:
    """The same wrapper under the self-clocked top as a cocotb toplevel: one await on ``done``, outputs read back
    in bulk. Runs sharing ``workdir`` take turns."""
    from attnforge.rtl.regress import folder_lock

    with folder_lock(workdir):
        return _run_cocotb(job, sim, workdir)


def _run_cocotb(job: FastJob, sim: str, workdir: Path) -> FastResult:
    from cocotb_tools.runner import get_runner

    from attnforge.rtl.regress import BENCHES, IMPORT_ROOT, sim_environment

    dut, ports = _prepare(job, workdir, "fb_clocked.v", CLOCKED_TOP)
    sim_environment(sim)
    runner = get_runner(sim)
    if sim == "verilator":
        vflags.replace_public_flat(runner)  # Python reads only fb_clocked's three outputs, marked public
    args, make = vflags.fastbench_profile(job.quick_build)
    # one build folder per profile: cocotb's make would keep a build of the other profile (it sees no source change)
    build_dir = workdir / ("cocotb_build_quick" if job.quick_build else "cocotb_build")
    with vflags.make_environment(make) if sim == "verilator" else contextlib.nullcontext():
        runner.build(sources=[workdir / "fb_clocked.v", workdir / "fb_top.v", dut], hdl_toplevel="fb_clocked",
                     build_dir=build_dir, timescale=("1ns", "1ps"),
                     build_args=["-Wno-fatal", *args, "--timing", "-CFLAGS", "-fcoroutines"]
                     if sim == "verilator" else [],
                     always=False, log_file=workdir / "build.log")
    report = workdir / "fast.json"
    report.unlink(missing_ok=True)
    for p in (str(BENCHES), str(IMPORT_ROOT)):
        if p not in sys.path:
            sys.path.insert(0, p)
    runner.test(test_module="tb_fast", hdl_toplevel="fb_clocked", build_dir=build_dir, test_dir=workdir,
                extra_env={"ATTNFORGE_FAST": str(report)}, results_xml=str(workdir / "results.xml"),
                timescale=("1ns", "1ps"), log_file=workdir / "test.log")
    if not report.exists():
        raise RuntimeError(f"cocotb run of {job.design} wrote no report; see {workdir / 'test.log'}")
    r = json.loads(report.read_text())
    return FastResult(_read_outputs(workdir, job), r["cycles"], r["total"], r["seconds"], "cocotb", sim,
                      _read_memstats(workdir, ports))


def simulators() -> Sequence[str]:
    """The simulators available here (same rule as the regressions)."""
    from attnforge.rtl.regress import SIMULATORS, available

    return [s for s in SIMULATORS if available(s) is None and (s != "icarus" or shutil.which("vvp"))]
