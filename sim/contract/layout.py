"""Plain-data bit layouts of stream payloads and config words: the one description the RTL, the Python packers and
the testbenches share, so a field's offset is written down once instead of being hand-sliced in three places.

A layout is a small frozen dataclass -- :class:`Field` (a scalar), :class:`Array` (``count`` equal elements, element
``i`` at bits ``[i*w, (i+1)*w)``) or :class:`Struct` (named members in order, the first in the lowest bits) -- with
``width``, ``pack``, ``unpack`` and ``to_json``. Nothing here imports amaranth: the RTL turns a layout into an
``amaranth.lib.data`` layout through one adapter (:func:`attnforge.rtl.common.to_amaranth`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union


def _mask(bits: int) -> int:
    return (1 << bits) - 1


@dataclass(frozen=True)
class Field:
    """A ``width``-bit integer, two's complement when ``signed``. ``name`` labels it inside a :class:`Struct`."""

    name: str
    width: int
    signed: bool = False

    def __post_init__(self) -> None:
        if self.width < 1:
            raise ValueError(f"field {self.name!r}: width must be >= 1, got {self.width}")

    def pack(self, value: int) -> int:
        """The value's low ``width`` bits (a negative value in two's complement); wider values are truncated, as the
        hardware truncates them."""
        return int(value) & _mask(self.width)

    def unpack(self, word: int) -> int:
        v = int(word) & _mask(self.width)
        return v - (1 << self.width) if self.signed and v >> (self.width - 1) else v

    def to_json(self) -> dict[str, Any]:
        return {"kind": "field", "name": self.name, "width": self.width, "signed": self.signed}


@dataclass(frozen=True)
class Array:
    """``count`` elements of one layout (the lanes of a beat); element ``i`` at bit ``i * elem.width``."""

    name: str
    elem: Layout
    count: int

    @property
    def width(self) -> int:
        return self.elem.width * self.count

    @property
    def offsets(self) -> list[int]:
        return [i * self.elem.width for i in range(self.count)]

    def pack(self, values: Sequence[Any]) -> int:
        """Elements -> one integer; fewer than ``count`` values leave the upper lanes zero (zero-padded beats)."""
        vals = list(values)
        if len(vals) > self.count:
            raise ValueError(f"array {self.name!r}: {len(vals)} values for {self.count} lanes")
        w = self.elem.width
        word = 0
        for i, v in enumerate(vals):
            word |= self.elem.pack(v) << (i * w)
        return word

    def unpack(self, word: int) -> list[Any]:
        w = self.elem.width
        return [self.elem.unpack(int(word) >> (i * w)) for i in range(self.count)]

    def to_json(self) -> dict[str, Any]:
        return {"kind": "array", "name": self.name, "width": self.width, "count": self.count,
                "stride": self.elem.width, "elem": self.elem.to_json()}


@dataclass(frozen=True)
class Struct:
    """Named members in order, the first in the lowest bits (Amaranth's ``StructLayout`` order)."""

    name: str
    fields: tuple[Layout, ...]

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"struct {self.name!r}: duplicate member names {names}")

    @property
    def width(self) -> int:
        return sum(f.width for f in self.fields)

    @property
    def offsets(self) -> dict[str, int]:
        out, off = {}, 0
        for f in self.fields:
            out[f.name] = off
            off += f.width
        return out

    def __getitem__(self, name: str) -> Layout:
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"struct {self.name!r} has no member {name!r}")

    def pack(self, values: Mapping[str, Any]) -> int:
        """Member values (every member named; nested members take nested mappings / sequences) -> one integer."""
        extra = set(values) - {f.name for f in self.fields}
        if extra:
            raise KeyError(f"struct {self.name!r} has no members {sorted(extra)}")
        word = 0
        for f, off in zip(self.fields, self.offsets.values(), strict=True):
            word |= f.pack(values[f.name]) << off
        return word

    def unpack(self, word: int) -> dict[str, Any]:
        return {f.name: f.unpack(int(word) >> off) for f, off in zip(self.fields, self.offsets.values(), strict=True)}

    def to_json(self) -> dict[str, Any]:
        return {"kind": "struct", "name": self.name, "width": self.width,
                "fields": [{**f.to_json(), "offset": off} for f, off in zip(self.fields, self.offsets.values(), strict=True)]}


Layout = Union[Field, Array, Struct]  # noqa: UP007 - a runtime alias used in the dataclasses above


def struct(name: str, *fields: Layout) -> Struct:
    """``Struct(name, fields)`` without the tuple."""
    return Struct(name, tuple(fields))


def lanes(name: str, count: int, width: int, signed: bool = False) -> Array:
    """The common beat shape: ``count`` lanes of one ``width``-bit integer."""
    return Array(name, Field(name, width, signed), count)


def flatten(layout: Layout) -> list[dict[str, Any]]:
    """Every scalar of ``layout`` with its dotted path (arrays as ``name[i]``), bit offset, width and signedness: the
    table a Verilog user slices the flat payload by. A struct's own name is not part of its members' paths."""
    if isinstance(layout, Struct):
        return [row for f, off in zip(layout.fields, layout.offsets.values(), strict=True) for row in _flat(f, "", off)]
    return _flat(layout, "", 0)


def _flat(layout: Layout, prefix: str, base: int) -> list[dict[str, Any]]:
    path = f"{prefix}.{layout.name}" if prefix else layout.name
    if isinstance(layout, Field):
        return [{"path": path, "offset": base, "width": layout.width, "signed": layout.signed}]
    if isinstance(layout, Array):
        return [row for i, off in enumerate(layout.offsets)
                for row in _flat(_renamed(layout.elem, f"{layout.name}[{i}]"), prefix, base + off)]
    return [row for f, off in zip(layout.fields, layout.offsets.values(), strict=True) for row in _flat(f, path, base + off)]


def _renamed(layout: Layout, name: str) -> Layout:
    if isinstance(layout, Field):
        return Field(name, layout.width, layout.signed)
    if isinstance(layout, Array):
        return Array(name, layout.elem, layout.count)
    return Struct(name, layout.fields)


def pack(values: Sequence[int], bits: int) -> int:
    """Lanes -> one payload integer (two's complement per lane; lane ``i`` at bits ``[i*bits, (i+1)*bits)``)."""
    return lanes("lanes", len(values), bits).pack(values) if len(values) else 0


def unpack(word: int, count: int, bits: int, is_signed: bool = True) -> list[int]:
    """One payload integer -> ``count`` lanes (sign-extended if ``is_signed``)."""
    return lanes("lanes", count, bits, is_signed).unpack(word)
