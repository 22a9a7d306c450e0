"""Phase lines for slow work ("[ 12.3s] synth fusemax-tile: nextpnr-ecp5 (router1)"), on stderr, so a user
watching a minutes-long command knows what it is doing; stdout (tables, JSON) stays clean.

On when stderr is a terminal, or with ``ATTNFORGE_PROGRESS=1`` (logs, tests); ``ATTNFORGE_PROGRESS=0`` silences
it. On the ground floor so that any layer doing slow work (synthesis in rtl, the paper reproduction in reports)
can say so without importing the front.
"""

from __future__ import annotations

import os
import sys
import time

_T0 = time.perf_counter()


def enabled() -> bool:
    flag = os.environ.get("ATTNFORGE_PROGRESS")
    if flag is not None:
        return flag not in ("", "0")
    return sys.stderr.isatty()


def phase(message: str) -> None:
    """One line: seconds since the process started, then what starts now."""
    if enabled():
        print(f"[{time.perf_counter() - _T0:6.1f}s] {message}", file=sys.stderr, flush=True)
