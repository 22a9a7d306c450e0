"""The spatten-top arch presets against the RTL's parameters and contract, and the analytical model
(sim/spatten/top_analytical.py) within 5% of the top's exact cycle model (sim/spatten/top_cycle_model.py) on a
MiniLM pass and on the quick regression's synthetic passes (Python only: the RTL == cycle model check is
tests/test_spatten_top_rtl.py's)."""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import pytest

from attnforge.rtl.registry import parse_params
from attnforge.sim.contract.designs import _top
from attnforge.sim.contract.memport import MemTiming
from attnforge.sim.contract.spatten_top import SpattenTopCfg
from attnforge.sim.spatten import top_analytical as ta
from attnforge.sim.spatten.top_cycle_model import top_cycles
from attnforge.sim.spatten.top_run import golden_pass
from attnforge.sim.specs.arch import get_preset, preset_names
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.spatten_policy import Policy

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "rtl" / "benches"))
from fast_jobs import (  # noqa: E402
    MINILM_TOP,
    spatten_top_decode_job,
    spatten_top_gpt2_job,
    spatten_top_job,
    spatten_top_minilm_job,
)


def _defaults(fn: object) -> MemTiming:
    p = inspect.signature(fn).parameters  # type: ignore[arg-type]
    return MemTiming(p["latency"].default, p["outstanding"].default, 1)


@pytest.mark.parametrize(("preset", "params", "timing"), [
    ("spatten-top", MINILM_TOP, _defaults(spatten_top_minilm_job)),
    ("spatten-top-small", {}, _defaults(spatten_top_job)),
])
def test_presets_are_the_rtl_instances(preset: str, params: dict[str, int], timing: MemTiming) -> None:
    """Every field of the preset is what the RTL parameters, the contract's pipeline depths and the bench's memory
    model give (the MiniLM run's instance; the registry defaults with the quick regression's memory)."""
    cfg = _top(parse_params("spatten-top", params))
    want = ta.arch_for(cfg, timing).model_dump()
    got = get_preset(preset).model_dump()
    assert {k: got[k] for k in ("spatten", "dram", "top", "clock_mhz", "word_bits")} == \
        {k: want[k] for k in ("spatten", "dram", "top", "clock_mhz", "word_bits")}
    assert ta.instance_fx(get_preset(preset)) == cfg.fx


def test_paper_presets_have_no_top_section() -> None:
    """The new section defaults to None, so the paper presets (and their results) are unchanged."""
    for name in preset_names():
        arch = get_preset(name)
        if name.startswith("spatten") and not name.startswith("spatten-top"):
            assert arch.top is None
            with pytest.raises(SpecError, match="no spatten-top instance"):
                ta.top_section(arch)


def _agree(run: object, cfg: SpattenTopCfg, timing: MemTiming) -> tuple[int, float]:
    return top_cycles(run, cfg, timing)["cycles"], ta.analytical_top_cycles(run, cfg, timing)


def test_analytical_within_5pct_on_a_minilm_pass() -> None:
    """All 6 MiniLM layers on the first 16 tokens of the real text (a seeded encoder of MiniLM's shape when the
    weights are absent), cascade pruning as the regression's MiniLM run: analytical within 5% of the cycle model."""
    arch = get_preset("spatten-top")
    fx, t = ta.instance_fx(arch), arch.top
    pol = Policy(token_ratio=0.3, head_ratio=0.2, v_ratio=0.3, threshold=0.1)
    tp = golden_pass(layers=6, heads=12, d_head=32, tokens=16, fx=fx, policy=pol, real=True)
    assert tp.run.layers[-1].alive.size < 16 and tp.run.layers[-1].heads.size < 12  # pruned
    cfg = SpattenTopCfg(fx, t.max_heads, t.max_layers)
    cyc, an = _agree(tp.run, cfg, MemTiming(t.mem_latency_cycles, t.mem_outstanding, t.mem_interval_cycles))
    assert abs(an / cyc - 1) < 0.05, (tp.source, cyc, an)


