"""Area and Fmax against a swept design parameter (for `attnforge synth --sweep`)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def plot_synth(rows: list[dict], param: str, path: Path) -> Path:
    xs = [r["params"][param] for r in rows]
    fig, ax = plt.subplots(figsize=(6, 4))
    for key, style in (("lut", "o-"), ("ff", "s-")):
        ax.plot(xs, [r[key] for r in rows], style, label=key.upper())
    ax.set_xlabel(param)
    ax.set_ylabel("cells")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(xs, [r["fmax_mhz"] for r in rows], "^--", color="tab:red", label="Fmax")
    ax2.axhline(rows[0]["freq_mhz"], color="tab:red", alpha=0.3)
    ax2.set_ylabel("Fmax (MHz)", color="tab:red")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper left")
    ax.set_title(f"{rows[0]['design']} on {rows[0]['part']}: area and Fmax vs {param}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
