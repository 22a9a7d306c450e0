"""The hardware contract (attnforge.sim.contract): importable without amaranth, layouts that pack and unpack
losslessly, port widths of every registered design equal to its contract, the Amaranth adapter reading the same
bits as the Python unpacker, and the export manifest carrying every stream layout and config word."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from attnforge.sim.contract import Array, Field, flatten, for_design, lanes, pack, struct, unpack
from attnforge.sim.contract import designs as contract

ROOT = Path(__file__).resolve().parent.parent


def test_contract_imports_without_amaranth() -> None:
    """Models import the contract; it must not drag the RTL toolchain in (every design's contract built too)."""
    code = ("import sys\nimport attnforge.sim.contract as c\n"
            "from attnforge.sim.contract.spatten_fx import SpattenFx\n"
            "for name, p in (('pe', {}), ('vector1d', {}), ('topk', {}), ('fusemax-tile', {})):\n"
            "    getattr(c.designs, name.replace('-', '_'))(**p).to_json()\n"
            "c.designs.spatten_pipeline(SpattenFx()).to_json()\n"
            "import attnforge.sim.spatten.cycle_model, attnforge.sim.fusemax.cycle_model, attnforge.sim.spatten.topk_golden\n"
            "assert 'amaranth' not in sys.modules, sorted(m for m in sys.modules if m.startswith('amaranth'))\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def _random_value(layout: object, rng: np.random.Generator) -> object:
    if isinstance(layout, Field):
        lo, hi = (-(1 << (layout.width - 1)), 1 << (layout.width - 1)) if layout.signed else (0, 1 << layout.width)
        return int(rng.integers(lo, hi))
    if isinstance(layout, Array):
        return [_random_value(layout.elem, rng) for _ in range(layout.count)]
    return {f.name: _random_value(f, rng) for f in layout.fields}


NESTED = struct("beat", lanes("scores", 5, 7, True), Array("v", lanes("row", 3, 4, True), 2), Field("count", 3),
                struct("job", Field("n", 9), Field("alpha", 1)))


@pytest.mark.parametrize("layout", [Field("x", 1), Field("s", 13, True), lanes("l", 7, 5), lanes("sl", 4, 12, True), NESTED],
                         ids=lambda x: x.name)
def test_pack_unpack_roundtrip(layout: object) -> None:
    rng = np.random.default_rng(0)
    for _ in range(200):
        v = _random_value(layout, rng)
        word = layout.pack(v)
        assert 0 <= word < 1 << layout.width
        assert layout.unpack(word) == v


def test_layout_geometry() -> None:
    assert NESTED.width == 5 * 7 + 2 * 3 * 4 + 3 + 10
    assert NESTED.offsets == {"scores": 0, "v": 35, "count": 59, "job": 62}
    rows = flatten(NESTED)
    assert [r["path"] for r in rows[:2]] == ["scores[0]", "scores[1]"] and rows[-1]["path"] == "job.alpha"
    assert sum(r["width"] for r in rows) == NESTED.width
    assert all(a["offset"] + a["width"] == b["offset"] for a, b in zip(rows, rows[1:], strict=False))
    # short arrays are zero-padded, negative lanes two's complement; extra members are refused
    assert lanes("l", 3, 4, True).pack([-1]) == 0xF
    with pytest.raises(KeyError):
        struct("s", Field("a", 2)).pack({"a": 1, "b": 2})
    with pytest.raises(ValueError):
        lanes("l", 2, 4).pack([1, 2, 3])


def test_lane_helpers_match_the_old_formula() -> None:
    rng = np.random.default_rng(1)
    vals = [int(v) for v in rng.integers(-128, 128, 9)]
    want = sum((v & 0xFF) << (8 * i) for i, v in enumerate(vals))
    assert pack(vals, 8) == want and unpack(want, 9, 8) == vals
    assert unpack(want, 9, 8, is_signed=False) == [v & 0xFF for v in vals]


def _defaults(design: str) -> dict[str, int]:
    from attnforge.rtl.registry import parse_params

    return parse_params(design, {})


@pytest.mark.parametrize("design", contract.DESIGN_NAMES)
def test_port_widths_equal_contract(design: str) -> None:
    from attnforge.rtl.registry import DESIGNS, build

    assert set(contract.DESIGN_NAMES) == set(DESIGNS)
    p = _defaults(design)
    comp = build(design, p)
    c = for_design(design, p)
    for name, s in c.streams.items():
        port = getattr(comp, name)
        assert len(port.payload) == s.layout.width, (design, name)
        assert (s.direction == "in") == (name in {n for n, m in comp.signature.members.items() if m.flow.name == "In"})


@pytest.mark.parametrize(("design", "stream"), [("softmax", "i"), ("spatten-pipeline", "q"), ("topk", "o"), ("pv", "i")])
def test_amaranth_view_reads_the_contract_bits(design: str, stream: str) -> None:
    """The one adapter (rtl.common.to_amaranth / view) places every scalar where the Python packer does."""
    from amaranth import Module, Signal
    from amaranth.sim import Simulator

    from attnforge.rtl.common import to_amaranth, view

    layout = for_design(design, _defaults(design))[stream]
    assert to_amaranth(layout).size == layout.width
    sig = Signal(layout.width)
    v = view(layout, sig)
    leaves: list[tuple[str, object]] = []

    def walk(lay: object, val: object, path: str) -> None:
        if isinstance(lay, Field):
            leaves.append((path, val))
        elif isinstance(lay, Array):
            for i in range(lay.count):
                walk(lay.elem, val[i], f"{path}[{i}]")
        else:
            for f in lay.fields:
                walk(f, getattr(val, f.name), f"{path}.{f.name}" if path else f.name)

    walk(layout, v, "")
    want = {r["path"]: r for r in flatten(layout)}
    sim = Simulator(Module())
    rng = np.random.default_rng(2)
    value = _random_value(layout, rng)
    word = layout.pack(value)

    async def tb(ctx) -> None:
        ctx.set(sig, word)
        for path, leaf in leaves:
            r = want[path]
            raw = (word >> r["offset"]) & ((1 << r["width"]) - 1)
            exp = raw - (1 << r["width"]) if r["signed"] and raw >> (r["width"] - 1) else raw
            assert ctx.get(leaf) == exp, path

    sim.add_testbench(tb)
    sim.run()
    assert len(leaves) == len(want)


#: Parameters the fast set exports anyway (docs/guide.md's tile, the quick regression's top-k), so this test reads
#: them from the export store instead of elaborating one more instance.
MANIFEST_PARAMS: dict[str, dict[str, int]] = {"topk": {"comparators": 4, "max_n": 64}}


@pytest.mark.parametrize("design", ["fusemax-tile", "topk", "spatten-pipeline"])
def test_manifest_carries_layouts(design: str, tmp_path: Path) -> None:
    from attnforge.rtl.export import export
    from attnforge.rtl.registry import parse_params

    params = parse_params(design, MANIFEST_PARAMS.get(design, {}))
    export(design, params, tmp_path)
    man = json.loads((tmp_path / f"{design.replace('-', '_')}.json").read_text())
    ports = {p["name"]: p["width"] for p in man["ports"]}
    c = for_design(design, params)
    assert set(man["streams"]) == set(c.streams)
    for name, s in man["streams"].items():
        assert s["width"] == ports[f"{name}__payload"] == c[name].width
        assert s["layout"] == c[name].to_json() and s["beats"] and s["dir"] in ("in", "out")
        assert sum(f["width"] for f in s["fields"]) == s["width"]
    assert set(man["words"]) == set(c.words)
    if design == "fusemax-tile":
        cfg = man["words"]["cfg"]
        assert [f["path"] for f in cfg["fields"]] == ["n_tiles", "alpha.alpha_q", "alpha.alpha_sh", "pad_keys", "causal", "diag"]
        assert man["streams"]["q"]["lanes"].startswith("p0") and "E beats" in man["streams"]["q"]["beats"]
