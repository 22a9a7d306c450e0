"""SpAtten's zero eliminator: a Kogge-Stone prefix sum of the drop flags plus a log2(C)-layer shifter.

Lane ``i`` is kept or dropped; ``zc[i]`` (dropped lanes before ``i``) is the distance it must move down. Layer ``j``
moves an element by ``2**j`` when bit ``j`` of its ``zc`` is set; an element arriving from ``i + 2**j`` wins over
the slot's occupant. Shifting least-significant bit first never makes two kept elements collide and keeps their
order, so the output is the kept lanes, compacted to the low lanes in input order, zeros above. Combinational.
"""

from __future__ import annotations

from collections.abc import Sequence

from amaranth import Const, Module, Mux, Signal, Value


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


def zero_eliminate(m: Module, keep: Sequence[Value], data: Sequence[Value], width: int, name: str) -> tuple[list[Signal], Signal]:
    """Compact the kept lanes of ``data`` (each ``width`` bits) to the low lanes; returns (lanes, count)."""
    n = len(keep)
    zc = prefix_sum(m, [~k for k in keep], name)
    w = len(zc[0])
    valid: list[Value] = list(keep)
    vals: list[Value] = list(data)
    zcs: list[Value] = list(zc)
    j = 0
    while (1 << j) < n:
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
        j += 1
    out = []
    for i in range(n):
        s = Signal(width, name=f"{name}_out{i}")
        m.d.comb += s.eq(Mux(valid[i], vals[i], 0))
        out.append(s)
    count = Signal(range(n + 1), name=f"{name}_count")
    m.d.comb += count.eq(sum(k for k in keep))
    return out, count
