"""One routine that turns any Mapping + Arch + shape into a Schedule (no per-dataflow copies).

Shapes may be numpy arrays: every formula broadcasts, so a sweep over sequence lengths is one call. The only
per-point search (the query block that fits the buffer) is a small cached scalar function, vectorised.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from attnforge.mappings.spec import Mapping
from attnforge.sim.analytical.cascade import M_RANKS, Cascade, Einsum, get_cascade
from attnforge.sim.analytical.schedule import Num, Phase, Schedule, Stage
from attnforge.sim.specs.arch import Arch
from attnforge.sim.specs.errors import SpecError


def _ceil_div(a: Num, b: Num) -> Num:
    return -(-np.asarray(a) // b)


def _tile_counts(p_tiles: Num, m1: Num) -> dict[str, Num]:
    """How often an operand is re-read from the buffer for each rank it lacks: once per tile of that rank."""
    return {"p": p_tiles, "m": m1, "m1": m1, "m0": 1, "e": 1, "f": 1}


@lru_cache(maxsize=65536)
def _query_block(
    p: int, p0: int, fixed_words: float, fiber_words: float, buffer_words: float, full_spill_above: float, given: int
) -> tuple[int, float]:
    """Largest query block R (a multiple of P0 dividing the padded P) whose resident state fits the buffer.

    Returns (R, spilled fraction of the M-fibers). Raises when not even the smallest block's fixed state fits.
    """
    p_tiles = -(-p // p0)
    unit = min(p, p0)
    if given:
        if (given % p0 and given != p) or -(-p // given) * given < p:
            return -2, 0.0
        cands = [given]
    else:
        cands = [d * p0 if p >= p0 else p for d in range(p_tiles, 0, -1) if p_tiles % d == 0]
    for r in cands:
        if r * (fixed_words + fiber_words) <= buffer_words:
            return r, 0.0
    r = cands[-1] if cands else unit
    room = buffer_words - r * fixed_words
    if room < 0:
        return -1, 1.0
    spill = 1.0 - room / (r * fiber_words) if fiber_words else 0.0
    if spill > full_spill_above:
        # Off-chip dataflow: the M-fibers stream through DRAM; the block only holds the fixed state.
        for r2 in cands:
            if r2 * fixed_words <= buffer_words:
                return r2, 1.0
        return r, 1.0
    return r, spill


_query_block_v = np.vectorize(_query_block, otypes=[np.int64, np.float64])


def _per_query_words(c: Cascade, m: Mapping, e_len: Num, f_len: Num, m0: int, m_len: Num) -> tuple[Num, Num]:
    """Resident words per query: Q plus buffer-placed state (fixed), and the buffer-held M-fibers (fiber)."""
    sizes = {"e": e_len, "f": f_len, "m0": m0, "m": m_len, "m1": 1, "p": 1}
    fixed: Num = e_len
    fiber: Num = 0
    for ein in c.einsums:
        if m.placement.get(ein.name, "rf") != "gb":
            continue
        if "m" in ein.ranks:
            continue  # whole M-fibers: counted as live fibers below (buffers are reused in place)
        n: Num = 1
        for r in ein.ranks:
            if r in ein.iterative:
                continue
            n = n * sizes[r]
        fixed = fixed + n
    if any(m.placement.get(e.name, "rf") == "gb" and "m" in e.ranks for e in c.einsums):
        fiber = m_len * max(1, c.live_fibers_per_query())
    return fixed, fiber


def _causal_factor(p: int, m: int, p0: int, m0: int) -> tuple[float, float]:
    """(tile fraction, element fraction) of the P x M score matrix a causal mask leaves to compute."""
    offset = m - p
    tp, tm = -(-p // p0), -(-m // m0)
    tiles = sum(min(tm, -(-min(m, (i + 1) * p0 + offset) // m0)) for i in range(tp))
    elems = sum(min(m, q + 1 + offset) for q in range(p))
    return tiles / (tp * tm), elems / (p * m)


_causal_v = np.vectorize(lru_cache(maxsize=65536)(_causal_factor), otypes=[np.float64, np.float64])


def _systolic_cycles(ein: Einsum, pad: dict[str, Num], use: dict[str, Num], rows: int, cols: int) -> Num:
    """Output-stationary matmul on a systolic array: per output tile (fold), the reduction plus skew fill/drain.

    Output ranks other than the query rank map onto the rows, queries onto the columns; each of the
    ceil(rows_extent / R) x ceil(P / C) folds takes K + R + C - 2 cycles (SCALE-Sim's OS model, to its final cycle).
    """
    row_extent: Num = 1
    for r in ein.ranks:
        if r != "p":
            row_extent = row_extent * pad[r]
    k: Num = 1
    for r in ein.reduce:  # the reduction streams through; it needs no padding
        k = k * use[r]
    folds = _ceil_div(row_extent, rows) * _ceil_div(pad["p"], cols) * pad["b"] * pad["h"]
    return folds * (k + rows + cols - 2)


def build_schedule(
    mapping: Mapping,
    arch: Arch,
    *,
    batch: Num,
    heads: int,
    p: Num,
    m: Num,
    e: int,
    f: int,
    causal: bool = False,
) -> Schedule:
    c = get_cascade(mapping.cascade)
    a2, a1 = arch.arrays["2d"], arch.arrays["1d"]
    m0, p0 = a2.rows, a2.cols
    p = np.asarray(p)
    m = np.asarray(m)
    batch = np.asarray(batch)
    p_tiles = _ceil_div(p, p0)
    m1 = _ceil_div(m, m0)
    p_pad = np.where(p >= p0, p_tiles * p0, p)  # a short query block still occupies whole columns' time
    bh = batch * heads
    pad = {"b": batch, "h": heads, "p": p_tiles * p0, "m": m1 * m0, "m1": m1, "m0": m0, "e": e, "f": f}
    use = {"b": batch, "h": heads, "p": p, "m": m, "m1": m / m0, "m0": m0, "e": e, "f": f}
    tile_frac: Num = 1.0
    elem_frac: Num = 1.0
    if causal:
        tile_frac, elem_frac = _causal_v(p, m, p0, m0)

    def scores_scale(ein: Einsum, frac: Num) -> Num:
        """A causal mask removes score-matrix work: only Einsums iterating over both keys and queries shrink."""
        its = ein.iteration_ranks
        return frac if ("p" in its and any(r in M_RANKS for r in its)) else 1.0

    busy: dict[str, Num] = {"2d": 0.0, "1d": 0.0}
    useful: dict[str, Num] = {"2d": 0.0, "1d": 0.0}
    per_einsum: dict[str, Num] = {}
    actions: dict[str, Num] = {}
    flops: Num = 0.0

    def add(key: str, val: Num) -> None:
        actions[key] = actions.get(key, 0.0) + val

    for ein in c.einsums:
        arr_name = mapping.binding.get(ein.name)
        if arr_name not in arch.arrays:
            raise SpecError(f"mapping {mapping.name}.binding.{ein.name}", f"unknown array {arr_name!r}", arch.arrays)
        arr = arch.arrays[arr_name]
        cost = arch.op_cost(arr_name, ein.op)
        cyc = mapping.op_cycles.get(ein.op, cost.cycles)
        ops_pad = ein.ops(pad) * scores_scale(ein, tile_frac)
        ops_use = ein.ops(use) * scores_scale(ein, elem_frac)
        per_einsum[ein.name] = ops_pad * cyc / arr.pes
        if arr.systolic and len(arr.dims) == 2 and ein.op == "mac" and ein.reduce:
            per_einsum[ein.name] = _systolic_cycles(ein, pad, use, arr.rows, arr.cols) * scores_scale(ein, tile_frac)
        busy[arr_name] = busy[arr_name] + per_einsum[ein.name]
        useful[arr_name] = useful[arr_name] + ops_use * cyc / arr.pes
        for act, n in cost.actions.items():
            add(f"{arr_name}.{act}", ops_use * n)
        add(f"{arr_name}.rf_read", 2 * ops_use)
        add(f"{arr_name}.rf_write", ops_use)
        flops = flops + ops_use * (2 if ein.op == "mac" else 1)

    # ---- residency, query blocks, DRAM traffic -------------------------------------------------------
    wb = arch.word_bytes
    fixed, fiber = _per_query_words(c, mapping, e, f, m0, m)
    staging = m0 * (e + f)  # one K tile and one V tile in flight
    buffer_words = (arch.buffer.bytes / wb) - staging
    given = mapping.query_block or 0
    if mapping.fiber_rows is None:
        r_blk, spill = _query_block_v(p, p0, fixed, fiber, buffer_words, mapping.full_spill_above, given)
    else:
        r_blk, _ = _query_block_v(p, p0, fixed, 0.0, buffer_words, mapping.full_spill_above, given)
        spill = np.where(mapping.fiber_rows * fiber <= buffer_words, 0.0, 1.0)
    if np.any(r_blk == -1):
        raise SpecError(
            "arch.buffer.bytes",
            f"{arch.buffer.bytes} B cannot hold the smallest tile of mapping {mapping.name} "
            f"({int((np.max(fixed) * min(p0, int(np.min(p))) + staging) * wb)} B needed for its resident state)",
        )
    if np.any(r_blk == -2):
        raise SpecError("--tile query_block", f"{given} does not tile the query length into whole {p0}-query column tiles")
    n_blocks = _ceil_div(p_pad, r_blk)
    q_words = bh * p * e
    k_words = bh * m * e
    v_words = bh * m * f
    o_words = c[c.output].output_size(use)
    kv_scale = tile_frac if causal else 1.0

    stage_of = mapping.stage_of()
    stage_words: dict[str, Num] = {s.name: 0.0 for s in mapping.stages}
    readers: dict[str, set[str]] = {}
    for ein in c.einsums:
        for o in ein.inputs:
            readers.setdefault(o.tensor, set()).add(stage_of[ein.name])
    for t, stages in readers.items():
        if t == "Q":
            for s in stages:
                stage_words[s] = stage_words[s] + q_words
        elif t in ("K", "V"):
            words = k_words if t == "K" else v_words
            for s in stages:
                stage_words[s] = stage_words[s] + words * np.maximum(1, n_blocks * kv_scale)
        elif t in stage_of:
            src = stage_of[t]
            crossing = stages - {src}
            if crossing:
                size = c[t].output_size(use) * scores_scale(c[t], elem_frac)
                stage_words[src] = stage_words[src] + size
                for s in crossing:
                    stage_words[s] = stage_words[s] + size
    stage_words[stage_of[c.output]] = stage_words[stage_of[c.output]] + o_words
    spill_words = c.spill_words(use, only=[t for t in c.crossing_tensors() if mapping.placement.get(t, "rf") == "gb"])
    spill_words = spill_words * elem_frac * spill
    spill_stage = stage_of[c.crossing_tensors()[0]] if c.crossing_tensors() else stage_of[c.output]
    stage_words[spill_stage] = stage_words[spill_stage] + spill_words
    dram_words: Num = 0.0
    for v in stage_words.values():
        dram_words = dram_words + v
    add("dram.word", dram_words)

    # ---- buffer traffic --------------------------------------------------------------------------------
    tiles = _tile_counts(p_tiles, m1)
    gb_read: Num = o_words  # outputs leave through the buffer
    gb_write: Num = dram_words - o_words  # everything fetched lands in the buffer
    for ein in c.einsums:
        for o in ein.inputs:
            if o.tensor in c.inputs:
                reuse: Num = 1
                for r in ein.iteration_ranks:
                    if r not in o.ranks:
                        reuse = reuse * tiles.get(r, 1)
                size = {"Q": q_words, "K": k_words, "V": v_words}[o.tensor]
                gb_read = gb_read + size * reuse * scores_scale(ein, tile_frac)
            elif mapping.placement.get(o.tensor, "rf") in ("gb", "dram"):
                src = c[o.tensor]
                ranks = [r for r in src.ranks if not (o.final and r in src.iterative)]
                n: Num = bh
                for r in ranks:
                    n = n * use[r]
                gb_read = gb_read + n * scores_scale(src, elem_frac)
        if mapping.placement.get(ein.name, "rf") in ("gb", "dram"):
            gb_write = gb_write + ein.output_size(use) * scores_scale(ein, elem_frac)
    add("buffer.read", gb_read)
    add("buffer.write", gb_write)

    # ---- stages and phases ----------------------------------------------------------------------------
    stages: list[Stage] = []
    for s in mapping.stages:
        phases: list[Phase] = []
        for ph in s.phases:
            work: dict[str, Num] = {}
            for name in ph.einsums:
                arr_name = mapping.binding[name]
                work[arr_name] = work.get(arr_name, 0.0) + per_einsum[name]
            exposed: Num = per_einsum[ph.stall] * a2.rows if ph.stall else 0.0
            phases.append(Phase("+".join(ph.einsums), work, exposed))
        stages.append(Stage(s.name, phases, stage_words[s.name]))

    _ = a1
    return Schedule(
        mapping=mapping.name,
        cascade=c.name,
        passes=c.passes,
        stages=stages,
        busy=busy,
        useful=useful,
        actions=actions,
        flops=flops,
        compulsory_dram_words=sum({"Q": q_words, "K": k_words, "V": v_words}[t] for t in c.inputs) + o_words,
        tiles={"p0": p0, "m0": m0, "query_block": r_blk, "query_blocks": n_blocks},
        spill_fraction=spill,
    )
