"""One layer's linear layers (Q/K/V projections, output projection, FFN) for the end-to-end scope.

The FuseMax artifact (matmul.py) runs them as fully utilised matmuls on the 2D array with M = B*P rows, the same
latency on every accelerator; energy differs through each arch's buffer and RF tables. Modelled here as extra
stages of the same Schedule type so the engine needs no special case.
"""

from __future__ import annotations

from attnforge.sim.analytical.schedule import DRAM_BYTES, Num, Phase, Schedule, Stage
from attnforge.sim.specs.arch import CascadeArch


def linear_macs(rows: Num, d_model: int, d_ff: int) -> Num:
    """MACs of QKV (3 D^2), output projection (D^2) and the FFN (2 D F) for ``rows`` tokens."""
    return rows * (4 * d_model * d_model + 2 * d_model * d_ff)


def add_linear_layers(s: Schedule, arch: CascadeArch, *, rows: Num, d_model: int, d_ff: int) -> Schedule:
    a2 = arch.arrays["2d"]
    macs = linear_macs(rows, d_model, d_ff)
    cycles = macs / a2.pes
    weights = 4 * d_model * d_model + 2 * d_model * d_ff
    # activations in and out of each of the six matmuls
    acts = rows * (8 * d_model + 2 * d_ff)
    dram_bytes = (weights + acts) * arch.word_bytes
    s.stages.append(Stage("linear", [Phase("linear", {"2d": cycles})], dram_bytes))
    s.busy["2d"] = s.busy["2d"] + cycles
    s.useful["2d"] = s.useful["2d"] + cycles
    act = s.actions
    act.add("2d", "mac", macs)
    act.add("2d", "rf_read", 2 * macs)
    act.add("2d", "rf_write", macs)
    act.add(*DRAM_BYTES, dram_bytes)
    # output-stationary tiles: each input row is broadcast along the array's columns, each weight column along rows
    act.add("buffer", "read", macs / a2.cols + macs / a2.rows)
    act.add("buffer", "write", weights + acts)
    s.flops = s.flops + 2 * macs
    s.compulsory_dram_bytes = s.compulsory_dram_bytes + dram_bytes
    return s
