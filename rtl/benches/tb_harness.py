"""One clocked harness for every testbench: stream sources and sinks, random stalls, cycle stamps, results.

A single coroutine owns the clock loop. Each cycle it drives inputs right after the rising edge, then samples
in ReadOnly; a handshake seen there (valid & ready) takes effect at the next edge. Doing both in one place keeps
the behaviour identical on Icarus and Verilator (no reliance on when either schedules NBA updates relative to
cocotb's edge callbacks), and gives exact cycle numbers for the cycle-model comparison.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import deque
from pathlib import Path
from typing import Any

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ReadOnly, RisingEdge


def config() -> dict[str, Any]:
    """The run's configuration, passed by rtl.regress through the ATTNFORGE_TB environment variable."""
    return json.loads(os.environ["ATTNFORGE_TB"])


def record(row: dict[str, Any]) -> None:
    """Append one result row (design, workload, simulator, passed, cycles, errors...) for rtl.regress."""
    cfg = config()
    row = {"design": cfg["design"], "simulator": cfg["sim"], "params": cfg["params"], **row}
    with Path(cfg["results"]).open("a") as fh:
        fh.write(json.dumps(row) + "\n")


class Source:
    """Drives one input stream from a queue of payloads; valid held until the beat is taken."""

    def __init__(self, dut: Any, name: str, p_valid: float, rng: random.Random) -> None:
        self.valid = getattr(dut, f"{name}__valid")
        self.payload = getattr(dut, f"{name}__payload")
        self.ready = getattr(dut, f"{name}__ready")
        self.p_valid, self.rng = p_valid, rng
        self.queue: deque[int] = deque()
        self.offering = False
        self.fired: list[int] = []

    def drive(self) -> None:
        if not self.offering and self.queue and (self.p_valid >= 1.0 or self.rng.random() < self.p_valid):
            self.offering = True
        self.valid.value = int(self.offering)
        self.payload.value = self.queue[0] if self.offering else 0

    def sample(self, cycle: int) -> None:
        if self.offering and int(self.ready.value):
            self.queue.popleft()
            self.offering = False
            self.fired.append(cycle)

    def clear(self) -> None:
        self.queue.clear()
        self.offering = False


class Sink:
    """Collects one output stream; ready is random with probability ``p_ready`` (back-pressure)."""

    def __init__(self, dut: Any, name: str, p_ready: float, rng: random.Random) -> None:
        self.valid = getattr(dut, f"{name}__valid")
        self.payload = getattr(dut, f"{name}__payload")
        self.ready = getattr(dut, f"{name}__ready")
        self.p_ready, self.rng = p_ready, rng
        self.rdy = 0
        self.beats: list[int] = []
        self.fired: list[int] = []

    def drive(self) -> None:
        self.rdy = int(self.p_ready >= 1.0 or self.rng.random() < self.p_ready)
        self.ready.value = self.rdy

    def sample(self, cycle: int) -> None:
        if self.rdy and int(self.valid.value):
            self.beats.append(self.payload.value.to_unsigned())
            self.fired.append(cycle)

    def clear(self) -> None:
        self.beats.clear()
        self.fired.clear()


class Harness:
    """Clock, reset, sources and sinks of one DUT; ``run`` advances until a condition holds."""

    def __init__(self, dut: Any, seed: int = 0) -> None:
        self.dut = dut
        self.rng = random.Random(seed)
        self.sources: dict[str, Source] = {}
        self.sinks: dict[str, Sink] = {}
        self.cycle = 0
        self.watch: dict[str, Any] = {}
        self.counts: dict[str, int] = {}
        self.t0 = time.perf_counter()

    def source(self, name: str, p_valid: float = 1.0) -> Source:
        self.sources[name] = Source(self.dut, name, p_valid, self.rng)
        return self.sources[name]

    def sink(self, name: str, p_ready: float = 1.0) -> Sink:
        self.sinks[name] = Sink(self.dut, name, p_ready, self.rng)
        return self.sinks[name]

    def count(self, signal: str) -> None:
        """Count the cycles in which a 1-bit output is high (e.g. mac_active)."""
        self.watch[signal] = getattr(self.dut, signal)
        self.counts[signal] = 0

    async def start(self) -> None:
        cocotb.start_soon(Clock(self.dut.clk, 10, unit="ns", impl="gpi").start())  # GPI clock: ~2x faster than Python
        await self.reset()

    async def reset(self, cycles: int = 2) -> None:
        self.dut.rst.value = 1
        for s in self.sources.values():
            s.clear()
            s.valid.value = 0
        for k in self.sinks.values():
            k.ready.value = 0
        for _ in range(cycles):
            await RisingEdge(self.dut.clk)
            self.cycle += 1
        self.dut.rst.value = 0

    async def step(self) -> None:
        """One cycle: drive after the edge, sample the settled values, then wait for the next edge."""
        for s in self.sources.values():
            s.drive()
        for k in self.sinks.values():
            k.drive()
        await ReadOnly()
        for s in self.sources.values():
            s.sample(self.cycle)
        for k in self.sinks.values():
            k.sample(self.cycle)
        for name, sig in self.watch.items():
            self.counts[name] += int(sig.value)
        await RisingEdge(self.dut.clk)
        self.cycle += 1

    async def run(self, done: Any, max_cycles: int = 200_000) -> None:
        start = self.cycle
        while not done():
            if self.cycle - start > max_cycles:
                raise AssertionError(f"timeout after {max_cycles} cycles")
            await self.step()

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0


