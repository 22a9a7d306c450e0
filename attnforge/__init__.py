"""attnforge: simulate, generate RTL for, and verify attention accelerators (FuseMax, SpAtten, FLAT, unfused).

The small public API (everything else is reachable, but may move between releases)::

    import attnforge
    sc = attnforge.Scenario.build(accelerator="fusemax", workload="bert-base", seq_lens=[1024, 4096])
    results = attnforge.simulate(sc)            # list of Result, each carrying its Scenario
    df = attnforge.to_frame(results)            # one pandas row per point
    df = attnforge.sweep("example", "out/sweep")  # a packaged or user sweep spec -> DataFrame
    df = attnforge.spatten_benchmarks()         # SpAtten's 30 paper benchmarks, one row each

Installed, the repository's top-level folders live under this one import name (``attnforge.sim``,
``attnforge.rtl``, ``attnforge.mappings``, ``attnforge.workloads``, ``attnforge.reports``). Run from a checkout
without installing, the folders sit beside this package instead of inside it; the path extension below lets the
same import names find them there, so a checkout, an editable and a normal install all import the same way.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

_ROOT = Path(__file__).resolve().parent.parent
if (_ROOT / "pyproject.toml").is_file() and (_ROOT / "sim" / "__init__.py").is_file():
    __path__.append(str(_ROOT))  # noqa: F821 - a package's own __path__: checkout layout (see docstring)

from attnforge.sim.specs.version import __version__  # noqa: E402 - after the path extension, which it needs

if TYPE_CHECKING:  # pragma: no cover
    from attnforge.api import simulate, spatten_benchmarks, sweep, to_frame
    from attnforge.sim.specs.scenario import Scenario

_LAZY = {
    "Scenario": ("attnforge.sim.specs.scenario", "Scenario"),
    "simulate": ("attnforge.api", "simulate"),
    "sweep": ("attnforge.api", "sweep"),
    "spatten_benchmarks": ("attnforge.api", "spatten_benchmarks"),
    "to_frame": ("attnforge.api", "to_frame"),
}


def __getattr__(name: str) -> Any:
    """Import the API on first use, so ``import attnforge`` (and the CLI's start-up) stays light."""
    if name in _LAZY:
        import importlib

        mod, attr = _LAZY[name]
        return getattr(importlib.import_module(mod), attr)
    raise AttributeError(f"module 'attnforge' has no attribute {name!r}")


__all__ = ["Scenario", "__version__", "simulate", "spatten_benchmarks", "sweep", "to_frame"]
