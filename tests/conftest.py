"""Make the repository root importable when the package is not installed (no ``pip install -e .``): the
``attnforge`` package then extends its own path to this checkout's folders (see attnforge/__init__.py)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
