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
