"""SpAtten's zero eliminator: a Kogge-Stone prefix sum of the drop flags plus a log2(C)-layer shifter.

Lane ``i`` is kept or dropped; ``zc[i]`` (dropped lanes before ``i``) is the distance it must move down. Layer ``j``
moves an element by ``2**j`` when bit ``j`` of its ``zc`` is set; an element arriving from ``i + 2**j`` wins over
the slot's occupant. Shifting least-significant bit first never makes two kept elements collide and keeps their
order, so the output is the kept lanes, compacted to the low lanes in input order, zeros above.

:func:`zero_eliminate` is combinational. :func:`zero_eliminate_pipelined` is the same network cut into
:data:`ZE_STAGES` register stages (after the prefix sum, after the first half of the shifter layers and, unless
the caller registers the result itself, after the output mux), because prefix sum plus shifter in one cycle is far
longer than a 100 MHz ECP5 clock period.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth import Cat, Const, Module, Mux, Signal, Value

from attnforge.sim.contract import ZE_STAGES  # register stages with ``reg_out=True`` (one fewer without)

__all__ = ["ZE_STAGES", "popcount", "prefix_sum", "zero_eliminate", "zero_eliminate_pipelined"]


def prefix_sum(m: Module, flags: Sequence[Value], name: str) -> list[Signal]:
    """Exclusive prefix sum of 1-bit flags, Kogge-Stone (log2 layers of adders)."""
    n = len(flags)
    w = max(1, n.bit_length())
    cur: list[Value] = [Const(0, w)] + [f for f in flags[:-1]]
    dist = 1
    layer = 0
    while dist < n:
        nxt = []
        for i in range(n):
            s = Signal(w, name=f"{name}_ps{layer}_{i}")
            m.d.comb += s.eq(cur[i] + cur[i - dist] if i >= dist else cur[i])
            nxt.append(s)
        cur, dist, layer = nxt, dist * 2, layer + 1
    out = []
    for i in range(n):
        s = Signal(w, name=f"{name}_zc{i}")
        m.d.comb += s.eq(cur[i])
        out.append(s)
    return out


def popcount(m: Module, flags: Sequence[Value], name: str) -> Signal:
    """Number of set flags as a balanced adder tree (a Python ``sum`` would chain ``len(flags)`` adders)."""
    level: list[Value] = list(flags) or [Const(0, 1)]
    depth = 0
    while len(level) > 1:
        nxt: list[Value] = []
        for i in range(0, len(level) - 1, 2):
            s = Signal(range(len(flags) + 1), name=f"{name}_pc{depth}_{i // 2}")
            m.d.comb += s.eq(level[i] + level[i + 1])
            nxt.append(s)
        if len(level) % 2:
            nxt.append(level[-1])
        level, depth = nxt, depth + 1
    out = Signal(range(len(flags) + 1), name=f"{name}_count")
    m.d.comb += out.eq(level[0])
    return out


def _shift_layers(m: Module, valid: list[Value], vals: list[Value], zcs: list[Value], width: int, name: str,
                  layers: range) -> tuple[list[Value], list[Value], list[Value]]:
    """Apply shifter ``layers`` (see the module docstring) to the (valid, value, zc) lanes."""
    n = len(valid)
    w = len(zcs[0])
    for j in layers:
        d = 1 << j
        nv, nd, nz = [], [], []
        for i in range(n):
            v = Signal(name=f"{name}_l{j}_v{i}")
            x = Signal(width, name=f"{name}_l{j}_d{i}")
            z = Signal(w, name=f"{name}_l{j}_z{i}")
            stay = valid[i] & ~zcs[i][j]
            if i + d < n:
                arrive = valid[i + d] & zcs[i + d][j]
                m.d.comb += [v.eq(arrive | stay), x.eq(Mux(arrive, vals[i + d], vals[i])),
                             z.eq(Mux(arrive, zcs[i + d], zcs[i]))]
            else:
                m.d.comb += [v.eq(stay), x.eq(vals[i]), z.eq(zcs[i])]
            nv.append(v)
            nd.append(x)
            nz.append(z)
        valid, vals, zcs = nv, nd, nz
    return valid, vals, zcs


def _layers(n: int) -> int:
    return max(0, (n - 1).bit_length())


def zero_eliminate(m: Module, keep: Sequence[Value], data: Sequence[Value], width: int, name: str) -> tuple[list[Signal], Signal]:
    """Compact the kept lanes of ``data`` (each ``width`` bits) to the low lanes; returns (lanes, count)."""
    n = len(keep)
    zc = prefix_sum(m, [~k for k in keep], name)
    valid, vals, _ = _shift_layers(m, list(keep), list(data), list(zc), width, name, range(_layers(n)))
    out = []
    for i in range(n):
        s = Signal(width, name=f"{name}_out{i}")
        m.d.comb += s.eq(Mux(valid[i], vals[i], 0))
        out.append(s)
    return out, popcount(m, keep, f"{name}_n")


def _stage(m: Module, en: Value | None, values: Sequence[Value], name: str) -> list[Signal]:
    """One pipeline register per value, loaded when ``en`` (always when ``en`` is None)."""
    regs = [Signal(len(v), name=f"{name}{i}") for i, v in enumerate(values)]
    upd = [r.eq(v) for r, v in zip(regs, values, strict=True)]
    if en is None:
        m.d.sync += upd
    else:
        with m.If(en):
            m.d.sync += upd
    return regs


def zero_eliminate_pipelined(m: Module, keep: Sequence[Value], data: Sequence[Value], width: int, name: str, *,
                             en: Value | None = None, side: Value | None = None,
                             reg_out: bool = True) -> tuple[list[Signal], Signal, Signal]:
    """:func:`zero_eliminate` with ``ZE_STAGES`` (``reg_out``) or ``ZE_STAGES - 1`` register stages.

    Stage 1 registers the prefix sum and the count, stage 2 the first ``ceil(L/2)`` shifter layers, stage 3 (only
    with ``reg_out``) the remaining layers and the output mux. Every stage loads when ``en`` (a pipeline-wide stall
    enable; None = always). ``side`` (valid, last, ...) travels alongside and is returned delayed by as many stages.
    Returns (lanes, count, side).
    """
    n = len(keep)
    nl = _layers(n)
    side = Const(0, 0) if side is None else side
    zc = prefix_sum(m, [~k for k in keep], name)
    cnt = popcount(m, keep, f"{name}_n")
    r1 = _stage(m, en, [*keep, *data, *zc, cnt, side], f"{name}_s1_")
    valid: list[Value] = r1[:n]
    vals: list[Value] = r1[n:2 * n]
    zcs: list[Value] = r1[2 * n:3 * n]
    cnt_v, side_v = r1[3 * n], r1[3 * n + 1]
    half = (nl + 1) // 2
    valid, vals, zcs = _shift_layers(m, valid, vals, zcs, width, f"{name}_a", range(half))
    r2 = _stage(m, en, [Cat(*valid), *vals, *zcs, cnt_v, side_v], f"{name}_s2_")
    valid, vals, zcs = [r2[0][i] for i in range(n)], list(r2[1:n + 1]), list(r2[n + 1:2 * n + 1])
    cnt_v, side_v = r2[2 * n + 1], r2[2 * n + 2]
    valid, vals, _ = _shift_layers(m, valid, vals, zcs, width, f"{name}_b", range(half, nl))
    outs: list[Value] = [Mux(valid[i], vals[i], 0) for i in range(n)]
    if reg_out:
        r3 = _stage(m, en, [*outs, cnt_v, side_v], f"{name}_s3_")
        outs, cnt_v, side_v = r3[:n], r3[n], r3[n + 1]
    out = []
    for i in range(n):
        s = Signal(width, name=f"{name}_out{i}")
        m.d.comb += s.eq(outs[i])
        out.append(s)
    count = Signal(range(n + 1), name=f"{name}_count")
    side_o = Signal(len(side_v), name=f"{name}_side")
    m.d.comb += [count.eq(cnt_v), side_o.eq(side_v)]
    return out, count, side_o
