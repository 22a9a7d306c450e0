"""Where attnforge keeps what it builds: exported Verilog (:mod:`attnforge.rtl.export`'s store), built simulators
(:mod:`attnforge.rtl.regress`) and fastbench runs. Its own module, without Amaranth or cocotb, so the exporter and the
regression runner both use it without importing each other.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
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
