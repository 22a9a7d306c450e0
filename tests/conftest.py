"""Make the repository root importable when the package is not installed (no ``pip install -e .``): the
``attnforge`` package then extends its own path to this checkout's folders (see attnforge/__init__.py)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


#: The slow set's longest tests with their seconds in a fresh-clone CI run (`.ci/run`'s `--durations=15`, at
#: 5f50945), started first: pytest-xdist hands the first tests out round-robin and the rest on demand, so the two
#: workers share the long ones and do not end with one of them alone on a late 160-s test (that run's slow set took
#: 824 s of wall time for about 1,500 s of work on two workers). Only the order changes, never what runs.
LONGEST_FIRST: dict[str, int] = {
    "test_spatten_top_rtl.py::test_minilm_whole_model_verilator": 164,
    "test_fusemax_top.py::test_bert_layer_verilator": 154,
    "test_rtl_blocks.py::test_block_long[spatten-pipeline-1-verilator]": 115,
    "test_rtl_blocks.py::test_block_long[importance-1-verilator]": 109,
    "test_fusemax_top.py::test_minilm_real_layers_verilator": 105,
    "test_spatten_cli.py::test_reproduce_spatten_json": 65,
    "test_rtl_blocks.py::test_block_long[fusemax-tile-2-verilator]": 64,
    "test_rtl_blocks.py::test_block_long[array2d-1-verilator]": 48,
    "test_rtl_blocks.py::test_block_long[fusemax-tile-4-verilator]": 43,
    "test_rtl_blocks.py::test_block_long[topk-1-verilator]": 43,
    "test_packaging.py::test_wheel_works_from_an_empty_folder": 42,
    "test_sweep_units.py::test_million_point_grid_local_and_ray": 41,
    "test_fastbench.py::test_tile_run_is_bit_and_cycle_exact[cocotb-verilator-64-64]": 39,
    "test_fastbench.py::test_bench_rtl_runs_every_design_checked": 36,
    "test_synth.py::test_keep_hierarchy_keeps_one_operand_register_per_pe": 34,
}


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ANN001 - pytest's hook signature
    """Longest tests first (stable: every other test keeps its collection order)."""
    items.sort(key=lambda item: -LONGEST_FIRST.get(item.nodeid.removeprefix("tests/"), 0))
