"""Shared stimulus for the SpAtten datapath benches: the configuration, job vectors and the head dimensions the
adder tree supports, all from sim.spatten.fx (the one golden model)."""

from __future__ import annotations

import numpy as np
from tb_harness import config

from sim.spatten.fx import QueryJob, SpattenFx, workload_jobs


def fx_cfg() -> SpattenFx:
    p = config()["params"]
    return SpattenFx(lanes=p["lanes"], min_d=p["min_d"], max_d=p["max_d"], max_n=p["max_n"])


def head_dims(cfg: SpattenFx) -> list[int]:
    d, out = cfg.min_d, []
    while d <= cfg.max_d:
        out.append(d)
        d *= 2
    return out


def jobs_for_case(seed: int) -> list[QueryJob]:
    """Workload jobs for every (workload, shape) of the case: shape = (jobs, n); D cycles through the supported
    head dimensions, kept fraction and threshold vary so both progressive-quant outcomes occur."""
    cfg, c = fx_cfg(), config()
    out = []
    for wl in c["workloads"]:
        for count, n in c["shapes"]:
            for i, d in enumerate(head_dims(cfg)):
                for thr in (0.05, 0.6):
                    jobs = workload_jobs(wl, min(n, cfg.max_n), d, max(1, count // 2), cfg, kv_frac=(0.3, 1.0)[i % 2],
                                         threshold=thr, seed=seed)
                    out += [j for j, _ in jobs]
    return out


def random_job(rng: np.random.Generator, cfg: SpattenFx, n: int | None = None, d: int | None = None,
               narrow: bool = False) -> QueryJob:
    dims = head_dims(cfg)
    d = d or int(rng.choice(dims))
    n = n or int(rng.integers(1, cfg.max_n + 1))
    hi = 3 if narrow else (1 << (cfg.word_bits - 1)) - 1
    q = rng.integers(-hi - 1, hi + 1, d)
    k = rng.integers(-hi - 1, hi + 1, (n, d))
    v = rng.integers(-(1 << (cfg.v_bits - 1)), 1 << (cfg.v_bits - 1), (n, d))
    aq = int(rng.integers(1 << 15, 1 << 16))
    ash = int(rng.integers(20, 40))
    return QueryJob(q, k, v, int(rng.integers(1, n + 1)), int(rng.integers(0, (1 << cfg.prob_frac) + 1)), aq, ash)
