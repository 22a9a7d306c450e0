"""Bit-exact golden and exact cycle model of SpAtten's cascade-pruning accumulators (``rtl/spatten/importance.py``).

Paper Sec. III-A/B, Fig. 8: a token's importance is the sum of the attention probabilities in its column, over
every query, head and layer so far; a head's importance is the sum of ``|attention output|`` over its queries and
layers. Both are cumulative (only an explicit ``clear`` job resets them) and feed the top-k engine that prunes
tokens and heads at a layer boundary. Integer arithmetic is exact: a token adds the softmax's unsigned
``prob_bits`` codes, a head adds ``sum_f |out[f]|`` of one ``out_bits`` signed output vector; the widths
(:class:`attnforge.sim.contract.spatten_fx.ImportanceCfg`) leave no room for overflow.

Jobs and beats: :func:`attnforge.sim.contract.designs.importance`. Cycles are counted from a job's first ``i``
handshake to its ``r`` handshake, the input offered every cycle and the outputs always ready; the RTL takes the next
job only after answering the previous one, so jobs never overlap and a read sees every earlier add:

======================  ========================================================================================
job                     cycles
======================  ========================================================================================
refused                 ``max(1, ceil(n/S))`` for add_tokens / read jobs (every beat consumed, the answer raised
                        with the last), 1 otherwise
clear                   1 (every accumulator zeroed in the cycle the beat is taken)
add_tokens              ``B + 3``: B beats, then the lane register, the one-hot id register and the per-token
                        delta register; the accumulators take the delta and the answer is raised in that cycle
add_head                ``3 + log2 max_d``: the beat register, the magnitude register, one register per adder-tree
                        level, then the head accumulator and the answer
read_tokens/read_heads  ``B + 1 + IMP_GATHER_PIPE``: the id register, the gather register (partial AND-ORs), then
                        the output register (the answer goes with the last beat)
======================  ========================================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.depths import IMP_GATHER_PIPE
from attnforge.sim.contract.spatten_fx import ImportanceCfg
from attnforge.sim.specs.errors import SpecError

OPS = contract.IMP_OPS
MULTI_BEAT = (OPS["add_tokens"], OPS["read_tokens"], OPS["read_heads"])

__all__ = ["OPS", "ImpJob", "as_seen", "ImpResult", "ImportanceState", "clear", "add_tokens", "add_head", "read_tokens",
           "read_heads", "input_beats", "job_beats", "refused"]


@dataclass(frozen=True)
class ImpJob:
    """One job of the importance block (fields as the ``i`` stream carries them)."""

    op: int
    n: int = 0  #: entries (tokens added, entries read)
    k: int = 0  #: read jobs: the top-k's k, copied into the read-out
    dlog: int = 0  #: add_head: log2 of the head dimension
    idx: tuple[int, ...] = ()  #: token or head ids, one per entry (add_head: the head in idx[0])
    probs: tuple[int, ...] = ()  #: add_tokens: unsigned prob_bits codes, one per entry
    out: tuple[int, ...] = ()  #: add_head: the attention-output vector (D signed out_bits words)


@dataclass(frozen=True)
class ImpResult:
    """What the RTL answers for one job: the read-out beats (``o``), the answer (``r``) and the exact cycles."""

    o: list[int]
    r: int
    cycles: int
    err: bool


def clear() -> ImpJob:
    return ImpJob(OPS["clear"])


def add_tokens(ids: Sequence[int], probs: Sequence[int]) -> ImpJob:
    return ImpJob(OPS["add_tokens"], n=len(ids), idx=tuple(int(i) for i in ids), probs=tuple(int(p) for p in probs))


def add_head(head: int, out: Sequence[int]) -> ImpJob:
    return ImpJob(OPS["add_head"], n=1, dlog=max(0, len(out).bit_length() - 1), idx=(int(head),),
                  out=tuple(int(v) for v in out))


def read_tokens(ids: Sequence[int], k: int) -> ImpJob:
    return ImpJob(OPS["read_tokens"], n=len(ids), k=k, idx=tuple(int(i) for i in ids))


def read_heads(ids: Sequence[int], k: int) -> ImpJob:
    return ImpJob(OPS["read_heads"], n=len(ids), k=k, idx=tuple(int(i) for i in ids))


def as_seen(job: ImpJob, cfg: ImportanceCfg) -> ImpJob:
    """The job as the hardware reads it: every field cut to its width in the ``i`` layout (as packing cuts it)."""
    lay = contract.importance(cfg)["i"]
    w = {f: lay[f].width for f in ("op", "n", "k", "dlog")}
    idx_mask = (1 << cfg.idx_bits) - 1
    return replace(job, op=job.op & ((1 << w["op"]) - 1), n=job.n & ((1 << w["n"]) - 1), k=job.k & ((1 << w["k"]) - 1),
                   dlog=job.dlog & ((1 << w["dlog"]) - 1), idx=tuple(i & idx_mask for i in job.idx) or (0,))


def job_beats(job: ImpJob, cfg: ImportanceCfg) -> int:
    """Input beats of a job, refused or not: the entries' beats for the multi-beat ops, 1 otherwise."""
    job = as_seen(job, cfg)
    return max(1, -(-job.n // cfg.s)) if job.op in MULTI_BEAT else 1


def refused(job: ImpJob, cfg: ImportanceCfg) -> bool:
    """The RTL's refusal predicate, on the job word of the first beat (nothing of a refused job takes effect)."""
    fx, job = cfg.fx, as_seen(job, cfg)
    if job.op == OPS["clear"]:
        return False
    if job.op == OPS["add_head"]:
        d = 1 << job.dlog
        return not (fx.min_d <= d <= fx.max_d) or job.idx[0] >= cfg.max_heads
    limit = {OPS["add_tokens"]: fx.max_n, OPS["read_tokens"]: fx.max_n, OPS["read_heads"]: cfg.max_heads}.get(job.op)
    if limit is None:
        return True  # no such op
    if not 1 <= job.n <= limit:
        return True
    return job.op != OPS["add_tokens"] and not 1 <= job.k <= job.n


def input_beats(job: ImpJob, cfg: ImportanceCfg) -> list[int]:
    """The job's ``i`` payloads; lanes past the job's entries are zero."""
    lay, s = contract.importance(cfg)["i"], cfg.s
    out = []
    for b in range(job_beats(job, cfg)):
        sl = slice(b * s, (b + 1) * s)
        out.append(lay.pack({"op": job.op, "n": job.n, "k": job.k, "dlog": job.dlog,
                             "idx": list(job.idx[sl]) if job.op != OPS["add_head"] else list(job.idx[:1]),
                             "probs": list(job.probs[sl]), "out": list(job.out)}))
    return out


@dataclass
class ImportanceState:
    """The accumulators (Python ints: exact) and the model of every job's answer."""

    cfg: ImportanceCfg
    tokens: np.ndarray = field(init=False)
    heads: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.cfg.validate()
        self.tokens = np.zeros(self.cfg.fx.max_n, dtype=object)
        self.heads = np.zeros(self.cfg.max_heads, dtype=object)

    def run(self, job: ImpJob) -> ImpResult:
        """Apply one job as the RTL does; returns its read-out beats, answer and cycles."""
        c, r_lay = contract.importance(self.cfg), contract.importance(self.cfg)["r"]
        job = as_seen(job, self.cfg)
        beats = job_beats(job, self.cfg)
        if refused(job, self.cfg):
            return ImpResult([], r_lay.pack({"op": job.op, "err": 1}), beats, True)
        o: list[int] = []
        err = False
        if job.op == OPS["clear"]:
            self.tokens[:] = 0
            self.heads[:] = 0
            cycles = 1
        elif job.op == OPS["add_tokens"]:
            err = self._add_tokens(job)
            cycles = beats + 3
        elif job.op == OPS["add_head"]:
            self.heads[job.idx[0]] += sum(abs(int(v)) for v in job.out[:1 << job.dlog])
            cycles = 3 + self.cfg.abs_tree_pipe
        else:
            o, err = self._read(job, c)
            cycles = beats + 1 + IMP_GATHER_PIPE
        self._check_width()
        return ImpResult(o, r_lay.pack({"op": job.op, "err": int(err)}), cycles, err)

    def _add_tokens(self, job: ImpJob) -> bool:
        if len(job.idx) != job.n or len(job.probs) != job.n:
            raise SpecError("add_tokens", f"{len(job.idx)} ids and {len(job.probs)} probabilities for n = {job.n}")
        err = False
        for t, p in zip(job.idx, job.probs, strict=True):
            if t >= self.cfg.fx.max_n:
                err = True  # no accumulator holds it: the lane is dropped
            else:
                self.tokens[t] += int(p)
        return err

    def _read(self, job: ImpJob, c: contract.Contract) -> tuple[list[int], bool]:
        arr = self.tokens if job.op == OPS["read_tokens"] else self.heads
        vals = [int(arr[t]) if t < len(arr) else 0 for t in job.idx]
        err = any(t >= len(arr) for t in job.idx)
        s = self.cfg.s
        o = [c["o"].pack({"scores": vals[b:b + s], "job": {"n": job.n, "k": job.k}}) for b in range(0, len(vals), s)]
        return o, err

    def _check_width(self) -> None:
        top = max([0, *self.tokens.tolist(), *self.heads.tolist()])
        if top >= 1 << self.cfg.imp_bits:  # the widths are sized so that this cannot happen within the bounds
            raise SpecError("importance", f"a score {top} exceeds imp_bits = {self.cfg.imp_bits}: more add jobs than "
                            "max_queries x max_heads x max_layers")
