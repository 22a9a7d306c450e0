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

    def __reduce__(self) -> tuple[type, tuple[str, str, str | None]]:  # picklable: crosses process-pool boundaries
        return (type(self), (self.field, self.problem, self.allowed))


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


#: The most bytes read from any input file (YAML, CSV trace, JSON data): a symlink to /dev/zero or a mistyped
#: multi-gigabyte path is refused after this much, instead of being read forever.
MAX_INPUT_BYTES = 64 << 20


def read_bytes(path: str | Path, what: str, limit: int = MAX_INPUT_BYTES) -> bytes:
    """A file's bytes, at most ``limit``; a missing file, a folder, a device or FIFO, an unreadable or oversized file
    is one SpecError naming ``what``."""
    import os
    import stat

    p = Path(path)
    try:
        st = os.stat(p)
    except FileNotFoundError:
        raise SpecError(what, f"file not found: {p}") from None
    except OSError as exc:
        raise SpecError(what, f"cannot read {p}: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise SpecError(what, f"{p} is a folder, not a file")
    if not stat.S_ISREG(st.st_mode):
        raise SpecError(what, f"{p} is not a regular file (a device, FIFO or socket)")
    try:
        with open(p, "rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise SpecError(what, f"cannot read {p}: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise SpecError(what, f"{p} is larger than {limit >> 20} MiB")
    return data


def read_text(path: str | Path, what: str, limit: int = MAX_INPUT_BYTES) -> str:
    """A UTF-8 text file (see :func:`read_bytes`); binary or non-UTF-8 content is one SpecError."""
    data = read_bytes(path, what, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError(what, f"{path} is not UTF-8 text (byte {exc.start}; a binary file?)") from None


def output_dir(path: str | Path, what: str = "--out") -> Path:
    """Create (or reuse) an output folder before any work, so a bad path costs nothing and loses nothing: an existing
    file, a read-only or uncreatable folder is one SpecError naming ``what``."""
    import os

    out = Path(path)
    if not str(path).strip():
        raise SpecError(what, "empty output path")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".attnforge-write-test-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except (FileExistsError, NotADirectoryError):
        raise SpecError(what, f"{path} exists and is not a folder (or lies inside a file)") from None
    except OSError as exc:
        raise SpecError(what, f"cannot write to {path}: {exc.strerror or exc}") from None
    return out


def output_file(path: str | Path, what: str = "--out") -> Path:
    """An output file's folder made (see :func:`output_dir`) and the file itself checked: not a folder."""
    p = Path(path)
    if not str(path).strip():
        raise SpecError(what, "empty output path")
    if p.is_dir():
        raise SpecError(what, f"{path} is a folder; give a file name")
    output_dir(p.parent, what)
    return p


def check_finite(value: object, what: str, limit: float = float(2**53)) -> None:
    """Refuse NaN, infinities and numbers beyond ``limit`` anywhere inside nested lists and mappings."""
    import math

    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise SpecError(what, f"{value} is not a finite number")
        if abs(value) > limit:
            raise SpecError(what, f"{value} is beyond the largest number modelled", f"|x| <= {limit:.4g}")
    elif isinstance(value, dict):
        for k, v in value.items():
            check_finite(v, f"{what}.{k}", limit)
    elif isinstance(value, (list, tuple)):
        for v in value:
            check_finite(v, what, limit)


def finite_json(value: object) -> object:
    """``value`` with every NaN or infinity (inside lists, tuples and mappings) replaced by None, so that
    ``json.dumps(..., allow_nan=False)`` writes standard JSON: an undefined number is ``null``, never ``NaN``."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_json(v) for v in value]
    if hasattr(value, "item") and hasattr(value, "dtype") and getattr(value, "ndim", 1) == 0:  # numpy scalar
        return finite_json(value.item())
    return value


def parse_yaml(text: str, what: str, origin: str, expect: str | None = None) -> object:
    """YAML text -> data, or one SpecError naming the file and line; ``expect`` demands a non-empty mapping."""
    import yaml

    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise SpecError(what, f"malformed YAML in {origin}{where}") from None
    except (RecursionError, ValueError, OverflowError) as exc:
        raise SpecError(what, f"unreadable YAML in {origin} ({type(exc).__name__})") from None
    if expect is not None and (not isinstance(raw, dict) or not raw):
        raise SpecError(what, f"{origin} must be a mapping with {expect}")
    return raw


def read_yaml(path: str | Path, what: str, expect: str | None = None) -> object:
    """A YAML file -> data; a missing file or malformed YAML is one SpecError, never a traceback."""
    return parse_yaml(read_text(path, what), what, str(path), expect)
