"""Measured GPU latency beside the simulated accelerators' latency, at the same workload, batch and length.

The data is a suite run of :mod:`attnforge.gpu_suite` (``attnforge reference --suite ...``); the committed
``reports/gpu_reference.json`` is the H100 run of both papers' workloads. Each FuseMax point is simulated at the batch
it was measured at (the suite cuts the batch above 64K tokens to fit the GPU), each SpAtten point as the whole
model's attention with the paper's pruning and quantization settings (``reports.spatten_runs``).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from attnforge.gpu_suite import MeasuredPoint, SuiteRun, from_json
from attnforge.sim.specs.errors import SpecError

DATA = Path(__file__).resolve().parent / "gpu_reference.json"
FUSEMAX_ACCELS: tuple[str, ...] = ("unfused", "flat", "fusemax")
SPATTEN_ACCELS: tuple[str, ...] = ("spatten",)


def load_runs(paths: list[Path] | None = None) -> SuiteRun:
    """One run from one or more suite files (merged; they must come from the same device, dtype and kernel)."""
    paths = paths or [DATA]
    runs = []
    for p in paths:
        runs.append(_load_run(Path(p)))
    first = runs[0]
    for r in runs[1:]:
        if (r.device_name, r.dtype, r.kernel) != (first.device_name, first.dtype, first.kernel):
            raise SpecError("--data", f"cannot merge runs from {r.device_name}/{r.dtype}/{r.kernel} and "
                            f"{first.device_name}/{first.dtype}/{first.kernel}")
    points = sorted((p for r in runs for p in r.points), key=lambda p: (p.suite != "fusemax", p.model, p.seq, p.label))
    merged = SuiteRun(**{**first.__dict__, "points": points,
                         "accuracy": [a for r in runs for a in r.accuracy],
                         "command": " ; ".join(r.command for r in runs),
                         "date": max(r.date for r in runs)})
    return merged


def _refuse_constant(name: str) -> float:
    raise ValueError(f"{name} is not a number JSON allows")


def _load_run(p: Path) -> SuiteRun:
    """One suite file, checked field by field: every problem is one SpecError naming the file and the field."""
    from attnforge.sim.specs.errors import read_text

    what = "--data"
    bad = f"{p} is not a suite file written by `attnforge reference --suite`"
    if not p.exists():
        raise SpecError(what, f"no such file: {p}")
    text = read_text(p, what)
    try:
        d = json.loads(text, parse_constant=_refuse_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise SpecError(what, f"{bad} ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(d, dict) or not isinstance(d.get("points", []), list):
        raise SpecError(what, f"{bad} (expected an object with a list of points)")
    if not all(isinstance(x, dict) for x in d.get("points", [])):
        raise SpecError(what, f"{bad} (every point must be an object)")
    try:
        run = from_json(d)
    except (TypeError, KeyError, AttributeError) as exc:
        raise SpecError(what, f"{bad} ({str(exc).splitlines()[0][:120]})") from None
    for f in ("device", "device_name", "dtype", "kernel", "date", "command"):
        if not isinstance(getattr(run, f), str):
            raise SpecError(f"{what} {f}", f"{p}: must be a string")
    if not isinstance(run.versions, dict):
        raise SpecError(f"{what} versions", f"{p}: must be an object")
    if not run.points:
        raise SpecError(f"{what} points", f"{p}: has no measured points")
    acc_keys = ("model", "dtype", "max_abs", "mean_rel", "bound", "within_bound")
    if not isinstance(run.accuracy, list) or not all(isinstance(a, dict) and all(k in a for k in acc_keys)
                                                     for a in run.accuracy):
        raise SpecError(f"{what} accuracy", f"{p}: must be a list of objects with {', '.join(acc_keys)}")
    for i, pt in enumerate(run.points):
        for f in ("batch", "seq", "heads", "d_head", "sdpa_calls"):
            v = getattr(pt, f)
            if isinstance(v, bool) or not isinstance(v, int) or not 0 < v <= 1 << 30:
                raise SpecError(f"{what} points[{i}].{f}", f"{p}: {v!r} is not a positive integer up to 2**30")
        for f in ("latency_s", "tflops"):
            v = getattr(pt, f)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
                raise SpecError(f"{what} points[{i}].{f}", f"{p}: {v!r} is not a positive finite number")
        for f in ("suite", "label", "model"):
            if not isinstance(getattr(pt, f), str):
                raise SpecError(f"{what} points[{i}].{f}", f"{p}: must be a string")
        if pt.suite not in ("fusemax", "spatten"):
            raise SpecError(f"{what} points[{i}].suite", f"{p}: unknown suite {pt.suite!r}", ["fusemax", "spatten"])
    return run


@lru_cache(maxsize=1)
def committed() -> SuiteRun | None:
    """The committed H100 run, or None when the file is absent (a source tree without it)."""
    return load_runs([DATA]) if DATA.exists() else None


def measured_latency(model: str, batch: int, seq: int, layers: int = 1) -> tuple[float, SuiteRun, int] | None:
    """The committed GPU latency of a non-causal prefill (P = M = seq), if it was measured, with the model layers it
    covers: for ``layers`` > 1 (a result over the whole model) the SpAtten suite's whole-model point first (BERT
    task lengths at batch 1; its GPT-2 points are prompt + generation, not a prefill), else the FuseMax suite's
    one-layer point."""
    run = committed()
    if run is None:
        return None
    for p in run.points:
        whole = p.suite == "spatten" and not p.model.startswith("gpt2")
        if layers > 1 and whole and (p.model, p.batch, p.seq) == (model, batch, seq):
            return p.latency_s, run, p.sdpa_calls  # one SDPA call per layer: the layers it timed
    for p in run.points:
        if p.suite == "fusemax" and (p.model, p.batch, p.seq) == (model, batch, seq):
            return p.latency_s, run, 1
    return None


@dataclass
class Comparison:
    point: MeasuredPoint
    simulated_s: dict[str, float]

    def speedup(self, accel: str) -> float:
        s = self.simulated_s.get(accel, math.nan)
        return self.point.latency_s / s if s else math.nan


def simulate_point(p: MeasuredPoint) -> dict[str, float]:
    if p.suite == "fusemax":
        from attnforge.sim.analytical.engine import run
        from attnforge.sim.specs.scenario import Scenario

        return {a: run(Scenario.build(accelerator=a, workload=p.model, seq_lens=[p.seq], batch=p.batch,
                                      causal=False))[0].latency_s for a in FUSEMAX_ACCELS}
    from attnforge.reports.spatten_runs import gpt2_policy, run_benchmark, run_phase
    from attnforge.sim.specs.spatten_policy import BERT
    from attnforge.workloads.spatten_benchmarks import PROMPT, benchmarks

    gpt2 = p.model.startswith("gpt2")
    # A BERT point that is one of the paper's benchmarks (same name, model and length) runs that benchmark's own
    # settings, so its latency is the one `reproduce spatten --per-benchmark` gives; other points the generic ones.
    bench = next((b for b in benchmarks() if (b.name, b.model, b.length) == (p.label, p.model, p.seq)
                  and not b.generative), None)
    if bench is not None:
        return {a: run_phase(bench, accel=a).seconds for a in SPATTEN_ACCELS}
    length, policy = (None, gpt2_policy()) if gpt2 else (p.seq, BERT)
    if gpt2 and p.seq != PROMPT + 32:
        raise SpecError("--data", f"{p.label}: GPT-2 points must be the paper's prompt + 32 steps")
    ph = "both" if gpt2 else None  # the GPU timed the prompt and the 32 steps; no dataset, so generic settings
    return {a: run_benchmark(p.model, length, policy, accel=a, phase=ph).seconds for a in SPATTEN_ACCELS}


def compare(run: SuiteRun) -> list[Comparison]:
    return [Comparison(p, simulate_point(p)) for p in run.points]


def _ms(s: float) -> str:
    return f"{s * 1e3:.4g}"


def format_table(run: SuiteRun, rows: list[Comparison]) -> str:
    head = (f"GPU baseline: {run.device_name}, {run.dtype}, {run.kernel} kernel; torch {run.versions.get('torch')}, "
            f"CUDA {run.versions.get('cuda')}, driver {run.versions.get('driver') or '-'}; measured {run.date}\n"
            f"latency = median of CUDA-event-timed runs (SDPA kernels only); speedup = GPU / simulated\n")
    out = [head]
    for suite, accels in (("fusemax", FUSEMAX_ACCELS), ("spatten", SPATTEN_ACCELS)):
        sel = [r for r in rows if r.point.suite == suite]
        if not sel:
            continue
        title = ("FuseMax suite: one attention layer, B x H heads" if suite == "fusemax"
                 else "SpAtten suite: whole-model attention, batch 1 (GPT-2: 992-token prompt + 32 decode steps)")
        cols = "".join(f"{a + ' ms':>12}{'x GPU':>8}" for a in accels)
        out += [title, f"{'point':<32}{'B':>4}{'GPU ms':>12}{'GPU TFLOPS':>11}{cols}"]
        for r in sel:
            p = r.point
            vals = "".join(f"{_ms(r.simulated_s[a]):>12}{r.speedup(a):>8.2f}" for a in accels)
            out.append(f"{p.label:<32}{p.batch:>4}{_ms(p.latency_s):>12}{p.tflops:>11.1f}{vals}")
        geo = {a: math.exp(sum(math.log(r.speedup(a)) for r in sel) / len(sel)) for a in accels}
        out.append(f"{'geomean speedup over the GPU':<59}" + "".join(f"{'':>12}{geo[a]:>8.2f}" for a in accels))
        out.append("")
    if run.accuracy:
        out.append("golden fixed-point model vs this device's float reference (head 0, 64 queries, 1K keys)")
        for a in run.accuracy:
            out.append(f"  {a['model']:<10} {a['dtype']:<8} max abs {a['max_abs']:.4g}  mean rel {a['mean_rel']:.3%}  "
                       f"bound {a['bound']:.4g}  {'ok' if a['within_bound'] else 'OUT OF BOUND'}")
    return "\n".join(out)


def frame(rows: list[Comparison]):
    import pandas as pd

    recs = []
    for r in rows:
        p = r.point
        base = {"suite": p.suite, "label": p.label, "model": p.model, "batch": p.batch, "seq": p.seq,
                "gpu_latency_s": p.latency_s, "gpu_tflops": p.tflops}
        recs += [{**base, "accel": a, "simulated_latency_s": s, "speedup_over_gpu": r.speedup(a)}
                 for a, s in r.simulated_s.items()]
    return pd.DataFrame(recs)


def plot(rows: list[Comparison], out: Path) -> Path:
    """Speedup over the GPU vs sequence length, one line per model and accelerator (FuseMax suite)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = frame([r for r in rows if r.point.suite == "fusemax"])
    from attnforge.reports.plots import series_styles

    fig, ax = plt.subplots(figsize=(7, 4.2))
    groups = list(df.groupby(["model", "accel"]))
    styles = series_styles([f"{a} {m}" for (m, a), _ in groups])
    for (model, accel), g in groups:
        g = g.sort_values("seq")
        st = styles[f"{accel} {model}"]
        ax.plot(g["seq"], g["speedup_over_gpu"], marker=st["marker"], color=st["color"], ms=4,
                ls="-" if accel == "fusemax" else ":", label=f"{accel} {model}")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_xlabel("sequence length")
    ax.set_ylabel("GPU latency / simulated latency")
    ax.set_title("Simulated accelerators vs measured GPU (same batch, one layer)")
    ax.legend(fontsize=6, ncol=3)
    fig.tight_layout()
    path = out / "gpu_baseline.png"
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path
