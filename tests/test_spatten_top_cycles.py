"""The cycle model of ``spatten-top`` (attnforge.sim.spatten.top_cycle_model) without a simulator: its memory port
carries exactly the requests the top's fetchers make (one Q row per job, one K burst per run of consecutive alive
tokens per pass, one V row per kept index), so the walk visits every fetch the RTL makes."""

from __future__ import annotations

import sys
from pathlib import Path

from attnforge.sim.contract.designs import _top
from attnforge.sim.spatten.top_cycle_model import top_cycles

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "rtl" / "benches"))
from fast_jobs import spatten_top_job  # noqa: E402


def _runs(ids: list[int]) -> int:
    return 1 + sum(1 for a, b in zip(ids, ids[1:], strict=False) if b != a + 1)


def test_requests_are_the_fetchers():
    job, _, run = spatten_top_job({}, layers=2, length=8, seed=4)
    t = _top(job.params)
    got = top_cycles(run, t, job.mem_timing["mem"], refusals=3)
    want = 0
    for lr in run.layers:
        alive = lr.alive.tolist()
        for hi in range(lr.heads.size):
            for pi in range(lr.alive.size):
                want += 1 + _runs(alive) * (2 if lr.refetch[hi, pi] else 1) + len(lr.kept_v[hi][pi])
    assert got["requests"] == want
    # a refused descriptor is answered in 2 cycles (IDLE -> ERR -> IDLE), before the first good one
    assert got["cycles"] == top_cycles(run, t, job.mem_timing["mem"])["cycles"] + 6
