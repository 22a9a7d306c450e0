"""SpAtten's HBM as a memory system: achieved bandwidth from channels, request size, outstanding requests and the
row-buffer locality of the K/V layout, and DRAM energy from reads, activates and background power.

Why not a peak bandwidth: SpAtten's fetcher issues one 32-byte request per address and allows a bounded number of
requests in flight per channel (16 in the released simulator's DRAM driver). By Little's law a channel then delivers
``outstanding x request_bytes / latency`` bytes per ns, and the latency is itself set by the load: the requests
queue for the pseudo-channels' data buses and, on row misses, for their banks (a closed queue, solved exactly by
mean-value analysis). With HBM2 timings this caps a channel well below its 32 GB/s pin rate, which is why the paper's
GPT-2 steps are memory-bound (0.43 TFLOPS) although Q x K could eat 512 B/cycle. The figures and their sources are
in docs/spatten.md §Memory system.

Energy is Accelergy-style: the arch's table prices ``dram.byte`` (array read, on-die movement and I/O of a byte)
and ``dram.activate`` (one row activation); :meth:`Hbm.background_w` is drawn for the whole run.

Row-buffer locality comes from the layout the RTL uses: a head's K (and V, and the LSB planes) lie contiguously,
``index x vector_bytes + base``, and consecutive 32-byte chunks rotate over the channels, so a channel sees
consecutive chunks of one stripe inside one DRAM row. A query's kept vectors are read in ascending index order (the
top-k keeps input order), so each stream opens each row it touches once per channel: misses per channel = rows the
stream's address span covers. Every quantity is a numpy expression (one call covers a sweep).
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from attnforge.sim.analytical.schedule import Num
from attnforge.sim.specs.arch import Hbm


@dataclass
class Traffic:
    """One set of DRAM streams: bytes read, 32-byte requests, row activates, and the time they take."""

    bytes: Num
    requests: Num
    activates: Num
    cycles: Num

    @property
    def row_hit_rate(self) -> Num:
        return 1.0 - np.asarray(self.activates) / np.maximum(np.asarray(self.requests), 1e-30)


def stream_requests(hbm: Hbm, vectors: Num, vector_bytes: Num) -> Num:
    """Requests for ``vectors`` vectors of ``vector_bytes`` each, packed densely into 32-byte transactions (the
    RTL fuses two 6-bit vectors into three transactions so odd widths do not pad; docs/spatten.md §Fetcher)."""
    return np.asarray(vectors, dtype=np.float64) * np.asarray(vector_bytes, dtype=np.float64) / hbm.request_bytes


def stream_activates(hbm: Hbm, vectors: Num, span_vectors: Num, vector_bytes: Num) -> Num:
    """Row activates of one in-order stream reading ``vectors`` of a region of ``span_vectors`` contiguous vectors:
    the rows it touches, each opened once (the stream is in address order, so it never comes back to a row).

    The region covers R = span x vector_bytes / (row_bytes x channels) rows per channel (at least one), and
    consecutive 32-byte requests rotate over the channels, so each channel the stream reaches gets an equal share of
    its requests. A dense stream touches every row; a sparse one, whose kept vectors lie at random, touches as many
    as its share fills when thrown at random into the channel's rows (balls into bins), so a few vectors in one row's
    span share its activate. The bins are floor(R) whole rows and, when R is not whole, one row the region covers
    only a part f = R - floor(R) of, which a request finds with probability f / R, not 1 / R: rounding R up made a
    region one vector past a whole number of rows charge a sparse stream a whole extra row's share of activates (a
    decode step one key past 1024 six-bit keys: 11% more activates than at 1024). Summed over the channels. Checked
    against the event replay's row hits: on the traces' step 16 the K streams 0.78 and 0.88 (replay 0.78 and 0.88),
    the sparse V streams 0.42 and 0.65 (0.42 and 0.65), where counting one activate per request once a stream is
    sparse gave 0.32 for Small's V (docs/spatten.md §Memory system)."""
    span_bytes = np.asarray(span_vectors, dtype=np.float64) * np.asarray(vector_bytes, dtype=np.float64)
    rows = np.maximum(1.0, span_bytes / (hbm.row_bytes * hbm.channels))
    whole = np.floor(rows)
    reqs = np.asarray(stream_requests(hbm, vectors, vector_bytes), dtype=np.float64)
    used = np.minimum(hbm.channels, np.maximum(reqs, 1.0))
    share = reqs / used
    # sum over bins of 1 - (1 - w)^share, as -expm1(share log1p(-w)): whole rows w = 1/R, the part row w = f/R;
    # one row per channel (R = 1): that row.
    w_whole = 1.0 / np.where(rows > 1.0, rows, 2.0)  # 2: any value that keeps the log finite where R = 1
    filled = -whole * np.expm1(share * np.log1p(-w_whole)) - np.expm1(share * np.log1p(-(rows - whole) / rows))
    touched = used * np.minimum(np.where(rows > 1.0, filled, 1.0), np.maximum(share, 0.0))
    return np.where(np.asarray(vectors) > 0, touched, 0.0)


