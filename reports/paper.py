"""One paper-comparison row type and its text table, shared by `reproduce fusemax` and `reproduce spatten`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class Row:
    """A figure from a paper beside ours; ``note`` explains any deviation over 15%."""

    metric: str
    paper: float
    ours: float
    source: str
    note: str = ""

    @property
    def deviation(self) -> float:
        return (self.ours - self.paper) / self.paper if self.paper and not math.isnan(self.paper) else 0.0

    @property
    def flagged(self) -> bool:
        return abs(self.deviation) > 0.15


def format_rows(rows: list[Row], notes: list[str] | None = None, see: str = "") -> str:
    """Fixed-width table; rows off by more than 15% are starred and their explanations listed below."""
    w = max(len(r.metric) for r in rows)
    lines = [f"{'metric':<{w}}  {'paper':>12}  {'ours':>12}  {'dev':>7}  source"]
    for r in rows:
        if math.isnan(r.paper):
            lines.append(f"{r.metric:<{w}}  {'-':>12}  {r.ours:>12.4g}  {'':>7}  {r.source}")
            continue
        flag = " *" if r.flagged else ""
        lines.append(f"{r.metric:<{w}}  {r.paper:>12.4g}  {r.ours:>12.4g}  {r.deviation:>+6.1%}{flag}  {r.source}")
    flagged = [r for r in rows if r.flagged]
    if flagged:
        lines += ["", f"deviations over 15%{f' (see {see})' if see else ''}:"]
        lines += [f"* {r.metric}: {r.note or (f'see {see}' if see else 'unexplained')}" for r in flagged]
    lines += [f"note: {n}" for n in notes or []]
    return "\n".join(lines)


def rows_frame(rows: list[Row]) -> pd.DataFrame:
    """The rows as a table for CSV or HTML: the deviation in percent (empty where the paper gives no figure), whether
    it is over 15%, and the note that explains it."""
    return pd.DataFrame([{"metric": r.metric, "paper": r.paper, "ours": r.ours,
                          "deviation_pct": float("nan") if math.isnan(r.paper) else 100 * r.deviation,
                          "over_15pct": r.flagged, "source": r.source, "note": r.note} for r in rows])
