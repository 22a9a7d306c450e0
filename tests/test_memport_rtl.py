"""The fastbench memory model (HDL) against :class:`PortModel` (Python): the ``memtest`` requester issues scripted
requests through fastbench and logs every acceptance and every response beat with its cycle; each acceptance must
land at the cycle the model says the port is first ready, each beat at the cycle the model predicts, carrying the
preloaded word, the request's tag and ``last`` on the request's final beat."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from attnforge.rtl.fastbench import FastJob, FastResult, run_cocotb, run_raw
from attnforge.rtl.regress import available
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.memport import MemTiming
from attnforge.sim.memory.port import PortModel

PARAMS = {"addr_bits": 8, "data_bits": 16, "len_bits": 4, "tag_bits": 4, "cycle_bits": 16}
C = contract.memtest(**PARAMS)


def _need(sim: str) -> None:
    if available(sim):
        pytest.skip(f"{sim}: {available(sim)}")


def script(seed: int, n: int = 40) -> list[tuple[int, int, int, int]]:
    """(addr, len, tag, at) requests: bursts issued at once (they pile up on the outstanding limit), lone requests
    after gaps (the port idles, then latency alone counts), lengths 1..15, addresses wrapping past 255."""
    rng = random.Random(seed)
    out, at = [], 0
    for i in range(n):
        if i % 8 == 0:
            at += rng.choice([0, 5, 40])
        out.append((rng.randrange(256), rng.randint(1, 15), i % 16, at))
    return out


def memtest_job(reqs: list[tuple[int, int, int, int]], timing: MemTiming, words: list[int],
                p_ready: float = 1.0) -> FastJob:
    jobs = [C["jobs"].pack({"addr": a, "len": ln, "tag": t, "at": at}) for a, ln, t, at in reqs]
    n_beats = sum(ln for _, ln, _, _ in reqs)
    return FastJob("memtest", dict(PARAMS), {"jobs": jobs}, {"acc": len(reqs), "beats": n_beats}, p_ready=p_ready,
                   memories={"mem": words}, mem_timing={"mem": timing})


def expected(reqs: list[tuple[int, int, int, int]], timing: MemTiming, words: list[int],
             acc: list[dict[str, int]]) -> tuple[list[int], list[dict[str, int]]]:
    """From the logged offer cycles: the acceptance cycles and beats PortModel predicts."""
    model, accepted, beats = PortModel(timing), [], []
    for (addr, ln, tag, _), a in zip(reqs, acc, strict=True):
        t = model.earliest_accept(a["offered"])
        accepted.append(t)
        for i, cyc in enumerate(model.beat_cycles(t, ln)):
            w = (addr + i) % 256
            beats.append({"cycle": cyc, "data": words[w] if w < len(words) else 0, "tag": tag, "last": int(i == ln - 1)})
    return accepted, beats


def decode(r: FastResult) -> tuple[list[dict[str, int]], list[dict[str, int]]]:
    return [C["acc"].unpack(w) for w in r.outputs["acc"]], [C["beats"].unpack(w) for w in r.outputs["beats"]]


def check_exact(r: FastResult, reqs: list[tuple[int, int, int, int]], timing: MemTiming, words: list[int]) -> None:
    acc, beats = decode(r)
    want_acc, want_beats = expected(reqs, timing, words, acc)
    assert [a["tag"] for a in acc] == [t for _, _, t, _ in reqs]
    assert all(a["offered"] >= at for a, (_, _, _, at) in zip(acc, reqs, strict=True))
    assert [a["accepted"] for a in acc] == want_acc
    assert beats == want_beats
    assert r.extra["mem"]["mem"] == {"requests": len(reqs), "beats": len(want_beats)}


#: (latency, outstanding, interval): one request at a time; a deep queue at full rate; beat gaps with few slots;
#: latency 1 (a beat the cycle after its request)
TIMINGS = [(20, 1, 1), (12, 4, 1), (7, 2, 3), (1, 3, 2)]


@pytest.mark.parametrize("lat,outst,ivl", TIMINGS)
def test_icarus_memory_model_matches_port_model(lat: int, outst: int, ivl: int, tmp_path: Path) -> None:
    _need("icarus")
    timing = MemTiming(lat, outst, ivl)
    reqs = script(seed=lat * 100 + outst * 10 + ivl)
    words = [random.Random(lat).randrange(1 << 16) for _ in range(200)]  # addresses >= 200 read 0
    check_exact(run_raw(memtest_job(reqs, timing, words), "icarus", tmp_path), reqs, timing, words)


def test_stalled_responses_are_held_not_lost(tmp_path: Path) -> None:
    """mresp.ready low (the beat sink stalls at random): every beat still arrives, in order, with its word, tag
    and last; the model's cycles are then only a lower bound (rule 3)."""
    _need("icarus")
    timing = MemTiming(6, 3, 1)
    reqs = script(seed=7, n=24)
    words = [(i * 2654435761) & 0xFFFF for i in range(256)]
    r = run_raw(memtest_job(reqs, timing, words, p_ready=0.4), "icarus", tmp_path)
    acc, beats = decode(r)
    _, want = expected(reqs, timing, words, acc)
    assert [{k: b[k] for k in ("data", "tag", "last")} for b in beats] == [
        {k: b[k] for k in ("data", "tag", "last")} for b in want]
    assert all(b["cycle"] >= w["cycle"] for b, w in zip(beats, want, strict=True))
    assert sum(b["cycle"] > w["cycle"] for b, w in zip(beats, want, strict=True)) > 0  # the stalls did bite


#: the cocotb driver on Icarus (cheap, fast set); both drivers on Verilator (a build each, slow set)
#: the cocotb driver on Verilator is the same wrapper as on Icarus (tests/test_fastbench.py runs it on Verilator)
DRIVERS = [("icarus", run_cocotb), pytest.param("verilator", run_raw, marks=pytest.mark.slow)]


@pytest.mark.parametrize("sim,run", DRIVERS, ids=["icarus-cocotb", "verilator-raw"])
def test_every_driver_runs_the_memory_model_exactly(sim: str, run, tmp_path: Path) -> None:  # noqa: ANN001
    _need(sim)
    timing = MemTiming(9, 3, 2)
    reqs = script(seed=3, n=60)
    words = [random.Random(3).randrange(1 << 16) for _ in range(256)]
    check_exact(run(memtest_job(reqs, timing, words), sim, tmp_path), reqs, timing, words)


def test_a_hung_run_stops_at_its_cycle_limit(tmp_path: Path) -> None:
    """A request scheduled after the limit never comes back: the run ends at ``max_cycles``, not at the timeout."""
    _need("icarus")
    job = memtest_job([(0, 1, 0, 3000)], MemTiming(), [1])
    job.max_cycles = 500
    with pytest.raises(RuntimeError, match="cycle limit"):
        run_raw(job, "icarus", tmp_path)
