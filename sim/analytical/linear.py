"""One layer's linear layers (Q/K/V projections, output projection, FFN) for the end-to-end scope.

The FuseMax artifact (matmul.py) runs them as fully utilised matmuls on the 2D array with M = B*P rows, the same
latency on every accelerator; energy differs through each arch's buffer and RF tables. Modelled here as extra
stages of the same Schedule type so the engine needs no special case.
"""

from __future__ import annotations

from dataclasses import dataclass

from attnforge.sim.analytical.schedule import DRAM_BYTES, Num, Phase, Schedule, Stage
from attnforge.sim.specs.arch import CascadeArch


@dataclass(frozen=True)
class ProjectionWidths:
    """Output widths of the projections: Q and the attention output are heads x d_head wide, K and V only
    kv_heads x d_head (grouped-query attention projects onto the shared K/V heads alone). Multi-head models with
    heads x d_head = d_model give 3 D^2 for QKV, as before."""

    d_model: int
    q: int
    kv: int

    @classmethod
    def of(cls, d_model: int, heads: int | None = None, kv_heads: int | None = None,
           d_head: int | None = None) -> ProjectionWidths:
        if heads is None or d_head is None:
            return cls(d_model, d_model, d_model)
        return cls(d_model, heads * d_head, (heads if kv_heads is None else kv_heads) * d_head)

    def weights(self, d_ff: int) -> int:
        """Weight words: Q, K, V (D x width each), output projection (q width x D), FFN (2 D F)."""
        return self.d_model * (self.q + 2 * self.kv) + self.q * self.d_model + 2 * self.d_model * d_ff

    def activations_per_row(self, d_ff: int) -> int:
        """Words in and out per token: QKV input once and its outputs, the output projection's in and out, and
        the FFN's two matmuls (D in, F out, F in, D out)."""
        return self.d_model + (self.q + 2 * self.kv) + (self.q + self.d_model) + 2 * self.d_model + 2 * d_ff


def linear_macs(rows: Num, d_model: int, d_ff: int, widths: ProjectionWidths | None = None) -> Num:
    """MACs of QKV (3 D^2 for multi-head), output projection (D^2) and the FFN (2 D F) for ``rows`` tokens."""
    w = widths or ProjectionWidths.of(d_model)
    return rows * w.weights(d_ff)


def add_linear_layers(s: Schedule, arch: CascadeArch, *, rows: Num, d_model: int, d_ff: int,
                      widths: ProjectionWidths | None = None) -> Schedule:
    """Append the linear layers to ``s`` as one fully utilised stage (see the module docstring)."""
    w = widths or ProjectionWidths.of(d_model)
    a2 = arch.arrays["2d"]
    macs = linear_macs(rows, d_model, d_ff, w)
    cycles = macs / a2.pes
    weights = w.weights(d_ff)
    acts = rows * w.activations_per_row(d_ff)
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
