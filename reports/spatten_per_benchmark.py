"""SpAtten's 30 benchmarks one by one: what each run takes, moves and draws, and SpAtten1/8 beside A3 and MNNFast.

Why a table per benchmark: the paper's headline figures are means (geometric, §V-A) over the 30 benchmarks, and its
figures report the benchmarks one by one. A researcher comparing a design with SpAtten needs the same split: which
task is memory-bound, how much of its DRAM reduction is pruning and how much quantization, what it draws. The rows
come from the same runs (:func:`attnforge.reports.spatten_runs.run_phase`) that ``attnforge reproduce spatten``
averages, so the table's geometric means are the headline rows (tests/test_spatten_per_benchmark.py holds each row
to those runs).

``attnforge reproduce spatten --per-benchmark [--out FILE.csv|FILE.parquet]``; docs/spatten.md §Per-benchmark
results says what each column is.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from attnforge.reports.spatten_runs import Totals, run_phase
from attnforge.reports.spatten_table3 import TABLE3_ACCELS
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.progress import phase
from attnforge.sim.specs.spatten_policy import POLICIES
from attnforge.workloads.spatten_benchmarks import Benchmark, benchmarks


@dataclass(frozen=True)
class Column:
    """One column of the table: its name (CSV header), what it measures, and how it is computed from a run."""

    name: str
    meaning: str
    value: Callable[[Totals], float]
    fmt: str = "{:.3g}"


#: SpAtten's own run of a benchmark (the paper's chip, the benchmark's policy): one column each.
SPATTEN_COLUMNS: tuple[Column, ...] = (
    Column("latency_ms", "attention time: the BERT pass, or GPT-2's 32 generation steps", lambda t: t.seconds * 1e3,
           "{:.4g}"),
    Column("executed_gflop", "attention FLOPs executed after pruning (LSB recomputes included)",
           lambda t: t.flops / 1e9),
    Column("dense_gflop", "the same attention unpruned", lambda t: t.dense_flops / 1e9),
    Column("tflops", "executed FLOPs over time (the paper's V-C throughput)", lambda t: t.tflops),
    Column("effective_tflops", "dense FLOPs over time (pruned work counted as done)",
           lambda t: t.effective_gops / 1e3),
    Column("tokens_kept", "mean fraction of the tokens a pass keeps", lambda t: t.tokens_kept, "{:.2f}"),
    Column("dram_mb", "bytes read from HBM (K MSBs and LSBs, kept V, Q), MB", lambda t: t.dram_bytes / 1e6),
    Column("dram_reduction", "FP32 dense K+V over the K+V bytes moved (the paper's DRAM reduction)",
           lambda t: t.dram_reduction),
    Column("pruning_reduction", "its pruning part: dense K+V elements over those fetched",
           lambda t: t.pruning_reduction),
    Column("quant_reduction", "its quantization part: fetched elements at 32 bits over their bytes",
           lambda t: t.quant_reduction),
    Column("hbm_gb_s", "GB/s the HBM delivers while it moves the bytes", lambda t: t.achieved_gbs, "{:.0f}"),
    Column("hbm_row_hit", "fraction of the 32-byte HBM requests that find their row open", lambda t: t.row_hit_rate,
           "{:.2f}"),
    Column("memory_bound", "fraction of the cycles in layers whose DRAM time exceeds their compute",
           lambda t: t.memory_bound_share, "{:.2f}"),
    Column("energy_mj", "energy: actions x energy per action, plus static power", lambda t: t.energy_j * 1e3),
    Column("power_w", "average power (energy over time)", lambda t: t.energy_j / t.seconds, "{:.2f}"),
)


def _design_columns() -> tuple[tuple[str, str], ...]:
    """Per Table III design (SpAtten1/8, A3, MNNFast on SpAtten1/8's resources): its dense-equivalent GOP/s."""
    return tuple((name, f"{name.lower().replace('/', '_')}_gops")
                 for name, _, _ in TABLE3_ACCELS)


def benchmark_row(b: Benchmark) -> dict[str, object]:
    """One benchmark: SpAtten's run, then each Table III design's dense-equivalent GOP/s and SpAtten1/8's speedups."""
    t = run_phase(b)
    row: dict[str, object] = {"benchmark": b.name, "model": b.model, "dataset": b.dataset,
                              "run": f"{b.generate} generation steps" if b.generative else "one pass",
                              "length": b.length}
    row.update({c.name: float(c.value(t)) for c in SPATTEN_COLUMNS})
    gops = {}
    for (name, accel, pol), (_, col) in zip(TABLE3_ACCELS, _design_columns(), strict=True):
        run = run_phase(b, accel=accel, policy=POLICIES[pol] if pol else None)
        gops[name] = run.effective_gops
        row[col] = gops[name]
    for other in ("A3", "MNNFast"):
        row[f"speedup_vs_{other.lower()}"] = gops["SpAtten1/8"] / gops[other]
    return row


def select(patterns: Sequence[str] | None) -> list[Benchmark]:
    """The benchmarks whose names match any of ``patterns`` (shell-style: ``gpt2-*``, ``bert-base/SQuAD*``), in file
    order; all of them for None. A pattern that matches nothing is one error listing the names."""
    every = benchmarks()
    if not patterns:
        return every
    names = [b.name for b in every]
    for pat in patterns:
        if not fnmatch.filter(names, pat):
            raise SpecError("benchmark", f"{pat!r} matches no benchmark", names)
    return [b for b in every if any(fnmatch.fnmatchcase(b.name, p) for p in patterns)]


def per_benchmark(benches: list[Benchmark] | None = None) -> pd.DataFrame:
    """The table: one row per benchmark, in the order of the benchmark files (BERT tasks, then GPT-2)."""
    benches = benchmarks() if benches is None else benches
    out = []
    for i, b in enumerate(benches):
        phase(f"per-benchmark: {i + 1}/{len(benches)} {b.name} (SpAtten, SpAtten1/8, A3, MNNFast)")
        out.append(benchmark_row(b))
    return pd.DataFrame(out)


def geometric_means(df: pd.DataFrame) -> dict[str, float]:
    """Geometric mean of every numeric column over the rows (the paper's averaging, §V-A)."""
    return {c: float(np.exp(np.mean(np.log(df[c].to_numpy(dtype=np.float64)))))
            for c in df.columns if pd.api.types.is_float_dtype(df[c]) and (df[c] > 0).all()}


def with_means(df: pd.DataFrame) -> pd.DataFrame:
    """The table with its geometric means as a last row named "geometric mean" (for CSV-like and HTML views)."""
    return pd.concat([df, pd.DataFrame([{"benchmark": "geometric mean", **geometric_means(df)}])], ignore_index=True)


def column_help() -> str:
    """What each column means (``--per-benchmark`` prints it under the table)."""
    cols = [(c.name, c.meaning) for c in SPATTEN_COLUMNS]
    cols += [(col, f"{name}'s dense-equivalent GOP/s (Table III's resources: 128 multipliers, 64 GB/s)")
             for name, col in _design_columns()]
    cols += [("speedup_vs_a3", "SpAtten1/8 over A3"), ("speedup_vs_mnnfast", "SpAtten1/8 over MNNFast")]
    w = max(len(n) for n, _ in cols)
    return "\n".join(f"  {n:<{w}}  {m}" for n, m in cols)


def format_table(df: pd.DataFrame) -> str:
    """The table as text, with the geometric means of the numeric columns as a last line."""
    fmts = {c.name: c.fmt for c in SPATTEN_COLUMNS}
    shown = df.drop(columns=["model", "dataset", "run"])
    means = geometric_means(shown)
    body = [[str(v) if not isinstance(v, float) else fmts.get(c, "{:.3g}").format(v) for c, v in r.items()]
            for r in shown.to_dict("records")]
    body.append(["geometric mean", ""] + [fmts.get(c, "{:.3g}").format(means[c]) if c in means else ""
                                           for c in shown.columns[2:]])
    head = list(shown.columns)
    widths = [max(len(head[i]), *(len(r[i]) for r in body)) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths, strict=True)))

    return "\n".join([line(head), *(line(r) for r in body)])


