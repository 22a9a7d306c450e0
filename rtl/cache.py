"""Where attnforge keeps what it builds: exported Verilog (:mod:`attnforge.rtl.export`'s store), built simulators
(:mod:`attnforge.rtl.regress`) and fastbench runs. Its own module, without Amaranth or cocotb, so the exporter and the
regression runner both use it without importing each other.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

#: The folder that holds the ``attnforge`` package (site-packages, or the checkout): the simulator's Python must
#: import attnforge from there.
IMPORT_ROOT = Path(__import__("attnforge").__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Where built simulators live: ``$ATTNFORGE_CACHE`` or ``~/.cache/attnforge``, never inside the package, one
    folder per checkout and Python environment: a simulator's Makefile and objects hold absolute paths into both
    (the exported sources, cocotb's shared objects), so a build made by another clone or venv sharing the cache must
    never be reused (it fails to rebuild, or runs the other checkout's design)."""
    base = os.environ.get("ATTNFORGE_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "attnforge")
    key = hashlib.sha1(json.dumps([str(IMPORT_ROOT), sys.prefix]).encode()).hexdigest()[:10]
    return Path(base) / f"checkout-{key}" / "rtl-build"


@contextlib.contextmanager
def folder_lock(folder: Path, optional: bool = False) -> Iterator[None]:
    """Hold ``folder``'s lock file (beside it) for the block: pytest-xdist workers and parallel regress processes
    share build, work and export-store folders (same design, parameters and case), and two runs writing one
    folder's inputs, sources or simulator at once corrupt each other's run (or, for an export, elaborate the same
    design twice at once). Processes that need the folder take turns. ``optional``: where the lock file cannot be
    made (a read-only cache) the block runs unlocked instead of failing."""
    import fcntl

    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        lock = open(folder.with_name(folder.name + ".lock"), "w")  # noqa: SIM115 - closed below, after the yield
    except OSError:
        if not optional:
            raise
        lock = None
    if lock is None:  # outside the handler: an error in the block is not reported as raised while handling this one
        yield
        return
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
