"""The `reproduce spatten` deviation notes state what bounds a run from the run's own cycles, not from prose."""

from __future__ import annotations

import numpy as np

from attnforge.reports.spatten_runs import bound_phrase, dram_bound_cycles, evaluate_run, mem_ratio, sum_runs
from attnforge.sim.specs.arch import get_preset
from attnforge.sim.specs.spatten_policy import GPT2
from attnforge.workloads import get_model


def _decode(ctx: int):
    mdl = get_model("gpt2-small")
    ev = evaluate_run("spatten", "gpt2-small", [ctx], GPT2, causal=True, stage="decode")
    return ev, sum_runs([ev], mdl.d_head, mdl.layers, mdl.heads, [np.asarray(ctx)])


def test_bound_measures_follow_the_stage_times() -> None:
    """A long decode step waits on the HBM, a short one less: the notes' measures must see the difference, and
    the memory-bound cycles are exactly the stages whose time is their DRAM time."""
    ev_long, long_ = _decode(16384)
    _, short = _decode(256)
    assert mem_ratio(long_) > mem_ratio(short)
    assert long_.memory_bound_share > short.memory_bound_share
    stage_sum = sum(float(np.sum(v)) for v in ev_long.stage_cycles.values())
    assert 0.0 < dram_bound_cycles(ev_long) <= stage_sum * (1 + 1e-12)
    peak = get_preset("spatten").dram.bandwidth_gib_s * 2**30 / 1e9
    assert 0.0 < long_.achieved_gbs <= peak  # the HBM model delivers at most its pins
    text = bound_phrase([long_], "long")
    assert f"{long_.memory_bound_share:.0%} of the cycles" in text and "GB/s" in text


def test_inflight_for_finds_the_fewest_requests_that_meet_a_latency() -> None:
    """The latency note's in-flight count comes from running the GPT-2-Medium steps again: the arch's own count for
    a target it already meets, the fewest that meet a tighter one (one fewer falls short), None when none do."""
    from attnforge.reports.spatten_paper import inflight_for, medium_ms
    from attnforge.workloads.spatten_benchmarks import benchmarks

    one = [b for b in benchmarks() if b.name == "gpt2-medium/PTB"]
    base = medium_ms(one)
    own = get_preset("spatten").hbm.outstanding
    assert inflight_for(one, base * 1.01) == (own, own, base)
    target = medium_ms(one, {"hbm.outstanding": 20})
    assert target < base
    n, k, t = inflight_for(one, target)
    assert n is not None and n == k <= 20 and t <= target
    assert medium_ms(one, {"hbm.outstanding": n}) <= target < medium_ms(one, {"hbm.outstanding": n - 1})
    n, k, t = inflight_for(one, base / 10, most=18)  # none up to 18 is fast enough: the fastest seen is the last
    assert n is None and k == 18 and t == medium_ms(one, {"hbm.outstanding": 18})
