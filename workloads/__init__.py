"""Transformer workloads: model shapes as data, a run's shape, and seeded synthetic tensors.

The models live in ``models.yaml`` next to this file and are validated once into :class:`Model` objects, so
nothing downstream ever handles a raw dict. A :class:`Workload` is a model plus how it is run (batch, query
length P, key length M, causal, prefill or decode); mappings and the engine only ever see a Workload.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Literal

import numpy as np

from attnforge.sim.specs.errors import SpecError
from attnforge.workloads.hf import hf_model
from attnforge.workloads.model import Model, load_models, model_names

Stage = Literal["prefill", "decode"]
STAGES: tuple[str, ...] = ("prefill", "decode")


def get_model(name: str) -> Model:
    """A packaged model by name, ``FILE.yaml`` / ``FILE.yaml:NAME`` for a user's own models file, or
    ``hf:PATH`` for a HuggingFace config.json (or a folder holding one; see :mod:`attnforge.workloads.hf`)."""
    if name.startswith("hf:"):

        return hf_model(name[3:])
    path, _, pick = name.partition(":") if ".yaml" in name or ".yml" in name else ("", "", "")
    if path:
        models = load_models(path)
        if not pick:
            if len(models) != 1:
                raise SpecError("workload", f"{path} defines several models; pick one as {path}:NAME", models)
            return next(iter(models.values()))
        if pick not in models:
            raise SpecError("workload", f"{path} has no model {pick!r}", models)
        return models[pick]
    models = load_models()
    if name not in models:
        raise SpecError("workload", f"unknown workload {name!r}", models)
    return models[name]


@dataclass(frozen=True)
class Workload:
    """A model run at one shape. B, H, P (queries), M (keys), E (d_head of Q/K), F (d_head of V).

    In decode the query length P is 1 per step (one new token against M cached keys); in prefill P = M unless
    set apart. The shape is what the Einsum ranks are sized from.
    """

    model: Model
    batch: int = 64
    p: int = 1024
    m: int = 1024
    causal: bool = False
    stage: str = "prefill"
    seed: int = 0

    @property
    def name(self) -> str:
        return self.model.name

    @property
    def heads(self) -> int:
        return self.model.heads

    @property
    def kv_heads(self) -> int:
        return self.model.kv_heads

    @property
    def e(self) -> int:
        return self.model.d_head

    @property
    def f(self) -> int:
        return self.model.d_head

    def with_seq(self, p: int, m: int | None = None) -> Workload:
        return replace(self, p=p, m=p if m is None else m)

    def rank_sizes(self) -> dict[str, int]:
        return {"b": self.batch, "h": self.heads, "p": self.p, "m": self.m, "e": self.e, "f": self.f}

    def tensors(self, dtype: type = np.float32) -> dict[str, np.ndarray]:
        """Seeded synthetic Q, K, V of shape (B, H, P|M, E|F), unit-variance normal; same seed, same tensors.

        K and V are drawn per K/V head and repeated over the query heads of each group, so a GQA model's tensors
        share K/V the way the model does (every consumer indexes by query head); with kv_heads = heads the draws,
        and so the tensors, are those of plain multi-head attention.
        """
        rng = np.random.default_rng(self.seed)
        b, h, kv = self.batch, self.heads, self.kv_heads
        q = rng.standard_normal((b, h, self.p, self.e)).astype(dtype)
        k = rng.standard_normal((b, kv, self.m, self.e)).astype(dtype)
        v = rng.standard_normal((b, kv, self.m, self.f)).astype(dtype)
        if kv != h:
            k, v = np.repeat(k, h // kv, axis=1), np.repeat(v, h // kv, axis=1)
        return {"q": q, "k": k, "v": v}


def make_workload(
    name: str,
    *,
    batch: int = 64,
    seq_len: int | None = None,
    p: int | None = None,
    m: int | None = None,
    causal: bool | None = None,
    stage: str = "prefill",
    seed: int = 0,
) -> Workload:
    """Build a validated Workload; every size problem is a SpecError naming the field."""
    model = get_model(name)
    if stage not in STAGES:
        raise SpecError("stage", f"unknown stage {stage!r}", STAGES)
    seq = 1024 if seq_len is None else seq_len
    m_len = m if m is not None else seq
    p_len = p if p is not None else (1 if stage == "decode" else seq)
    for field, val in (("batch", batch), ("seq-len", seq), ("query length P", p_len), ("key length M", m_len)):
        if not isinstance(val, (int, np.integer)) or isinstance(val, bool) or val <= 0:
            raise SpecError(field, f"must be a positive integer, got {val!r}")
    return Workload(
        model=model,
        batch=int(batch),
        p=int(p_len),
        m=int(m_len),
        causal=model.causal if causal is None else bool(causal),
        stage=stage,
        seed=seed,
    )


def parse_length(text: str) -> int:
    """'4096', '4k', '4K', '1M' -> int (K = 1024, M = 1024**2, as sequence lengths are quoted in the papers)."""
    t = str(text).strip()
    mult = 1
    if t[-1:].lower() == "k":
        mult, t = 1024, t[:-1]
    elif t[-1:].lower() == "m":
        mult, t = 1024 * 1024, t[:-1]
    try:
        val = int(t) * mult
    except ValueError:
        allowed = "positive integers, optionally with K or M, e.g. 4096, 4k, 1M"
        raise SpecError("seq-len", f"not a length: {text!r}", allowed) from None
    if val <= 0:
        raise SpecError("seq-len", f"must be positive, got {text!r}")
    return val


def _trace_dir() -> Path:
    return Path(str(resources.files("attnforge.workloads").joinpath("traces")))


def trace_names() -> list[str]:
    """The packaged SpAtten traces by short name (file stem without ``summary-``)."""
    return sorted(p.stem.removeprefix("summary-") for p in _trace_dir().glob("*.csv"))


def trace_path(name_or_path: str) -> Path:
    """A trace CSV by path, or a packaged trace by short name (``gpt2-small-wikitext2-per8``) or file name."""
    p = Path(name_or_path)
    if not str(name_or_path).strip():
        raise SpecError("--trace", "empty trace name", trace_names())
    if p.is_dir():
        raise SpecError("--trace", f"{name_or_path} is a folder; give a trace CSV file in it or a packaged trace name")
    if p.suffix == ".csv" and p.exists() or p.is_file():
        return p
    if p.exists():
        raise SpecError("--trace", f"{name_or_path} is not a regular file (a device, FIFO or socket)")
    for cand in (name_or_path, f"summary-{name_or_path}", f"summary-{name_or_path}.csv", f"{name_or_path}.csv"):
        q = _trace_dir() / cand
        if q.is_file() and q.suffix == ".csv":
            return q
    if p.suffix == ".csv" or p.parent != Path("."):
        raise SpecError("--trace", f"file not found: {name_or_path}")
    raise SpecError("--trace", f"no trace file or packaged trace named {name_or_path!r}", trace_names())


__all__ = ["STAGES", "Model", "Workload", "get_model", "load_models", "make_workload", "model_names", "parse_length",
           "trace_names", "trace_path"]
