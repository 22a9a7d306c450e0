"""One function exports any registered design to Verilog plus a JSON manifest.

The manifest is what a testbench or an integrator needs without reading Python: the ports (from the
component's signature, with direction and width), the parameters, every stream's payload layout and every config
word from the hardware contract (:mod:`attnforge.sim.contract`: fields with offsets, widths, signedness, lanes, and
the beat and lane axes), and the golden model's settings (widths, rounding rules, error bound), so a Verilog user
can slice the flat payloads and reproduce the arithmetic.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from amaranth.lib import wiring

from attnforge.rtl.cache import folder_lock
from attnforge.rtl.registry import build, get_design, parse_params
from attnforge.sim.contract import for_design

os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")


def ports(component: wiring.Component) -> list[dict[str, object]]:
    """Flattened ports as exported by Amaranth (path joined with ``__``), plus clk and rst."""
    out: list[dict[str, object]] = [{"name": "clk", "dir": "in", "width": 1}, {"name": "rst", "dir": "in", "width": 1}]
    for path, member, value in component.signature.flatten(component):
        out.append({"name": "__".join(str(p) for p in path), "dir": "in" if member.flow == wiring.In else "out",
                    "width": len(value)})
    return out


def top_name(design: str) -> str:
    return design.replace("-", "_")


def export(design: str, params: Mapping[str, int] | list[str] | None, out_dir: str | Path,
           dsp: str | None = None) -> dict[str, object]:
    """Write ``<top>.v`` and ``<top>.json`` into ``out_dir``; returns the manifest. A folder that already holds this
    design's export at these parameters, made from the same generator sources (``source_key``), is reused as it is:
    elaborating a whole top takes Amaranth 20-30 s, and a whole-model run exports its instance once per layer.
    ``dsp`` (e.g. ``"ecp5"``) writes every multiplier as that FPGA's DSP primitive with its own registers
    (:mod:`attnforge.rtl.dsp`), for a vendor synthesis flow; such Verilog needs the vendor's simulation library."""
    p = parse_params(design, params)
    name = top_name(design)
    out = Path(out_dir)
    vpath, mpath = out / f"{name}.v", out / f"{name}.json"
    key = hashlib.sha256(json.dumps([design, p, source_key(), dsp], sort_keys=True).encode()).hexdigest()
    cached = _reusable(vpath, mpath, key)
    if cached is not None:
        return cached
    store = _store_dir(key)
    with folder_lock(store, optional=True) if store is not None else contextlib.nullcontext():
        # another process exporting the same key finishes first and this one copies its result (the fast set's two
        # workers export the guide's fusemax-tile from two tests, which can run at the same time)
        stored = _from_store(name, key, out)
        if stored is not None:
            return stored
        return _elaborate(design, p, dsp, name, key, vpath, mpath)


def _elaborate(design: str, p: dict[str, int], dsp: str | None, name: str, key: str, vpath: Path,
               mpath: Path) -> dict[str, object]:
    """Amaranth's Verilog of ``design`` at ``p`` written to ``vpath`` with its manifest, and kept in the store."""
    from amaranth.back import verilog

    from attnforge.rtl.dsp import dsp_primitives

    comp = build(design, p)
    with dsp_primitives(dsp):
        text = verilog.convert(comp, name=name, emit_src=False)
    vpath.parent.mkdir(parents=True, exist_ok=True)
    _write_if_changed(vpath, text)
    d = get_design(design)
    manifest: dict[str, object] = {
        "design": design, "top": name, "verilog": vpath.name, "description": d.description, "parameters": p,
        "ports": ports(comp), **for_design(design, p).to_json(), "golden": d.golden(p), "clock": "clk (posedge)",
        "reset": "rst (synchronous, active high)", "dsp_primitives": dsp,
        "payload_packing": "lane i in bits [i*w, (i+1)*w), two's complement", "sha256": hashlib.sha256(text.encode()).hexdigest(),
        "source_key": key,
    }
    _write_if_changed(mpath, json.dumps(manifest, indent=2))
    _to_store(name, key, vpath, mpath)
    return manifest


