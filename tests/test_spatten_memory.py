"""SpAtten's memory system, the top-k engine's expected cycles and the analytical-vs-cycle-model agreement."""

from __future__ import annotations

import numpy as np
import pytest

from attnforge.sim.contract.spatten_fx import SpattenFx
from attnforge.sim.memory import dram
from attnforge.sim.spatten.cycle_run import (
    analytical_workload_cycles,
    pipeline_workload_cycles,
    rtl_arch,
    sampled_jobs,
    workload_score_std,
)
from attnforge.sim.spatten.golden import pipeline, quantize_job
from attnforge.sim.spatten.topk_cycles import engine_cycles
from attnforge.sim.spatten.topk_golden import hw_topk
from attnforge.sim.specs.arch import get_preset, load_arch
from attnforge.sim.specs.errors import SpecError
from attnforge.workloads import Workload, get_model


@pytest.mark.parametrize(("n", "v_ratio", "threshold"), [(128, 0.5, 0.1), (256, 0.8, 0.02), (64, 0.25, 0.5)])
def test_analytical_agrees_with_cycle_model(n: int, v_ratio: float, threshold: float) -> None:
    """At the RTL's configuration (spatten-rtl = spatten-pipeline lanes=512, D=64) the analytical module
    composition and the exact cycle model agree within 5% on the same workload tensors."""
    wl = Workload(model=get_model("bert-base"), batch=1, p=n, m=n, seed=0)
    cfg = SpattenFx(lanes=512, min_d=64, max_d=64, max_n=n)
    cyc = pipeline_workload_cycles(wl, cfg, threshold=threshold, v_ratio=v_ratio, rows=96)
    an = analytical_workload_cycles(wl, rtl_arch(cfg), cfg, v_ratio=v_ratio,
                                    refetch_rate=cyc["refetch_rate"], score_std=workload_score_std(wl))
    assert an["compute_cycles"] > an["memory_cycles"]  # the RTL is serial: memory hides behind it
    assert abs(an["cycles"] / cyc["cycles"] - 1) < 0.05


@pytest.mark.parametrize(("model", "n", "causal"), [("gpt2-small", 16, True), ("gpt2-small", 128, True),
                                                    ("bert-base", 16, False)])
def test_analytical_agrees_on_causal_rows_and_short_instances(model: str, n: int, causal: bool) -> None:
    """Every job run once (the exact total): with a causal mask each query's jobs have the keys its position sees,
    on both sides, and an instance sized for short rows (max_n = 16) has a shallower softmax, which the analytical
    model takes from ``pipeline_max_keys``. Before either, GPT-2 prefill read +15% at 16 keys to +56% at 1024."""
    wl = Workload(model=get_model(model), batch=1, p=n, m=n, seed=0, causal=causal)
    cfg = SpattenFx(lanes=512, min_d=64, max_d=64, max_n=n)
    v_ratio = 0.8 if causal else 0.0
    cyc = pipeline_workload_cycles(wl, cfg, threshold=0.1, v_ratio=v_ratio, rows=12 * n)
    assert cyc["all_jobs"] and cyc["rows_sampled"] == 12 * n
    an = analytical_workload_cycles(wl, rtl_arch(cfg), cfg, v_ratio=v_ratio, refetch_rate=cyc["refetch_rate"],
                                    score_std=workload_score_std(wl))
    assert abs(an["cycles"] / cyc["cycles"] - 1) < 0.03
    wide = analytical_workload_cycles(wl, get_preset("spatten-rtl"), cfg, v_ratio=v_ratio,
                                      refetch_rate=cyc["refetch_rate"], score_std=workload_score_std(wl))
    assert wide["cycles"] > an["cycles"]  # the 1024-key instance's softmax is deeper


