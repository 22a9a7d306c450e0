"""Sizes of the whole SpAtten accelerator (``spatten-top``) and the widths that follow: the pipeline's datapath
(:class:`SpattenFx`), the importance accumulators (:class:`ImportanceCfg`), the head count and the memory port.

Why the memory word is one row of ``max_d`` values: the top fetches K and V only for the tokens still alive, at
arbitrary positions, so a word must hold one token's row (a Q row or V row of 12-bit words, a K row's MSB or LSB
codes in the low bits). Rows are addressed ``base + head * stride + token`` (the host's layout of one layer), so a
pruned token or head is simply never addressed. The top taps the head dimension as one key per Q x K beat, so it
is built with ``lanes == max_d``; a layer whose head dimension D is a smaller tap (``min_d <= D < max_d``, a power
of two) runs at max_d's cost, the Q lanes from D up zeroed and the outputs' too, so the rows' upper lanes may hold
anything (the host lays rows out at max_d words either way).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from attnforge.sim.contract.memport import MemPort
from attnforge.sim.contract.spatten_fx import ImportanceCfg, SpattenFx
from attnforge.sim.specs.errors import SpecError


@dataclass(frozen=True)
class SpattenTopCfg:
    fx: SpattenFx = SpattenFx(lanes=8, min_d=4, max_d=8, max_n=64)
    max_heads: int = 4
    max_layers: int = 6
    addr_bits: int = 20
    len_bits: int = 8

    def validate(self) -> SpattenTopCfg:
        self.fx.validate()
        if self.fx.lanes != self.fx.max_d:
            raise SpecError("lanes", f"the top needs lanes == max_d (one key per beat), got {self.fx.lanes}, "
                            f"{self.fx.max_d}")
        self.imp.validate()
        if not 1 <= self.addr_bits <= 32:
            raise SpecError("addr_bits", f"{self.addr_bits} outside 1..32")
        return self

    @cached_property
    def imp(self) -> ImportanceCfg:
        """Queries per head and layer are at most the alive tokens (max_n)."""
        return ImportanceCfg(self.fx, self.max_heads, self.fx.max_n, self.max_layers)

    @property
    def head_bits(self) -> int:
        return max(1, (self.max_heads - 1).bit_length())

    @property
    def heads_n_bits(self) -> int:
        return max(1, self.max_heads.bit_length())

    @property
    def mem(self) -> MemPort:
        fx = self.fx
        return MemPort(addr_bits=self.addr_bits, data_bits=fx.max_d * max(fx.word_bits, fx.v_bits),
                       len_bits=self.len_bits, tag_bits=2)

    @property
    def topk_n(self) -> int:
        """The boundary top-k ranks tokens or heads: the importance block's largest read-out."""
        return self.imp.max_entries


#: memory response tags: which fetcher a beat belongs to
TAG_Q, TAG_K, TAG_V = 0, 1, 2
