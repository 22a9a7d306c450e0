"""SpAtten as a schedule builder: pruned, quantized, one-query-at-a-time pipeline -> the shared engine's Schedule.

Why a builder and not a separate simulator: the engine (sim/analytical/engine.py) already turns stages of per-array work
plus DRAM bytes into cycles and action counts into energy for every family; SpAtten only has to say what its
datapath does per layer. Per layer the builder works out, from the Policy (pruning ratios through the layer
schedule, bit widths, refetch rate), how many tokens and heads are alive, how many keys and values each query
touches and how many bytes come from DRAM, and hands :func:`attnforge.sim.spatten.occupancy.job_costs`' module occupancies
to one Stage per layer. Barriers (the end of a layer, where token/head top-k decide the next layer's fetches)
go to a "latency" stage. The Policy comes with the Scenario (its default is the Accelerator's ``policy``).
"""

from __future__ import annotations

import numpy as np

from attnforge.mappings.catalog import Accelerator
from attnforge.mappings.shape import Shape
from attnforge.sim.analytical.schedule import Actions, Num, Phase, Schedule, Stage
from attnforge.sim.spatten.algorithm import synthetic_refetch_rate
from attnforge.sim.spatten.occupancy import JobCost, job_costs
from attnforge.sim.spatten.pruning import HEAD_UNPRUNED_FRACTION, TOKEN_UNPRUNED_FRACTION, kept_counts, layer_ratios
from attnforge.sim.spatten.topk_algorithm import expected_topk_v
from attnforge.sim.specs.arch import Arch, SpattenArch
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.spatten_policy import QUERY_BITS, Policy, policy_for


def refetch_rate(pol: Policy, keys: Num, d: int) -> Num:
    """Fraction of rows that refetch LSBs: fixed by the policy, else measured by the golden model per key length."""
    if not (pol.quantize and pol.progressive and pol.k_lsb):
        return np.zeros_like(np.asarray(keys, dtype=np.float64))
    if pol.lsb_refetch_rate is not None:
        return np.full(np.shape(keys), pol.lsb_refetch_rate, dtype=np.float64)
    kk = np.asarray(keys, dtype=np.int64)
    out = np.zeros(kk.shape)
    for idx in np.ndindex(kk.shape):
        out[idx] = synthetic_refetch_rate(int(kk[idx]), d=d, msb=pol.k_msb, lsb=pol.k_lsb, threshold=pol.threshold)
    return out


def _layer_jobs(arch: SpattenArch, pol: Policy, *, keys: Num, heads: float, m: Num, p: Num, batch: Num, d: int,
                decode: bool, sram_tokens: float, par: int) -> tuple[Num, Num, Num, JobCost]:
    """One layer's query jobs: the V rows each keeps, how many jobs, the LSB refetch fraction, and their module
    occupancies and DRAM bytes (:func:`job_costs`)."""
    values = np.maximum(1.0, np.floor(keys * (1.0 - pol.v_ratio) + 1e-9))
    # Summarization: pruned tokens also leave as queries; generation keeps its one query per step.
    queries = p if decode else np.maximum(1.0, np.floor(p * keys / m + 1e-9))
    count = batch * heads * queries
    rho = refetch_rate(pol, keys, d)
    fetched_k = keys if pol.fetch_pruned else m
    fetched_v = values if pol.fetch_pruned else m
    if decode:
        reuse: Num = 1.0
        fetched_v_eff = fetched_v
    else:
        # K and V of a head are fetched once into their SRAMs and reused by every query, when they fit; V
        # is fetched whole (each query keeps different V), so local V pruning saves compute, not DRAM, here.
        reuse = np.where(fetched_k <= sram_tokens, queries, 1.0)
        fetched_v_eff = fetched_k
    jc = job_costs(
        arch, count=count, keys=keys, values=values, d=d,
        k_bits=pol.k_bits_static, lsb_bits=pol.k_lsb if pol.progressive else 0, refetch=rho,
        v_bits=pol.v_bits_fetched, q_bits=QUERY_BITS if pol.quantize else 12,
        keys_fetched=fetched_k, values_fetched=fetched_v_eff, topk_parallelism=par, kv_reuse=reuse, span=m,
    )
    return values, count, rho, jc


