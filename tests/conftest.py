"""Make the repository root importable when the package is not installed (no ``pip install -e .``): the
``attnforge`` package then extends its own path to this checkout's folders (see attnforge/__init__.py)."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


#: The slow set's longest tests with their seconds (`pytest -m slow -n 2 --durations=40` on this 2-core machine,
#: at c83c732, the cases cut after it re-timed alone; the two workers sharing the cores), and the fast set's
#: longest, each set's started first:
#: pytest-xdist hands the first tests out round-robin and the rest on demand, so the two workers share the long ones
#: and do not end with one of them alone on a late 200-s test. Only the order changes, never what runs.
LONGEST_FIRST: dict[str, int] = {
    "test_spatten_top_rtl.py::test_minilm_whole_model_verilator": 281,
    "test_fusemax_top.py::test_minilm_real_layers_verilator": 186,
    "test_fusemax_top.py::test_bert_layer_verilator": 170,
    "test_spatten_cli.py::test_reproduce_spatten_json": 164,
    "test_rtl_blocks.py::test_block_long[spatten-pipeline-1-verilator]": 127,
    "test_sweep_units.py::test_million_point_grid_local_and_ray": 101,
    "test_fastbench.py::test_bench_rtl_runs_every_design_checked": 93,
    "test_rtl_blocks.py::test_block_long[fusemax-tile-2-verilator]": 88,
    "test_hbm_events.py::test_every_recorded_row_gives_ramulators_cycles": 50,
    "test_fastbench.py::test_tile_run_is_bit_and_cycle_exact[cocotb-verilator-64-64]": 48,
    "test_packaging.py::test_wheel_works_from_an_empty_folder": 45,
    "test_rtl_blocks.py::test_block_long[importance-1-icarus]": 45,
    "test_fusemax_top.py::test_memory_timings_exact[mem0]": 42,
    "test_spatten_importance.py::test_importance_run_is_bit_and_cycle_exact[verilator]": 34,
    "test_fusemax_top.py::test_full_bench_icarus": 33,
    "test_peers.py::test_against_real_scalesim_and_zigzag": 33,
    "test_report_browser.py::test_report_in_browser[sweep]": 33,
    "test_report_browser.py::test_report_in_browser[compare]": 32,
    "test_rtl_topk.py::test_topk_long[icarus]": 25,
    "test_synth.py::test_dsp_registers_move_the_pipeline_into_the_dsp": 29,
    "test_synth.py::test_keep_hierarchy_keeps_one_operand_register_per_pe": 29,
    "test_rtl_blocks.py::test_block_long[vector1d-1-icarus]": 25,
    # the fast set's longest (`pytest -m "not slow" -n 2 --durations=40` on this 2-core machine)
    "test_docs_commands.py::test_guide_commands_run[6-rtl]": 14,
    "test_docs_commands.py::test_guide_commands_run[9-simulate]": 9,
    "test_rtl_blocks.py::test_block_quick[fusemax-tile-icarus]": 15,
    "test_rtl_blocks.py::test_block_quick[spatten-pipeline-icarus]": 14,
    "test_fusemax_top.py::test_small_layer_three_fidelities": 13,
    "test_spatten_top_rtl.py::test_decode_step_icarus": 13,
    "test_rtl_blocks.py::test_block_quick[importance-icarus]": 11,
    "test_sweep.py::test_cli_sweep_then_report": 8,
    "test_rtl_topk.py::test_topk_quick[icarus]": 7,
    "test_mapfiles.py::test_cli_simulate_and_compare_with_mapping_files": 7,
    "test_fastbench.py::test_tile_run_is_bit_and_cycle_exact[raw-icarus-8-32]": 7,
}


def pytest_collection_modifyitems(config, items) -> None:  # noqa: ANN001 - pytest's hook signature
    """Longest tests first (stable: every other test keeps its collection order)."""
    items.sort(key=lambda item: -LONGEST_FIRST.get(item.nodeid.removeprefix("tests/"), 0))
