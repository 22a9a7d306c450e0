"""`attnforge report RUN_DIR`: one self-contained HTML page (tables + inline PNGs) readable offline."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pandas as pd

from attnforge.sim.specs.errors import SpecError, read_text

_SUMMARY_COLS = ["accelerator", "workload", "seq_len", "batch", "scope", "layers", "cycles", "latency_s", "energy_j",
                 "dram_bytes", "utilization.2d", "utilization.1d", "util_2d", "util_1d", "tflops", "bound", "area_mm2", "speedup",
                 "energy_ratio", "pareto"]
#: What identifies a point of work: designs are only compared within one of these groups, never averaged across.
_POINT = ["workload", "seq_len", "batch", "scope"]


def swept_columns(df: pd.DataFrame) -> list[str]:
    """The design knobs of a run: arch.* and tile.* columns (a sweep's axes) and the --set overrides."""
    return [c for c in df.columns if c.startswith(("arch.", "tile."))] + [c for c in df.columns if c == "overrides"]


def _cell(v: object) -> tuple[str, str]:
    """(shown text, sort key) of one value."""
    if v is None or (isinstance(v, float) and v != v):
        return "", ""
    if isinstance(v, (bool, np.bool_)):
        return ("yes" if v else "no"), str(int(v))
    if isinstance(v, (float, np.floating)):
        return f"{v:.4g}", repr(float(v))
    if isinstance(v, (int, np.integer)):
        return str(v), str(v)
    return str(v), str(v)


def _long_text(col: pd.Series) -> bool:
    """A text column with sentences in it (a paper row's note): wrapped in its cell rather than one long line."""
    return not pd.api.types.is_numeric_dtype(col) and bool(col.astype(str).str.len().gt(80).any())


def _table(tid: str, title: str, df: pd.DataFrame, cols: list[str], swept: list[str], note: str = "") -> dict:
    cols = list(dict.fromkeys([*[c for c in swept if c in df.columns], *[c for c in cols if c in df.columns]]))
    meta = [{"name": c, "cls": ("swept " if c in swept else "") + ("" if pd.api.types.is_numeric_dtype(df[c])
             and not pd.api.types.is_bool_dtype(df[c]) else "txt" + (" wrap" if _long_text(df[c]) else "")),
             "type": "num" if pd.api.types.is_numeric_dtype(df[c]) else "str"} for c in cols]
    rows = [[_cell(v) for v in rec] for rec in df[cols].itertuples(index=False, name=None)]
    return {"id": tid, "title": title, "note": note, "columns": meta, "rows": rows}


def write_report(run_dir: Path, out: Path | None = None, max_rows: int = 500) -> Path:
    """Render results.csv (from `compare -o` or `sweep`) and every PNG in the folder into report.html: one
    self-contained page (inline CSS, JS and images), readable offline."""
    from attnforge.reports.plots import pareto_groups, pareto_png

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SpecError("RUN_DIR", f"{run_dir} is not a folder", "a folder written by `attnforge compare -o` or `sweep`")
    csv = run_dir / "results.csv"
    if not csv.exists():
        raise SpecError("RUN_DIR", f"{run_dir} has no results.csv", "a folder written by `attnforge compare -o` or `sweep`")
    df = _read_results(csv)
    out = out or run_dir / "report.html"
    spec_text = None
    spec = run_dir / "spec.json"
    if spec.exists():
        try:
            spec_text = json.dumps(json.loads(read_text(spec, "spec.json")), indent=1)
        except (json.JSONDecodeError, RecursionError):
            raise SpecError("spec.json", f"{spec} is not valid JSON (written by `attnforge sweep`)") from None
    swept = swept_columns(df)
    cols = [c for c in _SUMMARY_COLS if c in df.columns]
    point = [c for c in _POINT if c in df.columns]
    tables = []
    if {"accelerator", "latency_s"} <= set(df.columns) and point:
        best = df.loc[df.groupby([*point, "accelerator"], sort=True)["latency_s"].idxmin()]
        tables.append(_table("best", "Fastest design of each accelerator at each point", best, cols, swept,
                             "One row per (workload, seq_len, batch, scope) and accelerator: the lowest-latency design. "
                             "Latencies and energies are never averaged across different workloads or lengths."))
    if "pareto" in df.columns and df["pareto"].dtype == bool:
        front = df[df["pareto"]].head(max_rows)
        tables.append(_table("pareto", f"Pareto-optimal designs ({int(df['pareto'].sum())}: latency, energy, area "
                             "per model layer, within each point)", front, cols, swept))
    more = f" (first {max_rows} of {len(df)})" if len(df) > max_rows else ""
    tables.append(_table("all", f"All results{more}", df.head(max_rows), cols, swept))
    panels = []
    if "pareto" in df.columns and {"latency_s", "energy_j", "accelerator"} <= set(df.columns):
        panels = [{"label": label, "data": base64.b64encode(pareto_png(sub, label)).decode()}
                  for label, sub in pareto_groups(df)]
    images = [{"name": png.name, "title": png.stem.replace("_", " "), "data": base64.b64encode(png.read_bytes()).decode()}
              for png in sorted(run_dir.glob("*.png"))]
    return render(out, "RUN_DIR", name=run_dir.name, source=str(csv), rows=len(df), swept=swept, spec=spec_text, tables=tables,
                  panels=panels, images=images, texts=[])


def render(out: Path, field: str, **page: object) -> Path:
    """Render the one page template (sortable, filterable tables; inline images; preformatted texts) to ``out``;
    a file-system refusal is one SpecError on ``field`` (the option that named the file) naming the file."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.PackageLoader("attnforge.reports", "templates"),
                             autoescape=jinja2.select_autoescape(["html", "j2"]), trim_blocks=True, lstrip_blocks=True)
    env.globals["zip"] = zip
    html = env.get_template("report.html.j2").render(**page)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(html, encoding="utf-8")
    except OSError as exc:
        raise SpecError(field, f"cannot write {out}: {exc.strerror or exc}") from None
    return out


#: What an HTML page's file name may end with.
HTML_SUFFIXES = (".html", ".htm")


def check_html(path: Path | None) -> None:
    """Refuse a --html name that is not an .html file, or whose folder cannot be made, before any long run."""
    if path is None:
        return
    if Path(path).suffix.lower() not in HTML_SUFFIXES:
        raise SpecError("--html", f"{path}: the page is written as HTML", [f"FILE{x}" for x in HTML_SUFFIXES])
    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpecError("--html", f"cannot write {path}: {exc.strerror or exc}") from None


def write_page(out: Path, title: str, command: str, tables: list[tuple[str, pd.DataFrame, str]],
               images: list[tuple[str, bytes]] = (), texts: list[tuple[str, str]] = ()) -> Path:
    """One self-contained page of any tables (title, frame, note), PNG images and preformatted texts, e.g. a paper
    reproduction's (`attnforge reproduce ... --html`), in the same layout as `attnforge report`."""
    out = Path(out)
    check_html(out)
    frames = [_table(f"t{i}", title_, df, list(df.columns), [], note) for i, (title_, df, note) in enumerate(tables)]
    pics = [{"name": t, "title": t, "data": base64.b64encode(png).decode()} for t, png in images]
    return render(out, "--html", name=title, source=command, what="rows", rows=sum(len(df) for _, df, _ in tables), swept=[],
                  spec=None, tables=frames, panels=[], images=pics, texts=[{"title": t, "body": b} for t, b in texts])


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
