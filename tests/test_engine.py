"""Engine results against closed forms derived by hand from the FuseMax paper / artifact formulas.

Shapes: 256 x 256 2D array (65536 PEs), 256-wide 1D array, exp costs 7 cycles on FuseMax's PEs.
N = B*H*M*P is the number of score-matrix elements.
"""

from __future__ import annotations

import pytest
from helpers import simulate, simulate_sweep

from attnforge.sim.analytical.engine import SCOPES, evaluate
from attnforge.sim.specs.arch import get_preset
from attnforge.workloads import get_model, make_workload

PE2D = 256 * 256
PE1D = 256
B = 64
H = 12  # bert-base
F = 64  # bert-base d_head (= E)


def n_scores(m: int, p: int | None = None, b: int = B, h: int = H) -> int:
    return b * h * m * (m if p is None else p)


def fusemax_closed_form(m: int) -> float:
    """proposal.py: (N/65536)*(2F+10) plus the final division AV on the 1D array, B*H*P*F/256."""
    n = n_scores(m)
    return n / PE2D * (2 * F + 10) + B * H * m * F / PE1D


@pytest.mark.parametrize("m", [1024, 4096, 65536])
def test_fusemax_closed_form(m):
    r = simulate("fusemax", make_workload("bert-base", batch=B, seq_len=m))
    assert r.cycles == pytest.approx(fusemax_closed_form(m), rel=1e-9)
    assert r.bound == "compute"
    assert r.passes == 1


def test_fusemax_closed_form_sweep_vectorised():
    seqs = [1024, 4096, 65536]
    rs = simulate_sweep("fusemax", make_workload("bert-base", batch=B), seqs)
    for m, r in zip(seqs, rs, strict=True):
        assert r.cycles == pytest.approx(fusemax_closed_form(m), rel=1e-9)


def test_fusemax_util_2d_at_1k():
    r = simulate("fusemax", make_workload("bert-base", batch=B, seq_len=1024))
    # useful 2D work = (QK F + LM 1 + SLN 7 + SLD 1 + SLNV F) N/65536 = 137 N/65536; cycles = (138 + 16) N/65536
    assert 137 / 154 == pytest.approx(0.8896, abs=1e-4)
    assert r.utilization["2d"] == pytest.approx(0.8896, abs=1e-3)
    assert r.utilization["2d"] == pytest.approx(137 / 154, rel=1e-9)
    assert r.utilization["1d"] == pytest.approx(1.0, abs=1e-9)


def test_fusemax_util_2d_at_1m_approaches_137_over_138():
    r = simulate("fusemax", make_workload("bert-base", batch=B, seq_len=2**20))
    assert r.utilization["2d"] == pytest.approx(137 / 138, abs=2e-3)
    # the AV tail is F*256/M = 1/64 of a tile-row here
    assert r.utilization["2d"] == pytest.approx(137 / (138 + 1 / 64), rel=1e-9)


def test_flat_1k_compute_bound_on_1d_array():
    wl = make_workload("bert-base", batch=B, seq_len=1024)
    r = simulate("flat", wl)
    n = n_scores(1024)
    # GM, SN, SD, A: four elementwise passes over the score matrix on the 256-wide 1D array
    assert r.cycles == pytest.approx(4 * n / PE1D, rel=1e-9)
    assert r.bound == "compute"
    assert r.passes == 3
    assert r.utilization["1d"] == pytest.approx(1.0, rel=1e-9)
    # QK and AV on the 2D array: 2 N F / 65536 = N/512 busy cycles out of 4N/256
    assert r.utilization["2d"] == pytest.approx((2 * n * F / PE2D) / (4 * n / PE1D), rel=1e-9)


def test_fusemax_dram_bytes_bert_base_1k():
    r = simulate("fusemax", make_workload("bert-base", batch=B, seq_len=1024))
    # Q, K, V in and the output out, once each: 4 * B*H*1024*64 words of 2 bytes
    assert 4 * B * H * 1024 * F * 2 == 402653184
    assert r.dram_bytes == 402653184