def _saving(what: str, path: Path, save: Callable[[Path], object]) -> None:
    """Save to ``path``, making its folder; a file system refusal (permissions, a file where a folder should be)
    is one clear error naming the option, not a traceback."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        save(path)
    except OSError as exc:
        raise SpecError(what, f"cannot write {path}: {exc.strerror or exc}") from None


#: What each output can be written as, by suffix (the table: pandas' writers; the figure: matplotlib's).
TABLE_SUFFIXES: tuple[str, ...] = (".csv", ".parquet")
FIGURE_SUFFIXES: tuple[str, ...] = (".png", ".svg", ".pdf")


def check_outputs(out: Path | None, fig: Path | None) -> None:
    """Refuse a table or figure file this module cannot write, before any benchmark runs (one error each)."""
    if out is not None and out.suffix not in TABLE_SUFFIXES:
        raise SpecError("--out", f"cannot write {out.name}: the table is written as CSV or Parquet", TABLE_SUFFIXES)
    if fig is not None and fig.suffix not in FIGURE_SUFFIXES:
        raise SpecError("--plot", f"cannot draw {fig.name}: the figure is written as PNG, SVG or PDF",
                        FIGURE_SUFFIXES)


def write(df: pd.DataFrame, path: Path) -> None:
    """CSV or Parquet by the file's suffix; anything else is one clear error."""
    check_outputs(path, None)
    if path.suffix == ".csv":
        _saving("--out", path, lambda p: df.to_csv(p, index=False))
    else:
        _saving("--out", path, lambda p: df.to_parquet(p, index=False))