def paired(d: int, vector_bytes: Num) -> Num:
    """2 where the fetcher reads a pair of heads' vectors as one (6-bit rows: both heads' vectors at an index in
    three 32-byte requests, as SpAtten's released fetcher does; sim/memory/trace_streams.py), else 1."""
    return np.where(np.isclose(np.asarray(vector_bytes, dtype=np.float64), d * 6 / 8), 2.0, 1.0)


def channel_imbalance(hbm: Hbm, shared: list[tuple[Num, Num, Num]], independent: list[tuple[Num, Num, Num]],
                      sequences: Num = 1.0) -> Num:
    """The expected busiest channel's requests over the mean channel's, for one layer's streams.

    ``shared`` holds (copies, vectors, vector_bytes): ``copies`` streams reading the same random kept set (a layer's
    heads, whose kept tokens cascade token pruning makes common, so every copy lands on the same channels);
    ``independent`` holds (streams, vectors, vector_bytes), each stream its own random set (local V pruning's rows
    per head); ``sequences`` repeats the whole layer with sets of its own (a batch).

    Why: consecutive 32-byte requests rotate over the channels, so a kept vector of c requests loads c neighbouring
    channels, which ones set by its index. One stream's load on a channel is then about Bin(vectors, c / channels):
    a shared set adds copies^2 times that variance, independent sets add theirs once. The busiest channel lies z
    standard deviations above the mean, z the expected maximum of channels / c independent normals (Blom's
    approximation; c of the first shared stream, the K MSBs, which dominate). Checked against the event replay
    layer by layer (``trace_streams --layers``: tests/test_trace_streams.py) and against kept sets drawn at random
    (tests/test_spatten_memory.py)."""
    mean: Num = 0.0
    var: Num = 0.0
    for group, square in ((shared, True), (independent, False)):
        for copies, vectors, vector_bytes in group:
            c = np.asarray(vector_bytes, dtype=np.float64) / hbm.request_bytes
            p = np.clip(c / hbm.channels, 0.0, 1.0)
            k = np.asarray(copies, dtype=np.float64)
            n = np.asarray(vectors, dtype=np.float64)
            mean = mean + k * n * c / hbm.channels
            var = var + (k * k if square else k) * n * p * (1.0 - p)
    c0 = np.asarray(shared[0][2] if shared else independent[0][2], dtype=np.float64) / hbm.request_bytes
    bins = np.clip(hbm.channels / np.maximum(c0, 1.0), 1.0, hbm.channels)
    z = np.vectorize(lambda m: NormalDist().inv_cdf((m - 0.375) / (m + 0.25)) if m > 1 else 0.0)(bins)
    seq = np.asarray(sequences, dtype=np.float64)
    sd = np.sqrt(seq * np.asarray(var, dtype=np.float64))
    return 1.0 + z * sd / np.maximum(seq * np.asarray(mean, dtype=np.float64), 1e-30)


