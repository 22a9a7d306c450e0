"""The Python API: the same Scenario -> fidelity -> Results path the CLI takes, for notebooks and scripts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from attnforge.sim.analytical.engine import run
from attnforge.sim.analytical.result import Result
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.scenario import Scenario


def simulate(scenario: Scenario | None = None, /, **options: Any) -> list[Result]:
    """Run a Scenario (or build one from ``Scenario.build``'s keyword options) through the analytical engine.

    >>> [r.cycles for r in simulate(accelerator="fusemax", workload="bert-base", seq_lens=[1024])]  # doctest: +SKIP
    """
    if scenario is not None and options:
        raise SpecError("simulate", "pass a Scenario or its options, not both")
    sc = scenario if scenario is not None else Scenario.build(**options)
    if sc.fidelity != "analytical":
        raise SpecError("fidelity", "attnforge.simulate runs the analytical engine; the cycle model runs from "
                        "`attnforge simulate --fidelity cycle`", ["analytical"])
    return run(sc)


def to_frame(results: Sequence[Result]) -> pd.DataFrame:
    """One row per Result with the Scenario's accelerator, arch, overrides, policy and version as columns."""
    from attnforge.reports.tables import results_frame

    return results_frame(results)


def sweep(spec: str | Path, out: str | Path, *, backend: str = "local", workers: int | None = None,
          progress: bool = False) -> pd.DataFrame:
    """Run a sweep spec (a YAML file, or the name of a packaged one such as ``example``) into ``out``; resumable."""
    from attnforge.sweep_runner import get_backend, load_spec, run_sweep

    return run_sweep(load_spec(spec), Path(out), get_backend(backend, None, workers), progress=progress)


def spatten_benchmarks(names: Sequence[str] | None = None) -> pd.DataFrame:
    """SpAtten's paper benchmarks one by one (all 30, or those matching ``names``: exact names or shell patterns such
    as ``["gpt2-*"]``): the table of ``attnforge reproduce spatten --per-benchmark``, one row per benchmark
    (docs/spatten.md §Per-benchmark results)."""
    from attnforge.reports.spatten_per_benchmark import per_benchmark, select

    return per_benchmark(select(names))