def _store_dir(key: str) -> Path | None:
    """Where an export made with ``key`` is kept for every later export of it (into any folder, by any process):
    beside the built simulators (:func:`attnforge.rtl.cache.cache_dir`), one folder per key. Why: the key already
    names everything the Verilog comes from, and a test run or a regression exports the same design at the same
    parameters from many places (measured: 34 of the fast test set's 92 s of export were repeats).
    ``ATTNFORGE_EXPORT_STORE=0`` turns it off."""
    if os.environ.get("ATTNFORGE_EXPORT_STORE", "1") == "0":
        return None
    from attnforge.rtl.cache import cache_dir

    return cache_dir().parent / "exports" / key[:32]


def _from_store(name: str, key: str, out: Path) -> dict[str, object] | None:
    """The stored export of ``key`` copied into ``out`` (its files left alone where already equal), or None."""
    store = _store_dir(key)
    if store is None:
        return None
    manifest = _reusable(store / f"{name}.v", store / f"{name}.json", key)
    if manifest is None:
        return None
    try:
        text, man = (store / f"{name}.v").read_text(), (store / f"{name}.json").read_text()
    except OSError:  # replaced by another process meanwhile: elaborate
        return None
    out.mkdir(parents=True, exist_ok=True)
    _write_if_changed(out / f"{name}.v", text)
    _write_if_changed(out / f"{name}.json", man)
    return manifest


def _to_store(name: str, key: str, vpath: Path, mpath: Path) -> None:
    """Keep a fresh export under its key: written to a private folder, then renamed into place, so a process that
    reads the store sees a whole export or none (two processes storing the same key: the first rename wins)."""
    store = _store_dir(key)
    if store is None:
        return
    if store.is_dir():
        if _reusable(store / vpath.name, store / mpath.name, key) is not None:
            return
        shutil.rmtree(store, ignore_errors=True)  # a damaged copy: replaced by this one
    tmp = store.parent / f".{store.name}.{os.getpid()}.tmp"
    try:
        tmp.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(vpath, tmp / vpath.name)
        shutil.copyfile(mpath, tmp / mpath.name)
        os.rename(tmp, store)
    except OSError:  # another process stored it first, or the cache is read-only: the export itself is done
        shutil.rmtree(tmp, ignore_errors=True)


@functools.cache
def source_key() -> str:
    """A hash of everything the Verilog is generated from: the RTL generators, the hardware contract and the
    Amaranth version (an edit to any of them changes it, so no stale export is ever reused)."""
    import amaranth

    here = Path(__file__).resolve().parent
    # rtl/ and sim/contract/ sit side by side both in the source tree and installed (attnforge/rtl, attnforge/sim)
    files = sorted([*here.rglob("*.py"), *(here.parent / "sim" / "contract").glob("*.py")])
    h = hashlib.sha256(amaranth.__version__.encode())
    for f in files:
        h.update(f.name.encode() + f.read_bytes())
    return h.hexdigest()


def _reusable(vpath: Path, mpath: Path, key: str) -> dict[str, object] | None:
    """The manifest of an export made with ``key`` whose Verilog is intact, else None."""
    try:
        manifest = json.loads(mpath.read_text())
        if manifest.get("source_key") == key and \
                hashlib.sha256(vpath.read_bytes()).hexdigest() == manifest.get("sha256"):
            return manifest
    except (OSError, ValueError):
        pass
    return None


def _write_if_changed(path: Path, text: str) -> None:
    """Leave a file untouched when its content is already ``text``: its timestamp then stays, so a simulator built
    from it (make compares timestamps) is reused instead of rebuilt: built models are keyed by content."""
    if path.is_file() and path.read_text() == text:
        return
    path.write_text(text)
