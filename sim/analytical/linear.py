"""One layer's linear layers (Q/K/V projections, output projection, FFN) for the end-to-end scope.

The FuseMax artifact (matmul.py) runs them as fully utilised matmuls on the 2D array with M = B*P rows, the same
latency on every accelerator; energy differs through each arch's buffer and RF tables. Modelled here as extra
stages of the same Schedule type so the engine needs no special case.
"""

from __future__ import annotations

from attnforge.sim.analytical.schedule import Num, Phase, Schedule, Stage
from attnforge.sim.specs.arch import Arch


def linear_macs(rows: Num, d_model: int, d_ff: int) -> Num:
    """MACs of QKV (3 D^2), output projection (D^2) and the FFN (2 D F) for ``rows`` tokens."""
    return rows * (4 * d_model * d_model + 2 * d_model * d_ff)


def add_linear_layers(s: Schedule, arch: Arch, *, rows: Num, d_model: int, d_ff: int) -> Schedule:
    a2 = arch.arrays["2d"]
    macs = linear_macs(rows, d_model, d_ff)
    cycles = macs / a2.pes
    weights = 4 * d_model * d_model + 2 * d_model * d_ff
    # activations in and out of each of the six matmuls
    acts = rows * (8 * d_model + 2 * d_ff)
    dram = weights + acts
    s.stages.append(Stage("linear", [Phase("linear", {"2d": cycles})], dram))
    s.busy["2d"] = s.busy["2d"] + cycles
    s.useful["2d"] = s.useful["2d"] + cycles
    act = s.actions
    act["2d.mac"] = act.get("2d.mac", 0.0) + macs
    act["2d.rf_read"] = act.get("2d.rf_read", 0.0) + 2 * macs
    act["2d.rf_write"] = act.get("2d.rf_write", 0.0) + macs
    act["dram.word"] = act.get("dram.word", 0.0) + dram
    # output-stationary tiles: each input row is broadcast along the array's columns, each weight column along rows
    act["buffer.read"] = act.get("buffer.read", 0.0) + macs / a2.cols + macs / a2.rows
    act["buffer.write"] = act.get("buffer.write", 0.0) + dram
    s.flops = s.flops + 2 * macs
    s.compulsory_dram_words = s.compulsory_dram_words + dram
    return s
