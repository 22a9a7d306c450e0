"""Bench of ``spatten-top`` through the fastbench (rtl/fastbench.py): descriptors and the memory image on the HDL
side (the memory model answers the design's memory port), Python only before and after the run. A whole pass of
several layers is millions of cycles at real sizes, which a per-cycle cocotb bench cannot afford.

Checks per case: every ``o`` beat bit-exact with the golden (:mod:`attnforge.sim.spatten.top_golden`), in order,
with its head and token labels, so the kept token and head sets of every layer equal the golden's; every ``r``
answer (alive counts per layer); bad descriptors answered err=1 with the design idle again (a good pass right
after). Rows carry ``rtl_cycles`` (first descriptor handshake to last output), ``sim_cycles`` (the cycle model,
:mod:`attnforge.sim.spatten.top_cycle_model`, on the golden run's facts), ``analytical_cycles`` (the analytical
model, :mod:`attnforge.sim.spatten.top_analytical`, at the instance's arch), the float errors of the pass
against the numpy pruned model and the unpruned reference, and the memory traffic.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from fast_jobs import spatten_top_decode_job, spatten_top_gpt2_job, spatten_top_job, spatten_top_minilm_job

from attnforge.rtl.fastbench import FastJob, run_raw
from attnforge.rtl.regress import cache_dir
from attnforge.sim.contract import designs
from attnforge.sim.contract.designs import _top
from attnforge.sim.spatten.top_analytical import analytical_top_cycles
from attnforge.sim.spatten.top_cycle_model import top_cycles


def _workdir(job: FastJob, sim: str) -> Path:
    """A folder kept per (parameters, simulator, case): the simulator's build is reused by the next run (the
    stimulus and the memory image are read at run time, so only the wrapper's sizes key the build)."""
    tag = hashlib.sha1(json.dumps([job.params, sim, job.label], sort_keys=True).encode()).hexdigest()[:10]
    return cache_dir().parent / "fastbench-runs" / f"spatten-top-{tag}"


def refused_descs(params: dict[str, int]) -> list[int]:
    """One bad descriptor per check the controller makes (before any layer ran: no alive tokens or heads)."""
    t = _top(params)
    fx, lay = t.fx, designs.spatten_top(t)["desc"]
    good = {"first": 1, "carry": 0, "ctx": 4, "tokens": 4, "queries": 4, "heads": 1, "kv": 2, "thr": 0,
            "alpha": {"alpha_q": 1, "alpha_sh": 1}, "dlog": fx.max_d.bit_length() - 1, "stride": 4, "q_base": 0,
            "k_base": 0, "l_base": 0, "v_base": 0}
    over = fx.max_n + 1
    bad = [{"tokens": 0}, {"tokens": over, "ctx": over, "stride": over}, {"heads": 0}, {"heads": t.max_heads + 1},
           {"kv": 0}, {"kv": 5}, {"thr": (1 << fx.prob_frac) + 1}, {"dlog": fx.max_d.bit_length()},
           {"stride": 3}, {"first": 0}, {"queries": 0}, {"queries": 5},
           # a first descriptor's context: without carry it is the tokens; with carry at most max_n, at least the
           # tokens, and more than one token kept beside the newest unless the context is one token
           {"ctx": 5}, {"carry": 1, "ctx": over, "stride": over}, {"carry": 1, "ctx": 3},
           {"carry": 1, "tokens": 1, "queries": 1, "kv": 1}]
    if fx.min_d > 1:  # a head dimension below the tree's lowest tap
        bad.insert(8, {"dlog": fx.min_d.bit_length() - 2})
    return [lay.pack({**good, **b}) for b in bad]


def run_top_case(params: dict[str, int], sim: str, label: str, refusals: bool = True, **kw: Any) -> dict[str, Any]:
    """One pass of the synthetic encoder through the RTL (bad descriptors first when ``refusals``)."""
    job, exp, run = spatten_top_job(params, **kw)
    return run_job(job, exp, run, sim, label, refusals)


