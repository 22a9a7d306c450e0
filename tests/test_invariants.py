"""Property tests: physical invariants every accelerator must satisfy at any (workload, batch, seq) point."""

from __future__ import annotations

import math

from helpers import simulate, simulate_sweep
from hypothesis import given, settings
from hypothesis import strategies as st

from attnforge.mappings import ACCELERATORS
from attnforge.workloads import make_workload

# The Einsum-cascade family (unfused, FLAT, FuseMax and ablations); SpAtten has its own tests.
ACCELS = sorted(a for a, acc in ACCELERATORS.items() if acc.family == "cascade" and acc.mapping != "gemm")
WORKLOADS = ["bert-base", "xlm", "t5-small"]
SEQS = st.integers(min_value=8, max_value=20).map(lambda k: 2**k)  # 256 .. 2**20
BATCHES = st.integers(min_value=1, max_value=64)
TOL = 1e-9

SETTINGS = settings(max_examples=40, deadline=None, derandomize=True)


def test_accelerator_catalog():
    assert ACCELS == ["flat", "fusemax", "fusemax-arch", "fusemax-cascade", "fusemax-top", "unfused"]


@SETTINGS
@given(accel=st.sampled_from(ACCELS), name=st.sampled_from(WORKLOADS), seq=SEQS, batch=BATCHES)
def test_utilization_in_unit_interval(accel, name, seq, batch):
    r = simulate(accel, make_workload(name, batch=batch, seq_len=seq))
    assert set(r.utilization) >= {"2d", "1d"}  # fusemax-top adds the PEs' softmax units ("sm")
    for arr, u in r.utilization.items():
        assert math.isfinite(u), (accel, arr, u)
        assert 0.0 <= u <= 1.0 + TOL, (accel, name, seq, batch, arr, u)


@SETTINGS
@given(accel=st.sampled_from(ACCELS), name=st.sampled_from(WORKLOADS), seq=SEQS, batch=BATCHES)
def test_cycles_not_below_roofline(accel, name, seq, batch):
    r = simulate(accel, make_workload(name, batch=batch, seq_len=seq))
    assert r.roofline_cycles > 0
    assert r.cycles >= r.roofline_cycles * (1 - TOL), (accel, name, seq, batch, r.cycles, r.roofline_cycles)


@SETTINGS
@given(accel=st.sampled_from(ACCELS), name=st.sampled_from(WORKLOADS), seq=SEQS, batch=BATCHES)
def test_latency_and_energy_monotone_in_seq(accel, name, seq, batch):
    wl = make_workload(name, batch=batch, seq_len=seq)
    lo, hi = simulate_sweep(accel, wl, [seq, 2 * seq])
    assert (lo.seq_len, hi.seq_len) == (seq, 2 * seq)
    assert hi.latency_s >= lo.latency_s * (1 - TOL), (accel, name, seq, batch, lo.latency_s, hi.latency_s)
    assert hi.energy_j >= lo.energy_j * (1 - TOL), (accel, name, seq, batch, lo.energy_j, hi.energy_j)
    assert hi.cycles >= lo.cycles * (1 - TOL)


@SETTINGS
@given(name=st.sampled_from(WORKLOADS), seq=SEQS, batch=BATCHES)
def test_dram_traffic_ordering(name, seq, batch):
    wl = make_workload(name, batch=batch, seq_len=seq)
    fm = simulate("fusemax", wl).dram_bytes
    fl = simulate("flat", wl).dram_bytes
    un = simulate("unfused", wl).dram_bytes
    assert fm <= fl * (1 + TOL), (name, seq, batch, fm, fl)
    assert fl <= un * (1 + TOL), (name, seq, batch, fl, un)
    # nobody moves less than Q, K, V in and the output out once (16-bit words)
    m = wl.model
    compulsory = 4 * batch * m.heads * seq * m.d_head * 2
    assert fm >= compulsory * (1 - TOL)


@SETTINGS
@given(accel=st.sampled_from(ACCELS), name=st.sampled_from(WORKLOADS), seq=SEQS, batch=BATCHES,
       scope=st.sampled_from(["attention", "end-to-end"]))
def test_energy_breakdown_sums(accel, name, seq, batch, scope):
    r = simulate(accel, make_workload(name, batch=batch, seq_len=seq), scope=scope)
    assert r.energy_j > 0
    assert all(v >= 0 for v in r.energy_breakdown_j.values())
    assert math.isclose(sum(r.energy_breakdown_j.values()), r.energy_j, rel_tol=1e-9)
    assert {"dram", "buffer", "rf"} <= set(r.energy_breakdown_j)


@SETTINGS
@given(accel=st.sampled_from(ACCELS), name=st.sampled_from(WORKLOADS), batch=BATCHES,
       seqs=st.lists(SEQS, min_size=1, max_size=5))
def test_sweep_matches_pointwise(accel, name, batch, seqs):
    """The vectorised sweep must give exactly what one point at a time gives."""
    wl = make_workload(name, batch=batch)
    swept = simulate_sweep(accel, wl, seqs)
    for s, r in zip(seqs, swept, strict=True):
        one = simulate(accel, wl.with_seq(s))
        assert math.isclose(r.cycles, one.cycles, rel_tol=1e-12)
        assert math.isclose(r.energy_j, one.energy_j, rel_tol=1e-12)
        assert math.isclose(r.dram_bytes, one.dram_bytes, rel_tol=1e-12)


def test_cycles_energy_and_dram_never_fall_as_the_sequence_grows_by_any_step():
    """Every length from 256 to 12K in steps of 64, not only powers of two: a ragged tile count (17 column tiles
    at 4,352 queries, a prime) once forced one-tile query blocks, and FLAT moved more DRAM bytes there than at
    8K; nothing may fall as the sequence grows."""
    seqs = list(range(256, 12_289, 64))
    for accel in ("unfused", "flat", "fusemax", "fusemax-arch", "fusemax-cascade"):
        rs = simulate_sweep(accel, make_workload("bert-base", batch=1, seq_len=seqs[0]), seqs)
        for key in ("cycles", "energy_j", "dram_bytes"):
            v = [getattr(r, key) for r in rs]
            falls = [(seqs[i + 1], v[i], v[i + 1]) for i in range(len(v) - 1) if v[i + 1] < v[i] * (1 - TOL)]
            assert not falls, (accel, key, falls[:3])
