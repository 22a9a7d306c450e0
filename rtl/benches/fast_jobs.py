"""Fastbench jobs built from the golden models (kept with the benches: the verification harness may read the
models, the RTL package may not). Each returns the job and the expected output beats, for a bit-exact check."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from attnforge.rtl.fastbench import FastJob
from attnforge.sim.contract import designs as contract
from attnforge.sim.fusemax.cycle_model import tile_schedule
from attnforge.sim.fusemax.golden import FixedPointConfig, attention_fx, quantize_attention, workload_head


def fusemax_tile_job(rows: int = 4, cols: int = 4, e: int = 8, f: int = 8, max_keys: int = 256, queries: int = 64,
                     keys: int = 256, workload: str = "bert-base", seed: int = 0, p_valid: float = 1.0,
                     p_ready: float = 1.0) -> tuple[FastJob, dict[str, list[int]], int]:
    """Every output tile of one head (``queries`` x ``keys``): the job, the golden output beats, and the cycles
    the exact cycle model predicts for the whole run at full rate: tiles back to back, each the model's
    cfg-to-last-output cycles plus one (the next cfg handshake lands the cycle after the last output beat, and
    the fastbench counts both end cycles)."""
    params = {"rows": rows, "cols": cols, "e": e, "f": f, "max_keys": max_keys}
    fx = FixedPointConfig(e=e, f=f, rows=rows, max_keys=max_keys)
    q, k, v = workload_head(workload, queries, keys, e, f, seed=seed)
    qa = quantize_attention(q, k, v, fx)
    c = contract.fusemax_tile(**params)
    n, tiles = keys // rows, math.ceil(queries / cols)
    qpad = np.zeros((tiles * cols, e), dtype=np.int64)
    qpad[:queries] = qa.q
    cfg = c["cfg"].pack({"n_tiles": n, "alpha": {"alpha_q": qa.alpha_q, "alpha_sh": qa.alpha_sh}})
    ins: dict[str, list[int]] = {"cfg": [], "q": [], "k": [], "v": []}
    for t in range(tiles):
        ins["cfg"].append(cfg)
        ins["q"] += [c["q"].pack([int(x) for x in qpad[t * cols:(t + 1) * cols, i]]) for i in range(e)]
        for j in range(n):
            ins["k"] += [c["k"].pack([int(x) for x in qa.k[j * rows:(j + 1) * rows, i]]) for i in range(e)]
            ins["v"] += [c["v"].pack([int(x) for x in qa.v[j * rows:(j + 1) * rows, i]]) for i in range(f)]
    out, _ = attention_fx(replace(qa, q=qpad), fx)
    expect = [c["o"].pack([int(x) for x in out[t * cols:(t + 1) * cols, i]]) for t in range(tiles) for i in range(f)]
    job = FastJob("fusemax-tile", params, ins, {"o": len(expect)}, p_valid, p_ready, seed + 1, f"{workload} head")
    return job, {"o": expect}, tiles * (tile_schedule(rows, cols, e, f, n, max_keys).total_cycles + 1)


def spatten_top_job(params: dict[str, int] | None = None, layers: int = 3, length: int = 24, seed: int = 0,
                    token_ratio: float = 0.4, head_ratio: float = 0.4, v_ratio: float = 0.3, threshold: float = 0.1,
                    latency: int = 8, outstanding: int = 4) -> tuple[FastJob, dict[str, list[int]], object]:
    """A small synthetic encoder (head dimension = max_d) through the whole-accelerator golden: the job (descriptors,
    memory image), the expected o and r beats, and the golden run."""
    from attnforge.rtl.registry import parse_params
    from attnforge.sim.contract.designs import _top
    from attnforge.sim.contract.memport import MemTiming
    from attnforge.sim.spatten import top_golden as tg
    from attnforge.sim.spatten.realdata import synthetic_inputs
    from attnforge.sim.specs.spatten_policy import Policy

    p = parse_params("spatten-top", params or {})
    t = _top(p)
    heads = t.max_heads
    enc, xs = synthetic_inputs(layers=layers, heads=heads, d_model=heads * t.fx.max_d, d_ff=4 * heads * t.fx.max_d,
                               lengths=(length,), seed=seed)
    pol = Policy(token_ratio=token_ratio, head_ratio=head_ratio, v_ratio=v_ratio, threshold=threshold)
    run = tg.forward(enc, xs[0], tg.schedule(pol, layers, heads, length, t.fx), t.fx)
    hw = tg.hw_run(run, t, length, heads)
    job = FastJob("spatten-top", p, {"desc": hw.desc}, {"o": len(hw.o), "r": len(hw.r)}, seed=seed + 1,
                  label=f"synthetic {layers} layers x {length} tokens", memories={"mem": hw.memory},
                  mem_timing={"mem": MemTiming(latency, outstanding, 1)})
    return job, {"o": hw.o, "r": hw.r}, run


#: the whole-MiniLM instance: head dimension 32 (one key per beat), 12 heads, 128 tokens, 8 scores per beat
MINILM_TOP = {"lanes": 32, "min_d": 4, "max_d": 32, "max_n": 128, "max_heads": 12, "max_layers": 6, "addr_bits": 20}


def spatten_top_minilm_job(token_ratio: float = 0.3, head_ratio: float = 0.2, v_ratio: float = 0.3,
                           threshold: float = 0.1, latency: int = 20,
                           outstanding: int = 8) -> tuple[FastJob, dict[str, list[int]], object, object]:
    """All 6 MiniLM layers on the >= 128-token text (the ``real`` extra): the job, the expected beats, the golden
    run and its float comparison (numpy pruned model, PyTorch unpruned)."""
    from attnforge.rtl.registry import parse_params
    from attnforge.sim.contract.designs import _top
    from attnforge.sim.contract.memport import MemTiming
    from attnforge.sim.spatten import top_golden as tg
    from attnforge.sim.specs.spatten_policy import Policy

    p = parse_params("spatten-top", MINILM_TOP)
    t = _top(p)
    enc, x, ids = tg.text_input()
    x, ids = x[:t.fx.max_n], ids[:t.fx.max_n]
    pol = Policy(token_ratio=token_ratio, head_ratio=head_ratio, v_ratio=v_ratio, threshold=threshold)
    run = tg.forward(enc, x, tg.schedule(pol, len(enc.layers), enc.heads, x.shape[0], t.fx), t.fx)
    cmp = tg.compare(run, enc, x, pol, ids)
    hw = tg.hw_run(run, t, x.shape[0], enc.heads)
    job = FastJob("spatten-top", p, {"desc": hw.desc}, {"o": len(hw.o), "r": len(hw.r)}, seed=1,
                  label=f"minilm 6 layers x {x.shape[0]} tokens", memories={"mem": hw.memory},
                  mem_timing={"mem": MemTiming(latency, outstanding, 1)})
    return job, {"o": hw.o, "r": hw.r}, run, cmp
