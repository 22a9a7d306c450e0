"""The SpAtten paper's 30 benchmarks as data (paper section V-A; docs/spatten.md §Benchmarks and policies).

Each benchmark is one YAML file under ``workloads/spatten/``: the model, the input (a BERT task's average length,
or GPT-2's 992-token prompt and 32 generated tokens) and the per-task algorithm settings the paper tunes (token,
head and local-V pruning, MSB+LSB widths, the refetch threshold, which layers prune). A benchmark backed by one of
SpAtten's shipped traces takes every setting the trace records from the trace itself (kept tokens per layer,
heads per layer, V kept, bit widths, threshold, measured LSB refetch rate, the unpruned first step), so those
are measurements, not our choices. Shared by the paper reproduction (reports) and the GPU suite (front).

What the paper measures for GPT-2 is the generation stage: its end-to-end Table IV counts 19.3 GFLOPs of FC
layers for GPT-2-Medium, which is 32 tokens x 24 layers x 25.2 MFLOPs, i.e. the 32 generation steps and not the
992-token prompt (docs/spatten.md §Benchmarks and policies). So a GPT-2 benchmark is its generation steps; the
prompt is a separate phase (:data:`PHASES`) reported apart.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from attnforge.sim.specs.errors import SpecError, read_yaml
from attnforge.sim.specs.spatten_policy import LSB_BITS, NATIVE_BITS, Policy, parse_setting

#: Average dev-set lengths in WordPiece tokens incl. [CLS]/[SEP]; the paper uses each task's average but does not
#: print it (our estimates, docs/spatten.md §Benchmarks and policies). The benchmark files carry the same numbers.
TASK_LENGTHS: dict[str, int] = {
    "CoLA": 11, "SST-2": 25, "MRPC": 53, "STS-B": 31, "QQP": 30, "MNLI-m": 39, "MNLI-mm": 40, "QNLI": 50,
    "RTE": 68, "SQuAD1.1": 160, "SQuAD2.0": 160,
}
GPT2_DATASETS: tuple[str, ...] = ("WikiText-2", "WikiText-103", "PTB", "1BW")
#: GPT-2 runs: a 992-token prompt, then 32 generated tokens (context 993..1024).
PROMPT, GENERATED = 992, 32
#: What of a generative benchmark runs: the generation steps (what the paper measures), the prompt pass, or both.
PHASES: tuple[str, ...] = ("generate", "prompt", "both")

BENCH_DIR = "spatten"
_TOP = ("benchmark", "model", "dataset", "length", "generate", "trace", "trace_widths", "policy", "sources")
_POLICY = ("token_ratio", "token_unpruned_fraction", "head_ratio", "head_unpruned_fraction", "v_ratio", "quant",
           "v_bits", "threshold", "lsb_refetch_rate", "warmup_steps")
#: Settings a trace records; a trace-backed file must not set them again.
_FROM_TRACE = ("token_ratio", "head_ratio", "v_ratio", "quant", "v_bits", "threshold", "lsb_refetch_rate",
               "warmup_steps")
#: With ``trace_widths: false`` (a trace recorded at one step of the paper's speedup breakdown, whose widths are not
#: the benchmark's), these come from the file's policy section and the trace's own width fields are dropped.
_WIDTHS = ("quant", "v_bits", "threshold", "lsb_refetch_rate")
_TRACE_WIDTH_FIELDS = ("quantize", "k_msb", "k_lsb", "progressive", "v_bits", "threshold", "lsb_refetch_rate",
                       "lsb_refetch_layers", "warmup_lsb_refetch_layers")
_TRACE_COLUMNS = ("iteration_id", "layer_id", "head_id", "sentence_length_L", "key_fetch_num", "value_fetch_num",
                  "quant_key_bit", "quant_value_bit", "auto_requant_thres", "if_requant", "auto_requant_incre")


@dataclass(frozen=True)
class Benchmark:
    """One of the paper's benchmarks: what runs (model, length, generated tokens) and with which settings."""

    name: str
    model: str
    dataset: str
    length: int
    generate: int
    policy: Policy
    trace: str | None
    sources: tuple[tuple[str, str], ...]
    path: str

    @property
    def generative(self) -> bool:
        return self.generate > 0


def bench_dir() -> Path:
    return Path(str(resources.files("attnforge.workloads").joinpath(BENCH_DIR)))


def trace_dir() -> Path:
    return Path(str(resources.files("attnforge.workloads").joinpath("traces")))


def benchmark_files() -> list[Path]:
    return sorted(bench_dir().glob("*.yaml"))


