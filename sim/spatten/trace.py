"""SpAtten's own workload traces: load and validate them, then replay them through the shared engine.

A trace row is one query of one head in one generation iteration, with what the real algorithm decided for it:
keys fetched, V fetched, K/V bit widths, whether this row refetched LSBs, and token top-k events. Replay turns
every row into the same per-query module costs the builder uses (:mod:`attnforge.sim.spatten.occupancy`), one Stage per
(iteration, layer) because a layer's output feeds the next layer through the host's FFN (a barrier), and runs the
Schedule through :func:`sim.analytical.engine.run_schedule`. A requant row fetches ``auto_requant_incre`` more bits
per key and recomputes once. Widths are fetched as the paper's bit-width converter takes them (4, 8 or 12-bit fields,
§IV-D): -1 (unquantized) as 12 bits. SpAtten's released test bench, whose RTL converter takes 4-, 6- and 8-bit fields
only, fetches K widths of 10, 12 and -1 as 8-bit MSBs with every row's 4-bit LSBs (and recompute) and V as 8 bits
instead: :func:`as_bench_fetch` rewrites a trace that way (``simulate --trace ... --trace-widths bench``;
docs/spatten.md §Traces).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from attnforge.sim.analytical.schedule import Actions, Phase, Schedule, Stage
from attnforge.sim.memory import dram
from attnforge.sim.spatten.occupancy import check_arch, job_costs, port_bytes_per_cycle
from attnforge.sim.spatten.topk_algorithm import expected_topk_v
from attnforge.sim.specs.arch import Arch, Hbm
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.spatten_policy import NATIVE_BITS

COLUMNS: tuple[str, ...] = (
    "iteration_id", "layer_id", "head_id", "embedding_length_D", "sentence_length_L", "key_fetch_num",
    "quant_key_bit", "quant_query_bit", "auto_requant_thres", "if_requant", "auto_requant_incre", "value_fetch_num",
    "quant_value_bit", "if_accumulate_importance", "if_rescale_previous_importance", "if_topk", "topk",
)
BOOL_COLUMNS: tuple[str, ...] = ("if_requant", "if_accumulate_importance", "if_rescale_previous_importance", "if_topk")
INT_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c not in BOOL_COLUMNS and c != "auto_requant_thres")
#: Bit widths the bit-width converter accepts, plus -1 (unquantized) as the traces write it.
TRACE_BITS: tuple[int, ...] = (-1, 4, 6, 8, 10, 12, 16)


@dataclass(frozen=True)
class Trace:
    """Validated rows plus the config string SpAtten's flow appends as the file's last line."""

    rows: pd.DataFrame
    path: str
    config: str = ""

    @property
    def name(self) -> str:
        return Path(self.path).stem


#: How a replay fetches a trace's widths: as the paper's converter takes them, or as the released test bench feeds them.
TRACE_WIDTHS: tuple[str, ...] = ("paper", "bench")
#: Widths the released bench's fetcher cannot take and maps to 8 bits (K: plus a forced 4-bit LSB fetch).
BENCH_WIDE: tuple[int, ...] = (-1, 10, 12)
BENCH_LSB_BITS = 4


def as_bench_fetch(trace: Trace) -> Trace:
    """The trace as SpAtten's released test bench feeds it to the RTL (``sim/TestSpAtten.scala``): a K width of -1,
    10 or 12 becomes 8-bit MSBs with the requant threshold forced to its maximum, so every such row fetches its
    4-bit LSBs from their own region and recomputes; a V width of -1, 10 or 12 becomes 8 bits. Other rows as they
    are (the bench also rounds fetch counts up to multiples of 8, which the replay does not)."""
    r = trace.rows.copy()
    wide_k = r["quant_key_bit"].isin(BENCH_WIDE).to_numpy()
    r.loc[wide_k, "quant_key_bit"] = 8
    r.loc[wide_k, "if_requant"] = True
    r.loc[wide_k & (r["auto_requant_incre"] <= 0).to_numpy(), "auto_requant_incre"] = BENCH_LSB_BITS
    r.loc[r["quant_value_bit"].isin(BENCH_WIDE).to_numpy(), "quant_value_bit"] = 8
    return Trace(rows=r, path=trace.path, config=trace.config)


#: Largest trace file read (bytes): far above any real trace (the packaged ones are under 1 MB), and a bound for a
#: mistyped path to something endless.
MAX_TRACE_BYTES = 4 << 30
#: Largest magnitude accepted in an integer column (float64 holds every integer up to it exactly).
MAX_TRACE_INT = 2**53


def load_trace(path: str | Path) -> Trace:
    """Read and validate a trace; every problem is one SpecError naming the column and what is allowed.

    Numeric columns are parsed by the CSV reader itself (one pass, vectorised); only a column holding something that
    is not a number is looked at as text, to name the first bad row."""
    import io

    from attnforge.sim.specs.errors import read_bytes

    p = Path(path)
    data = read_bytes(p, "--trace", MAX_TRACE_BYTES)
    text_cols = {c: str for c in ("iteration_id", *BOOL_COLUMNS)}
    try:
        raw = pd.read_csv(io.BytesIO(data), dtype=text_cols, keep_default_na=False, na_values=[""],
                          low_memory=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, ValueError, OverflowError) as exc:
        raise SpecError("--trace", f"{p.name} is not a readable CSV ({str(exc).splitlines()[0]})") from None
    missing = [c for c in COLUMNS if c not in raw.columns]
    if missing:
        raise SpecError("--trace", f"{p.name} lacks column(s) {', '.join(missing)}", COLUMNS)
    raw = raw[list(COLUMNS)]
    # SpAtten's writer ends the file with the run's config path in the first column and nothing else.
    meta = raw.drop(columns="iteration_id").isna().all(axis=1).to_numpy()
    config = ";".join(raw.loc[meta, "iteration_id"].fillna("").astype(str).tolist())
    df = raw.loc[~meta].copy() if meta.any() else raw
    if df.empty:
        raise SpecError("--trace", f"{p.name} has no data rows")
    for c in BOOL_COLUMNS:
        col = df[c].fillna("")
        bad = ~col.isin(("True", "False"))
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise SpecError(f"--trace column {c}", f"row {i + 2} has {col.iloc[i]!r}", "True, False")
        df[c] = (col == "True").to_numpy()
    for c in (*INT_COLUMNS, "auto_requant_thres"):
        col = df[c]
        if pd.api.types.is_numeric_dtype(col.dtype) and not pd.api.types.is_bool_dtype(col.dtype):
            num = col.astype(np.float64)
            shown = col.astype(object).where(col.notna(), "")
        else:
            shown = col.fillna("").astype(str)
            num = pd.to_numeric(shown, errors="coerce").astype(np.float64)
        vals = num.to_numpy()
        bad = ~np.isfinite(vals)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            kind = "not a number" if np.isnan(vals[i]) else "not a finite number"
            raise SpecError(f"--trace column {c}", f"row {i + 2} has {shown.iloc[i]!r}, {kind}")
        if c in INT_COLUMNS:
            if (vals != np.round(vals)).any():
                raise SpecError(f"--trace column {c}", "must hold whole numbers")
            if (np.abs(vals) > MAX_TRACE_INT).any():
                i = int(np.flatnonzero(np.abs(vals) > MAX_TRACE_INT)[0])
                raise SpecError(f"--trace column {c}", f"row {i + 2} has {shown.iloc[i]!r}, beyond 2**53")
        df[c] = vals.astype(np.int64) if c in INT_COLUMNS else vals
    _check_values(df, p.name)
    return Trace(df.reset_index(drop=True), str(p), config)


def _check_values(df: pd.DataFrame, name: str) -> None:
    def need(cond: pd.Series, col: str, problem: str, allowed: str | None = None) -> None:
        if not cond.all():
            i = int(np.flatnonzero(~cond.to_numpy())[0])
            raise SpecError(f"--trace column {col}", f"{name} row {i + 2}: {problem}", allowed)

    for c in ("iteration_id", "layer_id", "head_id"):
        need(df[c] >= 0, c, "must be >= 0")
    need(df["embedding_length_D"] > 0, "embedding_length_D", "must be positive")
    need(df["sentence_length_L"] > 0, "sentence_length_L", "must be positive")
    need((df["key_fetch_num"] > 0) & (df["key_fetch_num"] <= df["sentence_length_L"]), "key_fetch_num",
         "must lie in 1..sentence_length_L")
    need((df["value_fetch_num"] > 0) & (df["value_fetch_num"] <= df["key_fetch_num"]), "value_fetch_num",
         "must lie in 1..key_fetch_num (k > n)")
    for c in ("quant_key_bit", "quant_value_bit", "quant_query_bit"):
        need(df[c].isin(TRACE_BITS), c, "unsupported bit width", ", ".join(map(str, TRACE_BITS)))
    rq = df["if_requant"]
    need(~rq | (df["auto_requant_incre"] > 0), "auto_requant_incre", "a requant row needs a positive increment")
    thr = df["auto_requant_thres"]
    need((thr == -1) | ((thr > 0) & (thr <= 1)), "auto_requant_thres", "threshold outside (0, 1]", "(0, 1] or -1")
    tk = df["if_topk"]
    need(~tk | ((df["topk"] >= 0) & (df["topk"] <= df["sentence_length_L"])), "topk", "k > n or negative")


def _bits(col: pd.Series) -> np.ndarray:
    b = col.to_numpy(dtype=np.float64)
    return np.where(b < 0, NATIVE_BITS, b)


@dataclass
class TraceSummary:
    """What a replay reports besides the engine's Result fields."""

    rows: int
    iterations: int
    layers: int
    keys: float
    values: float
    lengths: float
    lsb_refetch_rate: float
    dram_bytes_fp32_dense: float


