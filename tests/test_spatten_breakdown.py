"""The Fig. 20 breakdown's unquantized fetch and the DRAM reduction's tensor count (docs/spatten.md §Speedup
breakdown, §DRAM reduction)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from attnforge.reports.spatten_runs import run_benchmark
from attnforge.sim.analytical.engine import evaluate_scenario
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.scenario import Scenario
from attnforge.sim.specs.spatten_policy import BERT, FP32_BITS, GPT2, Policy, breakdown_policies
from attnforge.workloads import get_model

CTX = 1024


def _decode(pol: Policy):
    """One GPT-2-Small generation step at a 1024-token context."""
    return evaluate_scenario(Scenario.build(accelerator="spatten", workload="gpt2-small", seq_lens=[CTX], batch=1,
                                            policy=pol, stage="decode", causal=True)).schedule


def _per_key(pol: Policy) -> float:
    """K+V bytes per key per head per layer of that step (nothing pruned in the policies used here)."""
    mdl = get_model("gpt2-small")
    return float(np.sum(_decode(pol).extra["kv_dram_bytes"])) / (mdl.layers * mdl.heads * CTX)


def test_dedicated_datapath_fetches_k_as_8_plus_4_and_v_at_8_bits() -> None:
    """The released hardware fetches an unquantized row's K as 8-bit MSBs and, on every row, its 4-bit LSBs,
    and V at 8 bits: 64 x (8 + 4 + 8) / 8 = 160 B per key; every row is computed twice."""
    steps = dict(breakdown_policies(GPT2))
    dedic = steps["dedicated datapath"]
    assert _per_key(dedic) == pytest.approx(160.0, rel=1e-9)
    once = dedic.with_(lsb_refetch_rate=0.0)
    assert np.sum(_decode(dedic).busy["qk"]) == pytest.approx(2 * np.sum(_decode(once).busy["qk"]), rel=1e-9)
    # the steps before quantization keep that fetch; the static step drops the forced refetch
    for name in ("+token pruning", "+head pruning", "+top-k engine"):
        assert (steps[name].k_bits_static, steps[name].v_bits_fetched, steps[name].lsb_refetch_rate) == (8, 8, 1.0)
    static = steps["+static quantization"]
    assert not static.progressive and static.lsb_refetch_rate is None
    assert static.k_bits_static == GPT2.k_msb + GPT2.k_lsb and static.v_bits_fetched == GPT2.v_bits


def test_raw_bits_sets_the_unquantized_fetch_width() -> None:
    """Unquantized K and V cost raw_bits per element: 12 (the datapath's word) or the models' FP32."""
    assert _per_key(Policy(name="w12")) == pytest.approx(64 * 24 / 8, rel=1e-9)
    assert _per_key(Policy(name="fp32", raw_bits=FP32_BITS)) == pytest.approx(64 * 64 / 8, rel=1e-9)
    assert Policy(raw_bits=FP32_BITS).q_bits_fetched == FP32_BITS and BERT.q_bits_fetched == 16
    with pytest.raises(SpecError, match="raw_bits"):
        Policy(raw_bits=7)


def test_dram_reduction_counts_the_same_tensors_on_both_sides() -> None:
    """Against FP32 dense K and V: an FP32 dense run reduces nothing (Q in and the output are not in the count);
    static 8-bit K and V quantize 4x; the total is the pruning part times the quantization part."""
    dense = run_benchmark("bert-base", 64, Policy(name="fp32 dense", raw_bits=FP32_BITS))
    assert (dense.dram_reduction, dense.pruning_reduction, dense.quant_reduction) == pytest.approx((1, 1, 1))
    assert dense.dram_bytes > dense.kv_dram_bytes  # Q and the output still move, outside the count
    bert = run_benchmark("bert-base", 64, BERT)
    assert bert.quant_reduction == pytest.approx(4.0, rel=1e-9)
    assert bert.pruning_reduction > 1.2
    assert math.isclose(bert.dram_reduction, bert.pruning_reduction * bert.quant_reduction, rel_tol=1e-12)


def test_a_breakdown_step_trace_gives_tokens_not_widths(tmp_path) -> None:
    """The GPT-2-Medium trace records the static step (K 8+4 fetched whole): its file keeps the trace's kept tokens
    and heads but takes the widths of the trace's run config (K 8+4 progressive at 0.05, V 8-bit); without
    ``trace_widths: false`` a width over a trace is refused as before."""
    from attnforge.workloads.spatten_benchmarks import benchmark_files, load_benchmark

    m = load_benchmark(next(f for f in benchmark_files() if f.name == "gpt2-medium-wikitext2.yaml")).policy
    assert (m.k_msb, m.k_lsb, m.progressive, m.v_bits, m.threshold) == (8, 4, True, 8, 0.05)
    assert m.lsb_refetch_layers is None and m.token_keep is not None and m.head_keep is not None
    trace = "trace: summary-gpt2-medium-wikitext2-per0-hp-step5+dedic+glob_p+local_p+hp+topk+quant.csv\n"
    head = "benchmark: x\nmodel: gpt2-medium\nlength: 992\n" + trace
    for text, field in ((head + "policy: {quant: 8+4}\n", "policy.quant"),
                        (head + "trace_widths: 'no'\npolicy: {}\n", "trace_widths"),
                        (head + "trace_widths: false\npolicy: {v_ratio: 0.5}\n", "policy.v_ratio")):
        f = tmp_path / "bad.yaml"
        f.write_text(text)
        with pytest.raises(SpecError, match=f"bad.yaml: {field}"):
            load_benchmark(f)
