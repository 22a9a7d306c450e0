"""Bit-exact golden and exact cycle model of the top-k RTL (``rtl/spatten/topk.py``).

Semantics are :func:`sim.spatten.topk_algorithm.quick_select` with the deterministic pivot rule: the pivot of every round is
the *first element of the current candidate set in stream order* (round 1: element 0 of the input; later rounds:
the first element that went to FIFO_R or FIFO_L, which is where the RTL captures it). Target is 0-based
(t = k - 1); ``t - |R| + 1`` ties of the k-th value are kept, the earliest in input order.

Output stream of the RTL (one beat per input row of ``comparators`` elements, ``ceil(n / C)`` beats, none skipped):
``values (C lanes x data_bits) | indices (C lanes x idx_bits) | count | last``, kept elements compacted to the low
lanes in input order, unused lanes zero, ``last`` set on the final beat.

Cycle measurement (bench and model): the harness cycle of the last output handshake minus the cycle of the first
input handshake, with the input offered every cycle and the output always ready. The RTL spends
``R0 = ceil(n/C)`` cycles loading (round 1 partitions the input stream as it is buffered), ``D`` cycles draining
the round pipeline and 1 cycle flushing the packers and deciding after every round, ``ceil(m/C) + 1`` cycles of
issue per later round over ``m`` candidates (one cycle of synchronous read latency), then ``R0 + 1 + F`` cycles
for the filter pass (read latency, ``F`` pipeline stages, output register):
``cycles = R0 + D + sum_{later rounds}(ceil(m/C) + 2 + D) + 2 + F + R0`` with ``D = ROUND_PIPE = 5``
(registered comparator operands, registered comparator flags, the 3-stage pipelined zero eliminator in front of
the packers) and ``F = FILTER_PIPE = 5`` (registered comparator flags, registered tie prefix sum, registered keep
flags, 2 zero-eliminator stages). The stages exist so the ECP5 build closes timing at 100 MHz; without them the
whole comparator -> prefix sum -> shifter -> packer path sat in one cycle.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from attnforge.sim.contract import FILTER_PIPE, ROUND_PIPE, count_bits, idx_bits, n_bits
from attnforge.sim.contract import designs as contract
from attnforge.sim.specs.errors import SpecError

#: the output beat's count field (the contract's name for it)
cnt_bits = count_bits

__all__ = ["FILTER_PIPE", "ROUND_PIPE", "HwTopK", "check_job", "cnt_bits", "cycle_table", "cycles", "decode_beats",
           "hw_topk", "idx_bits", "input_beats", "n_bits", "output_beats", "print_cycle_table"]


@dataclass(frozen=True)
class HwTopK:
    """What the RTL produces for one job."""

    indices: list[int]  #: kept indices, ascending (input order)
    values: list[int]
    kth: int
    keep_equal: int
    rounds: int
    round_sizes: list[int]  #: candidates per round (round 1 = n)
    cycles: int


def check_job(scores: Sequence[int], k: int, comparators: int, max_n: int | None = None, data_bits: int | None = None,
              signed: bool = True) -> None:
    n = len(scores)
    if comparators < 1 or comparators & (comparators - 1):
        raise SpecError("comparators", f"must be a power of two, got {comparators}")
    if n < 1:
        raise SpecError("n", "the engine needs at least one score")
    if max_n is not None and n > max_n:
        raise SpecError("n", f"{n} exceeds max_n = {max_n}", f"1..{max_n}")
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n:
        raise SpecError("k", f"k = {k!r} is outside [1, n] for n = {n}", f"1..{n}")
    if data_bits is not None:
        lo, hi = (-(1 << (data_bits - 1)), (1 << (data_bits - 1)) - 1) if signed else (0, (1 << data_bits) - 1)
        bad = [int(v) for v in scores if not lo <= int(v) <= hi]
        if bad:
            raise SpecError("scores", f"{bad[0]} does not fit {data_bits}-bit {'signed' if signed else 'unsigned'}",
                            f"{lo}..{hi}")


def hw_topk(scores: Sequence[int], k: int, comparators: int = 16) -> HwTopK:
    """Run the RTL's algorithm on integer scores (first-element pivots); also returns the exact cycle count."""
    a = [int(v) for v in scores]
    check_job(a, k, comparators)
    n, c = len(a), comparators
    r0 = -(-n // c)
    t = k - 1
    cand = a
    sizes: list[int] = []
    cycles = r0 + ROUND_PIPE  # load (round 1 runs on the input stream) + drain -> first flush/decide cycle
    while True:
        sizes.append(len(cand))
        pivot = cand[0]
        right = [v for v in cand if v > pivot]
        left = [v for v in cand if v < pivot]
        eq = len(cand) - len(right) - len(left)
        if len(right) > t:
            cand = right
        elif len(right) + eq <= t:
            t -= len(right) + eq
            cand = left
        else:
            kth, keep = pivot, t - len(right) + 1
            break
        cycles += -(-len(cand) // c) + 2 + ROUND_PIPE
    cycles += 2 + FILTER_PIPE + r0
    idx, seen = [], 0
    for i, v in enumerate(a):
        if v > kth:
            idx.append(i)
        elif v == kth:
            seen += 1
            if seen <= keep:
                idx.append(i)
    return HwTopK(idx, [a[i] for i in idx], kth, keep, len(sizes), sizes, cycles)


def cycles(scores: Sequence[int], k: int, comparators: int = 16) -> int:
    """Exact RTL cycles (first input handshake to last output handshake, no stalls)."""
    return hw_topk(scores, k, comparators).cycles


def input_beats(scores: Sequence[int], k: int, comparators: int, data_bits: int, max_n: int) -> list[int]:
    """Input stream payloads: C lanes of scores (two's complement), n and k on every beat (read on the first)."""
    a = [int(v) for v in scores]
    lay = contract.topk(comparators, max_n, data_bits)["i"]
    return [lay.pack({"scores": a[r:r + comparators], "job": {"n": len(a), "k": k}}) for r in range(0, len(a), comparators)]


def output_beats(scores: Sequence[int], k: int, comparators: int, data_bits: int, max_n: int) -> list[int]:
    """The RTL's output payloads, bit for bit."""
    res = hw_topk(scores, k, comparators)
    c = comparators
    lay = contract.topk(c, max_n, data_bits)["o"]
    kept = set(res.indices)
    n = len(scores)
    rows = -(-n // c)
    out = []
    for r in range(rows):
        sel = [i for i in range(r * c, min(n, (r + 1) * c)) if i in kept]
        out.append(lay.pack({"values": [int(scores[i]) for i in sel], "indices": sel, "count": len(sel),
                             "last": int(r == rows - 1), "error": 0}))
    return out


def refused_job(n: int, k: int, comparators: int, data_bits: int, max_n: int) -> tuple[list[int], list[int], int]:
    """A job the RTL refuses (outside ``1 <= k <= n <= max_n``): its input beats (``max(1, ceil(n/C))``, zero
    scores), the one error beat it is answered with, and the exact cycles from its first input handshake to that
    answer: the engine consumes the job's beats without touching the datapath and raises the answer with the last.
    A job it would accept is refused here, so a test cannot mistake one for the other."""
    c = contract.topk(comparators, max_n, data_bits)
    if 1 <= k <= n <= max_n:
        raise SpecError("k", f"n = {n}, k = {k} is a valid job; the engine would run it", "k = 0, k > n, n = 0 or n > max_n")
    beats = max(1, -(-n // comparators))
    ins = [c["i"].pack({"scores": [], "job": {"n": n, "k": k}}) for _ in range(beats)]
    err = c["o"].pack({"values": [], "indices": [], "count": 0, "last": 1, "error": 1})
    return ins, [err], beats


def decode_beats(beats: Sequence[int], comparators: int, data_bits: int, max_n: int,
                 signed: bool = True) -> list[tuple[int, int]]:
    """Output payloads -> [(index, value)] in stream order."""
    lay = contract.topk(comparators, max_n, data_bits, int(signed))["o"]
    out = []
    for w in beats:
        b = lay.unpack(w)
        out += list(zip(b["indices"][:b["count"]], b["values"][:b["count"]], strict=True))
    return out


def cycle_table(ns: Sequence[int] = (16, 64, 256, 1024), ks_frac: Sequence[float] = (0.0, 0.1, 0.5, 1.0),
                comparators: int = 16, trials: int = 20, seed: int = 0) -> list[dict[str, float]]:
    """Cycles of the RTL vs n and k on random int8 scores (mean, min, max over ``trials`` vectors)."""
    rng = np.random.default_rng(seed)
    rows = []
    for n in ns:
        for f in ks_frac:
            k = max(1, min(n, round(f * n)))
            cyc = [cycles(rng.integers(-128, 128, n).tolist(), k, comparators) for _ in range(trials)]
            rows.append({"n": n, "k": k, "mean": float(np.mean(cyc)), "min": min(cyc), "max": max(cyc),
                         "per_element": float(np.mean(cyc)) / n})
    return rows


def print_cycle_table(**kw: object) -> str:
    rows = cycle_table(**kw)  # type: ignore[arg-type]
    lines = [f"{'n':>6} {'k':>6} {'mean':>8} {'min':>6} {'max':>6} {'cyc/elem':>9}"]
    lines += [f"{r['n']:>6} {r['k']:>6} {r['mean']:>8.1f} {r['min']:>6} {r['max']:>6} {r['per_element']:>9.3f}" for r in rows]
    text = "\n".join(lines)
    print(text)
    return text


if __name__ == "__main__":
    print_cycle_table()
