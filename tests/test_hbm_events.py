"""The event-level HBM2 replay (sim/memory/hbm_events.py): its timing rules on streams small enough to work out by
hand, and the figures of the recorded Ramulator 2.0 run (sim/memory/ramulator/measured.json) it must give back."""

from __future__ import annotations

import json

import numpy as np
import pytest

from attnforge.sim.memory import hbm_events, ramulator_check
from attnforge.sim.memory.hbm_events import Hbm2Timing, map_address, replay
from attnforge.sim.specs.arch import get_preset

T = Hbm2Timing()


def test_mapping_fills_one_pseudo_channels_row_then_the_next() -> None:
    """RoBaRaCoCh: 16 consecutive 32-byte requests share a row; then the other pseudo-channel, the next bank group
    (every 1 KB), the next bank (4 KB) and, after all 32 banks (16 KB), the next row."""
    at = [map_address(i * 32, T) for i in (0, 15, 16, 32, 128, 512)]
    assert at == [(0, 0, 0, 0), (0, 0, 0, 0), (1, 0, 0, 0), (0, 1, 0, 0), (0, 0, 1, 0), (0, 0, 0, 1)]


def test_one_request_at_a_time_pays_the_activate_once() -> None:
    """Alone in the channel, a read to a closed bank waits for the activate (pushed at 0, ACT in the first tick,
    RD nRCD later, data nCL + nBL after that, popped the cycle after): 1 + 7 + 11 = 19 cycles; the next read of the
    open row 1 + 11 = 12."""
    r = replay(np.array([0, 32]), 1)
    assert (r.activates, r.mean_latency) == (1, (19 + 12) / 2)


def test_a_row_streams_at_one_read_per_burst_on_its_pseudo_channel() -> None:
    """16 requests to one row, all in flight: reads leave one per nBL = 4 cycles on one pseudo-channel's data bus,
    so the last is issued at 8 + 15 x 4 and popped nCL + nBL + 1 later (80 cycles, 6.4 GB/s); two rows in the two
    pseudo-channels overlap (the second row's first request is pushed at cycle 16): 32 requests in 96 cycles."""
    one = replay(np.arange(16) * 32, 16)
    assert one.cycles == 1 + 7 + 15 * 4 + 7 + 4 + 1
    two = replay(np.arange(32) * 32, 32)
    assert (two.cycles, two.activates) == (16 + 1 + 7 + 15 * 4 + 7 + 4 + 1, 2)


def test_four_activate_window() -> None:
    """Activates in one pseudo-channel, each to another bank group (no nRRDL), are two cycles apart (the channel's
    row-command bus), and a fifth waits for nFAW = 15 cycles after the first."""
    ch = hbm_events._Channel(T)
    reqs = [hbm_events._Request(i, 0, 0, i % 4, i // 4, 0) for i in range(5)]
    clk = 1
    for r in reqs[:4]:
        clk = max(clk, ch.ready_at(hbm_events.ACT, r))
        ch.issue(hbm_events.ACT, r, clk)
    assert list(ch.faw[0]) == [1, 3, 5, 7]
    assert ch.ready_at(hbm_events.ACT, reqs[4]) == 1 + T.n_faw


def test_refuses_what_no_driver_issues() -> None:
    with pytest.raises(ValueError, match="outstanding"):
        replay(np.array([0]), 0)
    with pytest.raises(ValueError, match="multiples of the 32-byte request"):
        replay(np.array([16]), 4)


def _recorded(stream_prefix: str) -> list[dict[str, object]]:
    rec = json.loads(ramulator_check.MEASURED.read_text())
    return [r for r in rec if str(r["stream"]).startswith(stream_prefix)]


def _check_rows(rows: list[dict[str, object]]) -> None:
    hbm = get_preset("spatten").hbm
    by_name = {s.name: s for s in ramulator_check.streams(hbm)}
    by_name |= {ramulator_check.sequential(hbm, 32_000).name: ramulator_check.sequential(hbm, 32_000)}
    for r in rows:
        got = ramulator_check.event_fields(hbm, by_name[str(r["stream"])], int(r["pending"]))
        assert got["event_gb_s"] == pytest.approx(r["ramulator_gb_s"], rel=1e-9), r["stream"]
        assert got["event_channel_mean_gb_s"] == pytest.approx(r["ramulator_channel_mean_gb_s"], rel=1e-9)
        assert got["event_row_hit"] == pytest.approx(r["ramulator_row_hit"], abs=1e-12)
        assert got["event_latency_ns"] == pytest.approx(r["ramulator_latency_ns"], abs=5.1e-4)  # printed to 3 places


def test_sparse_decode_layers_give_ramulators_cycles() -> None:
    """The two pruned decode layers of the recorded run, whose kept keys load some channels more than others (the
    slowest channel at 0.6-0.8x the mean): the replay gives Ramulator 2.0's GB/s, channel mean, row hits and
    latency exactly."""
    rows = _recorded("decode: 12 heads")
    assert len(rows) == 2
    _check_rows(rows)


@pytest.mark.slow
def test_every_recorded_row_gives_ramulators_cycles() -> None:
    """All twelve rows of the recorded run: in-order streams at 1 to 32 requests in flight, dense and pruned decode
    layers, scattered requests."""
    rows = json.loads(ramulator_check.MEASURED.read_text())
    assert len(rows) == 12 and {r["pending"] for r in rows} == {1, 4, 8, 12, 16, 20, 24, 32}
    _check_rows(rows)


def test_warm_banks_pay_a_precharge_first() -> None:
    """Warm, every bank holds another row: a lone read pays precharge (nRP), activate (nRCD) and the read (nCL +
    nBL), 1 + 7 + 7 + 11 = 26 cycles, where a cold bank skips the precharge (19)."""
    assert replay(np.array([0]), 1, warm=True).mean_latency == 1 + 7 + 7 + 11
    assert replay(np.array([0]), 1).mean_latency == 1 + 7 + 11


@pytest.mark.slow
def test_in_order_stream_warm_is_the_tables_steady_state() -> None:
    """Ramulator's 210.7 GB/s on the recorded 32,000-request in-order stream (16 in flight) is a cold start: with
    every bank open on another row, as in the middle of a long run, the same stream gives 203.4 GB/s, the regime
    the replay's table is measured in (docs/spatten.md §Memory system)."""
    hbm = get_preset("spatten").hbm
    seq = ramulator_check.sequential(hbm, 32_000)
    per = ramulator_check.crossbar(seq.addresses, hbm)
    cold = hbm_events.channels(per, 16, Hbm2Timing.from_hbm(hbm)).channel_mean_gb_s
    warm = hbm_events.channels(per, 16, Hbm2Timing.from_hbm(hbm), warm=True).channel_mean_gb_s
    assert round(cold, 1) == 210.7 and round(warm, 1) == 203.4