def plot(df: pd.DataFrame, path: Path) -> Path:
    """Two panels over the benchmarks: SpAtten1/8's speedup over A3 and MNNFast, and SpAtten's DRAM reduction split
    into its pruning and quantization parts (log scale; the dashed lines are the geometric means)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from attnforge.reports.plots import log_axes

    check_outputs(None, path)
    x = np.arange(len(df))
    fig, axes = plt.subplots(2, 1, figsize=(max(8.0, 0.36 * len(df) + 2), 7.5), sharex=True)
    means = geometric_means(df)
    panels = (("SpAtten1/8 speedup (x)", (("speedup_vs_a3", "over A3"), ("speedup_vs_mnnfast", "over MNNFast"))),
              ("DRAM reduction vs FP32 K+V (x)", (("pruning_reduction", "pruning"), ("quant_reduction", "quantization"),
                                                  ("dram_reduction", "both"))))
    for ax, (label, cols) in zip(axes, panels, strict=True):
        width = 0.8 / len(cols)
        for i, (col, name) in enumerate(cols):
            bars = ax.bar(x + (i - (len(cols) - 1) / 2) * width, df[col], width, label=name)
            ax.axhline(means[col], color=bars.patches[0].get_facecolor(), ls="--", lw=0.8)
        log_axes(ax, x=False, y=True)
        ax.set_ylabel(label)
        ax.grid(axis="y", which="both", alpha=0.3)
        ax.legend(fontsize=8, ncol=len(cols))
    axes[-1].set_xticks(x, df["benchmark"], rotation=70, ha="right", fontsize=7)
    axes[0].set_title(f"SpAtten's {len(df)} benchmark{'s' if len(df) != 1 else ''} "
                      "(attnforge reproduce spatten --per-benchmark)")
    fig.tight_layout()
    try:
        _saving("--plot", path, lambda p: fig.savefig(p, dpi=120))
    finally:
        plt.close(fig)
    return path
