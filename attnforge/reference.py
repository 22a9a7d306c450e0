"""Float reference: the workload's attention in PyTorch (SDPA; the flash kernel on CUDA), timed and saved.

It is the independent check on both the golden model (which must stay within its error bound of it) and the
simulator (whose predicted latency is shown beside the measured one). Runs on CUDA when present, else on CPU.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import platform
import statistics
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from attnforge.sim.specs.errors import SpecError, finite_json
from attnforge.workloads import Workload

DEVICES: tuple[str, ...] = ("auto", "cuda", "cpu")
DTYPES: tuple[str, ...] = ("float32", "float16", "bfloat16")


@dataclass
class ReferenceRun:
    workload: str
    batch: int
    heads: int
    p: int
    m: int
    e: int
    causal: bool
    device: str
    device_name: str
    dtype: str
    kernel: str
    repeats: int
    latency_s: float  #: median over repeats
    latency_all_s: list[float]
    versions: dict[str, str]
    date: str
    golden: dict[str, float] = field(default_factory=dict)
    simulated_latency_s: dict[str, float] = field(default_factory=dict)


def _torch():
    try:
        import torch
    except ImportError:
        raise SpecError("reference", "PyTorch is not installed", ["pip install 'attnforge[gpu]' (torch==2.13.0)"]) from None
    return torch


def resolve_device(torch, device: str) -> str:
    """``auto`` -> cuda when present, else cpu; asking for cuda without one is a clear error."""
    if device not in DEVICES:
        raise SpecError("--device", f"unknown device {device!r}", DEVICES)
    if device == "cuda" and not torch.cuda.is_available():
        raise SpecError("--device", "cuda requested but no CUDA device is available", ["cpu", "auto"])
    return ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device


def kernel_context(torch, dev: str, dtype: str) -> tuple[Callable[[], AbstractContextManager], str]:
    """The flash kernel on CUDA for 16-bit dtypes (what the papers' GPU discussion assumes); PyTorch's choice else.
    Returns a context factory and the kernel's label for the metadata."""
    if dev == "cuda" and dtype in ("float16", "bfloat16"):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        return (lambda: sdpa_kernel(SDPBackend.FLASH_ATTENTION)), "flash"
    label = "PyTorch's CUDA choice (flash needs fp16/bf16)" if dev == "cuda" else "math/efficient (PyTorch's CPU choice)"
    return contextlib.nullcontext, label


def time_once(torch, dev: str, fn: Callable[[], object]) -> float:
    """Seconds of one call: CUDA events on a GPU (kernel time, not launch queueing), perf_counter on CPU."""
    if dev == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn()
        end.record()
        torch.cuda.synchronize()
        return start.elapsed_time(end) / 1e3
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def sdpa_flops(wl: Workload) -> float:
    """Multiply-adds x 2 of one SDPA call: Q K^T (P x M x E) and probabilities x V (P x M x F), per batch and
    head; a causal mask leaves about half (PyTorch skips the masked blocks in its fused kernels)."""
    full = 2.0 * wl.batch * wl.heads * wl.p * wl.m * (wl.e + wl.f)
    return full / 2 if wl.causal else full


#: Probe size of :func:`estimate_seconds`: queries and keys of one call, enough to keep a CPU's cores busy.
PROBE_TOKENS = 1024


def estimate_seconds(torch, dev: str, tdt, wl: Workload, calls: int) -> float:  # noqa: ANN001 - torch handles
    """Seconds ``calls`` SDPA calls of ``wl`` should take here, from one timed call of PROBE_TOKENS queries and
    keys with the workload's heads and widths on the same device (the faster of two): SDPA's time grows with
    P x M once a call fills the device (on this project's 2-core CPU the rate is flat within ~20% from 1k to 16k
    tokens), so the probe's FLOP rate carries over. Why: on a CPU a 1M-token call runs for hours, and the
    command should say so before it starts rather than sit silent."""
    n = PROBE_TOKENS
    q = torch.randn(1, wl.heads, n, wl.e, device=dev, dtype=tdt)
    k = torch.randn(1, wl.heads, n, wl.e, device=dev, dtype=tdt)
    v = torch.randn(1, wl.heads, n, wl.f, device=dev, dtype=tdt)
    f = torch.nn.functional.scaled_dot_product_attention
    with torch.inference_mode():
        f(q, k, v)
        t = max(min(time_once(torch, dev, lambda: f(q, k, v)) for _ in range(2)), 1e-6)
    rate = 2.0 * wl.heads * n * n * (wl.e + wl.f) / t
    return calls * sdpa_flops(wl) / rate


#: Runs whose FLOPs (all calls) pass this get a time estimate first (about a second of a 2-core CPU).
ESTIMATE_ABOVE_FLOPS = 1e11


def run_reference(wl: Workload, device: str = "auto", dtype: str = "float32", repeats: int = 10,
                  warmup: int = 2, notify: Callable[[str], None] | None = None) -> tuple[ReferenceRun, np.ndarray]:
    """Time SDPA on the workload's seeded Q/K/V (median of ``repeats``); return the run and its output (float32).
    ``notify`` gets a line with the expected duration first when the run is long (:func:`estimate_seconds`)."""
    torch = _torch()
    if dtype not in DTYPES:
        raise SpecError("--dtype", f"unknown dtype {dtype!r}", DTYPES)
    if repeats < 1:
        raise SpecError("--repeats", f"must be at least 1, got {repeats}")
    dev = resolve_device(torch, device)
    tdt = getattr(torch, dtype)
    calls = warmup + repeats
    if notify is not None and calls * sdpa_flops(wl) > ESTIMATE_ABOVE_FLOPS:
        sec = estimate_seconds(torch, dev, tdt, wl, calls)
        notify(f"{calls} SDPA calls of {sdpa_flops(wl):.3g} FLOPs on {dev}: about {_duration(sec)} at the rate a "
               f"{PROBE_TOKENS}-token probe measured here (fewer --repeats or a shorter --seq-len to shorten it)")
    t = wl.tensors()
    q, k, v = (torch.from_numpy(t[n]).to(device=dev, dtype=tdt) for n in ("q", "k", "v"))
    f = torch.nn.functional.scaled_dot_product_attention
    ctx, kernel = kernel_context(torch, dev, dtype)
    result: dict[str, object] = {}

    def once() -> None:
        result["out"] = f(q, k, v, is_causal=wl.causal)

    with torch.inference_mode(), ctx():
        for _ in range(warmup):
            once()
        times = [time_once(torch, dev, once) for _ in range(repeats)]
    out = result["out"]
    name = torch.cuda.get_device_name(0) if dev == "cuda" else (platform.processor() or platform.machine())
    run = ReferenceRun(
        workload=wl.name, batch=wl.batch, heads=wl.heads, p=wl.p, m=wl.m, e=wl.e, causal=wl.causal, device=dev,
        device_name=name, dtype=dtype, kernel=kernel, repeats=repeats, latency_s=statistics.median(times),
        latency_all_s=times,
        versions={"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
                  "cuda": str(torch.version.cuda)},
        date=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    )
    return run, out.float().cpu().numpy()


def _duration(sec: float) -> str:
    """Seconds as the largest unit that keeps the number readable."""
    for unit, size in (("days", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if sec >= 2 * size:
            return f"{sec / size:.3g} {unit}"
    return f"{sec:.3g} s"


def golden_error(wl: Workload, out_ref: np.ndarray, queries: int = 64, rows: int = 16) -> dict[str, float]:
    """The golden fixed-point model on head 0 of batch 0 (first ``queries`` queries) against the reference.

    The golden model quantizes the same seeded float tensors to int8 and runs the 1-pass cascade in integers;
    its error bound is stated relative to max|V| (attnforge.sim.fusemax.golden.ERROR_BOUND_REL_VMAX).
    """
    from attnforge.sim.fusemax.golden import (
        ERROR_BOUND_REL_VMAX,
        FixedPointConfig,
        attention_fx,
        dequantize_output,
        quantize_attention,
    )

    if wl.causal:
        return {}  # the golden tile engine implements the non-causal cascade
    t = wl.tensors()
    nq = min(queries, wl.p)
    q, k, v = t["q"][0, 0, :nq], t["k"][0, 0], t["v"][0, 0]
    cfg = FixedPointConfig(e=wl.e, f=wl.f, rows=min(rows, wl.m), max_keys=max(wl.m, rows))
    qa = quantize_attention(q, k, v, cfg)
    out, _ = attention_fx(qa, cfg)
    gold = dequantize_output(out, qa, cfg)
    ref = out_ref[0, 0, :nq].astype(np.float64)
    err = np.abs(gold - ref)
    vmax = float(np.max(np.abs(v))) or 1.0
    return {"queries": float(nq), "max_abs": float(err.max()), "mean_rel": float(err.mean() / (np.mean(np.abs(ref)) or 1.0)),
            "bound": ERROR_BOUND_REL_VMAX * vmax, "within_bound": float(err.max() <= ERROR_BOUND_REL_VMAX * vmax)}


def simulated_latencies(wl: Workload, accels: tuple[str, ...] = ("flat", "fusemax")) -> dict[str, float]:
    from attnforge.sim.analytical.engine import run
    from attnforge.sim.specs.scenario import Scenario

    return {a: run(Scenario.for_workload(a, wl))[0].latency_s for a in accels}


def save(run: ReferenceRun, out: np.ndarray, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"{run.workload}-b{run.batch}-p{run.p}-m{run.m}-{run.device}-{run.dtype}"
    path = folder / f"{stem}.npz"
    np.savez_compressed(path, out=out, meta=json.dumps(finite_json(asdict(run)), allow_nan=False))
    (folder / f"{stem}.json").write_text(json.dumps(finite_json(asdict(run)), indent=1, allow_nan=False))
    return path


def load(path: Path) -> tuple[ReferenceRun, np.ndarray]:
    with np.load(path) as z:
        return ReferenceRun(**json.loads(str(z["meta"]))), z["out"]
