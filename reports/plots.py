"""Plots vs sequence length: speedup, utilization and energy breakdown (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from attnforge.reports.tables import energy_ratio, speedup  # noqa: E402
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
        ax.plot(xs, [speedup(base[r.seq_len], r) for r in rs if r.seq_len in base], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("sequence length")
    mixed = any(r.layers != 1 for r in results)
    ax.set_ylabel(f"speedup vs {baseline}" + (", per model layer" if mixed else ""))
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
        for i, comp in enumerate(comps):  # tab20: SpAtten's and the cascades' components together pass 10 colours
            # each component's share of the accelerator's energy, times its energy over the baseline's (per layer)
            vals = [r.energy_breakdown_j.get(comp, 0.0) / r.energy_j * energy_ratio(base.get(r.seq_len, r), r)
                    if r.energy_j else 0.0 for r in rs]
            ax.bar(labels, vals, bottom=bottom, label=comp, color=plt.get_cmap("tab20").colors[i % 20])
            bottom = [b + v for b, v in zip(bottom, vals, strict=True)]
        ax.set_title(name)
        ax.set_xlabel("sequence length")
    axes[0][0].set_ylabel(f"energy / {baseline} energy" + (", per model layer" if mixed else ""))
    axes[0][-1].legend(fontsize=7)
    fig.tight_layout()
    paths.append(out_dir / "energy_breakdown.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)
    return paths


def _short(n: int) -> str:
    return f"{n >> 20}M" if n >= 1 << 20 else f"{n >> 10}K" if n >= 1024 else str(n)


#: Markers cycled with the colours: with 20 colours x 8 markers no two of the first 40 series look alike.
_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def series_styles(names: Sequence[str]) -> dict[str, dict[str, object]]:
    """A colour and marker per series that stay distinct past 10 series (tab10, then tab20, then markers)."""
    import matplotlib as mpl

    cmap = mpl.colormaps["tab10" if len(names) <= 10 else "tab20"]
    n = cmap.N
    return {name: {"color": cmap(i % n), "marker": _MARKERS[i % len(_MARKERS)]} for i, name in enumerate(names)}


def log_axes(ax, x: bool = True, y: bool = True) -> None:  # noqa: ANN001 - a matplotlib Axes
    """Log scale with tick labels on both axes even when the data spans less than a decade (1, 2, 5 steps)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    fmt = FuncFormatter(lambda v, _pos: f"{v:.3g}")
    for on, axis, set_scale in ((x, ax.xaxis, ax.set_xscale), (y, ax.yaxis, ax.set_yscale)):
        if not on:
            continue
        set_scale("log")
        ax.autoscale_view()
        lo, hi = axis.get_view_interval()
        span = hi / max(lo, 1e-300)
        subs = (1.0,) if span >= 100 else (1.0, 2.0, 5.0) if span >= 8 else (1.0, 1.5, 2.0, 3.0, 4.0, 5.0, 7.0)
        loc = LogLocator(base=10, subs=subs)
        if sum(lo <= t <= hi for t in loc.tick_values(lo, hi)) < 2:  # under one 1-2-3-5 step: evenly spaced ticks
            from matplotlib.ticker import FixedLocator, MaxNLocator

            loc = FixedLocator([t for t in MaxNLocator(4).tick_values(lo, hi) if lo <= t <= hi and t > 0])
        axis.set_major_locator(loc)
        axis.set_major_formatter(fmt)
        axis.set_minor_formatter(NullFormatter())


def pareto_panel(ax, sub, styles: dict[str, dict[str, object]]) -> None:  # noqa: ANN001 - Axes, DataFrame
    """Latency vs energy of one (workload, seq_len, batch, scope) group: a colour and marker per accelerator, the
    Pareto-optimal designs (latency, energy, area) ringed. Per model layer when a row covers several (SpAtten's
    cover the whole model, the per-layer dataflows' one layer), as the Pareto flag weighs them."""
    per = sub["layers"].fillna(1) if "layers" in sub.columns and (sub["layers"].fillna(1) != 1).any() else None
    x, y = (sub[k] if per is None else sub[k] / per for k in ("latency_s", "energy_j"))
    for accel, idx in sub.groupby("accelerator", sort=False).groups.items():
        st = styles[accel]
        ax.scatter(x[idx], y[idx], s=22, alpha=0.75, color=st["color"], marker=st["marker"], label=accel)
    front = sub["pareto"].astype(bool) if "pareto" in sub.columns else None
    if front is not None and front.any():
        ax.scatter(x[front], y[front], facecolors="none", edgecolors="black", s=70, lw=0.9, label="Pareto-optimal")
    positive = bool((x > 0).all() and (y > 0).all())
    if positive:
        log_axes(ax)
    unit = "" if per is None else " per model layer"
    ax.set_xlabel(f"latency{unit} (s)" + (", log" if positive else ""))
    ax.set_ylabel(f"energy{unit} (J)" + (", log" if positive else ""))
    ax.grid(True, which="both", alpha=0.25)


GROUP = ["workload", "seq_len", "batch", "scope"]


def pareto_groups(df) -> list[tuple[str, object]]:  # noqa: ANN001 - DataFrame
    """(label, rows) per (workload, seq_len, batch, scope) present in a sweep's results."""
    keys = [k for k in GROUP if k in df.columns]
    out = []
    for key, sub in df.groupby(keys, sort=True):
        vals = dict(zip(keys, key if isinstance(key, tuple) else (key,), strict=True))
        label = ", ".join(f"{k} {vals[k]}" if k in ("seq_len", "batch") else str(vals[k]) for k in keys)
        out.append((label, sub))
    return out


def plot_pareto_grid(df, path: Path, max_panels: int = 30) -> Path:  # noqa: ANN001 - DataFrame
    """One latency-energy panel per (workload, seq_len, batch, scope), up to ``max_panels`` (the largest problems
    first when there are more; the HTML report has a selector over all of them)."""
    groups = pareto_groups(df)
    if len(groups) > max_panels:
        groups = sorted(groups, key=lambda g: -float(g[1]["flops"].max()) if "flops" in g[1] else 0)[:max_panels]
    styles = series_styles(list(dict.fromkeys(df["accelerator"])))
    cols = min(4, len(groups))
    rows = -(-len(groups) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows + 0.6), squeeze=False)
    for ax, (label, sub) in zip(axes.flat, groups, strict=False):
        pareto_panel(ax, sub, styles)
        ax.set_title(label, fontsize=8)
        ax.tick_params(labelsize=7)
        ax.xaxis.label.set_size(8)
        ax.yaxis.label.set_size(8)
    for ax in list(axes.flat)[len(groups):]:
        ax.set_visible(False)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", ncol=min(6, len(labels)), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.5 / (3.0 * rows + 0.6)))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def pareto_png(sub, label: str) -> bytes:  # noqa: ANN001 - DataFrame
    """One group's Pareto panel as PNG bytes (the HTML report's selector)."""
    import io

    styles = series_styles(list(dict.fromkeys(sub["accelerator"])))
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    pareto_panel(ax, sub, styles)
    ax.set_title(label, fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
