"""Make the repository root importable when the package is not installed (no ``pip install -e .``)."""

from __future__ import annotations

import importlib.util
import sys
from importlib.machinery import ModuleSpec
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

#: The repository's top-level folders and their import names (pyproject.toml's package-dir).
FOLDERS = {"attnforge.sim": "sim", "attnforge.rtl": "rtl", "attnforge.mappings": "mappings",
           "attnforge.workloads": "workloads", "attnforge.reports": "reports"}


class _CheckoutFinder:
    """This checkout's folders first. A git worktree tested with another checkout's editable install would
    otherwise import that checkout's ``attnforge.sim`` (``attnforge/__init__.py`` imports it before extending its
    path to the checkout, so the install's finder answers)."""

    @staticmethod
    def find_spec(fullname: str, path: object = None, target: object = None) -> ModuleSpec | None:
        if fullname not in FOLDERS:
            return None
        folder = ROOT / FOLDERS[fullname]
        return importlib.util.spec_from_file_location(fullname, folder / "__init__.py",
                                                      submodule_search_locations=[str(folder)])


if "attnforge" not in sys.modules:
    sys.meta_path.insert(0, _CheckoutFinder)
