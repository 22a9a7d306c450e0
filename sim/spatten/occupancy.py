"""SpAtten's per-query datapath as module occupancies and latencies, shared by the builder and the trace replay.

The datapath (paper Fig. 8) handles one query of one head at a time: fetch K -> Q x K (qk_pes / D keys per
cycle) -> softmax (its parallelism per cycle) -> progressive-quant check (store-and-forward over the row) -> local-V
top-k -> fetch V -> prob x V (pv_pes / D values per cycle). The critical path is fully pipelined across queries, so
a run of queries costs the busiest module's total occupancy (or the DRAM time, whichever is longer), and a
dependency barrier (the end of a layer, where token and head top-k decide what the next layer fetches) costs one
query's full latency through the pipe. Every figure is a numpy expression, so one call covers many rows or
sweep points.

Each module's cycles come from the RTL's exact cycle models: Q x K and softmax beats per row, the top-k engine's
round recurrence (:mod:`attnforge.sim.spatten.topk_cycles`, split into the selection and the filter pass the
released engine overlaps across queries), and on an arch whose modules do not overlap queries
(``query_overlap: false``, our spatten-pipeline RTL) the whole one-query formula
:func:`attnforge.sim.spatten.cycle_model.pipeline_cycles_for`. DRAM time comes from the HBM model
(:mod:`attnforge.sim.memory.dram`): the K, LSB and V streams' requests and row activates at the bandwidth the
fetcher's outstanding requests achieve.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from attnforge.sim.analytical.schedule import DRAM_BYTES, Actions, Num
from attnforge.sim.contract.spatten_fx import SpattenFx
from attnforge.sim.memory import dram
from attnforge.sim.spatten.cycle_model import pipeline_cycles_for
from attnforge.sim.spatten.stalls import release_latency
from attnforge.sim.spatten.topk_cycles import SYNTHETIC_SCORE_STD, engine_cycles_v, occupancy
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
    #: The part of dram_bytes that is Q in and attention_out out (the rest is K MSBs, K LSBs and V).
    io_bytes: Num
    #: K and V elements fetched (vectors x D, each counted once whatever its width or LSB refetch).
    kv_elements: Num
    #: K alone: its MSB and LSB bytes and its elements (what progressive quantization acts on, docs/spatten.md
    #: §DRAM reduction).
    k_bytes: Num
    k_elements: Num
    macs_qk: Num
    macs_pv: Num
    softmax_ops: Num
    topk_cmp: Num
    latency: Num  # one job, first fetch to last prob x V output (the drain at a barrier)
    #: DRAM requests and row activates of the jobs' streams, and the cycles they take at the achieved bandwidth.
    dram_requests: Num = 0.0
    dram_activates: Num = 0.0
    dram_efficiency: Num = 1.0  # the HBM's achieved over peak bandwidth (what a Stage carries; the ports' bound apart)
    #: Cycles of the jobs when the modules cannot overlap queries (None: they can; busy's maximum bounds them).
    serial: Num | None = None
    #: Cycles the jobs need when only ``decision_window`` queries may be between allocation and decision at once
    #: (None: no window).
    window: Num | None = None

    def phase_work(self) -> dict[str, Num]:
        """What the jobs' pipeline phase waits for: each module's occupancy, or the serial chain of queries."""
        if self.serial is not None:
            return {"query": self.serial}
        return dict(self.busy) if self.window is None else {**self.busy, "decision window": self.window}

    def charge(self, actions: Actions, topk_extra: Num = 0.0, total: Callable[[Num], Num] = lambda v: v) -> None:
        """Add these jobs' energy actions (``SpattenArch.EMITS``, in its order) to ``actions``; ``total`` reduces
        per-row arrays (the trace replay sums them) and ``topk_extra`` adds the layer-barrier top-k comparisons."""
        actions.add("qk", "mac", total(self.macs_qk))
        actions.add("pv", "mac", total(self.macs_pv))
        actions.add("softmax", "element", total(self.softmax_ops))
        actions.add("topk", "compare", total(self.topk_cmp) + topk_extra)
        actions.add("fetcher", "byte", total(self.dram_bytes))
        actions.add(*DRAM_BYTES, total(self.dram_bytes))
        actions.add(DRAM_BYTES[0], "activate", total(self.dram_activates))


class _Beats:
    """One query's beats in each streaming module (the RTL's cycle models at the arch's sizes), and from them the
    modules' occupancy over many queries and one query's latency through the pipe."""

    def __init__(self, p: SpattenModules, keys: Num, values: Num, d: int) -> None:
        self.p = p
        self.kpc, self.vpc = p.qk_multipliers / d, p.pv_multipliers / d
        self.keys, self.values = keys, values
        self.qk, self.sm, self.pv = _ceil(keys, self.kpc), _ceil(keys, p.softmax_lanes), _ceil(values, self.vpc)

    def occupancy(self, count: Num, redo: Num, topk_one: Num) -> tuple[dict[str, Num], dict[str, Num]]:
        """Each module's busy cycles and useful beats over ``count`` queries (``redo``: 1 + the LSB recompute
        share; ``topk_one``: one query's engine occupancy)."""
        p = self.p
        # Engines past the token/head one rank the local-V top-k of different queries at once (when queries overlap).
        local_v_engines = max(1, p.topk_engines - 1) if p.query_overlap else 1
        busy = {
            "qk": count * self.qk * redo,
            "softmax": count * p.softmax_passes * self.sm * redo,
            "topk": count * topk_one / local_v_engines,
            "pv": count * self.pv,
        }
        useful = {
            "qk": count * self.keys * redo / self.kpc,
            "softmax": count * self.keys * redo / p.softmax_lanes,
            "pv": count * self.values / self.vpc,
        }
        return busy, useful

    def latency(self, fetch: Num, topk: Num) -> Num:
        """One query from its K fetch to its last prob x V output (``fetch``: a DRAM round trip in cycles;
        ``topk``: the engine's selection plus filter)."""
        p = self.p
        return (
            fetch + p.qk_latency_cycles + self.qk
            + p.softmax_latency_cycles + p.softmax_passes * self.sm
            + p.requant_latency_cycles + self.sm  # store-and-forward: the row max must be known
            + topk
            + fetch + p.pv_latency_cycles + self.pv
        )


