"""An event-level replay of one HBM2 channel: the commands a controller issues for a stream of read requests.

Why, beside the closed queue of :mod:`attnforge.sim.memory.dram`: that queue is a mean-value model, exact for a
load spread evenly over the banks and buses, and calibrated on one point (the in-order stream at 16 requests in
flight). Real streams are not even: an in-order stream puts 16 consecutive requests in one pseudo-channel's row,
so at a few requests in flight they queue on one data bus while the other idles, and a sparse kept set of keys
loads some channels more than others. This replay issues the DRAM commands themselves (activate, read, precharge)
under the HBM2 timing rules, so both show up, and it needs no external simulator.

What it mirrors is the configuration SpAtten's own RTL simulation runs (docs/spatten.md §Memory system): Ramulator
2.0's generic controller with its FR-FCFS scheduler (a request whose next command is ready goes first, then the
oldest), an open-row policy, HBM2 (``HBM2_8Gb`` organisation, ``HBM2_2Gbps`` timings at tCK = 1 ns), the RoBaRaCoCh
address mapping, and the released DPI driver's loop: per 1 GHz cycle it pops one response and pushes one request
while fewer than ``outstanding`` are pending and the controller's read queue takes it (Ramulator's holds up to
33), then the controller ticks once (issues at most one command, returns
at most one finished read). Reads only (SpAtten's fetcher reads K and V); HBM2 in that model has no rank level, so
its all-bank refresh never fires, and none is modelled here.

Checked against Ramulator 2.0 on the recorded streams of ``ramulator/measured.json`` (tests/test_hbm_events.py;
``python -m attnforge.sim.memory.ramulator_check --ours-only --event`` prints it beside our closed queue).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from attnforge.sim.specs.arch import Hbm

ACT, PRE, RD = "ACT", "PRE", "RD"


@dataclass(frozen=True)
class Hbm2Timing:
    """HBM2 timings in command-clock cycles (Ramulator 2.0's ``HBM2_2Gbps`` preset, tCK = 1 ns) and the
    organisation of one channel (``HBM2_8Gb``: 2 pseudo-channels x 4 bank groups x 4 banks, 32 columns of a row
    per 32-byte request pair, i.e. 16 requests to a row)."""

    n_cl: int = 7
    n_bl: int = 4
    n_rcd: int = 7
    n_rp: int = 7
    n_ras: int = 17
    n_rc: int = 19
    n_rtp: int = 3  # read to precharge, same bank (nRTPL; nRTPS = 2 is covered by it)
    n_ccds: int = 1
    n_ccdl: int = 2
    n_rrds: int = 2
    n_rrdl: int = 3
    n_faw: int = 15
    n_act_cmd: int = 2  # an activate occupies the row command bus for two cycles
    pseudo_channels: int = 2
    bank_groups: int = 4
    banks_per_group: int = 4
    requests_per_row: int = 16
    request_bytes: int = 32
    read_buffer: int = 32  # the controller's read queue: a push is refused while it holds more than this

    @classmethod
    def from_hbm(cls, hbm: Hbm) -> Hbm2Timing:
        """The arch's own HBM fields where it has them (nCL, nBL, nRC, pseudo-channels, banks, request size, and the
        row's 32-byte requests from ``row_bytes``), Ramulator's HBM2 preset for the rest."""
        per_pc = max(1, hbm.banks // hbm.pseudo_channels)
        return cls(n_cl=round(hbm.t_cl_ns), n_bl=round(hbm.t_burst_ns), n_rc=round(hbm.t_rc_ns),
                   pseudo_channels=hbm.pseudo_channels, bank_groups=min(4, per_pc),
                   banks_per_group=max(1, per_pc // min(4, per_pc)),
                   requests_per_row=max(1, hbm.row_bytes // hbm.request_bytes), request_bytes=hbm.request_bytes)


@dataclass
class Replay:
    """One channel's run: requests, driver cycles from the first push to the last pop, activates, mean latency."""

    requests: int
    cycles: int
    activates: int
    mean_latency: float


@dataclass
class _Request:
    """A queued read: where it goes, and the timing-table keys its three possible commands are checked against (one
    per level of the channel: the channel's command bus, its pseudo-channel, bank group and bank)."""

    idx: int
    arrive: int
    pc: int
    bg: int
    bank: int
    row: int
    cmd: str = RD
    keys: dict[str, tuple] = field(default_factory=dict)

    def __post_init__(self) -> None:
        nodes = (("ch",), ("pc", self.pc), ("bg", self.pc, self.bg), ("bank", self.pc, self.bg, self.bank))
        self.keys = {c: tuple((node, c) for node in nodes) for c in (ACT, PRE, RD)}


def map_address(addr: int, t: Hbm2Timing) -> tuple[int, int, int, int]:
    """RoBaRaCoCh on one channel: above the request's column bits come the pseudo-channel, bank group, bank and
    row, so consecutive requests fill one pseudo-channel's row, then the next pseudo-channel's."""
    x = addr // t.request_bytes // t.requests_per_row
    pc, x = x % t.pseudo_channels, x // t.pseudo_channels
    bg, x = x % t.bank_groups, x // t.bank_groups
    bank, row = x % t.banks_per_group, x // t.banks_per_group
    return pc, bg, bank, row


class _Channel:
    """Bank states and timing constraints of one channel; :meth:`ready_at` and :meth:`issue` are the whole rule set.

    ``allowed[(node, cmd)]`` is the earliest cycle ``cmd`` may issue at ``node`` (Ramulator's timing constraints,
    each a latency from a preceding command at one level); the four-activate window is kept per pseudo-channel."""

    def __init__(self, t: Hbm2Timing, warm: bool = False) -> None:
        self.t = t
        #: Open row per bank. Warm: every bank holds a row no request names (-1), so a stream's first visit to a bank
        #: pays a precharge as it does in the middle of a long run, not the cheaper activate of a cold start.
        self.open: dict[tuple[int, int, int], int] = {
            (pc, bg, b): -1 for pc in range(t.pseudo_channels) for bg in range(t.bank_groups)
            for b in range(t.banks_per_group)} if warm else {}
        self.allowed: dict[tuple, int] = {}
        self.faw: dict[int, deque[int]] = {}
        self.activates = 0

    def command(self, r: _Request) -> str:
        row = self.open.get((r.pc, r.bg, r.bank))
        return RD if row == r.row else ACT if row is None else PRE

    def ready_at(self, cmd: str, r: _Request) -> int:
        a = self.allowed.get
        k0, k1, k2, k3 = r.keys[cmd]
        when = max(a(k0, 0), a(k1, 0), a(k2, 0), a(k3, 0))
        hist = self.faw.get(r.pc)
        if cmd == ACT and hist is not None and len(hist) == 4:
            when = max(when, hist[0] + self.t.n_faw)
        return when

    def _push(self, node: tuple, cmd: str, when: int) -> None:
        key = (node, cmd)
        if self.allowed.get(key, 0) < when:
            self.allowed[key] = when

    def issue(self, cmd: str, r: _Request, clk: int) -> None:
        t, bank = self.t, (r.pc, r.bg, r.bank)
        pc, bg, bk = ("pc", r.pc), ("bg", r.pc, r.bg), ("bank", *bank)
        if cmd == RD:
            self._push(pc, RD, clk + max(t.n_bl, t.n_ccds))
            self._push(bg, RD, clk + t.n_ccdl)
            self._push(bk, PRE, clk + t.n_rtp)
        elif cmd == ACT:
            self.open[bank] = r.row
            self.activates += 1
            for c in (ACT, PRE):
                self._push(("ch",), c, clk + t.n_act_cmd)
            self._push(pc, ACT, clk + t.n_rrds)
            self._push(bg, ACT, clk + t.n_rrdl)
            self._push(bk, ACT, clk + t.n_rc)
            self._push(bk, RD, clk + t.n_rcd)
            self._push(bk, PRE, clk + t.n_ras)
            self.faw.setdefault(r.pc, deque(maxlen=4)).append(clk)
        else:
            del self.open[bank]
            self._push(bk, ACT, clk + t.n_rp)


def _best(buffer: list[_Request], ch: _Channel, clk: int) -> tuple[_Request | None, int]:
    """FR-FCFS: the oldest request whose next command is ready now, else the oldest; and the earliest cycle any
    request's command becomes ready (for skipping idle cycles)."""
    best, best_ready, soonest = None, False, 1 << 62
    for r in buffer:
        r.cmd = ch.command(r)
        at = ch.ready_at(r.cmd, r)
        soonest = min(soonest, at)
        ready = at <= clk
        if best is None or (ready and not best_ready) or (ready == best_ready and r.arrive < best.arrive):
            best, best_ready = r, ready
    return (best if best_ready else None), soonest


def _schedule(active: list[_Request], queue: list[_Request], ch: _Channel, clk: int) -> tuple[_Request | None, int]:
    """One tick's choice, as the generic controller makes it: requests whose row is being opened first, then the
    read queue; a precharge that would close a row an activated request still waits for is held back."""
    r, soon_a = _best(active, ch, clk)
    if r is not None:
        return r, soon_a
    r, soon_q = _best(queue, ch, clk)
    if r is not None and r.cmd == PRE and any((a.pc, a.bg, a.bank) == (r.pc, r.bg, r.bank) for a in active):
        r = None
    return r, min(soon_a, soon_q)


def replay(addresses: np.ndarray, outstanding: int, timing: Hbm2Timing | None = None, warm: bool = False) -> Replay:
    """Replay one channel's byte addresses, issued in order with at most ``outstanding`` pending (push to pop);
    ``warm`` starts with every bank's row open on a row the stream does not use (a long run's steady state),
    otherwise every bank is closed (as Ramulator starts)."""
    t = timing or Hbm2Timing()
    addrs = [int(a) for a in np.asarray(addresses, dtype=np.int64)]
    if outstanding < 1:
        raise ValueError(f"outstanding must be at least 1 request in flight, got {outstanding}")
    if any(a < 0 or a % t.request_bytes for a in addrs):
        raise ValueError(f"addresses must be non-negative multiples of the {t.request_bytes}-byte request")
    n, ch = len(addrs), _Channel(t, warm)
    queue: list[_Request] = []
    active: list[_Request] = []
    data: deque[tuple[int, int]] = deque()  # (depart, idx): reads in issue order, each nCL + nBL after its RD
    responses: deque[int] = deque()
    pushed, latency = [0] * n, 0
    clk = nxt = pending = done = 0
    while done < n:
        moved = False
        if responses:
            latency += clk - pushed[responses.popleft()]
            pending, done, moved = pending - 1, done + 1, True
        if nxt < n and pending < outstanding and len(queue) <= t.read_buffer:
            queue.append(_Request(nxt, clk, *map_address(addrs[nxt], t)))
            pushed[nxt], nxt, pending, moved = clk, nxt + 1, pending + 1, True
        c = clk + 1  # the controller's clock during this tick
        if data and data[0][0] <= c:
            responses.append(data.popleft()[1])
            moved = True
        r, soonest = _schedule(active, queue, ch, c)
        if r is not None:
            ch.issue(r.cmd, r, c)
            if r.cmd == RD:
                data.append((c + t.n_cl + t.n_bl, r.idx))
                (active if r in active else queue).remove(r)
            elif r.cmd == ACT and r in queue:
                queue.remove(r)
                active.append(r)
            moved = True
        clk += 1
        if not moved and not responses:  # nothing can change before the next read returns or command is ready
            wake = min(soonest, data[0][0] if data else 1 << 62) - 1
            clk = max(clk, wake)
    return Replay(requests=n, cycles=clk, activates=ch.activates, mean_latency=latency / n if n else 0.0)


@dataclass(frozen=True)
class Channels:
    """All channels replayed side by side, summed as ramulator_check sums Ramulator's: GB/s when the slowest sets
    the time, GB/s of the channels' mean time, requests, activates, and the mean push-to-pop latency."""

    gb_s: float
    channel_mean_gb_s: float
    requests: int
    activates: int
    latency_ns: float

    @property
    def row_hit(self) -> float:
        return 1.0 - self.activates / self.requests if self.requests else float("nan")


def channels(per_channel: list[np.ndarray], outstanding: int, timing: Hbm2Timing, warm: bool = False) -> Channels:
    """Replay each channel's addresses (:func:`replay`) and sum them; channels that get no request are left out."""
    runs = [replay(a, outstanding, timing, warm) for a in per_channel if len(a)]
    reqs = sum(r.requests for r in runs)
    moved = reqs * timing.request_bytes
    return Channels(gb_s=moved / max(r.cycles for r in runs),
                    channel_mean_gb_s=moved / float(np.mean([r.cycles for r in runs])), requests=reqs,
                    activates=sum(r.activates for r in runs),
                    latency_ns=float(np.mean([r.mean_latency for r in runs])))


__all__ = ["Channels", "Hbm2Timing", "Replay", "channels", "map_address", "replay"]