def test_pipeline_arch_refuses_rows_longer_than_its_instance() -> None:
    from attnforge.sim.spatten.occupancy import job_costs

    arch = load_arch("spatten-rtl", {"spatten.pipeline_max_keys": 64})
    with pytest.raises(SpecError, match="pipeline_max_keys"):
        job_costs(arch, count=1.0, keys=128.0, values=32.0, d=64, k_bits=8, lsb_bits=4, refetch=0.0, v_bits=12,
                  q_bits=12, keys_fetched=128.0, values_fetched=32.0, topk_parallelism=8)
    with pytest.raises(SpecError, match="pipeline_max_keys"):
        load_arch("spatten-rtl", {"spatten.pipeline_max_keys": 2048})


def test_stratified_rows_cover_the_positions() -> None:
    assert sampled_jobs(12, 1, 32) == [(h, 0) for h in range(12)]  # a decode step: every job once
    jobs = sampled_jobs(12, 512, 32)
    assert len(jobs) == 32 and {h for h, _ in jobs} == set(range(12))
    pos = [r for _, r in jobs]
    assert pos == sorted(pos) and pos[0] < 16 and pos[-1] > 496


def test_expected_topk_cycles_match_the_rtl_on_real_rows() -> None:
    """The tie-aware expectation of the engine's cycles is within 5% of hw_topk's exact cycles on probability
    rows of a workload with the same score spread (ties at small probabilities shorten the search)."""
    wl = Workload(model=get_model("bert-base"), batch=1, p=128, m=128, seed=0)
    cfg = SpattenFx(lanes=512, min_d=64, max_d=64, max_n=128)
    t = wl.tensors()
    q, k, v = t["q"][0], t["k"][0], t["v"][0]
    for kv in (32, 100):
        cyc = [hw_topk(pipeline(quantize_job(q[i % 12, i], k[i % 12], v[i % 12], kv, 0.1, cfg), cfg).probs.tolist(),
                       kv, cfg.s).cycles for i in range(48)]
        sel, filt, _ = engine_cycles(128, kv, cfg.s, cfg.s, None, (workload_score_std(wl),))
        assert abs((sel + filt) / np.mean(cyc) - 1) < 0.05


def test_hbm_bandwidth_follows_outstanding_requests_and_row_hits() -> None:
    """The closed queue: fewer outstanding requests or more row misses mean less bandwidth, never above the
    pseudo-channels' buses; one request alone sees the unloaded latency; Little's law holds at every load."""
    h = get_preset("spatten").hbm.model_copy(update={"model": "closed-queue"})
    hit, miss = dram.achieved_gb_s(h, 1.0), dram.achieved_gb_s(h, 0.0)
    assert miss < hit <= h.peak_gb_s
    bus = h.channels * h.pseudo_channels * h.request_bytes / h.t_burst_ns
    rates = [float(dram.achieved_gb_s(h.model_copy(update={"outstanding": n}), 0.9)) for n in (1, 4, 8, 16, 256)]
    assert rates == sorted(rates) and rates[-1] == pytest.approx(bus, rel=1e-3) and rates[-2] < bus
    one = h.model_copy(update={"outstanding": 1})
    for x in (1.0, 0.5, 0.0):
        alone = h.controller_ns + h.t_cl_ns + h.t_burst_ns / h.pseudo_channels + (1 - x) * h.t_rc_ns
        assert float(dram.latency_ns(one, x)) == pytest.approx(alone)
        # Little's law per channel: requests in flight = throughput x latency
        per_ch = float(dram.achieved_gb_s(h, x)) / h.channels / h.request_bytes
        assert per_ch * float(dram.latency_ns(h, x)) == pytest.approx(h.outstanding)
    lat = [float(dram.latency_ns(h.model_copy(update={"outstanding": n}), 1.0)) for n in (1, 8, 16, 32)]
    assert lat == sorted(lat) and lat[-1] > 1.9 * lat[0]  # queueing: the latency grows with the load (32 -> 64 ns)


