"""Trace replay of SpAtten's own GPT-2 traces through the shared engine, and one clear error per bad trace."""

from pathlib import Path

import pytest

from attnforge.cli.main import main
from attnforge.sim.analytical.engine import run_schedule
from attnforge.sim.spatten.trace import load_trace, trace_schedule
from attnforge.sim.specs.arch import get_preset
from attnforge.sim.specs.errors import SpecError

DATA = Path(__file__).resolve().parent.parent / "workloads" / "traces"
SMALL = DATA / "summary-gpt2-small-wikitext2-per8.csv"
SMALL_BASE = DATA / "summary-gpt2-small-wikitext2-per8-step1+dedic.csv"


def test_small_trace_facts():
    t = load_trace(SMALL)
    r = t.rows
    assert len(r) == 32 * 12 * 12 and t.config.startswith("configs/gpt2/wikitext2/")
    assert abs(r["if_requant"].mean() - 0.070) < 0.001  # docs/spatten.md §Traces: 7.0% of rows
    assert abs(r["sentence_length_L"].sum() / r["key_fetch_num"].sum() - 3.62) < 0.01


def test_replay_reduces_dram_and_cycles_against_baseline():
    arch = get_preset("spatten")
    sp, summ = trace_schedule(load_trace(SMALL), arch)
    sb, _ = trace_schedule(load_trace(SMALL_BASE), arch)
    ep, eb = run_schedule("spatten", sp, arch), run_schedule("spatten", sb, arch)
    assert float(sb.dram_bytes) / float(sp.dram_bytes) > 5
    assert 25 < summ.dram_bytes_fp32_dense / float(sp.dram_bytes) < 32  # docs/spatten.md §Traces: ~28.9x
    assert float(eb.cycles) > 2 * float(ep.cycles)
    assert float(ep.energy_j) < float(eb.energy_j)
    assert sp.extra["lsb_refetch_rate"] == pytest.approx(0.0701, abs=1e-3)
    # the 1/8 design is slower on the same trace
    small = get_preset("spatten-1-8")
    s8, _ = trace_schedule(load_trace(SMALL), small)
    assert float(run_schedule("spatten-1/8", s8, small).cycles) > 3 * float(ep.cycles)


def _write(tmp_path, text):
    p = tmp_path / "t.csv"
    p.write_text(text)
    return p


HEADER = SMALL.read_text().splitlines()[0]
ROW = SMALL.read_text().splitlines()[1]


@pytest.mark.parametrize("mutate,match", [
    (lambda h, r: (h.replace(",topk", ""), r.rsplit(",", 1)[0]), "lacks column"),
    (lambda h, r: (h, r.replace(",993,993,", ",993,abc,")), "not a number"),
    (lambda h, r: (h, r.replace(",993,993,", ",993,2000,")), "key_fetch_num"),
    (lambda h, r: (h, r.replace(",True,4,204,", ",maybe,4,204,")), "if_requant"),
    (lambda h, r: (h, r.replace(",6,16,", ",7,16,")), "quant_key_bit"),
    (lambda h, r: (h, r.replace(",0.05,", ",1.5,")), "auto_requant_thres"),
    (lambda h, r: (h, r.replace(",204,6,", ",2000,6,")), "value_fetch_num"),
])
def test_malformed_traces(tmp_path, mutate, match):
    h, r = mutate(HEADER, ROW)
    with pytest.raises(SpecError, match=match):
        load_trace(_write(tmp_path, f"{h}\n{r}\n"))


def test_empty_and_missing(tmp_path):
    with pytest.raises(SpecError, match="no data rows"):
        load_trace(_write(tmp_path, HEADER + "\n"))
    with pytest.raises(SpecError, match="not found"):
        load_trace(tmp_path / "nope.csv")


