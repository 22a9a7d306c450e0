"""A sweep's rows in bulk: unit columns -> a typed table, part files, and the collected results (CSV + Parquet).

With pyarrow (the ``sweep`` extra) a unit's rows are a pyarrow Table, each part is written once (an Arrow IPC file), and
``results.csv`` is produced once at the end from the collected table (:mod:`attnforge.sweep_csv`, byte for byte
what pandas writes); without it the same rows travel as pandas DataFrames and CSV parts (slower, same values).

Column types are those the earlier CSV round trip of each part gave (so outputs did not change): whole numbers stay
int64, numbers float64, flags bool, text str; a text cell pandas reads as missing (``null``, ``None``, ...) is
missing; a column missing everywhere is float64 NaN. Across parts, int64 and float64 meet as float64.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: Text pandas' CSV reader takes for a missing value (its default ``na_values``).
_NA_TEXT = frozenset({"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>",
                      "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"})


@dataclass(frozen=True)
class Coded:
    """A column of few distinct values: ``values[codes[i]]`` is row i (per-configuration fields, flags as text)."""

    values: list[Any]
    codes: np.ndarray


def have_arrow() -> bool:
    try:
        import pyarrow  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def _plain_values(values: list[Any]) -> tuple[list[Any], str]:
    """Values and the one type the CSV reader gave their column: null, bool, int64, float64 or str."""
    if len(values) == 1 and type(values[0]) is str and values[0] not in _NA_TEXT:  # the common case, quickly
        return values, "str"
    vals = [None if v is None or (isinstance(v, str) and v in _NA_TEXT) or (isinstance(v, float) and v != v) else v
            for v in values]
    present = [v for v in vals if v is not None]
    if not present:
        return vals, "null"
    if all(isinstance(v, (bool, np.bool_)) for v in present) and len(present) == len(vals):
        return vals, "bool"
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in present):
        return vals, "int64" if len(present) == len(vals) else "float64"
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in present):
        return [float("nan") if v is None else float(v) for v in vals], "float64"
    return [v if v is None or isinstance(v, str) else str(v) for v in vals], "str"


def _arrow_column(col: Any, runs: dict[int, tuple[list[int], list[int]]]) -> Any:
    """One unit column as an Arrow array; ``runs``: the runs of each codes array seen so far (columns share them)."""
    import pyarrow as pa

    if not isinstance(col, Coded):
        return pa.array(np.asarray(col))
    vals, kind = _plain_values(col.values)
    if kind == "null":
        return pa.nulls(len(col.codes))
    if kind == "str" and None not in vals:
        if id(col.codes) not in runs:
            runs[id(col.codes)] = _runs(col.codes)
        return _text_column([v.encode() for v in vals], col.codes, *runs[id(col.codes)])
    if kind == "float64":
        vals = [float("nan") if v is None else float(v) for v in vals]
    if kind == "str":
        return pa.array(vals, type=pa.string()).take(pa.array(col.codes))
    return pa.array(np.asarray(vals, dtype=kind)[col.codes])


def _runs(codes: np.ndarray) -> tuple[list[int], list[int]]:
    """(code, length) of each run of equal codes."""
    n = len(codes)
    if n == 0:
        return [], []
    starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
    return codes[starts].tolist(), np.diff(np.r_[starts, n]).tolist()


def _text_column(values: list[bytes], codes: np.ndarray, run_codes: list[int], run_lens: list[int]) -> Any:
    """``values[codes[i]]`` as an Arrow string array built from its two buffers (offsets, bytes): a sweep's text
    columns repeat few values, mostly in runs (one per configuration), so the bytes are joined run by run."""
    import pyarrow as pa

    n = len(codes)
    lens = np.array([len(v) for v in values], dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens[codes], out=offsets[1:])
    if offsets[-1] >= 2**31:
        return pa.array([values[c].decode() for c in codes.tolist()], type=pa.string())
    data = b"".join(values[c] * r for c, r in zip(run_codes, run_lens, strict=True))
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(data))


def _pandas_column(col: Any) -> Any:
    if isinstance(col, Coded):
        vals, kind = _plain_values(col.values)
        if kind == "null":
            return np.full(len(col.codes), np.nan)
        arr = np.array(vals, dtype=object if kind == "str" else kind)
        return arr[col.codes]
    return np.asarray(col)


def to_table(cols: dict[str, Any]) -> Any:
    """Unit columns as a pyarrow Table (a pandas DataFrame without pyarrow)."""
    if have_arrow():
        import pyarrow as pa

        runs: dict[int, tuple[list[int], list[int]]] = {}
        return pa.table({k: _arrow_column(v, runs) for k, v in cols.items()})
    return pd.DataFrame({k: _pandas_column(v) for k, v in cols.items()})


# ---- parts ---------------------------------------------------------------------------------------------------


def part_suffix() -> str:
    return ".arrow" if have_arrow() else ".csv"


def part_bytes(rows: Any) -> bytes:
    """A unit's rows as the bytes of its part file: an Arrow IPC file (LZ4-compressed where the codec is built in;
    ~5x cheaper to write than Parquet, and read back with the same types), or CSV without pyarrow."""
    if isinstance(rows, pd.DataFrame):
        return rows.to_csv(index=False).encode()
    import pyarrow as pa
    import pyarrow.ipc as ipc

    codec = "lz4" if pa.Codec.is_available("lz4") else None
    sink = pa.BufferOutputStream()
    with ipc.new_file(sink, rows.schema, options=ipc.IpcWriteOptions(compression=codec)) as w:
        w.write_table(rows)
    return sink.getvalue().to_pybytes()


def read_part_bytes(data: bytes) -> Any:
    """A part's rows back (raises ValueError on anything unreadable)."""
    if not have_arrow():
        try:
            return pd.read_csv(io.BytesIO(data), dtype={"config": str})
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
            raise ValueError(str(exc)) from None
    import pyarrow as pa
    import pyarrow.ipc as ipc

    try:
        return ipc.open_file(pa.BufferReader(data)).read_all()
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(str(exc)) from None


