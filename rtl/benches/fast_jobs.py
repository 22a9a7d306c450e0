"""Fastbench jobs built from the golden models (kept with the benches: the verification harness may read the
models, the RTL package may not). Each returns the job and the expected output beats, for a bit-exact check."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from attnforge.rtl.fastbench import FastJob
from attnforge.sim.contract import designs as contract
from attnforge.sim.fusemax.cycle_model import engine_run_cycles
from attnforge.sim.fusemax.golden import FixedPointConfig, attention_fx, quantize_attention, workload_head
from attnforge.sim.fusemax.tile_jobs import head_beats


def fusemax_tile_job(rows: int = 4, cols: int = 4, e: int = 8, f: int = 8, max_keys: int = 256, queries: int = 64,
                     keys: int = 256, workload: str = "bert-base", seed: int = 0, p_valid: float = 1.0,
                     p_ready: float = 1.0) -> tuple[FastJob, dict[str, list[int]], int]:
    """Every output tile of one head (``queries`` x ``keys``): the job, the golden output beats, and the cycles
    the exact cycle model predicts for the whole run at full rate (:func:`engine_run_cycles`, tiles back to back),
    plus one because the fastbench counts both end cycles."""
    params = {"rows": rows, "cols": cols, "e": e, "f": f, "max_keys": max_keys}
    fx = FixedPointConfig(e=e, f=f, rows=rows, max_keys=max_keys)
    q, k, v = workload_head(workload, queries, keys, e, f, seed=seed)
    qa = quantize_attention(q, k, v, fx)
    c = contract.fusemax_tile(**params)
    hb = head_beats(qa, fx, cols)
    tiles = len(hb.cfg)
    qpad = np.zeros((tiles * cols, e), dtype=np.int64)
    qpad[:queries] = qa.q
    out, _ = attention_fx(replace(qa, q=qpad), fx)
    expect = [c["o"].pack([int(x) for x in out[t * cols:(t + 1) * cols, i]]) for t in range(tiles) for i in range(f)]
    ins = {"cfg": hb.cfg, "q": hb.q, "k": hb.k, "v": hb.v}
    job = FastJob("fusemax-tile", params, ins, {"o": len(expect)}, p_valid, p_ready, seed + 1, f"{workload} head")
    return job, {"o": expect}, engine_run_cycles(rows, cols, e, f, [hb.n_tiles] * tiles, max_keys) + 1