def test_row_activates_follow_the_layout() -> None:
    """A dense in-order stream opens each row once per channel; a sparse one over a wide region pays more per
    request; no stream opens more rows than it issues requests."""
    h = get_preset("spatten").hbm
    dense = dram.stream_activates(h, 1024, 1024, 64) / dram.stream_requests(h, 1024, 64)
    sparse = dram.stream_activates(h, 64, 4096, 64) / dram.stream_requests(h, 64, 64)
    assert dense == pytest.approx(h.request_bytes / h.row_bytes)  # one activate per row's worth of requests
    assert dense < sparse <= 1.0


def test_sparse_row_activates_fill_rows_like_balls_into_bins() -> None:
    """A sparse stream's activates are the rows its requests fill at random: a few vectors in one row's span share
    its activate; one vector of c requests opens c rows (one per channel); never more activates than requests."""
    h = get_preset("spatten").hbm
    rows = 4096 * 64 / (h.row_bytes * h.channels)  # 32 rows per channel
    share = 64 * 2 / h.channels  # 64 vectors of 64 B: 8 requests per channel
    want = h.channels * rows * (1 - (1 - 1 / rows) ** share)
    assert float(dram.stream_activates(h, 64, 4096, 64)) == pytest.approx(want, rel=1e-12)
    assert float(dram.stream_activates(h, 1, 4096, 96)) == 3.0
    assert float(dram.stream_activates(h, 0, 4096, 64)) == 0.0
    assert float(dram.stream_activates(h, 10, 10**6, 64)) <= float(dram.stream_requests(h, 10, 64))


def _simulated_imbalance(shared: int, kept: int, own: int, own_kept: int, vector_bytes: int, trials: int = 1500) -> float:
    """The busiest channel over the mean, by drawing kept sets: ``shared`` heads read one random set of ``kept`` of
    1024 vectors, ``own`` heads each their own ``own_kept``; 32-byte chunks rotate over 16 channels."""
    rng = np.random.default_rng(1)
    c = vector_bytes // 32
    out = []
    for _ in range(trials):
        load = np.zeros(16)
        for k, n in [(shared, kept)] + [(1, own_kept)] * own:
            idx = rng.choice(1024, n, replace=False)
            np.add.at(load, ((idx[:, None] * c + np.arange(c)) % 16).ravel(), k)
        out.append(load.max() / load.mean())
    return float(np.mean(out))


@pytest.mark.parametrize("vector_bytes", [32, 64])
def test_channel_imbalance_is_the_busiest_channels_expected_share(vector_bytes: int) -> None:
    """dram.channel_imbalance against kept sets drawn at random: a layer's 12 heads sharing 200 kept keys, each
    with its own 40 V rows; within 3%. A shared set costs more than the same requests from independent sets."""
    h = get_preset("spatten").hbm
    f = float(dram.channel_imbalance(h, [(12, 200, vector_bytes)], [(12, 40, vector_bytes)]))
    assert f == pytest.approx(_simulated_imbalance(12, 200, 12, 40, vector_bytes), rel=0.03)
    apart = float(dram.channel_imbalance(h, [(1, 200, vector_bytes)], [(11, 200, vector_bytes), (12, 40, vector_bytes)]))
    assert 1.0 < apart < f
    assert float(dram.channel_imbalance(h, [(12, 200, 512)], [])) == pytest.approx(1.0)  # a vector on every channel