def _field(what: str, name: str, raw: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for k in raw:
        if k not in allowed:
            raise SpecError(f"{what}: {name}{k}", "unknown field", allowed)


def _int(what: str, name: str, val: object, lo: int) -> int:
    if isinstance(val, bool) or not isinstance(val, int) or val < lo:
        raise SpecError(f"{what}: {name}", f"must be an integer >= {lo}, got {val!r}")
    return val


def warmup_steps(df: Any) -> int:
    """How many leading steps of a trace fetch every key (importance still accumulating, nothing pruned yet)."""
    full = df.groupby("iteration_id")["key_fetch_num"].sum() == df.groupby("iteration_id")["sentence_length_L"].sum()
    return int(np.argmin(full.to_numpy())) if not full.all() else 0


def trace_settings(path: Path, layers: int, heads: int) -> dict[str, Any]:
    """The settings a SpAtten trace records, as Policy fields: kept tokens and heads per layer (the steps after the
    unpruned warm-up ones, as fractions of the final context, the trace's own convention), V kept per key, K/V
    widths (an unquantized -1 is the datapath's 12 bits), threshold and the measured LSB refetch rate."""
    import pandas as pd

    try:
        df = pd.read_csv(path, usecols=list(_TRACE_COLUMNS)).dropna()  # the last line is the run's config path
        df = df.assign(**{c: pd.to_numeric(df[c]) for c in _TRACE_COLUMNS if c != "if_requant"},
                       if_requant=df["if_requant"].astype(str) == "True")
    except (OSError, ValueError, pd.errors.ParserError) as exc:
        raise SpecError(f"trace {path.name}", f"cannot be read ({str(exc).splitlines()[0]})") from None
    if df["layer_id"].nunique() != layers or int(df["head_id"].max()) + 1 != heads:
        raise SpecError(f"trace {path.name}", f"is not a {layers}-layer, {heads}-head model's trace")
    warm = warmup_steps(df)
    pruned = df[df["iteration_id"] >= warm]
    final = float(df["sentence_length_L"].max())
    # A layer that fetched every key keeps 1.0; a pruned one a fixed count, a fraction of the final context.
    pruned = pruned.assign(keep=np.where(pruned["key_fetch_num"] >= pruned["sentence_length_L"], 1.0,
                                         pruned["key_fetch_num"] / final))
    per_layer = pruned.groupby("layer_id")
    kbits = sorted(set(df["quant_key_bit"].astype(int)))
    vbits = sorted(set(df["quant_value_bit"].astype(int)))
    incre = sorted(set(df.loc[df["if_requant"], "auto_requant_incre"].astype(int)))
    if len(kbits) != 1 or len(vbits) != 1 or len(incre) > 1:
        raise SpecError(f"trace {path.name}", "mixes bit widths; a policy has one K and one V setting")
    k, v = (NATIVE_BITS if b < 0 else b for b in (kbits[0], vbits[0]))
    progressive = bool(incre) and incre[0] == LSB_BITS
    thr = float(df["auto_requant_thres"].max())
    keys_per_head = df.groupby(["iteration_id", "layer_id"])["key_fetch_num"].first()
    return {
        "token_keep": tuple(float(x) for x in np.minimum(1.0, per_layer["keep"].median())),
        "head_keep": tuple(float(x) for x in df.groupby(["iteration_id", "layer_id"])["head_id"].count()
                           .groupby("layer_id").median() / heads),
        "v_ratio": float(1.0 - df["value_fetch_num"].sum() / df["key_fetch_num"].sum()),
        "quantize": k != NATIVE_BITS or v != NATIVE_BITS, "k_msb": k, "k_lsb": LSB_BITS if progressive else 0,
        "progressive": progressive, "v_bits": v, "threshold": thr if 0 < thr <= 1 else 0.1,
        **_refetch_rates(df, warm, progressive),
        "warmup_steps": warm if len(keys_per_head) else 0,
    }


def _refetch_rates(df: Any, warm: int, progressive: bool) -> dict[str, Any]:
    """The trace's LSB refetch fractions, overall and per layer, apart for the pruned steps and the warm-up ones:
    with every token kept the rows spread over ~1000 keys and refetch far more (GPT-2-Small: 35% against 6.1%), so
    one rate over all steps would overcharge the pruned steps and undercharge the warm-up's long rows."""
    if not progressive:
        return {"lsb_refetch_rate": None, "lsb_refetch_layers": None, "warmup_lsb_refetch_layers": None}
    pruned, early = df[df["iteration_id"] >= warm], df[df["iteration_id"] < warm]

    def per_layer(part: Any) -> tuple[float, ...]:
        return tuple(float(x) for x in part.groupby("layer_id")["if_requant"].mean())

    return {"lsb_refetch_rate": float(pruned["if_requant"].mean()), "lsb_refetch_layers": per_layer(pruned),
            "warmup_lsb_refetch_layers": per_layer(early) if len(early) else None}


def _policy(what: str, raw: dict[str, Any], name: str) -> dict[str, Any]:
    """The ``policy:`` section as Policy fields (``quant`` as "6+4" progressive or a static width)."""
    _field(what, "policy.", raw, _POLICY)
    kw: dict[str, Any] = {}
    for k, v in raw.items():
        if k == "quant":
            try:
                msb, lsb = parse_setting(str(v))
            except SpecError as exc:
                raise SpecError(f"{what}: policy.quant", exc.problem, exc.allowed) from None
            kw.update(quantize=True, k_msb=msb, k_lsb=lsb, progressive=lsb > 0)
        elif k == "warmup_steps":
            kw[k] = _int(what, "policy.warmup_steps", v, 0)
        else:
            kw[k] = v
    return kw


def load_benchmark(path: str | Path) -> Benchmark:
    """Read and check one benchmark file; any problem is one SpecError naming the file and the field."""
    from attnforge.workloads import get_model

    p = Path(path)
    what = f"benchmark {p.name}"
    raw = read_yaml(p, what)
    if not isinstance(raw, dict):
        raise SpecError(what, "must be a mapping of fields", _TOP)
    _field(what, "", raw, _TOP)
    for need in ("benchmark", "model", "length", "policy"):
        if need not in raw:
            raise SpecError(f"{what}: {need}", "is missing")
    try:
        mdl = get_model(str(raw["model"]))
    except SpecError as exc:
        raise SpecError(f"{what}: model", exc.problem, exc.allowed) from None
    length = _int(what, "length", raw["length"], 1)
    gen = _int(what, "generate", raw.get("generate", 0), 0)
    if gen and not mdl.causal:
        raise SpecError(f"{what}: generate", f"{mdl.name} is an encoder; only a causal model generates tokens")
    pol_raw = raw["policy"]
    if not isinstance(pol_raw, dict):
        raise SpecError(f"{what}: policy", "must be a mapping of settings", _POLICY)
    kw = _policy(what, pol_raw, str(raw["benchmark"]))
    trace = raw.get("trace")
    if trace is not None:
        widths = raw.get("trace_widths", True)
        if not isinstance(widths, bool):
            raise SpecError(f"{what}: trace_widths", f"must be true or false, got {widths!r}")
        twice = [k for k in pol_raw if k in _FROM_TRACE and (widths or k not in _WIDTHS)]
        if twice:
            raise SpecError(f"{what}: policy.{twice[0]}", f"is recorded by the trace {trace}; do not set it again")
        tp = trace_dir() / str(trace)
        if not tp.is_file():
            raise SpecError(f"{what}: trace", f"no packaged trace {trace!r}",
                            sorted(f.name for f in trace_dir().glob("*.csv")))
        ts = trace_settings(tp, mdl.layers, mdl.heads)
        kw.update(ts if widths else {k: v for k, v in ts.items() if k not in _TRACE_WIDTH_FIELDS})
    try:
        pol = Policy(name=str(raw["benchmark"]), **kw)
    except SpecError as exc:
        raise SpecError(f"{what}: policy.{exc.field}", exc.problem, exc.allowed) from None
    except TypeError as exc:  # pragma: no cover - _field refused unknown names already
        raise SpecError(f"{what}: policy", str(exc)) from None
    src = raw.get("sources") or {}
    if not isinstance(src, dict):
        raise SpecError(f"{what}: sources", "must map a setting to where it comes from")
    return Benchmark(name=str(raw["benchmark"]), model=mdl.name, dataset=str(raw.get("dataset", "")), length=length,
                     generate=gen, policy=pol, trace=None if trace is None else str(trace),
                     sources=tuple((str(k), str(v)) for k, v in src.items()), path=str(p))


def benchmarks() -> list[Benchmark]:
    """The paper's 30 benchmarks, BERT first (the order of the paper's figures)."""
    out = [load_benchmark(f) for f in benchmark_files()]
    return sorted(out, key=lambda b: (b.generative, b.model, b.name))


def fc_gflops(model: str, tokens: int) -> float:
    """GFLOPs of a decoder's FC layers (Q/K/V/O projections and the FFN, no LM head) for ``tokens`` tokens: what
    the paper's Table IV counts as "FC GFLOPs", hence how to tell whether it covers the prompt."""
    from attnforge.workloads import get_model

    mdl = get_model(model)
    macs = 4 * mdl.d_model * mdl.d_model + 2 * mdl.d_model * mdl.d_ff
    return 2.0 * tokens * mdl.layers * macs / 1e9


def policy_fields() -> tuple[str, ...]:
    """The Policy's field names (for docs and error messages)."""
    return tuple(f.name for f in fields(Policy))
