"""SpAtten's per-query datapath as module occupancies and latencies, shared by the builder and the trace replay.

The datapath (paper Fig. 8) handles one query of one head at a time: fetch K -> Q x K (qk_pes / D keys per
cycle) -> softmax (its parallelism per cycle) -> progressive-quant check (store-and-forward over the row) -> local-V
top-k -> fetch V -> prob x V (pv_pes / D values per cycle). The critical path is fully pipelined across queries, so
a run of queries costs the busiest module's total occupancy (or the DRAM time, whichever is longer), and a
dependency barrier (the end of a layer, where token and head top-k decide what the next layer fetches) costs one
query's full latency through the pipe. Every figure is a numpy expression, so one call covers many rows or
sweep points.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from attnforge.sim.analytical.schedule import DRAM_BYTES, Actions, Num
from attnforge.sim.spatten.topk_algorithm import expected_topk_v
from attnforge.sim.specs.arch import Arch, SpattenArch, SpattenModules
from attnforge.sim.specs.errors import SpecError


def _ceil(a: Num, b: Num) -> Num:
    return np.ceil(np.asarray(a, dtype=np.float64) / b)


def check_arch(arch: Arch) -> SpattenModules:
    """SpAtten's module sizes and latencies: the arch's typed ``spatten`` section, or one SpecError saying this
    arch is of another family (its section was validated field by field when the arch loaded)."""
    if not isinstance(arch, SpattenArch):
        raise SpecError(f"arch {arch.name}", f"is a {arch.family}-family arch; SpAtten needs a spatten section",
                        ["spatten", "spatten-1-8"])
    return arch.spatten


@dataclass
class JobCost:
    """Totals over ``count`` identical query jobs (one query row of one head each)."""

    busy: dict[str, Num]
    useful: dict[str, Num]
    dram_bytes: Num
    lsb_bytes: Num
    macs_qk: Num
    macs_pv: Num
    softmax_ops: Num
    topk_cmp: Num
    latency: Num  # one job, first fetch to last prob x V output (the drain at a barrier)

    def charge(self, actions: Actions, topk_extra: Num = 0.0, total: Callable[[Num], Num] = lambda v: v) -> None:
        """Add these jobs' energy actions (``SpattenArch.EMITS``, in its order) to ``actions``; ``total`` reduces
        per-row arrays (the trace replay sums them) and ``topk_extra`` adds the layer-barrier top-k comparisons."""
        actions.add("qk", "mac", total(self.macs_qk))
        actions.add("pv", "mac", total(self.macs_pv))
        actions.add("softmax", "element", total(self.softmax_ops))
        actions.add("topk", "compare", total(self.topk_cmp) + topk_extra)
        actions.add("fetcher", "byte", total(self.dram_bytes))
        actions.add(*DRAM_BYTES, total(self.dram_bytes))


def job_costs(
    arch: Arch,
    *,
    count: Num,
    keys: Num,
    values: Num,
    d: int,
    k_bits: Num,
    lsb_bits: Num,
    refetch: Num,
    v_bits: Num,
    q_bits: Num,
    keys_fetched: Num,
    values_fetched: Num,
    topk_parallelism: int,
    kv_reuse: Num = 1.0,
) -> JobCost:
    """Occupancy of each module for ``count`` queries of ``keys`` keys each, ``values`` of them kept for prob x V.

    ``refetch`` is the fraction of rows that refetch ``lsb_bits`` per K element and recompute Q x K and softmax
    once; ``kv_reuse`` divides the K/V bytes when several queries share one fetch into the K/V SRAM
    (summarization); ``keys_fetched``/``values_fetched`` may exceed keys/values for fetch-everything designs.
    """
    p = check_arch(arch)
    kpc = p.qk_multipliers / d
    vpc = p.pv_multipliers / d
    smax = p.softmax_lanes
    count = np.asarray(count, dtype=np.float64)
    keys = np.asarray(keys, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    redo = 1.0 + np.asarray(refetch, dtype=np.float64)
    qk_one = _ceil(keys, kpc)
    sm_one = _ceil(keys, smax)
    pv_one = _ceil(values, vpc)
    tk_cyc, tk_cmp = expected_topk_v(keys, values, topk_parallelism)
    busy = {
        "qk": count * qk_one * redo,
        "softmax": count * sm_one * redo,
        "topk": count * tk_cyc,
        "pv": count * pv_one,
    }
    useful = {
        "qk": count * keys * redo / kpc,
        "softmax": count * keys * redo / smax,
        "pv": count * values / vpc,
    }
    k_bytes = keys_fetched * d * k_bits / 8 / kv_reuse
    lsb_bytes = count * refetch * keys_fetched * d * lsb_bits / 8 / kv_reuse
    v_bytes = values_fetched * d * v_bits / 8 / kv_reuse
    q_bytes = d * q_bits / 8
    out_bytes = d * 12 / 8  # attention_out leaves at 12 bits
    dram = count * (k_bytes + v_bytes + q_bytes + out_bytes) + lsb_bytes
    fetch_lat = p.dram_latency_cycles
    latency = (
        fetch_lat + p.qk_latency_cycles + qk_one
        + p.softmax_latency_cycles + sm_one
        + p.requant_latency_cycles + sm_one  # store-and-forward: the row max must be known
        + tk_cyc
        + fetch_lat + p.pv_latency_cycles + pv_one
    )
    return JobCost(
        busy=busy,
        useful=useful,
        dram_bytes=dram,
        lsb_bytes=lsb_bytes,
        macs_qk=count * keys * d * redo,
        macs_pv=count * values * d,
        softmax_ops=count * keys * redo,
        topk_cmp=count * tk_cmp,
        latency=latency,
    )