def _closed_queue(hbm: Hbm, hit_rate: Num) -> tuple[np.ndarray, np.ndarray]:
    """Requests per ns one channel serves, and their mean push-to-pop latency in ns, with the fetcher's
    ``outstanding`` requests always in flight: exact mean-value analysis of a closed queueing network.

    Why a closed queue and not Little's law on a fixed latency: the fetcher refills a slot as soon as a response
    leaves, so the channel always holds ``outstanding`` requests, and the time each waits grows with how many
    others it queues behind. Three stations: a fixed delay (``controller_ns`` of controller and driver hand-off,
    plus the column access ``t_cl_ns``), the data bus (the pseudo-channels together move one request per
    ``t_burst_ns / pseudo_channels``), and ``banks`` banks, where a row miss holds its bank for a row cycle
    (``t_rc_ns``: precharge, activate and the read before the next activate). The recursion adds one request at a
    time: each station's response time is its demand times (1 + the queue the previous population left there)."""
    miss = 1.0 - np.clip(np.asarray(hit_rate, dtype=np.float64), 0.0, 1.0)
    delay = hbm.controller_ns + hbm.t_cl_ns
    bus = hbm.t_burst_ns / hbm.pseudo_channels
    bank = miss * hbm.t_rc_ns / hbm.banks  # each bank's demand: a request finds its row closed with this chance
    q_bus = np.zeros_like(miss)
    q_bank = np.zeros_like(miss)
    for n in range(1, hbm.outstanding + 1):
        r_bus, r_bank = bus * (1.0 + q_bus), bank * (1.0 + q_bank)
        resp = r_bus + hbm.banks * r_bank
        rate = n / np.maximum(delay + resp, 1e-12)  # an arch with every timing at 0: the pins alone bound it
        q_bus, q_bank = rate * r_bus, rate * r_bank
    return rate, delay + resp


def _served(hbm: Hbm, hit_rate: Num) -> tuple[np.ndarray, np.ndarray]:
    """Requests per ns one channel serves, and their mean latency in ns, by the arch's ``hbm.model``: the closed
    queue, or the event-level replay's table (:mod:`attnforge.sim.memory.hbm_table`), whose latency follows from
    its throughput by Little's law (the channel always holds ``outstanding`` requests)."""
    if hbm.model == "replay":
        from attnforge.sim.memory import hbm_table

        rate = hbm_table.channel_gb_s(hbm, hit_rate) / hbm.request_bytes
        return rate, hbm.outstanding / np.maximum(rate, 1e-12)
    return _closed_queue(hbm, hit_rate)


def latency_ns(hbm: Hbm, hit_rate: Num) -> Num:
    """Mean time a request is in flight between the fetcher's issue and its response, with the fetcher's
    ``outstanding`` requests in flight: the controller's fixed share, the column access, and the waits for the
    data bus and, on a row miss, for the bank's row cycle (:func:`_closed_queue`)."""
    return _served(hbm, hit_rate)[1]


def achieved_gb_s(hbm: Hbm, hit_rate: Num) -> Num:
    """Sustained GB/s of all channels: per channel the closed queue's rate (which the pseudo-channels' data buses
    bound, each busy ``t_burst_ns`` per request whatever its size) in 32-byte requests, at most the pin rate."""
    rate = _served(hbm, hit_rate)[0]  # requests per ns
    return hbm.channels * np.minimum(hbm.channel_gb_s, rate * hbm.request_bytes)


