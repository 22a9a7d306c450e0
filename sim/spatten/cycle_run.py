"""Cycle mode of the SpAtten simulator: the pipeline RTL's exact cycle model run on a workload's query rows.

Unlike the analytical SpAtten builder (module occupancies at the paper's sizes), this runs the bit-exact golden
datapath per query row, because the cycles depend on the data: whether the row refetches LSBs and how many
quick-select rounds its top-k takes. Rows are sampled evenly over the heads; the workload total scales the mean.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from attnforge.sim.contract.spatten_fx import SpattenFx
from attnforge.sim.spatten.cycle_model import pipeline_cycles
from attnforge.sim.spatten.golden import pipeline, quantize_job
from attnforge.sim.specs.errors import SpecError


def pipeline_workload_cycles(wl: Any, cfg: SpattenFx, *, threshold: float = 0.1, v_ratio: float = 0.0,
                             rows: int = 32, seed: int = 0) -> dict[str, Any]:
    """Mean cycles per query of the pipeline RTL on ``rows`` query rows of the workload, and the workload total
    (``mean x queries x heads x batch``: one query of one head at a time, as SpAtten processes them). With a causal
    workload a sampled row sees only the keys up to its own position (the last P of the M tokens are the queries)."""
    if not 0.0 <= v_ratio < 1.0:
        raise SpecError("--v-ratio", f"{v_ratio} is outside [0, 1)", "[0, 1)")
    if rows < 1:
        raise SpecError("--cycle-rows", f"{rows} must be at least 1")
    cfg.check_d(wl.e)
    if wl.m > cfg.max_n:
        raise SpecError("--m", f"key length {wl.m} exceeds the pipeline's max_n = {cfg.max_n}", f"1..{cfg.max_n}")
    t = replace(wl, batch=1).tensors()
    q, k, v = t["q"][0], t["k"][0], t["v"][0]  # [H, P, E], [H, M, E]
    heads, p = q.shape[0], q.shape[1]
    rng = np.random.default_rng(seed)
    cyc, refetch, kept = [], 0, []
    for i in range(rows):
        h = i % heads
        row = int(rng.integers(0, p))
        n = min(wl.m, row + 1 + wl.m - p) if wl.causal else wl.m
        kv = max(1, round((1.0 - v_ratio) * n))
        kept.append(kv)
        job = quantize_job(q[h, row], k[h, :n], v[h, :n], kv, threshold, cfg)
        res = pipeline(job, cfg)
        cyc.append(pipeline_cycles(job, cfg, res))
        refetch += int(res.refetch)
    mean = float(np.mean(cyc))
    queries = wl.p * wl.heads * wl.batch
    return {"rows_sampled": rows, "kept_values": int(round(float(np.mean(kept)))), "cycles_per_query_mean": mean,
            "cycles_per_query_min": min(cyc),
            "cycles_per_query_max": max(cyc), "refetch_rate": refetch / rows, "queries": queries,
            "cycles": int(round(mean * queries))}