@pytest.mark.parametrize(("layers", "length"), [(2, 12), (3, 16)])
def test_analytical_within_5pct_on_the_quick_regress_shapes(layers: int, length: int) -> None:
    """The synthetic passes `attnforge regress` runs on spatten-top (registry defaults, refused descriptors
    first): the row's analytical_cycles within 5% of its sim_cycles."""
    job, _, run = spatten_top_job({}, layers=layers, length=length)
    cfg, timing = _top(job.params), job.mem_timing["mem"]
    cyc = top_cycles(run, cfg, timing, refusals=10)["cycles"]
    an = ta.analytical_top_cycles(run, cfg, timing, refusals=10)
    assert abs(an / cyc - 1) < 0.05, (cyc, an)


def test_analytical_within_5pct_on_a_generation_step() -> None:
    """A generation step (queries = 1: one job per alive head, so per-layer costs and the boundaries weigh as
    much as the periods) on the quick instance, pruned at both boundaries: analytical within 5%. Without the
    boundary top-k's measured cycles and the read-out's wait for the importance block it read 6.7% low."""
    from attnforge.sim.spatten.top_golden import LayerCfg

    layers = [LayerCfg(24, 4, 8, 205, queries=1), LayerCfg(16, 2, 6, 205, queries=1),
              LayerCfg(9, 2, 4, 205, queries=1)]
    job, _, run = spatten_top_decode_job({}, layers)
    cfg, timing = _top(job.params), job.mem_timing["mem"]
    cyc = top_cycles(run, cfg, timing, refusals=12)["cycles"]
    an = ta.analytical_top_cycles(run, cfg, timing, refusals=12)
    assert abs(an / cyc - 1) < 0.05, (cyc, an)


@pytest.mark.slow
def test_analytical_within_5pct_on_a_gpt2_generation_step() -> None:
    """One GPT-2-Small generation iteration (12 layers, 921 tokens down to 102, refetches in layers 0-1): the
    back's V requests and the front's K walk share the port's slots (K first), which the model counts; without
    that it read 6.7% low (a few seconds, so marked slow)."""
    job, _, run, _ = spatten_top_gpt2_job(1)
    cfg, timing = _top(job.params), job.mem_timing["mem"]
    cyc = top_cycles(run, cfg, timing)["cycles"]
    an = ta.analytical_top_cycles(run, cfg, timing)
    assert abs(an / cyc - 1) < 0.05, (cyc, an)


def test_the_model_follows_the_port() -> None:
    """Memory-bound where the top is: a longer memory latency or fewer requests in flight slow the V fetch (one
    request per kept row, Little's law) and so the pass; a faster port cannot make it faster than the front;
    without the second query in flight the front and the back no longer overlap."""
    arch = get_preset("spatten-top")
    lay = [ta.TopLayer(tokens=64, heads=12, kv=45, refetch=0.05, topk_cycles=60.0)]
    base = ta.pass_cycles(arch, lay)["cycles"]
    slow = ta.pass_cycles(arch.model_copy(update={"top": arch.top.model_copy(update={"mem_latency_cycles": 40})}),
                          lay)["cycles"]
    few = ta.pass_cycles(arch.model_copy(update={"top": arch.top.model_copy(update={"mem_outstanding": 2})}),
                         lay)["cycles"]
    fast = ta.pass_cycles(arch.model_copy(update={"top": arch.top.model_copy(update={"mem_outstanding": 64})}),
                          lay)
    one = ta.pass_cycles(arch.model_copy(update={"top": arch.top.model_copy(update={"queries_in_flight": 1})}),
                         lay)["cycles"]
    assert slow > base and few > 1.5 * base and one > base  # one query in flight: front and back add up
    assert fast["layers"][0]["period"] >= fast["layers"][0]["front"]


def test_expected_runs_of_alive_tokens() -> None:
    """Nothing pruned: one run; pruning evenly at random: n - n (n - 1) / n0 runs."""
    assert ta.expected_runs(128, 128) == 1.0
    assert ta.expected_runs(64, 128) == pytest.approx(64 - 64 * 63 / 128)


def test_refuses_what_the_top_cannot_run() -> None:
    arch = get_preset("spatten-top")
    with pytest.raises(SpecError, match=r"taps head dimensions \[4, 8, 16, 32\]"):
        ta.check_instance(arch, d=64, tokens=32, heads=12, layers=6)
    with pytest.raises(SpecError, match="d_head"):
        ta.check_instance(arch, d=24, tokens=32, heads=12, layers=6)
    ta.check_instance(arch, d=16, tokens=32, heads=12, layers=6)  # a lower tap: one key per beat, upper lanes zero
    with pytest.raises(SpecError, match="top.max_n"):
        ta.check_instance(arch, d=32, tokens=129, heads=12, layers=6)
    with pytest.raises(SpecError, match="top.max_layers"):
        ta.check_instance(arch, d=32, tokens=32, heads=12, layers=12)


