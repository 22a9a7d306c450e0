"""Energy you can audit: sum(count x pJ) over (component, action) plus leakage reproduces energy_j."""

from __future__ import annotations

import csv
import json

import pytest

from attnforge.cli.main import main
from attnforge.sim.analytical.engine import run
from attnforge.sim.specs.scenario import Scenario

#: SpAtten accelerates attention only (end-to-end is refused for it), so it is not paired with that scope.
CASES = [(a, s) for a in ("fusemax", "flat") for s in ("attention", "end-to-end")] + [("spatten", "attention")]


@pytest.mark.parametrize("accel,scope", CASES)
def test_actions_sum_to_energy(accel: str, scope: str) -> None:
    sc = Scenario.build(accelerator=accel, workload="bert-base", seq_lens=[1024, 16384], scope=scope)
    for r in run(sc, actions=True):
        assert r.actions
        dyn = sum(a["count"] * a["pj_each"] for a in r.actions) * 1e-12
        assert sum(a["energy_j"] for a in r.actions) == pytest.approx(dyn, rel=1e-12)
        assert r.leakage_j is not None and r.leakage_j >= 0
        assert dyn + r.leakage_j == pytest.approx(r.energy_j, rel=1e-9)


def test_actions_are_opt_in() -> None:
    sc = Scenario.build(accelerator="fusemax", workload="bert-base", seq_lens=[1024])
    d = run(sc)[0].to_dict()
    assert "actions" not in d and "leakage_j" not in d


def test_simulate_json_actions(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--accel", "flat", "--seq-len", "4k", "--json", "--actions"]) == 0
    d = json.loads(capsys.readouterr().out)
    rows = d["actions"]
    assert {"component", "action", "count", "pj_each", "energy_j"} <= set(rows[0])
    total = sum(a["count"] * a["pj_each"] for a in rows) * 1e-12 + d["leakage_j"]
    assert total == pytest.approx(d["energy_j"], rel=1e-9)


def test_compare_csv_actions(tmp_path, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: ANN001
    out = tmp_path / "cmp"
    assert main(["compare", "--accels", "flat,fusemax", "--seq-len", "1k,4k", "--actions", "-o", str(out)]) == 0
    capsys.readouterr()
    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        e = sum(float(v) for k, v in row.items() if k.startswith("actions.") and k.endswith(".energy_j") and v)
        assert e + float(row["leakage_j"]) == pytest.approx(float(row["energy_j"]), rel=1e-9)
        assert any(k.endswith(".count") and row[k] for k in row if k.startswith("actions."))
