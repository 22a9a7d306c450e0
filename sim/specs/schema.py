"""The arch spec's reference page, generated from the pydantic models: ``python -m attnforge.sim.specs.schema``.

``docs/arch-schema.md`` is this module's output, committed; ``tests/test_docs_schema.py`` regenerates it and
fails on any difference, so the page never drifts from ``sim/specs/arch.py``. Each model becomes a table of its
fields (name, type, default, constraints, the ``#:`` comment above the field) under the model's docstring.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from attnforge.sim.specs.arch import (
    Arch,
    Buffer,
    CascadeArch,
    ComputeArray,
    Dram,
    OpCost,
    RegisterFile,
    RtlPipeline,
    SpattenArch,
    SpattenModules,
    SpattenTop,
)

#: The models in page order: the shared fields, each family, then the sections they hold.
MODELS: tuple[type[BaseModel], ...] = (Arch, CascadeArch, ComputeArray, OpCost, RegisterFile, Buffer, Dram,
                                       RtlPipeline, SpattenArch, SpattenModules, SpattenTop)

#: What a field means where its class body has no ``#:`` comment for it (the comment wins once someone adds one).
NOTES: dict[str, str] = {
    "Arch.family": "Which model validates the file: `cascade` (default when absent) or `spatten`.",
    "Arch.name": "The arch's name, shown in every report header and output row.",
    "Arch.description": "One line for `attnforge list`.",
    "Arch.clock_mhz": "Clock in MHz; cycles become seconds at this rate.",
    "Arch.word_bits": "Bits per word of on-chip data (buffer energies are per word).",
    "Arch.dram": "Off-chip memory (its bandwidth).",
    "Arch.leakage_w": "Static power in watts, charged for the run's latency.",
    "Arch.area_um2": "Area figures in um2: `pe_<group>` per PE of each compute group, `buffer_per_byte` per byte "
                     "of on-chip SRAM.",
    "Arch.sources": "Where the values come from (free text per key; presets cite their papers and artifacts).",
    "CascadeArch.family": "`cascade` (may be left out).",
    "CascadeArch.arrays": "Compute arrays by name (`2d`, `1d`); each name is also an energy-table component.",
    "CascadeArch.buffer": "The global on-chip buffer.",
    "ComputeArray.dims": "PEs per dimension: `[rows, cols]` for a 2D array, `[lanes]` for a 1D one.",
    "ComputeArray.ops": "The operators this array can run (mac, add, max, exp, mul, div) and what each costs.",
    "ComputeArray.rf": "The register file of each PE.",
    "OpCost.cycles": "Cycles one PE spends per application (its throughput).",
    "OpCost.actions": "Energy actions fired per application, e.g. `{mac: 6, add: 1}` for exp on FuseMax's PEs.",
    "RegisterFile.words": "Words per PE.",
    "RegisterFile.ref_words": "Depth the array's `rf_read`/`rf_write` energies and its `area_um2.pe_<array>` describe "
                              "(None: no scaling with `words`).",
    "RegisterFile.area_um2_per_word": "PE area per RF entry beyond (or short of) `ref_words`.",
    "Buffer.bytes": "Capacity in bytes.",
    "Buffer.energy_ref_bytes": "Capacity the `energy.buffer` figures were measured at (None: no scaling).",
    "Dram.bandwidth_gib_s": "Bandwidth in GiB/s (2**30 bytes per second).",
    "SpattenArch.family": "`spatten` (required for this family).",
    "SpattenArch.spatten": "The SpAtten datapath's modules.",
}

_CONSTRAINTS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<=", "min_length": "min length", "max_length": "max length"}


def _constraints(metadata: list[Any]) -> list[str]:
    out = []
    for m in metadata:
        for attr, label in _CONSTRAINTS.items():
            val = getattr(m, attr, None)
            if val is not None:
                out.append(f"{label} {val}")
        if isinstance(m, FieldInfo):
            out.extend(_constraints(m.metadata))
    return out


def type_name(tp: Any) -> str:
    """A field annotation as a reader writes it: ``dict[str, float (>= 0)]``, ``int (> 0)``, ``ComputeArray``."""
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        base, *meta = typing.get_args(tp)
        cons = _constraints(meta)
        return type_name(base) + (f" ({', '.join(cons)})" if cons else "")
    if origin is typing.Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join("..." if a is Ellipsis else type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    if tp is type(None):
        return "None"
    return getattr(tp, "__name__", str(tp))


def field_comments(cls: type) -> dict[str, str]:
    """Field name -> the ``#:`` comment lines just above it in the class body (pydantic does not keep them)."""
    out: dict[str, str] = {}
    pending: list[str] = []
    for line in inspect.getsource(cls).splitlines():
        text = line.strip()
        if text.startswith("#:"):
            pending.append(text[2:].strip())
            continue
        hit = re.match(r"(\w+)\s*:", text)
        if hit and pending:
            out[hit.group(1)] = " ".join(pending)
        pending = []
    return out


def _default(f: FieldInfo) -> str:
    if f.default_factory is not None:
        return f"`{f.default_factory()!r}`"  # type: ignore[call-arg]
    if f.default is PydanticUndefined:
        return "required"
    return f"`{f.default!r}`"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def model_section(cls: type[BaseModel]) -> str:
    """One model: its docstring, then a table of the fields it declares itself (inherited ones are listed once)."""
    doc = inspect.cleandoc(cls.__doc__ or "")
    bases = [b.__name__ for b in cls.__bases__ if b in MODELS]
    lines = [f"## {cls.__name__}", "", doc, ""]
    if bases:
        lines += [f"Also has every field of {', '.join(bases)}.", ""]
    comments = {}
    for klass in reversed(cls.__mro__):
        if isinstance(klass, type) and issubclass(klass, BaseModel) and klass is not BaseModel:
            comments.update(field_comments(klass))
    own = {n: f for n, f in cls.model_fields.items() if n in cls.__dict__.get("__annotations__", {})}
    lines += ["| field | type | default | constraints | description |", "|---|---|---|---|---|"]
    for name, f in own.items():
        cons = ", ".join(_constraints(f.metadata)) or ""
        lines.append(f"| `{name}` | {_cell(type_name(f.annotation))} | {_cell(_default(f))} | {cons} | "
                     f"{_cell(comments.get(name) or NOTES.get(f'{cls.__name__}.{name}', ''))} |")
    return "\n".join(lines) + "\n"


def render() -> str:
    """The whole page (deterministic, so the committed copy can be compared byte for byte)."""
    head = (
        "# Arch spec reference\n\n"
        "Generated from the pydantic models in `sim/specs/arch.py` by `python -m attnforge.sim.specs.schema > "
        "docs/arch-schema.md`;\ndo not edit by hand (`tests/test_docs_schema.py` fails when it differs from the "
        "models).\n\n"
        "An arch file is YAML. `family` chooses the model (`cascade`, the default, or `spatten`); `extends: PRESET` "
        "starts\nfrom a shipped preset (`attnforge list`) and deep-merges the file over it; `--set a.b=V` and a sweep's "
        "`arch:` keys\nchange one dotted field. Unknown fields are refused by name. The user guide "
        "([guide.md](guide.md)) shows\nhow to write one.\n"
    )
    return head + "\n" + "\n".join(model_section(m) for m in MODELS)


def main() -> int:
    sys.stdout.write(render())
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
