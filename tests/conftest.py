"""Make the repository root importable when the package is not installed (no ``pip install -e .``): the
``attnforge`` package then extends its own path to this checkout's folders (see attnforge/__init__.py)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


#: The slow set's longest tests with their seconds in a fresh-clone CI run (`.ci/run`'s `--durations=15`, at
#: 2ef322f), started first. `.ci/run` runs the slow set with `--maxschedchunk 1`, so pytest-xdist gives each of its
#: two workers the first two tests of its list, then one test whenever one finishes: with the longest two first
#: on one worker (its default hands each worker six consecutive tests, so one worker got the six longest, about
#: 700 s, while the other ran the short ones and idled: 852 s of wall time for the slow set in that run), the two
#: workers end together. Only the order changes, never what runs.
LONGEST_FIRST: dict[str, int] = {
    "test_spatten_top_rtl.py::test_minilm_whole_model_verilator": 235,
    "test_fusemax_top.py::test_bert_layer_verilator": 185,
    "test_rtl_blocks.py::test_block_long[spatten-pipeline-1-verilator]": 149,
    "test_fusemax_top.py::test_minilm_real_layers_verilator": 114,
    "test_rtl_blocks.py::test_block_long[importance-1-verilator]": 103,
    "test_rtl_blocks.py::test_block_long[fusemax-tile-2-verilator]": 64,
    "test_rtl_blocks.py::test_block_long[fusemax-tile-4-verilator]": 61,
    "test_fastbench.py::test_tile_run_is_bit_and_cycle_exact[cocotb-verilator-64-64]": 53,
    "test_rtl_blocks.py::test_block_long[array2d-1-verilator]": 46,
    "test_rtl_blocks.py::test_block_long[vector1d-1-verilator]": 42,
    "test_rtl_blocks.py::test_block_long[topk-1-verilator]": 42,
    "test_spatten_cli.py::test_reproduce_spatten_json": 41,
    "test_packaging.py::test_wheel_works_from_an_empty_folder": 40,
    "test_sweep_units.py::test_million_point_grid_local_and_ray": 39,
    "test_rtl_topk.py::test_topk_quick[verilator]": 35,
    "test_fastbench.py::test_bench_rtl_runs_every_design_checked": 32,
    "test_synth.py::test_keep_hierarchy_keeps_one_operand_register_per_pe": 34,
}


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ANN001 - pytest's hook signature
    """Longest tests first (stable: every other test keeps its collection order), the first four as 1st, 4th, 2nd,
    3rd: xdist's first two-test chunks then pair the longest with the fourth and the second with the third."""
    weight = {item.nodeid: LONGEST_FIRST.get(item.nodeid.removeprefix("tests/"), 0) for item in items}
    items.sort(key=lambda item: -weight[item.nodeid])
    if len(items) >= 4 and weight[items[3].nodeid] > 0:
        items[1:4] = [items[3], items[1], items[2]]
