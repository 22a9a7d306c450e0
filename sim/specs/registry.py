"""One read-only, name-keyed registry for every catalogue (accelerators, mappings, builders, cascades, policies,
arch presets and arch families).

Why one class: each catalogue used to be a module-level dict plus a hand-written ``get_*`` function, and they
drifted (different error fields, some mutable at run time through ``register_*``). A :class:`Registry` is built
once from its data at import, cannot be changed afterwards, and refuses an unknown name with one
:class:`SpecError` that lists the names it knows. Entries may be loaded lazily (the arch presets parse YAML only
when first asked for), but the set of names is fixed when the registry is built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Generic, TypeVar

from attnforge.sim.specs.errors import SpecError

T = TypeVar("T")


class Registry(Mapping[str, T], Generic[T]):
    """A read-only ``name -> T`` mapping whose :meth:`get` raises a one-line SpecError for an unknown name.

    ``what`` names the kind of entry in messages ("accelerator"); ``field`` is the option or spec field the
    name came from ("accel", "arch"), defaulting to ``what``.
    """

    __slots__ = ("_field", "_items", "_load", "_names", "_what")

    def __init__(self, what: str, items: Mapping[str, T] | Iterable[tuple[str, T]], *, field: str | None = None) -> None:
        entries = dict(items)
        self._what = what
        self._field = field or what
        self._names: tuple[str, ...] = tuple(entries)
        self._items: dict[str, T] = entries
        self._load: Callable[[str], T] | None = None

    @classmethod
    def lazy(cls, what: str, names: Iterable[str], load: Callable[[str], T], *, field: str | None = None) -> Registry[T]:
        """A registry whose names are known now and whose entries are built by ``load(name)`` on first use."""
        reg: Registry[T] = cls(what, {}, field=field)
        reg._names = tuple(names)
        reg._load = load
        return reg

    @property
    def what(self) -> str:
        return self._what

    def names(self) -> tuple[str, ...]:
        return self._names

    def get(self, name: str) -> T:  # type: ignore[override]  # never a silent None: an unknown name is a SpecError
        """The entry called ``name``, or a SpecError naming the field and the allowed names."""
        if name not in self._names:
            raise SpecError(self._field, f"unknown {self._what} {name!r}", self._names)
        if name not in self._items and self._load is not None:
            self._items[name] = self._load(name)
        return self._items[name]

    def __getitem__(self, name: str) -> T:
        if name not in self._names:
            raise KeyError(name)
        return self.get(name)

    def __contains__(self, name: object) -> bool:
        return name in self._names

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __repr__(self) -> str:
        return f"Registry({self._what!r}, {list(self._names)})"
