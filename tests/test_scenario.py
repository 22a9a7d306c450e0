"""The Scenario: every front end builds one, the engine takes it whole, every output records it.

Each test here pins a defect that existed before the Scenario (options silently ignored or lost between a front
end and the engine); each failed on the code before this change.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

import attnforge
from attnforge.cli.main import main
from attnforge.mappings.catalog import ACCELERATORS
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.scenario import Scenario


def _json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> object:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def _refused(capsys: pytest.CaptureFixture[str], argv: list[str], match: str) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert match in err and "\n" not in err and "Traceback" not in err


def test_simulate_honours_p_and_m(capsys):
    r = _json(capsys, ["simulate", "--seq-len", "4k", "--p", "512", "--m", "2048", "--json"])
    assert (r["p"], r["m"]) == (512, 2048)
    whole = _json(capsys, ["simulate", "--seq-len", "2048", "--json"])
    assert r["cycles"] < whole["cycles"]  # a quarter of the queries


def test_compare_honours_p_and_m(capsys):
    rows = _json(capsys, ["compare", "--accels", "flat,fusemax", "--seq-len", "4k", "--p", "256", "--m", "1024", "--json"])
    assert {(r["p"], r["m"]) for r in rows} == {(256, 1024)}


def test_m_with_several_lengths_is_refused(capsys):
    _refused(capsys, ["simulate", "--seq-len", "1k,2k", "--m", "512"], "--m")


def test_sweep_of_a_causal_model_is_causal(tmp_path, capsys):
    spec = tmp_path / "s.yaml"
    spec.write_text("accelerators: [fusemax]\nworkloads: [gpt2-small]\nseq_lens: [1k]\nbatch: [64]\n")
    df = attnforge.sweep(spec, tmp_path / "out")
    sim = _json(capsys, ["simulate", "--workload", "gpt2-small", "--seq-len", "1k", "--json"])
    assert bool(df["causal"].iloc[0]) and sim["causal"]
    assert df["cycles"].iloc[0] == sim["cycles"] == 1_256_448


@pytest.mark.parametrize("extra,match", [
    (["--set", "buffer.bytes=5"], "--set"),
    (["--arch", "flat"], "--set"),
    (["--scope", "end-to-end"], "--scope"),
    (["--tile", "query_block=7"], "--tile"),
    (["--causal"], "--causal"),
])
def test_cycle_fidelity_refuses_what_it_cannot_honour(capsys, extra, match):
    _refused(capsys, ["simulate", "--accel", "fusemax", "--fidelity", "cycle", "--seq-len", "256", *extra], match)


def test_cycle_fidelity_refuses_spatten_knobs_it_ignores(capsys):
    _refused(capsys, ["simulate", "--accel", "spatten", "--fidelity", "cycle", "--workload", "bert-base",
                      "--seq-len", "64", "--token-ratio", "0.5"], "--token-ratio")


def test_analytical_refuses_rtl_params(capsys):
    _refused(capsys, ["simulate", "--rtl-param", "rows=8"], "--rtl-param")


def test_cycle_fidelity_runs_every_length(capsys):
    rows = _json(capsys, ["simulate", "--accel", "fusemax", "--fidelity", "cycle", "--seq-len", "256,512",
                          "--batch", "1", "--json"])
    assert [r["m"] for r in rows] == [256, 512] and rows[0]["cycles"] < rows[1]["cycles"]
    assert all(r["fidelity"] == "cycle" and r["attnforge_version"] == attnforge.__version__ for r in rows)


def test_decode_bound_is_one_answer(capsys):
    assert main(["simulate", "--workload", "gpt2-small", "--seq-len", "2k", "--stage", "decode"]) == 0
    out = capsys.readouterr().out
    table_bound = out.splitlines()[2].split()[-2]  # header line, column names, first row
    assert f"bound: {table_bound} " in out


def test_arch_file_name_and_overrides_are_reported(tmp_path, capsys):
    arch = tmp_path / "my_arch.yaml"
    arch.write_text("extends: fusemax\nname: my-fusemax\nclock_mhz: 500\n")
    r = _json(capsys, ["simulate", "--arch", str(arch), "--set", "buffer.bytes=8388608", "--seq-len", "1k", "--json"])
    assert r["arch"] == "my-fusemax" and r["arch_source"] == str(arch)
    assert r["overrides"] == {"buffer.bytes": 8388608} and r["attnforge_version"] == attnforge.__version__
    assert main(["simulate", "--arch", str(arch), "--seq-len", "1k"]) == 0
    assert "arch my-fusemax" in capsys.readouterr().out.splitlines()[0]


def test_compare_csv_records_the_scenario(tmp_path, capsys):
    assert main(["compare", "--accels", "flat,fusemax", "--seq-len", "1k", "--set", "clock_mhz=500", "-o",
                 str(tmp_path)]) == 0
    df = pd.read_csv(tmp_path / "results.csv")
    assert {"arch", "arch_source", "overrides", "policy", "attnforge_version", "speedup", "energy_ratio"} <= set(df)
    assert json.loads(df["overrides"].iloc[0]) == {"clock_mhz": 500}


def test_spatten_knobs_travel_in_the_scenario_not_a_registry(capsys):
    before = dict(ACCELERATORS)
    r = _json(capsys, ["simulate", "--accel", "spatten", "--workload", "gpt2-small", "--seq-len", "512", "--batch", "1",
                       "--stage", "decode", "--token-ratio", "0.5", "--json"])
    assert ACCELERATORS == before
    assert r["policy"].endswith("+custom") and r["policy_settings"]["token_ratio"] == 0.5


def test_policy_refused_for_a_family_without_one(capsys):
    _refused(capsys, ["simulate", "--accel", "fusemax", "--token-ratio", "0.5"], "policy")


def test_trace_replay_by_name_and_refusals(capsys):
    r = _json(capsys, ["simulate", "--trace", "gpt2-small-wikitext2-per8", "--json"])
    assert r["cycles"] > 0 and r["arch"] == "spatten" and r["attnforge_version"] == attnforge.__version__
    _refused(capsys, ["simulate", "--trace", "gpt2-small-wikitext2-per8", "--seq-len", "1k"], "--seq-len")
    _refused(capsys, ["simulate", "--trace", "no-such-trace"], "no trace")
    # every policy knob but the comparators is the trace's own: refused, the newest included
    for knob, val in (("--token-ratio", "0.5"), ("--threshold", "0.2"), ("--lsb-refetch-rate", "0.5")):
        _refused(capsys, ["simulate", "--trace", "gpt2-small-wikitext2-per8", knob, val], knob)


def test_version_flag(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0 and attnforge.__version__ in capsys.readouterr().out


def test_python_api_round_trip():
    sc = attnforge.Scenario.build(accelerator="flat", workload="bert-base", seq_lens=[1024, 4096], batch=[1, 8])
    assert sc.points == 4 and sc.describe()["arch"] == "flat"
    res = attnforge.simulate(sc)
    df = attnforge.to_frame(res)
    assert len(df) == 4 and set(df["batch"]) == {1, 8} and all(r.scenario is sc for r in res)
    assert attnforge.simulate(accelerator="flat", workload="bert-base", seq_lens=[1024], batch=1)[0].cycles == res[0].cycles


@pytest.mark.parametrize("kw,match", [
    ({"seq_lens": []}, "seq-len"),
    ({"seq_lens": [0]}, "seq-len"),
    ({"seq_lens": [1 << 40]}, "seq-len"),
    ({"batch": True}, "batch"),
    ({"stage": "train"}, "stage"),
    ({"fidelity": "rtl"}, "fidelity"),
    ({"accelerator": "tpu"}, "accel"),
    ({"policy": {"token_ratio": 0.5}}, "policy"),
])
def test_build_refuses_bad_fields(kw, match):
    with pytest.raises(SpecError, match=match):
        Scenario.build(**kw)


def test_packaged_sweep_by_name(tmp_path):
    from attnforge.sweep_runner import load_spec, packaged_specs

    assert "example" in packaged_specs() and load_spec("example").name
    with pytest.raises(SpecError, match="packaged spec"):
        load_spec("no-such-sweep")


def test_results_carry_the_scenario_they_answer():
    res = attnforge.simulate(accelerator="fusemax", workload="gpt2-small", seq_lens=[1024])
    assert res[0].scenario.causal and res[0].causal and Path(res[0].scenario.arch_source).name == "fusemax"


def test_causal_mask_needs_the_queries_among_the_keys(capsys: pytest.CaptureFixture[str]) -> None:
    """More queries than keys under a causal mask would give the first queries nothing to attend to (the model
    counted negative score elements for them): refused in one line; without the mask it is cross-attention."""
    _refused(capsys, ["simulate", "--p", "5", "--m", "3", "--causal"], "P <= M")
    _refused(capsys, ["simulate", "--workload", "gpt2-small", "--seq-len", "1k", "--p", "2000"], "P = 2000, M = 1024")
    assert _json(capsys, ["simulate", "--p", "5", "--m", "3", "--json"])
    with pytest.raises(SpecError, match="--p"):
        Scenario.build(workload="gpt2-small", seq_lens=[64], p=65)
