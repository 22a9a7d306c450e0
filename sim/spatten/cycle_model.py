"""Stream beats and exact cycle counts of the SpAtten datapath RTL blocks, from the golden model in
:mod:`attnforge.sim.spatten.golden`.

The testbenches build their stimuli and expected outputs here, so a layout change is one edit. Cycle counts are
measured the same way for every block: from the first input handshake of a job to its last output handshake, with
inputs offered every cycle and outputs always ready; each formula names the RTL stages it counts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from attnforge.rtl.common import pack, vmax_levels
from attnforge.sim.spatten.golden import PipelineResult, QueryJob, SpattenFx, pipeline, softmax, split_k
from attnforge.sim.spatten.topk_golden import hw_topk


def _cb(s: int) -> int:
    return s.bit_length()


def _chunks(x: Sequence[int], size: int) -> list[list[int]]:
    return [list(x[i:i + size]) for i in range(0, len(x), size)]


# ---------------------------------------------------------------- Q x K

def qk_q_beat(q: Sequence[int], n: int, d: int, cfg: SpattenFx) -> int:
    lanes = list(q) + [0] * (cfg.max_d - len(q))
    return pack(lanes, cfg.word_bits) | n << (cfg.max_d * cfg.word_bits) | (d.bit_length() - 1) << (
        cfg.max_d * cfg.word_bits + cfg.n_bits)


def k_beats(k: np.ndarray, cfg: SpattenFx, bits: int | None = None) -> list[int]:
    """K [n, D] row-major, ``lanes`` elements per beat, zero padded."""
    flat = [int(v) for v in np.asarray(k).reshape(-1)]
    return [pack(ch + [0] * (cfg.lanes - len(ch)), bits or cfg.word_bits) for ch in _chunks(flat, cfg.lanes)]


def score_beats(values: Sequence[int], cfg: SpattenFx, bits: int) -> list[list[int]]:
    """Row values in beats of S lanes (zero padded) -- what every S-lane stream carries; count/last separate."""
    return [ch + [0] * (cfg.s - len(ch)) for ch in _chunks(list(values), cfg.s)]


def beat_word(lanes_: Sequence[int], bits: int, count: int, last: bool, cfg: SpattenFx) -> int:
    s = cfg.s
    return pack(lanes_, bits) | count << (s * bits) | int(last) << (s * bits + _cb(s))


def row_words(values: Sequence[int], bits: int, cfg: SpattenFx) -> list[int]:
    """A row as S-lane beats with count and last (the s/probability stream format)."""
    vals = list(values)
    chunks = score_beats(vals, cfg, bits)
    out = []
    for i, ch in enumerate(chunks):
        cnt = min(cfg.s, len(vals) - i * cfg.s)
        out.append(beat_word(ch, bits, cnt, i == len(chunks) - 1, cfg))
    return out


def qk_tree_pipe(cfg: SpattenFx) -> int:
    """Registered adder-tree levels of rtl/spatten/qk.py: log2 max_d (every D leaves the tree at the top level)."""
    return cfg.max_d.bit_length() - 1


def qk_cycles(n: int, d: int, cfg: SpattenFx) -> int:
    """Input beats, then the product register, the tree levels and the collector register."""
    return -(-n // cfg.keys_per_beat(d)) + 1 + qk_tree_pipe(cfg)


# ---------------------------------------------------------------- softmax

def softmax_in_words(scores: Sequence[int], alpha_q: int, alpha_sh: int, cfg: SpattenFx) -> list[int]:
    fx = cfg.fx
    words = row_words(scores, cfg.score_bits, cfg)
    base = cfg.s * cfg.score_bits + _cb(cfg.s) + 1
    return [w | alpha_q << base | alpha_sh << (base + fx.alpha_bits) for w in words]


def softmax_out_words(scores: Sequence[int], alpha_q: int, alpha_sh: int, cfg: SpattenFx) -> list[int]:
    return row_words(softmax(np.asarray(scores), alpha_q, alpha_sh, cfg).probs.tolist(), cfg.prob_bits, cfg)


#: Registers of rtl/spatten/softmax.py's exponent pipeline: distance, partial products by alpha, their sum,
#: coarse and fine rounding shift, ROM, shifter.
SOFTMAX_EXP_PIPE = 7
#: The normalize pass adds the partial products by the reciprocal and their sum.
SOFTMAX_NORM_PIPE = SOFTMAX_EXP_PIPE + 2


def softmax_max_wait(cfg: SpattenFx) -> int:
    """Cycles between the load and the exp pass while the registered row-max tree (one level per cycle) and its
    fold into the running max finish: levels - 1 (rtl.common.vmax_levels)."""
    return vmax_levels(cfg.s) - 1


def softmax_latency(cfg: SpattenFx) -> int:
    """Fixed cycles of one row beyond its 3 nb beats and the divider's qw steps."""
    return cfg.fx.qw + 4 + softmax_max_wait(cfg) + SOFTMAX_EXP_PIPE + SOFTMAX_NORM_PIPE


