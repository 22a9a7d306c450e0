"""The stream payloads and config words of every registered RTL design, as :mod:`layout` values.

One function per design returns its :class:`Contract` for the design's parameters: the RTL builds its ports and
reads its payload fields from it, the Python packers (``sim/*/cycle_model.py``, ``sim/spatten/topk_golden.py``)
and the cocotb benches pack and unpack through it, and ``rtl/export.py`` writes it into the JSON manifest. Beat
and lane axes are recorded in words next to each stream, because a layout says where the bits are but not which
tensor index a beat or a lane walks.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from attnforge.sim.contract.depths import OP_BITS, count_bits, idx_bits, n_bits, pe_acc_bits
from attnforge.sim.contract.fixedpoint import FixedPointConfig, clog2
from attnforge.sim.contract.layout import Array, Field, Layout, Struct, flatten, lanes, struct
from attnforge.sim.contract.memport import MemPort

if TYPE_CHECKING:  # pragma: no cover
    from attnforge.sim.contract.spatten_fx import ImportanceCfg, SpattenFx
    from attnforge.sim.contract.spatten_top import SpattenTopCfg


@dataclass(frozen=True)
class Stream:
    """One stream port: its payload layout, direction (as seen from the design), and what its beats and lanes walk."""

    layout: Layout
    direction: str  #: "in" or "out"
    beats: str  #: the beat axis: what one beat is and how many a job takes
    lanes: str = ""  #: the lane axis of the payload's main array, when it has one

    def to_json(self) -> dict[str, Any]:
        return {"dir": self.direction, "width": self.layout.width, "beats": self.beats, "lanes": self.lanes,
                "fields": flatten(self.layout), "layout": self.layout.to_json()}


@dataclass(frozen=True)
class Contract:
    """Everything about a design's payload bits that the RTL, the models and the benches share."""

    design: str
    streams: Mapping[str, Stream]
    #: config words (read once per job, carried inside a stream) and other named words a stream's lanes carry
    words: Mapping[str, Layout] = field(default_factory=dict)
    #: symbolic values of enumerated fields ("field": {"name": value})
    enums: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    #: memory ports: port name -> (request stream, response stream), an ``out`` stream with the
    #: :meth:`MemPort.request` layout and an ``in`` stream with the :meth:`MemPort.response` layout
    #: (:mod:`attnforge.sim.contract.memport`); a bench answers the pair with a memory model, not a source and a sink
    memports: Mapping[str, tuple[str, str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for port, (req, resp) in self.memports.items():
            ok = self.streams.get(req) and self.streams.get(resp)
            if not ok or self.streams[req].direction != "out" or self.streams[resp].direction != "in":
                raise ValueError(f"{self.design}: memory port {port!r} needs an out stream {req!r} and an in stream {resp!r}")
            self.memport(port)  # the layouts must be the memport ones (MemPort.of refuses others)

    def memport(self, port: str) -> MemPort:
        """The widths of memory port ``port``, read back from its two stream layouts."""
        return MemPort.of(self[self.memports[port][0]], self[self.memports[port][1]])

    def __getitem__(self, stream: str) -> Layout:
        return self.streams[stream].layout

    def to_json(self) -> dict[str, Any]:
        return {"streams": {k: s.to_json() for k, s in self.streams.items()},
                "words": {k: {"width": w.width, "fields": flatten(w), "layout": w.to_json()} for k, w in self.words.items()},
                "enums": {k: dict(v) for k, v in self.enums.items()},
                "memports": {k: {"request": r, "response": a, **asdict(self.memport(k))}
                             for k, (r, a) in self.memports.items()}}


# ---------------------------------------------------------------- shared words

def alpha_word(fx: FixedPointConfig) -> Struct:
    """The exponent constant ``2**(-d * alpha_q / 2**alpha_sh)`` of the FuseMax exponent unit (every softmax)."""
    return struct("alpha", Field("alpha_q", fx.alpha_bits), Field("alpha_sh", fx.alpha_shift_bits))


def row_beat(name: str, elem: str, count: int, bits: int, signed: bool) -> Struct:
    """An S-lane row beat: ``count`` lanes, how many are valid, and whether it ends the row (every SpAtten row stream)."""
    return struct(name, lanes(elem, count, bits, signed), Field("count", count_bits(count)), Field("last", 1))


def row_answer(name: str, elem: str, count: int, bits: int, signed: bool) -> Struct:
    """An output row beat with ``err`` last (the highest bit, so a consumer that reads only the row beat keeps the
    low bits): err=1 on the one beat (lanes 0, count 0, last 1) that answers a refused job."""
    return struct(name, *row_beat(name, elem, count, bits, signed).fields, Field("err", 1))


#: the rule every SpAtten row stream (``S`` lanes | count | last) refuses by; see :func:`row_refusal`
ROW_RULE = ("a row whose beat has count 0 or above S, a count below S before its last beat, or more than {max_n} "
            "entries in all is refused: its beats are taken up to the one with last=1 (the row's framing), nothing "
            "of it is computed, and it is answered by one beat with err=1 (lanes 0, count 0, last 1)")


def row_refusal(max_n: int) -> str:
    return ROW_RULE.format(max_n=max_n)


# ---------------------------------------------------------------- FuseMax

def pe(in_bits: int = 8, depth: int = 64) -> Contract:
    return Contract("pe", {
        "i": Stream(struct("i", Field("a", in_bits, True), Field("b", in_bits, True), Field("last", 1)), "in",
                    "one product a*b per beat; last ends the accumulation"),
        "o": Stream(Field("sum", pe_acc_bits(in_bits, depth), True), "out", "one sum per accumulation"),
    })


def array2d(rows: int = 4, cols: int = 4, in_bits: int = 8, depth: int = 64) -> Contract:
    acc = pe_acc_bits(in_bits, depth)
    return Contract("array2d", {
        "i": Stream(struct("i", lanes("a", rows, in_bits, True), lanes("b", cols, in_bits, True), Field("last", 1)), "in",
                    "E beats per job (a[e, r], b[e, c]); last on the final one", "a: rows (keys), b: cols (queries)"),
        "o": Stream(lanes("acc", cols, acc, True), "out", "rows beats per job, one result row each", "cols (queries)"),
    })


#: 1D vector unit opcodes (the RTL decodes the same numbers; the golden model names them).
VEC_OPS: dict[str, int] = {"max": 0, "add": 1, "mul": 2, "exp": 3, "recip": 4}


def vector1d(width: int = 4, data_bits: int = 40, max_keys: int = 256) -> Contract:
    fx = FixedPointConfig(max_keys=max_keys, rows=1)
    return Contract("vector1d", {
        "i": Stream(struct("i", Field("op", OP_BITS), lanes("a", width, data_bits, True), lanes("b", width, data_bits, True)),
                    "in", "one command per beat", "width (queries)"),
        "o": Stream(lanes("res", width, data_bits, True), "out", "one result per command", "width (queries)"),
    }, words={"exp_operand": alpha_word(fx)}, enums={"op": dict(VEC_OPS)})


#: Width of the tile engine's causal diagonal (signed query-minus-key position offset, see :func:`fusemax_tile`).
DIAG_BITS = 16


def fusemax_tile_cfg(rows: int, fx: FixedPointConfig) -> Struct:
    """The tile engine's cfg word. ``pad_keys``: keys of the last key tile that are padding (0 .. rows - 1; their
    scores are excluded from the max and their probabilities are 0, so K/V padding may hold anything). ``causal``
    with ``diag``: key ``m`` of the run (0-based over its key tiles) is visible to query lane ``c`` only if
    ``m <= diag + c`` (``diag`` = position of the tile's first query minus that of its first key)."""
    return struct("cfg", Field("n_tiles", fx.key_tiles_bits), alpha_word(fx), Field("pad_keys", max(1, clog2(rows))),
                  Field("causal", 1), Field("diag", DIAG_BITS, True))


def fusemax_tile(rows: int = 4, cols: int = 4, e: int = 8, f: int = 8, max_keys: int = 256) -> Contract:
    fx = FixedPointConfig(e=e, f=f, rows=rows, max_keys=max_keys)
    cfg = fusemax_tile_cfg(rows, fx)
    ib = fx.in_bits
    return Contract("fusemax-tile", {
        "cfg": Stream(cfg, "in", f"one per output tile; starts a run; n_tiles outside 1..{max_keys // rows} or "
                      f"pad_keys >= {rows} is refused: the beat is consumed, the engine stays idle and raises its "
                      "error output for one cycle"),
        "q": Stream(lanes("q", cols, ib, True), "in", "E beats per output tile (Q[e, p0]); may run ahead of K",
                    "p0 (queries)"),
        "k": Stream(lanes("k", rows, ib, True), "in", "E beats per key tile (K[e, m0])", "m0 (keys)"),
        "v": Stream(lanes("v", rows, ib, True), "in", "F beats per key tile (V[m0, f])", "m0 (keys)"),
        "o": Stream(lanes("o", cols, fx.out_bits, True), "out", f"F beats per output tile (AV[f, p0], {fx.out_frac} "
                    "fraction bits, units of scale_v; 0 for a query that sees no key)", "p0 (queries)"),
    }, words={"cfg": cfg})


#: Status codes of fusemax-top's ``st`` stream: 0 accepted; otherwise why the descriptor was refused.
TOP_STATUS: dict[str, int] = {"ok": 0, "zero_size": 1, "above_max": 2, "bad_d": 3, "partial_keys": 4, "causal": 5}


def fusemax_top_mem(rows: int, cols: int) -> MemPort:
    """fusemax-top's memory port: one word carries one engine beat (``max(rows, cols)`` int8 lanes)."""
    return MemPort(addr_bits=24, data_bits=8 * max(rows, cols), len_bits=8, tag_bits=2)


def fusemax_top(rows: int = 4, cols: int = 4, d: int = 8, max_keys: int = 64, max_queries: int = 64,
                max_heads: int = 16) -> Contract:
    """The whole-layer FuseMax top: one descriptor runs every head, query tile and key tile of a layer.

    Memory image (word addresses, one word = one engine beat, lane 0 lowest): ``q_base + (h*Tq + t)*d + e`` holds
    Q[h, t*cols + c, e] in lane c (queries past P padded with zeros by the host); ``k_base + (h*Tk + j)*d + e``
    holds K[h, j*rows + r, e] in lane r; ``v_base + (h*Tk + j)*d + f`` holds V[h, j*rows + r, f] in lane r, with
    Tq = ceil(P / cols) and Tk = M / rows."""
    fx = FixedPointConfig(e=d, f=d, rows=rows, max_keys=max_keys)
    mem = fusemax_top_mem(rows, cols)
    desc = struct("desc", Field("heads", max_heads.bit_length()), Field("p", max_queries.bit_length()),
                  Field("m", max_keys.bit_length()), Field("d", 8), Field("causal", 1),
                  Field("q_base", mem.addr_bits), Field("k_base", mem.addr_bits), Field("v_base", mem.addr_bits),
                  alpha_word(fx))
    return Contract("fusemax-top", {
        "desc": Stream(desc, "in", "one per layer: heads, P, M, d, causal, Q/K/V base word addresses, exponent "
                       "constant; answered by one st beat"),
        "st": Stream(Field("code", 3), "out", "one per descriptor, the cycle after it is taken: 0 runs the layer, "
                     "else the refusal reason (the top stays idle)"),
        "mreq": Stream(mem.request(), "out", "one per tile fetch: d words of a Q, K or V tile (sim/contract/memport.py)"),
        "mresp": Stream(mem.response(), "in", "the words of each request in request order; ready is always high"),
        "perf": Stream(struct("perf", Field("cycles", 40), Field("mac_cycles", 40)), "out", "one per layer run, the "
                       "cycle after its last output beat: cycles from the descriptor handshake (cycle 0) to the last "
                       "output beat, and the cycles in which the 2D MACs fired (mac_active)"),
        "o": Stream(lanes("o", cols, fx.out_bits, True), "out", f"d beats per query tile, heads outer, query tiles "
                    f"inner (AV[f, p0], {fx.out_frac} fraction bits, units of scale_v); padded query lanes carry junk",
                    "p0 (queries)"),
    }, words={"desc": desc}, enums={"code": dict(TOP_STATUS)}, memports={"mem": ("mreq", "mresp")})


# ---------------------------------------------------------------- SpAtten

def topk(comparators: int = 16, max_n: int = 256, data_bits: int = 8, signed_data: int = 1) -> Contract:
    c, sd = comparators, bool(signed_data)
    job = struct("job", Field("n", n_bits(max_n)), Field("k", n_bits(max_n)))
    out = struct("o", lanes("values", c, data_bits, sd), lanes("indices", c, idx_bits(max_n)),
                 Field("count", count_bits(c)), Field("last", 1), Field("error", 1))
    return Contract("topk", {
        "i": Stream(struct("i", lanes("scores", c, data_bits, sd), job), "in",
                    "max(1, ceil(n/C)) beats per job, the last may be partial; job read on the first", "C (elements)"),
        "o": Stream(out, "out", "one beat per input row: kept elements compacted to the low lanes, in input order; "
                    f"a job outside 1 <= k <= n <= {max_n} is consumed and answered with one beat (count 0, last 1, "
                    "error 1)", "C (kept elements)"),
    }, words={"job": job})


def _qk_job(cfg: SpattenFx) -> list[Layout]:
    return [Field("n", cfg.n_bits), Field("dlog", cfg.dlog_bits)]


def _k_line(cfg: SpattenFx) -> Layout:
    return lanes("k", cfg.lanes, cfg.word_bits, True)


def qk(cfg: SpattenFx) -> Contract:
    job = struct("job", *_qk_job(cfg))
    return Contract("qk", {
        "q": Stream(struct("q", lanes("q", cfg.max_d, cfg.word_bits, True), job), "in", "one per job, before its keys",
                    "max_d (head dimension, zero padded)"),
        "k": Stream(_k_line(cfg), "in", "K row-major, lanes/D keys per beat, zero padded", "lanes (K words)"),
        "s": Stream(row_answer("s", "scores", cfg.s, cfg.score_bits, True), "out",
                    f"ceil(n/S) beats per job; a job with n = 0, n > {cfg.max_n} or log2 D outside "
                    f"{cfg.min_d.bit_length() - 1}..{cfg.max_d.bit_length() - 1} is refused: its q beat is taken, none of "
                    "its K beats (do not send them), and it is answered by one beat (count 0, last 1, err 1) in job order",
                    "S (keys)"),
    }, words={"job": job})


def softmax(cfg: SpattenFx) -> Contract:
    row = row_beat("row", "scores", cfg.s, cfg.score_bits, True)
    return Contract("softmax", {
        "i": Stream(struct("i", row, alpha_word(cfg.fx)), "in", "ceil(n/S) beats per row; alpha read on the first; "
                    + row_refusal(cfg.max_n), "S (keys)"),
        "o": Stream(row_answer("o", "probs", cfg.s, cfg.prob_bits, False), "out",
                    "ceil(n/S) beats per row (err 0); one beat with err 1 per refused row", "S (keys)"),
    }, words={"alpha": alpha_word(cfg.fx)})


def progquant(cfg: SpattenFx) -> Contract:
    probs = row_beat("row", "probs", cfg.s, cfg.prob_bits, False)
    return Contract("progquant", {
        "i": Stream(struct("i", lanes("msb", cfg.lanes, cfg.msb_bits, True), lanes("lsb", cfg.lanes, cfg.lsb_bits),
                           Field("use_lsb", 1)), "in", "one K buffer line per beat", "lanes (K words)"),
        "o": Stream(_k_line(cfg), "out", "one assembled K line per input beat", "lanes (K words)"),
        "p": Stream(struct("p", probs, Field("thr", cfg.prob_bits)), "in", "ceil(n/S) beats per row; thr read on the "
                    f"first; a threshold above {1 << cfg.prob_frac} (1.0) refuses the row too; " + row_refusal(cfg.max_n),
                    "S (keys)"),
        "d": Stream(struct("d", Field("refetch", 1), Field("max_p", cfg.prob_bits), Field("err", 1)), "out",
                    "one decision per row; a refused row's: refetch 0, max_p 0, err 1, at the time a row of as many "
                    "beats would have been decided"),
    }, words={"k_word": struct("word", Field("lsb", cfg.lsb_bits), Field("msb", cfg.msb_bits, True))})


def _v_rows(cfg: SpattenFx) -> Layout:
    return Array("v", lanes("row", cfg.max_d, cfg.v_bits, True), cfg.s)


def pv(cfg: SpattenFx) -> Contract:
    s = cfg.s
    return Contract("pv", {
        "i": Stream(struct("i", lanes("probs", s, cfg.prob_bits), _v_rows(cfg), Field("count", count_bits(s)),
                           Field("last", 1)), "in",
                    "ceil(kept/S) beats per job: S probabilities and their V rows (empty and short beats are legal: "
                    f"top-k output rows); a job with a count above S or more than {cfg.max_n} rows in all is refused: "
                    "its beats are taken up to last=1, and it is answered by one beat (outputs 0, err 1)",
                    "S (kept keys); V rows of max_d"),
        "o": Stream(struct("o", lanes("o", cfg.max_d, cfg.out_bits, True), Field("err", 1)), "out",
                    "one beat per job (err 1, outputs 0: a refused job), when a job of as many beats would end",
                    "max_d (head dimension)"),
    })


KIND_MSB, KIND_LSB, KIND_V = 0, 1, 2


def spatten_pipeline(cfg: SpattenFx) -> Contract:
    """Two queries in flight: the front (Q x K, softmax, decision) of one overlaps the back (top-k, V, prob x V) of
    the previous, so K region requests (``kreq``) and V requests (``vreq``) are separate streams."""
    job = struct("job", *_qk_job(cfg), Field("kv", cfg.n_bits), Field("thr", cfg.prob_bits), alpha_word(cfg.fx))
    kreq = struct("kreq", Field("kind", 2))  # 2 bits: a 1-bit port is a scalar to cocotb
    vreq = struct("vreq", lanes("indices", cfg.s, cfg.idx_bits), Field("count", count_bits(cfg.s)))
    out = struct("o", lanes("out", cfg.max_d, cfg.out_bits, True), Field("refetch", 1), Field("max_p", cfg.prob_bits),
                 Field("error", 1))
    return Contract("spatten-pipeline", {
        "q": Stream(struct("q", lanes("q", cfg.max_d, cfg.word_bits, True), job), "in", "one per job; a job outside "
                    f"1 <= kv <= n <= {cfg.max_n}, min_d <= 2**dlog <= max_d, thr <= 1.0 is consumed and answered "
                    "with one o beat (error 1, everything else 0) in job order", "max_d (head dimension)"),
        "kreq": Stream(kreq, "out", "K MSB region (kind 0), then the K LSB region (kind 1) when the row refetches"),
        "kmem": Stream(lanes("msb", cfg.lanes, cfg.msb_bits, True), "in",
                       "K region beats (LSB region: the kmem_lsb word in the low bits)", "lanes (K words)"),
        "vreq": Stream(vreq, "out", "one V request per top-k output row (count may be 0)", "S (V row indices)"),
        "vmem": Stream(_v_rows(cfg), "in", "one beat per V request, rows in the request's index order", "S (V rows)"),
        "p": Stream(row_beat("p", "probs", cfg.s, cfg.prob_bits, False), "out", "probability tap: ceil(n/S) beats "
                    "per job, the final probabilities (after any LSB rerun) in key order, as the top-k reads them",
                    "S (keys)"),
        "o": Stream(out, "out", "one per job", "max_d (head dimension)"),
    }, words={"job": job, "kmem_lsb": lanes("lsb", cfg.lanes, cfg.lsb_bits)},
        enums={"kind": {"k_msb": KIND_MSB, "k_lsb": KIND_LSB}})


#: importance job opcodes (the ``op`` field of the importance ``i`` stream and its ``r`` answer)
IMP_OPS: dict[str, int] = {"clear": 0, "add_tokens": 1, "add_head": 2, "read_tokens": 3, "read_heads": 4}


def importance(cfg: ImportanceCfg) -> Contract:
    """Cascade-pruning accumulators: one input stream carries every job (so jobs keep their order), ``o`` is the
    top-k engine's input stream (:func:`topk` ``i``, unsigned ``imp_bits`` scores), ``r`` answers every job once."""
    fx, s = cfg.fx, cfg.s
    ops = ", ".join(f"{k}={v}" for k, v in IMP_OPS.items())
    i = struct("i", Field("op", 3), Field("n", cfg.n_bits), Field("k", cfg.n_bits), Field("dlog", fx.dlog_bits),
               lanes("idx", s, cfg.idx_bits), lanes("probs", s, fx.prob_bits), lanes("out", fx.max_d, fx.out_bits, True))
    return Contract("importance", {
        "i": Stream(i, "in", f"op ({ops}), n, k, dlog read on a job's first beat. clear, add_head: 1 beat; add_tokens, "
                    "read_tokens, read_heads: max(1, ceil(n/S)) beats, lane j of beat b is entry b*S+j (idx: token or "
                    "head id; probs: add_tokens; out[0:D] and head idx[0]: add_head, D = 2**dlog). Refused (answered r "
                    f"err=1, nothing changed, every beat of the job consumed, back to idle): op > 4; n = 0 or n > "
                    f"{fx.max_n} (tokens) / {cfg.max_heads} (read_heads); read k = 0 or k > n; add_head D outside "
                    f"{fx.min_d}..{fx.max_d} or head >= {cfg.max_heads}. A token lane whose id is >= {fx.max_n} (or a "
                    f"head id >= {cfg.max_heads}) is not added (reads 0) and its job is answered err=1",
                    "S (entries: tokens or heads)"),
        "o": Stream(topk(s, cfg.max_entries, cfg.imp_bits, 0)["i"], "out",
                    "read jobs only: ceil(n/S) beats in the top-k engine's input format (scores = the named "
                    "accumulators, job n, k copied)", "S (entries)"),
        "r": Stream(struct("r", Field("op", 3), Field("err", 1)), "out",
                    "one beat per job, after its effect (a read's with its last o beat); err=1: refused or a lane "
                    "out of range"),
    }, enums={"op": dict(IMP_OPS)})


def spatten_top(t: SpattenTopCfg) -> Contract:
    """The whole accelerator: one layer descriptor per layer in, one output beat per (head, query) and one answer
    per descriptor out, K/V/Q through one memory port (:mod:`attnforge.sim.contract.spatten_top`)."""
    fx, mp = t.fx, t.mem
    desc = struct("desc", Field("first", 1), Field("carry", 1), Field("ctx", fx.n_bits),
                  Field("tokens", fx.n_bits), Field("queries", fx.n_bits),
                  Field("heads", t.heads_n_bits), Field("kv", fx.n_bits), Field("thr", fx.prob_bits), alpha_word(fx.fx),
                  Field("dlog", fx.dlog_bits),
                  Field("stride", fx.n_bits), Field("q_base", t.addr_bits), Field("k_base", t.addr_bits),
                  Field("l_base", t.addr_bits), Field("v_base", t.addr_bits))
    out = struct("o", lanes("out", fx.max_d, fx.out_bits, True), Field("head", t.head_bits),
                 Field("token", fx.idx_bits), Field("refetch", 1), Field("max_p", fx.prob_bits))
    ans = struct("r", Field("err", 1), Field("tokens", fx.n_bits), Field("heads", t.heads_n_bits))
    return Contract("spatten-top", {
        "desc": Stream(desc, "in", "one per layer: first=1 clears the importance and starts from tokens 0..tokens-1 "
                       "and heads 0..heads-1 (carry=0, ctx = tokens); first=1 with carry=1 starts a later generation "
                       "iteration: the importance accumulated so far is kept (GPT-2's scores accumulate across "
                       "iterations, paper Sec. III-A), the token list restarts from the context 0..ctx-1, whose "
                       "newest token ctx-1 (the new query) is always kept and the top tokens-1 of the others by "
                       "importance beside it, heads 0..heads-1; later layers (first=0, ctx=0) keep the top "
                       "`tokens` tokens and `heads` heads by importance, with carry=1 the list's last token (the "
                       "newest, a decoder's query) and the top tokens-1 of the others. The last `queries` alive tokens are the "
                       "queries (queries = tokens: every token, as an encoder layer; 1: a generation step); only "
                       "their rows add importance. Refused (answered r err=1, back to idle): tokens = 0 or above the "
                       f"alive count (first: above {fx.max_n}), heads = 0 or above the alive count (first: above "
                       f"{t.max_heads}), first without carry and ctx != tokens, carry with ctx above {fx.max_n}, "
                       "tokens above ctx, tokens = 1 below ctx or stride < ctx, first=0 with ctx set or with carry "
                       "and tokens = 1 below the alive count, "
                       "queries = 0 or queries > tokens, "
                       f"kv = 0 or kv > tokens, thr > 1.0, 2**dlog outside {fx.min_d}..{fx.max_d}, stride < tokens "
                       "(first). A head dimension 2**dlog below max_d runs one key per beat as max_d does: the Q "
                       "rows' lanes from 2**dlog up are zeroed (K and V lanes there may hold anything)"),
        "mreq": Stream(mp.request(), "out", "Q rows (tag 0), K MSB/LSB runs of alive tokens (tag 1), V rows (tag 2)"),
        "mresp": Stream(mp.response(), "in", "one row per beat"),
        "o": Stream(out, "out", "one per (alive head, query), head by head, queries in token order; lanes from "
                    "2**dlog up are zero", "max_d (head dimension)"),
        "r": Stream(ans, "out", "one per descriptor, after its last o beat: err, tokens and heads alive in the layer"),
    }, words={"desc": desc, "q_row": lanes("q", fx.max_d, fx.word_bits, True),
              "k_msb_row": lanes("msb", fx.max_d, fx.msb_bits, True), "k_lsb_row": lanes("lsb", fx.max_d, fx.lsb_bits),
              "v_row": lanes("row", fx.max_d, fx.v_bits, True)},
        enums={"tag": {"q": 0, "k": 1, "v": 2}}, memports={"mem": ("mreq", "mresp")})


# ---------------------------------------------------------------- test designs

def memtest(addr_bits: int = 8, data_bits: int = 16, len_bits: int = 4, tag_bits: int = 4, cycle_bits: int = 16) -> Contract:
    """The memory-port test requester (``rtl/benches/memtest.py``): scripted requests in, a log of what happened out."""
    mp = MemPort(addr_bits=addr_bits, data_bits=data_bits, len_bits=len_bits, tag_bits=tag_bits)
    cyc = cycle_bits
    return Contract("memtest", {
        "jobs": Stream(struct("jobs", *mp.request().fields, Field("at", cyc)), "in",
                       "one request per beat, offered from cycle ``at`` (counted from reset) on, in order"),
        "mreq": Stream(mp.request(), "out", "one memory request per job"),
        "mresp": Stream(mp.response(), "in", "the memory's response beats"),
        "acc": Stream(struct("acc", Field("offered", cyc), Field("accepted", cyc), Field("tag", tag_bits)), "out",
                      "one per request: the cycle its mreq.valid rose and the cycle it was accepted"),
        "beats": Stream(struct("beats", Field("cycle", cyc), *mp.response().fields), "out",
                        "one per response beat: the cycle it was taken, and the beat"),
    }, memports={"mem": ("mreq", "mresp")})


# ---------------------------------------------------------------- by registry name

def _fx(p: Mapping[str, int]) -> SpattenFx:
    from attnforge.sim.contract.spatten_fx import SpattenFx

    return SpattenFx(lanes=p["lanes"], min_d=p["min_d"], max_d=p["max_d"], max_n=p["max_n"])


def _top(p: Mapping[str, int]) -> SpattenTopCfg:
    from attnforge.sim.contract.spatten_top import SpattenTopCfg

    return SpattenTopCfg(_fx(p), p["max_heads"], p["max_layers"], p["addr_bits"])


def _imp(p: Mapping[str, int]) -> ImportanceCfg:
    from attnforge.sim.contract.spatten_fx import ImportanceCfg

    return ImportanceCfg(_fx(p), p["max_heads"], p["max_queries"], p["max_layers"])


_BY_NAME: dict[str, Callable[[Mapping[str, int]], Contract]] = {
    "pe": lambda p: pe(**p),
    "array2d": lambda p: array2d(**p),
    "vector1d": lambda p: vector1d(**p),
    "fusemax-tile": lambda p: fusemax_tile(**p),
    "fusemax-top": lambda p: fusemax_top(**p),
    "topk": lambda p: topk(**p),
    "qk": lambda p: qk(_fx(p)),
    "softmax": lambda p: softmax(_fx(p)),
    "progquant": lambda p: progquant(_fx(p)),
    "pv": lambda p: pv(_fx(p)),
    "spatten-pipeline": lambda p: spatten_pipeline(_fx(p)),
    "importance": lambda p: importance(_imp(p)),
    "memtest": lambda p: memtest(**p),
    "spatten-top": lambda p: spatten_top(_top(p)),
}

DESIGN_NAMES = tuple(_BY_NAME)


def for_design(design: str, params: Mapping[str, int]) -> Contract:
    """The contract of a registered design (``rtl.registry`` name) at complete, validated parameters."""
    return _BY_NAME[design](params)
