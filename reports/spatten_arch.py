"""The SpAtten archs a paper reproduction runs on, with the user's ``--set`` overrides applied to every one of them.

Why: ``attnforge reproduce spatten --set hbm.outstanding=20`` asks what the paper's whole comparison looks like if
one assumption of the model changes (requests in flight, a row size, an energy per action). The reproduction runs
several archs (SpAtten, SpAtten1/8 for Table III, sweeps that change one field each), so the overrides are held
for the duration of the run (a context variable, so concurrent runs do not see each other's) and every arch the
reports build comes from :func:`arch`, never from the bare preset.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar

from attnforge.sim.specs.arch import Arch, get_preset, load_arch

#: The SpAtten presets a reproduction runs; overrides must hold on each.
PRESETS: tuple[str, ...] = ("spatten", "spatten-1-8")

_OVERRIDES: ContextVar[tuple[tuple[str, object], ...]] = ContextVar("spatten_arch_overrides", default=())


def current() -> dict[str, object]:
    """The overrides in force (empty outside :func:`overridden`)."""
    return dict(_OVERRIDES.get())


@contextmanager
def overridden(overrides: Mapping[str, object] | None) -> Iterator[dict[str, object]]:
    """Run the enclosed reproduction with ``overrides`` on every SpAtten arch; a field that does not exist or a value
    the schema refuses is one SpecError before anything runs."""
    ov = dict(overrides or {})
    for name in PRESETS:
        load_arch(name, ov)
    token = _OVERRIDES.set(tuple(ov.items()))
    try:
        yield ov
    finally:
        _OVERRIDES.reset(token)


def arch(name: str = "spatten", extra: Mapping[str, object] | None = None) -> Arch:
    """A SpAtten preset with the run's overrides, then ``extra`` (a sweep's own field) on top."""
    ov = {**current(), **(extra or {})}
    return load_arch(name, ov) if ov else get_preset(name)


def describe() -> str:
    """One line for the top of a report run with overrides ('' without)."""
    ov = current()
    return ("arch overrides on every SpAtten arch of this run: " + ", ".join(f"{k}={v}" for k, v in ov.items())
            if ov else "")
