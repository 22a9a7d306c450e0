"""Head-switch and layer-boundary stalls of a SpAtten summarization pass (sim/spatten/stalls.py): each term moves
the cycles as its mechanism says and vanishes when the arch field is off."""

from __future__ import annotations

import numpy as np
import pytest

from attnforge.sim.analytical.engine import evaluate_scenario
from attnforge.sim.spatten.stalls import (
    boundary_cycles,
    fetch_round_trip,
    head_switch_cycles,
    release_latency,
    resident_heads,
)
from attnforge.sim.spatten.topk_algorithm import expected_topk
from attnforge.sim.specs.arch import get_preset, load_arch
from attnforge.sim.specs.scenario import Scenario
from attnforge.sim.specs.spatten_policy import BERT

NO_PRUNING = BERT.with_(name="bert unpruned", token_ratio=0.0, head_ratio=0.0)
TWO = {"spatten.kv_buffer_allocations": 2}  # a plain double buffer: two heads' K resident


def _run(model: str, seq: int, overrides: dict[str, object] | None = None, policy=NO_PRUNING):
    sc = Scenario.build(accelerator="spatten", workload=model, seq_lens=[seq], batch=1, policy=policy,
                        overrides=overrides)
    return evaluate_scenario(sc)


def _extra(ev, key: str) -> float:
    return float(np.sum(ev.schedule.extra[key]))


def test_head_switch_is_linear_in_heads_beyond_the_resident_ones() -> None:
    """(H - B) switches wait each; none while every head of the layer is resident or the field is off."""
    arch = get_preset("spatten")
    one = head_switch_cycles(arch, head_cycles=22.0, keys=11.0, heads=3, resident=2.0)
    assert one > 0
    assert head_switch_cycles(arch, head_cycles=22.0, keys=11.0, heads=12, resident=2.0) == pytest.approx(10 * one)
    assert head_switch_cycles(arch, head_cycles=22.0, keys=11.0, heads=2, resident=2.0) == 0
    assert head_switch_cycles(arch, head_cycles=22.0, keys=11.0, heads=12, resident=0.0) == 0  # tiled: streams
    off = load_arch("spatten", {"spatten.kv_buffer_allocations": None})
    assert head_switch_cycles(off, head_cycles=22.0, keys=11.0, heads=12, resident=2.0) == 0
    # a head long enough to cover its predecessor's release and the refill hides the switch
    r = float(release_latency(arch, 11.0)) + fetch_round_trip(arch)
    assert head_switch_cycles(arch, head_cycles=r + 1, keys=11.0, heads=12, resident=2.0) == 0


def test_release_latency_follows_the_softmax_latency() -> None:
    """The release waits for the last query's softmax, so each extra softmax cycle adds 1 / B to every stalled
    switch (B = 2 heads resident)."""
    base = get_preset("spatten")
    slow = load_arch("spatten", {"spatten.softmax_latency_cycles": base.spatten.softmax_latency_cycles + 10})
    a = head_switch_cycles(base, head_cycles=22.0, keys=11.0, heads=12, resident=2.0)
    b = head_switch_cycles(slow, head_cycles=22.0, keys=11.0, heads=12, resident=2.0)
    assert b - a == pytest.approx(10 * 10 / 2)


def test_resident_heads_are_the_allocations_or_the_lines() -> None:
    """The released ring allocator: 256 lines of 8 keys (D = 64), at most 16 allocations; a head over the whole
    SRAM is tiled (0)."""
    arch = get_preset("spatten")
    assert resident_heads(arch, 11.0, 64) == 16  # 2 lines a head: the allocations bind
    assert resident_heads(arch, 160.0, 64) == 12  # 20 lines a head: 256 // 20
    assert resident_heads(arch, 1024.0, 64) == 2  # the paper's double buffer of 1024 tokens
    assert resident_heads(arch, 4096.0, 64) == 0


