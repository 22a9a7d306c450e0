"""The regression report: one pass/fail row per case, as Markdown + JSON + plots (`attnforge regress --report`).

Rows come from :mod:`rtl.regress` (bit-exact comparison with the golden model, cycle equality with the cycle
model, float error of the tile engine against float64 attention, which ``tests/test_reference.py`` shows equals
PyTorch's SDPA to 1e-5).
"""

from __future__ import annotations

import datetime as _dt
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from attnforge.sim.specs.errors import finite_json  # noqa: E402

COLUMNS = ("design", "workload", "simulator", "passed", "rtl_cycles", "sim_cycles", "max_abs_error",
           "float_max_abs_error", "steady_mac_utilization")


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, bool):
        return "PASS" if v else "**FAIL**"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def write_report(rows: Sequence[dict[str, Any]], out: Path, wall_s: float, rates: dict[str, float]) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / "regress.json", "md": out / "regress.md"}
    paths["json"].write_text(json.dumps(finite_json(list(rows)), indent=1, default=str, allow_nan=False))
    failed = [r for r in rows if not r.get("passed")]
    md = [f"# attnforge RTL regression ({_dt.datetime.now(_dt.UTC).isoformat(timespec='seconds')})", "",
          f"**{len(rows) - len(failed)}/{len(rows)} passed** in {wall_s:.1f} s; simulated cycles/s: "
          + ", ".join(f"{k} {v:,.0f}" for k, v in sorted(rates.items())), "",
          "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        md.append("| " + " | ".join(_cell(r.get(c)) for c in COLUMNS) + " |")
    if failed:
        md += ["", "## Failures", ""] + [f"- {r.get('design')} / {r.get('workload')} / {r.get('simulator')}: "
                                         f"{r.get('error', 'see regress.json')}" for r in failed]
    paths.update(_plots(rows, out))
    md += ["", *[f"![{k}]({p.name})" for k, p in paths.items() if p.suffix == ".png"]]
    paths["md"].write_text("\n".join(md) + "\n")
    return paths


def _plots(rows: Sequence[dict[str, Any]], out: Path) -> dict[str, Path]:
    paths: dict[str, Path] = {}
    cyc = [r for r in rows if r.get("rtl_cycles") and r.get("sim_cycles")]
    if cyc:
        fig, ax = plt.subplots(figsize=(5, 4.5))
        for sim in sorted({r["simulator"] for r in cyc}):
            pts = [r for r in cyc if r["simulator"] == sim]
            ax.scatter([r["sim_cycles"] for r in pts], [r["rtl_cycles"] for r in pts], label=sim, alpha=0.7)
        lo = min(min(r["sim_cycles"], r["rtl_cycles"]) for r in cyc)
        hi = max(max(r["sim_cycles"], r["rtl_cycles"]) for r in cyc)
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8, label="equal")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("simulator cycle model")
        ax.set_ylabel("RTL cycles")
        ax.legend(fontsize=8)
        ax.set_title("cycles: RTL vs cycle model", fontsize=10)
        fig.tight_layout()
        paths["cycles"] = out / "cycles.png"
        fig.savefig(paths["cycles"], dpi=110)
        plt.close(fig)
    err = [r for r in rows if r.get("float_max_abs_error") is not None]
    if err:
        # error as a fraction of its bound where the case reports one (bound line at 1), else the raw error
        bounded = all(r.get("float_bound") for r in err)
        vals = [r["float_max_abs_error"] / r["float_bound"] if bounded else r["float_max_abs_error"] for r in err]
        fig, ax = plt.subplots(figsize=(max(6.0, 0.35 * len(err) + 2), 4.5))
        ax.bar(range(len(err)), [max(v, 1e-12) for v in vals],
               color=["tab:green" if r["passed"] else "tab:red" for r in err])
        if bounded:
            ax.axhline(1.0, color="black", ls="--", lw=1, label="bound (error = bound)")
            ax.legend(fontsize=8)
        if min(vals) > 0:
            ax.set_yscale("log")
        labels = [f"{r['workload']} {r['simulator'][:4]}" for r in err]
        ax.set_xticks(range(len(err)), labels, fontsize=7, rotation=60, ha="right")
        ax.set_ylabel("max abs error / its bound" if bounded else "max abs error vs float attention")
        ax.set_title("tile engine output vs float reference", fontsize=10)
        fig.tight_layout()
        paths["float_error"] = out / "float_error.png"
        fig.savefig(paths["float_error"], dpi=110, bbox_inches="tight")
        plt.close(fig)
    return paths
