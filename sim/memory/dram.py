"""SpAtten's HBM as a memory system: achieved bandwidth from channels, request size, outstanding requests and the
row-buffer locality of the K/V layout, and DRAM energy from reads, activates and background power.

Why not a peak bandwidth: SpAtten's fetcher issues one 32-byte request per address and allows a bounded number of
requests in flight per channel (16 in the released simulator's DRAM driver). By Little's law a channel then delivers
at most ``outstanding x request_bytes / latency`` bytes per ns, and the latency depends on whether the request hits
the open row (column access only) or misses it (precharge + activate first). With HBM2 timings this caps a channel
well below its 32 GB/s pin rate, which is why the paper's GPT-2 steps are memory-bound (0.43 TFLOPS) although Q x K
could eat 512 B/cycle. The figures and their sources are in docs/spatten.md §Memory system.

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
    """Row activates of one in-order stream reading ``vectors`` of a region of ``span_vectors`` contiguous vectors.

    The region's address span covers span x vector_bytes / (row_bytes x channels) rows per channel (rounded up,
    at least one); a stream cannot open more rows than it issues requests, so a sparse stream over a wide region
    pays one activate per request at worst. Summed over the channels."""
    span_bytes = np.asarray(span_vectors, dtype=np.float64) * np.asarray(vector_bytes, dtype=np.float64)
    rows_per_channel = np.maximum(1.0, np.ceil(span_bytes / (hbm.row_bytes * hbm.channels)))
    reqs = stream_requests(hbm, vectors, vector_bytes)
    touched = np.minimum(reqs, rows_per_channel * np.minimum(hbm.channels, np.maximum(reqs, 1.0)))
    return np.where(np.asarray(vectors) > 0, touched, 0.0)


def latency_ns(hbm: Hbm, hit_rate: Num) -> Num:
    """Mean time a request is in flight between the fetcher's issue and its response: the controller's queue and
    scheduler at the fetcher's load, the column access and burst, and for a miss the precharge of the open row and
    the activate of the new one."""
    hit = np.clip(np.asarray(hit_rate, dtype=np.float64), 0.0, 1.0)
    base = hbm.controller_ns + hbm.t_cl_ns + hbm.t_burst_ns
    return base + (1.0 - hit) * (hbm.t_rp_ns + hbm.t_rcd_ns)


def achieved_gb_s(hbm: Hbm, hit_rate: Num) -> Num:
    """Sustained GB/s of all channels: per channel the least of its pin rate, its pseudo-channels' data buses (each
    busy ``t_burst_ns`` per request, whatever the request's size) and Little's law on the outstanding requests."""
    little = hbm.outstanding * hbm.request_bytes / latency_ns(hbm, hit_rate)  # bytes per ns = GB/s
    bus = hbm.pseudo_channels * hbm.request_bytes / hbm.t_burst_ns if hbm.t_burst_ns else np.inf
    return hbm.channels * np.minimum(np.minimum(hbm.channel_gb_s, bus), little)


def traffic(hbm: Hbm, clock_hz: float, requests: Num, activates: Num, nbytes: Num) -> Traffic:
    """Time of a batch of streams at the achieved bandwidth their row-hit rate allows (cycles at ``clock_hz``);
    requests move whole 32-byte transactions, so the pins carry requests x 32 bytes."""
    req = np.asarray(requests, dtype=np.float64)
    act = np.asarray(activates, dtype=np.float64)
    hit = 1.0 - act / np.maximum(req, 1e-30)
    bw = achieved_gb_s(hbm, hit)  # GB/s = bytes per ns
    cycles = req * hbm.request_bytes / bw * 1e-9 * clock_hz
    return Traffic(bytes=nbytes, requests=req, activates=act, cycles=cycles)


__all__ = ["Traffic", "achieved_gb_s", "latency_ns", "stream_activates", "stream_requests", "traffic"]


def bandwidth_table(arch_name: str = "spatten") -> str:
    """Achieved GB/s of an arch's HBM against row-hit rate and outstanding requests per channel
    (``python -m attnforge.sim.memory.dram``; docs/spatten.md §Memory system)."""
    from attnforge.sim.specs.arch import SpattenArch, get_preset

    arch = get_preset(arch_name)
    assert isinstance(arch, SpattenArch)
    h = arch.hbm
    hits = (1.0, 0.9, 0.5, 0.0)
    lines = [f"{arch_name}: {h.channels} channels, peak {h.peak_gb_s:.0f} GB/s; achieved GB/s by row-hit rate",
             f"{'outstanding':>11} " + " ".join(f"{f'hit {x:.0%}':>9}" for x in hits)]
    for n in (4, 8, 16, 32, 64):
        hn = h.model_copy(update={"outstanding": n})
        lines.append(f"{n:>11} " + " ".join(f"{float(achieved_gb_s(hn, x)):>9.0f}" for x in hits))
    lines.append("latency ns (hit / miss): " + f"{float(latency_ns(h, 1.0)):.0f} / {float(latency_ns(h, 0.0)):.0f}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(bandwidth_table())
