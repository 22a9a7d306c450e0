"""Every width of the SpAtten datapath, derived from the RTL's sizes: the parameter set the RTL blocks are built
from, the golden model computes with and the export manifest records (so it sits in the contract, below both)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from attnforge.sim.contract.fixedpoint import FixedPointConfig, clog2
from attnforge.sim.specs.errors import SpecError


def _pow2(x: int) -> bool:
    return x >= 1 and not x & (x - 1)


@dataclass(frozen=True)
class SpattenFx:
    """Every width of the SpAtten datapath, derived from the RTL's sizes (the export manifest records them)."""

    lanes: int = 16  #: Q x K multipliers (the paper: 512); one K buffer line per cycle
    min_d: int = 4  #: smallest head dimension the adder tree splits into (lanes / min_d scores per cycle)
    max_d: int = 8  #: largest head dimension (the paper: 64)
    max_n: int = 64  #: longest key row (sizes buffers and accumulators)
    word_bits: int = 12  #: on-chip Q/K word (the paper's 12-bit datapath)
    lsb_bits: int = 4  #: K bits fetched only on a refetch (always 4 in the paper)
    v_bits: int = 12
    prob_frac: int = 11  #: probabilities are unsigned Q0.prob_frac (12-bit words, 1.0 = 2**11)
    out_frac: int = 4  #: fraction bits of the attention output (units of V's scale)

    def validate(self) -> None:
        for name in ("lanes", "min_d", "max_d"):
            if not _pow2(getattr(self, name)):
                raise SpecError(name, f"{getattr(self, name)} must be a power of two")
        if not self.min_d <= self.max_d <= self.lanes:
            raise SpecError("max_d", f"need min_d <= max_d <= lanes, got {self.min_d}, {self.max_d}, {self.lanes}")
        if not 1 <= self.max_n <= 1024:
            raise SpecError("max_n", f"{self.max_n} is outside 1..1024 (products stay inside 64 bits)", "1..1024")
        if not 1 <= self.lsb_bits < self.word_bits:
            raise SpecError("lsb_bits", f"{self.lsb_bits} must be below word_bits = {self.word_bits}")

    @property
    def s(self) -> int:
        """Scores per beat at the narrowest head: softmax lanes, top-k comparators and prob x V rows."""
        return self.lanes // self.min_d

    @property
    def msb_bits(self) -> int:
        return self.word_bits - self.lsb_bits

    @cached_property
    def fx(self) -> FixedPointConfig:
        """The softmax reuses the FuseMax exponent unit and divider sizing (Q1.15 exponentials)."""
        return FixedPointConfig(e=self.max_d, f=self.max_d, rows=1, max_keys=self.max_n, in_bits=self.word_bits)

    @property
    def score_bits(self) -> int:
        return self.fx.score_bits

    @property
    def prob_bits(self) -> int:
        return self.prob_frac + 1

    @property
    def acc_bits(self) -> int:
        """prob x V accumulator: max_n products of a Q0.11 probability and a 12-bit value, signed."""
        return self.prob_bits + self.v_bits + clog2(self.max_n) + 1

    @property
    def out_bits(self) -> int:
        """Rounded probabilities can sum slightly above 1.0; two integer bits of headroom."""
        return self.v_bits + self.out_frac + 2

    @property
    def n_bits(self) -> int:
        return max(1, self.max_n.bit_length())

    @property
    def idx_bits(self) -> int:
        return max(1, (self.max_n - 1).bit_length())

    @property
    def dlog_bits(self) -> int:
        return max(1, self.max_d.bit_length().bit_length())

    def check_d(self, d: int) -> None:
        if not (_pow2(d) and self.min_d <= d <= self.max_d):
            allowed = [1 << i for i in range(clog2(self.min_d), clog2(self.max_d) + 1)]
            raise SpecError("d", f"head dimension {d} is not supported by this adder tree", allowed)

    def keys_per_beat(self, d: int) -> int:
        return self.lanes // d


@dataclass(frozen=True)
class ImportanceCfg:
    """Sizes of the cascade-pruning accumulators (``rtl/spatten/importance.py``) and the widths that follow from them.

    Why these widths: a token accumulator receives one probability per (query, head, layer) -- the column sums of
    the paper's Sec. III-A, cumulative over queries, heads and layers until a clear job -- and a head accumulator one
    ``sum_f |out[f]|`` per (query, layer) (Sec. III-B). Both are bounded by the largest code each add can carry, so
    ``imp_bits`` is the width of the larger bound and no sequence of at most ``max_queries`` x ``max_heads`` x
    ``max_layers`` add jobs (each naming a token at most once) can overflow. The read-out feeds the top-k engine
    unsigned ``imp_bits`` scores.
    """

    fx: SpattenFx = SpattenFx()
    max_heads: int = 12  #: head accumulators (MiniLM and BERT-Base: 12)
    max_queries: int = 64  #: queries per head and layer the widths are sized for
    max_layers: int = 6  #: layers the scores accumulate over before a clear (MiniLM: 6)

    def validate(self) -> None:
        self.fx.validate()
        for name, hi in (("max_heads", 256), ("max_queries", 1 << 16), ("max_layers", 256)):
            v = getattr(self, name)
            if not 1 <= v <= hi:
                raise SpecError(name, f"{v} is outside 1..{hi}", f"1..{hi}")
        if self.imp_bits > 62:
            raise SpecError("max_queries", f"accumulators would need {self.imp_bits} bits (at most 62)")

    @property
    def s(self) -> int:
        """Lanes per beat: the softmax's S (probabilities in) and the top-k's comparators (scores out)."""
        return self.fx.s

    @property
    def token_bound(self) -> int:
        """Largest token score: every (query, head, layer) adds at most the largest probability code."""
        return self.max_queries * self.max_heads * self.max_layers * ((1 << self.fx.prob_bits) - 1)

    @property
    def head_bound(self) -> int:
        """Largest head score: every (query, layer) adds at most max_d magnitudes of out_bits signed words."""
        return self.max_queries * self.max_layers * self.fx.max_d * (1 << (self.fx.out_bits - 1))

    @property
    def imp_bits(self) -> int:
        return max(self.token_bound, self.head_bound).bit_length()

    @property
    def max_entries(self) -> int:
        """Entries a read-out job may name: the larger of the two accumulator arrays (the top-k's max_n)."""
        return max(self.fx.max_n, self.max_heads)

    @property
    def idx_bits(self) -> int:
        return max(1, (self.max_entries - 1).bit_length())

    @property
    def n_bits(self) -> int:
        return max(1, self.max_entries.bit_length())

    @property
    def head_sum_bits(self) -> int:
        """sum_f |out[f]| of one attention-output vector."""
        return (self.fx.max_d * (1 << (self.fx.out_bits - 1))).bit_length()

    @property
    def abs_tree_pipe(self) -> int:
        """Registered levels of the head path's adder tree (log2 max_d)."""
        return self.fx.max_d.bit_length() - 1
