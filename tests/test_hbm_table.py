"""The replay's bandwidth table (sim/memory/hbm_table.py) and ``hbm.model: replay`` in the analytical model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from attnforge.sim.memory import dram, hbm_table, replay_table
from attnforge.sim.specs.arch import get_preset, load_arch, parse_overrides
from attnforge.sim.specs.errors import SpecError


def _replay_hbm(**extra: object):
    h = get_preset("spatten").hbm
    return h.model_copy(update={"model": "replay", **extra})


def test_table_is_what_the_replay_measures_now() -> None:
    """One cell re-measured (30% of the keys kept, 16 in flight) gives the recorded value exactly, and each row's
    hit rate is the analytical formula's for its stream."""
    data = json.loads(hbm_table.TABLE.read_text())
    row = next(r for r in data["rows"] if r["density"] == 0.3)
    h = get_preset("spatten").hbm
    assert replay_table.measure(h, 0.3, 16) == pytest.approx(row["gb_s"][data["outstanding"].index(16)], rel=1e-12)
    assert replay_table.family_stream(h, 0.3)[1] == pytest.approx(row["hit"], rel=1e-12)


@pytest.mark.parametrize("vector_bytes", [32, 96])
def test_vector_size_does_not_move_the_table(vector_bytes: int) -> None:
    """Why the table needs no vector-size key: 4-bit LSB planes (32 B) and 6-bit pairs (96 B) at 30% kept get the
    64-byte family's formula hit rate (within 0.1%) and its GB/s within 0.5% (16 in flight)."""
    data = json.loads(hbm_table.TABLE.read_text())
    row = next(r for r in data["rows"] if r["density"] == 0.3)
    h = get_preset("spatten").hbm
    assert replay_table.family_stream(h, 0.3, vector_bytes=vector_bytes)[1] == pytest.approx(row["hit"], rel=1e-3)
    got = replay_table.measure(h, 0.3, 16, vector_bytes=vector_bytes)
    assert got == pytest.approx(row["gb_s"][data["outstanding"].index(16)], rel=0.005)


def test_vector_bytes_cli_compares_with_the_table(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """``--vector-bytes`` prints the re-measured family beside the stored table (here the stored one itself: 0.0%
    everywhere), and refuses to write it."""
    stored = json.loads(hbm_table.TABLE.read_text())
    monkeypatch.setattr(replay_table, "build", lambda hbm, vector_bytes=64: stored)
    assert replay_table.main(["--vector-bytes", "96"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "96-byte keys" in out[0] and len(out) == 2 + len(stored["rows"]) and all(x.endswith("0.0%") for x in out[2:])
    with pytest.raises(SystemExit):
        replay_table.main(["--vector-bytes", "96", "--write"])


def test_replay_model_reads_the_table() -> None:
    """At a measured point the model gives the table's GB/s; between hit rates and requests in flight it
    interpolates; beyond the table's last requests in flight it holds; latency is Little's law on the rate."""
    data = json.loads(hbm_table.TABLE.read_text())
    dense = next(r for r in data["rows"] if r["density"] == 1.0)
    ns = data["outstanding"]
    h = _replay_hbm()
    assert float(dram.achieved_gb_s(h, dense["hit"])) == pytest.approx(dense["gb_s"][ns.index(16)], rel=1e-9)
    at10 = float(dram.achieved_gb_s(h.model_copy(update={"outstanding": 10}), dense["hit"]))
    assert at10 == pytest.approx((dense["gb_s"][ns.index(8)] + dense["gb_s"][ns.index(12)]) / 2, rel=1e-9)
    far = h.model_copy(update={"outstanding": 500})
    assert float(dram.achieved_gb_s(far, 0.5)) == float(dram.achieved_gb_s(h.model_copy(update={"outstanding": 64}), 0.5))
    per_ns = float(dram.achieved_gb_s(h, 0.8)) / h.channels / h.request_bytes
    assert float(dram.latency_ns(h, 0.8)) == pytest.approx(h.outstanding / per_ns, rel=1e-9)
    hits = np.linspace(0, 1, 5)
    assert dram.achieved_gb_s(h, hits).shape == (5,)


def test_replay_model_refuses_timings_it_was_not_measured_with() -> None:
    with pytest.raises(SpecError, match="n_cl"):
        dram.achieved_gb_s(_replay_hbm(t_cl_ns=9), 0.9)
    with pytest.raises(SpecError, match="closed-queue, replay|'closed-queue', 'replay'|closed-queue"):
        load_arch("spatten", parse_overrides(["hbm.model=event"]))
    assert load_arch("spatten", parse_overrides(["hbm.model=replay", "hbm.channels=2"])).hbm.model == "replay"


def test_table_cli_prints_the_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert replay_table.main([]) == 0
    out = capsys.readouterr().out
    assert "requests in flight" in out and len(out.splitlines()) == 2 + len(json.loads(hbm_table.TABLE.read_text())["rows"])
