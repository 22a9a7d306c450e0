"""The pipeline's back-to-back cycle model (two queries in flight) and its job checks, without a simulator (the
cocotb bench tb_spatten_pipeline asserts them against the RTL)."""

from __future__ import annotations

from dataclasses import replace

from attnforge.sim.contract.spatten_fx import SpattenFx
from attnforge.sim.spatten.cycle_model import back_cycles, front_cycles, pipeline_cycles, refused, stream_cycles
from attnforge.sim.spatten.golden import pipeline, workload_jobs

CFG = SpattenFx()


def _jobs(count: int = 6) -> list:
    return [j for j, _ in workload_jobs("bert-base", 48, 4, count, CFG, kv_frac=0.5, threshold=0.05)]


def test_one_job_alone_is_front_plus_back():
    job = _jobs(1)[0]
    res = pipeline(job, CFG)
    assert stream_cycles([job], CFG) == [(0, pipeline_cycles(job, CFG))]
    assert pipeline_cycles(job, CFG) == front_cycles(job, CFG, res) + back_cycles(job, CFG, res)


def test_back_to_back_overlaps_front_and_back():
    """Each next query enters the cycle after its predecessor's hand-off, so the run ends before the jobs done
    one at a time would, but no earlier than the busier half allows."""
    jobs = _jobs()
    res = [pipeline(j, CFG) for j in jobs]
    t = stream_cycles(jobs, CFG)
    alone = sum(pipeline_cycles(j, CFG) for j in jobs)
    fronts = sum(front_cycles(j, CFG, r) for j, r in zip(jobs, res, strict=True))
    backs = sum(back_cycles(j, CFG, r) for j, r in zip(jobs, res, strict=True))
    assert max(fronts, backs) < t[-1][1] < alone
    assert all(a[1] < b[1] and a[0] < b[0] for a, b in zip(t, t[1:], strict=False))


def test_refused_jobs_are_answered_in_order():
    jobs = _jobs(3)
    bad = replace(jobs[0], kv=0)
    assert refused(bad, CFG) and not refused(jobs[0], CFG)
    t = stream_cycles([jobs[0], bad, jobs[1]], CFG)
    assert t[1][1] == t[0][1] + 2  # handed over the cycle after the first output, answered the next
    assert pipeline_cycles(bad, CFG) == 2
