"""The tile engine's jobs as stream beats: one head's Q/K/V, in the engine's cfg/q/k/v beat order.

One packer for every driver of ``fusemax-tile`` (the cocotb bench, the fastbench jobs, a whole-layer top's model),
so the cfg word (key tiles, padding of the last tile, causal diagonal) is built the same way everywhere. The
padding lanes of K and V are filled with ``pad_value`` rather than zeros, so a bench proves the engine masks them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from attnforge.sim.contract import designs as contract
from attnforge.sim.contract.fixedpoint import FixedPointConfig
from attnforge.sim.fusemax.golden import QuantizedAttention


@dataclass(frozen=True)
class HeadBeats:
    """Every beat of one head, query tile after query tile; ``n_tiles`` key tiles per query tile."""

    cfg: list[int]
    q: list[int]
    k: list[int]
    v: list[int]
    n_tiles: int
    pad_keys: int


def cfg_word(c: contract.Contract, n_tiles: int, alpha_q: int, alpha_sh: int, pad_keys: int = 0, causal: bool = False,
             diag: int = 0) -> int:
    """The packed cfg beat (see :func:`attnforge.sim.contract.designs.fusemax_tile_cfg` for the fields)."""
    return c["cfg"].pack({"n_tiles": n_tiles, "alpha": {"alpha_q": alpha_q, "alpha_sh": alpha_sh},
                          "pad_keys": pad_keys, "causal": int(causal), "diag": diag})


def head_beats(qa: QuantizedAttention, fx: FixedPointConfig, cols: int, causal: bool = False, diag: int = 0,
               pad_value: int = -77) -> HeadBeats:
    """cfg, q, k, v payloads for every query tile of ``qa`` (queries padded with zeros to a multiple of cols, keys
    with ``pad_value`` to a multiple of rows); query tile ``t`` gets the causal diagonal ``diag + t * cols``."""
    rows, e, f = fx.rows, qa.q.shape[1], qa.v.shape[1]
    m, p = qa.k.shape[0], qa.q.shape[0]
    n = -(-m // rows)
    tiles = math.ceil(p / cols)
    c = contract.fusemax_tile(rows=rows, cols=cols, e=fx.e, f=fx.f, max_keys=fx.max_keys)
    qpad = np.zeros((tiles * cols, e), dtype=np.int64)
    qpad[:p] = qa.q
    kpad = np.full((n * rows, e), pad_value, dtype=np.int64)
    kpad[:m] = qa.k
    vpad = np.full((n * rows, f), pad_value, dtype=np.int64)
    vpad[:m] = qa.v
    ks = [c["k"].pack([int(x) for x in kpad[j * rows:(j + 1) * rows, i]]) for j in range(n) for i in range(e)]
    vs = [c["v"].pack([int(x) for x in vpad[j * rows:(j + 1) * rows, i]]) for j in range(n) for i in range(f)]
    out = HeadBeats([], [], [], [], n, n * rows - m)
    for t in range(tiles):
        out.cfg.append(cfg_word(c, n, qa.alpha_q, qa.alpha_sh, n * rows - m, causal, diag + t * cols))
        out.q.extend(c["q"].pack([int(x) for x in qpad[t * cols:(t + 1) * cols, i]]) for i in range(e))
        out.k.extend(ks)
        out.v.extend(vs)
    return out
