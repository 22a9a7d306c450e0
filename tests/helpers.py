"""Shorthands for tests written against a Workload: each builds the Scenario and runs the one engine path."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from attnforge.sim.analytical.engine import run
from attnforge.sim.analytical.result import Result
from attnforge.sim.specs.scenario import Scenario
from attnforge.workloads import Workload


def simulate(accel: str, wl: Workload, scope: str = "attention", arch: Any = None, tiles: Any = None) -> Result:
    return run(Scenario.for_workload(accel, wl, scope=scope, arch=arch, tiles=tiles))[0]


def simulate_sweep(accel: str, wl: Workload, seqs: Sequence[int], scope: str = "attention", arch: Any = None) -> list[Result]:
    """All lengths in one call: M = each length, P = M (prefill) or the workload's P (decode)."""
    sc = Scenario.for_workload(accel, wl, scope=scope, arch=arch)
    ms = tuple(int(s) for s in seqs)
    ps = ms if wl.stage == "prefill" else tuple(wl.p for _ in ms)
    return run(sc.with_(p=ps, m=ms, batch=tuple(wl.batch for _ in ms)))
