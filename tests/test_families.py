"""Typed arch families, the per-component energy table and the read-only registries: every mistake is one
SpecError naming the field (docs/architecture.md, "A new accelerator family")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from attnforge import Scenario
from attnforge.mappings import ACCELERATORS, BUILDERS, MAPPINGS, get_accelerator, get_builder, get_mapping
from attnforge.sim.analytical.cascade import CASCADES, get_cascade
from attnforge.sim.analytical.engine import run_schedule
from attnforge.sim.analytical.schedule import Actions, Schedule, Stage
from attnforge.sim.specs.arch import PRESETS, CascadeArch, SpattenArch, get_preset, load_arch
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.registry import Registry
from attnforge.sim.specs.spatten_policy import POLICIES, policy_for


def _load(tmp_path: Path, text: str) -> SpecError:
    p = tmp_path / "arch.yaml"
    p.write_text(text)
    with pytest.raises(SpecError) as ei:
        load_arch(p)
    assert "\n" not in str(ei.value)
    return ei.value


def test_presets_have_their_family_class() -> None:
    assert isinstance(get_preset("fusemax"), CascadeArch)
    sp = get_preset("spatten")
    assert isinstance(sp, SpattenArch)
    assert sp.spatten.topk_engines == 2 and sp.spatten.topk_comparators == 16
    assert get_preset("spatten-1-8").spatten.qk_multipliers == 64  # extends: merges into the typed section


@pytest.mark.parametrize(("base", "text", "field"), [
    ("spatten", "arrays: {2d: {dims: [4], ops: {mac: {actions: {mac: 1}}}, rf: {words: 1}}}", "arrays"),
    ("spatten", "buffer: {bytes: 1024}", "buffer"),
    ("fusemax", "spatten: {qk_multipliers: 4}", "spatten"),
])
def test_field_of_the_other_family_is_refused_by_name(tmp_path: Path, base: str, text: str, field: str) -> None:
    err = _load(tmp_path, f"extends: {base}\nname: x\n{text}\n")
    assert err.field.endswith(f".{field}")
    assert "family" in err.problem


def test_unknown_spatten_field_is_named(tmp_path: Path) -> None:
    err = _load(tmp_path, "extends: spatten\nname: x\nspatten: {topk_comparator: 8}\n")
    assert err.field.endswith("spatten.topk_comparator")


def test_misspelled_action_is_named_with_the_allowed_ones(tmp_path: Path) -> None:
    err = _load(tmp_path, "extends: spatten\nname: x\nenergy: {topk: {compre: 1.0}}\n")
    assert err.field.endswith("energy.topk.compre")
    assert err.allowed == "compare"


def test_missing_action_is_named(tmp_path: Path) -> None:
    # FuseMax's 1D array gains a dedicated exp unit whose energy the table does not give
    err = _load(tmp_path, "extends: fusemax\nname: x\narrays: {1d: {ops: {exp: {cycles: 1, actions: {exp: 1}}}}}\n")
    assert err.field.endswith("energy.1d.exp")
    assert "missing" in err.problem


def test_unknown_component_and_negative_energy(tmp_path: Path) -> None:
    assert _load(tmp_path, "extends: fusemax\nname: x\nenergy: {3d: {mac: 1.0}}\n").field.endswith("energy.3d")
    assert _load(tmp_path, "extends: spatten\nname: x\nenergy: {qk: {mac: -1}}\n").field.endswith("energy.qk.mac")


def test_unknown_family(tmp_path: Path) -> None:
    err = _load(tmp_path, "extends: spatten\nname: x\nfamily: tpu\n")
    assert err.field == "arch.family" and "cascade" in str(err.allowed) and "spatten" in str(err.allowed)


def test_spatten_override_applies_and_bad_override_is_named() -> None:
    assert load_arch("spatten", {"spatten.topk_comparators": 32}).spatten.topk_comparators == 32
    assert get_preset("spatten").spatten.topk_comparators == 16  # the registry's preset is untouched
    with pytest.raises(SpecError) as ei:
        load_arch("spatten", {"spatten.topk_comparators": 0})
    assert ei.value.field.endswith("spatten.topk_comparators")
    with pytest.raises(SpecError) as ei:
        load_arch("spatten", {"arrays.2d.dims": [4]})
    assert "no such field 'arrays'" in str(ei.value)


def test_override_changes_the_schedule() -> None:
    base = Scenario.build(accelerator="spatten", workload="gpt2-small", seq_lens=1024, batch=1, stage="decode")
    more = Scenario.build(accelerator="spatten", workload="gpt2-small", seq_lens=1024, batch=1, stage="decode",
                          overrides={"spatten.topk_comparators": 32})
    from attnforge.sim.analytical.engine import run

    assert run(more)[0].cycles < run(base)[0].cycles


@pytest.mark.parametrize(("accel", "arch"), [("spatten", "fusemax"), ("fusemax", "spatten")])
def test_binding_an_accelerator_to_another_family_is_refused(accel: str, arch: str) -> None:
    with pytest.raises(SpecError) as ei:
        Scenario.build(accelerator=accel, arch=arch)
    assert ei.value.field == "arch" and "family" in ei.value.problem


def test_engine_refuses_an_undeclared_action() -> None:
    arch = get_preset("spatten")
    s = Schedule(mapping="x", cascade="x", passes=1, stages=[Stage("s", [], 0.0)], busy={}, useful={},
                 actions=Actions({("qk", "mak"): 1.0}), flops=0.0, compulsory_dram_bytes=0.0)
    with pytest.raises(SpecError) as ei:
        run_schedule("spatten", s, arch)
    assert ei.value.field.endswith("energy.qk.mak")


def test_energy_is_read_straight_from_the_table() -> None:
    fm = get_preset("fusemax")
    assert fm.pj("2d", "mac") == fm.energy["2d"]["mac"]
    assert fm.pj("buffer", "read") == pytest.approx(fm.energy["buffer"]["read"] * 0.5**0.5)  # 16 MiB of a 32 MB table
    assert fm.pj("dram", "byte") * fm.word_bytes == pytest.approx(62.4)  # HBM2 249.6 pJ per 64 bits


@pytest.mark.parametrize(("registry", "get", "field"), [
    (ACCELERATORS, get_accelerator, "accel"),
    (MAPPINGS, get_mapping, "mapping"),
    (BUILDERS, get_builder, "builder"),
    (CASCADES, get_cascade, "cascade"),
    (PRESETS, get_preset, "arch"),
])
def test_registries_refuse_unknown_names_with_the_allowed_list(registry: Registry, get: object, field: str) -> None:
    with pytest.raises(SpecError) as ei:
        get("nosuch")  # type: ignore[operator]
    assert ei.value.field == field
    assert "nosuch" in ei.value.problem
    assert ei.value.allowed == ", ".join(registry)
    with pytest.raises(SpecError):
        registry.get("nosuch")


def test_policy_registry() -> None:
    assert policy_for("a3", causal=True) is POLICIES.get("a3")
    with pytest.raises(SpecError) as ei:
        policy_for("nosuch", causal=True)
    assert "auto" in str(ei.value.allowed) and "mnnfast" in str(ei.value.allowed)


def test_registries_are_read_only() -> None:
    with pytest.raises(TypeError):
        ACCELERATORS["x"] = ACCELERATORS.get("fusemax")  # type: ignore[index]
    assert not hasattr(ACCELERATORS, "register")
    reg = Registry("thing", {"a": 1})
    assert dict(reg) == {"a": 1} and "a" in reg and len(reg) == 1
    with pytest.raises(KeyError):
        reg["b"]


@pytest.mark.parametrize("accel", list(ACCELERATORS))
def test_builders_emit_only_what_their_family_declares(accel: str) -> None:
    from attnforge.sim.analytical.engine import evaluate_scenario

    sc = Scenario.build(accelerator=accel, workload="gpt2-small", seq_lens=1024, batch=1, stage="decode")
    ev = evaluate_scenario(sc)
    declared = {(c, a) for c, acts in sc.arch.emitted_actions().items() for a in acts}
    assert set(ev.schedule.actions) <= declared
    assert np.all(np.asarray(ev.schedule.dram_bytes) > 0)