def point_ids(rows: Any) -> np.ndarray | None:
    """The ``point`` column of a part's rows as int64, or None when it has none."""
    names = list(rows.columns) if isinstance(rows, pd.DataFrame) else rows.column_names
    if "point" not in names:
        return None
    col = rows["point"]
    return np.asarray(col if isinstance(rows, pd.DataFrame) else col.to_numpy(), dtype=np.int64)


def num_rows(rows: Any) -> int:
    return len(rows) if isinstance(rows, pd.DataFrame) else rows.num_rows


# ---- results -------------------------------------------------------------------------------------------------


def pareto_mask(costs: np.ndarray) -> np.ndarray:
    """True for points no other point beats or ties in every cost while beating it in one (minimisation)."""
    n = len(costs)
    keep = np.ones(n, dtype=bool)
    order = np.lexsort(costs.T[::-1])
    for idx in order:
        if not keep[idx]:
            continue
        dominated = np.all(costs[idx] <= costs, axis=1) & np.any(costs[idx] < costs, axis=1)
        keep[dominated] = False
    return keep


def _pareto(codes: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """Pareto flags among the points sharing a group code (same workload, length, batch and scope: designs doing
    the same work); :func:`_pareto_sweep` when the third cost takes few values, else :func:`pareto_mask` per group."""
    if len(costs) and np.isfinite(costs).all() and len(np.unique(costs[:, 2])) <= 256:
        return _pareto_sweep(codes, costs)
    out = np.zeros(len(costs), dtype=bool)
    order = np.argsort(codes, kind="stable")
    for idx in np.split(order, np.flatnonzero(np.diff(codes[order])) + 1):
        if len(idx):
            out[idx] = pareto_mask(costs[idx])
    return out


def _pareto_sweep(codes: np.ndarray, costs: np.ndarray) -> np.ndarray:
    """:func:`pareto_mask` of every group at once, in a few array passes per distinct value of the third cost.

    In lexicographic order of the costs (within a group) every point's dominators come before it, and a point j
    before i dominates i exactly when ``c1[j] <= c1[i]`` and ``c2[j] <= c2[i]`` and the two are not identical (c0 is
    ordered already). So for each value v of c2, a running minimum of c1 over the earlier points with ``c2 <= v``
    answers every point whose c2 is v. c1 is replaced by its rank, shifted down by group, so one running minimum
    over all groups never lets an earlier group's point answer for a later one; identical points take the minimum
    from before their run (they never dominate each other)."""
    n = len(costs)
    order = np.lexsort((costs[:, 2], costs[:, 1], costs[:, 0], codes))
    g = np.unique(codes[order], return_inverse=True)[1].reshape(-1).astype(np.int64)
    c = costs[order]
    rank = np.unique(c[:, 1], return_inverse=True)[1].reshape(-1).astype(np.int64)
    x = rank - g * (int(rank.max()) + 1)
    new_run = np.ones(n, dtype=bool)
    new_run[1:] = (g[1:] != g[:-1]) | np.any(c[1:] != c[:-1], axis=1)
    before = np.maximum.accumulate(np.where(new_run, np.arange(n), 0)) - 1  # the point before each run
    big = np.iinfo(np.int64).max
    dominated = np.zeros(n, dtype=bool)
    for v in np.unique(c[:, 2]):
        running = np.minimum.accumulate(np.where(c[:, 2] <= v, x, big))
        prior = np.where(before >= 0, running[np.maximum(before, 0)], big)
        at = c[:, 2] == v
        dominated[at] = prior[at] <= x[at]
    out = np.empty(n, dtype=bool)
    out[order] = ~dominated
    return out


def _group_codes(keys: list[tuple[np.ndarray, int]]) -> np.ndarray:
    """One code per row from per-key (codes, number of distinct values)."""
    out = np.zeros(len(keys[0][0]), dtype=np.int64)
    for codes, k in keys:
        out = out * max(k, 1) + codes
    return out


_GROUP = ("workload", "seq_len", "batch", "scope")
_COSTS = ("latency_s", "energy_j", "area_mm2")


def _costs(col: Callable[[str], Any], n: int) -> np.ndarray:
    """What the Pareto flag weighs: latency and energy per model layer (a SpAtten row covers all of the model's
    layers, a per-layer dataflow's row one: ``Result.layers``; parts written without the column count 1), and area."""
    layers = col("layers")
    per = np.ones(n) if layers is None else np.nan_to_num(np.asarray(layers, dtype=np.float64), nan=1.0)
    lat, energy, area = (np.asarray(col(k), dtype=np.float64) for k in _COSTS)
    return np.column_stack([lat / per, energy / per, area])


def collect_tables(tables: list[Any]) -> Any:
    """Parts (pyarrow Tables) as one table ordered by point, with stable types and the ``pareto`` flag."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = pa.concat_tables(tables, promote_options="permissive")
    points = t["point"].to_numpy()
    if len(points) > 1 and not np.all(points[1:] > points[:-1]):
        t = t.take(pa.array(np.argsort(points, kind="stable")))
    for i, f in enumerate(t.schema):
        if pa.types.is_null(f.type):  # missing everywhere: NaN, as the CSV reader gave it
            t = t.set_column(i, f.name, pa.array(np.full(t.num_rows, np.nan)))
        elif pa.types.is_large_string(f.type) or pa.types.is_string_view(f.type):
            t = t.set_column(i, f.name, pc.cast(t.column(i), pa.string()))
    keys = []
    for k in _GROUP:
        d = pc.dictionary_encode(t[k].combine_chunks(), null_encoding="encode")
        keys.append((d.indices.to_numpy().astype(np.int64), len(d.dictionary)))
    costs = _costs(lambda k: t[k].to_numpy() if k in t.column_names else None, t.num_rows)
    return t.append_column("pareto", pa.array(_pareto(_group_codes(keys), costs)))


def stable_types(df: pd.DataFrame) -> pd.DataFrame:
    """Column types that do not depend on the values: ``config`` (a hex key such as "123456789012") and every text
    column stay strings; a column mixing numbers and text becomes text. CSV and Parquet then agree."""
    import math

    for c in df.columns:
        if c == "config" or df[c].dtype == object:
            df[c] = df[c].map(lambda v: v if isinstance(v, str) or (isinstance(v, float) and math.isnan(v)) or v is None
                              else str(v)).astype(object)
    return df


def collect_frames(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The pandas form of :func:`collect_tables` (no pyarrow)."""
    df = stable_types(pd.concat(frames, ignore_index=True).sort_values("point", kind="stable").reset_index(drop=True))
    keys = []
    for k in _GROUP:
        codes, uniques = pd.factorize(df[k], use_na_sentinel=False)
        keys.append((codes.astype(np.int64), len(uniques)))
    df["pareto"] = _pareto(_group_codes(keys), _costs(lambda k: df[k].to_numpy() if k in df else None, len(df)))
    return df
