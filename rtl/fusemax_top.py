"""``fusemax-top``: a whole multi-head attention layer from one descriptor, around the FuseMax tile engine.

The engine (:class:`attnforge.rtl.fusemax_tile.FuseMaxTile`, used as a black box through its cfg/q/k/v/o streams)
computes one query tile against every key tile of a head. Around it (docs/fusemax.md §fusemax-top):

* a **global buffer** in block RAM holding a head's K and V tiles (``Tk * d`` words each), two banks, so the next
  head's K/V load overlaps this head's query tiles; a two-slot **Q buffer** (``d`` words per slot) so the next
  query tile's Q arrives while the engine works;
* a **DMA** that walks one fixed request order (:class:`_Order`: K/V of head 0, then Q tiles, with the K/V of
  head h+1 right after the second Q tile of head h) and issues one request of ``d`` words per tile, head of line
  blocking while the target bank or slot is still in use; ``mresp.ready`` is always high because a request is
  only issued once its whole destination is free (sim/contract/memport.py rule 3). Responses come back in
  request order, so a second copy of the order walker says where each word goes;
* a **controller** that hands the engine a query tile (cfg, then Q/K/V streamed from the buffers by zero-bubble
  block-RAM readers) as soon as the tile's Q slot and its head's bank are full and the engine is idle; output
  beats leave on ``o`` straight from the engine.

A descriptor is answered on ``st`` the cycle after it is taken: code 0 runs the layer; a refused one (zero size,
above the maxima, d other than the engine's) leaves the top idle. M need not be a multiple of ``rows`` (the last key
tile's padding goes to the engine as ``pad_keys``) and a causal layer passes its diagonal per query tile (query
``i`` sits at position ``M - P + i``, so tile ``t`` gets ``diag = M - P + t * cols``). The engine takes the next
tile's cfg right after a tile's last MAC beat, so query tiles overlap; the readers restart on that handshake.
The exact schedule is :func:`attnforge.sim.fusemax.top_cycle_model.top_schedule`.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth import Module, Mux, Signal, Value, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import Out

from attnforge.rtl.common import contract_ports, pack_value, view
from attnforge.rtl.fusemax_tile import FuseMaxTile
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.designs import DIAG_BITS

FREE, LOADING, FULL = range(3)  #: a bank's or a Q slot's state


def _bits(n: int) -> int:
    return max(1, n.bit_length())


@dataclass
class _Run:
    """The descriptor as registers (loaded when a descriptor is accepted) and the derived tile counts."""

    heads: Signal
    tq: Signal  #: query tiles per head
    tk: Signal  #: key tiles per head
    q_base: Signal
    k_base: Signal
    v_base: Signal
    alpha: Signal
    running: Signal
    pad_keys: Signal  #: keys of the last key tile that are padding
    causal: Signal
    diag0: Signal  #: M - P: the causal diagonal of a head's first query tile
    #: query tiles of the layer (heads * tq), registered the cycle after the descriptor (the multiply, a DSP, was on
    #: the critical path of the request valid on ECP5). Nothing reads it in the run's first cycle: the first request
    #: is always head 0's first K tile, and no tile has been output yet.
    total_q: Signal
    first: Signal  #: the cycle after a descriptor was taken (the run's registers hold it)
    #: heads * tq as one product (combinational), which total_q and both orders' q_rem load: one multiplier
    q_tiles: Signal


class _Order:
    """The DMA's request order, walked once by the issue side and once by the response side (responses return in
    request order): K/V of head h (Tk K requests then Tk V requests) goes next once ``q_done`` Q requests have
    gone, with ``q_done`` = 0 for head 0 and ``(h-1)*Tq + min(2, Tq)`` after; otherwise the next Q tile.

    Every flag the request valid and the write enables read is a register or a sign bit, kept up to date as the
    walk advances, so no comparator sits between the order's counters and the handshakes (on ECP5 the compares
    ``kv_h < heads`` and ``q_g >= thresh`` ran on through the request valid into the buffers' state): ``kv_left``
    counts the heads whose K/V are still to request, ``lead`` is ``q_g - thresh`` (K/V may go once it is not
    negative), ``q_rem`` counts the Q tiles still to request, and ``kv_first``/``kv_is_v``/``kv_last`` are the
    position of ``kv_j`` in the head's 2 Tk requests."""

    def __init__(self, m: Module, run: _Run, name: str, max_heads: int, max_tk: int, max_q: int) -> None:
        hb, jb, gb = _bits(max_heads), _bits(2 * max_tk), _bits(max_heads * max_q)
        self.kv_h = Signal(hb + 1, name=f"{name}_kv_h")  #: head of the next K/V request
        self.kv_left = Signal(hb + 1, name=f"{name}_kv_left")  #: heads - kv_h
        self.kv_j = Signal(jb, name=f"{name}_kv_j")  #: request within that head's K/V (K tiles, then V tiles)
        self.q_g = Signal(gb + 1, name=f"{name}_q_g")  #: next Q request, counted over the whole layer
        self.q_rem = Signal(gb + 1, name=f"{name}_q_rem")  #: total_q - q_g (loaded the cycle after the descriptor)
        self.lead = Signal(signed(gb + 2), name=f"{name}_lead")  #: q_g minus the Q requests due before the next K/V
        self.adv = Signal(name=f"{name}_adv")
        self.kv_first = Signal(init=1, name=f"{name}_kv_first")
        self.kv_is_v = Signal(name=f"{name}_kv_is_v")
        self.kv_last = Signal(name=f"{name}_kv_last")
        self.run = run
        self.is_kv = (self.kv_left != 0) & ~self.lead[-1]
        self.q_left = self.q_rem != 0
        kv_adv, q_adv = self.adv & self.is_kv, self.adv & ~self.is_kv
        with m.If(run.first):  # no Q request is possible yet: head 0's K/V go first
            m.d.sync += self.q_rem.eq(run.q_tiles)
        with m.If(kv_adv):
            nj = self.kv_j + 1
            m.d.sync += [self.kv_j.eq(Mux(self.kv_last, 0, nj)), self.kv_first.eq(self.kv_last),
                         self.kv_is_v.eq(~self.kv_last & (self.kv_is_v | (nj == run.tk))),
                         self.kv_last.eq(~self.kv_last & (nj == (run.tk << 1) - 1))]
            with m.If(self.kv_last):
                m.d.sync += [self.kv_h.eq(self.kv_h + 1), self.kv_left.eq(self.kv_left - 1),
                             self.lead.eq(self.lead - Mux(self.kv_h == 0, Mux(run.tq > 1, 2, 1), run.tq))]
        with m.If(q_adv):
            m.d.sync += [self.q_g.eq(self.q_g + 1), self.q_rem.eq(self.q_rem - 1), self.lead.eq(self.lead + 1)]

    def reset(self, m: Module, heads: Value) -> None:
        m.d.sync += [self.kv_h.eq(0), self.kv_left.eq(heads), self.kv_j.eq(0), self.q_g.eq(0), self.lead.eq(0),
                     self.kv_first.eq(1), self.kv_is_v.eq(0), self.kv_last.eq(0)]


