"""Cycle model of ``spatten-top`` (rtl/spatten/top.py): a cycle-by-cycle walk of the top's glue -- controller,
Q/K/V fetchers, memory port, importance feeder -- around the one-query pipeline, whose stages are charged with
their own exact formulas (:mod:`attnforge.sim.spatten.cycle_model`, :mod:`attnforge.sim.spatten.topk_golden`,
:mod:`attnforge.sim.spatten.importance_golden`), fed with the golden run's data-dependent facts (refetch decisions,
top-k results, kept sets, alive lists).

Why cycle by cycle and not a closed form: three requesters share one port with a fixed priority (K, V, Q), the
V collector holds the port's response queue while it hands a gathered beat to the pipeline, and the tap and the
importance block exchange back-pressure; the walk replays those rules as the RTL's registers do, so it predicts
the fastbench ``cycles`` (first descriptor handshake to the last ``o``/``r`` handshake).

Conventions (each stage's formula counts from its first input handshake to its last output handshake, the
difference of the two cycles):

* front: the decision comes ``2 nbS + front_tail`` cycles after the pass's last K beat
  (:func:`attnforge.sim.spatten.cycle_model.front_tail`; :func:`~attnforge.sim.spatten.cycle_model.front_cycles`
  with its K beats answered at once);
* back: the local-V top-k's last output row ``hw_topk(...).cycles`` after its first input, prob x V's output
  ``PV_MUL_PIPE + 1 + pv_tree_pipe`` cycles after its last ``vmem`` beat (:func:`back_cycles`);
* importance: ready again one cycle after its answer (add_tokens ``B + 3``, add_head ``3 + log2 max_d``,
  read ``B + 1 + IMP_GATHER_PIPE``, clear 1 cycle after the first beat); read-out beats reach the top-k
  ``2 + IMP_GATHER_PIPE`` cycles after their input; its input is a registered slice (:class:`_ImpIn`).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from attnforge.sim.contract import PV_MUL_PIPE, pv_tree_pipe
from attnforge.sim.contract.depths import (
    IMP_GATHER_PIPE,
    SKID_LATENCY,
    SP_BACK_SLICES,
    SP_DESC_REG,
    SP_IMP_SLICES,
    SP_Q_REQ_REG,
    sp_boundary_tail,
)
from attnforge.sim.contract.memport import MemTiming
from attnforge.sim.contract.spatten_top import SpattenTopCfg
from attnforge.sim.spatten.cycle_model import front_tail
from attnforge.sim.spatten.top_golden import TopRun
from attnforge.sim.spatten.topk_golden import hw_topk

TAG_K, TAG_V, TAG_Q = "K", "V", "Q"


@dataclass
class _Job:
    """One (head, query) of a layer: the facts its timing depends on."""

    refetch: bool
    topk_cycles: int
    rows_out: list[int]  #: kept count per top-k output row, one per input row (one V request each)


@dataclass
class _Port:
    """The HDL memory model (rtl/fastmem.py): a slot per request until its last beat is taken; beats in request
    order, at most one per ``interval``; a beat not taken is held."""

    t: MemTiming
    q: deque = field(default_factory=deque)  #: [due, beats left, tag]
    nxt: int = 0
    inflight: int = 0
    requests: int = 0
    beats: int = 0

    def ready(self) -> bool:
        return self.inflight < self.t.outstanding

    def offered(self, c: int) -> str | None:
        if self.q and c >= self.q[0][0] and c >= self.nxt:
            return self.q[0][2]
        return None


class _ImpIn:
    """The importance block behind its input slice (rtl/common.py SkidBuffer): the slice takes a beat while it
    holds fewer than two (its ready is a register), the block takes the oldest one from the cycle after it entered
    on, while the block is ready; a taken beat sets when the block is ready again (the job's answer)."""

    def __init__(self, head_ready: int) -> None:
        assert SP_IMP_SLICES == 1 and SKID_LATENCY == 1, "the walk models one two-entry slice"
        self.q: deque[list] = deque()  #: [entered, kind, taken] per beat in the slice
        self.ready_at = 0  #: first cycle the block takes a beat
        self.at = 0  #: next cycle not yet walked
        #: cycles from a job's last beat taken to the block's next ready (answered, then ready the cycle after):
        #: add_tokens 4 + 1, add_head ``head_ready``, clear 1 + 1, read 2 + gather + 1; a job's other beats: the
        #: next cycle
        self.after = {"tok_last": 5, "head": head_ready, "clear": 2, "read_last": 3 + IMP_GATHER_PIPE}

    def room(self, c: int) -> bool:
        """The slice's ready in cycle ``c`` (its occupancy at the start of that cycle), walked up to ``c``."""
        while self.at < c:
            self._step(self.at, None)
        return len(self.q) < 2

    def cycle(self, c: int, kind: str | None = None) -> list | None:
        """Walk up to cycle ``c``, then cycle ``c`` with a beat of ``kind`` offered (taken when the slice has
        room). Returns the beat's entry if the slice took it."""
        self.room(c)
        return self._step(c, kind)

    def _step(self, c: int, kind: str | None) -> list | None:
        room = len(self.q) < 2
        if self.q and self.q[0][0] < c and c >= self.ready_at:
            ent = self.q.popleft()
            ent[2] = c
            if ent[1] in self.after:
                self.ready_at = c + self.after[ent[1]]
        ent = None
        if kind is not None and room:
            ent = [c, kind, None]
            self.q.append(ent)
        self.at = c + 1
        return ent


class _Sim:
    """What every layer's walk shares: the instance, the port, the pipeline stages' fixed latencies."""

    def __init__(self, run: TopRun, cfg: SpattenTopCfg, timing: MemTiming) -> None:
        self.run, self.cfg, self.fx = run, cfg, cfg.fx
        self.s = cfg.fx.s
        self.port = _Port(timing.validate())
        fx = self.fx
        self.front_tail = front_tail(fx)
        self.pv_tail = PV_MUL_PIPE + 1 + pv_tree_pipe(fx)
        self.imp = _ImpIn(4 + cfg.imp.abs_tree_pipe)  # add_head answered 3 + levels on, ready after

    # ---------------------------------------------------------------- one layer
    def layer_jobs(self, li: int) -> list[_Job]:
        """The layer's (head, query) jobs in the Q fetcher's order (heads outer, queries inner), with the
        local-V top-k run on the final probabilities as the pipeline runs it."""
        lr, s = self.run.layers[li], self.s
        jobs = []
        for hi in range(lr.heads.size):
            for pi in range(lr.out.shape[1]):  # the query rows
                tk = hw_topk(lr.probs[hi, pi].tolist(), lr.cfg.kv, s)
                n = lr.alive.size  # one output row per input row, its kept indices compacted (count may be 0)
                rows = [sum(1 for i in tk.indices if r * s <= i < (r + 1) * s) for r in range(-(-n // s))]
                jobs.append(_Job(bool(lr.refetch[hi, pi]), tk.cycles, rows))
        return jobs


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def _push(imp: _ImpIn, c: int, kind: str) -> tuple[int, list]:
    """The controller offers one beat from cycle ``c`` until the slice takes it. Returns the cycle it was taken
    and its slice entry."""
    while (ent := imp.cycle(c, kind)) is None:
        c += 1
    return c, ent


def _taken(imp: _ImpIn, ent: list) -> int:
    """Walk the slice until the block takes ``ent`` (no beat offered meanwhile); returns that cycle."""
    while ent[2] is None:
        imp.cycle(imp.at)
    return ent[2]


def _boundary(sim: _Sim, li: int, c: int) -> int:
    """BOUND/TOPK from the descriptor handshake ``c`` of a later layer or a carried iteration's first: per list
    (tokens, then heads) one cycle to skip it, or the read beats into the top-k (one per cycle the importance
    input slice has room) and its last output. BOUND starts after the CHECK cycle (``SP_DESC_REG``). Returns RUN's
    first cycle."""
    lr = sim.run.layers[li]
    prev = sim.run.layers[li - 1]
    cur = c + 1 + SP_DESC_REG
    carry = int(lr.cfg.carry)  # the list's last token is kept outside the top-k
    if lr.cfg.restart is not None:  # a carried iteration: the whole context; heads restart whole
        lists = ((lr.cfg.restart - 1, lr.cfg.tokens - 1, lr.token_topk), (lr.heads.size, lr.heads.size, None))
    else:
        lists = ((prev.alive.size - carry, lr.cfg.tokens - carry, lr.token_topk),
                 (prev.heads.size, lr.heads.size, lr.head_topk))
    for n_rd, keep, tk in lists:
        if keep == n_rd or tk is None:
            cur += 1
            continue
        beats = _ceil(n_rd, sim.s)
        ents = []
        for b in range(beats):
            at, ent = _push(sim.imp, cur, "read_last" if b == beats - 1 else "read")
            cur = at + 1
            ents.append(ent)
        # the block takes the read beats on consecutive cycles once it took the first (the top-k's formula assumes
        # its input one row per cycle); the read-out, the top-k's input slice and the compaction's pick register
        # add the contract's boundary tail
        cur = _taken(sim.imp, ents[0]) + tk.cycles + sp_boundary_tail()
    return cur


def top_cycles(run: TopRun, cfg: SpattenTopCfg, timing: MemTiming, refusals: int = 0) -> dict[str, int]:
    """The fastbench ``cycles`` of a pass (``refusals`` bad descriptors first, each answered in 2 +
    ``SP_DESC_REG`` cycles: IDLE -> CHECK -> ERR -> IDLE), and the memory port's request and beat counts."""
    sim = _Sim(run, cfg, timing)
    c = (2 + SP_DESC_REG) * refusals  # the first good descriptor's handshake (the count starts at the first refusal's)
    done = c
    for li in range(len(run.layers)):
        if li == 0:  # CHECK, then CLEAR offers one importance beat, RUN the cycle after the slice takes it
            start = _push(sim.imp, c + 1 + SP_DESC_REG, "clear")[0] + 1
        else:
            start = _boundary(sim, li, c)
        done = _Layer(sim, li).run(start)
        c = done + 1  # DONE's r handshake is ``done``; IDLE takes the next descriptor the cycle after
    return {"cycles": done + 1, "requests": sim.port.requests, "beats": sim.port.beats}


class _Layer:
    """RUN of one layer: the registers of the fetchers, the pipeline's two halves, the collector and the feeder.
    Each cycle :meth:`_comb` reads them as they stand, then the ``_edge`` methods update them."""

    def __init__(self, sim: _Sim, li: int) -> None:
        lr = sim.run.layers[li]
        self.sim, self.port, self.s = sim, sim.port, sim.s
        self.jobs = sim.layer_jobs(li)
        self.alive = lr.alive.tolist()
        self.n, self.total = len(self.alive), len(self.jobs)
        self.nbs = _ceil(self.n, self.s)
        self.imp = sim.imp
        self.q_granted, self.cred, self.q_done, self.issued = 0, 2, False, 0
        self.q_from = 0  #: first cycle the Q request register holds the next (head, query)'s request
        self.qbuf: deque[int] = deque()  # cycles from which each buffered Q row is readable
        self.fstate, self.fjob, self.k_got, self.dec_at, self.pass2 = "IDLE", -1, 0, None, False
        self.k_on, self.k_pos, self.k_ln, self.k_start = False, 0, 0, 0
        self.busy, self.bjob, self.t_rows_in, self.t_on_from = False, -1, 0, 0
        self.tap: deque[tuple[int, bool]] = deque()  # (readable from, last row)
        self.topk_out: deque[tuple[int, int]] = deque()  # (cycle the row is offered, kept count)
        self.o_at: int | None = None
        self.v_on, self.v_j, self.v_cnt, self.vreq_sent = False, 0, 0, 0
        self.vcnt: deque[tuple[int, int]] = deque()  # (count, readable from)
        self.col, self.got, self.need, self.full = False, 0, 0, False
        self.v_rows_done, self.v_rows_total, self.v_fired = 0, 0, 0
        self.outs, self.fed, self.head_mode = 0, 0, False
        self.ocopy: deque[int] = deque()

    def run(self, c0: int) -> tuple[int, int]:
        """Walk from RUN's first cycle; returns the ``r`` handshake (DONE) and the importance block's next ready
        cycle. RUN sees the last add_head's count the cycle after it, DONE the cycle after that."""
        c = c0
        self.q_from = c0 + SP_Q_REQ_REG  # the Q request register holds RUN's first request from then on
        while True:
            g = self._comb(c)
            self._port_edge(c, g)
            self._kfetch_edge(g)
            self._front_edge(c, g)
            self._back_edge(c, g)
            self._collect_edge(c, g)
            self._feeder_edge(c, g)
            if self.q_done and self.outs == self.issued == self.fed == self.total:
                return c + 2
            c += 1
            if c - c0 > 100_000_000:
                raise RuntimeError("spatten-top cycle model: no progress")

    def _comb(self, c: int) -> dict[str, object]:
        """The handshakes of cycle ``c`` (the RTL's combinational signals)."""
        pr = self.port.ready()
        k_more = self.k_pos < self.n
        k_ext = (self.k_on and k_more and self.k_ln != 0 and self.alive[self.k_pos] == self.k_start + self.k_ln
                 and self.k_ln != (1 << self.sim.cfg.len_bits) - 1)
        k_valid = self.k_on and self.k_ln != 0 and not k_ext
        q_valid = not self.q_done and self.cred != 0 and c >= self.q_from
        tag = self.port.offered(c)
        v_ready = self.col and self.got != self.need and not self.full
        final = (self.fstate == "PASS" and self.dec_at == c
                 and (self.pass2 or not self.jobs[self.fjob].refetch))
        if self.head_mode:
            f_valid = bool(self.ocopy) and self.ocopy[0] <= c
        else:
            f_valid = bool(self.tap) and self.tap[0][0] <= c
        vreq_ready = not self.v_on and len(self.vcnt) < 4 and self.vreq_sent - self.v_fired < 4  # vcnt, pairs
        return {
            "k_more": k_more, "k_ext": k_ext, "k_grant": k_valid and pr, "v_grant": self.v_on and not k_valid and pr,
            "q_grant": q_valid and not k_valid and not self.v_on and pr, "tag": tag,
            "resp": tag is not None and (tag != TAG_V or v_ready),
            "fill": self.col and self.got == self.need,
            "q_fire": self.fstate == "IDLE" and bool(self.qbuf) and self.qbuf[0] <= c,
            "kreq": self.fstate == "KREQ" and not self.k_on, "final": final,
            "hand": not self.busy and (final or self.fstate == "HAND"),
            "t_fire": self.busy and c >= self.t_on_from and self.t_rows_in < self.nbs and len(self.tap) < 2,
            "feed": f_valid and self.imp.room(c),
            "vreq": bool(self.topk_out) and self.topk_out[0][0] <= c and vreq_ready,
            "o": self.o_at is not None and c >= self.o_at and len(self.ocopy) < 2,
        }

    def _port_edge(self, c: int, g: dict) -> None:
        """The memory model: the beat offered is taken (routed by its tag), the granted request is queued."""
        port = self.port
        if g["resp"]:
            ent = port.q[0]
            port.nxt = c + port.t.interval
            port.beats += 1
            ent[1] -= 1
            if ent[1] == 0:
                port.q.popleft()
                port.inflight -= 1
            if g["tag"] == TAG_Q:
                self.qbuf.append(c + 1)
            elif g["tag"] == TAG_K:
                self.k_got += 1
                if self.k_got == self.n:
                    self.dec_at = c + 2 * self.nbs + self.sim.front_tail
            else:
                self.got += 1
        if g["k_grant"] or g["v_grant"] or g["q_grant"]:
            tag = TAG_K if g["k_grant"] else TAG_V if g["v_grant"] else TAG_Q
            port.q.append([c + port.t.latency, self.k_ln if g["k_grant"] else 1, tag])
            port.inflight += 1
            port.requests += 1
        if g["q_grant"]:
            self.q_from = c + 1 + SP_Q_REQ_REG  # the next (head, query)'s request is registered first
            self.q_granted += 1
            self.q_done = self.q_granted == self.total
        self.cred += int(g["q_fire"]) - int(g["q_grant"])

    def _kfetch_edge(self, g: dict) -> None:
        """The K fetcher: a run grows one alive token per cycle; a grant starts the next run or ends the walk."""
        on, pos, ln = self.k_on, self.k_pos, self.k_ln
        if g["kreq"]:
            self.k_on, self.k_pos, self.k_ln = True, 0, 0
        if g["k_ext"]:
            self.k_ln, self.k_pos = ln + 1, pos + 1
        elif (on and ln == 0 and g["k_more"]) or (g["k_grant"] and g["k_more"]):
            self.k_start, self.k_ln, self.k_pos = self.alive[pos], 1, pos + 1
        elif g["k_grant"]:
            self.k_ln, self.k_on = 0, False

    def _front_edge(self, c: int, g: dict) -> None:
        """The pipeline front's FSM: IDLE -> KREQ -> PASS (-> KREQ for the LSB pass) -> [HAND] -> IDLE."""
        st = self.fstate
        if st == "IDLE" and g["q_fire"]:
            self.qbuf.popleft()
            self.issued += 1
            self.fjob, self.pass2, self.fstate, self.k_got, self.dec_at = self.fjob + 1, False, "KREQ", 0, None
        elif st == "KREQ" and g["kreq"]:
            self.fstate = "PASS"
        elif st == "PASS" and self.dec_at == c:
            if g["final"]:
                self.fstate = "HAND" if self.busy else "IDLE"
            else:
                self.pass2, self.fstate, self.k_got, self.dec_at = True, "KREQ", 0, None
        elif st == "HAND" and not self.busy:
            self.fstate = "IDLE"

    def _back_edge(self, c: int, g: dict) -> None:
        """The back: top-k inputs (and tap rows), its output rows, one V request each, the V fetcher's grants,
        the output beat, the hand-off."""
        if g["t_fire"]:
            self.tap.append((c + 1, self.t_rows_in == self.nbs - 1))
            self.t_rows_in += 1
            if self.t_rows_in == self.nbs:  # stalls while loading delay every later stage alike
                # the last row leaves the top-k's output slice (SP_BACK_SLICES) one cycle after the top-k
                last_out = c + self.jobs[self.bjob].topk_cycles - (self.nbs - 1) + SP_BACK_SLICES * SKID_LATENCY
                rows = self.jobs[self.bjob].rows_out
                self.topk_out.extend((last_out - (len(rows) - 1 - i), cnt) for i, cnt in enumerate(rows))
        if g["vreq"]:
            _, cnt = self.topk_out.popleft()
            self.vcnt.append((cnt, c + 1))
            self.v_on, self.v_j, self.v_cnt = cnt != 0, 0, cnt
            self.vreq_sent += 1
        elif g["v_grant"]:
            self.v_j += 1
            self.v_on = self.v_j != self.v_cnt
        if g["o"]:
            self.ocopy.append(c + 1)
            self.outs += 1
            self.busy, self.o_at = False, None
        if g["hand"]:
            self.busy, self.bjob, self.t_rows_in, self.t_on_from = True, self.bjob + 1, 0, c + 1
            self.v_rows_done, self.v_rows_total = 0, len(self.jobs[self.bjob].rows_out)

    def _collect_edge(self, c: int, g: dict) -> None:
        """The V collector: a count from the FIFO, the rows as they come, the gathered beat into prob x V (its
        output ``pv_tail`` cycles after the job's last beat)."""
        if self.full:  # vmem fires: prob x V is always ready
            self.full, self.col = False, False
            self.v_rows_done += 1
            self.v_fired += 1
            if self.v_rows_done == self.v_rows_total:
                self.o_at = c + self.sim.pv_tail
            return
        if g["fill"]:
            self.full = True
        if not self.col and self.vcnt and self.vcnt[0][1] <= c:
            cnt, _ = self.vcnt.popleft()
            self.col, self.got, self.need = True, 0, cnt

    def _feeder_edge(self, c: int, g: dict) -> None:
        """The importance feeder: tap rows as add_tokens beats, then the output copy as add_head, into the
        importance input slice (which walks its cycle ``c`` here, beat or not)."""
        if not g["feed"]:
            self.imp.cycle(c)
            return
        if self.head_mode:
            self.ocopy.popleft()
            self.head_mode = False
            self.fed += 1
            kind = "head"
        else:
            _, last = self.tap.popleft()
            kind = "tok_last" if last else "tok"
            if last:
                self.head_mode = True
        assert self.imp.cycle(c, kind) is not None