def build_spatten(acc: Accelerator, arch: Arch, shape: Shape, policy: Policy | None = None) -> Schedule:
    """Schedule of one attention pass over all layers of ``shape.model`` (prefill: P queries; decode: 1 per step)."""
    acc.check_arch(arch)
    assert isinstance(arch, SpattenArch)  # check_arch bound a SpAtten accelerator to a SpAtten arch
    if shape.tiles:
        raise SpecError("--tile", f"{acc.name} has no tile sizes to fix (its dataflow is one query at a time)")
    mdl = shape.model
    acc.check_model(mdl)
    pol = policy or shape.policy or policy_for(acc.policy or "auto", shape.causal or mdl.causal)
    d = mdl.d_head
    m = np.asarray(shape.m, dtype=np.float64)
    p = np.asarray(shape.p, dtype=np.float64)
    batch = np.asarray(shape.batch, dtype=np.float64)
    decode = shape.stage == "decode"
    par = int(pol.topk_parallelism or arch.spatten.topk_comparators)
    tok = kept_counts(m.astype(np.int64), layer_ratios(mdl.layers, pol.token_ratio, TOKEN_UNPRUNED_FRACTION, "token_ratio"))
    hk = kept_counts(mdl.heads, layer_ratios(mdl.layers, pol.head_ratio, HEAD_UNPRUNED_FRACTION, "head_ratio"))
    sram_tokens = arch.spatten.kv_sram_bytes / 2 / (d * 12 / 8)  # one half of the double-buffered K SRAM
    stages: list[Stage] = []
    busy: dict[str, Num] = {a: 0.0 for a in ("qk", "softmax", "topk", "pv")}
    useful: dict[str, Num] = {a: 0.0 for a in ("qk", "softmax", "pv")}
    actions = Actions()
    flops: Num = 0.0
    dense_flops: Num = 0.0
    lsb_bytes: Num = 0.0
    latency: Num = 0.0
    rows: Num = 0.0
    refetch_rows: Num = 0.0
    kept_tok: Num = 0.0
    kept_val: Num = 0.0
    total_bytes: Num = 0.0

    prev_keys = m
    prev_heads = mdl.heads
    for li in range(mdl.layers):
        keys = tok[li].astype(np.float64)
        heads = float(hk[li])
        values, count, rho, jc = _layer_jobs(arch, pol, keys=keys, heads=heads, m=m, p=p, batch=batch, d=d,
                                             decode=decode, sram_tokens=sram_tokens, par=par)
        # Barrier at the layer's start: the token/head top-k that decided this layer's survivors, then one
        # query's latency through the pipe (the last query of the layer drains before the next layer starts).
        tk_tok, cmp_tok = expected_topk_v(prev_keys.astype(np.int64), keys.astype(np.int64), par)
        tk_head, cmp_head = expected_topk_v(np.asarray(prev_heads), np.asarray(int(heads)), par)
        latency = latency + batch * (jc.latency + tk_tok + tk_head)
        stages.append(Stage(f"L{li:02d}", [Phase("pipeline", jc.phase_work())], jc.dram_bytes, jc.dram_efficiency))
        for a, v in jc.busy.items():
            busy[a] = busy[a] + v
        for a, v in jc.useful.items():
            useful[a] = useful[a] + v
        jc.charge(actions, topk_extra=batch * (cmp_tok + cmp_head))
        flops = flops + 2 * d * (jc.macs_qk / d + jc.macs_pv / d)
        dense_flops = dense_flops + batch * mdl.heads * p * 4 * d * m
        lsb_bytes = lsb_bytes + jc.lsb_bytes
        total_bytes = total_bytes + jc.dram_bytes
        rows = rows + count
        refetch_rows = refetch_rows + count * rho
        kept_tok = kept_tok + keys / m
        kept_val = kept_val + values / m
        prev_keys, prev_heads = keys, int(heads)
    stages.append(Stage("latency", [Phase("barriers", {}, exposed=latency)], 0.0))
    n_l = mdl.layers
    extra: dict[str, Num] = {
        "tokens_kept": kept_tok / n_l,
        "heads_kept": float(np.mean(hk)) / mdl.heads,
        "values_kept": kept_val / n_l,
        "lsb_refetch_rate": refetch_rows / rows,
        "lsb_dram_bytes": lsb_bytes,
        "dense_flops": dense_flops,
        "topk_parallelism": par,
    }
    return Schedule(
        mapping=f"spatten:{pol.name}",
        cascade="spatten",
        passes=1,
        stages=stages,
        busy=busy,
        useful=useful,
        actions=actions,
        flops=flops,
        compulsory_dram_bytes=total_bytes - lsb_bytes,
        tiles={},
        extra=extra,
    )

