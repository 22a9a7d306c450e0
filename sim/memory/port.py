"""The exact timing of the testbench memory port (:class:`attnforge.sim.contract.memport.MemTiming`), for the cycle
models of the tops, and its closed form for the analytical engine.

Why a class with state: the rules are a small queue -- a request occupies one of ``outstanding`` slots from its
acceptance through its last response beat, and responses leave in request order, one per ``interval`` cycles at
most. :class:`PortModel` replays exactly that, one accepted request at a time, so a cycle model that asks it when a
request can go (:meth:`PortModel.earliest_accept`) and when its beats come back (:meth:`PortModel.accept`) gets the
cycles the HDL memory model of ``rtl/fastbench.py`` produces (tests/test_memport*.py check both against each other).

Cycles are integers counted at rising edges; the model assumes the requester keeps ``mresp.ready`` high (rule 3 of
the contract), under which every beat is delivered in the cycle it is offered.
"""

from __future__ import annotations

from collections import deque

from attnforge.sim.contract.memport import MemTiming


class PortModel:
    """One memory port's slots and response queue. Calls must come in nondecreasing cycle order (a model walks time
    forwards); at most one request is accepted per cycle, as one handshake per cycle is all a stream carries."""

    def __init__(self, timing: MemTiming) -> None:
        self.timing = timing.validate()
        self._ends: deque[int] = deque()  #: last-beat cycles of accepted requests, in request order (nondecreasing)
        self._last_beat: int | None = None  #: cycle of the latest response beat scheduled so far
        self._last_accept: int | None = None
        self.requests = 0
        self.beats = 0

    def _occupied(self, cycle: int) -> list[int]:
        """Last-beat cycles of the requests that still hold a slot at ``cycle`` (a slot frees the cycle after)."""
        while self._ends and self._ends[0] < cycle:
            self._ends.popleft()  # in-order responses: ends are nondecreasing, so the finished ones are at the front
        return list(self._ends)

    def ready(self, cycle: int) -> bool:
        """``mreq.ready`` at ``cycle``: fewer than ``outstanding`` requests hold a slot (rule 1)."""
        if self._last_accept is not None and cycle <= self._last_accept:
            return False
        return len(self._occupied(cycle)) < self.timing.outstanding

    def earliest_accept(self, cycle: int) -> int:
        """The first cycle ``>= cycle`` at which a request offered from ``cycle`` on is accepted."""
        if self._last_accept is not None:
            cycle = max(cycle, self._last_accept + 1)
        busy = self._occupied(cycle)
        extra = len(busy) - self.timing.outstanding
        # with m >= outstanding slots held, m - outstanding + 1 of them must finish; they finish in request order
        return cycle if extra < 0 else busy[extra] + 1

    def accept(self, cycle: int, n_beats: int) -> tuple[int, int]:
        """Accept a request of ``n_beats`` at ``cycle`` (it must be :meth:`ready`); returns the cycles of its first
        and last response beats (rule 2: first = max(accept + latency, previous beat + interval), then one beat
        every ``interval`` cycles)."""
        if n_beats < 1:
            raise ValueError(f"a request carries at least one beat, got {n_beats}")
        if not self.ready(cycle):
            raise ValueError(f"the port is not ready at cycle {cycle}; earliest {self.earliest_accept(cycle)}")
        t = self.timing
        first = cycle + t.latency
        if self._last_beat is not None:
            first = max(first, self._last_beat + t.interval)
        last = first + (n_beats - 1) * t.interval
        self._ends.append(last)
        self._last_beat, self._last_accept = last, cycle
        self.requests += 1
        self.beats += n_beats
        return first, last

    def beat_cycles(self, cycle: int, n_beats: int) -> list[int]:
        """:meth:`accept`, returning every beat's cycle."""
        first, _ = self.accept(cycle, n_beats)
        return [first + i * self.timing.interval for i in range(n_beats)]


def slot_cycles(timing: MemTiming, beats_per_request: int) -> int:
    """Cycles one request holds its slot when the port is saturated by requests of this length: from acceptance
    to its last beat, ``latency + (len - 1) * interval`` cycles later, plus the cycle its slot is taken again."""
    return timing.latency + (beats_per_request - 1) * timing.interval + 1


def achieved_bandwidth(timing: MemTiming, beats_per_request: int) -> float:
    """Beats per cycle a requester that always has a request waiting gets from the port, in steady state.

    Two limits, the smaller wins: the response rate, ``1 / interval``; and Little's law on the slots, ``outstanding``
    requests in flight each holding its slot :func:`slot_cycles` cycles, so ``outstanding * len / slot_cycles``
    beats per cycle. (The slot time counts the acceptance cycle too: ``latency + len * interval`` when
    ``interval`` is 1, one cycle more per beat gap otherwise.) One request per cycle at most is a third limit,
    ``len`` beats per cycle, never binding since ``len >= 1 >= 1 / interval``.
    """
    if beats_per_request < 1:
        raise ValueError(f"a request carries at least one beat, got {beats_per_request}")
    t = timing.validate()
    return min(1.0 / t.interval, t.outstanding * beats_per_request / slot_cycles(t, beats_per_request))
