"""Fixed costs of a SpAtten summarization pass per head switch and per layer boundary, which a module-occupancy
pipeline does not see.

Short BERT inputs (tens of tokens) give a head only tens of cycles of Q x K, so costs that are fixed per head or
per layer, not per key, are a large share of the time. Two come from how the hardware holds K and decides what to
fetch (docs/spatten.md §BERT throughput: fixed costs per head and per layer, §Stalls):

- **Head switch** (``kv_buffer_allocations``). The released controller hands out the K SRAM's lines in a ring
  (``BufferManager``: 256 lines of 512 12-bit words, at most 16 allocations), one allocation per batch of queries
  that share K (a head of a summarization pass), and frees it only at the batch's last progressive-quant decision
  (``StageRequantizeOrRelease``: a refetching row recomputes Q x K from the same lines). That decision needs the
  last query's whole probability row: its scores leave the Q x K tree, pass the softmax (its pipeline latency
  plus the FIFO pass over the row) and the max tree. With B heads resident (the allocations, or the lines over a
  head's lines, whichever is fewer), head h + B is fetched only after head h drains that far, and its first line
  arrives a DRAM round trip later: it starts no earlier than head h's start + C + R + F (C: a head's pipeline
  cycles, R: that release latency, F: the fetch round trip), so a layer of H heads costs
  (H - B) * max(0, (C + R + F) / B - C) cycles beyond H * C.
- **Layer boundary** (``layer_topk_serial``). The next layer fetches only the tokens (and heads) the token and head
  top-k keep, and that top-k ranks the importance accumulated up to the layer's last query. Where a boundary
  prunes, the next layer's first K fetch waits for the top-k's selection rounds and then its own round trip (it can
  no longer be issued ahead). The authors' BERT model (``bert.cpp`` ``run``) adds the top-k cycles to each layer's.

The release latency R also bounds queries when the arch names a ``decision_window`` (queries admitted between K
allocation and decision): :func:`attnforge.sim.spatten.occupancy.job_costs` charges each query at least
(its Q x K beats + R) / window. The paper preset leaves it off (docs/spatten.md says why).
"""

from __future__ import annotations

import numpy as np

from attnforge.sim.analytical.schedule import Num
from attnforge.sim.memory import dram
from attnforge.sim.spatten.topk_algorithm import expected_topk_v
from attnforge.sim.specs.arch import SpattenArch


def fetch_round_trip(arch: SpattenArch) -> float:
    """Cycles from issuing a K fetch to its first line in the SRAM: a contiguous region, so row hits, counted at the
    HBM's 1 GHz command clock as :func:`attnforge.sim.spatten.occupancy.job_costs` counts fetch latency."""
    return float(dram.latency_ns(arch.hbm, 1.0))


def release_latency(arch: SpattenArch, keys: Num) -> Num:
    """Cycles from a head's last Q x K beat until its key-buffer half is free: the last scores through the Q x K
    tree, the softmax pipeline and its pass over the row (``softmax_passes`` beats of ``softmax_lanes`` keys; the
    code's FIFO cycle per 8-key line), and the progressive-quant max tree."""
    p = arch.spatten
    beats = np.ceil(np.asarray(keys, dtype=np.float64) / p.softmax_lanes)
    return p.qk_latency_cycles + p.softmax_latency_cycles + p.softmax_passes * beats + p.requant_latency_cycles


def resident_heads(arch: SpattenArch, keys_held: Num, d: int) -> Num:
    """Heads whose K the K SRAM holds at once: its lines (``kv_sram_bytes`` of ``qk_multipliers`` words of
    ``word_bits``) over a head's lines (one line per ``qk_multipliers / d`` keys), at most the allocator's
    ``kv_buffer_allocations``; 0 when a head's K exceeds the SRAM (tiled: K streams, no head-level refill)."""
    p = arch.spatten
    lines = p.kv_sram_bytes * 8 // (p.qk_multipliers * arch.word_bits)
    per_head = np.maximum(np.ceil(np.asarray(keys_held, dtype=np.float64) * d / p.qk_multipliers), 1.0)
    return np.minimum(float(p.kv_buffer_allocations or 0), np.floor(lines / per_head))


def head_switch_cycles(arch: SpattenArch, *, head_cycles: Num, keys: Num, heads: float, resident: Num) -> Num:
    """Cycles a layer of ``heads`` heads waits at head switches, beyond ``heads * head_cycles``.

    ``resident`` is how many heads' K/V the SRAMs hold at once (:func:`resident_heads`); 0 where no head-level
    refill happens (tiled heads stream their K/V continuously). Zero when the arch names no allocator
    (``kv_buffer_allocations: null``)."""
    c = np.asarray(head_cycles, dtype=np.float64)
    if arch.spatten.kv_buffer_allocations is None:
        return np.zeros_like(c)
    b = np.asarray(resident, dtype=np.float64)
    cycle = c + release_latency(arch, keys) + fetch_round_trip(arch)  # head start to the head-after-next's start
    per_switch = np.maximum(0.0, cycle / np.maximum(b, 1.0) - c)
    return np.where(b > 0, np.maximum(0.0, heads - b) * per_switch, 0.0)


def boundary_cycles(arch: SpattenArch, *, prev_keys: Num, keys: Num, prev_heads: int, heads: int,
                    parallelism: int) -> Num:
    """Cycles the start of a layer waits at its boundary for the token and head top-k that chose its tokens and
    heads (the shared engine runs one after the other), plus the first K fetch's round trip, which cannot be
    issued ahead once the kept list is unknown. Zero where the boundary prunes nothing (the list is the previous
    layer's) or the arch runs the top-k beside the pipe (``layer_topk_serial: false``)."""
    k = np.asarray(keys, dtype=np.float64)
    if not arch.spatten.layer_topk_serial:
        return np.zeros_like(k)
    cyc_tok, _ = expected_topk_v(np.asarray(prev_keys).astype(np.int64), k.astype(np.int64), parallelism)
    cyc_head, _ = expected_topk_v(np.asarray(prev_heads), np.asarray(heads), parallelism)
    pruned = (k < np.asarray(prev_keys, dtype=np.float64)) | (heads < prev_heads)
    return np.where(pruned, cyc_tok + cyc_head + fetch_round_trip(arch), 0.0)
