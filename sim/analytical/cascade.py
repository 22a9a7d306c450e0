"""Attention as a cascade of extended Einsums (FuseMax's notation).

Each :class:`Einsum` knows its output ranks, its input tensors with their ranks, the ranks it reduces and the
primitive operator applied per point of its iteration space. From that alone we derive

* op counts: the product of the sizes of its iteration ranks (output ranks plus reduced ranks);
* the number of passes a cascade must take over the key rank M: a pass ends whenever an Einsum that iterates
  over M consumes a tensor that was *fully* reduced over M (no M rank left) by an earlier Einsum;
* which tensors carry an M-fiber across a pass boundary: those must be held on chip (O(M) per query) or
  spilled to DRAM, which is what makes 3-pass cascades expensive.

Nothing here is typed in per cascade: the cascades are YAML files (sim/analytical/cascades/*.yaml, format in
docs/variants.md), loaded into :data:`CASCADES`, and the analyses are generic.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from attnforge.sim.specs.errors import SpecError, from_pydantic, parse_yaml, read_yaml
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


#: Rank names a cascade may use: p (queries), m or m1 x m0 (keys, untiled or tiled into key tiles), e and f (the
#: head dimensions of Q/K and of V). b and h (batch, heads) are implicit in every tensor.
RANKS: tuple[str, ...] = ("p", "m", "m1", "m0", "e", "f")
#: Tensors a cascade may read from DRAM: the engine sizes Q per query head and K, V per K/V head.
INPUT_TENSORS: tuple[str, ...] = ("Q", "K", "V")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EinsumFile(_Strict):
    """One Einsum of a cascade file: ``{name, ranks, inputs: {tensor: [ranks]}, op, reduce, iterative, final}``."""

    name: str = Field(min_length=1)
    ranks: list[str]
    inputs: dict[str, list[str]] = Field(min_length=1)
    op: str
    reduce: list[str] = Field(default_factory=list)
    iterative: list[str] = Field(default_factory=list)
    #: Input tensors read only at the final step of their iterative rank (RNV[M1] in the 1-pass cascade).
    final: list[str] = Field(default_factory=list)


class CascadeFile(_Strict):
    """A cascade file (sim/analytical/cascades/*.yaml; format in docs/variants.md)."""

    name: str = Field(min_length=1)
    description: str = ""
    inputs: list[str] = Field(default_factory=lambda: list(INPUT_TENSORS), min_length=1)
    output: str = "AV"
    #: Optional check: the passes over M the cascade must take (derived from the data dependencies).
    passes: PositiveInt | None = None
    einsums: list[EinsumFile] = Field(min_length=1)


def _check_einsum(i: int, e: EinsumFile) -> Einsum:
    where = f"einsums.{i}"
    if e.op not in OPERATORS:
        raise SpecError(f"{where}.op", f"{e.name}: unknown operator {e.op!r}", OPERATORS)
    for key, ranks in (("ranks", e.ranks), ("reduce", e.reduce), ("iterative", e.iterative),
                       *((f"inputs.{t}", r) for t, r in e.inputs.items())):
        for r in ranks:
            if r not in RANKS:
                raise SpecError(f"{where}.{key}", f"{e.name}: unknown rank {r!r}", RANKS)
        if len(set(ranks)) != len(ranks):
            raise SpecError(f"{where}.{key}", f"{e.name}: a rank is listed twice")
    for r in e.reduce:
        if r in e.ranks:
            raise SpecError(f"{where}.reduce", f"{e.name}: {r!r} is reduced, so it cannot be an output rank too")
    for r in e.iterative:
        if r not in e.ranks:
            raise SpecError(f"{where}.iterative", f"{e.name}: iterative rank {r!r} is not an output rank", e.ranks)
    for t in e.final:
        if t not in e.inputs:
            raise SpecError(f"{where}.final", f"{e.name}: {t!r} is not one of its inputs", e.inputs)
    ops = tuple(Operand(t, tuple(r), t in e.final) for t, r in e.inputs.items())
    return Einsum(e.name, tuple(e.ranks), ops, e.op, reduce=tuple(e.reduce), iterative=tuple(e.iterative))


def cascade_from_data(raw: object, origin: str) -> Cascade:
    """A parsed cascade file -> a checked :class:`Cascade`; any mistake is one SpecError naming the field."""
    prefix = f"cascade {origin}"
    if not isinstance(raw, dict):
        raise SpecError(prefix, "must be a mapping with name, einsums (and optionally inputs, output, passes)")
    try:
        spec = CascadeFile(**raw)
    except ValidationError as exc:
        raise from_pydantic(exc, prefix=prefix) from None
    try:
        for t in spec.inputs:
            if t not in INPUT_TENSORS:
                raise SpecError("inputs", f"unknown input tensor {t!r}", INPUT_TENSORS)
        einsums = tuple(_check_einsum(i, e) for i, e in enumerate(spec.einsums))
        names = [e.name for e in einsums]
        for i, n in enumerate(names):
            if n in names[:i] or n in spec.inputs:
                raise SpecError(f"einsums.{i}.name", f"{n!r} is defined twice")
        if spec.output not in names:
            raise SpecError("output", f"unknown Einsum {spec.output!r}", names)
        try:
            c = Cascade(spec.name, einsums, inputs=tuple(spec.inputs), output=spec.output, description=spec.description)
        except ValueError as exc:
            raise SpecError("einsums", str(exc).split(": ", 1)[-1]) from None
        if spec.passes is not None and spec.passes != c.passes:
            raise SpecError("passes", f"says {spec.passes}, but the data dependencies take {c.passes} "
                            f"(pass of each Einsum: {c.pass_of})")
    except SpecError as exc:
        raise SpecError(f"{prefix}.{exc.field}", exc.problem, exc.allowed) from None
    return c


def load_cascade(path: str | Path) -> Cascade:
    """A user's cascade file (YAML) -> a checked :class:`Cascade`."""
    return cascade_from_data(read_yaml(path, "cascade", "name and einsums"), str(path))


def _builtin_names() -> list[str]:
    return sorted(p.name[:-5] for p in _data().iterdir() if p.name.endswith(".yaml"))


def _load_builtin(name: str) -> Cascade:
    text = _data().joinpath(f"{name}.yaml").read_text()
    c = cascade_from_data(parse_yaml(text, "cascade", f"{name}.yaml", "name and einsums"), f"{name}.yaml")
    if c.name != name:
        raise SpecError(f"cascade {name}.yaml.name", f"{c.name!r} differs from the file name {name!r}")
    return c


def _data():  # noqa: ANN202 - a Traversable
    """The folder of built-in files inside the package (a plain data folder, no __init__.py)."""
    return resources.files("attnforge.sim.analytical").joinpath("cascades")

#: The cascades by name, one YAML file each in sim/analytical/cascades/ (parsed on first use).
CASCADES: Registry[Cascade] = Registry.lazy("cascade", _builtin_names(), _load_builtin)


def resolve_cascade(ref: str, base: Path | None = None) -> Cascade:
    """A registered cascade name, or a cascade file (``*.yaml``, relative to ``base`` when given)."""
    if ref.endswith((".yaml", ".yml")):
        path = Path(ref)
        if base is not None and not path.is_absolute():
            path = base / path
        return load_cascade(path)
    return CASCADES.get(ref)


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
