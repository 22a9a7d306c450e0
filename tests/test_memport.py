"""PortModel on hand-worked cases (rules 1 and 2 of attnforge.sim.contract.memport), its closed form against a
long greedy run, and the memory-port contract plumbing (Contract.memports, MemPort.of)."""

from __future__ import annotations

import pytest

from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.designs import Contract, Stream
from attnforge.sim.contract.layout import Field, struct
from attnforge.sim.contract.memport import MemPort, MemTiming
from attnforge.sim.memory.port import PortModel, achieved_bandwidth, slot_cycles
from attnforge.sim.specs.errors import SpecError


def test_lone_request_waits_latency_then_one_beat_per_interval() -> None:
    m = PortModel(MemTiming(latency=5, outstanding=2, interval=3))
    assert m.beat_cycles(10, 3) == [15, 18, 21]


def test_second_request_queues_behind_the_first_beats() -> None:
    # accepted at 0 and 1: the second's first beat would be at 1 + 4 = 5, but the first's beats run 4..7
    m = PortModel(MemTiming(latency=4, outstanding=4, interval=1))
    assert m.accept(0, 4) == (4, 7)
    assert m.accept(1, 2) == (8, 9)


def test_full_slots_free_the_cycle_after_the_last_beat() -> None:
    m = PortModel(MemTiming(latency=3, outstanding=2, interval=1))
    assert m.accept(0, 2) == (3, 4) and m.accept(1, 1) == (5, 5)
    assert not m.ready(2) and not m.ready(4)  # slot 0 is held through its last beat at cycle 4
    assert m.earliest_accept(2) == 5 and m.ready(5)
    assert m.accept(5, 1) == (8, 8)
    assert m.earliest_accept(6) == 6  # request 1 ended at 5: one slot held (cycle 8), one free


def test_one_request_per_cycle_and_no_empty_request() -> None:
    m = PortModel(MemTiming(latency=2, outstanding=8, interval=1))
    m.accept(3, 1)
    assert not m.ready(3) and m.earliest_accept(3) == 4
    with pytest.raises(ValueError, match="not ready"):
        m.accept(3, 1)
    with pytest.raises(ValueError, match="at least one beat"):
        m.accept(4, 0)
    assert (m.requests, m.beats) == (1, 1)


def test_bad_timing_is_one_spec_error() -> None:
    with pytest.raises(SpecError, match="memory.interval"):
        PortModel(MemTiming(interval=0))


@pytest.mark.parametrize("lat,outst,ivl,ln", [(20, 4, 1, 8), (20, 4, 1, 1), (5, 2, 3, 4), (30, 16, 2, 4), (1, 1, 1, 1)])
def test_closed_form_is_the_greedy_steady_state(lat: int, outst: int, ivl: int, ln: int) -> None:
    """A requester that always has a request waiting: the beats per cycle over a long run (after a warm-up) equal
    min(1/interval, outstanding * len / slot_cycles) -- Little's law on the slots, or the response rate."""
    t = MemTiming(lat, outst, ivl)
    m, cycle, lasts = PortModel(t), 0, []
    for _ in range(4000):
        cycle = m.earliest_accept(cycle)
        lasts.append(m.accept(cycle, ln)[1])
    warm, n = 1000, 3000
    measured = n * ln / (lasts[warm + n - 1] - lasts[warm - 1])
    assert measured == pytest.approx(achieved_bandwidth(t, ln), rel=1e-3)


def test_closed_form_names_its_limits() -> None:
    assert slot_cycles(MemTiming(20, 4, 1), 8) == 28
    assert achieved_bandwidth(MemTiming(20, 4, 1), 8) == 1.0  # slots allow 32/28 beats per cycle: the bus binds
    assert achieved_bandwidth(MemTiming(20, 2, 1), 4) == pytest.approx(8 / 24)
    assert achieved_bandwidth(MemTiming(5, 8, 3), 4) == pytest.approx(1 / 3)


def test_contract_records_the_memory_port() -> None:
    c = contract.memtest()
    assert c.memport("mem") == MemPort(addr_bits=8, data_bits=16, len_bits=4, tag_bits=4)
    j = c.to_json()["memports"]["mem"]
    assert (j["request"], j["response"], j["data_bits"]) == ("mreq", "mresp", 16)


def test_a_memory_port_needs_the_memport_layouts_and_directions() -> None:
    mp = MemPort(addr_bits=8, data_bits=8, len_bits=4, tag_bits=2)
    good = {"rq": Stream(mp.request(), "out", ""), "rs": Stream(mp.response(), "in", "")}
    assert Contract("x", good, memports={"m": ("rq", "rs")}).memport("m") == mp
    with pytest.raises(ValueError, match="needs an out stream"):
        Contract("x", good, memports={"m": ("rs", "rq")})
    odd = {"rq": Stream(struct("mreq", Field("addr", 8), Field("tag", 2), Field("len", 4)), "out", ""),
           "rs": Stream(mp.response(), "in", "")}
    with pytest.raises(ValueError, match="field for field"):
        Contract("x", odd, memports={"m": ("rq", "rs")})