def layer_imbalance(hbm: Hbm, df: pd.DataFrame, d: int) -> pd.Series:
    """Per (iteration, layer): the busiest channel's share over the mean under a barrier per layer. A layer's rows
    (its heads) read K, and the LSBs where they refetch, for the same kept tokens; each keeps its own V rows."""
    rows = pd.DataFrame({
        "it": df["iteration_id"].to_numpy(), "layer": df["layer_id"].to_numpy(),
        "keys": df["key_fetch_num"].to_numpy(dtype=np.float64), "values": df["value_fetch_num"].to_numpy(dtype=np.float64),
        "kb": d * _bits(df["quant_key_bit"]) / 8, "vb": d * _bits(df["quant_value_bit"]) / 8,
        "lb": d * np.maximum(df["auto_requant_incre"].to_numpy(dtype=np.float64), 0.0) / 8,
        "rq": df["if_requant"].to_numpy(dtype=np.float64), "n": 1.0,
    })
    g = rows.groupby(["it", "layer"], sort=True).agg(
        n=("n", "sum"), rq=("rq", "sum"), keys=("keys", "mean"), values=("values", "mean"), kb=("kb", "mean"),
        vb=("vb", "mean"), lb=("lb", "mean"))
    lb = np.maximum(g["lb"].to_numpy(), 1e-9)  # a layer that never refetches: no LSB stream (zero copies)
    n, keys = g["n"].to_numpy(), g["keys"].to_numpy()
    kp, vp = (dram.paired(d, g[c].to_numpy()) for c in ("kb", "vb"))
    f = dram.channel_imbalance(hbm, [(n / kp, keys, g["kb"].to_numpy() * kp), (g["rq"].to_numpy(), keys, lb)],
                               [(n / vp, g["values"].to_numpy(), g["vb"].to_numpy() * vp)])
    return pd.Series(np.asarray(f, dtype=np.float64), index=g.index)