async def check_stream(h: Harness, label: str, beats: list[int], expected: list[list[int]], out: Any,
                       model_cycles: int, exact_cycles: bool, src: str = "i", dst: str = "o") -> None:
    """Generic block check: stream ``beats`` in, decode every output beat with the contract layout ``out`` (a lane
    array, or one field read as a single lane), compare with ``expected`` bit for bit, compare the cycles from the
    first input to the last output handshake with the cycle model, record a row, assert."""
    s, o = h.sources[src], h.sinks[dst]
    s.fired.clear()
    o.clear()
    s.queue.extend(beats)
    c0, t0 = h.cycle, time.perf_counter()
    await h.run(lambda: len(o.beats) >= len(expected))
    got = [[v] if isinstance(v, int) else v for v in (out.unpack(w) for w in o.beats)]
    diff = max((abs(a - b) for g, e in zip(got, expected, strict=True) for a, b in zip(g, e, strict=True)), default=0)
    mismatches = sum(g != e for g, e in zip(got, expected, strict=True))
    rtl_cycles = o.fired[-1] - s.fired[0]
    cycles_ok = rtl_cycles == model_cycles if exact_cycles else True
    record({"workload": label, "passed": bool(mismatches == 0 and cycles_ok), "rtl_cycles": rtl_cycles,
            "sim_cycles": model_cycles if exact_cycles else None, "no_stall_cycles": model_cycles,
            "max_abs_error": int(diff), "beats": len(expected), "cycles_simulated": h.cycle - c0,
            "wall_s": time.perf_counter() - t0, "backpressure": not exact_cycles})
    assert mismatches == 0, f"{label}: {mismatches} output beats differ from the golden model (max {diff})"
    assert cycles_ok, f"{label}: RTL cycles {rtl_cycles} != cycle model {model_cycles}"


async def setup_block(dut: Any, seed: int, p_valid: float = 1.0, p_ready: float = 1.0) -> Harness:
    h = Harness(dut, seed)
    h.source("i", p_valid)
    h.sink("o", p_ready)
    await h.start()
    return h


async def run_jobs(h: Harness, label: str, jobs: list[tuple[dict[str, list[int]], dict[str, list[int]], int]],
                   first: str, last: str, exact: bool, extra: dict[str, Any] | None = None) -> None:
    """Multi-stream check: per job, queue its input beats (``feeds``: source -> payloads), wait for every expected
    output beat (``expect``: sink -> payloads), compare bit for bit, and compare the cycles from the first ``first``
    handshake to the last ``last`` handshake with the job's model cycles. One row per call, one assert."""
    c0, t0 = h.cycle, time.perf_counter()
    bad_beats = bad_cycles = rtl_total = model_total = beats = 0
    first_err = ""
    for feeds, expect, model in jobs:
        for s in h.sources.values():
            s.fired.clear()
        for k in h.sinks.values():
            k.clear()
        for name, words in feeds.items():
            h.sources[name].queue.extend(words)
        await h.run(lambda e=expect: all(len(h.sinks[n].beats) >= len(w) for n, w in e.items()))
        nb = sum(g != x for n, w in expect.items() for g, x in zip(h.sinks[n].beats, w, strict=False))
        nb += sum(abs(len(h.sinks[n].beats) - len(w)) for n, w in expect.items())
        src = h.sources[first].fired
        rtl = h.sinks[last].fired[-1] - src[0] if src else -1
        bad_beats += nb
        beats += sum(len(w) for w in expect.values())
        rtl_total += rtl
        model_total += model
        bad_cycles += int(exact and rtl != model)
        if nb and os.environ.get("ATTNFORGE_TB_DEBUG"):
            for n, w in expect.items():
                print("DEBUG", n, [hex(x) for x in h.sinks[n].beats], [hex(x) for x in w])
        if (nb or (exact and rtl != model)) and not first_err:
            first_err = f"job {len(jobs)}: {nb} beats differ, cycles {rtl} vs model {model}"
    passed = bad_beats == 0 and bad_cycles == 0
    record({"workload": label, "passed": passed, "rtl_cycles": rtl_total, "sim_cycles": model_total if exact else None,
            "no_stall_cycles": model_total, "max_abs_error": bad_beats, "beats": beats, "jobs": len(jobs),
            "cycles_simulated": h.cycle - c0, "wall_s": time.perf_counter() - t0, "backpressure": not exact,
            "error": first_err or None, **(extra or {})})
    assert passed, f"{label}: {first_err}"


async def setup_streams(dut: Any, seed: int, sources: list[str], sinks: list[str], p_valid: float = 1.0,
                        p_ready: float = 1.0) -> Harness:
    h = Harness(dut, seed)
    for s in sources:
        h.source(s, p_valid)
    for k in sinks:
        h.sink(k, p_ready)
    await h.start()
    return h


async def reset_midrun(h: Harness, abandoned: dict[str, list[int]], cycles: int,
                       jobs: list[tuple[dict[str, list[int]], dict[str, list[int]], int]], first: str, last: str) -> None:
    """Start a job, reset the design ``cycles`` later, then require the next jobs to be exact (nothing left over)."""
    for name, words in abandoned.items():
        h.sources[name].queue.extend(words)
    for _ in range(cycles):
        await h.step()
    await h.reset()
    await run_jobs(h, "reset-midrun", jobs, first, last, True)
