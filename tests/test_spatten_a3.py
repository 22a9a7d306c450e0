"""A3 as A3 works (issue #13): per-query key pruning keeps every query and every fetched byte, cutting only the
per-query Q x K, softmax and prob x V work; MNNFast prunes neither queries nor tokens either."""

from __future__ import annotations

import math

import numpy as np
import pytest

from attnforge.reports.spatten_runs import evaluate_run
from attnforge.sim.spatten.pruning import query_candidates
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.spatten_policy import A3, A3_APPROX_SPEEDUP, MNNFAST, Policy

#: The exact pipeline A3 is compared with: the same fetch-everything design with every key scored.
FETCH_ALL = Policy(name="fetch-all dense", fetch_pruned=False)


def _run(pol: Policy, length: int, **kw: object) -> tuple[float, float, float, float]:
    """Executed FLOPs, DRAM bytes, kept token share and kept head share of one BERT-Base pass on SpAtten1/8."""
    s = evaluate_run("spatten-1/8", "bert-base", [length], pol, **kw).schedule
    return (float(np.sum(s.flops)), float(np.sum(s.compulsory_dram_bytes)), float(np.mean(s.extra["tokens_kept"])),
            float(np.mean(s.extra["heads_kept"])))


def test_a3_keeps_every_query_and_byte_and_scores_its_candidates_only() -> None:
    # 128 keys, keep 1/1.73: each query scores ceil(128 / 1.73) = 74 keys and weighs 74 V rows; nothing else moves.
    flops, nbytes, tok, heads = _run(A3, 128)
    d_flops, d_bytes, d_tok, d_heads = _run(FETCH_ALL, 128)
    assert (tok, heads) == (1.0, 1.0) == (d_tok, d_heads)
    assert nbytes == pytest.approx(d_bytes, rel=1e-12)
    assert flops / d_flops == pytest.approx(math.ceil(128 / A3_APPROX_SPEEDUP) / 128, rel=1e-12)


def test_a3_generation_fetches_the_whole_cache_every_step() -> None:
    # One query per step against 300 cached keys: the same bytes as scoring them all, 174 of 300 keys' work.
    kw = {"causal": True, "stage": "decode"}
    flops, nbytes, tok, _ = _run(A3, 300, **kw)
    d_flops, d_bytes, _, _ = _run(FETCH_ALL, 300, **kw)
    assert tok == 1.0
    assert nbytes == pytest.approx(d_bytes, rel=1e-12)
    assert flops / d_flops == pytest.approx(math.ceil(300 / A3_APPROX_SPEEDUP) / 300, rel=1e-12)


@pytest.mark.parametrize("pol", [A3, MNNFAST], ids=["a3", "mnnfast"])
def test_a3_and_mnnfast_never_drop_queries_or_tokens(pol: Policy) -> None:
    assert (pol.token_ratio, pol.head_ratio, pol.token_keep, pol.head_keep) == (0.0, 0.0, None, None)
    assert pol.fetch_pruned is False
    _, _, tok, heads = _run(pol, 96, causal=True)
    assert (tok, heads) == (1.0, 1.0)


def test_candidates_round_up_and_keep_one() -> None:
    assert query_candidates(np.array([10.0, 1.0]), 1.0).tolist() == [10.0, 1.0]
    assert query_candidates(np.array([10.0, 1.0, 100.0]), 0.05).tolist() == [1.0, 1.0, 5.0]


@pytest.mark.parametrize("bad", [0.0, 1.5, -0.2, float("nan"), "many", True])
def test_refused_keep_fractions(bad: object) -> None:
    with pytest.raises(SpecError, match=r"query_key_keep.*outside \(0, 1\]|query_key_keep.*not a number"):
        Policy(query_key_keep=bad, fetch_pruned=False)  # type: ignore[arg-type]


def test_key_keep_needs_fetch_everything() -> None:
    with pytest.raises(SpecError, match="query_key_keep.*fetch_pruned false") as err:
        Policy(query_key_keep=0.5)
    assert "\n" not in str(err.value)


def test_spatten_top_refuses_per_query_key_pruning() -> None:
    # The whole-accelerator RTL instance scores every key of every query: one line saying so, not a silent dense run.
    from attnforge.sim.analytical.engine import evaluate_scenario
    from attnforge.sim.specs.scenario import Scenario

    with pytest.raises(SpecError, match="query_key_keep.*no per-query key selection"):
        evaluate_scenario(Scenario.build(accelerator="spatten", arch="spatten-top-small", workload="bert-base",
                                         seq_lens=[32], batch=1, policy=A3))


def test_table3_energy_at_constant_power_scales_table2_to_spatten_1_8() -> None:
    """Table III's energy column is a throughput over a constant power (A3's 269 GOP/J is a roof-times-speedup
    throughput, no run, over 0.82 W): SpAtten1/8's power is Table II's chip with logic and SRAM scaled by the
    multipliers (128 of 1024) and DRAM by the bandwidth (64 of 512 GB/s)."""
    from attnforge.reports.spatten_table3 import TABLE2_W, _constant_power_row

    rows: list = []
    notes: dict[str, str] = {}
    _constant_power_row(400.0, rows, notes)
    (row,) = rows
    watts = sum(TABLE2_W.values()) / 8
    assert watts == pytest.approx(1.039, abs=1e-3)  # (1.36 + 1.24 + 5.71) / 8; the paper rounds to 8.30 W
    assert row.ours == pytest.approx(400.0 / watts) and row.paper == 382.0
    assert f"{watts:.2f} W" in row.metric and "0.94 W" in notes[row.metric]


def test_table3_constant_power_scales_from_table2s_chip_under_overrides() -> None:
    """With a `--set` on every SpAtten arch (here the HBM's channels), SpAtten1/8's constant power still scales from
    Table II's chip as shipped: its DRAM share follows its own, overridden, bandwidth against the paper's 512 GB/s."""
    from attnforge.reports import spatten_arch
    from attnforge.reports.spatten_table3 import TABLE2_W, _constant_power_row

    rows: list = []
    with spatten_arch.overridden({"hbm.channels": 8}):
        _constant_power_row(400.0, rows, {})
    watts = (TABLE2_W["logic"] + TABLE2_W["sram"]) / 8 + TABLE2_W["dram"] * 8 / 16  # 8 channels of Table II's 16
    assert rows[0].ours == pytest.approx(400.0 / watts)
