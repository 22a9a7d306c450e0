"""Stream beats and exact cycle counts of the SpAtten datapath RTL blocks, from the golden model in
:mod:`attnforge.sim.spatten.golden`.

The testbenches build their stimuli and expected outputs here, so a layout change is one edit. Cycle counts are
measured the same way for every block: from the first input handshake of a job to its last output handshake, with
inputs offered every cycle and outputs always ready; each formula names the RTL stages it counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike as Num

from attnforge.sim.contract import (
    PV_MUL_PIPE,
    SKID_LATENCY,
    SOFTMAX_EXP_PIPE,
    SOFTMAX_NORM_PIPE,
    SP_BACK_SLICES,
    SP_FRONT_SLICES,
    decision_latency,
    lanes,
    pv_tree_pipe,
    qk_tree_pipe,
    vmax_levels,
)
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.spatten_fx import SpattenFx
from attnforge.sim.spatten.golden import (
    PipelineResult,
    QueryJob,
    decision_refused,
    pipeline,
    pv_refused,
    qk_refused,
    row_refused,
    softmax,
    split_k,
)
from attnforge.sim.spatten.topk_golden import hw_topk
from attnforge.sim.specs.errors import SpecError

__all__ = ["MemoryModel", "SOFTMAX_EXP_PIPE", "SOFTMAX_NORM_PIPE", "assemble_cycles", "assemble_in_words", "back_cycles",
           "bad_row", "beat_word", "decision_cycles", "decision_in_words", "decision_latency", "decision_refused_row",
           "decision_word", "front_cycles", "front_tail", "k_beats", "pipeline_cycles", "pipeline_cycles_for",
           "pipeline_out_word", "pipeline_q_beat",
           "pv_cycles", "pv_in_words", "pv_out_word", "pv_refused_job", "pv_tree_pipe", "qk_cycles", "qk_q_beat",
           "qk_refused_job", "qk_tree_pipe", "refused", "row_words", "score_beats", "softmax_cycles", "softmax_in_words",
           "softmax_latency", "softmax_max_wait", "softmax_out_words", "softmax_refused_row", "stream_cycles",
           "tap_words"]


def _chunks(x: Sequence[int], size: int) -> list[list[int]]:
    return [list(x[i:i + size]) for i in range(0, len(x), size)]


# ---------------------------------------------------------------- Q x K

def qk_q_beat(q: Sequence[int], n: int, d: int, cfg: SpattenFx) -> int:
    return contract.qk(cfg)["q"].pack({"q": [int(v) for v in q], "job": {"n": n, "dlog": d.bit_length() - 1}})


def k_beats(k: np.ndarray, cfg: SpattenFx, bits: int | None = None) -> list[int]:
    """K [n, D] row-major, ``lanes`` elements per beat, zero padded (``bits``: the MSB or LSB region's codes)."""
    flat = [int(v) for v in np.asarray(k).reshape(-1)]
    line = lanes("k", cfg.lanes, bits or cfg.word_bits, True)
    return [line.pack(ch) for ch in _chunks(flat, cfg.lanes)]


def score_beats(values: Sequence[int], cfg: SpattenFx, bits: int) -> list[list[int]]:
    """Row values in beats of S lanes (zero padded) -- what every S-lane stream carries; count/last separate."""
    return [ch + [0] * (cfg.s - len(ch)) for ch in _chunks(list(values), cfg.s)]


def _row_dicts(values: Sequence[int], cfg: SpattenFx) -> list[dict[str, object]]:
    """A row as the members of S-lane row beats (:func:`attnforge.sim.contract.designs.row_beat`): lanes, count, last."""
    vals = list(values)
    chunks = score_beats(vals, cfg, 0)
    return [{"lanes": ch, "count": min(cfg.s, len(vals) - i * cfg.s), "last": int(i == len(chunks) - 1)}
            for i, ch in enumerate(chunks)]


def beat_word(lanes_: Sequence[int], bits: int, count: int, last: bool, cfg: SpattenFx) -> int:
    return contract.row_beat("row", "lanes", cfg.s, bits, True).pack({"lanes": lanes_, "count": count, "last": int(last)})


def row_words(values: Sequence[int], bits: int, cfg: SpattenFx) -> list[int]:
    """A row as S-lane beats with count and last (the s/probability stream format)."""
    lay = contract.row_beat("row", "lanes", cfg.s, bits, True)
    return [lay.pack(d) for d in _row_dicts(values, cfg)]


def qk_cycles(n: int, d: int, cfg: SpattenFx) -> int:
    """Input beats, then the product register, the tree levels and the collector register."""
    return -(-n // cfg.keys_per_beat(d)) + 1 + qk_tree_pipe(cfg)


def qk_refused_job(n: int, dlog: int, cfg: SpattenFx) -> tuple[int, list[int], int]:
    """A job Q x K refuses: its q beat, the one answer (count 0, last 1, err 1) and the cycles from the q
    handshake to it: the empty beat goes the way of a key beat (product register, tree levels, collector). No K
    beat is taken. A job it would run is refused here, so a test cannot mistake one for the other."""
    if not qk_refused(n, dlog, cfg):
        raise SpecError("n", f"n = {n}, log2 D = {dlog} is a job Q x K runs")
    q = contract.qk(cfg)["q"].pack({"q": [], "job": {"n": n, "dlog": dlog}})
    err = contract.qk(cfg)["s"].pack({"scores": [], "count": 0, "last": 1, "err": 1})
    return q, [err], 2 + qk_tree_pipe(cfg)


def bad_row(counts: Sequence[int], cfg: SpattenFx, rng: np.random.Generator, bits: int,
            signed: bool = True) -> list[dict[str, object]]:
    """Row beats with the given counts (random lanes, last on the final beat): malformed rows for the benches."""
    lo, hi = (-(1 << (bits - 1)), 1 << (bits - 1)) if signed else (0, 1 << bits)
    return [{"lanes": rng.integers(lo, hi, cfg.s).tolist(), "count": int(c), "last": int(i == len(counts) - 1)}
            for i, c in enumerate(counts)]


def _check_refused(refused: bool, what: str) -> None:
    if not refused:
        raise SpecError("counts", f"{what} follows the row rule; the block would run it")


# ---------------------------------------------------------------- softmax

def softmax_in_words(scores: Sequence[int], alpha_q: int, alpha_sh: int, cfg: SpattenFx) -> list[int]:
    lay = contract.softmax(cfg)["i"]
    alpha = {"alpha_q": alpha_q, "alpha_sh": alpha_sh}
    return [lay.pack({"row": {"scores": d["lanes"], "count": d["count"], "last": d["last"]}, "alpha": alpha})
            for d in _row_dicts(scores, cfg)]


def softmax_out_words(scores: Sequence[int], alpha_q: int, alpha_sh: int, cfg: SpattenFx) -> list[int]:
    return row_words(softmax(np.asarray(scores), alpha_q, alpha_sh, cfg).probs.tolist(), cfg.prob_bits, cfg)


def softmax_max_wait(cfg: SpattenFx) -> int:
    """Cycles between the load and the exp pass while the registered row-max tree (one level per cycle) and its
    fold into the running max finish: levels - 1 (attnforge.sim.contract.vmax_levels). The exponent and normalize
    pipelines (SOFTMAX_EXP_PIPE, SOFTMAX_NORM_PIPE) are the contract's too."""
    return vmax_levels(cfg.s) - 1


def softmax_latency(cfg: SpattenFx) -> int:
    """Fixed cycles of one row beyond its 3 nb beats and the divider's qw steps."""
    return cfg.fx.qw + 4 + softmax_max_wait(cfg) + SOFTMAX_EXP_PIPE + SOFTMAX_NORM_PIPE


def softmax_cycles(n: int, cfg: SpattenFx) -> int:
    """nb load beats, the max wait, nb exp beats + 1 read latency + the exponent pipeline, 1 start + qw divider
    steps + 1 done, then the normalize pass: 1 issue cycle, 1 read latency, the normalize pipeline, nb output beats."""
    nb = -(-n // cfg.s)
    return 3 * nb + softmax_latency(cfg)


def softmax_refused_row(rows: list[dict[str, object]], alpha_q: int, alpha_sh: int,
                        cfg: SpattenFx) -> tuple[list[int], list[int], int]:
    """A row the softmax refuses (:func:`attnforge.sim.spatten.golden.row_refused`): its input beats, the one error
    beat, and the cycles: every beat is taken, the answer leaves the cycle after the last one (``beats``)."""
    _check_refused(row_refused([int(r["count"]) for r in rows], cfg), "the row")
    lay = contract.softmax(cfg)
    alpha = {"alpha_q": alpha_q, "alpha_sh": alpha_sh}
    ins = [lay["i"].pack({"row": {"scores": r["lanes"], "count": r["count"], "last": r["last"]}, "alpha": alpha})
           for r in rows]
    return ins, [lay["o"].pack({"probs": [], "count": 0, "last": 1, "err": 1})], len(rows)


# ---------------------------------------------------------------- progressive quantization

def assemble_in_words(msb: np.ndarray, lsb: np.ndarray, use_lsb: bool, cfg: SpattenFx) -> list[int]:
    lay = contract.progquant(cfg)["i"]
    m = _chunks([int(v) for v in np.asarray(msb).reshape(-1)], cfg.lanes)
    lo = _chunks([int(v) for v in np.asarray(lsb).reshape(-1)], cfg.lanes)
    return [lay.pack({"msb": a, "lsb": b, "use_lsb": int(use_lsb)}) for a, b in zip(m, lo, strict=True)]


def decision_in_words(probs: Sequence[int], threshold: int, cfg: SpattenFx) -> list[int]:
    lay = contract.progquant(cfg)["p"]
    return [lay.pack({"row": {"probs": d["lanes"], "count": d["count"], "last": d["last"]}, "thr": threshold})
            for d in _row_dicts(probs, cfg)]


def decision_word(refetch: bool, max_p: int, cfg: SpattenFx | None = None) -> int:
    return contract.progquant(cfg or SpattenFx())["d"].pack({"refetch": int(refetch), "max_p": max_p, "err": 0})


def assemble_cycles(beats: int) -> int:
    """One register stage: the last word leaves one cycle after the last input, beats - 1 + 1."""
    return beats


def decision_cycles(n: int, cfg: SpattenFx) -> int:
    """Store-and-forward over the row's beats, then the max tree and the decision register."""
    return -(-n // cfg.s) + decision_latency(cfg) - 1


def decision_refused_row(rows: list[dict[str, object]], threshold: int,
                         cfg: SpattenFx) -> tuple[list[int], list[int], int]:
    """A row the decision refuses: its beats, the answer (refetch 0, max_p 0, err 1) and the cycles, those of a
    row of as many beats (the error flag travels down the same registers as the row maximum)."""
    _check_refused(decision_refused([int(r["count"]) for r in rows], threshold, cfg), "the row and threshold")
    lay = contract.progquant(cfg)
    ins = [lay["p"].pack({"row": {"probs": r["lanes"], "count": r["count"], "last": r["last"]}, "thr": threshold})
           for r in rows]
    return ins, [lay["d"].pack({"refetch": 0, "max_p": 0, "err": 1})], len(rows) + decision_latency(cfg) - 1


# ---------------------------------------------------------------- prob x V

def pv_in_words(probs: Sequence[int], v: np.ndarray, cfg: SpattenFx) -> list[int]:
    """Probabilities and their V rows, S per beat (V rows padded to max_d, missing rows zero)."""
    s = cfg.s
    lay = contract.pv(cfg)["i"]
    p = list(probs)
    nb = max(1, -(-len(p) // s))
    chunks = [p[b * s:(b + 1) * s] for b in range(nb)]
    return [lay.pack({"probs": ch, "v": _v_rows(v[b * s:(b + 1) * s]), "count": len(ch), "last": int(b == nb - 1)})
            for b, ch in enumerate(chunks)]


def _v_rows(v: np.ndarray) -> list[list[int]]:
    """V rows as lists (each zero padded to max_d by the layout; missing rows likewise)."""
    return [[int(x) for x in row] for row in np.asarray(v)]


def pv_cycles(beats: int, cfg: SpattenFx) -> int:
    """The input register, operand copies and two product registers (``PV_MUL_PIPE``), the column-tree levels,
    then the accumulators and the output register."""
    return beats + PV_MUL_PIPE + pv_tree_pipe(cfg)


def pv_out_word(out: Sequence[int], cfg: SpattenFx) -> int:
    return contract.pv(cfg)["o"].pack({"o": [int(x) for x in out], "err": 0})


def pv_refused_job(rows: list[dict[str, object]], v: np.ndarray, cfg: SpattenFx) -> tuple[list[int], list[int], int]:
    """A job prob x V refuses (:func:`attnforge.sim.spatten.golden.pv_refused`): its beats (``rows``' lanes as
    probabilities, ``v`` [S, D] on every beat), the answer (outputs 0, err 1) and the cycles, those of a job of as
    many beats."""
    _check_refused(pv_refused([int(r["count"]) for r in rows], cfg), "the job")
    lay = contract.pv(cfg)
    ins = [lay["i"].pack({"probs": r["lanes"], "v": _v_rows(v), "count": r["count"], "last": r["last"]}) for r in rows]
    return ins, [lay["o"].pack({"o": [], "err": 1})], pv_cycles(len(rows), cfg)


# ---------------------------------------------------------------- the one-query pipeline

def pipeline_q_beat(job: QueryJob, cfg: SpattenFx) -> int:
    """Query words, then the job word: n | log2 D | kv | threshold | alpha_q | alpha_sh (``d`` not a power of two
    is sent as the nearest log, which a refused-job test makes out of range itself)."""
    return contract.spatten_pipeline(cfg)["q"].pack({
        "q": [int(v) for v in job.q][:cfg.max_d],
        "job": {"n": job.n, "dlog": max(0, job.d.bit_length() - 1), "kv": job.kv, "thr": job.threshold,
                "alpha": {"alpha_q": job.alpha_q, "alpha_sh": job.alpha_sh}}})


def pipeline_out_word(res: PipelineResult | None, cfg: SpattenFx) -> int:
    """The output beat of a job (``None``: a refused job's error beat)."""
    o = contract.spatten_pipeline(cfg)["o"]
    if res is None:
        return o.pack({"out": [], "refetch": 0, "max_p": 0, "error": 1})
    return o.pack({"out": res.out.tolist(), "refetch": int(res.refetch), "max_p": res.max_prob, "error": 0})


def tap_words(res: PipelineResult, cfg: SpattenFx) -> list[int]:
    """The probability tap's beats of a job: the final probabilities, S per beat, in key order."""
    return row_words(res.probs.tolist(), cfg.prob_bits, cfg)


def refused(job: QueryJob, cfg: SpattenFx) -> bool:
    """The pipeline's own job checks (it answers a failing job with an error beat)."""
    d_ok = job.d >= 1 and not job.d & (job.d - 1) and cfg.min_d <= job.d <= cfg.max_d
    return not (1 <= job.kv <= job.n <= cfg.max_n and d_ok and job.threshold <= 1 << cfg.prob_frac)


class MemoryModel:
    """The testbench's DRAM for a run of jobs (refused jobs make no requests): K split into its MSB and LSB
    regions, V rows by index. A request handshaken in cycle c is answered from cycle c + 1, one beat per cycle
    on its own stream (what :func:`pipeline_cycles` and :func:`stream_cycles` assume). K requests belong to the
    front's job and V requests to the back's, so each stream walks the jobs on its own."""

    def __init__(self, jobs: QueryJob | Sequence[QueryJob], cfg: SpattenFx) -> None:
        self.cfg = cfg
        self.jobs = [j for j in ([jobs] if isinstance(jobs, QueryJob) else jobs) if not refused(j, cfg)]
        self.kjob = self.vjob = self.vrows = 0
        self.requests: list[tuple[int, list[int]]] = []  #: (kind: 0 MSB, 1 LSB, 2 V, indices)
        self.contract = contract.spatten_pipeline(cfg)

    def _k(self, job: QueryJob) -> tuple[list[int], list[int]]:
        msb, lsb = split_k(job.k, self.cfg)
        return k_beats(msb, self.cfg, self.cfg.msb_bits), k_beats(lsb, self.cfg, self.cfg.lsb_bits)

    def answer(self, stream: str, req: int) -> tuple[str, list[int]]:
        """One request word on ``kreq`` or ``vreq`` -> (stream name, response beats)."""
        cfg = self.cfg
        if stream == "kreq":
            kind = self.contract["kreq"].unpack(req)["kind"]
            if kind == contract.KIND_MSB and self.requests and any(k != 2 for k, _ in self.requests):
                self.kjob += 1  # a new MSB request starts the front's next job
            self.requests.append((kind, []))
            msb, lsb = self._k(self.jobs[self.kjob])
            return "kmem", list(msb if kind == contract.KIND_MSB else lsb)
        r = self.contract["vreq"].unpack(req)
        job = self.jobs[self.vjob]
        idx = r["indices"][:r["count"]]
        self.requests.append((2, idx))
        self.vrows += 1
        if self.vrows == -(-job.n // cfg.s):  # one V request per top-k output row
            self.vjob, self.vrows = self.vjob + 1, 0
        v = np.zeros((job.n, cfg.max_d), np.int64)
        v[:, :job.d] = job.v
        return "vmem", [self.contract["vmem"].pack(_v_rows(v[idx]) if idx else [])]


def front_tail(cfg: SpattenFx) -> int:
    """Cycles of a front pass beyond its K beats and the softmax's two passes over the row (``2 nbS``), from the
    handshake of its last K beat to its decision: one register in the bit-width converter, Q x K's product, tree
    levels and collector, the softmax after its last input (:func:`softmax_cycles` less its load beats), the
    decision's max tree and register, and the front's registered stream slices (``SP_FRONT_SLICES``)."""
    return (softmax_latency(cfg) + qk_tree_pipe(cfg) + decision_latency(cfg) + 4
            + SP_FRONT_SLICES * SKID_LATENCY)


def front_cycles(job: QueryJob, cfg: SpattenFx, res: PipelineResult) -> int:
    """From the query handshake to the front's final decision (the hand-off cycle when the back is idle).

    One pass (request at cycle 1, decision at ``T``): the K request leaves 1 cycle after the query, MSB beats arrive
    from the next cycle, then :func:`front_tail`: ``T = nbK + 2 nbS + front_tail + 1``. A refetch repeats the pass
    from its request (``2 T``)."""
    nbk = -(-job.n // cfg.keys_per_beat(job.d))
    nbs = -(-job.n // cfg.s)
    t = nbk + 2 * nbs + front_tail(cfg) + 1
    return 2 * t if res.refetch else t


def back_cycles(job: QueryJob, cfg: SpattenFx, res: PipelineResult) -> int:
    """From the hand-off to the output handshake: the prob buffer streams into the top-k from the next cycle
    (:func:`attnforge.sim.spatten.topk_golden.cycles`), the last V request is answered 1 cycle later, and prob x V
    adds its input, operand and product registers, tree levels and output register, the top-k's output slice one
    cycle (``SP_BACK_SLICES``): ``1 + topk + SP_BACK_SLICES + PV_MUL_PIPE + 2 + pv_tree_pipe``."""
    return (1 + hw_topk(res.probs.tolist(), job.kv, cfg.s).cycles + SP_BACK_SLICES * SKID_LATENCY + PV_MUL_PIPE + 2
            + pv_tree_pipe(cfg))


def pipeline_cycles(job: QueryJob, cfg: SpattenFx, res: PipelineResult | None = None) -> int:
    """Cycles from the query handshake to the output handshake of one job alone, with :class:`MemoryModel`
    answering: front then back (a refused job: 1 cycle to the hand-off, 1 to its error beat)."""
    if refused(job, cfg):
        return 2
    res = res or pipeline(job, cfg)
    return front_cycles(job, cfg, res) + back_cycles(job, cfg, res)


def pipeline_cycles_for(n: Num, d: int, refetch: Num, topk: Num, cfg: SpattenFx) -> Num:
    """One job's :func:`pipeline_cycles` (front then back) from its sizes, with the refetch (0/1, or its probability:
    the mean) and the top-k cycles given; numpy-friendly, so the analytical model charges the RTL's own formula."""
    nbk = np.ceil(np.asarray(n, dtype=np.float64) / cfg.keys_per_beat(d))
    nbs = np.ceil(np.asarray(n, dtype=np.float64) / cfg.s)
    t = nbk + 2 * nbs + front_tail(cfg) + 1
    return ((1.0 + np.asarray(refetch, dtype=np.float64)) * t + 1 + np.asarray(topk) + SP_BACK_SLICES * SKID_LATENCY
            + PV_MUL_PIPE + 2 + pv_tree_pipe(cfg))


def stream_cycles(jobs: Sequence[QueryJob], cfg: SpattenFx,
                  results: Sequence[PipelineResult | None] | None = None) -> list[tuple[int, int]]:
    """(query handshake, output handshake) cycles of jobs offered back to back (the next query waits only for
    ``q.ready``), counted from the first query's handshake, the outputs always ready.

    Two queries in flight: job i's front finishes at ``D_i = q_i + front`` (a refused job: ``q_i + 1``); it is
    handed to the back at ``H_i = max(D_i, O_{i-1} + 1)`` (the back is free the cycle after its output
    handshake); the output follows at ``O_i = H_i + back`` (refused: ``+ 1``); the front takes the next query the
    cycle after the hand-off, ``q_{i+1} = H_i + 1``."""
    res = list(results) if results is not None else [None if refused(j, cfg) else pipeline(j, cfg) for j in jobs]
    out: list[tuple[int, int]] = []
    q, o_prev = 0, -(1 << 30)
    for job, r in zip(jobs, res, strict=True):
        if r is None:
            d, back = q + 1, 1
        else:
            d, back = q + front_cycles(job, cfg, r), back_cycles(job, cfg, r)
        h = max(d, o_prev + 1)
        o_prev = h + back
        out.append((q, o_prev))
        q = h + 1
    return out