@dataclass
class _Streams:
    """Bytes, requests and activates of a job's K (MSB), LSB and V streams, summed over ``count`` jobs."""

    bytes: Num
    lsb_bytes: Num
    io_bytes: Num
    kv_elements: Num
    k_bytes: Num
    k_elements: Num
    requests: Num
    activates: Num
    gb_s: Num  # what the HBM delivers them at, each stream at its own row-hit rate (dram.mixed_gb_s)


def _streams(arch: SpattenArch, *, count: Num, d: int, k_bits: Num, lsb_bits: Num, refetch: Num, v_bits: Num,
             q_bits: Num, keys_fetched: Num, values_fetched: Num, kv_reuse: Num, span: Num) -> _Streams:
    """A job's DRAM streams: K MSBs, LSBs on refetch and the kept V rows, each read in index order from its own
    contiguous region of ``span`` vectors (so its row activates follow the layout), plus Q in and the output."""
    h = arch.hbm
    kb = d * np.asarray(k_bits, dtype=np.float64) / 8
    lb = d * np.asarray(lsb_bits, dtype=np.float64) / 8
    vb = d * np.asarray(v_bits, dtype=np.float64) / 8
    kf = np.asarray(keys_fetched, dtype=np.float64) / kv_reuse
    vf = np.asarray(values_fetched, dtype=np.float64) / kv_reuse
    rho = np.asarray(refetch, dtype=np.float64)
    qo = d * np.asarray(q_bits, dtype=np.float64) / 8 + d * 12 / 8  # Q in, attention_out (12 bits) out
    k_bytes, lsb_bytes, v_bytes = kf * kb, rho * kf * lb, vf * vb
    # Per job, each stream's requests and activates: activates of the whole stream (a reused K/V fetch is one stream
    # shared by the queries) over the queries sharing it; the Q and output rows of consecutive queries are
    # contiguous, so they open a row every row_bytes per channel.
    kall, vall = np.asarray(keys_fetched, dtype=np.float64), np.asarray(values_fetched, dtype=np.float64)
    per_stream = [
        (dram.stream_requests(h, kf, kb), dram.stream_activates(h, kall, span, kb) / kv_reuse),
        (rho * dram.stream_requests(h, kf, lb), rho * dram.stream_activates(h, kall, span, lb) / kv_reuse),
        (dram.stream_requests(h, vf, vb), dram.stream_activates(h, vall, span, vb) / kv_reuse),
        (qo / h.request_bytes, qo / h.row_bytes),
    ]
    req = sum(r for r, _ in per_stream)
    act = sum(a for _, a in per_stream)
    return _Streams(bytes=count * (k_bytes + v_bytes + qo + lsb_bytes), lsb_bytes=count * lsb_bytes,
                    io_bytes=count * qo, kv_elements=count * (kf + vf) * d, k_bytes=count * (k_bytes + lsb_bytes),
                    k_elements=count * kf * d, requests=count * req,
                    activates=count * act, gb_s=dram.mixed_gb_s(h, per_stream))


def port_bytes_per_cycle(arch: SpattenArch) -> float:
    """The most the fetcher ports can ask of the HBM: one request per port and cycle. A bound in bytes per cycle,
    whatever the clock and the DRAM's bandwidth, so a Stage carries it beside its efficiency
    (``Stage.port_bytes_per_cycle``) and a sweep of either scales only the HBM's side."""
    return float(arch.spatten.fetcher_channels * arch.hbm.request_bytes)


