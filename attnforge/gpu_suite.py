"""The paper workloads timed on a GPU: the measured baseline that the accelerators' simulated latency is set against.

Two suites, each the attention its paper compares with a GPU:
- ``fusemax``: one attention layer (SDPA over B x H heads) of BERT, TrXL, T5 and XLM at 1K..1M tokens. The paper
  uses batch 64; where 64 would not fit in GPU memory or would run for minutes, the batch is cut so that the work
  stays that of 64 x 64K (``fusemax_batch``) and the point records the batch it ran, so the simulator is run at
  the same batch for the comparison (no extrapolation).
- ``spatten``: a whole model's attention, all layers, batch 1, as SpAtten's GPU baseline: BERT-Base/Large at each
  GLUE/SQuAD task length (one pass), GPT-2-Small/Medium with a 992-token causal prompt and 32 decode steps (one
  query against the growing K/V cache per layer and step).

Inputs are unit-variance normal tensors drawn on the device (timing does not depend on the values; the accuracy
checks use the workloads' own seeded tensors through :mod:`attnforge.reference`). Latency is the median over repeats
of CUDA-event-timed runs (wall clock on CPU) after warm-up runs.
"""

from __future__ import annotations

import datetime as _dt
import platform
import statistics
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field

from attnforge.sim.specs.errors import SpecError
from attnforge.workloads import get_model

SUITES: tuple[str, ...] = ("fusemax", "spatten")
FUSEMAX_MODELS: tuple[str, ...] = ("bert-base", "trxl", "t5-small", "xlm")
FUSEMAX_SEQS: tuple[int, ...] = (1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20)
PAPER_BATCH = 64


@dataclass(frozen=True)
class SuitePoint:
    """One measured point. ``passes`` lists the SDPA calls of one timed run as (p, m, causal, repeat count)."""

    suite: str
    label: str
    model: str
    batch: int
    seq: int
    passes: tuple[tuple[int, int, bool, int], ...]

    @property
    def sdpa_calls(self) -> int:
        return sum(n for *_, n in self.passes)

    def flops(self) -> float:
        """Dense attention FLOPs of one run (2 matmuls x 2 FLOPs per MAC; causal counted in full, as SDPA's math)."""
        mdl = get_model(self.model)
        return sum(4.0 * self.batch * mdl.heads * p * m * mdl.d_head * n for p, m, _, n in self.passes)


@dataclass
class MeasuredPoint:
    suite: str
    label: str
    model: str
    batch: int
    seq: int
    heads: int
    d_head: int
    sdpa_calls: int
    latency_s: float  #: median over repeats of one whole run (all its SDPA calls)
    latency_all_s: list[float]
    tflops: float  #: dense attention FLOPs / latency


@dataclass
class SuiteRun:
    device: str
    device_name: str
    dtype: str
    kernel: str
    date: str
    versions: dict[str, str]
    command: str
    points: list[MeasuredPoint] = field(default_factory=list)
    accuracy: list[dict] = field(default_factory=list)


TENSOR_CAP_BYTES = 8 << 30  #: one 16-bit Q/K/V tensor at most this large (4 live tensors fit an 80 GB GPU)


