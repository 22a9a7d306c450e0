"""The regression report renders every row, flags failures and draws the cycle/error plots."""

from __future__ import annotations

import json
from pathlib import Path

from attnforge.reports.regress_report import write_report


def test_report_rows_failures_and_plots(tmp_path: Path) -> None:
    rows = [
        {"design": "fusemax-tile", "workload": "bert-base", "simulator": "icarus", "passed": True, "rtl_cycles": 99,
         "sim_cycles": 99, "max_abs_error": 0, "float_max_abs_error": 0.011, "steady_mac_utilization": 0.955},
        {"design": "pe", "workload": "random", "simulator": "verilator", "passed": False, "rtl_cycles": 70,
         "sim_cycles": 69, "max_abs_error": 3, "error": "payload mismatch at beat 4"},
    ]
    paths = write_report(rows, tmp_path, 1.5, {"icarus": 1000.0, "verilator": 5000.0})
    md = paths["md"].read_text()
    assert "**1/2 passed**" in md and "**FAIL**" in md and "payload mismatch at beat 4" in md
    assert md.count("\n| ") == 3  # header + one line per row
    assert json.loads(paths["json"].read_text()) == rows
    assert paths["cycles"].stat().st_size > 0 and paths["float_error"].stat().st_size > 0