def _serial_cycles(p: SpattenModules, *, keys: Num, values: Num, d: int, refetch: Num, select: Num,
                   filt: Num) -> Num:
    """One query at a time: the spatten-pipeline RTL's own formula at the arch's sizes (lanes = Q x K
    multipliers; softmax lanes, top-k comparators and prob x V rows = lanes / D; the longest row
    ``pipeline_max_keys``, which sets the softmax's depth)."""
    max_n = p.pipeline_max_keys or 1024
    longest = float(np.max(keys))
    if longest > max_n:
        raise SpecError("spatten.pipeline_max_keys", f"a job of {longest:.0f} keys exceeds the pipeline's max_n = {max_n}"
                        " (the RTL refuses it)", f"1..{max_n} keys, or a larger pipeline_max_keys (at most 1024)")
    cfg = SpattenFx(lanes=p.qk_multipliers, min_d=d, max_d=d, max_n=max_n)
    return pipeline_cycles_for(keys, d, refetch, select + filt, cfg)


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
    span: Num | None = None,
    score_std: tuple[float, ...] = SYNTHETIC_SCORE_STD,
) -> JobCost:
    """Occupancy of each module for ``count`` queries of ``keys`` keys each, ``values`` of them kept for prob x V.

    ``refetch`` is the fraction of rows that refetch ``lsb_bits`` per K element and recompute Q x K and softmax
    once; ``kv_reuse`` divides the K/V bytes when several queries share one fetch into the K/V SRAM
    (summarization); ``keys_fetched``/``values_fetched`` may exceed keys/values for fetch-everything designs;
    ``span`` is the vectors in each K/V region (the context length; default the keys fetched), which sets how many
    DRAM rows a stream opens; ``score_std`` the spread of the rows' scores (measured from a workload's tensors when
    it has them), which sets how many probabilities tie in the top-k.
    """
    p = check_arch(arch)
    assert isinstance(arch, SpattenArch)
    count = np.asarray(count, dtype=np.float64)
    keys = np.asarray(keys, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    redo = 1.0 + np.asarray(refetch, dtype=np.float64)
    beats = _Beats(p, keys, values, d)
    select, filt, tk_cmp = engine_cycles_v(keys, values, topk_parallelism, p.softmax_lanes,
                                           p.topk_round_overhead_cycles, score_std)
    # The paper's controller bypasses the engine when every V row is kept (nothing to select); our RTL runs it.
    run_topk = (values < keys) if p.query_overlap else np.ones_like(keys, dtype=bool)
    select, filt, tk_cmp = (np.where(run_topk, x, 0.0) for x in (select, filt, tk_cmp))
    busy, useful = beats.occupancy(count, redo, occupancy(select, filt, p.topk_filter_overlap))
    st = _streams(arch, count=count, d=d, k_bits=k_bits, lsb_bits=lsb_bits, refetch=refetch, v_bits=v_bits,
                  q_bits=q_bits, keys_fetched=keys_fetched, values_fetched=values_fetched, kv_reuse=kv_reuse,
                  span=keys_fetched if span is None else span)
    tr = dram.traffic(arch.hbm, arch.clock_hz, st.requests, st.activates, st.bytes)
    # A fetch's round trip in cycles, counted at the HBM's 1 GHz command clock (the paper's clock too): a fixed
    # cycle count keeps one schedule valid across a clock sweep, as the engine's sweeps require.
    latency = beats.latency(dram.latency_ns(arch.hbm, tr.row_hit_rate), select + filt)
    serial = None
    # A query is in the decision window from its first Q x K beat to its decision (sim/spatten/stalls.py).
    window = (None if p.decision_window is None
              else count * (beats.qk + release_latency(arch, keys)) / p.decision_window)
    if not p.query_overlap:
        one = _serial_cycles(p, keys=keys, values=values, d=d, refetch=refetch, select=select, filt=filt)
        serial, latency = count * one, one
    return JobCost(
        busy=busy,
        useful=useful,
        dram_bytes=st.bytes,
        lsb_bytes=st.lsb_bytes,
        io_bytes=st.io_bytes,
        kv_elements=st.kv_elements,
        k_bytes=st.k_bytes,
        k_elements=st.k_elements,
        macs_qk=count * keys * d * redo,
        macs_pv=count * values * d,
        softmax_ops=count * keys * redo,
        topk_cmp=count * tk_cmp,
        latency=latency,
        dram_requests=tr.requests,
        dram_activates=tr.activates,
        dram_efficiency=st.gb_s / arch.hbm.peak_gb_s,
        serial=serial,
        window=window,
    )