def test_cli_trace_replay(capsys):
    assert main(["simulate", "--accel", "spatten", "--trace", str(SMALL), "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["baseline_trace"] == SMALL_BASE.stem
    assert out["dram_reduction_vs_baseline"] > 5 and out["speedup_vs_baseline"] > 2
    assert out["cycles"] > 0 and out["energy_j"] > 0
    # what the HBM delivered: under the pins, at the row-hit rate of the requests the replay counted
    assert 100 < out["hbm_gb_s"] < 512 and 0 < out["dram_activates"] < out["dram_requests"]
    assert out["hbm_row_hit"] == 1 - out["dram_activates"] / out["dram_requests"]
    # the modules' busy cycles: the pruned layers' local-V top-k outweighs Q x K at 16 comparators
    assert set(out["busy_cycles"]) == {"qk", "softmax", "topk", "pv"}
    assert out["busy_cycles"]["topk"] > out["busy_cycles"]["qk"] > out["busy_cycles"]["pv"]


def test_bench_fetch_maps_wide_widths_as_the_released_bench() -> None:
    """The released bench's fetcher takes 4-8 bit fields: K of -1/10/12 bits becomes 8-bit MSBs with every row's
    4-bit LSBs (and a recompute), V 8 bits; 6-bit rows are left as they are."""
    from attnforge.sim.spatten.trace import as_bench_fetch

    base = as_bench_fetch(load_trace(SMALL_BASE)).rows
    assert (base["quant_key_bit"] == 8).all() and base["if_requant"].all() and (base["auto_requant_incre"] == 4).all()
    assert (base["quant_value_bit"] == 8).all()
    small = load_trace(SMALL)
    assert as_bench_fetch(small).rows.equals(small.rows)
    arch = get_preset("spatten")
    paper, bench = (trace_schedule(t, arch)[0] for t in (load_trace(SMALL_BASE), as_bench_fetch(load_trace(SMALL_BASE))))
    # same K bytes (8 + 4 against 12), V at 8 bits instead of 12, every row's Q x K twice
    assert float(bench.dram_bytes) < float(paper.dram_bytes) and float(bench.flops) > float(paper.flops)


def test_trace_only_options_are_refused_elsewhere(capsys) -> None:
    assert main(["simulate", "--accel", "spatten", "--trace", str(SMALL), "--trace-widths", "bench", "--json"]) == 0
    import json

    out = json.loads(capsys.readouterr().out)
    assert out["trace_widths"] == "bench" and out["speedup_vs_baseline"] > 2
    for argv in (["simulate", "--baseline", str(SMALL_BASE)], ["simulate", "--trace-widths", "bench"],
                 ["compare", "--accels", "spatten,spatten-1/8", "--seq-len", "128", "--trace", str(SMALL)]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "--trace" in err and err.strip().count("\n") == 0


def test_cli_bad_trace_is_one_line(tmp_path, capsys):
    p = _write(tmp_path, "a,b\n1,2\n")
    assert main(["simulate", "--accel", "spatten", "--trace", str(p)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "lacks column" in err


@pytest.mark.slow
def test_big_trace_replays_at_io_speed(tmp_path: Path) -> None:
    """About 50 MB of trace (the packaged one repeated with shifted iteration ids) replays in seconds, not minutes."""
    import time

    import pandas as pd

    from attnforge.workloads import trace_path

    src = trace_path("gpt2-small-wikitext2-per8")
    rows = load_trace(src).rows
    span = int(rows["iteration_id"].max()) + 1
    big = pd.concat([rows.assign(iteration_id=rows["iteration_id"] + k * span) for k in range(170)], ignore_index=True)
    f = tmp_path / "big.csv"
    big.to_csv(f, index=False)
    t0 = time.perf_counter()
    tr = load_trace(f)
    sched, summ = trace_schedule(tr, get_preset("spatten"))
    assert summ.rows == len(big) and summ.iterations == 170 * rows["iteration_id"].nunique()
    assert time.perf_counter() - t0 < 30
