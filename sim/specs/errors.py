"""User-facing errors.

Every mistake a user can make (an unknown name, a negative size, a malformed YAML file) is raised as a
:class:`SpecError` whose message is one line naming the field and the allowed values. The CLI turns it into
that line on stderr and exit code 2, so no user input ever ends in a traceback.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


class SpecError(ValueError):
    """A bad specification or argument, explained in one line."""

    def __init__(self, field: str, problem: str, allowed: str | Iterable[str] | None = None) -> None:
        self.field = field
        self.problem = problem
        if allowed is not None and not isinstance(allowed, str):
            allowed = ", ".join(str(a) for a in allowed)
        self.allowed = allowed
        msg = f"{field}: {problem}"
        if allowed:
            msg += f" (allowed: {allowed})"
        super().__init__(msg)


def from_pydantic(exc: Exception, prefix: str = "") -> SpecError:
    """Turn the first error of a pydantic ValidationError into a one-line SpecError."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return SpecError(prefix or "spec", str(exc).splitlines()[0])
    first = errors()[0]
    loc = ".".join(str(p) for p in first.get("loc", ()))
    inner = (first.get("ctx") or {}).get("error")
    if isinstance(inner, SpecError):
        # a model validator that already named its field (energy.qk.mac, say): keep its field and allowed list
        loc = ".".join(p for p in (loc, inner.field) if p)
        return SpecError(f"{prefix}.{loc}" if prefix else loc, inner.problem, inner.allowed)
    field = f"{prefix}.{loc}" if prefix and loc else (prefix or loc or "spec")
    msg = first.get("msg", "invalid value")
    allowed = None
    ctx = first.get("ctx") or {}
    if "expected" in ctx:
        allowed = str(ctx["expected"])
    return SpecError(field, msg, allowed)


def parse_yaml(text: str, what: str, origin: str, expect: str | None = None) -> object:
    """YAML text -> data, or one SpecError naming the file and line; ``expect`` demands a non-empty mapping."""
    import yaml

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SpecError(what, f"malformed YAML in {origin}{where}") from None
    if expect is not None and (not isinstance(raw, dict) or not raw):
        raise SpecError(what, f"{origin} must be a mapping with {expect}")
    return raw


def read_yaml(path: str | Path, what: str, expect: str | None = None) -> object:
    """A YAML file -> data; a missing file or malformed YAML is one SpecError, never a traceback."""
    try:
        text = Path(path).read_text()
    except (FileNotFoundError, IsADirectoryError):
        raise SpecError(what, f"file not found: {path}") from None
    return parse_yaml(text, what, str(path), expect)
