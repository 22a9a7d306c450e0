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

* front: the decision comes ``2 nbS + softmax_latency + qk_tree_pipe + decision_latency + 4`` cycles after the
  pass's last K beat (:func:`attnforge.sim.spatten.cycle_model.front_cycles` with its K beats answered at once);
* back: the local-V top-k's last output row ``hw_topk(...).cycles`` after its first input, prob x V's output
  ``3 + pv_tree_pipe`` cycles after its last ``vmem`` beat (:func:`back_cycles`);
* importance: ready again one cycle after its answer (add_tokens ``B + 3``, add_head ``3 + log2 max_d``,
  read ``B + 1``, clear 1 cycle after the first beat); read-out beats reach the top-k 2 cycles after their input.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from attnforge.sim.contract import decision_latency, pv_tree_pipe, qk_tree_pipe
from attnforge.sim.contract.memport import MemTiming
from attnforge.sim.contract.spatten_top import SpattenTopCfg
from attnforge.sim.spatten.cycle_model import softmax_latency
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


class _Sim:
    """The walk; one method per RTL part, all evaluated on the registers as they stand at the cycle."""

    def __init__(self, run: TopRun, cfg: SpattenTopCfg, timing: MemTiming) -> None:
        self.run, self.cfg, self.fx = run, cfg, cfg.fx
        self.s = cfg.fx.s
        self.port = _Port(timing.validate())
        fx = self.fx
        self.front_tail = softmax_latency(fx) + qk_tree_pipe(fx) + decision_latency(fx) + 4
        self.pv_tail = 3 + pv_tree_pipe(fx)

    # ---------------------------------------------------------------- one layer
    def layer_jobs(self, li: int) -> list[_Job]:
        lr, s = self.run.layers[li], self.s
        jobs = []
        for hi in range(lr.heads.size):
            for pi in range(lr.alive.size):
                tk = hw_topk(lr.probs[hi, pi].tolist(), lr.cfg.kv, s)
                n = lr.alive.size  # one output row per input row, its kept indices compacted (count may be 0)
                rows = [sum(1 for i in tk.indices if r * s <= i < (r + 1) * s) for r in range(-(-n // s))]
                jobs.append(_Job(bool(lr.refetch[hi, pi]), tk.cycles, rows))
        return jobs


def _ceil(a: int, b: int) -> int:
    return -(-a // b)


def top_cycles(run: TopRun, cfg: SpattenTopCfg, timing: MemTiming, refusals: int = 0) -> dict[str, int]:
    """The fastbench ``cycles`` of a pass (``refusals`` bad descriptors first, each answered in 2 cycles), and the
    memory port's request and beat counts."""
    sim = _Sim(run, cfg, timing)
    c = 2 * refusals  # cycle of the first good descriptor's handshake (the count starts at the first refusal)
    prev_alive, prev_heads = None, None
    imp_ready = 0  # first cycle the importance block takes a beat
    last = c
    for li, lr in enumerate(run.layers):
        # c: the descriptor handshake (IDLE with desc valid)
        if li == 0:
            clear = max(c + 1, imp_ready)  # CLEAR waits for imp.i.ready
            imp_ready = clear + 2
            run_start = clear + 1
        else:
            cur = c + 1
            for n_rd, keep, tk in ((prev_alive, lr.cfg.tokens, lr.token_topk),
                                   (prev_heads, lr.heads.size, lr.head_topk)):
                if keep == n_rd or tk is None:
                    cur += 1
                    continue
                beats = _ceil(n_rd, sim.s)
                first = max(cur, imp_ready)  # BOUND: one read beat per ready cycle
                last_in = first + beats - 1
                imp_ready = last_in + 3
                last_out = first + 2 + tk.cycles
                cur = last_out + 1
            run_start = cur
        done, imp_ready = _run_layer(sim, li, run_start, imp_ready)
        c = done + 1  # DONE's r handshake is ``done``; IDLE (the next descriptor's handshake) the cycle after
        last = done
        prev_alive, prev_heads = lr.alive.size, lr.heads.size
    return {"cycles": last + 1, "requests": sim.port.requests, "beats": sim.port.beats}


def _run_layer(sim: _Sim, li: int, c0: int, imp_ready: int) -> tuple[int, int]:  # noqa: C901, PLR0912, PLR0915
    """RUN from cycle ``c0``: every (head, query) of the layer; returns the cycle of the ``r`` handshake (DONE)
    and the importance block's next ready cycle."""
    lr, s, port = sim.run.layers[li], sim.s, sim.port
    jobs = sim.layer_jobs(li)
    alive = lr.alive.tolist()
    n = len(alive)
    nbs = _ceil(n, s)
    total = len(jobs)
    # Q fetcher
    q_granted, cred, q_done = 0, 2, False
    qbuf: deque[int] = deque()  # cycles from which each buffered Q row is readable
    issued = 0
    # front
    fstate, fjob, k_got, k_need, dec_at, pass2 = "IDLE", -1, 0, n, None, False
    # K fetcher
    k_on, k_pos, k_ln, k_start = False, 0, 0, 0
    # back
    busy, bjob, t_rows_in, tap = False, -1, 0, deque()
    t_first_in, t_on_from, topk_out, vreq_sent = None, 0, deque(), 0
    o_at, o_pending = None, False
    # V fetcher
    v_on, v_j, v_cnt = False, 0, 0
    vcnt: deque[tuple[int, int]] = deque()  # (count, readable from)
    col, got, need, full = False, 0, 0, False
    v_rows_done, v_rows_total, v_fired = 0, 0, 0
    # outputs / feeder
    outs = fed = 0
    ocopy: deque[int] = deque()
    head_mode = False
    tap_sent = 0
    done_cycle = None
    c = c0
    while True:
        # ------------------------------------------------ combinational, at cycle c
        pr = port.ready()
        k_more = k_pos < n
        k_ext = (k_on and k_more and k_ln != 0 and alive[k_pos] == k_start + k_ln
                 and k_ln != (1 << sim.cfg.len_bits) - 1)
        k_valid = k_on and k_ln != 0 and not k_ext
        v_valid = v_on
        q_valid = (not q_done) and cred != 0
        k_grant = k_valid and pr
        v_grant = v_valid and not k_valid and pr
        q_grant = q_valid and not k_valid and not v_valid and pr
        # response offered
        tag = port.offered(c)
        v_ready = col and got != need and not full
        fill = col and got == need  # the collector's registers as they stand this cycle
        resp_fire = tag is not None and (tag != TAG_V or v_ready)
        # pipeline q
        q_avail = bool(qbuf) and qbuf[0] <= c
        q_fire = fstate == "IDLE" and q_avail and issued < total
        # kreq
        kreq_fire = fstate == "KREQ" and not k_on
        # decision / hand
        final_now = fstate == "PASS" and dec_at == c and (pass2 or not jobs[fjob].refetch)
        hand = not busy and (final_now or fstate == "HAND")
        # top-k input / tap
        t_fire = busy and c >= t_on_from and t_rows_in < nbs and len(tap) < 2
        # feeder
        imp_ok = c >= imp_ready
        if head_mode:
            f_valid = bool(ocopy) and ocopy[0] <= c
        else:
            f_valid = bool(tap) and tap[0][0] <= c
        feed_fire = f_valid and imp_ok
        # vreq from top-k rows
        vreq_ready = not v_on and len(vcnt) < 4 and vreq_sent - v_fired < 4  # vcnt and pairs FIFOs
        vreq_fire = bool(topk_out) and topk_out[0][0] <= c and vreq_ready
        # vmem
        vmem_fire = full
        # o
        o_fire = o_pending and o_at is not None and c >= o_at and len(ocopy) < 2
        # ------------------------------------------------ registers, at the edge
        if resp_fire:
            ent = port.q[0]
            port.nxt = c + port.t.interval
            port.beats += 1
            ent[1] -= 1
            if ent[1] == 0:
                port.q.popleft()
                port.inflight -= 1
            if tag == TAG_Q:
                qbuf.append(c + 1)
            elif tag == TAG_K:
                k_got += 1
                if k_got == k_need:
                    dec_at = c + 2 * nbs + sim.front_tail
            else:
                got += 1
        grant = k_grant or v_grant or q_grant
        if grant:
            ln = k_ln if k_grant else 1
            port.q.append([c + port.t.latency, ln, TAG_K if k_grant else TAG_V if v_grant else TAG_Q])
            port.inflight += 1
            port.requests += 1
        # K fetcher
        if kreq_fire:
            k_on_n, k_pos_n, k_ln_n = True, 0, 0
        else:
            k_on_n, k_pos_n, k_ln_n = k_on, k_pos, k_ln
        if k_ext:
            k_ln_n, k_pos_n = k_ln + 1, k_pos + 1
        elif k_on and k_ln == 0 and k_more:
            k_start, k_ln_n, k_pos_n = alive[k_pos], 1, k_pos + 1
        elif k_grant:
            if k_more:
                k_start, k_ln_n, k_pos_n = alive[k_pos], 1, k_pos + 1
            else:
                k_ln_n, k_on_n = 0, False
        k_on, k_pos, k_ln = k_on_n, k_pos_n, k_ln_n
        # Q fetcher
        if q_grant:
            q_granted += 1
            if q_granted == total:
                q_done = True
        cred = cred - int(q_grant) + int(q_fire)
        # front FSM
        if fstate == "IDLE" and q_fire:
            qbuf.popleft()
            issued += 1
            fjob, pass2, fstate, k_got, dec_at = fjob + 1, False, "KREQ", 0, None
        elif fstate == "KREQ" and kreq_fire:
            fstate = "PASS"
        elif fstate == "PASS" and dec_at == c:
            if final_now:
                fstate = "HAND" if busy else "IDLE"
            else:
                pass2, fstate, k_got, dec_at = True, "KREQ", 0, None
        elif fstate == "HAND" and not busy:
            fstate = "IDLE"
        # back
        if t_fire:
            tap.append((c + 1, t_rows_in == nbs - 1))
            if t_rows_in == 0:
                t_first_in = c
            t_rows_in += 1
            if t_rows_in == nbs:
                last_out = t_first_in + jobs[bjob].topk_cycles + (c - t_first_in - (nbs - 1))
                rows = jobs[bjob].rows_out
                for i, cnt in enumerate(rows):
                    topk_out.append((last_out - (len(rows) - 1 - i), cnt))
        if vreq_fire:
            _, cnt = topk_out.popleft()
            vcnt.append((cnt, c + 1))
            if cnt:
                v_on, v_j, v_cnt = True, 0, cnt
            vreq_sent += 1
        elif v_grant:
            v_j += 1
            if v_j == v_cnt:
                v_on = False
        # collect
        if vmem_fire:
            full, col = False, False
            v_rows_done += 1
            v_fired += 1
            if v_rows_done == v_rows_total:
                o_at, o_pending = c + sim.pv_tail, True
        else:
            if fill:
                full = True
            if not col and vcnt and vcnt[0][1] <= c:
                cnt, _ = vcnt.popleft()
                col, got, need = True, 0, cnt
        # o and the feeder
        if o_fire:
            ocopy.append(c + 1)
            outs += 1
            busy, o_pending, o_at, t_first_in = False, False, None, None
        if feed_fire:
            if head_mode:
                ocopy.popleft()
                head_mode = False
                fed += 1
                imp_ready = c + 4 + sim.cfg.imp.abs_tree_pipe
            else:
                _, lastrow = tap.popleft()
                tap_sent += 1
                if lastrow:
                    head_mode = True
                    imp_ready = c + 5
        if hand:
            busy, bjob, t_rows_in, t_first_in, t_on_from = True, bjob + 1, 0, None, c + 1
            v_rows_done, v_rows_total = 0, len(jobs[bjob].rows_out)
        # RUN -> DONE
        if done_cycle is None and q_done and outs == issued == fed == total:
            done_cycle = c + 2
        c += 1
        if done_cycle is not None and c >= done_cycle:
            return done_cycle, imp_ready
        if c - c0 > 10_000_000:
            raise RuntimeError("spatten-top cycle model: no progress")
