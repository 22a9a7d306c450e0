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


# ---------------------------------------------------------------- SpAtten blocks: refusal, then a good job

def _fx_params(lanes: int, min_d: int, max_d: int, max_n: int) -> dict[str, int]:
    return {"lanes": lanes, "min_d": min_d, "max_d": max_d, "max_n": max_n}


def spatten_refusal_job(design: str, seed: int = 0, **params: int) -> tuple[FastJob, dict[str, list[int]], int]:
    """One refused job of ``design`` (qk, softmax, progquant, pv) followed at once by a good one, from the golden
    and cycle models: the job, the expected beats of every output stream, and the exact cycles of the run (the
    fastbench counts both end handshakes). The good job's answer proves the block went back to idle."""
    from attnforge.sim.contract.spatten_fx import SpattenFx
    from attnforge.sim.spatten import cycle_model as cm
    from attnforge.sim.spatten import golden as g

    p = _fx_params(**{"lanes": 16, "min_d": 4, "max_d": 8, "max_n": 64, **params})
    cfg = SpattenFx(**p)
    rng = np.random.default_rng(seed)
    n, d = cfg.max_n - 3, cfg.max_d
    q, k = rng.integers(-2048, 2048, d), rng.integers(-2048, 2048, (n, d))
    over = [cfg.s] * (cfg.max_n // cfg.s) + [cfg.max_n % cfg.s + 1]  # one entry past max_n
    if design == "qk":
        bq, bs, _ = cm.qk_refused_job(0, cfg.max_d.bit_length() - 1, cfg)
        ins = {"q": [bq, cm.qk_q_beat(q, n, d, cfg)], "k": cm.k_beats(k, cfg)}
        out = {"s": bs + cm.row_words(g.qk(q, k, cfg).tolist(), cfg.score_bits, cfg)}
        cycles = 3 + cm.qk_cycles(n, d, cfg)  # the good q beat right after the bad one, its keys the cycle after
    elif design == "softmax":
        s = g.qk(q, k, cfg).tolist()
        bi, bo, bc = cm.softmax_refused_row(cm.bad_row(over, cfg, rng, 10), 1 << 15, 30, cfg)
        ins = {"i": bi + cm.softmax_in_words(s, 1 << 15, 30, cfg)}
        out = {"o": bo + cm.softmax_out_words(s, 1 << 15, 30, cfg)}
        cycles = bc + 1 + cm.softmax_cycles(n, cfg) + 1  # the good row starts the cycle after the error beat
    elif design == "progquant":
        probs = g.softmax(g.qk(q, k, cfg), 1 << 15, 30, cfg).probs
        bi, bo, _ = cm.decision_refused_row(cm.bad_row([cfg.s, 0], cfg, rng, 11, signed=False), 100, cfg)
        ins = {"i": [], "p": bi + cm.decision_in_words(probs.tolist(), 100, cfg)}
        out = {"o": [], "d": bo + [cm.decision_word(*g.decide(probs, 100), cfg)]}
        cycles = len(bi) + cm.decision_cycles(n, cfg) + 1  # pipelined: the good row right behind the bad one
    elif design == "pv":
        probs = rng.integers(0, 64, n)
        v = rng.integers(-2048, 2048, (n, d))
        bi, bo, _ = cm.pv_refused_job(cm.bad_row(over, cfg, rng, 11, signed=False), v[:cfg.s], cfg)
        good = cm.pv_in_words(probs.tolist(), v, cfg)
        ins, out = {"i": bi + good}, {"o": bo + [cm.pv_out_word(g.pv(probs, v, cfg), cfg)]}
        cycles = len(bi) + cm.pv_cycles(len(good), cfg) + 1
    else:
        raise ValueError(f"no refusal job for {design!r}")
    job = FastJob(design, p, ins, {k_: len(v_) for k_, v_ in out.items()}, seed=seed + 1, label=f"{design} refusal")
    return job, out, cycles


def importance_job(seed: int = 0, layers: int = 2, **params: int) -> tuple[FastJob, dict[str, list[int]], int]:
    """Cascade pruning's bookkeeping for ``layers`` layers of one query per head: every head's probabilities into
    the kept tokens and its output into its head, a token read-out (the top-k's input) per layer, bad jobs between
    them; exact cycles: jobs run one after another, each starting the cycle after the previous answer."""
    from attnforge.sim.contract.spatten_fx import ImportanceCfg, SpattenFx
    from attnforge.sim.spatten import importance_golden as ig

    p = {"lanes": 16, "min_d": 4, "max_d": 8, "max_n": 64, "max_heads": 12, "max_queries": 64, "max_layers": 6,
         **params}
    cfg = ImportanceCfg(SpattenFx(p["lanes"], p["min_d"], p["max_d"], p["max_n"]), p["max_heads"], p["max_queries"],
                        p["max_layers"])
    rng = np.random.default_rng(seed)
    state = ig.ImportanceState(cfg)
    kept = list(range(cfg.fx.max_n))
    jobs = [ig.clear()]
    for _ in range(layers):
        for h in range(cfg.max_heads):
            jobs.append(ig.add_tokens(kept, rng.integers(0, 1 << cfg.fx.prob_frac, len(kept)).tolist()))
            jobs.append(ig.add_head(h, rng.integers(-(1 << 15), 1 << 15, cfg.fx.max_d).tolist()))
        jobs += [ig.ImpJob(ig.OPS["read_tokens"], n=len(kept), k=0, idx=tuple(kept)), ig.read_tokens(kept, len(kept) // 2),
                 ig.read_heads(list(range(cfg.max_heads)), cfg.max_heads - 1)]
        kept = kept[::2]
    ins: list[int] = []
    out: dict[str, list[int]] = {"o": [], "r": []}
    cycles = 0
    for j in jobs:
        res = state.run(j)
        ins += ig.input_beats(j, cfg)
        out["o"] += res.o
        out["r"].append(res.r)
        cycles += res.cycles + 1
    job = FastJob("importance", p, {"i": ins}, {k: len(v) for k, v in out.items()}, seed=seed + 1, label="importance")
    return job, out, cycles
