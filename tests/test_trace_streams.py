"""A trace's DRAM address streams (sim/memory/trace_streams.py): the released bench's score buffer, widths and
layout, the spread placement, and the replay's CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from attnforge.sim.memory import trace_streams as ts
from attnforge.sim.spatten.trace import COLUMNS
from attnforge.sim.specs.arch import get_preset
from attnforge.sim.specs.errors import SpecError

#: The released controller's first two score-buffer lines, printed by the JVM itself (java.util.Random seeded 1,
#: the shuffle of scala.util.Random, the first 32 of 0..63 sorted, line i offset by 32 i).
JVM_LINES = [
    [1, 3, 5, 6, 7, 9, 11, 17, 19, 20, 25, 26, 29, 30, 31, 32, 33, 35, 36, 37, 39, 41, 44, 45, 49, 50, 54, 55, 57,
     58, 61, 62],
    [33, 34, 35, 36, 39, 40, 41, 43, 44, 45, 46, 48, 50, 51, 53, 57, 61, 65, 67, 68, 69, 71, 74, 75, 80, 81, 82, 83,
     85, 89, 90, 92],
]


def test_score_buffer_is_the_jvms() -> None:
    """java.util.Random's first ints for seeds 0 and 1 are the documented ones, and the score buffer's lines are
    what the JVM prints for the released controller's initialiser."""
    for seed, first in ((0, -1155484576), (1, -1155869325)):
        v = ts.JavaRandom(seed)._next(32)
        assert (v - (1 << 32) if v >= 1 << 31 else v) == first
    assert ts.score_buffer(2).tolist() == JVM_LINES


def test_released_keys_read_whole_lines_then_part_of_the_last() -> None:
    buf = ts.score_buffer(4)
    assert ts.released_keys(40, buf).tolist() == JVM_LINES[0] + JVM_LINES[1][:8]
    with pytest.raises(SpecError, match="score-buffer lines"):
        ts.released_keys(4 * 32 + 1, buf)


def test_widths_as_the_bench_maps_them() -> None:
    """12-, 10-bit and unquantized K are fetched as 8-bit MSBs plus LSBs on every row; 6-bit vectors come in pairs
    (96 B a key: both rows' vectors)."""
    assert ts.RowWidths.of(12, 8, False) == ts.RowWidths(8, 8, True)
    assert ts.RowWidths.of(-1, -1, False) == ts.RowWidths(8, 8, True)
    six = ts.RowWidths.of(6, 6, False)
    assert not six.lsb and six.vector_bytes(6) == 96 and six.vector_bytes(8) == 64


def _rows(k_bits: int, requant: list[bool], keys: int = 40, values: int = 12) -> pd.DataFrame:
    n = len(requant)
    return pd.DataFrame({"iteration_id": [5] * n, "layer_id": [0] * n, "head_id": list(range(n)),
                         "embedding_length_D": [64] * n, "sentence_length_L": [200] * n, "key_fetch_num": [keys] * n,
                         "quant_key_bit": [k_bits] * n, "quant_query_bit": [16] * n, "auto_requant_thres": [0.05] * n,
                         "if_requant": requant, "auto_requant_incre": [4] * n, "value_fetch_num": [values] * n,
                         "quant_value_bit": [k_bits] * n, "if_accumulate_importance": [True] * n,
                         "if_rescale_previous_importance": [False] * n, "if_topk": [False] * n, "topk": [-1] * n})


