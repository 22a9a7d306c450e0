"""Cascades and mappings as data (docs/variants.md): the built-in files load into the registries, the examples under
examples/variants/ run through simulate, compare and sweep, and every mistake in a file is one SpecError line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from attnforge.mappings import MAPPINGS, get_mapping
from attnforge.mappings.files import load_mapping_file, mapping_from_data
from attnforge.sim.analytical.cascade import CASCADES, cascade_from_data, load_cascade
from attnforge.sim.analytical.engine import run
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.scenario import Scenario

ROOT = Path(__file__).resolve().parent.parent
VARIANTS = ROOT / "examples" / "variants"
MAXFREE = VARIANTS / "maxfree-fusemax.yaml"
EXP_1D = VARIANTS / "fusemax-exp-on-1d.yaml"


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "attnforge", *args], capture_output=True, text=True, cwd=ROOT)


# ---- the built-in files --------------------------------------------------------------------------------------------
def test_builtin_files_are_the_registries() -> None:
    assert set(CASCADES) == {"1-pass", "2-pass", "3-pass", "gemm"}
    assert set(MAPPINGS) == {"unfused", "flat", "fusemax-cascade", "fusemax-arch", "gemm", "fusemax",
                             "fusemax-top"}
    for name in MAPPINGS:
        m = get_mapping(name)
        assert m.get_cascade() is CASCADES.get(m.cascade) or m.get_cascade() == CASCADES.get(m.cascade)
    assert CASCADES.get("1-pass").passes == 1 and CASCADES.get("3-pass").passes == 3


def test_every_einsum_is_bound_and_scheduled_once() -> None:
    for m in MAPPINGS.values():
        names = m.get_cascade().names()
        assert sorted(m.binding) == sorted(names)
        assert sorted(m.stage_of()) == sorted(names)


# ---- the examples ---------------------------------------------------------------------------------------------------
def test_example_cascade_loads() -> None:
    c = load_cascade(VARIANTS / "maxfree-1pass.cascade.yaml")
    assert c.names() == ["QK", "SN", "SD", "SNV", "AV"]
    assert c.passes == 1 and c.crossing_tensors() == []


@pytest.mark.parametrize("path", [MAXFREE, EXP_1D], ids=["maxfree", "exp-on-1d"])
def test_examples_run_and_are_recorded(path: Path) -> None:
    rel = str(path.relative_to(ROOT))
    sc = Scenario.build(accelerator="fusemax", seq_lens=[4096, 65536], mapping=path)
    base = run(Scenario.build(accelerator="fusemax", seq_lens=[4096, 65536]))
    res = run(sc)
    assert [r.accelerator for r in res] == [f"fusemax@{path}"] * 2
    d = res[0].to_dict()
    assert d["mapping"] == load_mapping_file(path).name and d["mapping_source"] == str(path)
    assert "mapping" not in base[0].to_dict()  # the accelerator's own mapping: outputs keep their keys
    assert all(r.cycles > 0 and r.energy_j > 0 for r in res)
    if path == EXP_1D:  # exp on the 1D array: far slower, the 2D array mostly idle
        assert res[0].cycles > 10 * base[0].cycles and res[0].utilization["2d"] < 0.1
    else:  # no max, no rescaling: fewer 2D-array cycles than FuseMax
        assert res[0].cycles < base[0].cycles
    assert sc.label == f"fusemax@{path}" and rel.startswith("examples/variants/")


def test_cli_simulate_and_compare_with_mapping_files() -> None:
    r = cli("simulate", "--seq-len", "4k", "--mapping", "examples/variants/maxfree-fusemax.yaml", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["mapping"] == "maxfree-fusemax" and d["cascade"] == "maxfree-1pass"
    assert d["accelerator"] == "fusemax@examples/variants/maxfree-fusemax.yaml"
    r = cli("compare", "--accels", "fusemax,fusemax@examples/variants/fusemax-exp-on-1d.yaml", "--seq-len", "4k")
    assert r.returncode == 0, r.stderr
    assert "fusemax@examples/variants/fusemax-exp-on-1d.yaml" in r.stdout
    r = cli("simulate", "--seq-len", "4k", "--mapping", "examples/variants/maxfree-fusemax.yaml")
    assert r.returncode == 0 and "mapping maxfree-fusemax" in r.stdout


def test_builtin_mapping_by_name_on_another_accelerator() -> None:
    own = run(Scenario.build(accelerator="fusemax-arch", seq_lens=[4096]))[0]
    res = run(Scenario.build(accelerator="fusemax-arch", seq_lens=[4096], mapping="fusemax"))[0]
    ref = run(Scenario.build(accelerator="fusemax", seq_lens=[4096]))[0]
    assert res.cycles == ref.cycles != own.cycles


def test_sweep_spec_with_mapping(tmp_path: Path) -> None:
    from attnforge.sweep_runner import config_scenario, expand, load_spec

    spec = tmp_path / "s.yaml"
    spec.write_text(f"name: v\naccelerators: [fusemax, flat]\nworkloads: [bert-base]\nseq_lens: [4096]\n"
                    f"mapping: {MAXFREE.name}\n")
    (tmp_path / MAXFREE.name).write_text(MAXFREE.read_text())
    (tmp_path / "maxfree-1pass.cascade.yaml").write_text((VARIANTS / "maxfree-1pass.cascade.yaml").read_text())
    cfgs = expand(load_spec(spec))
    assert [config_scenario(c).mapping.name for c in cfgs] == ["maxfree-fusemax"] * 2


# ---- refusals, one line each ----------------------------------------------------------------------------------------
def _refused(exc: pytest.ExceptionInfo[SpecError], *words: str) -> None:
    msg = str(exc.value)
    assert "\n" not in msg, msg
    for w in words:
        assert w in msg, msg


def test_spatten_refuses_a_mapping() -> None:
    with pytest.raises(SpecError) as ei:
        Scenario.build(accelerator="spatten", mapping=MAXFREE)
    _refused(ei, "mapping:", "allowed: ", "fusemax")


def test_cycle_fidelity_refuses_a_mapping() -> None:
    with pytest.raises(SpecError) as ei:
        Scenario.build(accelerator="fusemax", mapping="fusemax", fidelity="cycle").check_honoured()
    _refused(ei, "--mapping")


def test_unknown_mapping_name() -> None:
    with pytest.raises(SpecError) as ei:
        Scenario.build(accelerator="fusemax", mapping="nosuch")
    _refused(ei, "mapping: unknown mapping 'nosuch'", "fusemax-arch")


def test_binding_array_missing_from_the_arch(tmp_path: Path) -> None:
    raw = MAXFREE.read_text().replace("AV: 1d}", "AV: 3d}").replace(
        "maxfree-1pass.cascade.yaml", str(VARIANTS / "maxfree-1pass.cascade.yaml"))
    (tmp_path / "m.yaml").write_text(raw)
    with pytest.raises(SpecError) as ei:
        Scenario.build(accelerator="fusemax", mapping=tmp_path / "m.yaml")
    _refused(ei, "binding.AV", "no array '3d'", "allowed: 2d, 1d")


def _mapping(**changes: object) -> dict:
    base = {"name": "t", "cascade": "3-pass", "binding": {e: "1d" for e in ("QK", "GM", "SN", "SD", "A", "AV")},
            "stages": [{"name": "s", "phases": [["QK", "GM", "SN", "SD", "A", "AV"]]}]}
    base.update(changes)
    return base


@pytest.mark.parametrize(("changes", "words"), [
    ({"binding": {"QK": "2d", "XX": "1d"}}, ["t.yaml.binding.XX", "no Einsum 'XX' in cascade 3-pass", "allowed: QK, GM"]),
    ({"binding": {"QK": "2d"}}, ["t.yaml.binding", "Einsum GM of cascade 3-pass is bound to no array"]),
    ({"cascade": "4-pass"}, ["t.yaml.cascade", "unknown cascade '4-pass'", "allowed: "]),
    ({"placement": {"QK": "l2"}}, ["placement.QK", "unknown place 'l2'", "allowed: rf, gb, dram"]),
    ({"placement": {"Q": "gb"}}, ["placement.Q", "no Einsum 'Q'"]),
    ({"op_cycles": {"sqrt": 2}}, ["op_cycles.sqrt", "unknown operator", "allowed: mac, max"]),
    ({"op_cycles": {"exp": 0}}, ["op_cycles.exp", "greater than 0"]),
    ({"stages": [{"name": "s", "phases": [["QK", "GM", "SN"]]}]},
     ["t.yaml.stages", "Einsum SD of cascade 3-pass is in no phase"]),
    ({"stages": [{"name": "s", "phases": [["QK", "GM", "SN", "SD", "A", "AV", "QK"]]}]}, ["already in stage s"]),
    ({"stages": [{"name": "s", "phases": [{"einsums": ["QK", "GM", "SN", "SD", "A", "AV"], "stall": "ZZ"}]}]},
     ["stages.0.phases.0.stall", "no Einsum 'ZZ'"]),
    ({"full_spill_above": 2}, ["full_spill_above", "less than or equal to 1"]),
    ({"colour": "red"}, ["t.yaml.colour", "Extra inputs are not permitted"]),
])
def test_mapping_file_errors(changes: dict, words: list[str]) -> None:
    with pytest.raises(SpecError) as ei:
        mapping_from_data(_mapping(**changes), "t.yaml")
    _refused(ei, "mapping t.yaml", *words)


def _cascade(**changes: object) -> dict:
    base = {"name": "c", "einsums": [
        {"name": "QK", "ranks": ["m", "p"], "inputs": {"Q": ["e", "p"], "K": ["e", "m"]}, "op": "mac", "reduce": ["e"]},
        {"name": "AV", "ranks": ["f", "p"], "inputs": {"QK": ["m", "p"], "V": ["f", "m"]}, "op": "mac", "reduce": ["m"]},
    ]}
    base.update(changes)
    return base


def _einsum(i: int, **changes: object) -> dict:
    raw = _cascade()
    raw["einsums"][i].update(changes)
    return raw


@pytest.mark.parametrize(("raw", "words"), [
    (_einsum(0, op="sqrt"), ["c.yaml.einsums.0.op", "unknown operator 'sqrt'", "allowed: mac, max, add, exp, mul, div"]),
    (_einsum(0, ranks=["m", "q"]), ["einsums.0.ranks", "unknown rank 'q'", "allowed: p, m, m1, m0, e, f"]),
    (_einsum(1, inputs={"QK": ["m", "p"], "W": ["f", "m"]}), ["einsums", "AV reads W before it is produced"]),
    (_einsum(1, reduce=["f"]), ["einsums.1.reduce", "cannot be an output rank"]),
    (_einsum(1, iterative=["m1"]), ["einsums.1.iterative", "not an output rank"]),
    (_einsum(1, final=["Z"]), ["einsums.1.final", "'Z' is not one of its inputs"]),
    (_einsum(1, name="QK"), ["einsums.1.name", "'QK' is defined twice"]),
    (_cascade(output="ZZ"), ["c.yaml.output", "unknown Einsum 'ZZ'", "allowed: QK, AV"]),
    (_cascade(inputs=["Q", "K", "V", "W"]), ["c.yaml.inputs", "unknown input tensor 'W'", "allowed: Q, K, V"]),
    (_cascade(passes=2), ["c.yaml.passes", "says 2, but the data dependencies take 1"]),
    (_cascade(einsums=[]), ["c.yaml.einsums", "at least 1"]),
    (_einsum(0, operator="mac"), ["einsums.0.operator", "Extra inputs are not permitted"]),
])
def test_cascade_file_errors(raw: dict, words: list[str]) -> None:
    with pytest.raises(SpecError) as ei:
        cascade_from_data(raw, "c.yaml")
    _refused(ei, "cascade c.yaml", *words)


def test_cascade_file_error_inside_a_mapping_names_the_cascade_file(tmp_path: Path) -> None:
    (tmp_path / "c.yaml").write_text("name: c\neinsums:\n  - {name: QK, ranks: [m, p], inputs: {Q: [e, p]}, op: fma}\n")
    (tmp_path / "m.yaml").write_text("name: m\ncascade: c.yaml\nbinding: {QK: 2d}\nstages: [{name: s, phases: [[QK]]}]\n")
    with pytest.raises(SpecError) as ei:
        load_mapping_file(tmp_path / "m.yaml")
    _refused(ei, "c.yaml.einsums.0.op", "unknown operator 'fma'")


def test_bad_files_are_one_line_on_the_cli(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ncascade: 1-pass\nbinding: {QK: 2d}\nstages: [{name: s, phases: [[QK]]}]\n")
    r = cli("simulate", "--mapping", str(bad))
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0
    assert "binding" in r.stderr and "bound to no array" in r.stderr
    r = cli("simulate", "--mapping", str(tmp_path / "missing.yaml"))
    assert r.returncode == 2 and "file not found" in r.stderr
    r = cli("simulate", "--accel", "spatten", "--mapping", "fusemax")
    assert r.returncode == 2 and r.stderr.strip().count("\n") == 0 and "mapping:" in r.stderr