def test_head_switch_scales_with_heads_times_layers() -> None:
    """Unpruned BERT at one short length on a two-head buffer: every layer has the same heads and keys, so the
    stall is layers x (heads - 2) x one switch, and the pass's cycles grow by exactly that over no allocator. The
    paper's 16 allocations hold every head of a short layer: no stall."""
    base, large = _run("bert-base", 11, TWO), _run("bert-large", 11, TWO)
    sb, sl = _extra(base, "head_switch_cycles"), _extra(large, "head_switch_cycles")
    assert sb > 0 and sl / sb == pytest.approx((24 * 14) / (12 * 10))
    assert _extra(_run("bert-base", 11), "head_switch_cycles") == 0
    off = _run("bert-base", 11, {"spatten.kv_buffer_allocations": None})
    assert _extra(off, "head_switch_cycles") == 0
    assert float(np.sum(base.cycles)) - float(np.sum(off.cycles)) == pytest.approx(sb)


def test_head_switch_vanishes_on_long_heads() -> None:
    """A 160-token head keeps Q x K busy far longer than a release plus a refill: no stall."""
    assert _extra(_run("bert-base", 160, TWO), "head_switch_cycles") == 0


def test_boundary_waits_for_the_top_k_only_where_a_layer_prunes() -> None:
    """No pruning: the kept list is known, nothing waits. Pruning: each pruning boundary waits for the token and
    head top-k plus the first fetch; off: nothing."""
    assert _extra(_run("bert-base", 64), "boundary_cycles") == 0
    pruned = _run("bert-base", 64, policy=BERT)
    assert _extra(pruned, "boundary_cycles") > 0
    assert _extra(_run("bert-base", 64, {"spatten.layer_topk_serial": False}, policy=BERT), "boundary_cycles") == 0
    arch = get_preset("spatten")
    par = arch.spatten.topk_comparators
    one = boundary_cycles(arch, prev_keys=64.0, keys=48.0, prev_heads=12, heads=10, parallelism=par)
    want = expected_topk(64, 48, par)[0] + expected_topk(12, 10, par)[0] + fetch_round_trip(arch)
    assert float(one) == pytest.approx(want)
    assert boundary_cycles(arch, prev_keys=64.0, keys=64.0, prev_heads=12, heads=12, parallelism=par) == 0


def test_rtl_preset_has_no_head_or_layer_stalls() -> None:
    """spatten-rtl is our per-query pipeline: no K/V SRAM per head, no top-k between layers."""
    p = get_preset("spatten-rtl").spatten
    assert p.kv_buffer_allocations is None and p.decision_window is None and not p.layer_topk_serial


def test_decision_window_bounds_short_queries_only() -> None:
    """With W queries between allocation and decision, a query takes at least its decision latency / W: short
    rows (2 Q x K beats against a ~100-cycle softmax) slow down, a 160-key row (20 beats) does not."""
    short = float(np.sum(_run("bert-base", 11).cycles))
    assert float(np.sum(_run("bert-base", 11, {"spatten.decision_window": 8}).cycles)) > 2 * short
    long_ = float(np.sum(_run("bert-base", 160).cycles))
    assert float(np.sum(_run("bert-base", 160, {"spatten.decision_window": 8}).cycles)) == pytest.approx(long_)


def test_reproduce_bert_note_is_computed_from_the_runs() -> None:
    """The BERT row's note names each fixed cost's share and the row with each term changed, from the runs."""
    from attnforge.reports.spatten_paper import STALL_VARIANTS, _bert_note, bert_stall_note, bert_tflops
    from attnforge.reports.spatten_runs import run_phase
    from attnforge.workloads.spatten_benchmarks import benchmarks

    two = [b for b in benchmarks() if b.name in ("bert-base/CoLA", "bert-base/RTE")]
    assert len(two) == 2
    res = {b.name: run_phase(b) for b in two}
    note = _bert_note(two, res, 0.9)
    assert "layer boundaries" in note and "bert-base/CoLA" in note
    alt = bert_stall_note(two)
    for label, _ in STALL_VARIANTS:
        assert label in alt
    # without the fixed costs the passes are faster; the released decision window makes them slower
    plain = bert_tflops(two)
    assert bert_tflops(two, STALL_VARIANTS[0][1]) > plain > bert_tflops(two, STALL_VARIANTS[1][1])
