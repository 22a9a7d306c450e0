"""`attnforge report RUN_DIR`: one self-contained HTML page (tables + inline PNGs) readable offline."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import pandas as pd

from attnforge.sim.specs.errors import SpecError, read_text

_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}table{border-collapse:collapse;font-size:12px}
td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}th{background:#f0f0f0}img{max-width:100%;margin:1em 0}
h1{font-size:20px}h2{font-size:16px;margin-top:2em}.note{color:#555;font-size:13px}"""

_SUMMARY_COLS = ["accelerator", "workload", "seq_len", "batch", "scope", "cycles", "latency_s", "energy_j", "dram_bytes",
                 "utilization.2d", "utilization.1d", "util_2d", "util_1d", "tflops", "bound", "area_mm2", "pareto"]


def write_report(run_dir: Path, out: Path | None = None, max_rows: int = 500) -> Path:
    """Render results.csv (from `compare -o` or `sweep`) and every PNG in the folder into report.html."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SpecError("RUN_DIR", f"{run_dir} is not a folder", "a folder written by `attnforge compare -o` or `sweep`")
    csv = run_dir / "results.csv"
    if not csv.exists():
        raise SpecError("RUN_DIR", f"{run_dir} has no results.csv", "a folder written by `attnforge compare -o` or `sweep`")
    df = _read_results(csv)
    out = out or run_dir / "report.html"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>attnforge: {html.escape(run_dir.name)}</title>",
             f"<style>{_CSS}</style></head><body><h1>attnforge report: {html.escape(run_dir.name)}</h1>"]
    spec = run_dir / "spec.json"
    if spec.exists():
        try:
            text = json.dumps(json.loads(read_text(spec, "spec.json")), indent=1)
        except (json.JSONDecodeError, RecursionError):
            raise SpecError("spec.json", f"{spec} is not valid JSON (written by `attnforge sweep`)") from None
        parts.append("<h2>Sweep spec</h2><pre>" + html.escape(text) + "</pre>")
    parts.append(f"<p class='note'>{len(df)} results from {html.escape(str(csv))}.</p>")
    cols = [c for c in _SUMMARY_COLS if c in df.columns]
    if {"accelerator", "cycles", "latency_s", "energy_j", "dram_bytes"} <= set(df.columns):
        agg = df.groupby("accelerator", sort=False).agg(
            points=("cycles", "size"), mean_latency_s=("latency_s", "mean"),
            mean_energy_j=("energy_j", "mean"), total_dram_bytes=("dram_bytes", "sum"),
        )
        parts.append("<h2>Summary by accelerator</h2>" + agg.to_html(float_format=lambda x: f"{x:.4g}"))
    if "pareto" in df.columns and df["pareto"].dtype == bool:
        parts.append("<h2>Pareto-optimal designs</h2>" + df[df["pareto"]][cols].head(max_rows).to_html(
            index=False, float_format=lambda x: f"{x:.4g}"))
    for png in sorted(run_dir.glob("*.png")):
        data = base64.b64encode(png.read_bytes()).decode()
        parts.append(f"<h2>{html.escape(png.stem.replace('_', ' '))}</h2><img alt='{html.escape(png.name)}' "
                     f"src='data:image/png;base64,{data}'>")
    shown = df[cols].head(max_rows)
    more = f" (first {max_rows} of {len(df)})" if len(df) > max_rows else ""
    parts.append(f"<h2>All results{more}</h2>" + shown.to_html(index=False, float_format=lambda x: f"{x:.4g}"))
    parts.append("</body></html>")
    try:
        out.write_text("\n".join(parts))
    except OSError as exc:
        raise SpecError("RUN_DIR", f"cannot write {out}: {exc.strerror or exc}") from None
    return out


#: Columns the summary computes with; each must be numeric when present.
_NUMERIC = ("cycles", "latency_s", "energy_j", "dram_bytes")


def _read_results(csv: Path) -> pd.DataFrame:
    """results.csv, checked: readable CSV, at least one row, numeric cost columns; else one SpecError."""
    import io

    text = read_text(csv, "results.csv")
    try:
        df = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
        raise SpecError("results.csv", f"{csv} is not a readable CSV ({str(exc).splitlines()[0][:120]})") from None
    if df.empty:
        raise SpecError("results.csv", f"{csv} has no result rows")
    for c in _NUMERIC:
        if c in df.columns and not pd.api.types.is_numeric_dtype(df[c]):
            raise SpecError(f"results.csv column {c}", f"{csv}: must hold numbers")
    return df
