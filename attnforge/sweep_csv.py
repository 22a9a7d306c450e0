"""A sweep's table as CSV in bulk (pyarrow), byte for byte what ``pandas.DataFrame.to_csv(index=False)`` writes.

pandas formats each float through Python's ``repr`` (shortest round-trip digits; fixed notation for 1e-4 <= |x| <
1e16, else scientific with a two-digit exponent; ``.0`` on whole numbers), NaN as an empty field, booleans as
``True``/``False``, and quotes a field only when it holds a comma, a quote or a line break (doubling its quotes).
That costs ~1 us a cell in Python, and a sweep of a million points has ~50 million cells. Here:

* each column is dictionary-encoded: a sweep's columns repeat few distinct values (the grid's axes and the
  per-configuration fields repeat by construction), so only the distinct values are formatted;
* whole floats below 1e16 go through int64 (``29568.0``); other floats take Arrow's shortest round-trip text, which
  agrees with ``repr`` digit for digit and differs only in layout (Arrow writes scientific notation outside
  [1e-6, 1e10), with one-digit exponents): exponents are padded to two digits, and the values whose layouts differ
  (fractions in [1e10, 1e16), magnitudes in [1e-6, 1e-4), -0.0) are formatted by ``repr`` itself;
* neighbouring columns whose value pairs stay few are merged into one column of pre-joined text (the joint codes
  dictionary-encoded again), so the last step joins a handful of columns per row instead of ~50; the joined rows'
  character buffer is the CSV body.

``tests/test_sweep_csv.py`` checks the text against pandas on edge values, random floats of every magnitude and
quoted text.
"""

from __future__ import annotations

from typing import IO, Any

import numpy as np


def float_strings(x: np.ndarray) -> Any:
    """``repr`` of every float64 in ``x`` as an Arrow string array; NaN is "" (pandas' empty field)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    x = np.asarray(x, dtype=np.float64)
    ax = np.abs(x)
    nan = np.isnan(x)
    whole = np.isfinite(x) & (x == np.trunc(x)) & (ax < 1e16) & ~((x == 0) & np.signbit(x))
    tiny = ~whole & (ax > 0) & (ax < 1e-6)
    same = ~whole & ~nan & ((ax >= 1e16) | ((ax >= 1e-4) & (ax < 1e10)))  # includes +-inf
    by_repr = ~(whole | tiny | same | nan)
    idx = [np.flatnonzero(m) for m in (whole, tiny, same, by_repr, nan)]
    pieces = [
        pc.binary_join_element_wise(pc.cast(pa.array(x[idx[0]].astype(np.int64)), pa.string()), ".0", ""),
        pc.replace_substring_regex(pc.cast(pa.array(x[idx[1]]), pa.string()), pattern=r"e-(\d)$",
                                   replacement=r"e-0\1"),
        pc.cast(pa.array(x[idx[2]]), pa.string()),
        pa.array([repr(v) for v in x[idx[3]].tolist()], type=pa.string()),
        pa.array([""] * len(idx[4]), type=pa.string()),
    ]
    where = np.empty(len(x), dtype=np.int64)
    where[np.concatenate(idx)] = np.arange(len(x))
    return pa.concat_arrays(pieces).take(pa.array(where))


#: Up to this many distinct values, a column's text is made in Python (cheaper than a dozen Arrow calls).
_FEW = 256


def _cell(v: Any) -> str:
    """One value as pandas writes it (what :func:`_text` does in bulk)."""
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, bool):
        return "True" if v else "False"
    s = str(v)
    return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\r\n') else s


def _text(values: Any) -> Any:
    """Distinct values (an Arrow array of any type a sweep writes; nulls allowed) as pandas' text for each."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = values.type
    if len(values) <= _FEW and not pa.types.is_null(t):
        return pa.array([_cell(v) for v in values.to_pylist()], type=pa.string())
    if pa.types.is_floating(t):
        return float_strings(values.to_numpy(zero_copy_only=False))
    if pa.types.is_null(t):
        return pa.array([""] * len(values), type=pa.string())
    if pa.types.is_boolean(t):
        return pc.if_else(values, "True", "False").fill_null("")
    s = pc.cast(values, pa.string())
    if not pa.types.is_integer(t):
        quoted = pc.binary_join_element_wise('"', pc.replace_substring(s, '"', '""'), '"', "")
        s = pc.if_else(pc.match_substring_regex(s, '[,"\r\n]'), quoted, s)
    return s.fill_null("")