def test_fusemax_arch_per_tile_formula():
    """stall_proposal.py: T = max(QK+LM, RD+AV) + 256*LM + RM + max(SLN+SLD, PRM+SPD) + max(SLNV, SPNV+RNV)."""
    m = 4096
    n = n_scores(m)
    qk = n * F / PE2D
    lm = n / PE2D
    sln = 7 * n / PE2D
    sld = n / PE2D
    slnv = n * F / PE2D
    # 1D-array Einsums iterate per key tile (M1 = M/256) and per query: B*H*M1*P(*F) ops over 256 PEs
    m1_ops = B * H * (m // 256) * m
    rd = m1_ops / PE1D
    rm = m1_ops / PE1D
    prm = 7 * m1_ops / PE1D
    spd = m1_ops / PE1D
    spnv = m1_ops * F / PE1D
    rnv = m1_ops * F / PE1D
    av = B * H * m * F / PE1D
    t = max(qk + lm, rd + av) + 256 * lm + rm + max(sln + sld, prm + spd) + max(slnv, spnv + rnv)
    # at 4096 the AV tail hides under QK+LM, so T = (65 + 256 + 1 + 8 + 128) N/65536 = 458 N/65536
    assert t == pytest.approx(n / PE2D * 458, rel=1e-12)
    assert t == 90046464
    r = simulate("fusemax-arch", make_workload("bert-base", batch=B, seq_len=m))
    assert r.cycles == pytest.approx(t, rel=1e-9)
    assert r.utilization["2d"] == pytest.approx(137 / 458, rel=1e-9)


def test_fusemax_arch_slower_than_fusemax_faster_than_flat():
    wl = make_workload("bert-base", batch=B, seq_len=4096)
    fm = simulate("fusemax", wl).cycles
    fa = simulate("fusemax-arch", wl).cycles
    fl = simulate("flat", wl).cycles
    assert fm < fa < fl


def test_fusemax_cascade_closed_form_1k():
    """+Cascade on FLAT hardware: only QK, SLNV on the 2D array; everything else on the 1D array, exp = 2 cycles."""
    m = 1024
    n = n_scores(m)
    m1_ops = B * H * (m // 256) * m
    one_d = (n + m1_ops + 2 * n + 2 * m1_ops + m1_ops + n + m1_ops + m1_ops * F + m1_ops * F) / PE1D
    # LM(n) RM(m1) SLN(2n) PRM(2 m1) SPD(m1) SLD(n) RD(m1) SPNV(m1 F) RNV(m1 F) + AV tail
    one_d += B * H * m * F / PE1D
    r = simulate("fusemax-cascade", make_workload("bert-base", batch=B, seq_len=m))
    assert r.cycles == pytest.approx(one_d, rel=1e-9)
    assert r.utilization["1d"] == pytest.approx(1.0, rel=1e-9)


LINEAR_BERT_1K = 64 * 1024 * (4 * 768 * 768 + 2 * 768 * 3072) // PE2D


@pytest.mark.parametrize("accel", ["flat", "fusemax"])
def test_end_to_end_adds_linear_layers(accel):
    assert LINEAR_BERT_1K == 7_077_888
    wl = make_workload("bert-base", batch=B, seq_len=1024)
    att = simulate(accel, wl, scope="attention")
    e2e = simulate(accel, wl, scope="end-to-end")
    assert e2e.cycles - att.cycles == pytest.approx(7_077_888, rel=1e-9)
    assert e2e.stage_cycles["linear"] == pytest.approx(7_077_888, rel=1e-9)
    assert e2e.energy_j > att.energy_j
    assert e2e.flops == pytest.approx(att.flops + 2 * LINEAR_BERT_1K * PE2D, rel=1e-9)
    assert e2e.scope == "end-to-end"
    assert set(SCOPES) == {"attention", "end-to-end"}


def test_end_to_end_does_not_mutate_attention_schedule():
    """Evaluating end-to-end twice must not accumulate linear layers (the schedule is built fresh)."""
    wl = make_workload("bert-base", batch=B, seq_len=1024)
    a = simulate("fusemax", wl, scope="end-to-end").cycles
    b = simulate("fusemax", wl, scope="end-to-end").cycles
    assert a == b


@pytest.mark.parametrize("accel", ["unfused", "flat", "fusemax-cascade", "fusemax-arch", "fusemax"])
def test_decode_stage(accel):
    wl = make_workload("bert-base", batch=B, seq_len=4096, stage="decode")
    assert wl.p == 1 and wl.m == 4096
    r = simulate(accel, wl)
    assert r.p == 1 and r.m == 4096 and r.stage == "decode"
    assert max(r.utilization.values()) < 0.1
    pre = simulate(accel, make_workload("bert-base", batch=B, seq_len=4096))
    assert r.cycles < pre.cycles


def test_decode_sweep_keeps_p_one():
    wl = make_workload("bert-base", batch=B, seq_len=1024, stage="decode")
    rs = simulate_sweep("fusemax", wl, [1024, 8192])
    assert [r.p for r in rs] == [1, 1]
    assert rs[1].cycles > rs[0].cycles


@pytest.mark.parametrize("accel", ["unfused", "flat", "fusemax-cascade", "fusemax-arch", "fusemax"])
def test_causal_halves_work(accel):
    full = simulate(accel, make_workload("bert-base", batch=B, seq_len=16384, causal=False))
    half = simulate(accel, make_workload("bert-base", batch=B, seq_len=16384, causal=True))
    assert half.causal is True
    assert half.cycles < 0.6 * full.cycles
    assert half.cycles > 0.4 * full.cycles
    assert half.flops < 0.6 * full.flops


def test_evaluate_broadcasts_over_batch():
    import numpy as np

    ev = evaluate("fusemax", get_model("bert-base"), p=np.array([1024, 1024]), batch=np.array([1, 64]))
    c = np.asarray(ev.cycles)
    assert c.shape == (2,)
    assert c[1] == pytest.approx(64 * c[0], rel=1e-9)


def test_latency_is_cycles_over_clock():
    r = simulate("fusemax", make_workload("bert-base", batch=B, seq_len=1024))
    assert r.latency_s == pytest.approx(r.cycles / (get_preset("fusemax").clock_mhz * 1e6), rel=1e-12)
