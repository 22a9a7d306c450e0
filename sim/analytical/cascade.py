"""Attention as a cascade of extended Einsums (FuseMax's notation).

Each :class:`Einsum` knows its output ranks, its input tensors with their ranks, the ranks it reduces and the
primitive operator applied per point of its iteration space. From that alone we derive

* op counts: the product of the sizes of its iteration ranks (output ranks plus reduced ranks);
* the number of passes a cascade must take over the key rank M: a pass ends whenever an Einsum that iterates
  over M consumes a tensor that was *fully* reduced over M (no M rank left) by an earlier Einsum;
* which tensors carry an M-fiber across a pass boundary: those must be held on chip (O(M) per query) or
  spilled to DRAM, which is what makes 3-pass cascades expensive.

Nothing here is typed in per cascade: the three cascades below are data, and the analyses are generic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from attnforge.sim.specs.registry import Registry

ArrayLike = np.ndarray | int | float

#: Rank names that are (parts of) the key sequence M. "m" is the untiled rank, m1/m0 the tiled halves.
M_RANKS: frozenset[str] = frozenset({"m", "m1", "m0"})
#: Primitive operators an Einsum may apply per iteration point (the arch's op tables cost them).
OPERATORS: tuple[str, ...] = ("mac", "max", "add", "exp", "mul", "div")


@dataclass(frozen=True)
class Operand:
    tensor: str
    ranks: tuple[str, ...]
    #: True when the Einsum reads only the final step of an iterative rank (e.g. RNV[M1]); such a read is no
    #: iteration over that rank.
    final: bool = False


@dataclass(frozen=True)
class Einsum:
    name: str
    ranks: tuple[str, ...]
    inputs: tuple[Operand, ...]
    op: str
    reduce: tuple[str, ...] = ()
    #: Iterative ranks (m1 -> m1+1): the output carries running state along this rank.
    iterative: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.op not in OPERATORS:
            raise ValueError(f"einsum {self.name}: operator {self.op!r} not in {OPERATORS}")

    @property
    def iteration_ranks(self) -> tuple[str, ...]:
        out = list(self.ranks)
        for r in self.reduce:
            if r not in out:
                out.append(r)
        return tuple(out)

    def ops(self, sizes: Mapping[str, ArrayLike]) -> ArrayLike:
        """Operator applications: one per point of the iteration space (batch and heads included)."""
        n: ArrayLike = sizes.get("b", 1) * sizes.get("h", 1)
        for r in self.iteration_ranks:
            n = n * sizes[r]
        return n

    def output_size(self, sizes: Mapping[str, ArrayLike]) -> ArrayLike:
        n: ArrayLike = sizes.get("b", 1) * sizes.get("h", 1)
        for r in self.ranks:
            n = n * sizes[r]
        return n

    @property
    def iterates_m(self) -> bool:
        return any(r in M_RANKS for r in self.iteration_ranks)

    @property
    def fully_reduces_m(self) -> bool:
        """Its output has no M rank left although it iterated over M: a global reduction over the keys."""
        return self.iterates_m and not any(r in M_RANKS for r in self.ranks)


@dataclass(frozen=True)
class Cascade:
    name: str
    einsums: tuple[Einsum, ...]
    #: Tensors read from DRAM (inputs of the whole cascade) and the final output written back.
    inputs: tuple[str, ...] = ("Q", "K", "V")
    output: str = "AV"
    description: str = ""
    _by_name: dict[str, Einsum] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._by_name.update({e.name: e for e in self.einsums})
        known = set(self.inputs)
        state = {e.name for e in self.einsums if e.iterative}
        for e in self.einsums:
            for o in e.inputs:
                if o.tensor not in known and o.tensor not in state:
                    raise ValueError(f"cascade {self.name}: {e.name} reads {o.tensor} before it is produced")
            known.add(e.name)

    def __getitem__(self, name: str) -> Einsum:
        return self._by_name[name]

    def names(self) -> list[str]:
        return [e.name for e in self.einsums]

    def ops(self, sizes: Mapping[str, ArrayLike]) -> dict[str, ArrayLike]:
        return {e.name: e.ops(sizes) for e in self.einsums}

    def ops_by_operator(self, sizes: Mapping[str, ArrayLike]) -> dict[str, ArrayLike]:
        out: dict[str, ArrayLike] = {}
        for e in self.einsums:
            out[e.op] = out.get(e.op, 0) + e.ops(sizes)
        return out

    @cached_property
    def pass_of(self) -> dict[str, int]:
        """Pass index (1-based) in which each Einsum runs, derived from data dependencies alone."""
        passes: dict[str, int] = {t: 1 for t in self.inputs}
        for e in self.einsums:
            p = 1
            for o in e.inputs:
                if o.tensor not in passes:  # running state carried from the previous key tile
                    continue
                producer = self._by_name.get(o.tensor)
                need = passes[o.tensor]
                if producer is not None and producer.fully_reduces_m and e.iterates_m:
                    need += 1
                p = max(p, need)
            passes[e.name] = p
        return {e.name: passes[e.name] for e in self.einsums}

    @property
    def passes(self) -> int:
        return max(self.pass_of.values())

    def crossing_tensors(self) -> list[str]:
        """Tensors with an M rank that are produced in one pass and read in a later one.

        These M-fibers are what a k-pass cascade must hold on chip between passes or spill to DRAM.
        """
        out: list[str] = []
        for e in self.einsums:
            for o in e.inputs:
                prod = self._by_name.get(o.tensor)
                if prod is None or o.tensor in out:
                    continue
                if self.pass_of[prod.name] < self.pass_of[e.name] and any(r in M_RANKS for r in prod.ranks):
                    out.append(o.tensor)
        return out

    def live_fibers_per_query(self) -> int:
        """Largest number of M-fibers (per query row) live at any pass boundary; buffers may reuse in place."""
        best = 0
        for boundary in range(1, self.passes):
            live = 0
            for t in self.crossing_tensors():
                born = self.pass_of[t]
                last = max(self.pass_of[e.name] for e in self.einsums if any(o.tensor == t for o in e.inputs))
                if born <= boundary < last:
                    live += 1
            best = max(best, live)
        return best

    def spill_words(self, sizes: Mapping[str, ArrayLike], only: Sequence[str] | None = None) -> ArrayLike:
        """DRAM words moved if the crossing M-fibers (or ``only`` those) spill: written once, read once per later pass."""
        total: ArrayLike = 0
        for t in self.crossing_tensors():
            if only is not None and t not in only:
                continue
            size = self[t].output_size(sizes)
            later = {self.pass_of[e.name] for e in self.einsums if any(o.tensor == t for o in e.inputs)}
            later.discard(self.pass_of[t])
            total = total + size * (1 + len(later))
        return total


def _op(tensor: str, *ranks: str, final: bool = False) -> Operand:
    return Operand(tensor, tuple(ranks), final)


def three_pass() -> Cascade:
    """Numerically stable softmax attention as the unfused and FLAT baselines compute it."""
    return Cascade(
        name="3-pass",
        description="stable softmax: global max, then exp and sum, then normalise and multiply by V",
        einsums=(
            Einsum("QK", ("m", "p"), (_op("Q", "e", "p"), _op("K", "e", "m")), "mac", reduce=("e",)),
            Einsum("GM", ("p",), (_op("QK", "m", "p"),), "max", reduce=("m",)),
            Einsum("SN", ("m", "p"), (_op("QK", "m", "p"), _op("GM", "p")), "exp"),
            Einsum("SD", ("p",), (_op("SN", "m", "p"),), "add", reduce=("m",)),
            Einsum("A", ("m", "p"), (_op("SN", "m", "p"), _op("SD", "p")), "div"),
            Einsum("AV", ("f", "p"), (_op("A", "m", "p"), _op("V", "f", "m")), "mac", reduce=("m",)),
        ),
    )


def two_pass() -> Cascade:
    """M tiled into M1 x M0 with local maxima and sums; one more sweep over M1 rescales with the global max."""
    return Cascade(
        name="2-pass",
        description="local max/sum per key tile, then a second sweep rescales partial results by the global max",
        einsums=(
            Einsum("QK", ("m1", "m0", "p"), (_op("Q", "e", "p"), _op("K", "e", "m1", "m0")), "mac", reduce=("e",)),
            Einsum("LM", ("m1", "p"), (_op("QK", "m1", "m0", "p"),), "max", reduce=("m0",)),
            Einsum("GM", ("p",), (_op("LM", "m1", "p"),), "max", reduce=("m1",)),
            Einsum("SLN", ("m1", "m0", "p"), (_op("QK", "m1", "m0", "p"), _op("LM", "m1", "p")), "exp"),
            Einsum("SLD", ("m1", "p"), (_op("SLN", "m1", "m0", "p"),), "add", reduce=("m0",)),
            Einsum("SLNV", ("m1", "f", "p"), (_op("SLN", "m1", "m0", "p"), _op("V", "f", "m1", "m0")), "mac", reduce=("m0",)),
            Einsum("PRM", ("m1", "p"), (_op("LM", "m1", "p"), _op("GM", "p")), "exp"),
            Einsum("SD", ("p",), (_op("SLD", "m1", "p"), _op("PRM", "m1", "p")), "mac", reduce=("m1",)),
            Einsum("NV", ("f", "p"), (_op("SLNV", "m1", "f", "p"), _op("PRM", "m1", "p")), "mac", reduce=("m1",)),
            Einsum("AV", ("f", "p"), (_op("NV", "f", "p"), _op("SD", "p")), "div"),
        ),
    )


def one_pass() -> Cascade:
    """FuseMax's 1-pass cascade: running max, denominator and numerator, corrected per key tile by PRM.

    Written as in the FuseMax notebook (accelerator-zoo fusemax.ipynb); the division is deferred past the M1 loop.
    """
    it = ("m1",)
    return Cascade(
        name="1-pass",
        description="online softmax: running max/denominator/numerator rescaled per key tile, one division at the end",
        einsums=(
            Einsum("QK", ("m1", "m0", "p"), (_op("Q", "e", "p"), _op("K", "e", "m1", "m0")), "mac", reduce=("e",)),
            Einsum("LM", ("m1", "p"), (_op("QK", "m1", "m0", "p"),), "max", reduce=("m0",)),
            Einsum("RM", ("m1", "p"), (_op("RM", "m1", "p"), _op("LM", "m1", "p")), "max", iterative=it),
            Einsum("SLN", ("m1", "m0", "p"), (_op("QK", "m1", "m0", "p"), _op("RM", "m1", "p")), "exp"),
            Einsum("PRM", ("m1", "p"), (_op("RM", "m1", "p"),), "exp"),
            Einsum("SPD", ("m1", "p"), (_op("PRM", "m1", "p"), _op("RD", "m1", "p")), "mac"),
            Einsum("SLD", ("m1", "p"), (_op("SLN", "m1", "m0", "p"),), "add", reduce=("m0",)),
            Einsum("RD", ("m1", "p"), (_op("SPD", "m1", "p"), _op("SLD", "m1", "p")), "add", iterative=it),
            Einsum("SPNV", ("m1", "f", "p"), (_op("PRM", "m1", "p"), _op("RNV", "m1", "f", "p")), "mac"),
            Einsum("SLNV", ("m1", "f", "p"), (_op("SLN", "m1", "m0", "p"), _op("V", "f", "m1", "m0")), "mac", reduce=("m0",)),
            Einsum("RNV", ("m1", "f", "p"), (_op("SPNV", "m1", "f", "p"), _op("SLNV", "m1", "f", "p")), "add", iterative=it),
            Einsum("AV", ("f", "p"), (_op("RNV", "f", "p", final=True), _op("RD", "p", final=True)), "div"),
        ),
    )


def gemm() -> Cascade:
    """One matmul, Z[m,p] = sum_e X[e,p] W[e,m]: lets single GEMMs (peer comparisons) run through the same engine."""
    return Cascade(
        name="gemm",
        description="a single matmul (rank p: output columns, m: output rows, e: reduction)",
        einsums=(Einsum("QK", ("m", "p"), (_op("Q", "e", "p"), _op("K", "e", "m")), "mac", reduce=("e",)),),
        inputs=("Q", "K"),
        output="QK",
    )


#: The cascades by name, built once at import.
CASCADES: Registry[Cascade] = Registry("cascade", ((c.name, c) for c in (three_pass(), two_pass(), one_pass(), gemm())))


def get_cascade(name: str) -> Cascade:
    """The named cascade ('1-pass', '2-pass', '3-pass', 'gemm')."""
    return CASCADES.get(name)


def tiled_sizes(sizes: Mapping[str, ArrayLike], m0: ArrayLike) -> dict[str, ArrayLike]:
    """Add m1/m0 to a rank-size map, padding M up to whole key tiles (what the hardware actually iterates)."""
    out = dict(sizes)
    m1 = -(-np.asarray(sizes["m"]) // m0)
    out["m0"] = m0
    out["m1"] = m1
    return out


def sizes_of(names: Sequence[str], values: Sequence[ArrayLike]) -> dict[str, ArrayLike]:
    return dict(zip(names, values, strict=True))