class _Reader:
    """A zero-bubble stream out of a block-RAM read port: ``data`` always shows ``mem[ptr]`` because the read
    address is the next pointer (``ptr + 1`` on a handshake, ``base`` on a restart). Valid for ``n`` beats."""

    def __init__(self, m: Module, mem: Memory, name: str, depth: int, count_bits: int) -> None:
        self.port = mem.read_port(domain="sync")
        self.ptr = Signal(range(depth + 1), name=f"{name}_ptr")
        self.cnt = Signal(count_bits, name=f"{name}_cnt")
        self.n = Signal(count_bits, name=f"{name}_n")
        self.active = Signal(name=f"{name}_active")
        self.restart = Signal(name=f"{name}_restart")
        self.base = Signal(range(depth), name=f"{name}_base")
        self.fire = Signal(name=f"{name}_fire")
        self.last = self.fire & (self.cnt == self.n - 1)
        addr = Mux(self.restart, self.base, Mux(self.fire, self.ptr + 1, self.ptr))
        m.d.comb += self.port.addr.eq(addr)
        m.d.sync += self.ptr.eq(addr)
        with m.If(self.restart):
            m.d.sync += [self.active.eq(1), self.cnt.eq(0)]
        with m.Elif(self.fire):
            m.d.sync += self.cnt.eq(self.cnt + 1)
            with m.If(self.last):
                m.d.sync += self.active.eq(0)


