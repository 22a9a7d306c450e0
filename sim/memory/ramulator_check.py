"""Ramulator 2.0 beside attnforge's HBM model, on request streams of the kind SpAtten's fetcher issues.

Why: the HBM model (sim/memory/dram.py) is a formula, a closed queue of the fetcher's requests in flight, whose
latency grows with the load on the data buses and with row misses. SpAtten's own RTL simulation measured its HBM
with Ramulator 2.0 (one instance per channel, at most 16 requests pending in each; docs/spatten.md §Memory system).
This module replays the same address streams through both (and, with ``--event``, through the event-level replay
of sim/memory/hbm_events.py, which needs no Ramulator), so the formula's two calibrated constants
(``hbm.row_bytes``, the bytes of one channel that one activate serves, and ``hbm.controller_ns``, the controller's
fixed share of a request's latency) can be checked, and re-measured, against the simulator itself.

Ramulator is not a dependency: build it once (docs/spatten.md §Memory system gives the commands) and run
``python -m attnforge.sim.memory.ramulator_check --ramulator DIR``. Without it this module still generates the
streams and our side of the table (``--ours-only``).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from attnforge.sim.memory import dram, hbm_events
from attnforge.sim.specs.arch import Hbm, SpattenArch, load_arch, parse_overrides
from attnforge.sim.specs.errors import SpecError

HERE = Path(__file__).resolve().parent / "ramulator"
CONFIG = HERE / "spatten_hbm2.yaml"
#: The last side-by-side run (``--event --json`` output with Ramulator 2.0 at commit 14a52ce), the table
#: docs/spatten.md quotes; tests/test_ramulator_check.py checks our side still gives what it recorded, and
#: tests/test_hbm_events.py that the event replay gives Ramulator's figures.
MEASURED = HERE / "measured.json"


@dataclass(frozen=True)
class Stream:
    """Requests in issue order (byte addresses of 32-byte transactions) and what our model charges for them."""

    name: str
    addresses: np.ndarray
    requests: float
    activates: float


def crossbar(addresses: np.ndarray, hbm: Hbm) -> list[np.ndarray]:
    """Per-channel addresses as SpAtten's crossbar makes them: consecutive transactions rotate over the channels
    (channel = address bits above the transaction offset), each channel sees its own dense address space."""
    tx = np.asarray(addresses, dtype=np.int64) // hbm.request_bytes
    return [(tx[tx % hbm.channels == c] // hbm.channels) * hbm.request_bytes for c in range(hbm.channels)]


def vector_addresses(base: int, idx: np.ndarray, vector_bytes: int, request_bytes: int = 32) -> np.ndarray:
    """The request addresses of vectors ``idx`` of a region at ``base`` (``index x vector_bytes + base``, the RTL's
    layout), each vector split into its 32-byte transactions, in index order."""
    starts = base + np.asarray(idx, dtype=np.int64)[:, None] * vector_bytes
    return (starts + np.arange(0, vector_bytes, request_bytes)[None, :]).ravel()


def sequential(hbm: Hbm, requests: int) -> Stream:
    """One in-order stream over a contiguous region (a head's K fetched whole)."""
    addrs = np.arange(requests, dtype=np.int64) * hbm.request_bytes
    return Stream(f"in-order stream, {requests:,} requests", addrs, float(requests),
                  float(dram.stream_activates(hbm, requests, requests, hbm.request_bytes)))


def decode(hbm: Hbm, heads: int, keys: int, kept: float, v_kept: float, vector_bytes: int, seed: int = 0) -> Stream:
    """A generation step's layer: per head, the kept keys' K vectors then the kept values' V vectors, each head's K
    and V in their own regions, kept vectors in ascending index order (the top-k keeps input order)."""
    rng = np.random.default_rng(seed)
    region = -(-keys * vector_bytes // 65536) * 65536
    parts, req, act = [], 0.0, 0.0
    k_idx = np.sort(rng.choice(keys, max(1, round(keys * kept)), replace=False))
    for h in range(heads):
        v_idx = np.sort(rng.choice(k_idx, max(1, round(len(k_idx) * v_kept)), replace=False))
        for base, idx in ((h * region, k_idx), ((1 << 30) + h * region, v_idx)):
            parts.append(vector_addresses(base, idx, vector_bytes, hbm.request_bytes))
            req += float(dram.stream_requests(hbm, len(idx), vector_bytes))
            act += float(dram.stream_activates(hbm, len(idx), keys, vector_bytes))
    name = f"decode: {heads} heads, {kept:.0%} of {keys} keys, V {v_kept:.0%} of those, {vector_bytes} B vectors"
    return Stream(name, np.concatenate(parts), req, act)


def scattered(hbm: Hbm, requests: int, span_bytes: int = 1 << 30, seed: int = 0) -> Stream:
    """Requests at random addresses of a wide region, in random order: every request its own row."""
    rng = np.random.default_rng(seed)
    addrs = rng.choice(span_bytes // hbm.request_bytes, requests, replace=False).astype(np.int64) * hbm.request_bytes
    return Stream(f"scattered, {requests:,} requests", addrs, float(requests), float(requests))


def streams(hbm: Hbm) -> list[Stream]:
    """The table's streams: a whole head's K, GPT-2 decode layers kept dense or pruned, and the worst case."""
    return [
        sequential(hbm, 32_000),
        decode(hbm, 16, 1024, 0.9, 0.3, 64),
        decode(hbm, 12, 1024, 0.2, 0.2, 64),
        decode(hbm, 12, 1024, 0.1, 0.2, 32),
        scattered(hbm, 16_000),
    ]


def ours_gb_s(hbm: Hbm, requests: float, activates: float) -> float:
    """GB/s the closed queue gives a batch of requests with this many row activates (all channels together). Always
    the closed queue (``hbm.model: closed-queue``): it is the model with a calibrated constant to check; the
    replay's table is the event replay's own figures (the ``--event`` columns, sim/memory/hbm_table.py)."""
    hbm = hbm.model_copy(update={"model": "closed-queue"})
    tr = dram.traffic(hbm, 1e9, requests, activates, requests * hbm.request_bytes)
    return requests * hbm.request_bytes / float(tr.cycles)


def build_driver(ramulator_dir: Path, cache: Path | None = None) -> Path:
    """Compile the driver against a built Ramulator 2.0 tree (``libramulator.so`` at its root, headers in ``src``
    and ``ext``); cached by the driver's source and the library's path."""
    lib = ramulator_dir / "libramulator.so"
    if not lib.is_file():
        raise SpecError("--ramulator", f"{ramulator_dir} has no libramulator.so (build Ramulator 2.0 there first: "
                        "docs/spatten.md §Memory system)", ["a built Ramulator 2.0 tree"])
    cxx = shutil.which(os.environ.get("CXX", "g++"))
    if cxx is None:
        raise SpecError("--ramulator", "no C++ compiler (g++ or $CXX) to build the driver with", ["g++"])
    src = HERE / "driver.cpp"
    key = hashlib.sha256(src.read_bytes() + str(lib.resolve()).encode()).hexdigest()[:12]
    out = (cache or Path.home() / ".cache" / "attnforge") / f"ramulator-driver-{key}"
    if not out.exists():
        out.parent.mkdir(parents=True, exist_ok=True)
        inc = [f"-I{ramulator_dir / p}" for p in ("src", "ext/yaml-cpp/include", "ext/spdlog/include",
                                                   "ext/argparse/include")]
        cmd = [cxx, "-std=c++20", "-O2", *inc, str(src), "-o", str(out), f"-L{ramulator_dir}", "-lramulator",
               f"-Wl,-rpath,{ramulator_dir.resolve()}"]
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise SpecError("--ramulator", f"the driver did not build against {ramulator_dir}: "
                            f"{res.stderr.strip().splitlines()[-1] if res.stderr.strip() else res.returncode}",
                            ["Ramulator 2.0 at commit 14a52ce"])
    return out


def run_channel(driver: Path, addresses: np.ndarray, pending: int) -> dict[str, float]:
    """One channel's run: the driver's JSON line plus Ramulator's row-buffer counts."""
    res = subprocess.run([str(driver), str(CONFIG), str(pending)], input="\n".join(map(str, addresses.tolist())),
                         capture_output=True, text=True, check=True)
    out = json.loads(next(line for line in res.stdout.splitlines() if line.startswith("{")))
    out["activates"] = sum(int(n) for n in re.findall(r"read_row_(?:misses|conflicts)_0: (\d+)", res.stdout))
    return out


def event_fields(hbm: Hbm, stream: Stream, pending: int) -> dict[str, float]:
    """The event-level replay's side of a row (sim/memory/hbm_events.py), named as Ramulator's are."""
    ch = hbm_events.channels(crossbar(stream.addresses, hbm), pending, hbm_events.Hbm2Timing.from_hbm(hbm))
    return {"event_gb_s": ch.gb_s, "event_channel_mean_gb_s": ch.channel_mean_gb_s, "event_row_hit": ch.row_hit,
            "event_latency_ns": ch.latency_ns}


def compare(hbm: Hbm, stream: Stream, driver: Path | None, pending: int, event: bool = False) -> dict[str, object]:
    """One table row: Ramulator over the 16 channels (they run in parallel: the slowest sets the time) beside our
    model on the requests and activates it charges, and on Ramulator's own activates; with ``event``, the
    event-level replay of the same per-channel streams too."""
    row: dict[str, object] = {"stream": stream.name, "pending": pending, "requests": len(stream.addresses),
                              "ours_requests": stream.requests, "ours_row_hit": 1 - stream.activates / stream.requests}
    h = hbm.model_copy(update={"outstanding": pending})
    row["ours_gb_s"] = ours_gb_s(h, stream.requests, stream.activates)
    if event:
        row.update(event_fields(hbm, stream, pending))
    if driver is None:
        return row
    runs = [run_channel(driver, a, pending) for a in crossbar(stream.addresses, hbm) if len(a)]
    reqs, act = sum(r["requests"] for r in runs), sum(r["activates"] for r in runs)
    row.update(ramulator_gb_s=reqs * hbm.request_bytes / max(r["cycles"] for r in runs),
               ramulator_channel_mean_gb_s=reqs * hbm.request_bytes / float(np.mean([r["cycles"] for r in runs])),
               ramulator_row_hit=1 - act / reqs, ramulator_latency_ns=float(np.mean([r["mean_latency"] for r in runs])),
               ours_on_its_activates_gb_s=ours_gb_s(h, reqs, act))
    return row


#: Requests in flight per channel at which the table adds the in-order stream (the closed queue's range of loads).
PENDING: tuple[int, ...] = (1, 4, 8, 12, 20, 24, 32)


def rows(hbm: Hbm, driver: Path | None, pending: tuple[int, ...] = PENDING,
         event: bool = False) -> list[dict[str, object]]:
    """The whole table: every stream at the arch's requests in flight, then the in-order stream at each of
    ``pending`` (how the two models move apart as the fetcher allows more or fewer requests in flight)."""
    out = [compare(hbm, s, driver, hbm.outstanding, event) for s in streams(hbm)]
    seq = sequential(hbm, 32_000)
    return out + [compare(hbm, seq, driver, n, event) for n in pending if n != hbm.outstanding]


def calibrate_controller_ns(hbm: Hbm, gb_s: float, hit: float) -> float:
    """The ``controller_ns`` at which our HBM delivers ``gb_s`` on a stream of row-hit rate ``hit`` (bisection: the
    bandwidth falls as the fixed delay grows); how the preset's value is derived from Ramulator's in-order row."""
    lo, hi = 0.0, 1000.0
    hbm = hbm.model_copy(update={"model": "closed-queue"})
    if float(dram.achieved_gb_s(hbm.model_copy(update={"controller_ns": lo}), hit)) < gb_s:
        raise SpecError("--calibrate", f"{gb_s:.1f} GB/s is above what this HBM gives with no controller delay",
                        ["a bandwidth the buses and banks allow"])
    for _ in range(60):
        mid = (lo + hi) / 2
        fast = float(dram.achieved_gb_s(hbm.model_copy(update={"controller_ns": mid}), hit)) > gb_s
        lo, hi = (mid, hi) if fast else (lo, mid)
    return (lo + hi) / 2


def calibration(hbm: Hbm, driver: Path | None) -> str:
    """One line: the controller delay that puts our in-order stream at Ramulator's, measured now (with a driver)
    or as recorded in measured.json."""
    if driver is None:
        rec = next(r for r in json.loads(MEASURED.read_text()) if r["stream"].startswith("in-order")
                   and r["pending"] == hbm.outstanding)
        gb_s, hit, where = float(rec["ramulator_gb_s"]), float(rec["ramulator_row_hit"]), f"recorded in {MEASURED.name}"
    else:
        row = compare(hbm, sequential(hbm, 32_000), driver, hbm.outstanding)
        gb_s, hit, where = float(row["ramulator_gb_s"]), float(row["ramulator_row_hit"]), "measured now"
    c = calibrate_controller_ns(hbm, gb_s, hit)
    return (f"controller_ns = {c:.2f} ns puts our in-order stream at Ramulator 2.0's {gb_s:.1f} GB/s (row hit "
            f"{hit:.2f}, {hbm.outstanding} requests in flight, {where}); the arch has {hbm.controller_ns}")


def table(rows: list[dict[str, object]]) -> str:
    """The rows as text: our GB/s beside Ramulator's, and the deviation; the event replay's columns when run."""
    event = any("event_gb_s" in r for r in rows)
    lines = [f"{'stream':<72} {'pend':>4} {'ours GB/s':>9} {'hit':>5}"
             + (f" {'event GB/s':>10} {'hit':>5} {'lat ns':>6} {'ev ch mean':>10}" if event else "")
             + f" {'Ramulator':>9} {'hit':>5} {'lat ns':>6} {'dev':>6} {'ours@its act':>12} {'Ram. ch mean':>12}"]
    for r in rows:
        ram = r.get("ramulator_gb_s")
        mid = ("" if not event else f" {r['event_gb_s']:>10.1f} {r['event_row_hit']:>5.2f} "
               f"{r['event_latency_ns']:>6.1f} {r['event_channel_mean_gb_s']:>10.1f}")
        tail = ("" if ram is None else
                f" {ram:>9.1f} {r['ramulator_row_hit']:>5.2f} {r['ramulator_latency_ns']:>6.1f} "
                f"{r['ours_gb_s'] / ram - 1:>+6.1%} {r['ours_on_its_activates_gb_s']:>12.1f} "
                f"{r['ramulator_channel_mean_gb_s']:>12.1f}")
        lines.append(f"{r['stream']:<72} {r['pending']:>4} {r['ours_gb_s']:>9.1f} {r['ours_row_hit']:>5.2f}{mid}{tail}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m attnforge.sim.memory.ramulator_check", description=__doc__.split("\n")[0])
    ap.add_argument("--ramulator", type=Path, default=os.environ.get("RAMULATOR2_DIR"),
                    help="a built Ramulator 2.0 tree (default $RAMULATOR2_DIR)")
    ap.add_argument("--ours-only", action="store_true", help="our model's side only (no Ramulator needed)")
    ap.add_argument("--arch", default="spatten", help="the arch whose hbm section is compared (default spatten)")
    ap.add_argument("--set", action="append", metavar="KEY=VALUE",
                    help="override an arch field for our side, e.g. hbm.row_bytes=2048 (repeatable)")
    ap.add_argument("--pending", type=int, action="append", metavar="N",
                    help="requests in flight per channel for the in-order stream's extra rows (default 1, 4, 8, 12, 20, 24, 32; "
                         "repeatable)")
    ap.add_argument("--event", action="store_true",
                    help="also replay every stream through the event-level HBM2 model (sim/memory/hbm_events.py), "
                         "which needs no Ramulator; ~30 s")
    ap.add_argument("--json", action="store_true", help="one JSON list instead of the table")
    ap.add_argument("--calibrate", action="store_true",
                    help="print the hbm.controller_ns that matches Ramulator's in-order stream (with --ours-only: "
                         "the recorded run) instead of the table")
    args = ap.parse_args(argv)
    try:
        arch = load_arch(args.arch, parse_overrides(args.set))
        if not isinstance(arch, SpattenArch):
            raise SpecError("--arch", f"{args.arch} has no hbm section", ["spatten", "spatten-1-8"])
        if not args.ours_only and args.ramulator is None:
            raise SpecError("--ramulator", "no Ramulator 2.0 tree given (or $RAMULATOR2_DIR); --ours-only runs "
                            "without it", ["a built Ramulator 2.0 tree"])
        pending = tuple(args.pending or PENDING)
        if args.calibrate and (args.json or args.pending or args.event):
            raise SpecError("--calibrate", "prints one line from the in-order row at the arch's requests in flight; "
                            "--json, --pending and --event belong to the table",
                            ["--calibrate alone, or the table's options"])
        if any(o.split("=")[0].strip() == "hbm.model" for o in args.set or []):
            raise SpecError("--set", "the 'ours' columns are the closed queue whatever hbm.model says (the replay is "
                            "the --event columns), so hbm.model cannot be set here", ["other hbm fields"])
        if any(n < 1 for n in pending):
            raise SpecError("--pending", f"requests in flight must be >= 1, got {min(pending)}", ["1, 2, ..."])
        driver = None if args.ours_only else build_driver(Path(args.ramulator))
    except SpecError as exc:
        print(f"ramulator_check: error: {exc}", file=sys.stderr)
        return 2
    if args.calibrate:
        try:
            print(calibration(arch.hbm, driver))
        except (SpecError, StopIteration) as exc:
            msg = exc if isinstance(exc, SpecError) else f"no in-order row at {arch.hbm.outstanding} in flight recorded"
            print(f"ramulator_check: error: {msg}", file=sys.stderr)
            return 2
        return 0
    out = rows(arch.hbm, driver, pending, args.event)
    print(json.dumps(out, indent=1) if args.json else table(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
