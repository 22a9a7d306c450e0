"""Plots vs sequence length: speedup, utilization and energy breakdown (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from attnforge.sim.analytical.result import Result  # noqa: E402


def _by_accel(results: Sequence[Result]) -> dict[str, list[Result]]:
    out: dict[str, list[Result]] = {}
    for r in results:
        out.setdefault(r.accelerator, []).append(r)
    for v in out.values():
        v.sort(key=lambda r: r.seq_len)
    return out


def plot_compare(results: Sequence[Result], baseline: str, out_dir: Path) -> list[Path]:
    """Writes speedup.png, utilization.png and energy_breakdown.png; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    groups = _by_accel(results)
    base = {r.seq_len: r for r in groups.get(baseline, [])}
    paths = []

    fig, ax = plt.subplots(figsize=(6, 4))
    for name, rs in groups.items():
        xs = [r.seq_len for r in rs if r.seq_len in base]
        ax.plot(xs, [base[r.seq_len].cycles / r.cycles for r in rs if r.seq_len in base], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sequence length")
    ax.set_ylabel(f"speedup vs {baseline}")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    paths.append(out_dir / "speedup.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    arrays = list(dict.fromkeys(a for r in results for a in r.utilization))
    fig, axes = plt.subplots(1, len(arrays), figsize=(4.5 * len(arrays), 4), sharey=True, squeeze=False)
    for ax, arr in zip(axes[0], arrays, strict=True):
        for name, rs in groups.items():
            ax.plot([r.seq_len for r in rs], [r.utilization.get(arr, 0.0) for r in rs], marker="o", label=name)
        ax.set_xscale("log", base=2)
        ax.set_title(f"{arr} array utilization")
        ax.set_xlabel("sequence length")
        ax.grid(True, alpha=0.3)
    axes[0][0].set_ylabel("utilization")
    axes[0][0].legend()
    fig.tight_layout()
    paths.append(out_dir / "utilization.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    comps = sorted({c for r in results for c in r.energy_breakdown_j if any(x.energy_breakdown_j.get(c) for x in results)})
    fig, axes = plt.subplots(1, len(groups), figsize=(3.2 * len(groups), 4), sharey=True, squeeze=False)
    for ax, (name, rs) in zip(axes[0], groups.items(), strict=True):
        labels = [_short(r.seq_len) for r in rs]
        bottom = [0.0] * len(rs)
        for comp in comps:
            vals = [r.energy_breakdown_j.get(comp, 0.0) / (base[r.seq_len].energy_j if r.seq_len in base else r.energy_j)
                    for r in rs]
            ax.bar(labels, vals, bottom=bottom, label=comp)
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set_title(name)
        ax.set_xlabel("sequence length")
    axes[0][0].set_ylabel(f"energy / {baseline} energy")
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    paths.append(out_dir / "energy_breakdown.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def _short(n: int) -> str:
    return f"{n >> 20}M" if n >= 1 << 20 else f"{n >> 10}K" if n >= 1024 else str(n)