class FuseMaxTop(wiring.Component):
    """The engine, its K/V and Q buffers, the DMA and the layer controller; every size a parameter."""

    def __init__(self, rows: int = 4, cols: int = 4, d: int = 8, max_keys: int = 64, max_queries: int = 64,
                 max_heads: int = 16) -> None:
        self.rows, self.cols, self.d = rows, cols, d
        self.max_keys, self.max_queries, self.max_heads = max_keys, max_queries, max_heads
        self.max_tk, self.max_tq = max_keys // rows, -(-max_queries // cols)
        self.contract = contract.fusemax_top(rows, cols, d, max_keys, max_queries, max_heads)
        self.mem = contract.fusemax_top_mem(rows, cols)
        super().__init__({**contract_ports(self.contract), "mac_active": Out(1), "busy": Out(1)})

    def elaborate(self, platform: object) -> Module:
        m = Module()
        m.submodules.engine = eng = FuseMaxTile(self.rows, self.cols, self.d, self.d, self.max_keys)
        run = self._descriptor(m)
        kv_words = self.max_tk * self.d
        m.submodules.kmem = kmem = Memory(shape=unsigned(8 * self.rows), depth=2 * kv_words, init=[])
        m.submodules.vmem = vmem = Memory(shape=unsigned(8 * self.rows), depth=2 * kv_words, init=[])
        m.submodules.qmem = qmem = Memory(shape=unsigned(8 * self.cols), depth=2 * self.d, init=[])
        bank = [Signal(range(3), name=f"bank{i}") for i in range(2)]
        slot = [Signal(range(3), name=f"slot{i}") for i in range(2)]
        with m.If(self.desc.valid & self.desc.ready):
            m.d.sync += [s.eq(FREE) for s in bank + slot]
        self._issue(m, run, bank, slot)
        self._respond(m, run, bank, slot, (kmem, vmem, qmem))
        self._launch(m, run, eng, bank, slot, (kmem, vmem, qmem))
        wiring.connect(m, wiring.flipped(self.o), eng.o)
        m.d.comb += self.mac_active.eq(eng.mac_active)
        return m

    # ---------------------------------------------------------------- descriptor
    def _descriptor(self, m: Module) -> _Run:
        """Take a descriptor when idle, check it, answer on ``st`` the next cycle, and load the run's registers."""
        codes = contract.TOP_STATUS
        dsc = view(self.contract["desc"], self.desc.payload)
        lr, lc = (self.rows - 1).bit_length(), (self.cols - 1).bit_length()
        st_pending = Signal()
        code = Signal(3)
        run = _Run(heads=Signal(_bits(self.max_heads), name="heads"), tq=Signal(_bits(self.max_tq), name="tq"),
                   tk=Signal(_bits(self.max_tk), name="tk"), q_base=Signal(self.mem.addr_bits, name="q_base"),
                   k_base=Signal(self.mem.addr_bits, name="k_base"), v_base=Signal(self.mem.addr_bits, name="v_base"),
                   alpha=Signal(len(dsc.alpha.as_value()), name="alpha"), running=Signal(name="running"),
                   pad_keys=Signal(max(1, lr), name="pad_keys"), causal=Signal(name="causal"),
                   diag0=Signal(signed(DIAG_BITS), name="diag0"),
                   total_q=Signal(_bits(self.max_heads * self.max_tq) + 1, name="total_q"),
                   first=Signal(name="run_first"), q_tiles=Signal(_bits(self.max_heads * self.max_tq) + 1,
                                                                   name="q_tiles"))
        m.d.comb += run.q_tiles.eq(run.heads * run.tq)
        m.d.sync += [run.total_q.eq(run.q_tiles), run.first.eq(self.desc.valid & self.desc.ready)]
        with m.If((dsc.heads == 0) | (dsc.p == 0) | (dsc.m == 0)):
            m.d.comb += code.eq(codes["zero_size"])
        with m.Elif((dsc.heads > self.max_heads) | (dsc.p > self.max_queries) | (dsc.m > self.max_keys)):
            m.d.comb += code.eq(codes["above_max"])
        with m.Elif(dsc.d != self.d):
            m.d.comb += code.eq(codes["bad_d"])
        m.d.comb += [self.desc.ready.eq(~run.running & ~st_pending & ~self.perf.valid), self.busy.eq(run.running),
                     self.st.valid.eq(st_pending)]
        with m.If(self.st.valid & self.st.ready):
            m.d.sync += st_pending.eq(0)
        with m.If(self.desc.valid & self.desc.ready):
            m.d.sync += [st_pending.eq(1), self.st.payload.eq(code), run.running.eq(code == 0),
                         run.heads.eq(dsc.heads), run.tq.eq((dsc.p + self.cols - 1) >> lc),
                         run.tk.eq((dsc.m + self.rows - 1) >> lr),
                         run.q_base.eq(dsc.q_base), run.k_base.eq(dsc.k_base), run.v_base.eq(dsc.v_base),
                         run.alpha.eq(dsc.alpha.as_value()), run.causal.eq(dsc.causal),
                         run.pad_keys.eq((-dsc.m)[:max(1, lr)] if lr else 0), run.diag0.eq(dsc.m - dsc.p)]
        return run

    # ---------------------------------------------------------------- DMA: requests
    def _issue(self, m: Module, run: _Run, bank: list[Signal], slot: list[Signal]) -> None:
        """Walk the order; a K/V head's first request waits for its bank, a Q request for its slot."""
        d = self.d
        order = _Order(m, run, "iss", self.max_heads, self.max_tk, self.max_tq)
        k_addr, v_addr, q_addr = (Signal(self.mem.addr_bits, name=n) for n in ("k_addr", "v_addr", "q_addr"))
        with m.If(self.desc.valid & self.desc.ready):
            order.reset(m, view(self.contract["desc"], self.desc.payload).heads)
            m.d.sync += [k_addr.eq(view(self.contract["desc"], self.desc.payload).k_base),
                         v_addr.eq(view(self.contract["desc"], self.desc.payload).v_base),
                         q_addr.eq(view(self.contract["desc"], self.desc.payload).q_base)]
        kv_bank, q_slot = order.kv_h[0], order.q_g[0]
        kv_ok = ~order.kv_first | (Mux(kv_bank, bank[1], bank[0]) == FREE)
        q_ok = order.q_left & (Mux(q_slot, slot[1], slot[0]) == FREE)
        kind = Mux(order.is_kv, Mux(order.kv_is_v, 2, 1), 0)
        addr = Mux(order.is_kv, Mux(order.kv_is_v, v_addr, k_addr), q_addr)
        m.d.comb += [self.mreq.valid.eq(run.running & Mux(order.is_kv, kv_ok, q_ok)),
                     self.mreq.payload.eq(pack_value(self.contract["mreq"], {"addr": addr, "len": d, "tag": kind})),
                     order.adv.eq(self.mreq.valid & self.mreq.ready)]
        with m.If(order.adv):
            with m.If(order.is_kv):
                with m.If(order.kv_first):
                    with m.If(kv_bank):
                        m.d.sync += bank[1].eq(LOADING)
                    with m.Else():
                        m.d.sync += bank[0].eq(LOADING)
                with m.If(order.kv_is_v):
                    m.d.sync += v_addr.eq(v_addr + d)
                with m.Else():
                    m.d.sync += k_addr.eq(k_addr + d)
            with m.Else():
                m.d.sync += q_addr.eq(q_addr + d)
                with m.If(q_slot):
                    m.d.sync += slot[1].eq(LOADING)
                with m.Else():
                    m.d.sync += slot[0].eq(LOADING)

    # ---------------------------------------------------------------- DMA: responses
    def _respond(self, m: Module, run: _Run, bank: list[Signal], slot: list[Signal],
                 mems: tuple[Memory, Memory, Memory]) -> None:
        """Write each response word where the order says; the last word of a head's K/V (or of a Q tile) marks its
        bank (slot) full. ``mresp.ready`` is constant 1: every issued request has its whole destination free."""
        kmem, vmem, qmem = mems
        d, kv_words = self.d, self.max_tk * self.d
        order = _Order(m, run, "rsp", self.max_heads, self.max_tk, self.max_tq)
        beat = Signal(range(d), name="rsp_beat")
        wptr = Signal(range(kv_words + 1), name="rsp_wptr")  #: word within the bank's K (or V) half
        with m.If(self.desc.valid & self.desc.ready):
            order.reset(m, view(self.contract["desc"], self.desc.payload).heads)
            m.d.sync += [beat.eq(0), wptr.eq(0)]
        rsp = view(self.contract["mresp"], self.mresp.payload)
        fire = self.mresp.valid & self.mresp.ready
        kv_bank, q_slot = order.kv_h[0], order.q_g[0]
        wk, wv, wq = kmem.write_port(), vmem.write_port(), qmem.write_port()
        kv_addr = Mux(kv_bank, kv_words, 0) + wptr
        m.d.comb += [self.mresp.ready.eq(1),
                     wk.addr.eq(kv_addr), wk.data.eq(rsp.data[:8 * self.rows]),
                     wv.addr.eq(kv_addr), wv.data.eq(rsp.data[:8 * self.rows]),
                     wq.addr.eq(Mux(q_slot, d, 0) + beat), wq.data.eq(rsp.data[:8 * self.cols]),
                     wk.en.eq(fire & order.is_kv & ~order.kv_is_v), wv.en.eq(fire & order.is_kv & order.kv_is_v),
                     wq.en.eq(fire & ~order.is_kv)]
        last = beat == d - 1
        m.d.comb += order.adv.eq(fire & last)
        with m.If(fire):
            m.d.sync += beat.eq(Mux(last, 0, beat + 1))
            with m.If(order.is_kv):
                half_end = order.kv_j == run.tk - 1
                m.d.sync += wptr.eq(Mux(last & (half_end | order.kv_last), 0, wptr + 1))
                with m.If(last & order.kv_last):
                    with m.If(kv_bank):
                        m.d.sync += bank[1].eq(FULL)
                    with m.Else():
                        m.d.sync += bank[0].eq(FULL)
            with m.Elif(last):
                with m.If(q_slot):
                    m.d.sync += slot[1].eq(FULL)
                with m.Else():
                    m.d.sync += slot[0].eq(FULL)

    # ---------------------------------------------------------------- controller
    def _launch(self, m: Module, run: _Run, eng: FuseMaxTile, bank: list[Signal], slot: list[Signal],
                mems: tuple[Memory, Memory, Memory]) -> None:
        """Start query tile g (head h) when its Q slot and its head's bank are full and the engine is idle; stream
        Q, K, V from the buffers; the last Q beat frees the slot, the head's last tile's last V beat frees the bank;
        the layer ends with the last output beat."""
        kmem, vmem, qmem = mems
        d, kv_words = self.d, self.max_tk * self.d
        cb = _bits(kv_words)
        h = Signal(_bits(self.max_heads) + 1, name="l_h")
        t = Signal(_bits(self.max_tq), name="l_t")
        # ``h < heads`` as a register (a head is left to launch): the compare sat in front of the launch, whose
        # fan-out (the engine's cfg load, the three readers' restarts) was the fusemax-top critical path on ECP5
        more = Signal(name="l_more")
        g0 = Signal(name="l_slot")  #: the slot of the next tile (global tile index mod 2)
        last_head_tile = Signal(name="l_head_last")  #: the tile in the engine is its head's last: its V frees the bank
        running_bank = Signal(name="l_bank")
        outs = Signal(range(d + 1), name="o_beat")
        tiles_out = Signal(_bits(self.max_heads * self.max_tq) + 1, name="o_tiles")
        kr = _Reader(m, kmem, "kr", 2 * kv_words, cb)
        vr = _Reader(m, vmem, "vr", 2 * kv_words, cb)
        qr = _Reader(m, qmem, "qr", 2 * d, _bits(d))
        with m.If(self.desc.valid & self.desc.ready):  # a run has a head (or is refused: running stays 0)
            m.d.sync += [h.eq(0), t.eq(0), g0.eq(0), outs.eq(0), tiles_out.eq(0), more.eq(1)]
        bank_full = Mux(h[0], bank[1], bank[0]) == FULL
        slot_full = Mux(g0, slot[1], slot[0]) == FULL
        fx_cfg = self.contract_engine_cfg(run, run.diag0 + (t << (self.cols - 1).bit_length()))
        m.d.comb += [eng.cfg.valid.eq(run.running & more & bank_full & slot_full),
                     eng.cfg.payload.eq(fx_cfg)]
        start = eng.cfg.valid & eng.cfg.ready
        for r, base, n in ((kr, Mux(h[0], kv_words, 0), run.tk * d), (vr, Mux(h[0], kv_words, 0), run.tk * d),
                           (qr, Mux(g0, d, 0), d)):
            m.d.comb += [r.restart.eq(start), r.base.eq(base)]
            with m.If(start):
                m.d.sync += r.n.eq(n)
        m.d.comb += [eng.k.valid.eq(kr.active), eng.k.payload.eq(kr.port.data), kr.fire.eq(eng.k.valid & eng.k.ready),
                     eng.v.valid.eq(vr.active), eng.v.payload.eq(vr.port.data), vr.fire.eq(eng.v.valid & eng.v.ready),
                     eng.q.valid.eq(qr.active), eng.q.payload.eq(qr.port.data), qr.fire.eq(eng.q.valid & eng.q.ready)]
        with m.If(start):
            tile_end = t == run.tq - 1
            m.d.sync += [g0.eq(~g0), last_head_tile.eq(tile_end), running_bank.eq(h[0]),
                         t.eq(Mux(tile_end, 0, t + 1)), h.eq(h + tile_end)]
            with m.If(tile_end):
                m.d.sync += more.eq(h + 1 < run.heads)
        self._frees(m, qr, vr, g0, last_head_tile, running_bank, bank, slot)
        layer_done = Signal()  #: the layer's last output beat
        m.d.comb += layer_done.eq(self.o.valid & self.o.ready & (outs == d - 1) & (tiles_out + 1 == run.total_q))
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += outs.eq(Mux(outs == d - 1, 0, outs + 1))
            with m.If(outs == d - 1):
                m.d.sync += tiles_out.eq(tiles_out + 1)
        with m.If(layer_done):
            m.d.sync += run.running.eq(0)
        self._perf(m, run, eng, layer_done)

    def _perf(self, m: Module, run: _Run, eng: FuseMaxTile, layer_done: Signal) -> None:
        """The layer's own counters, reported on ``perf`` the cycle after its last output beat: cycles from the
        descriptor handshake (cycle 0) to the last output beat, and the cycles in which the 2D MACs fired."""
        lay = self.contract["perf"]
        cyc, macs = Signal(lay["cycles"].width, name="perf_cyc"), Signal(lay["mac_cycles"].width, name="perf_macs")
        m.d.comb += self.perf.payload.eq(pack_value(lay, {"cycles": cyc, "mac_cycles": macs}))
        # the engine's MAC flag registered before the counter adds it (its handshake logic then ends at a register:
        # on ECP5 it ran on into this counter's carry chain); the layer's last MAC is long before its last output
        # beat, so the count is complete when it is reported
        mac_r = Signal(name="perf_mac_r")
        m.d.sync += mac_r.eq(eng.mac_active)
        with m.If(self.desc.valid & self.desc.ready):
            m.d.sync += [cyc.eq(1), macs.eq(0)]
        with m.Elif(run.running & ~layer_done):
            m.d.sync += [cyc.eq(cyc + 1), macs.eq(macs + mac_r)]
        with m.If(self.perf.valid & self.perf.ready):
            m.d.sync += self.perf.valid.eq(0)
        with m.If(layer_done):
            m.d.sync += self.perf.valid.eq(1)

    def _frees(self, m: Module, qr: _Reader, vr: _Reader, g0: Signal, last_head_tile: Signal, running_bank: Signal,
               bank: list[Signal], slot: list[Signal]) -> None:
        """The last Q beat of a tile frees its slot (the slot is ``~g0``: g0 already points at the next tile); the
        last V beat of a head's last tile frees the head's bank."""
        with m.If(qr.last):
            with m.If(g0):
                m.d.sync += slot[0].eq(FREE)
            with m.Else():
                m.d.sync += slot[1].eq(FREE)
        with m.If(vr.last & last_head_tile):
            with m.If(running_bank):
                m.d.sync += bank[1].eq(FREE)
            with m.Else():
                m.d.sync += bank[0].eq(FREE)

    def contract_engine_cfg(self, run: _Run, diag: Value) -> object:
        """The engine's cfg word of a query tile: the head's key-tile count, the exponent constant, the padding of
        the last key tile, and (causal layers) the tile's diagonal."""
        eng_c = contract.fusemax_tile(self.rows, self.cols, self.d, self.d, self.max_keys)
        return pack_value(eng_c["cfg"], {"n_tiles": run.tk, "alpha": run.alpha, "pad_keys": run.pad_keys,
                                         "causal": run.causal, "diag": diag})
