"""SpAtten's DRAM address streams for one of its traces, replayed through the event-level HBM2 model.

Why: the analytical model charges a trace's K and V fetches to the closed queue of sim/memory/dram.py by their
request count and row-hit rate alone. Which addresses the kept keys have decides how the requests spread over the
16 channels, their pseudo-channels and banks, and the traces do not record it. This module builds the address
streams two ways and replays them through :mod:`attnforge.sim.memory.hbm_events` (Ramulator 2.0's cycles):

* ``released``: what SpAtten's released RTL simulation fetches (``SpAttenController.scala``, ``TestSpAtten.scala``):
  the kept-key indices come from a score buffer filled at elaboration (line ``i``: 32 of the 64 keys from ``32 i``,
  picked by ``scala.util.Random`` seeded 1, sorted), the same lines for every head; fetch counts rounded up to 8;
  K widths 10 and 12 (and -1) fetched as 8-bit MSBs plus a 4-bit LSB refetch on every row, V at 8 bits; 6-bit K and
  V fetched for a pair of rows at once (96 B a key); each row's K, LSBs and V at the bench's base addresses.
* ``spread``: the same widths and layout, with each layer's kept keys spread uniformly over the context (one set
  per step and layer: token pruning is global) and each head's kept V a random subset of them.

Each row's requests are issued in order (K, LSBs, V, then the next row) with the driver's requests in flight per
channel; channels run independently and the slowest sets the time (as ramulator_check charges Ramulator's). Each
row's regions lie at the bench's base addresses, or (``--layout disjoint``) in regions that never overlap: where
the KV cache lies is a choice of the software, and it moves the delivered bandwidth by ~5% (docs/spatten.md).
``python -m attnforge.sim.memory.trace_streams TRACE`` prints the GB/s beside what the analytical model's two HBM
models (the closed queue and the replay's table) charge for the same requests, each row's K, LSB and V streams at
their own row-hit rates as the model charges a trace; docs/spatten.md §Memory system quotes it.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from attnforge.sim.memory import dram, hbm_events
from attnforge.sim.memory.ramulator_check import crossbar, vector_addresses
from attnforge.sim.specs.arch import Hbm, SpattenArch, get_preset
from attnforge.sim.specs.errors import SpecError

#: TestSpAtten's base addresses: row ``i`` of the bench's request list reads its K, LSBs and V here + i x 64 KB.
K_BASE, LSB_BASE, V_BASE, ROW_STRIDE = 0xAB10000, 0xAB20000, 0xCD10000, 0x10000
#: Where each row's K, LSB and V regions lie: the bench's bases (64 KB apart per row, so a 6-bit pair's 97 KB of K
#: overlaps the next row's region, and row i's LSBs lie where row i + 1's K does), or disjoint regions, each row's
#: 256 KB apart (the same banks, other rows) with K, LSBs and V in their own 256 MB areas.
LAYOUTS: dict[str, tuple[int, int, int, int]] = {
    "released": (K_BASE, LSB_BASE, V_BASE, ROW_STRIDE),
    "disjoint": (0, 1 << 28, 2 << 28, 1 << 18),
}
PORTS = 32  # numMatrixFetcherChannel: one score-buffer line holds one index per fetcher port
D = 64
POSITIONS = ("released", "spread")
STREAMS = ("K", "LSB", "V")


class JavaRandom:
    """``java.util.Random`` (48-bit LCG), which ``scala.util.Random`` wraps: the score buffer is filled from it."""

    def __init__(self, seed: int) -> None:
        self.seed = (seed ^ 0x5DEECE66D) & ((1 << 48) - 1)

    def _next(self, bits: int) -> int:
        self.seed = (self.seed * 0x5DEECE66D + 0xB) & ((1 << 48) - 1)
        return self.seed >> (48 - bits)

    def next_int(self, bound: int) -> int:
        r, m = self._next(31), bound - 1
        if bound & m == 0:
            return (bound * r) >> 31
        u = r
        while True:
            r = u % bound
            if u - r + m < (1 << 31):  # Java's int overflow test
                return r
            u = self._next(31)

    def shuffle(self, xs: list[int]) -> list[int]:
        """``scala.util.Random.shuffle``: swap position n - 1 with a random one below n, n from the end down to 2."""
        buf = list(xs)
        for n in range(len(buf), 1, -1):
            k = self.next_int(n)
            buf[n - 1], buf[k] = buf[k], buf[n - 1]
        return buf


def score_buffer(lines: int, seed: int = 1) -> np.ndarray:
    """The released controller's score buffer: line ``i`` holds 32 of the keys ``32 i .. 32 i + 63``, sorted."""
    rng = JavaRandom(seed)
    return np.array([np.sort(rng.shuffle(list(range(2 * PORTS)))[:PORTS]) + PORTS * i for i in range(lines)])


