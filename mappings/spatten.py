"""SpAtten as a schedule builder: pruned, quantized, one-query-at-a-time pipeline -> the shared engine's Schedule.

Why a builder and not a separate simulator: the engine (sim/analytical/engine.py) already turns stages of per-array work
plus DRAM bytes into cycles and action counts into energy for every family; SpAtten only has to say what its
datapath does per layer. Per layer the builder works out, from the Policy (pruning ratios through the layer
schedule, bit widths, refetch rate), how many tokens and heads are alive, how many keys and values each query
touches and how many bytes come from DRAM, and hands :func:`attnforge.sim.spatten.occupancy.job_costs`' module occupancies
to one Stage per layer. Barriers (the end of a layer, where token/head top-k decide the next layer's fetches)
go to a "latency" stage. The Policy comes with the Scenario (its default is the Accelerator's ``policy``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from attnforge.mappings.catalog import Accelerator
from attnforge.mappings.shape import Shape
from attnforge.sim.analytical.schedule import Actions, Num, Phase, Schedule, Stage
from attnforge.sim.memory import dram
from attnforge.sim.spatten.algorithm import synthetic_refetch_rate
from attnforge.sim.spatten.occupancy import JobCost, job_costs, port_bytes_per_cycle
from attnforge.sim.spatten.pruning import kept_counts, layer_ratios, query_candidates
from attnforge.sim.spatten.stalls import boundary_cycles, head_switch_cycles, resident_heads
from attnforge.sim.spatten.topk_algorithm import expected_topk_v
from attnforge.sim.specs.arch import Arch, SpattenArch
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.spatten_policy import Policy, policy_for
from attnforge.workloads import Model


def refetch_rate(pol: Policy, keys: Num, d: int, layer: int | None = None) -> Num:
    """Fraction of rows that refetch LSBs: the policy's measured rate of this layer, or its one rate, else measured
    by the golden model per key length."""
    if not (pol.quantize and pol.progressive and pol.k_lsb):
        return np.zeros_like(np.asarray(keys, dtype=np.float64))
    if pol.lsb_refetch_layers is not None and layer is not None:
        if layer >= len(pol.lsb_refetch_layers):
            raise SpecError(f"policy {pol.name}: lsb_refetch_layers", f"has {len(pol.lsb_refetch_layers)} entries, "
                            f"fewer than the model's layers")
        return np.full(np.shape(keys), pol.lsb_refetch_layers[layer], dtype=np.float64)
    if pol.lsb_refetch_rate is not None:
        return np.full(np.shape(keys), pol.lsb_refetch_rate, dtype=np.float64)
    kk = np.asarray(keys, dtype=np.int64)
    out = np.zeros(kk.shape)
    for idx in np.ndindex(kk.shape):
        out[idx] = synthetic_refetch_rate(int(kk[idx]), d=d, msb=pol.k_msb, lsb=pol.k_lsb, threshold=pol.threshold)
    return out


#: Equal-size groups of queries a causal prefill is split into: query i sees only keys 0..i, so per-query work
#: (Q x K lines, softmax, the local-V top-k) follows a ramp; 16 groups put the sum within ~3% of a per-query sum.
CAUSAL_GROUPS = 16


def _query_groups(keys: Num, causal: bool, decode: bool) -> tuple[np.ndarray, np.ndarray]:
    """Keys each query sees, per group of queries (a trailing axis), and each group's share of the queries.

    Without a mask every query sees every kept key; with the causal mask the i-th of n queries sees about
    keys * (i + 1) / n of them (pruning removes keys evenly along the sequence, so the kept ones thin out in
    proportion). Decode is one query against the whole cache, so it has no ramp."""
    kk = np.asarray(keys, dtype=np.float64)[..., None]
    if decode or not causal:
        return kk, np.ones(1)
    frac = (np.arange(CAUSAL_GROUPS) + 0.5) / CAUSAL_GROUPS
    return np.maximum(1.0, np.ceil(kk * frac - 1e-9)), np.full(CAUSAL_GROUPS, 1.0 / CAUSAL_GROUPS)


def _sram_keys(arch: SpattenArch, d: int) -> tuple[float, float]:
    """Keys one head keeps on chip: one half of the double-buffered K (and V) SRAM while the next head's K/V
    is fetched into the other, or both halves when a head needs more (the code's maxNumKey = 2048 at D = 64)."""
    whole = arch.spatten.kv_sram_bytes / (d * 12 / 8)  # stored at the datapath's 12 bits
    return whole / 2, whole


def _group_size(arch: SpattenArch, seen: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """Queries that share one pass of the streamed K/V tiles when a head's K/V exceed the SRAM (tiled mode).

    The softmax, the refetch decision and the local-V top-k need a query's whole score row, so a group of G
    queries can share a K tile only if all G rows stay on chip until their rows are complete. In tiled mode the
    K SRAM holds no resident K (the tiles pass through the V SRAM), so it becomes the score/probability buffer,
    double-buffered like before: one half (kv_sram_bytes / 2 at 12 bits a score) fills with the next group's
    rows while the current group's rows drain through softmax, top-k and prob x V. G = rows that fit in a half,
    at least 1 and at most the queries there are."""
    half_scores = arch.spatten.kv_sram_bytes / 2 / (12 / 8)
    g = np.floor(half_scores / np.maximum(seen, 1.0) + 1e-9)
    return np.clip(g, 1.0, np.maximum(queries, 1.0))


def _layer_jobs(arch: SpattenArch, pol: Policy, *, keys: Num, heads: float, m: Num, p: Num, batch: Num, d: int,
                decode: bool, causal: bool, par: int, layer: int,
                tile_past_half: bool = False) -> tuple[Num, Num, Num, JobCost, Num, Num]:
    """One layer's query jobs (a trailing axis of causal query groups): the V rows each keeps, how many jobs,
    the LSB refetch fraction, their module occupancies and DRAM bytes (:func:`job_costs`), and the K bytes that
    each head's first query waits on where no double buffer fetches them ahead (part of those DRAM bytes), and
    where the heads run tiled (per point).

    K/V residency (summarization): a head whose kept K and V fit the K/V SRAMs is fetched once and reused by
    every query. A head with more keys than the whole SRAM (or, with ``tile_past_half``, more than one half: the
    alternative the controller may take there, see :func:`build_spatten`) runs tiled: queries go in groups whose
    score rows fill one
    half of the K SRAM (:func:`_group_size`), and each K tile (and V tile) streams once per group, so streamed
    bytes are the per-query stream divided by the group size. A group fetches the V rows any of its queries
    keeps (local V pruning per query, independent choices: the union); prob x V still uses each query's own.
    Generation has one query per head, nothing to reuse."""
    queries = p if decode else np.maximum(1.0, np.floor(p * keys / m + 1e-9))  # pruned tokens leave as queries
    kq, share = _query_groups(keys, causal, decode)
    scored = query_candidates(kq, pol.query_key_keep)  # per-query key pruning (A3): fetched kq, scored fewer
    values = np.maximum(1.0, np.floor(scored * (1.0 - pol.v_ratio) + 1e-9))
    count = (batch * heads * queries)[..., None] * share
    rho = np.asarray(refetch_rate(pol, keys, d, layer), dtype=np.float64)[..., None]  # per row length, as the layer's rows
    seen = kq if pol.fetch_pruned else np.asarray(m, dtype=np.float64)[..., None] * (kq / np.asarray(keys)[..., None])
    seen_v = values if pol.fetch_pruned else seen
    waited: Num = 0.0
    reuse: Num = 1.0
    tiled: Num = np.zeros(np.shape(np.asarray(keys)), dtype=bool)
    if decode:
        fetched_k, fetched_v = seen, seen_v
    else:
        half, whole = _sram_keys(arch, d)
        total = np.asarray(keys if pol.fetch_pruned else m, dtype=np.float64)[..., None]
        q = np.asarray(queries, dtype=np.float64)[..., None]
        g = _group_size(arch, seen, q * share)
        union = 1.0 - (1.0 - seen_v / seen) ** g  # V rows kept by at least one query of the group
        tiled = total > (half if tile_past_half else whole)
        # One fetch serves several queries: a resident head's K/V all its queries, a streamed tile its group's. The
        # job is charged the shared stream's bytes and row activates divided by the queries sharing it.
        fetched_k = np.where(tiled, seen, total)
        fetched_v = np.where(tiled, seen * union, total)
        reuse = np.where(tiled, g, q)
        # Resident heads past one half: the ring allocator grants the next head's lines only once this head has
        # released them, so its K cannot be fetched ahead. Q x K reads lines as they are written, so the load is not
        # exposed whole: the head's first query runs at the K stream's pace (the keys it needs, kq of the first
        # query group) and the later queries find K on chip (build_spatten times that first query on its own).
        # Tiled heads stream continuously (the next group's first tile is issued ahead), nothing waits.
        waited = np.where((total[..., 0] > half) & ~tiled[..., 0],
                          batch * heads * seen[..., 0] * d * pol.k_bits_static / 8, 0.0)
    jc = job_costs(
        arch, count=count, keys=scored, values=values, d=d,
        k_bits=pol.k_bits_static, lsb_bits=pol.k_lsb if pol.progressive else 0, refetch=rho,
        v_bits=pol.v_bits_fetched, q_bits=pol.q_bits_fetched,
        keys_fetched=fetched_k, values_fetched=fetched_v, topk_parallelism=par, kv_reuse=reuse,
        span=np.asarray(m, dtype=np.float64)[..., None],
    )
    return values, count, rho, jc, waited, np.asarray(tiled)[..., 0] if not decode else tiled


def _first_queries(jc: JobCost, count: Num, waited: Num, batch: Num, heads: float) -> tuple[dict[str, Num], Num]:
    """Per module, the work of each head's first query where it waits on its K stream (``waited`` > 0: the
    first query group's work per query, times the layer's heads), and the layer's pipeline work without it."""
    work = jc.phase_work()
    per = np.asarray(batch, dtype=np.float64) * heads / np.maximum(np.asarray(count, dtype=np.float64)[..., 0], 1e-300)
    on = np.asarray(waited, dtype=np.float64) > 0
    first = {u: np.where(on, np.asarray(v, dtype=np.float64)[..., 0] * per, 0.0) for u, v in work.items()}
    return first, {u: _total(v) - first[u] for u, v in work.items()}


def _total(x: Num) -> Num:
    """Sum over the trailing query-group axis."""
    return np.sum(np.asarray(x, dtype=np.float64), axis=-1)


def _efficiency(jc: JobCost) -> Num:
    """The layer's achieved/peak HBM bandwidth over its query groups, weighted by the bytes each moves (the time
    the layer's traffic takes at the achieved rates, expressed as one ratio for its Stage)."""
    nbytes = np.asarray(jc.dram_bytes, dtype=np.float64)
    eff = np.broadcast_to(np.asarray(jc.dram_efficiency, dtype=np.float64), nbytes.shape)
    time = _total(nbytes / np.maximum(eff, 1e-300))
    return np.where(time > 0, _total(nbytes) / np.maximum(time, 1e-300), 1.0)


def _layer_imbalance(arch: SpattenArch, pol: Policy, jc: JobCost, *, rho: Num, heads: float, batch: Num, d: int,
                     decode: bool) -> Num:
    """The busiest channel's share over the mean for one layer under ``hbm.layer_barrier`` (each layer waits for
    its busiest channel: dram.channel_imbalance). A sequence's heads read K (and the LSBs, where they refetch) for
    the same kept tokens; in a generation step each head keeps its own V rows, in a prefill pass a head's resident
    V covers the same kept tokens as its K. Vectors per head: the layer's fetched K and V over its heads."""
    per = np.maximum(np.asarray(batch, dtype=np.float64) * heads * d, 1e-30)
    k_vec = _total(jc.k_elements) / per
    v_vec = (_total(jc.kv_elements) - _total(jc.k_elements)) / per
    kb, vb, lb = d * pol.k_bits_static / 8, d * pol.v_bits_fetched / 8, d * max(pol.k_lsb, 1) / 8
    kp, vp = float(dram.paired(d, kb)), float(dram.paired(d, vb))
    lsb_heads = heads * np.mean(np.asarray(rho, dtype=np.float64), axis=-1) if pol.progressive else 0.0
    shared = [(heads / kp, k_vec, kb * kp), (lsb_heads, k_vec, lb)]
    values = (heads / vp, v_vec, vb * vp)
    return dram.channel_imbalance(arch.hbm, shared if decode else [*shared, values], [values] if decode else [],
                                  sequences=batch)


def _barrier(arch: SpattenArch, jc: JobCost, count: Num) -> Num:
    """Cycles a layer boundary exposes beyond the modules' busy time: the last query's trip through the pipe,
    less its own turn in the busiest module (already in the busy time) and less the first K fetch, which the
    fetcher issues ahead into the free half of the K SRAM (its addresses need only the kept-token list, not Q).
    The token and head top-k run beside the pipe (paper section IV-A), so they add nothing here; where a
    summarization pass's boundary prunes, :func:`_stalls` charges the wait for them (``layer_topk_serial``)."""
    last = np.asarray(jc.latency, dtype=np.float64)[..., -1]
    n = np.maximum(np.asarray(count, dtype=np.float64)[..., -1], 1e-300)
    own = np.max(np.stack([np.broadcast_to(np.asarray(v, dtype=np.float64)[..., -1] / n, np.shape(last))
                           for v in jc.busy.values()]), axis=0)
    # the first K fetch's round trip (a contiguous region: row hits), in cycles of the HBM's 1 GHz command clock as
    # occupancy.job_costs counts it
    return np.maximum(0.0, last - own - dram.latency_ns(arch.hbm, 1.0))


def _stalls(arch: SpattenArch, pol: Policy, jc: JobCost, *, keys: Num, prev_keys: Num, heads: float, prev_heads: int,
            m: Num, batch: Num, d: int, decode: bool, par: int, first: bool, tiled: Num) -> tuple[Num, Num]:
    """A layer's head-switch and layer-boundary cycles (:mod:`attnforge.sim.spatten.stalls`), over the batch. A
    head's pipeline cycles are the layer's busiest module (or its serial query chain) over its heads; tiled heads
    stream their K/V without a head-level refill."""
    work = [_total(v) for v in jc.phase_work().values()]
    per_head = np.max(np.stack(np.broadcast_arrays(*work)), axis=0) / np.maximum(batch * heads, 1e-300)
    held = np.asarray(keys if pol.fetch_pruned else m, dtype=np.float64)  # the K a head allocates
    res = np.zeros_like(held) if decode else np.where(tiled, 0.0, resident_heads(arch, held, d))  # decode streams
    sw = head_switch_cycles(arch, head_cycles=per_head, keys=keys, heads=heads, resident=res)
    if first or decode:
        return batch * sw, np.zeros_like(np.asarray(keys, dtype=np.float64))
    bd = boundary_cycles(arch, prev_keys=prev_keys, keys=keys, prev_heads=prev_heads, heads=int(heads),
                         parallelism=par)
    return batch * sw, batch * bd


def _layer_kept(pol: Policy, mdl: Model, m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Tokens and heads kept per layer: a policy's measured per-layer schedule, else the ramp over the layers
    that prune (paper section V-A)."""
    def ratios(keep: tuple[float, ...] | None, avg: float, unpruned: float, name: str) -> np.ndarray:
        if keep is None:
            return layer_ratios(mdl.layers, avg, unpruned, name)
        if len(keep) != mdl.layers:
            raise SpecError(f"policy {pol.name}: {name}", f"has {len(keep)} entries, {mdl.name} has {mdl.layers} layers")
        return 1.0 - np.asarray(keep)

    tok = kept_counts(m.astype(np.int64), ratios(pol.token_keep, pol.token_ratio, pol.token_unpruned_fraction,
                                                  "token_keep" if pol.token_keep else "token_ratio"))
    hk = kept_counts(mdl.heads, ratios(pol.head_keep, pol.head_ratio, pol.head_unpruned_fraction,
                                       "head_keep" if pol.head_keep else "head_ratio"))
    return tok, hk


def _top_policy(pol: Policy, arch: SpattenArch) -> Policy:
    """The policy as spatten-top runs it: K always as 8 MSB + 4 LSB with the LSB refetch on flat rows (its
    hardware has no static mode), so the refetch rate follows the threshold even under a static-quant policy."""
    return pol.with_(quantize=True, progressive=True, k_msb=8, k_lsb=4)


@dataclass(frozen=True)
class _Pass:
    """What every layer of one pass shares: the hardware, the settings, the points and the kept counts."""

    arch: SpattenArch
    pol: Policy
    mdl: Model
    m: np.ndarray
    p: np.ndarray
    batch: np.ndarray
    tok: np.ndarray
    hk: np.ndarray
    decode: bool
    causal: bool
    par: int


def build_spatten(acc: Accelerator, arch: Arch, shape: Shape, policy: Policy | None = None) -> Schedule:
    """Schedule of one attention pass over all layers of ``shape.model`` (prefill: P queries; decode: 1 per step)."""
    acc.check_arch(arch)
    assert isinstance(arch, SpattenArch)  # check_arch bound a SpAtten accelerator to a SpAtten arch
    if shape.tiles:
        raise SpecError("--tile", f"{acc.name} has no tile sizes to fix (its dataflow is one query at a time)")
    mdl = shape.model
    acc.check_model(mdl)
    pol = policy or shape.policy or policy_for(acc.policy or "auto", shape.causal or mdl.causal)
    d = mdl.d_head
    decode = shape.stage == "decode"
    m = np.asarray(shape.m, dtype=np.float64)
    p = np.asarray(shape.p, dtype=np.float64)
    batch = np.asarray(shape.batch, dtype=np.float64)
    tok, hk = _layer_kept(pol, mdl, m)
    causal = bool(shape.causal)
    if arch.top is not None:  # an RTL instance of the whole accelerator: its own per-job chain through one port
        from attnforge.sim.spatten.top_analytical import top_schedule

        _check_top_request(arch, pol)
        return top_schedule(arch, model=mdl, m=m, p=p, batch=batch, tok=tok, heads=hk, v_ratio=pol.v_ratio,
                            refetch=lambda keys, li: refetch_rate(_top_policy(pol, arch), keys, d, li),
                            decode=decode, causal=causal)  # type: ignore[return-value]
    run = _Pass(arch, pol, mdl, m, p, batch, tok, hk, decode, causal,
                int(pol.topk_parallelism or arch.spatten.topk_comparators))
    half, whole = _sram_keys(arch, d)
    held = tok.astype(np.float64) if pol.fetch_pruned else np.broadcast_to(m, np.shape(tok))
    if decode or not np.any((held > half) & (held <= whole)):
        return _pass(run, tile_past_half=False, load_stages=False)
    # Heads between one half and the whole K/V SRAM can run resident (fetched once; each head's first query waits
    # on its K and the head switch on the release) or tiled (streamed once per group of queries, nothing waits).
    # Which is better turns on the achieved bandwidth, which a schedule must not depend on, so both go to the engine,
    # which takes the one with the lower energy-delay product point by point (Schedule.alternatives).
    resident = _pass(run, tile_past_half=False, load_stages=True)
    resident.alternatives = [_pass(run, tile_past_half=True, load_stages=True)]
    return resident


def _pass(run: _Pass, *, tile_past_half: bool, load_stages: bool) -> Schedule:
    """One pass's schedule, layer by layer. ``load_stages``: every layer has its stage for the heads' first queries
    (empty where nothing waits), so that two ways of running the same points have the same structure."""
    arch, pol, mdl, m, p, batch, par = run.arch, run.pol, run.mdl, run.m, run.p, run.batch, run.par
    d, decode = mdl.d_head, run.decode
    stages: list[Stage] = []
    busy: dict[str, Num] = {a: 0.0 for a in ("qk", "softmax", "topk", "pv")}
    useful: dict[str, Num] = {a: 0.0 for a in ("qk", "softmax", "pv")}
    actions = Actions()
    tot: dict[str, Num] = {}  # sums over the layers (flops, bytes, rows, kept fractions, barrier latency)
    # Causal prefill: query i scores i + 1 keys, so the dense reference is half the square (plus the diagonal).
    dense_pm = p * (m + 1) / 2 if run.causal and not decode else p * m
    prev_keys, prev_heads = m, mdl.heads
    for li in range(mdl.layers):
        keys, heads = run.tok[li].astype(np.float64), float(run.hk[li])
        values, count, rho, jc, waited, tiled = _layer_jobs(
            arch, pol, keys=keys, heads=heads, m=m, p=p, batch=batch, d=d, decode=decode, causal=run.causal,
            par=par, layer=li, tile_past_half=tile_past_half)
        # The token/head top-k that decided this layer's survivors: counted as comparisons (energy) here; as time
        # only at a summarization pass's pruning boundary (_stalls).
        _, cmp_tok = expected_topk_v(prev_keys.astype(np.int64), keys.astype(np.int64), par)
        _, cmp_head = expected_topk_v(np.asarray(prev_heads), np.asarray(int(heads)), par)
        eff = _efficiency(jc)
        if arch.hbm.layer_barrier:
            eff = eff / _layer_imbalance(arch, pol, jc, rho=rho, heads=heads, batch=batch, d=d, decode=decode)
        first, rest = _first_queries(jc, count, waited, batch, heads)
        ports = port_bytes_per_cycle(arch)
        stages.append(Stage(f"L{li:02d}", [Phase("pipeline", rest)], _total(jc.dram_bytes) - waited, eff, ports))
        if load_stages or np.any(np.asarray(waited) > 0):  # each head's first query against its K stream
            stages.append(Stage(f"L{li:02d}.load", [Phase("first query", first)], waited, eff, ports))
        for a, v in jc.busy.items():
            busy[a] = busy[a] + _total(v)
        for a, v in jc.useful.items():
            useful[a] = useful[a] + _total(v)
        jc.charge(actions, topk_extra=batch * (cmp_tok + cmp_head), total=_total)
        sw, bd = _stalls(arch, pol, jc, keys=keys, prev_keys=prev_keys, heads=heads, prev_heads=prev_heads, m=m,
                         batch=batch, d=d, decode=decode, par=par, first=li == 0, tiled=tiled)
        layer = _layer_totals(jc, count=count, rho=rho, keys=keys, values=values, m=m)
        layer.update(latency=batch * _barrier(arch, jc, count), head_switch=sw, boundary=bd,
                     dense_flops=batch * mdl.heads * 4 * d * dense_pm,
                     tiled_layers=np.asarray(tiled, dtype=np.float64))
        for k, v in layer.items():
            tot[k] = tot.get(k, 0.0) + v
        prev_keys, prev_heads = keys, int(heads)
    stages.append(Stage("latency", [Phase("barriers", {}, exposed=tot["latency"]),
                                    Phase("head switches", {}, exposed=tot["head_switch"]),
                                    Phase("layer top-k", {}, exposed=tot["boundary"])], 0.0))
    extra = _extra(tot, layers=mdl.layers, heads_kept=float(np.mean(run.hk)) / mdl.heads, par=par)
    return Schedule(mapping=f"spatten:{pol.name}", cascade="spatten", passes=1, stages=stages, busy=busy,
                    useful=useful, actions=actions, flops=tot["flops"],
                    compulsory_dram_bytes=tot["bytes"] - tot["lsb_bytes"], tiles={}, extra=extra, layers=mdl.layers)


def _check_top_request(arch: SpattenArch, pol: Policy) -> None:
    """What spatten-top's RTL cannot do, refused by name rather than ignored."""
    if pol.query_key_keep < 1.0:
        raise SpecError(f"policy {pol.name}: query_key_keep", "spatten-top's RTL has no per-query key selection")
    if arch.hbm.layer_barrier:
        raise SpecError("hbm.layer_barrier", "spatten-top's memory is its own port (the arch's top.memory), not the "
                        "HBM model this barrier acts on", ["false"])


def _layer_totals(jc: JobCost, *, count: Num, rho: Num, keys: Num, values: Num, m: Num) -> dict[str, Num]:
    """One layer's jobs summed into the run's counters (FLOPs, bytes by kind, rows, requests, kept fractions)."""
    lay_bytes = _total(jc.dram_bytes)
    return {"flops": 2 * (_total(jc.macs_qk) + _total(jc.macs_pv)), "lsb_bytes": _total(jc.lsb_bytes),
            "bytes": lay_bytes, "kv_bytes": lay_bytes - _total(jc.io_bytes),
            "kv_elements": _total(jc.kv_elements), "k_bytes": _total(jc.k_bytes),
            "k_elements": _total(jc.k_elements), "rows": _total(count), "refetch_rows": _total(count * rho),
            "requests": _total(jc.dram_requests), "activates": _total(jc.dram_activates),
            "kept_tok": keys / m,
            "kept_val": _total(values * count) / np.maximum(_total(count), 1e-300) / m}


def _extra(tot: dict[str, Num], *, layers: int, heads_kept: float, par: int) -> dict[str, Num]:
    """The schedule's SpAtten-specific results from the run's counters (per-layer means where a fraction)."""
    return {
        "tokens_kept": tot["kept_tok"] / layers,
        "heads_kept": heads_kept,
        "values_kept": tot["kept_val"] / layers,
        "lsb_refetch_rate": tot["refetch_rows"] / tot["rows"],
        "lsb_dram_bytes": tot["lsb_bytes"],
        # K and V alone (MSBs, LSBs, V rows), and their elements: what pruning and quantization reduce, counted
        # apart from Q in and the output (docs/spatten.md §DRAM reduction)
        "kv_dram_bytes": tot["kv_bytes"],
        "kv_elements": tot["kv_elements"],
        "k_dram_bytes": tot["k_bytes"],
        "k_elements": tot["k_elements"],
        "dense_flops": tot["dense_flops"],
        # 32-byte HBM requests and row activates of the whole run: its row-hit rate, which sets the achieved
        # bandwidth (sim/memory/dram.py)
        "dram_requests": tot["requests"],
        "dram_activates": tot["activates"],
        "topk_parallelism": par,
        "head_switch_cycles": tot["head_switch"],
        "boundary_cycles": tot["boundary"],
        "barrier_cycles": tot["latency"],
        # layers whose heads stream K/V in query groups instead of holding them (docs/spatten.md §Scaling)
        "tiled_layers": tot["tiled_layers"],
    }