def trace_schedule(trace: Trace, arch: Arch, topk_parallelism: int | None = None) -> tuple[Schedule, TraceSummary]:
    """Every row through the per-query pipeline model; one Stage per (iteration, layer) and a latency stage."""
    modules = check_arch(arch)
    df = trace.rows
    par = int(topk_parallelism or modules.topk_comparators)
    d = df["embedding_length_D"].to_numpy(dtype=np.float64)
    if np.unique(d).size != 1:
        raise SpecError("--trace column embedding_length_D", "must be the same on every row")
    d0 = int(d[0])
    keys = df["key_fetch_num"].to_numpy(dtype=np.float64)
    values = df["value_fetch_num"].to_numpy(dtype=np.float64)
    rq = df["if_requant"].to_numpy(dtype=np.float64)
    jc = job_costs(
        arch, count=np.ones(len(df)), keys=keys, values=values, d=d0,
        k_bits=_bits(df["quant_key_bit"]), lsb_bits=np.maximum(df["auto_requant_incre"].to_numpy(), 0), refetch=rq,
        v_bits=_bits(df["quant_value_bit"]), q_bits=_bits(df["quant_query_bit"]),
        keys_fetched=keys, values_fetched=values, topk_parallelism=par,
        span=df["sentence_length_L"].to_numpy(dtype=np.float64),
    )
    topk_rows = df["if_topk"].to_numpy()
    tk_cyc, tk_cmp = expected_topk_v(np.where(topk_rows, df["sentence_length_L"].to_numpy(), 0),
                                     np.where(topk_rows, df["topk"].to_numpy(), 0), par)
    frame = pd.DataFrame({
        "it": df["iteration_id"].to_numpy(), "layer": df["layer_id"].to_numpy(),
        "qk": jc.busy["qk"], "softmax": jc.busy["softmax"], "topk": jc.busy["topk"], "pv": jc.busy["pv"],
        "bytes": jc.dram_bytes, "mem": jc.dram_bytes / np.broadcast_to(jc.dram_efficiency, len(df)),
        "lat": jc.latency, "tk": tk_cyc,
    })
    g = frame.groupby(["it", "layer"], sort=True)
    sums = g[["qk", "softmax", "topk", "pv", "bytes", "mem", "tk"]].sum()
    if arch.hbm.layer_barrier:  # each layer waits for its busiest channel (dram.channel_imbalance)
        sums["mem"] = sums["mem"] * layer_imbalance(arch.hbm, df, d0).reindex(sums.index).to_numpy()
    lat = g["lat"].max()
    # One Stage per (iteration, layer), built from whole columns (no per-row index lookups).
    its, lays = (sums.index.get_level_values(i).tolist() for i in (0, 1))
    cols = [sums[a].tolist() for a in ("qk", "softmax", "topk", "pv", "bytes", "mem")]
    stages = [  # "mem" sums bytes / efficiency: the stage's efficiency is its bytes over that
        Stage(f"i{it}.L{layer}", [Phase("pipeline", {"qk": qk, "softmax": sm, "topk": tk, "pv": pv})], by,
              by / max(mem, 1e-30), port_bytes_per_cycle(arch))
        for it, layer, qk, sm, tk, pv, by, mem in zip(its, lays, *cols, strict=True)
    ]
    barrier = float((lat + sums["tk"]).sum())
    stages.append(Stage("latency", [Phase("barriers", {}, exposed=barrier)], 0.0))
    busy = {a: float(np.sum(jc.busy[a])) for a in ("qk", "softmax", "topk", "pv")}
    useful = {a: float(np.sum(v)) for a, v in jc.useful.items()}
    total = float(np.sum(jc.dram_bytes))
    lsb = float(np.sum(jc.lsb_bytes))
    actions = Actions()
    jc.charge(actions, topk_extra=float(np.sum(tk_cmp)), total=lambda v: float(np.sum(v)))
    lens = df["sentence_length_L"].to_numpy(dtype=np.float64)
    summary = TraceSummary(
        rows=len(df), iterations=int(df["iteration_id"].nunique()), layers=int(df["layer_id"].nunique()),
        keys=float(keys.sum()), values=float(values.sum()), lengths=float(lens.sum()),
        lsb_refetch_rate=float(rq.mean()),
        dram_bytes_fp32_dense=float(np.sum(2 * lens * d0 * 4)),
    )
    sched = Schedule(
        mapping=f"spatten-trace:{trace.name}", cascade="spatten", passes=1, stages=stages, busy=busy, useful=useful,
        actions=actions, flops=float(np.sum(2 * d0 * (jc.macs_qk + jc.macs_pv) / d0)), compulsory_dram_bytes=total - lsb,
        extra={
            "tokens_kept": float(keys.sum() / lens.sum()), "values_kept": float(values.sum() / lens.sum()),
            "heads_kept": float(len(df) / (summary.iterations * summary.layers * (df["head_id"].max() + 1))),
            "lsb_refetch_rate": summary.lsb_refetch_rate, "lsb_dram_bytes": lsb,
            "dense_flops": float(np.sum(4 * d0 * lens)),
            "dram_requests": float(np.sum(jc.dram_requests)), "dram_activates": float(np.sum(jc.dram_activates)),
        },
        layers=summary.layers,
    )
    return sched, summary
