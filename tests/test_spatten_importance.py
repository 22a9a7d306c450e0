"""SpAtten's importance accumulators and the blocks' refusals: the golden's arithmetic and widths, the refusal
predicates, and whole runs through the RTL (fastbench: HDL-side stimulus, exact beats and cycles)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from attnforge.rtl.fastbench import run_raw
from attnforge.rtl.regress import BENCHES, available
from attnforge.sim.contract.depths import IMP_GATHER_PIPE
from attnforge.sim.contract.spatten_fx import ImportanceCfg, SpattenFx
from attnforge.sim.spatten import cycle_model as cm
from attnforge.sim.spatten import golden as g
from attnforge.sim.spatten import importance_golden as ig
from attnforge.sim.specs.errors import SpecError

sys.path.insert(0, str(BENCHES))
from fast_jobs import importance_job, spatten_refusal_job  # noqa: E402

CFG = ImportanceCfg()


def test_widths_hold_the_largest_scores() -> None:
    """The bound is reachable (every add at its largest code) and fits; one more add of the largest would not."""
    fx = CFG.fx
    adds = CFG.max_queries * CFG.max_heads * CFG.max_layers
    assert CFG.token_bound == adds * ((1 << fx.prob_bits) - 1)
    assert CFG.head_bound == CFG.max_queries * CFG.max_layers * fx.max_d * (1 << (fx.out_bits - 1))
    assert CFG.imp_bits == max(CFG.token_bound, CFG.head_bound).bit_length()
    assert CFG.token_bound < 1 << CFG.imp_bits and CFG.head_bound < 1 << CFG.imp_bits
    from attnforge.rtl.registry import parse_params

    with pytest.raises(SpecError, match="max_heads"):
        parse_params("importance", ["max_heads=0"])
    with pytest.raises(SpecError, match="max_d"):
        parse_params("importance", ["max_d=32", "lanes=16"])
    assert parse_params("importance", ["max_layers=24"])["max_layers"] == 24


def test_head_accumulator_reaches_its_bound_exactly() -> None:
    """The most negative output in every lane, every (query, layer): the head score equals head_bound."""
    cfg = ImportanceCfg(SpattenFx(max_n=8), max_heads=2, max_queries=3, max_layers=2)
    st = ig.ImportanceState(cfg)
    lo = -(1 << (cfg.fx.out_bits - 1))
    for _ in range(cfg.max_queries * cfg.max_layers):
        st.run(ig.add_head(1, [lo] * cfg.fx.max_d))
    assert st.heads[1] == cfg.head_bound and st.heads[0] == 0
    with pytest.raises(SpecError, match="imp_bits"):
        for _ in range(1 << 10):
            st.run(ig.add_head(1, [lo] * cfg.fx.max_d))


def test_token_scores_are_column_sums() -> None:
    """Token importance = the probabilities of each token's column summed over every add (np.add.at); a repeated
    id in one job adds twice; reads return the named tokens in order and copy n and k."""
    rng = np.random.default_rng(4)
    st = ig.ImportanceState(CFG)
    want = np.zeros(CFG.fx.max_n, dtype=np.int64)
    for _ in range(20):
        n = int(rng.integers(1, CFG.fx.max_n + 1))
        ids, p = rng.integers(0, CFG.fx.max_n, n), rng.integers(0, 1 << CFG.fx.prob_bits, n)
        np.add.at(want, ids, p)
        res = st.run(ig.add_tokens(ids.tolist(), p.tolist()))
        assert not res.err and res.cycles == -(-n // CFG.s) + 3 and res.o == []
    sel = [5, 0, 63, 5]
    res = st.run(ig.read_tokens(sel, 2))
    lay = ig.contract.importance(CFG)["o"]
    beats = [lay.unpack(w) for w in res.o]
    assert beats[0]["scores"] == [int(want[i]) for i in sel] and beats[0]["job"] == {"n": 4, "k": 2}
    st.run(ig.clear())
    assert not any(st.tokens) and not any(st.heads)


def test_importance_refuses_what_it_cannot_honour() -> None:
    fx = CFG.fx
    bad = [ig.ImpJob(ig.OPS["add_tokens"], n=0), ig.ImpJob(ig.OPS["add_tokens"], n=fx.max_n + 1),
           ig.ImpJob(ig.OPS["read_tokens"], n=2, k=0, idx=(0, 1)), ig.ImpJob(ig.OPS["read_tokens"], n=2, k=3, idx=(0, 1)),
           ig.ImpJob(ig.OPS["read_heads"], n=CFG.max_heads + 1, k=1), ig.ImpJob(7),
           ig.ImpJob(ig.OPS["add_head"], dlog=fx.max_d.bit_length(), idx=(0,)),
           ig.ImpJob(ig.OPS["add_head"], dlog=2, idx=(CFG.max_heads,))]
    st = ig.ImportanceState(CFG)
    st.run(ig.add_tokens([1, 2], [7, 9]))
    for j in bad:
        assert ig.refused(j, CFG)
        res = st.run(j)
        assert res.err and res.o == [] and res.cycles == ig.job_beats(j, CFG)
    assert st.tokens[1] == 7 and st.tokens[2] == 9 and not any(st.heads)  # nothing changed
    # a head read past max_heads is run, the lane reads 0, and the answer carries err
    res = st.run(ig.read_heads([0, CFG.max_heads + 1], 1))
    assert res.err and len(res.o) == 1 and res.cycles == 2 + IMP_GATHER_PIPE  # ids, gather, output registers


def test_block_refusal_predicates() -> None:
    cfg = SpattenFx()
    s = cfg.s
    assert g.qk_refused(0, 2, cfg) and g.qk_refused(cfg.max_n + 1, 2, cfg) and g.qk_refused(3, 1, cfg)
    assert g.qk_refused(3, 4, cfg) and not g.qk_refused(cfg.max_n, 3, cfg)
    assert g.row_refused([0], cfg) and g.row_refused([s - 1, s], cfg) and g.row_refused([s + 1], cfg)
    assert g.row_refused([s] * (cfg.max_n // s) + [1], cfg) and not g.row_refused([s, s, 1], cfg)
    assert not g.pv_refused([0, s - 1, 0], cfg) and g.pv_refused([s + 1], cfg)  # top-k rows are sparse
    assert g.decision_refused([s], (1 << cfg.prob_frac) + 1, cfg) and not g.decision_refused([s], 1 << cfg.prob_frac, cfg)
    with pytest.raises(SpecError):
        cm.qk_refused_job(4, 2, cfg)  # a job Q x K runs is not a refusal
    with pytest.raises(SpecError):
        cm.softmax_refused_row(cm.bad_row([s, 2], cfg, np.random.default_rng(0), 8), 1, 1, cfg)


def _need(sim: str) -> None:
    if available(sim):
        pytest.skip(f"{sim}: {available(sim)}")


@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])
def test_importance_run_is_bit_and_cycle_exact(sim: str, tmp_path: Path) -> None:
    """Two layers of bookkeeping with refused jobs in between: every read-out, every answer, the exact cycles."""
    _need(sim)
    job, expect, cycles = importance_job(layers=2)
    r = run_raw(job, sim, tmp_path)
    assert r.outputs == expect and r.cycles == cycles
    assert sum(ig.contract.importance(ImportanceCfg())["r"].unpack(w)["err"] for w in expect["r"]) == 2


#: one simulator per block (each block's cocotb bench runs its test_refused_jobs on both elsewhere). progquant's
#: fastbench refusal job runs on Verilator: on Icarus its output memory came back short (unwritten 'x' beats) in
#: CI, an open discrepancy of the fastbench path on Icarus (its cocotb refusal bench passes on Icarus)
REFUSAL_RUNS = [("qk", "icarus"), ("softmax", "icarus"), ("progquant", "verilator"), ("pv", "icarus")]


@pytest.mark.slow
@pytest.mark.parametrize("design,sim", REFUSAL_RUNS)
def test_refused_job_then_good_job(design: str, sim: str, tmp_path: Path) -> None:
    """A refused job answered by its error beat, then a good job right behind it, exact beats and cycles."""
    _need(sim)
    job, expect, cycles = spatten_refusal_job(design)
    r = run_raw(job, sim, tmp_path)
    assert r.outputs == expect and r.cycles == cycles


def test_manifest_documents_refusals(tmp_path: Path) -> None:
    """The answer to a refused job is a layout field in every block's manifest, and the rule is in its words."""
    import json

    from attnforge.rtl.export import export
    from attnforge.rtl.registry import parse_params
    from attnforge.sim.contract import for_design

    export("importance", {}, tmp_path)
    man = json.loads((tmp_path / "importance.json").read_text())
    assert man["enums"]["op"] == ig.OPS and "refused" in man["streams"]["i"]["beats"].lower()
    assert [f["path"] for f in man["streams"]["r"]["fields"]] == ["op", "err"]
    assert man["streams"]["o"]["layout"] == for_design("topk", {"comparators": CFG.s, "max_n": CFG.max_entries,
                                                                "data_bits": CFG.imp_bits, "signed_data": 0})["i"].to_json()
    for design, stream in (("qk", "s"), ("softmax", "o"), ("progquant", "d"), ("pv", "o")):
        s = for_design(design, parse_params(design, {})).streams[stream].to_json()
        assert s["fields"][-1]["path"] == "err", design  # the top bit: readers of the old beat keep the low bits
    for design, stream in (("qk", "s"), ("softmax", "i"), ("progquant", "p"), ("pv", "i")):
        assert "refused" in for_design(design, parse_params(design, {})).streams[stream].beats, design
