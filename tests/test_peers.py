"""attnforge against SCALE-Sim and ZigZag: closed forms here, the real tools in the slow set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from attnforge.reports.peers import DEFAULT_ENV, Gemm, attention_gemms, compare_peers, ours, setup_env, zigzag_inputs
from attnforge.sim.specs.arch import get_preset, load_arch


def test_systolic_fold_model_matches_scalesim_measurements() -> None:
    # SCALE-Sim v3 OS, 32x32 (docs/toolchain.md §Peers): 512x512x64 -> 32,255 compute cycles,
    # 512x64x512 -> 18,367, 300x200x50 -> 7,839; folds x (K + R + C - 2), SCALE-Sim ends one cycle earlier.
    arch = get_preset("systolic-os32")
    assert ours(Gemm("a", 512, 512, 64), arch)["compute_cycles"] == 32255 + 1
    assert ours(Gemm("b", 512, 64, 512), arch)["compute_cycles"] == 18367 + 1
    assert ours(Gemm("c", 300, 200, 50), arch)["compute_cycles"] == 7839 + 1


def test_aggregate_model_has_no_fill_drain() -> None:
    agg = load_arch("systolic-os32", {"arrays.2d.systolic": False})
    assert ours(Gemm("a", 512, 512, 64), agg)["compute_cycles"] == 512 * 512 * 64 / 1024


def test_gemm_energy_is_macs_plus_memory() -> None:
    arch = get_preset("systolic-os32")
    o = ours(Gemm("a", 256, 256, 64), arch)
    assert o["mac_pj"] == pytest.approx(256 * 256 * 64 * arch.energy["2d"]["mac"])
    words = 256 * 64 * 2 + 256 * 256  # both operands in once, the output out once
    assert o["dram_pj"] == pytest.approx(words * arch.word_bytes * arch.energy["dram"]["byte"])


def test_zigzag_inputs_keep_per_word_energy() -> None:
    arch = get_preset("systolic-os32")
    wl, hw, mp = zigzag_inputs(Gemm("QK s=64", 64, 64, 64), arch)
    gb = hw["memories"]["gb"]
    width = gb["ports"][0]["bandwidth_max"] // 16
    assert gb["r_cost"] / width == pytest.approx(arch.pj("buffer", "read"))
    assert hw["memories"]["dram"]["r_cost"] / (hw["memories"]["dram"]["ports"][0]["bandwidth_max"] // 16) == pytest.approx(
        arch.energy["dram"]["byte"] * 2)  # per 16-bit word
    assert hw["operational_array"]["sizes"] == [32, 32] and wl[0]["loop_sizes"] == [64, 64, 64]
    assert mp[0]["spatial_mapping"]["D1"] == ["D0, 32"]


def test_attention_gemm_shapes() -> None:
    assert attention_gemms([128]) == [Gemm("QK s=128", 128, 128, 64), Gemm("PV s=128", 128, 64, 128)]


@pytest.mark.slow
def test_against_real_scalesim_and_zigzag() -> None:
    env = Path(os.environ.get("ATTNFORGE_PEERS_ENV", DEFAULT_ENV))
    setup_env(env)
    d = compare_peers([128, 256], env)
    for r in d["rows"]:
        assert abs(r["cycle_gap"]) < 0.05, r
        assert abs(r["energy_gap"]) < 0.10, r
    assert d["speedup_vs_scalesim"] >= 100