def mixed_gb_s(hbm: Hbm, streams: list[tuple[Num, Num]]) -> Num:
    """Sustained GB/s of several streams read together, each given as (requests, activates): each is charged at its
    own row-hit rate and the times add, so the rate is the request-weighted harmonic mean of the streams' rates.

    Why not one pooled hit rate: the achieved bandwidth is not linear in the hit rate (the replay's table rises from
    in-order to ~30% kept, then falls), so a dense K stream and a sparse V stream pooled land near its peak and get
    more than either does alone. Per stream is what the table was measured on (one kind of stream at a time) and what
    the event replay gives a trace step's K and V streams (GPT-2-Small's step 16: 206.5 GB/s against the replay's
    channel mean 206.4, pooled 213.6: docs/spatten.md §Memory system)."""
    reqs = [np.asarray(r, dtype=np.float64) for r, _ in streams]
    acts = [np.asarray(a, dtype=np.float64) for _, a in streams]
    shape = np.broadcast_shapes(*(x.shape for x in (*reqs, *acts)))
    req = np.stack([np.broadcast_to(r, shape) for r in reqs])
    act = np.stack([np.broadcast_to(a, shape) for a in acts])
    bw = achieved_gb_s(hbm, np.clip(1.0 - act / np.maximum(req, 1e-30), 0.0, 1.0))  # one call: the streams stacked
    total, time = req.sum(axis=0), (req / bw).sum(axis=0)
    return np.where(total > 0, total / np.maximum(time, 1e-300), achieved_gb_s(hbm, 1.0))


def row_hit(requests: float, activates: float) -> float:
    """Share of a run's 32-byte requests that found their row open; NaN for a run that read nothing."""
    return 1.0 - activates / requests if requests else float("nan")


def delivered_gb_s(nbytes: float, memory_cycles: float, cycles: float, seconds: float) -> float:
    """GB/s a run's DRAM traffic moved at while it moved: its bytes over the time its memory cycles take (what the
    achieved bandwidth of its streams gave), as against bytes over the whole run."""
    return nbytes / (memory_cycles * seconds / cycles) / 1e9 if memory_cycles and cycles else float("nan")


def traffic(hbm: Hbm, clock_hz: float, requests: Num, activates: Num, nbytes: Num) -> Traffic:
    """Time of a batch of streams at the achieved bandwidth their row-hit rate allows (cycles at ``clock_hz``);
    requests move whole 32-byte transactions, so the pins carry requests x 32 bytes."""
    req = np.asarray(requests, dtype=np.float64)
    act = np.asarray(activates, dtype=np.float64)
    hit = 1.0 - act / np.maximum(req, 1e-30)
    bw = achieved_gb_s(hbm, hit)  # GB/s = bytes per ns
    cycles = req * hbm.request_bytes / bw * 1e-9 * clock_hz
    return Traffic(bytes=nbytes, requests=req, activates=act, cycles=cycles)


__all__ = ["Traffic", "achieved_gb_s", "delivered_gb_s", "latency_ns", "mixed_gb_s", "row_hit",
           "stream_activates", "stream_requests", "traffic"]


def bandwidth_table(arch_name: str = "spatten") -> str:
    """The closed queue's achieved GB/s of an arch's HBM against row-hit rate and outstanding requests per channel
    (``python -m attnforge.sim.memory.dram``; docs/spatten.md §Memory system)."""
    from attnforge.sim.specs.arch import SpattenArch, get_preset

    arch = get_preset(arch_name)
    assert isinstance(arch, SpattenArch)
    h = arch.hbm.model_copy(update={"model": "closed-queue"})  # the replay's table: python -m ...replay_table
    hits = (1.0, 0.9, 0.5, 0.0)
    lines = [f"{arch_name}: {h.channels} channels, peak {h.peak_gb_s:.0f} GB/s; the closed queue's achieved GB/s by "
             "row-hit rate",
             f"{'outstanding':>11} " + " ".join(f"{f'hit {x:.0%}':>9}" for x in hits)]
    for n in (4, 8, 16, 32, 64):
        hn = h.model_copy(update={"outstanding": n})
        lines.append(f"{n:>11} " + " ".join(f"{float(achieved_gb_s(hn, x)):>9.0f}" for x in hits))
    lines.append("latency ns (hit / miss): " + f"{float(latency_ns(h, 1.0)):.0f} / {float(latency_ns(h, 0.0)):.0f}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(bandwidth_table())
