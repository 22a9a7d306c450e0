"""Fastbench jobs built from the golden models (kept with the benches: the verification harness may read the
models, the RTL package may not). Each returns the job and the expected output beats, for a bit-exact check."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from attnforge.rtl.fastbench import FastJob
from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.memport import MemTiming
from attnforge.sim.fusemax.cycle_model import engine_run_cycles
from attnforge.sim.fusemax.golden import (
    FixedPointConfig,
    QuantizedAttention,
    alpha_for,
    attention_fx,
    quantize_attention,
    visible_keys,
    workload_head,
)
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


@dataclass
class TopLayer:
    """One fusemax-top layer: the descriptor word, the memory image (word address -> word), the golden output beats
    in stream order, the per-head quantized operands and float tensors (for the float-error check)."""

    desc: int
    image: dict[int, int]
    expect: list[int]
    heads: list[QuantizedAttention]
    floats: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    fx: FixedPointConfig
    params: dict[str, int]
    vis: np.ndarray | None = None  #: [P, M] keys each query sees (causal layers; None: all)


def quantize_layer(floats: list[tuple[np.ndarray, np.ndarray, np.ndarray]], fx: FixedPointConfig
                   ) -> list[QuantizedAttention]:
    """Per-tensor int8 over the whole layer (every head shares one scale per tensor), because one descriptor
    carries one exponent constant for all heads."""
    qa = quantize_attention(*(np.stack([f[i] for f in floats]) for i in range(3)), fx)
    aq, ash = alpha_for(qa.scale_q, qa.scale_k, fx.e, fx)
    return [QuantizedAttention(qa.q[h], qa.k[h], qa.v[h], qa.scale_q, qa.scale_k, qa.scale_v, aq, ash)
            for h in range(len(floats))]


def top_layer(params: dict[str, int], heads: int, p: int, m: int, floats: list[tuple[np.ndarray, ...]] | None = None,
              workload: str = "bert-base", seed: int = 0, bases: tuple[int, int, int] | None = None,
              causal: bool = False) -> TopLayer:
    """The memory image and descriptor of one layer laid out as docs/fusemax.md §fusemax-top says (Q tiles padded
    with zero queries, the last K/V tile with zero keys), and the golden output: :func:`attention_fx` per head on the
    padded queries; causal: query ``i`` at position ``M - P + i`` (diagonal ``M - P``), as the top sets it."""
    rows, cols, d = params["rows"], params["cols"], params["d"]
    fx = FixedPointConfig(e=d, f=d, rows=rows, max_keys=params["max_keys"])
    c = contract.fusemax_top(**params)
    if floats is None:
        floats = [workload_head(workload, p, m, d, d, seed=seed, head=h) for h in range(heads)]
    qas = quantize_layer([tuple(f) for f in floats], fx)
    tq, tk = math.ceil(p / cols), math.ceil(m / rows)
    q_base, k_base, v_base = bases or (0, heads * tq * d, heads * tq * d + heads * tk * d)
    image: dict[int, int] = {}
    expect: list[int] = []
    lane = contract.lanes("w", max(rows, cols), 8, True)
    for h, qa in enumerate(qas):
        qpad = np.zeros((tq * cols, d), dtype=np.int64)
        qpad[:p] = qa.q
        for t in range(tq):
            for e in range(d):
                image[q_base + (h * tq + t) * d + e] = _word(lane, qpad[t * cols:(t + 1) * cols, e])
        for j in range(tk):
            for e in range(d):
                image[k_base + (h * tk + j) * d + e] = _word(lane, qa.k[j * rows:(j + 1) * rows, e])
                image[v_base + (h * tk + j) * d + e] = _word(lane, qa.v[j * rows:(j + 1) * rows, e])
        out, _ = attention_fx(replace(qa, q=qpad), fx, causal, m - p)
        expect += [c["o"].pack([int(x) for x in out[t * cols:(t + 1) * cols, f]]) for t in range(tq) for f in range(d)]
    desc = c["desc"].pack({"heads": heads, "p": p, "m": m, "d": d, "causal": int(causal), "q_base": q_base,
                           "k_base": k_base,
                           "v_base": v_base, "alpha": {"alpha_q": qas[0].alpha_q, "alpha_sh": qas[0].alpha_sh}})
    return TopLayer(desc, image, expect, qas, [tuple(f) for f in floats], fx, dict(params),
                    visible_keys(p, m, True, m - p) if causal else None)


def _word(lane: contract.Array, values: np.ndarray) -> int:
    vals = [int(x) for x in values]
    return lane.pack(vals + [0] * (lane.count - len(vals)))


def fusemax_top_job(layer: TopLayer, timing: MemTiming, label: str = "") -> FastJob:
    """The fastbench job of one layer: the descriptor on ``desc``, the image in the HDL memory model on ``mem``,
    and every output beat plus the status beat collected on the HDL side."""
    words = [0] * (max(layer.image) + 1)
    for addr, w in layer.image.items():
        words[addr] = w
    return FastJob("fusemax-top", dict(layer.params), {"desc": [layer.desc]}, {"o": len(layer.expect), "st": 1, "perf": 1},
                   label=label, memories={"mem": words}, mem_timing={"mem": timing})


def minilm_layers(min_tokens: int = 128, multiple: int = 1) -> list[list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Per layer of all-MiniLM-L6-v2 (the ``real`` extra), per head: float Q, K, V [L, 32] of one real text of at
    least ``min_tokens`` tokens (the package's evaluation sentences joined; its tokenizer truncates at 128, the
    model's max_seq_length), cut to a multiple of ``multiple`` tokens. Each layer's input is the previous layer's
    dense float output, so every layer sees real activations."""
    from attnforge.sim.spatten.algorithm import gelu
    from attnforge.sim.spatten.realdata import SENTENCES, _layer_norm, real_inputs

    texts = tuple(" ".join(SENTENCES[j % len(SENTENCES)] for j in range(i + 1)) for i in range(2 * len(SENTENCES)))
    enc, xs = real_inputs(texts)  # the weights load once; the first text long enough is the one used
    x = next((x for x in xs if x.shape[0] // multiple * multiple >= min_tokens), xs[-1])
    n = x.shape[0] // multiple * multiple  # MiniLM's tokenizer stops at 128 tokens, its max_seq_length
    if n < min_tokens:
        raise ValueError(f"the longest text has {x.shape[0]} tokens, fewer than {min_tokens}")
    h, dh, out = np.asarray(x[:n], dtype=np.float64), enc.d_head, []
    for lw in enc.layers:
        q, k, v = ((h @ w + b).reshape(n, enc.heads, dh).transpose(1, 0, 2)
                   for w, b in ((lw.wq, lw.bq), (lw.wk, lw.bk), (lw.wv, lw.bv)))
        out.append([(q[j], k[j], v[j]) for j in range(enc.heads)])
        s = q @ k.transpose(0, 2, 1) / math.sqrt(dh)
        p = np.exp(s - s.max(axis=-1, keepdims=True))
        attn = ((p / p.sum(axis=-1, keepdims=True)) @ v).transpose(1, 0, 2).reshape(n, enc.heads * dh)
        h = _layer_norm(h + attn @ lw.wo + lw.bo, lw.ln1_g, lw.ln1_b, enc.eps)
        h = _layer_norm(h + gelu(h @ lw.w1 + lw.b1) @ lw.w2 + lw.b2, lw.ln2_g, lw.ln2_b, enc.eps)
    return out


def fusemax_top_rows(case: Any, sim: str) -> list[dict[str, Any]]:
    """A fusemax-top regress case on the fastbench (stimulus and memory on the HDL side; the raw driver, the
    fastest): per layer, bit exact vs the golden, cycles vs the exact cycle model, the analytical model configured
    as the instance, float error vs the float reference within the golden bound. ``workloads`` may name
    ``minilm-real`` (every MiniLM layer on a real text, ``shapes`` ignored); else (heads, P, M) per shape."""
    import time
    from pathlib import Path

    from attnforge.rtl.fastbench import run_raw
    from attnforge.rtl.regress import cache_dir
    from attnforge.sim.fusemax.golden import dequantize_output, error_vs_float
    from attnforge.sim.fusemax.top_cycle_model import analytical_cycles, top_schedule

    prm, timing = dict(case.params), MemTiming(**case.extra.get("mem", {})).validate()
    rows: list[dict[str, Any]] = []
    for label, layer, p, m in _top_layers(case, prm):
        t0 = time.perf_counter()
        shape = "-".join(f"{k}{v}" for k, v in sorted(prm.items())) + f"-{len(layer.heads)}x{p}x{m}"
        # one folder per instance and shape: the built simulator reads its memories at run time, so every layer
        # of that shape reuses it
        res = run_raw(fusemax_top_job(layer, timing, label), sim, Path(cache_dir().parent / "fastbench-runs" / shape))
        sched = top_schedule(prm["rows"], prm["cols"], prm["d"], len(layer.heads), p, m, timing, prm["max_keys"])
        outs = top_outputs(layer, res.outputs["o"], p)
        reps = [error_vs_float(dequantize_output(o, qa, layer.fx), *fl, layer.vis)
                for o, qa, fl in zip(outs, layer.heads, layer.floats, strict=True)]
        worst = max(reps, key=lambda r: r.max_abs_rel_vmax)
        bad = sum(a != b for a, b in zip(res.outputs["o"], layer.expect, strict=True))
        perf = contract.fusemax_top(**prm)["perf"].unpack(res.outputs["perf"][0])
        rtl_cycles = res.cycles - 2  # fastbench: desc handshake to the perf beat (one after the last output), inclusive
        rows.append({
            "design": case.design, "workload": label, "params": prm, "heads": len(layer.heads), "p": p, "m": m,
            "mem": vars(timing), "rtl_cycles": rtl_cycles, "sim_cycles": sched.total_cycles,
            "analytical_cycles": analytical_cycles(prm["rows"], prm["cols"], prm["d"], prm["max_keys"],
                                                   len(layer.heads), p, m, timing),
            "mismatched_beats": bad, "max_abs_error": 0 if bad == 0 else None, "status": res.outputs["st"][0],
            "perf_cycles": perf["cycles"], "mac_cycles": perf["mac_cycles"],
            "mac_utilization": perf["mac_cycles"] / perf["cycles"], "model_utilization": sched.utilization,
            "stall_cycles": sched.stall_cycles,
            "float_max_abs_error": worst.max_abs, "float_max_abs_rel_vmax": worst.max_abs_rel_vmax,
            "float_bound": worst.bound, "cycles_simulated": res.total_cycles, "wall_s": res.seconds,
            "case_s": time.perf_counter() - t0, "bench": "fastbench-raw",
            "passed": bool(bad == 0 and rtl_cycles == sched.total_cycles == perf["cycles"] and res.outputs["st"] == [0]
                           and perf["mac_cycles"] == sched.mac_cycles
                           and all(r.max_abs <= r.bound for r in reps)),
        })
    return rows


def _top_layers(case: Any, prm: dict[str, int]) -> Any:
    """(label, layer, P, M) for every layer a case names."""
    for wl in case.workloads:
        if wl == "minilm-real":
            for li, heads in enumerate(minilm_layers(128, prm["rows"])):
                n = heads[0][0].shape[0]
                yield f"minilm-real:L{li}:{n}tok", top_layer(prm, len(heads), n, n, floats=heads), n, n
            continue
        for heads, p, m in case.shapes:
            yield f"{wl}:{heads}x{p}x{m}", top_layer(prm, heads, p, m, workload=wl, seed=case.seed), p, m


def top_outputs(layer: TopLayer, beats: list[int], p: int) -> list[np.ndarray]:
    """Output beats -> per head [P, d] (padded query lanes dropped)."""
    c = contract.fusemax_top(**layer.params)
    cols, d = layer.params["cols"], layer.params["d"]
    tq = -(-p // cols)
    outs = []
    for h in range(len(layer.heads)):
        out = np.zeros((tq * cols, d), dtype=np.int64)
        for i, word in enumerate(beats[h * tq * d:(h + 1) * tq * d]):
            t, f = divmod(i, d)
            out[t * cols:(t + 1) * cols, f] = c["o"].unpack(word)
        outs.append(out[:p])
    return outs


def spatten_top_job(params: dict[str, int] | None = None, layers: int = 3, length: int = 24, seed: int = 0,
                    token_ratio: float = 0.4, head_ratio: float = 0.4, v_ratio: float = 0.3, threshold: float = 0.1,
                    latency: int = 8, outstanding: int = 4, d: int | None = None,
                    junk: int | None = None) -> tuple[FastJob, dict[str, list[int]], object]:
    """A small synthetic encoder (head dimension ``d``, default max_d) through the whole-accelerator golden: the
    job (descriptors, memory image; ``junk``: a seed for random codes in the rows' lanes past ``d``), the expected
    o and r beats, and the golden run."""
    from attnforge.rtl.registry import parse_params
    from attnforge.sim.contract.designs import _top
    from attnforge.sim.contract.memport import MemTiming
    from attnforge.sim.spatten import top_golden as tg
    from attnforge.sim.spatten.realdata import synthetic_inputs
    from attnforge.sim.specs.spatten_policy import Policy

    p = parse_params("spatten-top", params or {})
    t = _top(p)
    heads, d = t.max_heads, d or t.fx.max_d
    enc, xs = synthetic_inputs(layers=layers, heads=heads, d_model=heads * d, d_ff=4 * heads * d,
                               lengths=(length,), seed=seed)
    pol = Policy(token_ratio=token_ratio, head_ratio=head_ratio, v_ratio=v_ratio, threshold=threshold)
    run = tg.forward(enc, xs[0], tg.schedule(pol, layers, heads, length, t.fx), t.fx)
    hw = tg.hw_run(run, t, length, heads, junk=junk)
    dims = "" if d == t.fx.max_d else f", head dimension {d}"
    job = FastJob("spatten-top", p, {"desc": hw.desc}, {"o": len(hw.o), "r": len(hw.r)}, seed=seed + 1,
                  label=f"synthetic {layers} layers x {length} tokens{dims}", memories={"mem": hw.memory},
                  mem_timing={"mem": MemTiming(latency, outstanding, 1)})
    return job, {"o": hw.o, "r": hw.r}, run


#: the whole-MiniLM instance: head dimension 32 (one key per beat), 12 heads, 128 tokens, 8 scores per beat
MINILM_TOP = {"lanes": 32, "min_d": 4, "max_d": 32, "max_n": 128, "max_heads": 12, "max_layers": 6, "addr_bits": 20}


def spatten_top_minilm_job(token_ratio: float = 0.3, head_ratio: float = 0.2, v_ratio: float = 0.3,
                           threshold: float = 0.1, latency: int = 20, outstanding: int = 8,
                           params: dict[str, int] | None = None) -> tuple[FastJob, dict[str, list[int]], object, object]:
    """All 6 MiniLM layers on the >= 128-token text (the ``real`` extra) on the instance ``params`` (default
    :data:`MINILM_TOP`; e.g. GPT-2's max_d = 64 instance runs MiniLM's 32-dim heads with its upper lanes zeroed):
    the job, the expected beats, the golden run and its float comparison (numpy pruned model, PyTorch
    unpruned)."""
    from attnforge.rtl.registry import parse_params
    from attnforge.sim.contract.designs import _top
    from attnforge.sim.contract.memport import MemTiming
    from attnforge.sim.spatten import top_golden as tg
    from attnforge.sim.specs.spatten_policy import Policy

    p = parse_params("spatten-top", params or MINILM_TOP)
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


def spatten_top_decode_job(params: dict[str, int] | None, layers: list, seed: int = 0, latency: int = 8,
                           outstanding: int = 4, label: str = "", d: int | None = None,
                           junk: int | None = None,
                           later: list[list] | None = None) -> tuple[FastJob, dict[str, list[int]], object]:
    """A generation step (``queries = 1``) on seeded tensors (:func:`top_golden.decode_steps`, head dimension
    ``d``, default max_d) for the layer descriptors ``layers`` (:class:`top_golden.LayerCfg`), then the iterations
    ``later`` with the importance carried: the job (``junk`` as in :func:`spatten_top_job`), the expected o and r
    beats, the golden run."""
    from attnforge.rtl.registry import parse_params
    from attnforge.sim.contract.designs import _top
    from attnforge.sim.spatten import top_golden as tg

    p = parse_params("spatten-top", params or {})
    t = _top(p)
    iterations = [layers, *(later or [])]
    heads = layers[0].heads
    n = max([layers[0].tokens] + [it[0].restart for it in iterations[1:]])
    run = tg.decode_steps(iterations, heads, d or t.fx.max_d, t.fx, seed=seed)
    hw = tg.hw_run(run, t, n, heads, junk=junk)
    steps = f"{len(iterations)} iterations x " if later else ""
    job = FastJob("spatten-top", p, {"desc": hw.desc}, {"o": len(hw.o), "r": len(hw.r)}, seed=seed + 1,
                  label=label or f"decode {steps}{len(layers)} layers x {n} tokens", memories={"mem": hw.memory},
                  mem_timing={"mem": MemTiming(latency, outstanding, 1)})
    return job, {"o": hw.o, "r": hw.r}, run


#: the pruned, quantized GPT-2-Small WikiText-2 trace SpAtten's flow wrote (packaged with attnforge.workloads)
GPT2_TRACE = "summary-gpt2-small-wikitext2-per8.csv"


def spatten_top_gpt2_job(iteration: int = 1, params: dict[str, int] | None = None, first_layer: int = 0,
                         latency: int = 20, outstanding: int = 8,
                         iterations: int = 1) -> tuple[FastJob, dict[str, list[int]], object, list]:
    """Generation iterations of the GPT-2-Small trace (:func:`top_golden.trace_layers`) from ``first_layer`` on
    (the first iteration's kept tokens become its first descriptor's), on GPT-2-Small's shape with seeded tensors:
    the job, the expected beats, the golden run and the trace's descriptors. Each later iteration carries the
    importance (its context one token longer, the newest token kept in every layer: :func:`carried`)."""
    from importlib import resources

    from attnforge.rtl.registry import parse_params
    from attnforge.rtl.regress import TOP_GPT2
    from attnforge.sim.contract.designs import _top
    from attnforge.sim.spatten import top_golden as tg

    p = params or TOP_GPT2
    t = _top(parse_params("spatten-top", p))
    trace = resources.files("attnforge.workloads").joinpath("traces", GPT2_TRACE)
    layers = tg.trace_layers(str(trace), iteration, t.fx)[first_layer:]
    later = [carried(tg.trace_layers(str(trace), iteration + i, t.fx)[first_layer:], layers[0].tokens + i)
             for i in range(1, iterations)]
    its = f"iterations {iteration}-{iteration + iterations - 1}" if iterations > 1 else f"iteration {iteration}"
    job, exp, run = spatten_top_decode_job(p, layers, seed=iteration, latency=latency, outstanding=outstanding,
                                           label=f"gpt2-small decode, {its}, layers "
                                                 f"{first_layer}-{first_layer + len(layers) - 1}", later=later)
    return job, exp, run, [*layers, *(lc for it in later for lc in it)]


def carried(layers: list, context: int) -> list:
    """A later generation iteration's descriptors: its first restarts from ``context`` tokens with the importance
    carried, every later one keeps the newest token (the query) beside its top-k (the top's ``carry``)."""
    import dataclasses

    return [dataclasses.replace(lc, restart=context) if i == 0 else dataclasses.replace(lc, keep_last=True)
            for i, lc in enumerate(layers)]


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