def fusemax_batch(seq: int, heads: int, d_head: int) -> int:
    """Batch 64 up to 64K tokens, then the batch that keeps the work of 64 x 64K; a power of two, at least 1, and
    small enough that one 16-bit tensor stays under ``TENSOR_CAP_BYTES``."""
    b = max(1, min(PAPER_BATCH, PAPER_BATCH * (1 << 16) ** 2 // seq**2))
    while b > 1 and b * heads * seq * d_head * 2 > TENSOR_CAP_BYTES:
        b //= 2
    return b


def fusemax_points(max_seq: int = FUSEMAX_SEQS[-1], models: tuple[str, ...] = FUSEMAX_MODELS,
                   min_seq: int = FUSEMAX_SEQS[0]) -> list[SuitePoint]:
    out = []
    for m in models:
        mdl = get_model(m)
        out += [SuitePoint("fusemax", f"{m}/{_len(s)}", m, fusemax_batch(s, mdl.heads, mdl.d_head), s, ((s, s, False, 1),))
                for s in FUSEMAX_SEQS if min_seq <= s <= max_seq]
    return out


def spatten_points() -> list[SuitePoint]:
    from attnforge.workloads.spatten_benchmarks import GENERATED, PROMPT, TASK_LENGTHS

    pts: list[SuitePoint] = []
    for m in ("bert-base", "bert-large"):
        layers = get_model(m).layers
        pts += [SuitePoint("spatten", f"{m}/{t}", m, 1, n, ((n, n, False, layers),)) for t, n in TASK_LENGTHS.items()]
    for m in ("gpt2-small", "gpt2-medium"):
        layers = get_model(m).layers
        steps = tuple((1, PROMPT + 1 + i, True, layers) for i in range(GENERATED))
        pts.append(SuitePoint("spatten", f"{m}/prompt{PROMPT}+gen{GENERATED}", m, 1, PROMPT + GENERATED,
                              ((PROMPT, PROMPT, True, layers), *steps)))
    return pts


def suite_points(suites: tuple[str, ...], max_seq: int = FUSEMAX_SEQS[-1], min_seq: int = FUSEMAX_SEQS[0]
                 ) -> list[SuitePoint]:
    out: list[SuitePoint] = []
    for s in suites:
        if s not in SUITES:
            raise SpecError("--suite", f"unknown suite {s!r}", (*SUITES, "paper"))
        out += fusemax_points(max_seq, min_seq=min_seq) if s == "fusemax" else spatten_points()
    return out


def _len(s: int) -> str:
    return f"{s >> 20}M" if s >= 1 << 20 and s % (1 << 20) == 0 else f"{s >> 10}K" if s % 1024 == 0 else str(s)


def _runner(torch, pt: SuitePoint, dev: str, tdt) -> Callable[[], None]:
    """One timed run of the point: K/V caches allocated once, each pass an SDPA over a view of them."""
    mdl = get_model(pt.model)
    b, h, e = pt.batch, mdl.heads, mdl.d_head
    g = torch.Generator(device=dev).manual_seed(0)
    m_max = max(m for _, m, _, _ in pt.passes)
    p_max = max(p for p, _, _, _ in pt.passes)
    q = torch.randn(b, h, p_max, e, device=dev, dtype=tdt, generator=g)
    k = torch.randn(b, h, m_max, e, device=dev, dtype=tdt, generator=g)
    v = torch.randn(b, h, m_max, e, device=dev, dtype=tdt, generator=g)
    f = torch.nn.functional.scaled_dot_product_attention

    def run() -> None:
        for p, m, causal, n in pt.passes:
            qq, kk, vv = q[:, :, :p], k[:, :, :m], v[:, :, :m]
            # decode (p=1) attends to the whole cache: causal masking only applies to the prompt pass
            for _ in range(n):
                f(qq, kk, vv, is_causal=causal and p > 1)

    return run


def time_points(points: list[SuitePoint], device: str = "auto", dtype: str = "float16", repeats: int = 10,
                warmup: int = 2, budget_s: float = 20.0, progress: bool = False) -> Iterator[MeasuredPoint]:
    """Median latency per point; long points get fewer repeats (at least 3) so one point takes about ``budget_s``."""
    from attnforge.reference import DTYPES, _torch, kernel_context, resolve_device, time_once

    torch = _torch()
    dev = resolve_device(torch, device)
    if dtype not in DTYPES:
        raise SpecError("--dtype", f"unknown dtype {dtype!r}", DTYPES)
    tdt = getattr(torch, dtype)
    ctx = kernel_context(torch, dev, dtype)[0]
    from tqdm import tqdm

    for pt in tqdm(points, desc="gpu suite", disable=not progress):
        run = _runner(torch, pt, dev, tdt)
        times: list[float] = []
        with torch.inference_mode(), ctx():
            t0 = time_once(torch, dev, run)  # warm-up 1, also sizes the repeat count
            for _ in range(warmup - 1):
                time_once(torch, dev, run)
            n = max(3, min(repeats, int(budget_s / max(t0, 1e-9))))
            times = [time_once(torch, dev, run) for _ in range(n)]
        mdl = get_model(pt.model)
        lat = statistics.median(times)
        yield MeasuredPoint(pt.suite, pt.label, pt.model, pt.batch, pt.seq, mdl.heads, mdl.d_head, pt.sdpa_calls, lat,
                            times, pt.flops() / lat / 1e12)
        if dev == "cuda":
            torch.cuda.empty_cache()


def run_suite(suites: tuple[str, ...], device: str = "auto", dtype: str = "float16", max_seq: int = FUSEMAX_SEQS[-1],
              repeats: int = 10, budget_s: float = 20.0, command: str = "", progress: bool = False,
              min_seq: int = FUSEMAX_SEQS[0]) -> SuiteRun:
    from attnforge.reference import _torch, kernel_context, resolve_device

    torch = _torch()
    dev = resolve_device(torch, device)
    name = torch.cuda.get_device_name(0) if dev == "cuda" else (platform.processor() or platform.machine())
    import numpy as np

    run = SuiteRun(
        device=dev, device_name=name, dtype=dtype, kernel=kernel_context(torch, dev, dtype)[1],
        date=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        versions={"torch": torch.__version__, "cuda": str(torch.version.cuda), "numpy": np.__version__,
                  "python": platform.python_version(),
                  "driver": _driver() if dev == "cuda" else ""},
        command=command,
    )
    points = suite_points(suites, max_seq, min_seq)
    if not points:
        raise SpecError("--min-seq", f"no suite point between {min_seq} and {max_seq} tokens",
                        [f"{s} .. {FUSEMAX_SEQS[-1]}" for s in FUSEMAX_SEQS[:1]])
    run.points = list(time_points(points, dev, dtype, repeats, budget_s=budget_s,
                                  progress=progress))
    return run


def accuracy_checks(models: tuple[str, ...], device: str, dtypes: tuple[str, ...], seq: int = 1024) -> list[dict]:
    """Golden fixed-point model vs the reference computed on ``device`` (per model and dtype, batch 1)."""
    from attnforge.reference import golden_error, run_reference
    from attnforge.workloads import make_workload

    out = []
    for m in models:
        wl = make_workload(m, batch=1, seq_len=seq)
        for dt in dtypes:
            r, o = run_reference(wl, device=device, dtype=dt, repeats=3)
            out.append({"model": m, "seq": seq, "dtype": dt, "kernel": r.kernel, "device_name": r.device_name,
                        **golden_error(wl, o)})
    return out


def _driver() -> str:
    import subprocess

    try:
        return subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"], capture_output=True,
                              text=True, timeout=20).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def to_json(run: SuiteRun) -> dict:
    return asdict(run)


def from_json(d: dict) -> SuiteRun:
    pts = [MeasuredPoint(**p) for p in d.get("points", [])]
    return SuiteRun(**{**d, "points": pts})