def run_decode_case(params: dict[str, int] | None, sim: str, layers: list, refusals: bool = True,
                    **kw: Any) -> dict[str, Any]:
    """A generation step (``queries = 1``) on seeded tensors for the descriptors ``layers``."""
    job, exp, run = spatten_top_decode_job(params, layers, **kw)
    return run_job(job, exp, run, sim, job.label, refusals)


def run_gpt2_decode(sim: str, iteration: int = 1, params: dict[str, int] | None = None,
                    first_layer: int = 0, iterations: int = 1) -> dict[str, Any]:
    """Generation iterations of the GPT-2-Small WikiText-2 trace from ``first_layer`` on (the trace's kept counts
    per layer, GPT-2-Small's 12 heads of dimension 64, seeded tensors; later iterations carry the importance), no
    refusals; the row adds the trace's counts per layer and the query token of each layer (the newest alive
    token)."""
    job, exp, run, layers = spatten_top_gpt2_job(iteration, params, first_layer, iterations=iterations)
    row = run_job(job, exp, run, sim, job.label, False)
    row["trace_tokens_heads_kv"] = [(lc.tokens, lc.heads, lc.kv) for lc in layers]
    row["kept_v"] = [sorted({len(k) for h in lr.kept_v for k in h}) for lr in run.layers]
    row["query_tokens"] = [int(lr.queries[0]) for lr in run.layers]
    row["counts_match_trace"] = row["kept_tokens_heads"] == [(lc.tokens, lc.heads) for lc in layers]
    row["refetched_rows"] = int(sum(lr.refetch.sum() for lr in run.layers))
    return row


def run_job(job: FastJob, exp: dict[str, list[int]], run: Any, sim: str, label: str,
            refusals: bool = True) -> dict[str, Any]:
    """A job through the RTL (bad descriptors first when ``refusals``), compared with the golden's beats, its
    cycles and memory requests with the cycle model's."""
    t = _top(job.params)
    lay = designs.spatten_top(t)
    bad = refused_descs(job.params) if refusals else []
    err = [lay["r"].pack({"err": 1, "tokens": 0, "heads": 0})] * len(bad)
    model = top_cycles(run, t, job.mem_timing["mem"], refusals=len(bad))
    # a run twice the model's cycles is a hang: stop it there (fails fast) rather than at the simulator's timeout
    job = FastJob(job.design, job.params, {"desc": bad + job.inputs["desc"]},
                  {"o": len(exp["o"]), "r": len(err) + len(exp["r"])}, job.p_valid, job.p_ready, job.seed, job.label,
                  job.memories, job.mem_timing, max_cycles=2 * model["cycles"] + 1000)
    t0 = time.perf_counter()
    res = run_raw(job, sim, _workdir(job, sim))
    o_bad = sum(a != b for a, b in zip(res.outputs["o"], exp["o"], strict=True))
    r_ok = res.outputs["r"] == err + exp["r"]
    passed = o_bad == 0 and r_ok
    kept = [(int(lr.alive.size), int(lr.heads.size)) for lr in run.layers]
    return {"design": "spatten-top", "workload": label, "simulator": sim, "passed": passed,
            "rtl_cycles": res.cycles, "sim_cycles": model["cycles"], "sim_mem_requests": model["requests"],
            "analytical_cycles": analytical_top_cycles(run, t, job.mem_timing["mem"], refusals=len(bad)),
            "max_abs_error": o_bad, "outputs": len(exp["o"]), "layers": len(run.layers),
            "kept_tokens_heads": kept, "refused_descriptors": len(bad), "answers_ok": r_ok,
            "mem_requests": res.extra.get("mem", {}).get("mem", {}).get("requests"),
            "mem_beats": res.extra.get("mem", {}).get("mem", {}).get("beats"),
            "cycles_simulated": res.total_cycles, "wall_s": time.perf_counter() - t0, "backpressure": False,
            "error": None if passed else f"{o_bad} output beats differ; answers {'ok' if r_ok else 'DIFFER'}"}