def test_layer_barrier_charges_the_busiest_channel() -> None:
    """``hbm.layer_barrier``: a memory-bound decode step slows by its layers' imbalance; off (the presets) nothing
    changes; a compute-bound BERT pass barely moves."""
    from attnforge.sim.analytical.engine import evaluate_scenario
    from attnforge.sim.specs.scenario import Scenario

    def cycles(workload: str, length: int, stage: str, barrier: bool) -> float:
        sc = Scenario.build(accelerator="spatten", workload=workload, seq_lens=length, batch=1, stage=stage,
                            overrides={"hbm.layer_barrier": barrier})
        return float(np.sum(evaluate_scenario(sc).cycles))

    on, off = cycles("gpt2-small", 1024, "decode", True), cycles("gpt2-small", 1024, "decode", False)
    assert 1.02 < on / off < 1.3
    bert_on, bert_off = cycles("bert-base", 128, "prefill", True), cycles("bert-base", 128, "prefill", False)
    assert 1.0 <= bert_on / bert_off < 1.02
    top = Scenario.build(accelerator="spatten", arch="spatten-top", workload="minilm", seq_lens=16, batch=1,
                         overrides={"hbm.layer_barrier": True})
    with pytest.raises(SpecError, match="hbm.layer_barrier"):
        evaluate_scenario(top)  # spatten-top's memory is its own port: refused, not ignored


def test_hbm_fields_are_validated() -> None:
    with pytest.raises(SpecError, match="outstanding"):
        load_arch("spatten", {"hbm.outstanding": 0})


def test_sensitivity_follows_the_paper() -> None:
    """Paper Fig. 19a: comparators help up to 16 and barely after; Fig. 19b: SRAM size does not matter in
    generation; fewer HBM channels slow the memory-bound steps; narrower K/V speed them up."""
    from attnforge.reports.spatten_sensitivity import sweeps

    sw = sweeps(comparators=(1, 4, 8, 16, 32), sram_kb=(196, 784), channels=(4, 16), widths=(12, 6),
                pending=(8, 16, 32))
    g = {p.label: p.gflops for p in sw["comparators"]}
    assert g["1"] < g["4"] < g["8"] < g["16"]
    assert g["16"] / g["8"] > 1.05 and g["32"] / g["16"] < 1.08  # paper: +19%, -1%
    assert 3.5 < g["16"] / g["1"] < 6.5  # paper: 776 / 168 = 4.6
    sram = [p.gflops for p in sw["sram"]]
    assert max(sram) / min(sram) < 1.02  # paper: within 1.2%
    ch = {p.label: p for p in sw["channels"]}
    assert ch["4 ch"].bound == "memory" and ch["4 ch"].gflops < 0.5 * ch["16 ch"].gflops
    w = {p.label: p.gflops for p in sw["widths"]}
    assert w["K6/V6"] > 1.3 * w["K12/V12"]
    # requests in flight on the memory-bound Medium trace: more is faster, up to the pseudo-channels' buses
    pend = [sw["pending"][i] for i in range(3)]
    assert pend[0].gflops < pend[1].gflops < pend[2].gflops and pend[1].bound == "memory"
    assert pend[2].dram_gb_s <= 256.0 * 1.001


def test_sensitivity_level_counts_each_phase_of_the_benchmark() -> None:
    """The level block: generation alone is the benchmark's own throughput, '+ prompt' the two phases' FLOPs over
    their summed time (what run_phase's 'both' gives), and the comparators move the top-k-bound prompt more."""
    from attnforge.reports.spatten_runs import run_phase
    from attnforge.reports.spatten_sensitivity import LEVEL_BENCHMARK, format_levels, levels
    from attnforge.workloads.spatten_benchmarks import benchmarks

    lv = {x.label: x for x in levels(comparators=(1, 16))}
    both = run_phase(next(b for b in benchmarks() if b.name == LEVEL_BENCHMARK), "both")
    assert lv["16"].with_prompt_gflops == pytest.approx(both.flops / both.seconds / 1e9, rel=1e-9)
    assert lv["16"].with_prompt_gflops > lv["16"].generation_gflops
    gen = lv["1"].generation_gflops / lv["16"].generation_gflops
    assert gen < 0.3 and lv["1"].with_prompt_gflops / lv["16"].with_prompt_gflops < gen
    assert "776" in format_levels(list(lv.values()))


