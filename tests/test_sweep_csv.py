"""The bulk CSV writer gives pandas' ``to_csv`` text byte for byte: floats of every magnitude and layout boundary,
missing values, flags, text needing quotes, and tables written in several chunks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

pa = pytest.importorskip("pyarrow")

from attnforge import sweep_csv  # noqa: E402

EDGES = [0.0, -0.0, 1.0, -1.0, 0.1, 1e-4, 9.999999999999999e-05, 1e-5, 1.5e-6, 1e-6, 9.99e-7, 1e-7, 5e-324, 1e-300,
         1e10, 1e10 + 0.5, 9999999999.5, 1e15, 1e15 + 0.5, 2.0**52 + 0.5, 2.0**53, 1e16, 1e16 + 2, 9.999999999999998e15,
         1.2345678901234568e17, 1e22, 1e300, np.inf, -np.inf, np.nan, 29568.0, 5.9136e-05, 1250.0604415999999,
         -3.5e-9, 123456789012.25]


def _pandas(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False).encode()


def _random_floats(n: int) -> np.ndarray:
    rng = np.random.default_rng(7)
    mags = 10.0 ** rng.uniform(-12, 24, n)
    x = rng.choice([-1.0, 1.0], n) * rng.random(n) * mags
    whole = rng.random(n) < 0.3
    x[whole] = np.round(x[whole])
    return x


def test_float_text_is_repr() -> None:
    x = np.concatenate([np.array(EDGES), _random_floats(20000)])
    got = sweep_csv.float_strings(x).to_pylist()
    want = ["" if v != v else repr(v) for v in x.tolist()]
    assert got == want


def test_table_matches_pandas_text() -> None:
    n = 600
    rng = np.random.default_rng(1)
    table = pa.table({
        "point": np.arange(n),
        "x": _random_floats(n),
        "edge": np.resize(np.array(EDGES), n),
        "flag": rng.random(n) < 0.5,
        "name": pa.array(rng.choice(["fusemax", "a,b", 'say "hi"', "two\nlines", ""], n)),
        "maybe": pa.array([None if i % 3 else f"v{i % 7}" for i in range(n)]),
        "json": pa.array([f'{{"clock_mhz": {700 + i % 5}, "buffer.bytes": 8388608}}' for i in range(n)]),
        "missing": pa.nulls(n),
        "ints": rng.integers(-5, 5, n),
    })
    assert sweep_csv.to_csv(table) == _pandas(table.to_pandas())


def test_chunks_join_seamlessly(monkeypatch: pytest.MonkeyPatch) -> None:
    n = 1000
    table = pa.table({"point": np.arange(n), "x": _random_floats(n), "c": pa.array([f"c{i % 3}" for i in range(n)])})
    whole = sweep_csv.to_csv(table)
    monkeypatch.setattr(sweep_csv, "CHUNK_ROWS", 77)
    assert sweep_csv.to_csv(table) == whole == _pandas(table.to_pandas())


def test_empty_table_is_its_header() -> None:
    table = pa.table({"a": pa.array([], type=pa.float64()), "b,c": pa.array([], type=pa.string())})
    assert sweep_csv.to_csv(table) == _pandas(table.to_pandas())