def run_minilm(sim: str, params: dict[str, int] | None = None) -> dict[str, Any]:
    """All 6 MiniLM layers on the 128-token text (no refusals: the descriptors are the golden's), with the float
    errors of the pass against the numpy pruned model and PyTorch's unpruned MiniLM; ``params``: the instance
    (default ``MINILM_TOP``)."""
    job, exp, run, cmp = spatten_top_minilm_job(params=params)
    t0 = time.perf_counter()
    res = run_raw(job, sim, _workdir(job, sim))
    o_bad = sum(a != b for a, b in zip(res.outputs["o"], exp["o"], strict=True))
    r_ok = res.outputs["r"] == exp["r"]
    passed = o_bad == 0 and r_ok
    model = top_cycles(run, _top(job.params), job.mem_timing["mem"])
    return {"design": "spatten-top", "workload": job.label, "simulator": sim, "passed": passed,
            "rtl_cycles": res.cycles, "sim_cycles": model["cycles"], "sim_mem_requests": model["requests"],
            "analytical_cycles": analytical_top_cycles(run, _top(job.params), job.mem_timing["mem"]),
            "max_abs_error": o_bad,
            "outputs": len(exp["o"]), "layers": len(run.layers), "answers_ok": r_ok,
            "kept_tokens_heads": [(int(lr.alive.size), int(lr.heads.size)) for lr in run.layers],
            "float_rel_error_vs_pruned": cmp.rel_err_pruned, "float_cos_vs_pruned": cmp.cos_pruned,
            "float_rel_error_vs_unpruned": cmp.rel_err_dense, "float_cos_vs_unpruned": cmp.cos_dense,
            "unpruned_reference": cmp.dense_source, "mem_requests": res.extra.get("mem", {}).get("mem", {}).get("requests"),
            "cycles_simulated": res.total_cycles, "wall_s": time.perf_counter() - t0,
            "error": None if passed else f"{o_bad} output beats differ; answers {'ok' if r_ok else 'DIFFER'}"}


#: generation steps of the paper's GPT-2 benchmarks (a 992-token prompt, then 32 tokens): the trace's iterations
GPT2_STEPS = 32


def rows(case: Any, sim: str) -> list[dict[str, Any]]:
    """The regress entry point (rtl/regress.py dispatches fastbench designs here, a ``Case`` with parsed params):
    workload ``minilm``: the whole model; ``gpt2-decode``: one generation iteration of the GPT-2-Small trace
    (``-tail``: its layers 2-11; ``-iters``: three iterations of those); ``gpt2-generation``: the trace's whole
    generation (its 32 iterations, all 12 layers, the importance carried from the first unpruned one on);
    otherwise one row per shape (layers, tokens) of a synthetic encoder."""
    if "minilm" in (case.workloads or []):
        return [run_minilm(sim, params=case.params)]
    if "gpt2-decode" in (case.workloads or []):
        return [run_gpt2_decode(sim, params=case.params)]
    if "gpt2-decode-tail" in (case.workloads or []):
        return [run_gpt2_decode(sim, params=case.params, first_layer=2)]
    if "gpt2-decode-iters" in (case.workloads or []):
        return [run_gpt2_decode(sim, params=case.params, first_layer=2, iterations=3)]
    if "gpt2-generation" in (case.workloads or []):
        return [run_gpt2_decode(sim, iteration=0, params=case.params, iterations=GPT2_STEPS)]
    out = []
    for layers, length in case.shapes or [(3, 16)]:
        r = run_top_case(case.params, sim, f"synthetic {layers}x{length}", layers=layers, length=length,
                         seed=case.seed)
        r["simulator"] = sim
        out.append(r)
    return out
