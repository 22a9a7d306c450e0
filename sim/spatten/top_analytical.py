"""Analytical cycles of the whole SpAtten accelerator RTL (``spatten-top``), from an arch with a ``top`` section.

Why a model of its own and not :func:`attnforge.sim.spatten.occupancy.job_costs`: the paper's design keeps each
head's K/V in SRAM and its modules work on different queries through FIFOs, so its time is the busiest module's.
The top has no K/V SRAM: every (head, query) job fetches its alive K rows and its kept V rows again through one
memory port (``top.mem_*``: latency L, O requests in flight, a beat every I cycles, responses in request order), and
only two queries are in flight (the pipeline's front on query i+1 while its back finishes query i). Its time is a
chain per job in which the port is shared, so the terms below follow a job through the hardware; each is a closed
form over the layer's sizes, with the data-dependent inputs (refetch rate, top-k rounds) given as expectations.

Per job, counting from the hand-off ``H`` at which the back takes query i and the front takes query i+1:

* **front** (query i+1): the Q row is already buffered (the Q fetcher runs two queries ahead), so the K request
  walk starts at ``H + 2``. The K fetcher walks the alive tokens one per cycle and requests one burst per run of
  consecutive tokens, walking the next run only once the request went out; a request also needs one of the O
  slots, each held L + r I cycles by a run of r tokens. So the requests follow each other E[max(r, (L + r I) /
  O)] cycles apart (geometric run lengths), and the pass ends with the last run's latency and beats, or with the
  beats themselves (one per I after the first run's latency) when those are later. The refetch decision follows
  the last K beat after the softmax's remaining passes and the fixed latencies (``qk + softmax + requant``
  latency cycles). A job that refetches LSBs repeats the pass (probability = the layer's refetch rate).
* **back** (query i): the top-k takes the ``ceil(n/S)`` probability beats from ``H + 1``, its first output row
  leaves ``topk - (ceil(n/S) - 1)`` cycles after the first input, and each kept index becomes a one-beat V
  request. One-beat requests are bounded by Little's law: O slots each held L + I cycles, so ``kv`` requests take
  ``kv max(I, (L + I) / O)`` cycles after the first one's latency L. V responses queue behind the front's K
  responses (one in-order port), so the K beats that fall inside the V window stop it for their duration. The
  port grants K before V: while the front's K requests walk, V gets only the slot-cycles K leaves free, the rest
  of the V requests follow K's last request, and the front's K requests in turn wait for the slots V holds
  (:func:`_contention`). The output leaves ``pv_latency`` cycles after the last V beat (plus the collector's
  hand-over, 2 cycles).
* **period**: with two queries in flight the next hand-off waits for the later of the two, so the expected period
  is ``rho max(F2, B) + (1 - rho) max(F1, B)`` (F1, F2: the front with one or two passes); with one query in
  flight it is their sum.

Per layer: the first job's Q latency and front (alone on the port), ``jobs - 1`` periods, and the last job's back
(no next front to share the port with) with the importance block's last answer. Between layers the boundary top-k
reads the token and head importance (``ceil(n/S)`` beats each, once the importance block has answered the last
add_head) and selects the survivors (the pass's measured top-k cycles, or the engine's expectation). A generation
step (one job per alive head) has few periods per layer, so these per-layer and per-boundary terms weigh as much
as the periods there.

The expected number of K runs assumes pruning removes tokens evenly at random over the positions: of ``n`` alive
tokens out of ``n0``, ``n - n (n - 1) / n0`` runs on average (one per alive token, less the expected number of
alive neighbours). No constant here is fitted: every latency comes from the arch (the RTL's pipeline depths,
checked against sim/contract by tests/test_spatten_top_analytical.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from attnforge.sim.contract.depths import (
    SKID_LATENCY,
    SP_BACK_SLICES,
    SP_DESC_REG,
    SP_IMP_SLICES,
    SP_Q_REQ_REG,
    sp_boundary_tail,
)
from attnforge.sim.contract.memport import MemTiming
from attnforge.sim.contract.spatten_fx import SpattenFx
from attnforge.sim.contract.spatten_top import SpattenTopCfg
from attnforge.sim.specs.arch import Arch, SpattenArch, SpattenTop
from attnforge.sim.specs.errors import SpecError

#: Cycles from the hand-off to the front's K request (query taken from the Q buffer, then KREQ).
FRONT_START = 2
#: Cycles the V collector takes from a row's last beat to handing it to prob x V (fill, then the vmem beat).
COLLECT = 2


@dataclass(frozen=True)
class TopLayer:
    """One layer as the top runs it: alive tokens and heads, V rows kept per query, the fraction of jobs that
    refetch LSBs and the local-V top-k's expected cycles per job (first input to last output)."""

    tokens: int
    heads: int
    kv: int
    refetch: float
    topk_cycles: float
    #: query rows per head (the last ``queries`` alive tokens): None = every alive token (an encoder layer), 1 = a
    #: generation step; each (head, query row) is one job through the pipeline
    queries: int | None = None
    #: cycles of the boundary top-k before this layer (first input to last output), on the token list and on the
    #: head list; None = the engine's expectation on Gaussian rows (:func:`_boundary`)
    boundary_topk: tuple[float | None, float | None] = (None, None)
    #: a carried generation iteration's first layer: the context its token list restarts from (the newest token
    #: kept, the top ``tokens - 1`` of the other ``restart - 1`` by importance; heads restart whole)
    restart: int | None = None
    #: a later layer that keeps the alive list's last token outside its token top-k (the descriptor's ``carry``)
    keep_last: bool = False

    @property
    def n_queries(self) -> int:
        return self.tokens if self.queries is None else self.queries