def test_cycle_fidelity_reports_the_analytical_beside_it(capsys: pytest.CaptureFixture[str]) -> None:
    """``simulate --fidelity cycle`` carries the analytical model's cycles on the same jobs, within 5%."""
    import json

    from attnforge.cli.main import main

    assert main(["simulate", "--accel", "spatten", "--fidelity", "cycle", "--workload", "bert-base", "--seq-len", "128",
                 "--batch", "1", "--cycle-rows", "48", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert abs(out["analytical_cycles"] / out["cycles"] - 1) < 0.05


def test_simulate_reports_average_power(capsys: pytest.CaptureFixture[str]) -> None:
    """Average power = energy / latency, in the JSON and the text table."""
    import json

    from attnforge.cli.main import main

    assert main(["simulate", "--accel", "spatten", "--workload", "bert-base", "--seq-len", "64", "--batch", "1",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    row = out[0] if isinstance(out, list) else out
    assert row["avg_power_w"] == pytest.approx(row["energy_j"] / row["latency_s"])
    assert row["energy_breakdown_j"]["dram_background"] > 0
    assert main(["simulate", "--accel", "spatten", "--workload", "bert-base", "--seq-len", "64", "--batch", "1"]) == 0
    assert "average power:" in capsys.readouterr().out


def test_delivered_bandwidth_and_row_hits_of_a_run() -> None:
    """The two figures every report of a run's HBM prints: bytes over the time its memory cycles take, and the
    share of requests without an activate; a run that moved nothing gives NaN, not a division error."""
    assert dram.delivered_gb_s(2e6, 1e4, 2e4, 2e-5) == pytest.approx(2e6 / 1e-5 / 1e9)
    assert dram.row_hit(100.0, 25.0) == 0.75
    assert np.isnan(dram.row_hit(0.0, 0.0)) and np.isnan(dram.delivered_gb_s(0.0, 0.0, 1.0, 1.0))


def test_busy_shares_name_the_compute_bottleneck() -> None:
    """Each unit's busy share is at least its utilization (busy counts padded work and stalls); in a pruned GPT-2
    decode step SpAtten's top-k engine is the busiest module (its rounds' fixed cycles on ~100-key rows), and the
    text report says so."""
    from attnforge.api import simulate
    from attnforge.reports.tables import breakdown_table, results_frame

    for accel, kw in (("spatten", {"workload": "gpt2-small", "stage": "decode", "seq_lens": 1024, "batch": 1}),
                      ("fusemax", {"workload": "bert-base", "seq_lens": 1024})):
        r = simulate(accelerator=accel, **kw)[0]
        assert r.busy and all(r.busy[k] >= v - 1e-9 for k, v in r.utilization.items())
        assert all(0.0 <= v <= 1.0 + 1e-9 for v in r.busy.values())
        assert {f"busy_{k}" for k in r.busy} <= set(results_frame([r]).columns)
        if accel == "spatten":
            assert set(r.busy) == {"qk", "softmax", "topk", "pv"} and max(r.busy, key=r.busy.get) == "topk"
            assert "busy (share of the cycles): topk" in breakdown_table(r)


def test_streams_read_together_are_charged_at_their_own_hit_rates() -> None:
    """A dense K stream and a sparse V stream read together take the sum of their own times (the replay's table was
    measured one kind of stream at a time); one pooled hit rate lands near the table's peak and gets more."""

    h = get_preset("spatten").hbm
    dense, sparse = (1000.0, 1000.0 * (1 - 0.88)), (250.0, 250.0 * (1 - 0.42))
    got = float(dram.mixed_gb_s(h, [dense, sparse]))
    want = 1250.0 / (1000.0 / float(dram.achieved_gb_s(h, 0.88)) + 250.0 / float(dram.achieved_gb_s(h, 0.42)))
    assert got == pytest.approx(want, rel=1e-12)
    pooled = float(dram.achieved_gb_s(h, 1 - (dense[1] + sparse[1]) / 1250.0))
    assert got < pooled
    assert float(dram.mixed_gb_s(h, [dense, (0.0, 0.0)])) == pytest.approx(float(dram.achieved_gb_s(h, 0.88)))
    # vectorised over jobs, as job_costs calls it
    both = dram.mixed_gb_s(h, [(np.array([1000.0, 0.0]), np.array([120.0, 0.0]))])
    assert both.shape == (2,) and both[0] == pytest.approx(float(dram.achieved_gb_s(h, 0.88)))


def test_topk_engines_and_fetcher_ports_are_honoured() -> None:
    """Arch fields the model once ignored: engines past the token/head one rank other queries' local-V top-k at
    once (the causal prompt, bound by that top-k, speeds up; the serial RTL instance does not), and the fetcher's
    ports cap the HBM at one 32-byte request per port and cycle."""
    from attnforge.api import Scenario
    from attnforge.api import simulate as run

    def result(arch: str = "spatten", **ov: object):
        sc = Scenario.build(accelerator="spatten", arch=arch, workload="gpt2-small", seq_lens=[256], batch=1,
                            overrides=ov)
        return run(sc)[0]

    two, three = result(), result(**{"spatten.topk_engines": 3})
    assert three.busy["topk"] == pytest.approx(two.busy["topk"] * two.cycles / three.cycles / 2, rel=1e-9)
    assert three.cycles < two.cycles
    serial = result("spatten-rtl"), result("spatten-rtl", **{"spatten.topk_engines": 3})
    assert serial[0].cycles == serial[1].cycles  # one query at a time: a second engine has no other query
    slow, fast = (run(Scenario.build(accelerator="spatten", workload="gpt2-small", seq_lens=[1024], batch=1,
                                     stage="decode", overrides=ov))[0]
                  for ov in ({"spatten.fetcher_channels": 2}, {}))
    assert slow.dram_bytes == fast.dram_bytes
    assert slow.cycles > 2 * fast.cycles  # 64 GB/s of ports against ~200 the HBM delivers; the step waits on it


def test_row_activates_have_no_step_where_a_region_passes_a_whole_row() -> None:
    """A region one vector longer than a whole number of rows adds a row that vector alone occupies, which a sparse
    stream's requests rarely find: its activates grow by a sliver, not by a whole row's share (rounding the rows up
    made a decode step one key past 1024 six-bit keys charge 11% more); a dense stream opens that row on the
    channels the spill reaches, no more; activates never fall as the region grows."""
    h = get_preset("spatten").hbm
    at = 6 * h.row_bytes * h.channels // 48  # 1024 six-bit keys of D = 64 (48 B): exactly 6 rows on each of the 16 channels
    sparse = [float(dram.stream_activates(h, 256, n, 48)) for n in (at, at + 1)]
    assert sparse[1] / sparse[0] - 1.0 < 0.005
    dense = [float(dram.stream_activates(h, n, n, 48)) for n in (at, at + 1)]
    assert dense[0] == pytest.approx(6 * h.channels, rel=1e-6) and 0.0 < dense[1] - dense[0] <= 2.0
    spans = np.linspace(100, 5000, 20_001)
    for kept in (64, spans / 4, spans):
        assert np.all(np.diff(dram.stream_activates(h, kept, spans, 96)) >= -1e-9)


def test_a_decode_step_one_key_longer_costs_about_the_same() -> None:
    """GPT-2-Small decode steps from 1,008 to 1,040 keys, one key apart: the K region passes six whole rows per
    channel at 1,024 six-bit keys, which once made the next step charge 11% more row activates (and 1.8% more
    energy) for one more key. Each step's activates and energy now move by under 1% (the top-k and refetch rates
    are sampled, so a step may also move down a little)."""
    from attnforge.api import simulate

    rs = simulate(accelerator="spatten", workload="gpt2-small", stage="decode", seq_lens=list(range(1008, 1041)),
                  batch=1)
    for key in ("dram_activates", "energy_j"):
        v = np.array([r.to_dict()[key] for r in rs])
        assert np.abs(np.diff(v) / v[:-1]).max() < 0.01, key
