"""Every number in a cascade-family preset moves a result: an arch field the model reads and then ignores (as the PE
register file's depth once was) fails here, unless it is listed below with the reason it cannot move these points."""

from __future__ import annotations

from typing import Any

import pytest

import attnforge
from attnforge.sim.specs.arch import get_preset
from attnforge.sim.specs.errors import SpecError

#: (workload, lengths, stage): prefill at two lengths and a decode step, small batches (fast to evaluate).
POINTS = (("bert-base", ["1k", "16k"], "prefill"), ("gpt2-small", ["4k"], "decode"))

#: Fields that move none of POINTS' cycles, latency, energy or area at twice, half or a tenth of their value (1
#: for a zero), and why.
UNUSED: dict[str, dict[str, str]] = {
    "fusemax": {
        "energy.1d.mul": "the 1-pass cascade runs no multiply on the 1D array (its products are MACs)",
        "arrays.1d.ops.mul.cycles": "as energy.1d.mul",
        "arrays.1d.ops.mul.actions.mul": "as energy.1d.mul",
        "arrays.2d.ops.max.cycles": "the 2D max (LM, one per score) shares its phase with the 1D array, which is busy "
                                    "every cycle at these points and sets the phase's length",
    },
    "flat": {
        "energy.2d.add": "FLAT's 2D array runs QK and AV as MACs only",
        "energy.2d.max": "FLAT's row max runs on the 1D array",
        "arrays.2d.ops.add.cycles": "as energy.2d.add",
        "arrays.2d.ops.add.actions.add": "as energy.2d.add",
        "arrays.2d.ops.max.cycles": "as energy.2d.max",
        "arrays.2d.ops.max.actions.max": "as energy.2d.max",
        "arrays.2d.ops.mac.cycles": "FLAT's 1D array bounds every point (its 2D array is busy under 15% of the "
                                    "cycles), so 2D MACs at half or twice the speed stay hidden",
        "energy.1d.mac": "FLAT's 1D array runs no MAC (softmax: max, exp, add, div)",
        "energy.1d.mul": "nor a multiply",
        "arrays.1d.ops.mac.cycles": "as energy.1d.mac",
        "arrays.1d.ops.mac.actions.mac": "as energy.1d.mac",
        "arrays.1d.ops.mul.cycles": "as energy.1d.mul",
        "arrays.1d.ops.mul.actions.mul": "as energy.1d.mul",
    },
}
#: Moves nothing at a preset's own depth by design: it prices RF entries beyond the figures' depth (ref_words).
ANY_PRESET = {"arrays.2d.rf.area_um2_per_word", "arrays.1d.rf.area_um2_per_word"}


def _leaves(x: Any, pre: str = ""):  # noqa: ANN202 - a generator of (dotted field, number)
    if isinstance(x, dict):
        for k, v in x.items():
            yield from _leaves(v, f"{pre}{k}.")
    elif isinstance(x, (int, float)) and not isinstance(x, bool):
        yield pre[:-1], x


def _results(preset: str, overrides: dict[str, Any]) -> list[tuple[float, ...]]:
    out = []
    for wl, seqs, stage in POINTS:
        sc = attnforge.Scenario.build(accelerator=preset, workload=wl, seq_lens=seqs, batch=4, stage=stage,
                                      overrides=overrides)
        out += [(r.cycles, r.latency_s, r.energy_j, r.area_mm2) for r in attnforge.simulate(sc)]
    return out


@pytest.mark.parametrize("preset", sorted(UNUSED))
def test_every_preset_field_moves_a_result(preset: str) -> None:
    base = _results(preset, {})
    inert = []
    for field, v in _leaves(get_preset(preset).model_dump(exclude={"sources", "description", "name"})):
        moved = False
        for f in (2.0, 0.5, 0.1):  # a tenth: a bound (DRAM bandwidth) these points reach only when much lower
            nv = (max(1, round(v * f)) if isinstance(v, int) else v * f) if v else 1
            try:
                moved = nv != v and _results(preset, {field: nv}) != base
            except SpecError:  # refused by name: read and checked, not ignored
                moved = True
            if moved:
                break
        if not moved:
            inert.append(field)
    unexplained = sorted(set(inert) - set(UNUSED[preset]) - ANY_PRESET)
    assert not unexplained, f"{preset}: these fields move no result (read and ignored?): {unexplained}"
    stale = sorted(set(UNUSED[preset]) - set(inert))
    assert not stale, f"{preset}: listed as unused but they do move a result now: {stale}"