def _encoded(col: Any) -> tuple[np.ndarray, Any]:
    """(per-row codes, text of each code) of one column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks()
    if pa.types.is_null(col.type):
        return np.zeros(len(col), dtype=np.int64), _text(col[:1])
    d = pc.dictionary_encode(col, null_encoding="encode")
    return d.indices.to_numpy().astype(np.int64), _text(d.dictionary)


def _pairs(codes: np.ndarray, k1: int, codes2: np.ndarray, k2: int) -> tuple[np.ndarray, np.ndarray]:
    """(the distinct pair codes ``c1 * k2 + c2``, each row's index among them)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    joint = codes * k2 + codes2
    if k1 * k2 <= 2 * len(joint):  # a table of every possible pair: no hashing
        seen = np.zeros(k1 * k2, dtype=bool)
        seen[joint] = True
        return np.flatnonzero(seen), (np.cumsum(seen) - 1)[joint]
    d = pc.dictionary_encode(pa.array(joint))
    return d.dictionary.to_numpy(), d.indices.to_numpy().astype(np.int64)


def _merged(cols: list[tuple[np.ndarray, Any]], limit: int) -> list[tuple[np.ndarray, Any]]:
    """Neighbouring columns joined (text "a,b") while their distinct pairs number at most ``limit``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    out: list[tuple[np.ndarray, Any]] = []
    codes, text = cols[0]
    for c2, t2 in cols[1:]:
        # every code is used, so there are at least as many pairs as either side has values
        pairs, joint = _pairs(codes, len(text), c2, len(t2)) if max(len(text), len(t2)) <= limit else (None, None)
        if pairs is not None and joint is not None and len(pairs) <= limit:
            text = pc.binary_join_element_wise(text.take(pa.array(pairs // len(t2))), t2.take(pa.array(pairs % len(t2))),
                                               ",")
            codes = joint
        else:
            out.append((codes, text))
            codes, text = c2, t2
    out.append((codes, text))
    return out


#: Rows formatted at a time: bounds the memory of a big sweep's text (~550 bytes a row) to tens of MB.
CHUNK_ROWS = 1 << 16


def write_csv(table: Any, fh: IO[bytes]) -> None:
    """``table`` (a pyarrow Table) into ``fh`` as ``table.to_pandas().to_csv(index=False)`` writes it."""
    fh.write((",".join(_quote(n) for n in table.column_names) + "\n").encode())
    for start in range(0, table.num_rows, CHUNK_ROWS):
        _write_rows(table.slice(start, CHUNK_ROWS), fh)


def _write_rows(table: Any, fh: IO[bytes]) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    segments = _merged([_encoded(c) for c in table.columns], limit=max(64, table.num_rows // 8))
    codes, text = segments[-1]
    segments[-1] = codes, pc.binary_join_element_wise(text, "\n", "")
    full = [t.take(pa.array(c)) for c, t in segments]
    rows = pc.binary_join_element_wise(*full, ",") if len(full) > 1 else full[0]
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int32)[rows.offset:rows.offset + len(rows) + 1]
    fh.write(memoryview(rows.buffers()[2])[int(offsets[0]):int(offsets[-1])])


def to_csv(table: Any) -> bytes:
    """:func:`write_csv` into bytes."""
    import io

    buf = io.BytesIO()
    write_csv(table, buf)
    return buf.getvalue()


def _quote(field: str) -> str:
    if any(c in field for c in ',"\n\r'):
        return '"' + field.replace('"', '""') + '"'
    return field
