"""One routine that turns any Mapping + Arch + shape into a Schedule (no per-dataflow copies).

Shapes may be numpy arrays: every formula broadcasts, so a sweep over sequence lengths is one call. The only
per-point search (the query block that fits the buffer) is a small cached scalar function, vectorised.

Grouped-query attention (``kv_heads`` < ``heads``, 1 = multi-query): the ``heads / kv_heads`` query heads of a
group read the same K and V. The dataflow assumed is the one that makes that pay: where one head's P queries fit
one query block, a group's queries are stacked into one stream of group x P rows, blocked to fit the buffer like
any other queries, and every K/V tile fetched into the buffer serves all the stacked queries of the resident
block before it is dropped. So K and V cost DRAM (and buffer fills) once per KV head per block of the stack:
1/group of multi-head attention's when the whole group fits one block (decode always does: group x 1 queries),
a smaller saving when it takes several; none when one head's P queries already need several blocks (a block of
R queries makes the same number of K/V passes whichever heads they come from). FLOPs stay per query head. Where
one head's P queries fill less than one P0-query column tile (decode: P = 1 on 256 columns), the group's stacked
queries share column tiles: ceil(group x P / P0) per K/V head instead of one per query head, since they meet the
same K and V in every key tile; array time and the buffer's reads of each resident K/V tile follow those column
tiles (``col_tiles``: per query head, a fraction of one when packed). A P of P0 or more fills its own tiles, and
stacking would only move the padding, so there each query head keeps its own, as in multi-head attention.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

import numpy as np

from attnforge.mappings.spec import Mapping
from attnforge.sim.analytical.cascade import M_RANKS, Cascade, Einsum
from attnforge.sim.analytical.schedule import DRAM_BYTES, Actions, Num, Phase, Schedule, Stage
from attnforge.sim.specs.arch import CascadeArch
from attnforge.sim.specs.errors import SpecError


def _ceil_div(a: Num, b: Num) -> Num:
    return -(-np.asarray(a) // b)


def _tile_counts(p_tiles: Num, m1: Num) -> dict[str, Num]:
    """How often an operand is re-read from the buffer for each rank it lacks: once per tile of that rank."""
    return {"p": p_tiles, "m": m1, "m1": m1, "m0": 1, "e": 1, "f": 1}


class BlockProblem(Enum):
    """Why no query block exists for a point; :func:`_choose_query_blocks` turns it into a :class:`SpecError`."""

    #: Even the smallest block's fixed state (Q and buffer-placed per-query state) overflows the buffer.
    BUFFER_TOO_SMALL = "buffer too small"
    #: The user's fixed query block is neither a whole number of P0-query column tiles nor the whole of P.
    GIVEN_DOES_NOT_TILE = "query block does not tile"


@dataclass(frozen=True)
class BlockFit:
    """A query block that fits: ``rows`` queries resident at once, ``spill`` the fraction of M-fibers in DRAM."""

    rows: int
    spill: float


def _given_problem(p: int, p0: int, given: int) -> BlockProblem | None:
    """Why the user's fixed query block (0 = none) cannot be used: it must be a whole number of P0-query column
    tiles, or the whole of P."""
    if given and ((given % p0 and given != p) or -(-p // given) * given < p):
        return BlockProblem.GIVEN_DOES_NOT_TILE
    return None


def _largest_block(p: int, p0: int, given: int, words_per_query: float, buffer_words: float) -> int | None:
    """The largest query block whose ``words_per_query`` each fit the buffer (None: not even the smallest): the
    user's fixed one if it fits; a P shorter than P0 as one block; else a whole number of P0-query column tiles,
    as many as fit, balanced over the blocks that P then needs. Why any count of tiles, not only the divisors of
    P's: the last block may be shorter (the array runs it on fewer columns' worth of queries), so a P of a prime
    number of tiles (17 at 4,352 queries) is not forced into one-tile blocks that stream K and V 17 times where
    three blocks of 6, 6 and 5 tiles fit; a bigger block re-reads K and V less often, and balancing keeps the
    count of blocks (the K/V passes) while holding no more queries than it needs."""
    if given or p < p0:
        r = given or p
        return r if r * words_per_query <= buffer_words else None
    p_tiles = -(-p // p0)
    fit = min(p_tiles, int(buffer_words // (p0 * words_per_query))) if words_per_query > 0 else p_tiles
    if fit < 1:
        return None
    blocks = -(-p_tiles // fit)
    return -(-p_tiles // blocks) * p0


def _spill_decision(
    r: int, grown: int | None, fixed_words: float, fiber_words: float, buffer_words: float, full_spill_above: float
) -> BlockFit | BlockProblem:
    """No block holds its M-fibers, so block ``r`` (the smallest) spills the part that does not fit.

    Past ``full_spill_above`` the dataflow goes off chip (FLAT's choice): the M-fibers all stream through DRAM, so
    the block only has to hold the fixed state and can grow back to ``grown``, the largest block that holds it.
    """
    room = buffer_words - r * fixed_words
    if room < 0:
        return BlockProblem.BUFFER_TOO_SMALL
    spill = 1.0 - room / (r * fiber_words) if fiber_words else 0.0
    if spill > full_spill_above:
        return BlockFit(grown or r, 1.0)
    return BlockFit(r, spill)


@lru_cache(maxsize=65536)
def _query_block(
    p: int, p0: int, fixed_words: float, fiber_words: float, buffer_words: float, full_spill_above: float, given: int
) -> BlockFit | BlockProblem:
    """Largest query block R (:func:`_largest_block`) whose resident state fits the buffer.

    Each query keeps ``fixed_words`` plus ``fiber_words`` of M-fibers resident; when no block holds both, the
    smallest one spills (see :func:`_spill_decision`). Cached: a sweep repeats the same scalar points.
    """
    problem = _given_problem(p, p0, given)
    if problem is not None:
        return problem
    r = _largest_block(p, p0, given, fixed_words + fiber_words, buffer_words)
    if r is not None:
        return BlockFit(r, 0.0)
    smallest = given or min(p, p0)
    grown = _largest_block(p, p0, given, fixed_words, buffer_words)
    return _spill_decision(smallest, grown, fixed_words, fiber_words, buffer_words, full_spill_above)


def _query_block_fields(
    p: int, p0: int, fixed_words: float, fiber_words: float, buffer_words: float, full_spill_above: float, given: int
) -> tuple[int, float, BlockProblem | None]:
    """:func:`_query_block` as plain fields for np.vectorize: (R, spill, None) or (0, 1.0, the problem). Sizes
    arrive as float64 (the engine's count type) and are whole numbers: the search works on ints."""
    fit = _query_block(int(p), int(p0), fixed_words, fiber_words, buffer_words, full_spill_above, int(given))
    if isinstance(fit, BlockProblem):
        return 0, 1.0, fit
    return fit.rows, fit.spill, None


_query_block_v = np.vectorize(_query_block_fields, otypes=[np.int64, np.float64, object])


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


def _floor_sum(n: int, m: int, a: int, b: int) -> int:
    """sum_{i=0}^{n-1} floor((a i + b) / m) in O(log) steps (the Euclid-like reduction), for m >= 1, a >= 0, any b:
    the causal tile count's sum over query blocks without an array of 2^30 / P0 of them."""
    total = 0  # Python's floor division makes b // m and b % m right for a negative b too
    while n > 0:
        total += (n - 1) * n // 2 * (a // m) + n * (b // m)
        a, b = a % m, b % m
        y = a * n + b
        if y < m:
            break
        n, b, m, a = y // m, y % m, a, m
    return total


def _causal_factor(p: float, m: float, p0: float, m0: float) -> tuple[float, float]:
    """(tile fraction, element fraction) of the P x M score matrix a causal mask leaves to compute.

    Query q (of P, aligned to the end of the M keys) sees keys up to q + 1 + (M - P), never more than M, so the
    element count is the closed form P (M - P + 1) + P (P - 1) / 2 (a Python loop over the queries took 34 s at
    1e8 tokens). Tiles: P0-row block i (1-based) reaches key i P0 + M - P, i.e. ceil(that / M0) key tiles, and
    the last block all TM of them; the sum over blocks is a floor sum (an array of blocks took 3 GB at 2^30)."""
    p, m, p0, m0 = int(p), int(m), int(p0), int(m0)
    offset = m - p
    tp, tm = -(-p // p0), -(-m // m0)
    # blocks 1..tp-1 end before key M: sum of floor((i P0 + offset + M0 - 1) / M0), i from 1
    tiles = tm + _floor_sum(tp - 1, m0, p0, p0 + offset + m0 - 1)
    elems = p * (offset + 1) + p * (p - 1) // 2
    return tiles / (tp * tm), elems / (p * m)


_causal_v = np.vectorize(lru_cache(maxsize=65536)(_causal_factor), otypes=[np.float64, np.float64])


def _systolic_cycles(ein: Einsum, pad: dict[str, Num], use: dict[str, Num], rows: int, cols: int,
                     col_tiles: Num) -> Num:
    """Output-stationary matmul on a systolic array: per output tile (fold), the reduction plus skew fill/drain.

    Output ranks other than the query rank map onto the rows, queries onto the columns (``col_tiles`` of C
    queries per head, see :class:`_Extents`); each of the ceil(rows_extent / R) x col_tiles folds takes
    K + R + C - 2 cycles (SCALE-Sim's OS model, to its final cycle).
    """
    row_extent: Num = 1
    for r in ein.ranks:
        if r != "p":
            row_extent = row_extent * pad[r]
    k: Num = 1
    for r in ein.reduce:  # the reduction streams through; it needs no padding
        k = k * use[r]
    folds = _ceil_div(row_extent, rows) * col_tiles * pad["b"] * pad["h"]
    return folds * (k + rows + cols - 2)


def _scores_scale(ein: Einsum, frac: Num) -> Num:
    """A causal mask removes score-matrix work: only Einsums iterating over both keys and queries shrink."""
    its = ein.iteration_ranks
    return frac if ("p" in its and any(r in M_RANKS for r in its)) else 1.0


@dataclass(frozen=True)
class _Extents:
    """The shape as the arrays see it, shared by every cost below.

    ``pad`` holds the rank sizes padded to whole array tiles (what occupies PEs and time), ``use`` the real ones
    (what does useful work and moves data); ``tile_frac`` and ``elem_frac`` are the shares of the score matrix a
    causal mask leaves, counted in whole tiles and in elements (1.0 without a mask).
    """

    p0: int
    m0: int
    p: np.ndarray
    m: np.ndarray
    bh: Num
    #: batch x K/V heads (== ``bh`` for multi-head attention) and query heads per K/V head.
    bkv: Num
    group: int
    p_tiles: Num
    #: P0-query column tiles per query head on the arrays: ``p_tiles``, or, where a group's short query blocks
    #: share tiles (P < P0, see the module docstring), ceil(group x P / P0) / group.
    col_tiles: Num
    m1: Num
    p_pad: Num
    pad: dict[str, Num]
    use: dict[str, Num]
    causal: bool
    tile_frac: Num
    elem_frac: Num


def _extents(
    arch: CascadeArch, batch: Num, heads: int, p: Num, m: Num, e: int, f: int, causal: bool, kv_heads: int | None = None,
    pack: bool = True,
) -> _Extents:
    """Tile the (broadcastable) shape onto the 2D array: M0 keys per row tile, P0 queries per column tile; with
    ``pack``, a group's short query blocks share column tiles (the mapping's ``pack_group_queries``)."""
    kv = heads if kv_heads is None else kv_heads
    if kv <= 0 or heads % kv:
        raise SpecError("kv_heads", f"{kv} must be a positive divisor of heads = {heads}")
    a2 = arch.arrays["2d"]
    m0, p0 = a2.rows, a2.cols
    p = np.asarray(p)
    m = np.asarray(m)
    batch = np.asarray(batch)
    p_tiles = _ceil_div(p, p0)
    m1 = _ceil_div(m, m0)
    p_pad = np.where(p >= p0, p_tiles * p0, p)  # a short query block still occupies whole columns' time
    group = heads // kv
    col_tiles = np.where(pack & (group > 1) & (p < p0), _ceil_div(group * p, p0) / group, p_tiles)
    tile_frac: Num = 1.0
    elem_frac: Num = 1.0
    if causal:
        tile_frac, elem_frac = _causal_v(p, m, p0, m0)
    return _Extents(
        p0=p0, m0=m0, p=p, m=m, bh=batch * heads, bkv=batch * kv, group=group, p_tiles=p_tiles, col_tiles=col_tiles,
        m1=m1, p_pad=p_pad,
        pad={"b": batch, "h": heads, "p": col_tiles * p0, "m": m1 * m0, "m1": m1, "m0": m0, "e": e, "f": f},
        use={"b": batch, "h": heads, "p": p, "m": m, "m1": m / m0, "m0": m0, "e": e, "f": f},
        causal=causal, tile_frac=tile_frac, elem_frac=elem_frac,
    )


@dataclass
class _Compute:
    """Per-array busy and useful cycles, per-Einsum cycles (for the phases), PE actions and FLOPs."""

    busy: dict[str, Num]
    useful: dict[str, Num]
    per_einsum: dict[str, Num]
    actions: Actions
    flops: Num


def _compute(c: Cascade, mapping: Mapping, arch: CascadeArch, x: _Extents) -> _Compute:
    """Cost every Einsum on the array the mapping binds it to.

    Time counts padded work (a partial tile occupies the whole array; on a systolic array, each fold's fill and
    drain too); energy and FLOPs count only the useful work.
    """
    out = _Compute(busy={"2d": 0.0, "1d": 0.0}, useful={"2d": 0.0, "1d": 0.0}, per_einsum={}, actions=Actions(), flops=0.0)
    for ein in c.einsums:
        arr_name = mapping.binding.get(ein.name)
        if arr_name not in arch.arrays:
            raise SpecError(f"mapping {mapping.name}.binding.{ein.name}", f"unknown array {arr_name!r}", arch.arrays)
        arr = arch.arrays[arr_name]
        cost = arch.op_cost(arr_name, ein.op)
        cyc = mapping.op_cycles.get(ein.op, cost.cycles)
        ops_pad = ein.ops(x.pad) * _scores_scale(ein, x.tile_frac)
        ops_use = ein.ops(x.use) * _scores_scale(ein, x.elem_frac)
        out.per_einsum[ein.name] = ops_pad * cyc / arr.pes
        if arr.systolic and len(arr.dims) == 2 and ein.op == "mac" and ein.reduce:
            folds = _systolic_cycles(ein, x.pad, x.use, arr.rows, arr.cols, x.col_tiles)
            out.per_einsum[ein.name] = folds * _scores_scale(ein, x.tile_frac)
        out.busy[arr_name] = out.busy.get(arr_name, 0.0) + out.per_einsum[ein.name]
        out.useful[arr_name] = out.useful.get(arr_name, 0.0) + ops_use * cyc / arr.pes
        for act, n in cost.actions.items():
            out.actions.add(arr_name, act, ops_use * n)
        out.actions.add(arr_name, "rf_read", 2 * ops_use)
        out.actions.add(arr_name, "rf_write", ops_use)
        out.flops = out.flops + ops_use * (2 if ein.op == "mac" else 1)
    return out


@dataclass(frozen=True)
class _Blocks:
    """The chosen query block per point: R queries resident, how many blocks cover P, and the spilled fraction."""

    rows: Num
    count: Num
    spill: Num


def _choose_query_blocks(c: Cascade, mapping: Mapping, arch: CascadeArch, e: int, f: int, x: _Extents) -> _Blocks:
    """Search (or check the user's) query block at every point, and say which setting fails when none fits.

    With ``fiber_rows`` set, only that many rows' M-fibers must be resident at once (they are streamed row by
    row), so the block is sized on the fixed state alone and the fibers either all fit or all spill.
    """
    wb = arch.word_bytes
    fixed, fiber = _per_query_words(c, mapping, e, f, x.m0, x.m)
    staging = x.m0 * (e + f)  # one K tile and one V tile in flight
    buffer_words = (arch.buffer.bytes / wb) - staging
    given = mapping.query_block or 0
    if mapping.fiber_rows is None:
        rows, spill, problems = _query_block_v(x.p, x.p0, fixed, fiber, buffer_words, mapping.full_spill_above, given)
    else:
        rows, _, problems = _query_block_v(x.p, x.p0, fixed, 0.0, buffer_words, mapping.full_spill_above, given)
        spill = np.where(mapping.fiber_rows * fiber <= buffer_words, 0.0, 1.0)
    found = set(np.ravel(problems))
    if BlockProblem.BUFFER_TOO_SMALL in found:
        needed = int((np.max(fixed) * min(x.p0, int(np.min(x.p))) + staging) * wb)
        raise SpecError(
            "arch.buffer.bytes",
            f"{arch.buffer.bytes} B cannot hold the smallest tile of mapping {mapping.name} "
            f"({needed} B needed for its resident state)",
        )
    if BlockProblem.GIVEN_DOES_NOT_TILE in found:
        raise SpecError(
            "--tile query_block", f"{given} does not tile the query length into whole {x.p0}-query column tiles"
        )
    return _Blocks(rows=rows, count=_ceil_div(x.p_pad, rows), spill=spill)


def _kv_passes(c: Cascade, mapping: Mapping, arch: CascadeArch, e: int, f: int, x: _Extents,
               blocks: _Blocks) -> tuple[Num, _Blocks]:
    """How often each stored K/V head streams from DRAM, and the blocks to report.

    Multi-head: once per query block (a causal mask skips the tiles above the diagonal). Grouped: where one head's
    P queries fit one block, the group's queries are stacked (group x P rows, blocked to fit the buffer like any
    others, no spill) and every block of the stack is one pass over the K/V head, so the group shares each fetch;
    where even one head needs several blocks, stacking saves nothing (a block of R queries still makes the same
    number of passes) and each query head streams the K/V head as multi-head attention would.
    """
    per_head = np.maximum(1, blocks.count * (x.tile_frac if x.causal else 1.0))
    if x.group == 1:
        return per_head, blocks
    g = x.group
    fixed, fiber = _per_query_words(c, mapping, e, f, x.m0, x.m)
    buffer_words = arch.buffer.bytes / arch.word_bytes - x.m0 * (e + f)
    pg = x.p * g
    if mapping.fiber_rows is None:
        rows, spill, problems = _query_block_v(pg, x.p0, fixed, fiber, buffer_words, mapping.full_spill_above, 0)
    else:
        rows, _, problems = _query_block_v(pg, x.p0, fixed, 0.0, buffer_words, mapping.full_spill_above, 0)
        spill = blocks.spill
    pg_pad = np.where(pg >= x.p0, _ceil_div(pg, x.p0) * x.p0, pg)
    count = _ceil_div(pg_pad, np.maximum(rows, 1))
    ok = np.vectorize(lambda pr: pr is None, otypes=[bool])(problems)
    share = ok & (blocks.count == 1) & (np.asarray(blocks.spill) == 0) & (np.asarray(spill) == 0)
    share = share & (not mapping.query_block)  # a block the user fixed stays that many queries
    passes = np.where(share, np.minimum(count, g), g * per_head)
    shown = _Blocks(rows=np.where(share, rows, blocks.rows), count=np.where(share, count, blocks.count),
                    spill=blocks.spill)
    return passes, shown


def _operand_words(c: Cascade, x: _Extents, e: int, f: int) -> tuple[dict[str, Num], Num]:
    """Words of each cascade input as stored (Q per query head, K and V per K/V head) and of the output."""
    inputs = {"Q": x.bh * x.p * e, "K": x.bkv * x.m * e, "V": x.bkv * x.m * f}
    return inputs, c[c.output].output_size(x.use)


def _stage_dram_words(
    c: Cascade, mapping: Mapping, x: _Extents, blocks: _Blocks, kv_passes: Num, inputs: dict[str, Num], o_words: Num
) -> dict[str, Num]:
    """DRAM words each stage moves: its inputs (K and V ``kv_passes`` times, see :func:`_kv_passes`), tensors
    handed between stages (written by one, read by the others), the output, and the spilled M-fibers."""
    stage_of = mapping.stage_of()
    stage_words: dict[str, Num] = {s.name: 0.0 for s in mapping.stages}
    readers: dict[str, set[str]] = {}
    for ein in c.einsums:
        for o in ein.inputs:
            readers.setdefault(o.tensor, set()).add(stage_of[ein.name])
    for t, stages in readers.items():
        if t == "Q":
            for s in stages:
                stage_words[s] = stage_words[s] + inputs["Q"]
        elif t in ("K", "V"):
            for s in stages:
                stage_words[s] = stage_words[s] + inputs[t] * kv_passes
        elif t in stage_of:
            src = stage_of[t]
            crossing = stages - {src}
            if crossing:
                size = c[t].output_size(x.use) * _scores_scale(c[t], x.elem_frac)
                stage_words[src] = stage_words[src] + size
                for s in crossing:
                    stage_words[s] = stage_words[s] + size
    stage_words[stage_of[c.output]] = stage_words[stage_of[c.output]] + o_words
    spill_words = c.spill_words(x.use, only=[t for t in c.crossing_tensors() if mapping.placement.get(t, "rf") == "gb"])
    spill_words = spill_words * x.elem_frac * blocks.spill
    spill_stage = stage_of[c.crossing_tensors()[0]] if c.crossing_tensors() else stage_of[c.output]
    stage_words[spill_stage] = stage_words[spill_stage] + spill_words
    return stage_words


def _buffer_traffic(
    c: Cascade, mapping: Mapping, x: _Extents, inputs: dict[str, Num], o_words: Num, dram_words: Num
) -> tuple[Num, Num]:
    """(reads, writes) of the global buffer: everything fetched from DRAM lands there and the output leaves
    through it; inputs are re-read once per tile of each rank they lack; buffer-placed intermediates once.

    K and V are re-read per query head's column tiles (``group`` times their stored words, ``col_tiles`` each):
    each column tile reads the resident tile again, as in multi-head attention, and a group's packed short query
    blocks read it once per tile they share (see the module docstring)."""
    tiles = _tile_counts(x.col_tiles, x.m1)
    gb_read: Num = o_words
    gb_write: Num = dram_words - o_words
    for ein in c.einsums:
        for o in ein.inputs:
            if o.tensor in c.inputs:
                reuse: Num = 1
                for r in ein.iteration_ranks:
                    if r not in o.ranks:
                        reuse = reuse * tiles.get(r, 1)
                words = inputs[o.tensor] * x.group if (x.group > 1 and o.tensor in ("K", "V")) else inputs[o.tensor]
                gb_read = gb_read + words * reuse * _scores_scale(ein, x.tile_frac)
            elif mapping.placement.get(o.tensor, "rf") in ("gb", "dram"):
                src = c[o.tensor]
                ranks = [r for r in src.ranks if not (o.final and r in src.iterative)]
                n: Num = x.bh
                for r in ranks:
                    n = n * x.use[r]
                gb_read = gb_read + n * _scores_scale(src, x.elem_frac)
        if mapping.placement.get(ein.name, "rf") in ("gb", "dram"):
            gb_write = gb_write + ein.output_size(x.use) * _scores_scale(ein, x.elem_frac)
    return gb_read, gb_write


def _stages(mapping: Mapping, per_einsum: dict[str, Num], stage_bytes: dict[str, Num], stall_rows: int) -> list[Stage]:
    """The mapping's stages and phases with each phase's work per array; a phase that stalls on an Einsum
    exposes that Einsum's cycles times the 2D array's rows (a reduction crossing every row, which no array hides)."""
    stages: list[Stage] = []
    for s in mapping.stages:
        phases: list[Phase] = []
        for ph in s.phases:
            work: dict[str, Num] = {}
            for name in ph.einsums:
                arr_name = mapping.binding[name]
                work[arr_name] = work.get(arr_name, 0.0) + per_einsum[name]
            exposed: Num = per_einsum[ph.stall] * stall_rows if ph.stall else 0.0
            phases.append(Phase("+".join(ph.einsums), work, exposed))
        stages.append(Stage(s.name, phases, stage_bytes[s.name]))
    return stages


def _pipeline_stages(arch: CascadeArch, x: _Extents, e: int, f: int) -> list[Stage]:
    """An RTL instance's exposed latencies (arch ``pipeline``): its fixed cycles per output tile and the memory
    latency, then the fill -- the first head's K and V and first Q tile -- which no compute overlaps (the first tile
    waits for them). None on a paper-scale arch."""
    pl = arch.pipeline
    if pl is None:
        return []
    tail = x.bh * x.col_tiles * pl.fixed_cycles(x.m1) + pl.drain_cycles + pl.mem_latency_cycles
    fill = (x.pad["m"] * (e + f) + x.p0 * e) * arch.word_bytes
    return [Stage("tile-tail", [Phase("fixed", {}, tail)], 0.0), Stage("fill", [], fill)]


def build_schedule(
    mapping: Mapping,
    arch: CascadeArch,
    *,
    batch: Num,
    heads: int,
    p: Num,
    m: Num,
    e: int,
    f: int,
    causal: bool = False,
    kv_heads: int | None = None,
) -> Schedule:
    """Cost ``mapping``'s cascade on ``arch`` for a (broadcastable) shape: compute, query blocks, DRAM and
    buffer traffic, then the stages the engine turns into cycles and energy. ``kv_heads`` (default ``heads``)
    shares K/V among groups of query heads (see the module docstring). Raises SpecError when no query block
    fits the buffer or a fixed one does not tile P."""
    c = mapping.get_cascade()
    x = _extents(arch, batch, heads, p, m, e, f, causal, kv_heads, mapping.pack_group_queries)
    work = _compute(c, mapping, arch, x)
    blocks = _choose_query_blocks(c, mapping, arch, e, f, x)
    kv_passes, blocks = _kv_passes(c, mapping, arch, e, f, x, blocks)
    inputs, o_words = _operand_words(c, x, e, f)
    stage_words = _stage_dram_words(c, mapping, x, blocks, kv_passes, inputs, o_words)
    dram_words: Num = 0.0
    for v in stage_words.values():
        dram_words = dram_words + v
    # DRAM is charged and timed in bytes (energy.dram.byte, the engine's bandwidth); the buffer in words.
    wb = arch.word_bytes
    stage_bytes = {k: v * wb for k, v in stage_words.items()}
    dram_bytes: Num = 0.0
    for v in stage_bytes.values():
        dram_bytes = dram_bytes + v
    work.actions.add(*DRAM_BYTES, dram_bytes)
    gb_read, gb_write = _buffer_traffic(c, mapping, x, inputs, o_words, dram_words)
    work.actions.add("buffer", "read", gb_read)
    work.actions.add("buffer", "write", gb_write)
    stages = _stages(mapping, work.per_einsum, stage_bytes, arch.arrays["2d"].rows) + _pipeline_stages(arch, x, e, f)
    return Schedule(
        mapping=mapping.name,
        cascade=c.name,
        passes=c.passes,
        stages=stages,
        busy=work.busy,
        useful=work.useful,
        actions=work.actions,
        flops=work.flops,
        compulsory_dram_bytes=(sum(inputs[t] for t in c.inputs) + o_words) * wb,
        tiles={"p0": x.p0, "m0": x.m0, "query_block": blocks.rows, "query_blocks": blocks.count},
        spill_fraction=blocks.spill,
    )
