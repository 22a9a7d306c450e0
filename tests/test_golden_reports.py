"""Golden reports: flag any unintended change in the numbers attnforge reports.

The snapshots in tests/data/golden/ were produced by the commands below. When a change is intended (a model fix,
a new cited value), regenerate them with ``ATTNFORGE_UPDATE_GOLDEN=1 pytest tests/test_golden_reports.py`` and say
why in the commit; otherwise a failure here is a regression.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import pytest

from attnforge.cli.main import main

GOLDEN = Path(__file__).parent / "data" / "golden"
CASES = {
    "reproduce_fusemax": ["reproduce", "fusemax", "--json"],
    "compare_bert_base": ["compare", "--accels", "unfused,flat,fusemax-cascade,fusemax-arch,fusemax", "--workload",
                          "bert-base", "--seq-len", "1k,16k,256k", "--json"],
    "compare_xlm_e2e": ["compare", "--accels", "flat,fusemax", "--workload", "xlm", "--seq-len", "4k,1M",
                        "--scope", "end-to-end", "--json"],
    "simulate_gpt2_decode": ["simulate", "--accel", "fusemax", "--workload", "gpt2-small", "--seq-len", "2k",
                             "--stage", "decode", "--batch", "8", "--json"],
}


#: Fields that change with every release, not with the model: left out of the comparison.
VOLATILE = {"attnforge_version"}


def _diff(a: object, b: object, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: missing" for k in (a.keys() ^ b.keys()) - VOLATILE]
        for k in (a.keys() & b.keys()) - VOLATILE:
            out += _diff(a[k], b[k], f"{path}.{k}")
        return out
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: length {len(a)} != {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in _diff(x, y, f"{path}[{i}]")]
    if isinstance(a, float) or isinstance(b, float):
        if isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12):
            return []
        return [f"{path}: {a!r} != {b!r}"]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_golden_report(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(CASES[name]) == 0
    got = json.loads(capsys.readouterr().out)
    path = GOLDEN / f"{name}.json"
    if os.environ.get("ATTNFORGE_UPDATE_GOLDEN") == "1" or not path.exists():
        path.write_text(json.dumps(got, indent=1, sort_keys=True) + "\n")
        if os.environ.get("ATTNFORGE_UPDATE_GOLDEN") != "1":
            pytest.fail(f"created missing golden file {path}; commit it")
    want = json.loads(path.read_text())
    diffs = _diff(want, got)
    assert not diffs, f"{name} changed ({len(diffs)} fields), first: " + "; ".join(diffs[:5])