def softmax_cycles(n: int, cfg: SpattenFx) -> int:
    """nb load beats, the max wait, nb exp beats + 1 read latency + the exponent pipeline, 1 start + qw divider
    steps + 1 done, then the normalize pass: 1 issue cycle, 1 read latency, the normalize pipeline, nb output beats."""
    nb = -(-n // cfg.s)
    return 3 * nb + softmax_latency(cfg)


# ---------------------------------------------------------------- progressive quantization

def assemble_in_words(msb: np.ndarray, lsb: np.ndarray, use_lsb: bool, cfg: SpattenFx) -> list[int]:
    m = k_beats(msb, cfg, cfg.msb_bits)
    lo = k_beats(lsb, cfg, cfg.lsb_bits)
    base = cfg.lanes * (cfg.msb_bits + cfg.lsb_bits)
    return [a | b << (cfg.lanes * cfg.msb_bits) | int(use_lsb) << base for a, b in zip(m, lo, strict=True)]


def decision_in_words(probs: Sequence[int], threshold: int, cfg: SpattenFx) -> list[int]:
    base = cfg.s * cfg.prob_bits + _cb(cfg.s) + 1
    return [w | threshold << base for w in row_words(probs, cfg.prob_bits, cfg)]


def decision_word(refetch: bool, max_p: int) -> int:
    return int(refetch) | max_p << 1


def assemble_cycles(beats: int) -> int:
    """One register stage: the last word leaves one cycle after the last input, beats - 1 + 1."""
    return beats


def decision_latency(cfg: SpattenFx) -> int:
    """Cycles from a row's last beat to its decision: the registered max tree (rtl.common.vmax_levels), then the
    fold and decision register."""
    return vmax_levels(cfg.s) + 1


def decision_cycles(n: int, cfg: SpattenFx) -> int:
    """Store-and-forward over the row's beats, then the max tree and the decision register."""
    return -(-n // cfg.s) + decision_latency(cfg) - 1


# ---------------------------------------------------------------- prob x V

def pv_in_words(probs: Sequence[int], v: np.ndarray, cfg: SpattenFx) -> list[int]:
    """Probabilities and their V rows, S per beat (V rows padded to max_d, missing rows zero)."""
    s, d = cfg.s, cfg.max_d
    p = list(probs)
    vv = np.zeros((len(p), d), np.int64)
    vv[:, :v.shape[1]] = v
    out = []
    nb = max(1, -(-len(p) // s))
    for b in range(nb):
        pr = p[b * s:(b + 1) * s]
        rows = vv[b * s:(b + 1) * s].reshape(-1).tolist()
        word = pack(pr + [0] * (s - len(pr)), cfg.prob_bits)
        word |= pack(rows + [0] * (s * d - len(rows)), cfg.v_bits) << (s * cfg.prob_bits)
        base = s * cfg.prob_bits + s * d * cfg.v_bits
        out.append(word | len(pr) << base | int(b == nb - 1) << (base + _cb(s)))
    return out


def pv_tree_pipe(cfg: SpattenFx) -> int:
    """Registered column-tree levels of rtl/spatten/pv.py: log2 S (S products per column per beat)."""
    return max(0, (cfg.s - 1).bit_length())


def pv_cycles(beats: int, cfg: SpattenFx) -> int:
    """Input register, product register, the column-tree levels, then the accumulators and the output register."""
    return beats + 2 + pv_tree_pipe(cfg)


# ---------------------------------------------------------------- the one-query pipeline

def pipeline_q_beat(job: QueryJob, cfg: SpattenFx) -> int:
    """Query words, then n | log2 D | kv | threshold | alpha_q | alpha_sh (rtl.spatten.pipeline.q_fields)."""
    fx = cfg.fx
    fields = [(job.n, cfg.n_bits), (job.d.bit_length() - 1, cfg.dlog_bits), (job.kv, cfg.n_bits),
              (job.threshold, cfg.prob_bits), (job.alpha_q, fx.alpha_bits), (job.alpha_sh, fx.alpha_shift_bits)]
    word = pack(list(job.q) + [0] * (cfg.max_d - job.d), cfg.word_bits)
    off = cfg.max_d * cfg.word_bits
    for v, w in fields:
        word |= int(v) << off
        off += w
    return word


def pipeline_out_word(res: PipelineResult, cfg: SpattenFx) -> int:
    out = res.out.tolist()
    word = pack(out + [0] * (cfg.max_d - len(out)), cfg.out_bits)
    base = cfg.max_d * cfg.out_bits
    return word | int(res.refetch) << base | res.max_prob << (base + 1)


class MemoryModel:
    """The testbench's DRAM: K split into its MSB and LSB regions, V rows by index. A request handshaken in cycle c
    is answered from cycle c + 1, one beat per cycle (what :func:`pipeline_cycles` assumes)."""

    def __init__(self, job: QueryJob, cfg: SpattenFx) -> None:
        msb, lsb = split_k(job.k, cfg)
        self.cfg = cfg
        self.msb = k_beats(msb, cfg, cfg.msb_bits)
        self.lsb = k_beats(lsb, cfg, cfg.lsb_bits)
        self.v = np.zeros((job.n, cfg.max_d), np.int64)
        self.v[:, :job.d] = job.v
        self.requests: list[tuple[int, list[int]]] = []

    def answer(self, req: int) -> tuple[str, list[int]]:
        """One request word -> (stream name, response beats)."""
        c = self.cfg
        kind = req & 3
        if kind in (0, 1):
            self.requests.append((kind, []))
            return "kmem", list(self.msb if kind == 0 else self.lsb)
        cnt = (req >> (2 + c.s * c.idx_bits)) & ((1 << c.s.bit_length()) - 1)
        idx = [(req >> (2 + j * c.idx_bits)) & ((1 << c.idx_bits) - 1) for j in range(cnt)]
        self.requests.append((kind, idx))
        rows = self.v[idx].reshape(-1).tolist() if idx else []
        return "vmem", [pack(rows + [0] * (c.s * c.max_d - len(rows)), c.v_bits)]


def pipeline_cycles(job: QueryJob, cfg: SpattenFx, res: PipelineResult | None = None) -> int:
    """Cycles from the query handshake to the output handshake with :class:`MemoryModel` answering.

    One pass (request at cycle 1, decision at ``T``): the K request leaves 1 cycle after the query, MSB beats arrive
    from the next cycle, one register in the bit-width converter, Q x K's product, tree levels and collector, the
    softmax after its last input (:func:`softmax_cycles` less its load beats), the decision's max tree and register:
    ``T = nbK + 2 nbS + softmax_latency + qk_tree_pipe + decision_latency + 5``. A refetch repeats the pass from its
    request (``2 T``). Then the prob buffer streams into the top-k from the next cycle
    (:func:`attnforge.sim.spatten.topk_golden.cycles`), the last V request is answered 1 cycle later, and prob x V adds its
    input and product registers, tree levels and output register: ``+ 1 + topk + 4 + pv_tree_pipe``.
    """
    res = res or pipeline(job, cfg)
    nbk = -(-job.n // cfg.keys_per_beat(job.d))
    nbs = -(-job.n // cfg.s)
    t = nbk + 2 * nbs + softmax_latency(cfg) + qk_tree_pipe(cfg) + decision_latency(cfg) + 5
    return (2 * t if res.refetch else t) + 1 + hw_topk(res.probs.tolist(), job.kv, cfg.s).cycles + 4 + pv_tree_pipe(cfg)