def top_section(arch: Arch) -> tuple[SpattenArch, SpattenTop]:
    """The arch and its ``top`` section, or one SpecError (a paper arch has no RTL instance to time)."""
    if not isinstance(arch, SpattenArch) or arch.top is None:
        raise SpecError(f"arch {arch.name}", "describes no spatten-top instance (no `top` section)",
                        ["spatten-top", "spatten-top-small"])
    return arch, arch.top


def instance_fx(arch: Arch) -> SpattenFx:
    """The datapath sizes of the instance: lanes = Q x K multipliers, S = softmax lanes (lanes / min_d)."""
    a, t = top_section(arch)
    lanes = a.spatten.qk_multipliers
    return SpattenFx(lanes=lanes, min_d=max(1, lanes // a.spatten.softmax_lanes), max_d=t.max_d, max_n=t.max_n)


def arch_fields(cfg: SpattenTopCfg, timing: MemTiming) -> dict[str, object]:
    """The arch fields of a ``spatten-top`` instance, derived from its RTL parameters and the memory model: what
    the presets hold (tests/test_spatten_top_analytical.py checks them) and what :func:`arch_for` overrides.

    Latencies are the contract's pipeline depths: after the last K beat of a pass the decision comes
    ``2 nbS + softmax_latency + qk_tree_pipe + decision_latency + 4`` cycles later (the exponent and normalize
    passes, the Q x K tree and its 4 registers -- converter, product, collector, tap -- the two registered stream
    slices of the front (``SP_FRONT_SLICES``, converter to Q x K and Q x K to the softmax), the softmax's fixed
    cycles and the max tree), prob x V's output ``PV_MUL_PIPE + 1 + pv_tree_pipe`` after its last V beat."""
    from attnforge.sim.contract import PV_MUL_PIPE, decision_latency, pv_tree_pipe, qk_tree_pipe
    from attnforge.sim.contract.depths import SKID_LATENCY, SP_FRONT_SLICES
    from attnforge.sim.spatten.cycle_model import softmax_latency

    fx = cfg.fx
    word = fx.max_d * max(fx.word_bits, fx.v_bits) / 8
    return {
        "spatten.qk_multipliers": fx.lanes, "spatten.pv_multipliers": fx.s * fx.max_d,
        "spatten.softmax_lanes": fx.s, "spatten.topk_comparators": fx.s, "spatten.softmax_passes": 3,
        "spatten.qk_latency_cycles": qk_tree_pipe(fx) + 4 + SP_FRONT_SLICES * SKID_LATENCY,
        "spatten.softmax_latency_cycles": softmax_latency(fx),
        "spatten.requant_latency_cycles": decision_latency(fx), "spatten.pv_latency_cycles": PV_MUL_PIPE + 1 + pv_tree_pipe(fx),
        "dram.bandwidth_gib_s": word / timing.interval * 1e9 / 2**30,
        "top.max_d": fx.max_d, "top.max_n": fx.max_n, "top.max_heads": cfg.max_heads,
        "top.max_layers": cfg.max_layers, "top.mem_latency_cycles": timing.latency,
        "top.mem_outstanding": timing.outstanding, "top.mem_interval_cycles": timing.interval,
    }


def arch_for(cfg: SpattenTopCfg, timing: MemTiming) -> Arch:
    """The ``spatten-top`` preset at another instance and memory model (e.g. a regression's parameters)."""
    from attnforge.sim.specs.arch import load_arch

    return load_arch("spatten-top", arch_fields(cfg, timing))


def check_instance(arch: Arch, *, d: int, tokens: int, heads: int, layers: int) -> None:
    """What the top cannot run, refused in one line: a head dimension its Q x K tree has no tap for (a power of
    two from ``min_d`` to ``max_d``; one below ``max_d`` runs at ``max_d``'s cost, one key per beat with the
    query's upper lanes zeroed), more tokens, heads or layers than its accumulators hold."""
    _, t = top_section(arch)
    fx = instance_fx(arch)
    taps = [1 << i for i in range(fx.max_d.bit_length()) if fx.min_d <= 1 << i]
    if d not in taps:
        raise SpecError("d_head", f"{d}: arch {arch.name}'s Q x K tree taps head dimensions {taps} only", taps)
    for name, got, most, field in (("tokens", tokens, t.max_n, "max_n"), ("heads", heads, t.max_heads, "max_heads"),
                                   ("layers", layers, t.max_layers, "max_layers")):
        if not 1 <= got <= most:
            raise SpecError(name, f"{got} outside 1..{most} (arch {arch.name} top.{field})", f"1..{most}")


def expected_runs(n: float, n0: float) -> float:
    """Runs of consecutive alive tokens among ``n`` of ``n0`` positions chosen evenly at random."""
    return max(1.0, n - n * (n - 1) / max(n0, 1.0)) if n < n0 else 1.0


@dataclass(frozen=True)
class _Port:
    latency: float
    outstanding: float
    interval: float

    def one_beat(self) -> float:
        """Cycles per one-beat request in a long stream: the beat interval, or Little's law over the slots."""
        return max(self.interval, (self.latency + self.interval) / self.outstanding)


def _run_interval(mean_run: float, slot: float) -> float:
    """Expected cycles between two K requests while the walk and the slots both bound them: a request needs its
    run walked (``r`` cycles, one alive token each, after the previous request went out) and a free slot (one
    frees every ``slot`` cycles when all O are busy), so E[max(r, slot)]. Run lengths are geometric with mean
    ``mean_run`` (tokens pruned evenly at random: each alive token's neighbour is alive independently), which
    gives ``slot P(r <= m) + (1 - p)^m (m + 1/p)`` with ``p = 1/mean_run`` and ``m = floor(slot)``."""
    p = 1.0 / max(mean_run, 1.0)
    m = np.floor(slot)
    tail = (1.0 - p) ** m
    return float(slot * (1.0 - tail) + tail * (m + 1.0 / p))


def _k_requests(p: _Port, n: float, runs: float, max_len: int) -> tuple[float, float, float]:
    """The K request walk of one pass: (cycles from its start to its last request, the runs, a run's slot
    hold ``L + r I``). Requests are :func:`_run_interval` apart; a single run is walked whole first."""
    runs = max(runs, np.ceil(n / max_len))
    r = n / runs
    hold = p.latency + r * p.interval  # a run's slot: its latency and its beats
    span = runs * (_run_interval(r, hold / p.outstanding) if runs > 1 else r)
    return float(span), float(runs), float(hold)


def _k_pass(p: _Port, n: float, runs: float, max_len: int) -> float:
    """Cycles from the K request walk's start to the pass's last K beat: the later of the request chain (one
    request per run, :func:`_run_interval` apart, the last one's latency and beats after it) and the beats (one
    per I after the first run's latency). A single run is walked whole, then fetched: ``n + L + n I``."""
    span, runs, hold = _k_requests(p, n, runs, max_len)
    beats = n / runs + p.latency + n * p.interval
    return float(max(span + hold, beats)) + 1


def _released_in_walk(mean_run: float, slot: float) -> float:
    """Expected V grants per K request while K is slot-bound: a run of ``r`` tokens is walked ``r - 1`` cycles
    after the previous K grant, and a slot released in that time goes to V (K is not asking). Releases come one
    per ``slot`` cycles at times set by earlier grants, taken as random: ``E[1 - exp(-(r - 1) / slot)]`` over
    geometric run lengths of mean ``mean_run``, ``sum_k p (1 - p)^(k-1) (1 - exp(-(k-1)/slot))`` in closed form
    ``1 - p / (1 - (1 - p) exp(-1/slot))``."""
    p = 1.0 / max(mean_run, 1.0)
    return float(1.0 - p / (1.0 - (1.0 - p) * np.exp(-1.0 / max(slot, 1e-9))))


def _contention(p: _Port, kv: float, v_first: float, k0: float, span: float, runs: float,
                hold: float) -> tuple[float, float]:
    """The back's V requests against the front's K request walk (K from ``k0`` for ``span`` cycles, ``runs``
    requests each holding a slot ``hold`` cycles; V's first request at ``v_first``): (V requests granted while
    K walks, K's request span with them). The port grants K before V, so V gets only the slot-cycles K leaves
    free over the overlap (``O`` per cycle, less K's share), each V request holding one ``L + I`` cycles, or,
    where K is slot-bound and leaves none, the slots released while K walks a run (:func:`_released_in_walk`),
    whichever gives more. Those
    V slots are then missing to the K requests of the overlap: each waits for its run's walk or a free slot,
    whichever is later (:func:`_run_interval`), and a slot now frees every ``(hold + V slot-cycles per run) / O``
    cycles instead of ``hold / O``."""
    overlap = max(0.0, k0 + span - max(v_first, k0))
    if overlap <= 0.0 or runs <= 1:
        return 0.0, span
    v_hold = p.latency + p.interval
    free = overlap * p.outstanding - runs * hold * overlap / span
    runs_ov = runs * overlap / span
    r = (hold - p.latency) / p.interval  # a run's tokens
    fit = min(kv, max(max(0.0, free) / v_hold, runs_ov * _released_in_walk(r, hold / p.outstanding)))
    base = _run_interval(r, hold / p.outstanding)
    shared = _run_interval(r, (hold + fit * v_hold / runs_ov) / p.outstanding)
    return fit, span + runs_ov * (shared - base)


def _layer(a: SpattenArch, t: SpattenTop, lay: TopLayer, n0: int, max_len: int) -> dict[str, float]:
    """Expected cycles of one layer's RUN (first Q request to the last importance answer) and its parts."""
    m = a.spatten
    p = _Port(t.mem_latency_cycles, t.mem_outstanding, t.mem_interval_cycles)
    n, kv, rho = float(lay.tokens), float(lay.kv), float(lay.refetch)
    nbs = np.ceil(n / m.softmax_lanes)
    runs0 = expected_runs(n, n0)
    kpass = _k_pass(p, n, runs0, max_len)
    span, runs, hold = _k_requests(p, n, runs0, max_len)
    after_k = (m.softmax_passes - 1) * nbs + m.qk_latency_cycles + m.softmax_latency_cycles + m.requant_latency_cycles
    # the top-k's first output row leaves topk - (nbS - 1) cycles after its first input (H + 1), its output slice
    # one cycle later (SP_BACK_SLICES), its V request the cycle after, the beat L later
    v_start = lay.topk_cycles - nbs + 3 + SP_BACK_SLICES * SKID_LATENCY + p.latency
    v_time = kv * p.one_beat()
    fit, span_c = _contention(p, kv, v_start - p.latency, FRONT_START, span, runs, hold)
    f1 = FRONT_START + kpass + after_k  # alone (a layer's first job)
    f2 = f1 + 1 + kpass + after_k
    kpass_c = kpass + span_c - span if span_c + hold + 1 > kpass else kpass
    f1c = FRONT_START + kpass_c + after_k  # beside a back's V requests
    f2c = f1c + 1 + kpass + after_k
    k_end = FRONT_START + kpass_c
    back_tail = COLLECT + m.pv_latency_cycles + 1
    blocked = min(n * p.interval, max(0.0, k_end - v_start))  # the front's K beats inside the V window
    # V requests that did not fit beside K's follow its last request, one per one_beat
    v_end = FRONT_START + span_c + (kv - fit) * p.one_beat() if fit < kv else 0.0
    back = max(v_start + v_time + blocked, v_end + p.latency) + back_tail
    last = v_start + v_time + back_tail + 2  # no next front; the importance block answers add_head
    if t.queries_in_flight == 2:
        period = rho * max(f2c, back) + (1 - rho) * max(f1c, back)
    else:
        period = rho * f2 + (1 - rho) * f1 + back - blocked  # no next front shares the port
    jobs = float(lay.n_queries * lay.heads)
    first = SP_Q_REQ_REG + 1 + p.latency + 1 + rho * f2 + (1 - rho) * f1  # the first Q request waits its register
    return {"cycles": first + (jobs - 1) * period + last, "period": period, "front": f1c, "back": back,
            "memory_beats": jobs * (n * (1 + rho) + kv + 1), "jobs": jobs}


def _boundary(a: SpattenArch, t: SpattenTop, prev: TopLayer, lay: TopLayer) -> float:
    """Layer boundary, from the descriptor's handshake to RUN's first cycle: per list (tokens, then heads) 1 cycle
    when nothing is pruned, else the importance read-out's first beat, the top-k and its answer. The top-k's
    cycles are the layer's measured ones (``lay.boundary_topk``) or the engine's expectation on the previous alive
    count (:func:`attnforge.sim.spatten.topk_cycles.engine_cycles`).

    The first read-out waits for the importance block: the previous layer's last add_head is answered ``3 +
    log2(max_d)`` cycles after its beat (the head path's adder tree is ``log2 max_d`` registered levels) and the
    block takes a beat the cycle after, while the controller reaches DONE 2 cycles after that beat and IDLE, the
    next descriptor, CHECK (``SP_DESC_REG``) and BOUND 1 cycle each: the read starts ``log2(max_d) + 1`` cycles
    after the descriptor's handshake at the earliest. The head list's read-out follows the token top-k, which takes
    longer than the token read-out's answer, so it does not wait. Each read beat reaches the block through its
    input slice (``SP_IMP_SLICES``) and leaves through its gather register (``IMP_GATHER_PIPE``)."""
    from attnforge.sim.spatten.topk_cycles import engine_cycles

    c = a.spatten.topk_comparators
    levels = t.max_d.bit_length() - 1
    out, waited = 1.0 + SP_DESC_REG, False  # BOUND's first cycle, after the descriptor's CHECK cycle
    if lay.restart is not None:
        pairs = ((lay.tokens - 1, lay.restart - 1, lay.boundary_topk[0]), (lay.heads, lay.heads, None))
    else:
        last = int(lay.keep_last)
        pairs = ((lay.tokens - last, prev.tokens - last, lay.boundary_topk[0]),
                 (lay.heads, prev.heads, lay.boundary_topk[1]))
    for keep, had, measured in pairs:
        if keep >= had:
            out += 1.0
            continue
        if not waited:
            out += max(0.0, levels - (out - 1.0))
            waited = True
        if measured is None:
            sel, filt, _ = engine_cycles(had, keep, c, c)
            measured = sel + filt
        # the read beats pass the importance input slice, then the contract's boundary tail (the block's gather
        # register, the top-k's input slice, the list compaction's pick register)
        out += SP_IMP_SLICES * SKID_LATENCY + measured + sp_boundary_tail()
    return out


def pass_cycles(arch: Arch, layers: Sequence[TopLayer], *, tokens: int | None = None,
                max_len: int = 255) -> dict[str, object]:
    """Whole-pass cycles of the top (descriptor handshake of layer 0 to the last answer) and per-layer parts;
    ``tokens``: the sequence's length (default: the first layer's alive tokens), over which pruned positions
    break the K runs; ``max_len``: the longest burst the port takes (``2**len_bits - 1``)."""
    a, t = top_section(arch)
    if not layers:
        raise SpecError("layers", "a pass needs at least one layer")
    n0 = tokens or layers[0].tokens
    per = []
    for lay in layers:  # a carried iteration's context is the sequence its pruned positions break runs of
        n0 = lay.restart or n0
        per.append(_layer(a, t, lay, n0, max_len))
    total = 2.0 + SP_DESC_REG  # CHECK, CLEAR, then RUN
    for i, part in enumerate(per):
        total += part["cycles"] + 1.0  # DONE -> IDLE
        if i:
            total += _boundary(a, t, layers[i - 1], layers[i])
    beats = sum(p["memory_beats"] for p in per)
    return {"cycles": total, "layers": per, "memory_beats": beats, "memory_cycles": beats * t.mem_interval_cycles}


def score_std(q: np.ndarray, k: np.ndarray) -> float:
    """Mean spread (std over the keys) of a row's scores Q.K / sqrt(D): how peaked the softmax rows are, which
    sets how many quantized probabilities tie in the top-k engine (the same measure as the pipeline's
    :func:`attnforge.sim.spatten.cycle_run.workload_score_std`)."""
    s = np.einsum("hpe,hme->hpm", q, k) / np.sqrt(q.shape[-1])
    return float(s.std(axis=-1).mean())


def layers_from_run(run: object, arch: Arch, *, measured_topk: bool = True) -> list[TopLayer]:
    """The layers of a golden pass (:class:`attnforge.sim.spatten.top_golden.TopRun`) as the analytical model
    takes them: the descriptors' kept counts and two data-dependent inputs measured on the pass's tensors as the
    golden model sees them, as the paper model takes its refetch rate: the fraction of (head, query) jobs that
    refetched LSBs, and the local-V top-k's cycles per job -- the mean of the engine's exact cycle formula
    (:func:`attnforge.sim.spatten.topk_golden.hw_topk`) over the layer's probability rows, since the quick-select
    rounds depend on the rows' values. ``measured_topk=False`` takes instead the engine's expectation on Gaussian
    score rows of the layer's measured spread (:func:`attnforge.sim.spatten.topk_cycles.engine_cycles`), which
    real attention rows exceed (docs/spatten.md §Three fidelities)."""
    from attnforge.sim.spatten.topk_cycles import engine_cycles
    from attnforge.sim.spatten.topk_golden import hw_topk

    a, _ = top_section(arch)
    c = a.spatten.topk_comparators
    out = []
    for lr in run.layers:  # type: ignore[attr-defined]
        n, kv = int(lr.alive.size), int(lr.cfg.kv)
        if measured_topk:
            rows = lr.probs.reshape(-1, n)
            topk = float(np.mean([hw_topk(r.tolist(), kv, c).cycles for r in rows]))
        else:
            img = lr.image
            std = score_std(img.q * img.scale_q, img.k * img.scale_k)
            sel, filt, _ = engine_cycles(n, kv, c, c, None, (round(std, 3),))
            topk = sel + filt
        bound = tuple(None if tk is None else float(tk.cycles) for tk in (lr.token_topk, lr.head_topk))
        out.append(TopLayer(n, int(lr.heads.size), kv, float(np.mean(lr.refetch)), topk, lr.cfg.n_queries,
                            bound if measured_topk else (None, None), lr.cfg.restart, lr.cfg.keep_last))
    return out


def sequence_length(run: object) -> int:
    """Tokens of a golden pass's sequence (the importance accumulators hold one per original position)."""
    return int(run.layers[0].token_imp.size)  # type: ignore[attr-defined]


def analytical_top_cycles(run: object, cfg: SpattenTopCfg, timing: MemTiming, refusals: int = 0) -> float:
    """The analytical model's cycles for a golden pass on an instance (what a regress row's
    ``analytical_cycles`` holds): the arch of that instance (:func:`arch_for`), the pass's layers
    (:func:`layers_from_run`), and 2 + ``SP_DESC_REG`` cycles per refused descriptor before it (IDLE -> CHECK ->
    ERR -> IDLE)."""
    arch = arch_for(cfg, timing)
    res = pass_cycles(arch, layers_from_run(run, arch), tokens=sequence_length(run), max_len=(1 << cfg.len_bits) - 1)
    return float(res["cycles"]) + (2.0 + SP_DESC_REG) * refusals  # type: ignore[arg-type]


def top_schedule(arch: Arch, *, model: object, m: np.ndarray, p: np.ndarray, batch: np.ndarray, tok: np.ndarray,
                 heads: np.ndarray, v_ratio: float, refetch: object, decode: bool, causal: bool) -> object:
    """The analytical engine's Schedule for an arch with a ``top`` section (called by mappings/spatten.py's
    builder): one stage per layer whose phase lasts the layer's cycles (:func:`pass_cycles`), at every point of
    the sweep, times the batch (one sequence per pass). Without a golden run the data-dependent inputs are the
    policy's: its refetch rate per layer (``refetch(keys, layer)``) and the top-k engine's expectation on
    Gaussian score rows. K/V/Q beats are the stage's DRAM traffic (one ``max_d``-wide word each)."""
    from attnforge.sim.analytical.schedule import DRAM_BYTES, Actions, Phase, Schedule, Stage
    from attnforge.sim.spatten.topk_cycles import engine_cycles

    a, t = top_section(arch)
    if decode or causal or np.any(np.asarray(p) != np.asarray(m)):
        raise SpecError("--workload", "spatten-top runs encoder passes (prefill, no causal mask, P = M)")
    mdl = model
    d = int(mdl.d_head)  # type: ignore[attr-defined]
    n_layers = int(mdl.layers)  # type: ignore[attr-defined]
    check_instance(arch, d=d, tokens=int(np.max(m)), heads=int(np.max(heads)), layers=n_layers)
    c = a.spatten.topk_comparators
    word = t.max_d * 12 / 8
    shape = np.shape(m)
    per_layer = np.zeros((n_layers, *shape))
    beats = np.zeros((n_layers, *shape))
    macs_qk, macs_pv, elems = (np.zeros(shape) for _ in range(3))
    for idx in np.ndindex(shape) if shape else [()]:
        lays = []
        for li in range(n_layers):
            n = int(np.asarray(tok[li])[idx])
            kv = max(1, int(np.floor(n * (1.0 - v_ratio) + 1e-9)))
            rho = float(np.asarray(refetch(float(n), li)))  # type: ignore[operator]
            sel, filt, _ = engine_cycles(n, kv, c, c)
            lays.append(TopLayer(n, int(heads[li]), kv, rho, sel + filt))
        res = pass_cycles(arch, lays, tokens=int(np.asarray(m)[idx]))
        for li, (lay, part) in enumerate(zip(lays, res["layers"], strict=True)):  # type: ignore[arg-type]
            per_layer[(li, *idx)] = part["cycles"] + (res["cycles"] - sum(q["cycles"] for q in res["layers"])) / n_layers  # type: ignore[index,union-attr]
            beats[(li, *idx)] = part["memory_beats"]
            jobs = lay.tokens * lay.heads
            macs_qk[idx] += jobs * lay.tokens * d * (1 + lay.refetch)
            macs_pv[idx] += jobs * lay.kv * d
            elems[idx] += jobs * lay.tokens * (1 + lay.refetch)
    b = np.asarray(batch, dtype=np.float64)
    stages = [Stage(f"L{li:02d}", [Phase("pipeline", {"top": b * per_layer[li]})], b * beats[li] * word)
              for li in range(n_layers)]
    actions = Actions()
    actions.add("qk", "mac", b * macs_qk)
    actions.add("pv", "mac", b * macs_pv)
    actions.add("softmax", "element", b * elems)
    actions.add("fetcher", "byte", b * beats.sum(axis=0) * word)
    actions.add(*DRAM_BYTES, b * beats.sum(axis=0) * word)
    total = b * per_layer.sum(axis=0)
    busy = {"qk": b * macs_qk / (a.spatten.qk_multipliers), "softmax": b * a.spatten.softmax_passes * elems /
            a.spatten.softmax_lanes, "pv": b * macs_pv / a.spatten.pv_multipliers}
    return Schedule(mapping="spatten-top", cascade="spatten", passes=1, stages=stages, busy=busy,
                    useful=dict(busy), actions=actions, flops=2 * b * (macs_qk + macs_pv),
                    compulsory_dram_bytes=b * beats.sum(axis=0) * word, tiles={},
                    extra={"top_cycles": total}, layers=n_layers)
