"""Mapping files: a dataflow as YAML (name, cascade, binding, stages with phases, placement, ...), checked once.

The built-in mappings are such files (mappings/data/*.yaml) and a user's ``--mapping FILE.yaml`` is read by the
same code, so both get the same checks: every field typed (pydantic), every Einsum bound to one array and placed
in exactly one phase, names that exist in the cascade, and any mistake as one SpecError naming the field and the
allowed values. The format is in docs/variants.md.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, PositiveInt, ValidationError

from attnforge.mappings.spec import PLACEMENTS, Mapping, PhaseSpec, StageSpec
from attnforge.sim.analytical.cascade import OPERATORS, Cascade, resolve_cascade
from attnforge.sim.specs.errors import SpecError, from_pydantic, parse_yaml, read_yaml
from attnforge.sim.specs.registry import Registry

_KEYS = "name, cascade, binding and stages"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PhaseFile(_Strict):
    """A phase: Einsums whose work overlaps, and optionally a stall (an Einsum whose cycles x the 2D array's rows are
    exposed). In a file a phase without a stall may be written as a plain list of Einsum names."""

    einsums: list[str] = Field(default_factory=list)
    stall: str | None = None


class StageFile(_Strict):
    name: str = Field(min_length=1)
    phases: list[list[str] | PhaseFile] = Field(min_length=1)


class MappingFile(_Strict):
    """A mapping file (mappings/data/*.yaml; format in docs/variants.md)."""

    name: str = Field(min_length=1)
    #: A registered cascade name, or a cascade file (*.yaml, relative to the mapping file's folder).
    cascade: str = Field(min_length=1)
    description: str = ""
    #: Einsum -> array of the arch ("2d", "1d"); every Einsum of the cascade exactly once.
    binding: dict[str, str] = Field(min_length=1)
    stages: list[StageFile] = Field(min_length=1)
    placement: dict[str, str] = Field(default_factory=dict)
    op_cycles: dict[str, PositiveInt] = Field(default_factory=dict)
    full_spill_above: Annotated[float, Field(ge=0, le=1)] = 0.5
    query_block: PositiveInt | None = None
    fiber_rows: PositiveInt | None = None
    pack_group_queries: bool = True


def _check(spec: MappingFile, c: Cascade) -> Mapping:
    """Cross-check a parsed file against its cascade (field names relative to the file)."""
    names = c.names()
    for e, arr in spec.binding.items():
        if e not in names:
            raise SpecError(f"binding.{e}", f"no Einsum {e!r} in cascade {c.name}", names)
        if not arr:
            raise SpecError(f"binding.{e}", "empty array name")
    for e in names:
        if e not in spec.binding:
            raise SpecError("binding", f"Einsum {e} of cascade {c.name} is bound to no array")
    stages: list[StageSpec] = []
    seen: dict[str, str] = {}
    for i, st in enumerate(spec.stages):
        if any(s.name == st.name for s in stages):
            raise SpecError(f"stages.{i}.name", f"stage {st.name!r} is defined twice")
        phases: list[PhaseSpec] = []
        for j, ph in enumerate(st.phases):
            ph = ph if isinstance(ph, PhaseFile) else PhaseFile(einsums=ph)
            where = f"stages.{i}.phases.{j}"
            for e in ph.einsums:
                if e not in names:
                    raise SpecError(f"{where}.einsums", f"no Einsum {e!r} in cascade {c.name}", names)
                if e in seen:
                    raise SpecError(f"{where}.einsums", f"Einsum {e} is already in stage {seen[e]}")
                seen[e] = st.name
            if ph.stall is not None and ph.stall not in names:
                raise SpecError(f"{where}.stall", f"no Einsum {ph.stall!r} in cascade {c.name}", names)
            if not ph.einsums and ph.stall is None:
                raise SpecError(where, "an empty phase (give einsums, a stall, or both)")
            phases.append(PhaseSpec(tuple(ph.einsums), ph.stall))
        stages.append(StageSpec(st.name, tuple(phases)))
    missing = [e for e in names if e not in seen]
    if missing:
        raise SpecError("stages", f"Einsum {missing[0]} of cascade {c.name} is in no phase")
    for t, where in spec.placement.items():
        if t not in names:
            raise SpecError(f"placement.{t}", f"no Einsum {t!r} in cascade {c.name} (inputs live in DRAM)", names)
        if where not in PLACEMENTS:
            raise SpecError(f"placement.{t}", f"unknown place {where!r}", PLACEMENTS)
    for op in spec.op_cycles:
        if op not in OPERATORS:
            raise SpecError(f"op_cycles.{op}", "unknown operator", OPERATORS)
    return Mapping(
        name=spec.name, cascade=c.name, binding=dict(spec.binding), stages=tuple(stages), placement=dict(spec.placement),
        op_cycles=dict(spec.op_cycles), full_spill_above=spec.full_spill_above, query_block=spec.query_block,
        fiber_rows=spec.fiber_rows, pack_group_queries=spec.pack_group_queries, description=spec.description,
        cascade_def=c,
    )


def mapping_from_data(raw: object, origin: str, base: Path | None = None) -> Mapping:
    """A parsed mapping file -> a checked :class:`Mapping` (its cascade resolved: a name, or a file under ``base``)."""
    prefix = f"mapping {origin}"
    if not isinstance(raw, dict):
        raise SpecError(prefix, f"must be a mapping with {_KEYS}")
    try:
        spec = MappingFile(**raw)
    except ValidationError as exc:
        raise from_pydantic(exc, prefix=prefix) from None
    try:
        c = resolve_cascade(spec.cascade, base)
    except SpecError as exc:
        if exc.field.startswith("cascade "):  # the cascade file's own error names its file and field
            raise
        raise SpecError(f"{prefix}.cascade", exc.problem, exc.allowed) from None
    try:
        return _check(spec, c)
    except SpecError as exc:
        raise SpecError(f"{prefix}.{exc.field}", exc.problem, exc.allowed) from None


def load_mapping_file(path: str | Path) -> Mapping:
    """A user's mapping file -> a checked :class:`Mapping`; a cascade file it names is read relative to it."""
    p = Path(path)
    return mapping_from_data(read_yaml(p, "mapping", _KEYS), str(p), p.parent)


def _data():  # noqa: ANN202 - a Traversable
    """The folder of built-in files inside the package (a plain data folder, no __init__.py)."""
    return resources.files("attnforge.mappings").joinpath("data")


def builtin_names() -> list[str]:
    return sorted(p.name[:-5] for p in _data().iterdir() if p.name.endswith(".yaml"))


def load_builtin(name: str) -> Mapping:
    text = _data().joinpath(f"{name}.yaml").read_text()
    m = mapping_from_data(parse_yaml(text, "mapping", f"{name}.yaml", _KEYS), f"{name}.yaml")
    if m.name != name:
        raise SpecError(f"mapping {name}.yaml.name", f"{m.name!r} differs from the file name {name!r}")
    return m


#: The built-in mappings by name, one YAML file each in mappings/data/ (parsed on first use).
MAPPINGS: Registry[Mapping] = Registry.lazy("mapping", builtin_names(), load_builtin)


def resolve_mapping(ref: str | Path | Mapping) -> Mapping:
    """A registered mapping name, a mapping file (``*.yaml``), or a Mapping object as it is."""
    if isinstance(ref, Mapping):
        return ref
    text = str(ref)
    if text.endswith((".yaml", ".yml")):
        return load_mapping_file(text)
    return MAPPINGS.get(text)


def check_mapping_arch(m: Mapping, arrays: object, arch_name: str) -> None:
    """Every array the binding names must exist on the arch (and the 2D array the tiling is built on)."""
    arrs = list(arrays)  # type: ignore[call-overload]
    for e, a in m.binding.items():
        if a not in arrs:
            raise SpecError(f"mapping {m.name}.binding.{e}", f"arch {arch_name} has no array {a!r}", arrs)
    if "2d" not in arrs:
        raise SpecError("arch", f"mapping {m.name} tiles keys and queries onto a '2d' array; arch {arch_name} has none",
                        arrs)