def released_keys(n: int, buffer: np.ndarray) -> np.ndarray:
    """The indices a row that fetches ``n`` keys reads: the first ``ceil(n / 32)`` lines, the last one partly."""
    lines = -(-n // PORTS)
    if lines > len(buffer):
        raise SpecError("key_fetch_num", f"{n} keys need {lines} score-buffer lines, more than {len(buffer)}",
                        [f"at most {len(buffer) * PORTS}"])
    return buffer[:lines].ravel()[:n]


@dataclass(frozen=True)
class RowWidths:
    """How the released bench fetches one trace row: K and V bits, whether LSBs are refetched, the fused pair."""

    k_bits: int
    v_bits: int
    lsb: bool

    @classmethod
    def of(cls, k_bits: int, v_bits: int, if_requant: bool) -> RowWidths:
        lsb = bool(if_requant) or k_bits in (-1, 10, 12)  # widths it cannot fetch whole: 8 MSBs + refetched LSBs
        return cls(8 if k_bits in (-1, 10, 12) else k_bits, 8 if v_bits in (-1, 10, 12) else v_bits, lsb)

    def vector_bytes(self, bits: int) -> int:
        return D * bits * (2 if bits == 6 else 1) // 8  # 6-bit rows are fetched in pairs: both heads' vectors


@dataclass
class Streams:
    """A trace's requests in issue order, and per trace row (and per kind of stream, K, LSB and V, where the arrays
    have a second axis) the requests and activates the analytical model charges for them: it charges each row, one
    head's query, and each of its streams at that stream's own row-hit rate (sim/spatten/trace.py,
    ``dram.mixed_gb_s``)."""

    addresses: np.ndarray
    row_requests: np.ndarray
    row_activates: np.ndarray
    row_ends: np.ndarray | None = None  # where each row's addresses end in ``addresses``

    @property
    def per_row_requests(self) -> np.ndarray:
        """Each trace row's requests, its kinds of stream together."""
        return self.row_requests.reshape(len(self.row_requests), -1).sum(axis=1)

    @property
    def requests(self) -> float:
        return float(self.row_requests.sum())

    @property
    def activates(self) -> float:
        return float(self.row_activates.sum())


def build(rows: pd.DataFrame, hbm: Hbm, positions: str, seed: int = 0, layout: str = "released",
          streams: tuple[str, ...] = STREAMS) -> Streams:
    """Every row's K, LSB and V requests in order (module docstring); 6-bit pairs fetch K and V once per pair.
    ``streams`` keeps only some kinds (the kept keys are drawn the same), to see what each costs alone."""
    if not streams or set(streams) - set(STREAMS):
        raise SpecError("--streams", f"{','.join(streams)!r} is not a set of stream kinds", list(STREAMS))
    if positions not in POSITIONS:
        raise SpecError("--positions", f"{positions!r} is not a way to place kept keys", POSITIONS)
    if layout not in LAYOUTS:
        raise SpecError("--layout", f"{layout!r} is not a K/V layout", list(LAYOUTS))
    k_base, lsb_base, v_base, stride = LAYOUTS[layout]
    rng, buf, shared = np.random.default_rng(seed), score_buffer(256), {}
    parts: list[np.ndarray] = []
    req, act = np.zeros((len(rows), len(STREAMS))), np.zeros((len(rows), len(STREAMS)))
    ends = np.zeros(len(rows), np.int64)
    issued = 0
    for rid, r in enumerate(rows.itertuples(index=False)):
        w = RowWidths.of(int(r.quant_key_bit), int(r.quant_value_bit), bool(r.if_requant))
        kn, vn, ctx = -(-int(r.key_fetch_num) // 8) * 8, -(-int(r.value_fetch_num) // 8) * 8, int(r.sentence_length_L)
        if positions == "released":
            keys = released_keys(kn, buf)
        else:
            keys = shared.setdefault((int(r.iteration_id), int(r.layer_id)),
                                     np.sort(rng.choice(ctx, min(kn, ctx), replace=False)))
        vals = np.sort(rng.choice(keys, min(vn, len(keys)), replace=False))
        paired_second = w.k_bits == 6 and rid % 2 == 1  # its K and V came with the first row of the pair
        fetches = [] if paired_second else [("K", k_base, keys, w.vector_bytes(w.k_bits))]
        fetches += [("LSB", lsb_base, keys, D * 4 // 8)] if w.lsb else []
        fetches += [] if paired_second and w.v_bits == 6 else [("V", v_base, vals, w.vector_bytes(w.v_bits))]
        for kind, base, idx, vb in (f for f in fetches if f[0] in streams):
            parts.append(vector_addresses(base + stride * rid, idx, vb, hbm.request_bytes))
            issued += len(parts[-1])
            req[rid, STREAMS.index(kind)] += float(dram.stream_requests(hbm, len(idx), vb))
            act[rid, STREAMS.index(kind)] += float(dram.stream_activates(hbm, len(idx), ctx, vb))
        ends[rid] = issued
    return Streams(np.concatenate(parts) if parts else np.zeros(0, np.int64), req, act, ends)


def layer_barriers(rows: pd.DataFrame, s: Streams, hbm: Hbm, outstanding: int) -> tuple[float, float, float]:
    """GB/s when each (step, layer) must finish its fetches before the next starts (a decode layer's kept keys are
    known only after the layer before it: cascade token pruning), so every layer waits for its own slowest
    channel: bytes over the summed layer times, with the slowest channel and with the channels' mean; and the row
    hits. Banks start each layer as the previous one left them (warm)."""
    assert s.row_ends is not None
    timing = hbm_events.Hbm2Timing.from_hbm(hbm)
    key = rows["iteration_id"].astype(int).to_numpy() * 10_000 + rows["layer_id"].astype(int).to_numpy()
    cuts = np.flatnonzero(np.diff(key)) + 1
    starts = np.concatenate([[0], s.row_ends[cuts - 1]])
    stops = np.concatenate([s.row_ends[cuts - 1], [len(s.addresses)]])
    moved = slowest = mean = activates = 0.0
    for a, b in zip(starts, stops, strict=True):
        if b <= a:
            continue
        ch = hbm_events.channels(crossbar(s.addresses[a:b], hbm), outstanding, timing, warm=True)
        nbytes = (b - a) * hbm.request_bytes
        moved, slowest, mean = moved + nbytes, slowest + nbytes / ch.gb_s, mean + nbytes / ch.channel_mean_gb_s
        activates += ch.activates
    hit = 1.0 - activates * hbm.request_bytes / max(moved, 1e-30)
    return moved / max(slowest, 1e-30), moved / max(mean, 1e-30), hit


def model_barrier(rows: pd.DataFrame, s: Streams, hbm: Hbm) -> float:
    """What ``hbm.layer_barrier`` charges these rows: each layer's busiest-channel factor
    (:func:`dram.channel_imbalance` through the trace model's layer grouping), weighted by the layer's requests."""
    from attnforge.sim.spatten.trace import layer_imbalance

    f = layer_imbalance(hbm, rows, D)
    key = pd.MultiIndex.from_arrays([rows["iteration_id"].to_numpy(), rows["layer_id"].to_numpy()])
    per_layer = pd.Series(s.per_row_requests, index=key).groupby(level=[0, 1]).sum()
    return float((per_layer * f.reindex(per_layer.index)).sum() / max(per_layer.sum(), 1e-30))


def charged_gb_s(hbm: Hbm, s: Streams) -> float:
    """GB/s an analytical HBM model (``hbm.model``) gives these streams, each trace row's streams charged at their own
    row-hit rates as the model charges a trace, the times added (all channels together)."""
    req, act = s.row_requests.ravel(), s.row_activates.ravel()
    keep = req > 0
    cycles = dram.traffic(hbm, 1e9, req[keep], act[keep], req[keep] * hbm.request_bytes).cycles
    return s.requests * hbm.request_bytes / max(float(np.sum(cycles)), 1e-30)


def replay_trace(rows: pd.DataFrame, hbm: Hbm, positions: str, outstanding: int | None = None,
                 layout: str = "released", layers: bool = False, streams: tuple[str, ...] = STREAMS) -> dict[str, float]:
    """The event replay of a trace's streams (all channels, the whole selection at once or, with ``layers``, layer
    by layer: :func:`layer_barriers`) beside what the analytical model's two HBM models (the closed queue, the
    replay's table: both assume evenly loaded channels) charge for the same requests and row activates, row by row
    as the model charges a trace."""
    s = build(rows, hbm, positions, layout=layout, streams=streams)
    if not len(s.addresses):
        raise SpecError("--streams", f"the selected rows fetch no {','.join(streams)} requests", list(STREAMS))
    n = outstanding or hbm.outstanding
    if layers:
        gb_s, mean_gb_s, hit = layer_barriers(rows, s, hbm, n)
    else:
        ch = hbm_events.channels(crossbar(s.addresses, hbm), n, hbm_events.Hbm2Timing.from_hbm(hbm))
        gb_s, mean_gb_s, hit = ch.gb_s, ch.channel_mean_gb_s, ch.row_hit
    h = hbm.model_copy(update={"outstanding": n})
    extra = {"event_barrier": mean_gb_s / gb_s, "model_barrier": model_barrier(rows, s, hbm)} if layers else {}
    return {**extra, "requests": float(len(s.addresses)), "event_gb_s": gb_s, "event_channel_mean_gb_s": mean_gb_s,
            "event_row_hit": hit, "ours_gb_s": charged_gb_s(h.model_copy(update={"model": "closed-queue"}), s),
            "table_gb_s": charged_gb_s(h.model_copy(update={"model": "replay"}), s),
            "ours_row_hit": 1 - s.activates / s.requests}


def main(argv: list[str] | None = None) -> int:
    from attnforge.sim.spatten.trace import load_trace

    ap = argparse.ArgumentParser(prog="python -m attnforge.sim.memory.trace_streams", description=__doc__.split("\n")[0])
    ap.add_argument("trace", type=Path, help="a SpAtten trace CSV (workloads/traces/)")
    ap.add_argument("--steps", default="16", help="generation steps (iteration_id) to replay, comma-separated "
                    "(default 16: ~0.5 M requests take ~1 min in Python)")
    ap.add_argument("--positions", action="append", choices=POSITIONS, help="where the kept keys lie (default both)")
    ap.add_argument("--outstanding", type=int, help="requests in flight per channel (default the arch's, 16)")
    ap.add_argument("--layout", choices=list(LAYOUTS), default="released",
                    help="where each row's K, LSB and V regions lie (default the released bench's base addresses)")
    ap.add_argument("--layers", action="store_true",
                    help="each layer waits for its own slowest channel (the next layer's kept keys are known only "
                         "then); default the whole selection replayed at once")
    ap.add_argument("--streams", default=",".join(STREAMS),
                    help="which kinds of request to replay, comma-separated (default all: K,LSB,V)")
    args = ap.parse_args(argv)
    try:
        try:
            steps = [int(x) for x in args.steps.split(",")]
        except ValueError:
            raise SpecError("--steps", f"{args.steps!r} is not a comma-separated list of steps", ["16", "0,16,31"]) from None
        if args.outstanding is not None and args.outstanding < 1:
            raise SpecError("--outstanding", f"requests in flight must be >= 1, got {args.outstanding}", ["1, 2, ..."])
        trace = load_trace(args.trace)
        rows = trace.rows[trace.rows["iteration_id"].astype(int).isin(steps)]
        if rows.empty:
            raise SpecError("--steps", f"{trace.name} has no rows at step(s) {args.steps}",
                            sorted(set(trace.rows["iteration_id"].astype(int))))
        arch = get_preset("spatten")
        assert isinstance(arch, SpattenArch)
        kinds = tuple(x.strip() for x in args.streams.split(",") if x.strip())
        barrier = ", a barrier per layer" if args.layers else ""
        print(f"{trace.name}, step(s) {args.steps}: {len(rows)} rows, {args.layout} layout{barrier}, "
              f"streams {','.join(kinds)}")
        print(f"{'positions':<10} {'requests':>9} {'event GB/s':>10} {'ch mean':>8} {'hit':>5} {'closed queue':>12} "
              f"{'replay table':>12} {'hit':>5}")
        for pos in args.positions or POSITIONS:
            r = replay_trace(rows, arch.hbm, pos, args.outstanding, args.layout, args.layers, kinds)
            print(f"{pos:<10} {r['requests']:>9.0f} {r['event_gb_s']:>10.1f} {r['event_channel_mean_gb_s']:>8.1f} "
                  f"{r['event_row_hit']:>5.2f} {r['ours_gb_s']:>12.1f} {r['table_gb_s']:>12.1f} {r['ours_row_hit']:>5.2f}")
            if args.layers:
                print(f"{'':<10} a barrier per layer: replay x{r['event_barrier']:.3f} (channel mean over slowest), "
                      f"the model's hbm.layer_barrier x{r['model_barrier']:.3f}")
    except (SpecError, ValueError) as exc:
        print(f"trace_streams: error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
