"""Cycle mode of the SpAtten simulator: the pipeline RTL's exact cycle model run on a workload's query rows.

Unlike the analytical SpAtten builder (module occupancies at the paper's sizes), this runs the bit-exact golden
datapath per query row, because the cycles depend on the data: whether the row refetches LSBs and how many
quick-select rounds its top-k takes. Rows are spread evenly over the heads and the query positions (with a causal
mask a row's position sets how many keys it sees); the workload total scales the mean, and a workload with no more
jobs than the rows asked for runs every job once, so its total is exact.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np

from attnforge.sim.contract.spatten_fx import SpattenFx
from attnforge.sim.spatten.cycle_model import pipeline_cycles
from attnforge.sim.spatten.golden import pipeline, quantize_job
from attnforge.sim.specs.errors import SpecError

#: Query rows the cycle model runs by default: at 32 a GPT-2 prompt's sample strayed up to 6% from the total over
#: every job (64 tokens: 120,720 against 128,635 cycles), at 96 under 1%, for ~0.6 s more at 1024 tokens.
CYCLE_ROWS = 96


def visible_keys(wl: Any) -> np.ndarray:
    """Keys each query position sees: all M, or with a causal mask the keys up to its own position (the last P of
    the M tokens are the queries, so position r sees r + 1 + M - P)."""
    pos = np.arange(wl.p)
    return np.minimum(wl.m, pos + 1 + wl.m - wl.p) if wl.causal else np.full(wl.p, wl.m)


def sampled_jobs(heads: int, p: int, rows: int) -> list[tuple[int, int]]:
    """(head, position) of the rows the cycle model runs: every job when there are no more than ``rows``, else
    ``rows`` of them spread evenly over the positions (a stratified sample: with a causal mask the cost grows with
    the position, so random positions scatter the mean), the heads taken in turn."""
    if heads * p <= rows:
        return [(h, r) for r in range(p) for h in range(heads)]
    return [(i % heads, int((i + 0.5) * p / rows)) for i in range(rows)]


def pipeline_workload_cycles(wl: Any, cfg: SpattenFx, *, threshold: float = 0.1, v_ratio: float = 0.0,
                             rows: int = CYCLE_ROWS) -> dict[str, Any]:
    """Mean cycles per query of the pipeline RTL on ``rows`` query rows of the workload (:func:`sampled_jobs`), and
    the workload total (``mean x queries x heads x batch``: one query of one head at a time, as SpAtten processes
    them). With a causal workload a row sees only the keys up to its own position (:func:`visible_keys`)."""
    if not 0.0 <= v_ratio < 1.0:
        raise SpecError("--v-ratio", f"{v_ratio} is outside [0, 1)", "[0, 1)")
    if rows < 1:
        raise SpecError("--cycle-rows", f"{rows} must be at least 1")
    cfg.check_d(wl.e)
    if wl.m > cfg.max_n:
        raise SpecError("--m", f"key length {wl.m} exceeds the pipeline's max_n = {cfg.max_n}", f"1..{cfg.max_n}")
    t = replace(wl, batch=1).tensors()
    q, k, v = t["q"][0], t["k"][0], t["v"][0]  # [H, P, E], [H, M, E]
    seen = visible_keys(wl)
    jobs = sampled_jobs(q.shape[0], q.shape[1], rows)
    cyc, refetch, kept = [], 0, []
    for h, row in jobs:
        n = int(seen[row])
        kv = max(1, round((1.0 - v_ratio) * n))
        kept.append(kv)
        job = quantize_job(q[h, row], k[h, :n], v[h, :n], kv, threshold, cfg)
        res = pipeline(job, cfg)
        cyc.append(pipeline_cycles(job, cfg, res))
        refetch += int(res.refetch)
    mean = float(np.mean(cyc))
    queries = wl.p * wl.heads * wl.batch
    return {"rows_sampled": len(jobs), "all_jobs": len(jobs) == q.shape[0] * q.shape[1],
            "kept_values": int(round(float(np.mean(kept)))), "cycles_per_query_mean": mean,
            "cycles_per_query_min": min(cyc),
            "cycles_per_query_max": max(cyc), "refetch_rate": refetch / len(jobs), "queries": queries,
            "cycles": int(round(mean * queries))}


def workload_score_std(wl: Any) -> float:
    """Mean spread (std over the keys) of a row's scores Q.K / sqrt(D) in the workload's tensors: how peaked its
    softmax rows are, which sets how many quantized probabilities tie in the top-k engine."""
    t = replace(wl, batch=1).tensors()
    q, k = t["q"][0].astype(np.float64), t["k"][0].astype(np.float64)
    s = np.einsum("hpe,hme->hpm", q, k) / np.sqrt(q.shape[-1])
    seen = visible_keys(wl)
    if np.all(seen == wl.m):
        return float(s.std(axis=-1).mean())
    # a causal row's spread over the keys it sees (a row of one key has none)
    vis = np.arange(wl.m)[None, :] < seen[:, None]
    mu = np.where(vis, s, 0.0).sum(-1) / seen
    var = np.where(vis, (s - mu[..., None]) ** 2, 0.0).sum(-1) / seen
    return float(np.sqrt(var).mean())


def rtl_arch(cfg: SpattenFx) -> Any:
    """The spatten-rtl arch at the pipeline RTL's parameters: lanes multipliers in Q x K and prob x V, S = lanes /
    min_d softmax lanes and top-k comparators, and its longest row (max_n sets the softmax's depth)."""
    from attnforge.sim.specs.arch import load_arch

    return load_arch("spatten-rtl", {"spatten.qk_multipliers": cfg.lanes, "spatten.pv_multipliers": cfg.lanes,
                                     "spatten.softmax_lanes": cfg.s, "spatten.topk_comparators": cfg.s,
                                     "spatten.pipeline_max_keys": cfg.max_n})


#: Most distinct row lengths the analytical side charges one by one: a longer causal prompt is split into this many
#: runs of neighbouring positions, each charged its mean length (the costs are near linear in the length, so the
#: sum moves by well under 1%; the top-k's expectation costs ~10 ms per distinct length).
KEY_GROUPS = 64


def _key_groups(seen: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row length, positions with it): every distinct length, or :data:`KEY_GROUPS` runs of positions."""
    n, count = np.unique(seen, return_counts=True)
    if n.size <= KEY_GROUPS:
        return n.astype(np.float64), count
    runs = np.array_split(np.sort(seen), KEY_GROUPS)
    return np.array([float(np.round(r.mean())) for r in runs]), np.array([r.size for r in runs])


def analytical_workload_cycles(wl: Any, arch: Any, cfg: SpattenFx, *, v_ratio: float, refetch_rate: float,
                               score_std: float) -> dict[str, float]:
    """The analytical model's module composition (:func:`attnforge.sim.spatten.occupancy.job_costs`) on the same
    one-layer job set :func:`pipeline_workload_cycles` runs: every query of every head, each with the keys its
    position sees (:func:`visible_keys`), no token or head pruning, the RTL's MSB/LSB split, with the
    data-dependent inputs (LSB refetch rate, score spread) measured on the workload's tensors as the golden model
    sees them. Returns compute, memory and total cycles."""
    from attnforge.sim.spatten.occupancy import job_costs, port_bytes_per_cycle

    n, count = _key_groups(visible_keys(wl))
    kv = np.maximum(1.0, np.round((1.0 - v_ratio) * n))
    jc = job_costs(arch, count=count * wl.heads * wl.batch, keys=n, values=kv, d=wl.e,
                   k_bits=cfg.msb_bits, lsb_bits=cfg.lsb_bits, refetch=refetch_rate, v_bits=cfg.word_bits,
                   q_bits=cfg.word_bits, keys_fetched=n, values_fetched=kv,
                   topk_parallelism=arch.spatten.topk_comparators, span=float(wl.m), score_std=(score_std,))
    compute = float(max(np.sum(v) for v in jc.phase_work().values()))
    rate = np.minimum(arch.dram_bytes_per_cycle * jc.dram_efficiency, port_bytes_per_cycle(arch))
    memory = float(np.sum(jc.dram_bytes / rate))
    return {"compute_cycles": compute, "memory_cycles": memory, "cycles": max(compute, memory)}


def agreement_table(cases: tuple[tuple[int, float, float], ...] = ((128, 0.0, 0.1), (128, 0.5, 0.1), (256, 0.8, 0.02),
                                                                   (64, 0.25, 0.5)), rows: int = 96) -> str:
    """Analytical (spatten-rtl) against the exact cycle model on BERT-Base layers of seeded tensors: one line per
    (keys, V ratio, threshold); ``python -m attnforge.sim.spatten.cycle_run`` prints it (docs/spatten.md)."""
    from attnforge.workloads import Workload, get_model

    lines = [f"{'keys':>5} {'V ratio':>7} {'thr':>5} {'refetch':>7} {'cycle model':>12} {'analytical':>12} {'dev':>7}"]
    for n, vr, thr in cases:
        wl = Workload(model=get_model("bert-base"), batch=1, p=n, m=n, seed=0)
        cfg = SpattenFx(lanes=512, min_d=64, max_d=64, max_n=n)
        cyc = pipeline_workload_cycles(wl, cfg, threshold=thr, v_ratio=vr, rows=rows)
        an = analytical_workload_cycles(wl, rtl_arch(cfg), cfg, v_ratio=vr,
                                        refetch_rate=cyc["refetch_rate"], score_std=workload_score_std(wl))
        lines.append(f"{n:>5} {vr:>7} {thr:>5} {cyc['refetch_rate']:>7.2f} {cyc['cycles']:>12,} "
                     f"{an['cycles']:>12,.0f} {an['cycles'] / cyc['cycles'] - 1:>+7.1%}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(agreement_table())