def test_cli_prints_cycle_model_beside_analytical(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """``simulate --arch spatten-top-small --fidelity cycle`` on a small encoder of the instance's head dimension
    (a user's models file): the top's cycle model and the analytical on one pruned pass, within 5%."""
    from attnforge.cli.main import main

    models = tmp_path / "small.yaml"
    models.write_text("small:\n  layers: 3\n  heads: 4\n  d_model: 32\n  d_head: 8\n  d_ff: 128\n")
    assert main(["simulate", "--accel", "spatten", "--arch", "spatten-top-small", "--workload", f"{models}:small",
                 "--seq-len", "16", "--batch", "1", "--fidelity", "cycle", "--token-ratio", "0.4", "--head-ratio",
                 "0.4", "--v-ratio", "0.3", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["design"] == "spatten-top" and out["tensors"] == "synthetic:seed0"
    assert out["kept_tokens_heads"][0] == [16, 4] and out["kept_tokens_heads"][-1] < [16, 4]
    assert abs(out["analytical_cycles"] / out["cycles"] - 1) < 0.05
    assert abs(out["analytical_engine_cycles"] / out["cycles"] - 1) < 0.05  # policy only, no tensors
    assert main(["simulate", "--accel", "spatten", "--arch", "spatten-top-small", "--workload", f"{models}:small",
                 "--seq-len", "16", "--batch", "1", "--fidelity", "cycle"]) == 0
    text = capsys.readouterr().out
    assert "cycle model:" in text and "analytical:" in text and "vs the cycle model" in text


def test_analytical_engine_uses_the_top_model() -> None:
    """``evaluate`` (the analytical fidelity) on a spatten-top arch is the top's model on the policy's layers, one
    pass per sequence: twice the cycles for a batch of two; what the top cannot run is refused."""
    from attnforge.sim.analytical.engine import evaluate
    from attnforge.workloads import get_model

    arch = get_preset("spatten-top")
    one = float(evaluate("spatten", get_model("minilm"), p=32, m=32, batch=1, arch=arch).cycles)
    two = float(evaluate("spatten", get_model("minilm"), p=32, m=32, batch=2, arch=arch).cycles)
    assert two == pytest.approx(2 * one) and one > 0
    with pytest.raises(SpecError, match=r"taps head dimensions \[4, 8, 16, 32\]"):
        evaluate("spatten", get_model("bert-base"), p=32, m=32, batch=1, arch=arch)
    with pytest.raises(SpecError, match="encoder passes"):
        evaluate("spatten", get_model("minilm"), p=1, m=32, batch=1, arch=arch, stage="decode")


@pytest.mark.parametrize(("args", "field"), [
    (["--workload", "bert-base", "--seq-len", "32", "--batch", "1"], "d_head"),
    (["--workload", "minilm", "--seq-len", "32"], "--batch"),
    (["--workload", "minilm", "--seq-len", "200", "--batch", "1"], "tokens"),
])
def test_cli_refuses_in_one_line(args: list[str], field: str, capsys: pytest.CaptureFixture[str]) -> None:
    from attnforge.cli.main import main

    assert main(["simulate", "--accel", "spatten", "--arch", "spatten-top", *args, "--fidelity", "cycle"]) == 2
    err = capsys.readouterr().err
    assert f"error: {field}" in err and "Traceback" not in err


def test_generation_layers_count_one_job_per_head() -> None:
    """A generation step (``queries = 1``) is one (head, query) job per alive head, not one per alive token: its
    memory beats are those of ``heads`` jobs, and the layer is far shorter than the encoder layer of the same size."""
    arch = get_preset("spatten-top")
    enc = ta.TopLayer(64, 4, 16, 0.0, 40.0)
    dec = ta.TopLayer(64, 4, 16, 0.0, 40.0, queries=1)
    e, d = (ta.pass_cycles(arch, [lay])["layers"][0] for lay in (enc, dec))
    assert e["jobs"] == 64 * 4 and d["jobs"] == 4
    assert d["memory_beats"] * 64 == e["memory_beats"]
    assert d["cycles"] < e["cycles"] / 10