def test_a_six_bit_pair_fetches_k_and_v_once_and_lsbs_per_row() -> None:
    """Two 6-bit rows (a fused pair): K (40 keys x 3 requests) and V (16 x 3, rounded up to 8) once, at the first
    row's bases; the LSBs (32 B a key) of the row that refetches, at its own base."""
    hbm = get_preset("spatten").hbm
    s = ts.build(_rows(6, [False, True]), hbm, "released")
    assert len(s.addresses) == 40 * 3 + 16 * 3 + 40 and s.requests == len(s.addresses)
    lsb = s.addresses[(s.addresses >= ts.LSB_BASE) & (s.addresses < ts.LSB_BASE + 2 * ts.ROW_STRIDE)]
    assert len(lsb) == 40 and lsb.min() >= ts.LSB_BASE + ts.ROW_STRIDE  # row 1's region
    k = s.addresses[(s.addresses >= ts.K_BASE) & (s.addresses < ts.K_BASE + ts.ROW_STRIDE)]
    assert sorted(set((k - ts.K_BASE) // 96)) == sorted(set(JVM_LINES[0] + JVM_LINES[1][:8]))


def test_spread_keys_are_shared_by_a_layers_heads() -> None:
    hbm = get_preset("spatten").hbm
    s = ts.build(_rows(8, [False, False]), hbm, "spread")
    k = [s.addresses[(s.addresses >= ts.K_BASE + i * ts.ROW_STRIDE) & (s.addresses < ts.K_BASE + (i + 1) * ts.ROW_STRIDE)]
         - ts.K_BASE - i * ts.ROW_STRIDE for i in (0, 1)]
    assert np.array_equal(k[0], k[1]) and k[0].max() > 40 * 64  # the same set, spread beyond the first 40 keys
    with pytest.raises(SpecError, match="--positions"):
        ts.build(_rows(8, [False]), hbm, "clustered")


def test_disjoint_layout_keeps_each_rows_regions_apart() -> None:
    """Under the bench's bases row 0's LSBs lie where row 1's K does; the disjoint layout gives K, LSBs and V their
    own areas, each row's regions 256 KB apart; an unknown layout is refused by name."""
    hbm = get_preset("spatten").hbm
    rel = ts.build(_rows(8, [True, True]), hbm, "spread")
    row1_k = (rel.addresses >= ts.K_BASE + ts.ROW_STRIDE) & (rel.addresses < ts.K_BASE + 2 * ts.ROW_STRIDE)
    assert row1_k.sum() == 40 * 2 + 40  # row 1's K (40 keys x 2 requests) and row 0's LSBs (40 x 1)
    dis = ts.build(_rows(8, [True, True]), hbm, "spread", layout="disjoint")
    assert len(dis.addresses) == len(rel.addresses) == 2 * (40 * 2 + 40 + 16 * 2)
    area = dis.addresses >> 28
    assert [int((area == a).sum()) for a in (0, 1, 2)] == [2 * 80, 2 * 40, 2 * 32]
    assert set((dis.addresses[area == 0] >> 18).tolist()) == {0, 1}
    with pytest.raises(SpecError, match="--layout"):
        ts.build(_rows(8, [False]), hbm, "spread", layout="interleaved")


def test_the_model_charges_each_row_at_its_own_hit_rate() -> None:
    """The table charges a trace row by row (as the analytical model does), not the step's requests at their
    pooled hit rate: a dense row beside sparse ones takes the sum of their own times."""
    hbm = get_preset("spatten").hbm.model_copy(update={"model": "replay"})
    rows = pd.concat([_rows(8, [False], keys=200, values=200), _rows(8, [False], keys=8, values=8)], ignore_index=True)
    rows.loc[1, "layer_id"] = 1  # its own kept set (spread keys are one set per layer)
    s = ts.build(rows, hbm, "spread")
    per_row = [ts.charged_gb_s(hbm, ts.build(rows.iloc[[i]], hbm, "spread")) for i in (0, 1)]
    want = s.requests / sum(q / g for q, g in zip(s.per_row_requests, per_row, strict=True))
    assert ts.charged_gb_s(hbm, s) == pytest.approx(want, rel=1e-9)
    pooled = ts.Streams(s.addresses, np.array([s.requests]), np.array([s.activates]))
    assert ts.charged_gb_s(hbm, pooled) != pytest.approx(want, rel=1e-3)


def test_one_kind_of_stream_alone() -> None:
    """``streams`` keeps the kinds asked for, with the same kept keys; a kind the rows never fetch is refused."""
    hbm = get_preset("spatten").hbm
    rows = _rows(8, [True, False])
    full = ts.build(rows, hbm, "spread")
    parts = {k: ts.build(rows, hbm, "spread", streams=(k,)) for k in ts.STREAMS}
    assert sum(len(p.addresses) for p in parts.values()) == len(full.addresses)
    assert np.array_equal(np.sort(np.concatenate([p.addresses for p in parts.values()])), np.sort(full.addresses))
    with pytest.raises(SpecError, match="no LSB requests"):
        ts.replay_trace(_rows(8, [False]), hbm, "spread", streams=("LSB",))


def test_a_barrier_per_layer_waits_for_each_layers_slowest_channel() -> None:
    """One layer: the barrier changes nothing (its replay, banks warm). Two layers of few kept keys each: each
    waits for its own slowest channel, which the whole step, whose channels run on into the next layer, does not."""
    hbm = get_preset("spatten").hbm
    one = _rows(8, [False, False], keys=24, values=8)
    s = ts.build(one, hbm, "spread")
    timing = ts.hbm_events.Hbm2Timing.from_hbm(hbm)
    ch = ts.hbm_events.channels(ts.crossbar(s.addresses, hbm), 16, timing, warm=True)
    assert ts.layer_barriers(one, s, hbm, 16) == pytest.approx((ch.gb_s, ch.channel_mean_gb_s, ch.row_hit), rel=1e-12)
    two = pd.concat([one, one.assign(layer_id=1)], ignore_index=True)
    s2 = ts.build(two, hbm, "spread")
    whole = ts.hbm_events.channels(ts.crossbar(s2.addresses, hbm), 16, timing, warm=True)
    slowest, _, _ = ts.layer_barriers(two, s2, hbm, 16)
    assert slowest < whole.gb_s
    r = ts.replay_trace(two, hbm, "spread", layers=True)
    assert r["event_gb_s"] == pytest.approx(slowest, rel=1e-12)


def test_replay_and_cli(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:
    """The replay reports the event model's GB/s beside the closed queue's on the same requests; the CLI names a
    step the trace lacks and refuses zero requests in flight, each in one line."""
    hbm = get_preset("spatten").hbm
    r = ts.replay_trace(_rows(8, [False, True, False]), hbm, "released")
    assert r["requests"] > 0 and 0 < r["event_gb_s"] <= r["event_channel_mean_gb_s"] <= 512
    assert 0 < r["table_gb_s"] <= 512 and 0 < r["ours_gb_s"] <= 512
    csv = tmp_path / "t.csv"
    _rows(8, [False, True])[list(COLUMNS)].to_csv(csv, index=False)
    assert ts.main([str(csv), "--steps", "5", "--positions", "released"]) == 0
    assert "released" in capsys.readouterr().out
    assert ts.main([str(csv), "--steps", "7"]) == 2
    assert "no rows at step(s) 7" in capsys.readouterr().err
    assert ts.main([str(csv), "--steps", "a"]) == 2 and "comma-separated" in capsys.readouterr().err
    assert ts.main([str(csv), "--steps", "5", "--positions", "spread", "--layout", "disjoint"]) == 0
    assert "disjoint layout" in capsys.readouterr().out
    assert ts.main([str(csv), "--steps", "5", "--positions", "spread", "--layers"]) == 0
    out = capsys.readouterr().out
    assert "a barrier per layer" in out and "the model's hbm.layer_barrier x1." in out
    assert ts.main([str(csv), "--steps", "5", "--positions", "spread", "--streams", "V"]) == 0
    assert "streams V" in capsys.readouterr().out
    assert ts.main([str(csv), "--steps", "5", "--streams", "K,Q"]) == 2 and "'K,Q'" in capsys.readouterr().err
    assert ts.main([str(csv), "--outstanding", "0"]) == 2
    assert "--outstanding" in capsys.readouterr().err


@pytest.mark.slow
def test_the_models_layer_barrier_is_the_replays() -> None:
    """hbm.layer_barrier's factor (dram.channel_imbalance over the trace's layers) against the event replay layer
    by layer, on SpAtten's GPT-2-Small trace, step 16 with spread kept keys: 1.123 against 1.164 (GPT-2-Medium's
    step, ~1 min more: 1.090 against 1.097, `trace_streams TRACE --layers`)."""
    from attnforge.sim.spatten.trace import load_trace

    trace = load_trace(ts.Path(__file__).resolve().parent.parent / "workloads" / "traces"
                       / "summary-gpt2-small-wikitext2-per8.csv")
    rows = trace.rows[trace.rows["iteration_id"].astype(int) == 16]
    r = ts.replay_trace(rows, get_preset("spatten").hbm, "spread", layers=True)
    assert r["model_barrier"] == pytest.approx(r["event_barrier"], rel=0.05)
    assert r["model_barrier"] > 1.05
