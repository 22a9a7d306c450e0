"""The layers of docs/architecture.md, checked on every import (top-level and inside functions): an arrow only
points down, models never import rtl, and no module-level import cycle exists."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"attnforge": "attnforge", "sim": "attnforge.sim", "rtl": "attnforge.rtl", "mappings": "attnforge.mappings",
           "workloads": "attnforge.workloads", "reports": "attnforge.reports"}
#: Lower number = lower floor. A module may import its own floor or a lower one.
FLOORS = {"ground": 0, "contract": 1, "specs": 2, "rtl": 3, "models": 4, "front": 5}


def layer(module: str) -> str:
    """Which layer a module (dotted, under attnforge) belongs to."""
    parts = module.split(".")[1:]
    head = parts[0] if parts else ""
    if module == "attnforge.sim.specs.errors":
        return "ground"  # the one-line SpecError every layer raises
    if head in ("", "reports") or head not in ("sim", "rtl", "mappings", "workloads"):
        return "front"  # the attnforge/ folder itself and reports/
    if head == "rtl":
        return "rtl"
    if head == "workloads" or module.startswith(("attnforge.sim.specs", "attnforge.mappings.spec",
                                                 "attnforge.mappings.catalog", "attnforge.mappings.files",
                                                 "attnforge.sim.analytical.cascade")):
        # cascade and mapping files are specs like arch files (docs/variants.md): data, checked once
        return "specs"
    if module.startswith("attnforge.sim.contract"):
        return "contract"
    return "models"


def modules() -> dict[str, Path]:
    out = {}
    for folder, name in FOLDERS.items():
        for f in (ROOT / folder).rglob("*.py"):
            rel = f.relative_to(ROOT / folder).with_suffix("")
            parts = [p for p in rel.parts if p != "__init__"]
            out[".".join([name, *parts])] = f
    return out


def imports(path: Path, top_only: bool = False) -> set[str]:
    tree = ast.parse(path.read_text())
    nodes = tree.body if top_only else list(ast.walk(tree))
    found: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("attnforge"):
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("attnforge"))
    return found


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None




def test_arrows_only_point_down() -> None:
    mods = modules()
    bad = []
    for mod, path in mods.items():
        if mod.startswith("attnforge.rtl.benches"):
            continue  # benches are the verification harness: they may read goldens and the front's data
        src = layer(mod)
        for imp in imports(path):
            target = _resolve(imp, mods)
            if target is None or target == "attnforge":
                continue
            dst = layer(target)
            if FLOORS[dst] > FLOORS[src] or (src == "models" and dst == "rtl"):
                bad.append((mod, target))
    assert sorted(set(bad)) == [], "arrows running up (see docs/architecture.md)"


@pytest.mark.parametrize("top_only", [True, False], ids=["module-level", "all-imports"])
def test_no_import_cycles(top_only: bool) -> None:
    """No cycle among module-level imports; and none even counting the imports inside functions, so those are
    only lazy loading (the CLI starts without amaranth, cocotb, torch), never a way around a cycle."""
    mods = modules()
    graph = {m: {t for i in imports(p, top_only=top_only) if (t := _resolve(i, mods)) and t != m} for m, p in mods.items()}
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in graph.get(m, ()):
            if state.get(t) == 1:
                cycles.append(" -> ".join([*stack[stack.index(t):], t]))
            elif t not in state:
                visit(t, [*stack, t])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not cycles
