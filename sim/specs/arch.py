"""Architecture specs: compute arrays, memory levels, clock and a per-action energy/area table.

Specs are YAML validated once into these pydantic models (the ZigZag way: typed objects, never dicts). The
presets ship in ``sim/specs/presets``; every value there cites its source. An op (``exp`` say) is costed per array:
how many cycles one PE spends on it and which energy actions it fires, so "exp as 6 MACs + 1 add on FuseMax's
PEs" and "exp on FLAT's dedicated unit" are two rows of data, not two code paths.
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError, model_validator

from attnforge.sim.specs.errors import SpecError, from_pydantic, parse_yaml, read_yaml

ACTIONS: tuple[str, ...] = ("mac", "add", "max", "exp", "mul", "div")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class OpCost(_Strict):
    """One operator on one PE: cycles per application (throughput) and the energy actions it fires."""

    cycles: PositiveInt = 1
    actions: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _known_actions(self) -> OpCost:
        for a in self.actions:
            if a not in ACTIONS:
                raise ValueError(f"unknown action {a!r}; allowed: {', '.join(ACTIONS)}")
        return self


class RegisterFile(_Strict):
    words: PositiveInt
    read_pj: float = Field(ge=0)
    write_pj: float = Field(ge=0)


class ComputeArray(_Strict):
    """A 1D or 2D array of identical PEs."""

    dims: tuple[PositiveInt, ...] = Field(min_length=1, max_length=2)
    ops: dict[str, OpCost]
    rf: RegisterFile
    #: An output-stationary systolic array: operands enter skewed, so every output tile of a matmul pays
    #: rows + cols - 2 cycles of fill and drain on top of its reduction length. The FuseMax artifact's aggregate
    #: model leaves this out (its presets keep False); SCALE-Sim and real RTL include it.
    systolic: bool = False

    @property
    def pes(self) -> int:
        n = 1
        for d in self.dims:
            n *= d
        return n

    @property
    def rows(self) -> int:
        return self.dims[0]

    @property
    def cols(self) -> int:
        return self.dims[-1]


class Buffer(_Strict):
    """The on-chip global buffer (FuseMax's L3).

    Energies are given at ``energy_ref_bytes`` (the capacity the cited table describes) and scale with
    sqrt(capacity) from there, as large wire-dominated SRAMs do (CACTI's trend), so sweeping the buffer size
    changes its access energy instead of leaving a stale figure.
    """

    bytes: PositiveInt
    read_pj_per_word: float = Field(ge=0)
    write_pj_per_word: float = Field(ge=0)
    energy_ref_bytes: PositiveInt | None = None

    @property
    def _scale(self) -> float:
        return (self.bytes / self.energy_ref_bytes) ** 0.5 if self.energy_ref_bytes else 1.0

    @property
    def read_pj(self) -> float:
        return self.read_pj_per_word * self._scale

    @property
    def write_pj(self) -> float:
        return self.write_pj_per_word * self._scale


class Dram(_Strict):
    bandwidth_gib_s: PositiveFloat
    pj_per_word: float = Field(ge=0)


class Arch(_Strict):
    name: str
    description: str = ""
    clock_mhz: PositiveFloat
    word_bits: PositiveInt = 16
    arrays: dict[str, ComputeArray]
    buffer: Buffer
    dram: Dram
    actions_pj: dict[str, float]
    leakage_w: float = Field(default=0.0, ge=0)
    area_um2: dict[str, float] = Field(default_factory=dict)
    sources: dict[str, str] = Field(default_factory=dict)
    #: Family-specific numbers a schedule builder reads (SpAtten's module latencies, say); unused by the Einsum
    #: cascade presets, so it is optional and empty by default.
    params: dict[str, float] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Arch:
        if not self.arrays:
            raise ValueError("arrays must define at least one compute array")
        missing = [a for a in ACTIONS if a not in self.actions_pj]
        if missing:
            raise ValueError(f"actions_pj lacks {', '.join(missing)}")
        for name, arr in self.arrays.items():
            for op, cost in arr.ops.items():
                if op not in ACTIONS:
                    raise ValueError(f"arrays.{name}.ops: unknown op {op!r}; allowed: {', '.join(ACTIONS)}")
                if not cost.actions:
                    raise ValueError(f"arrays.{name}.ops.{op}: needs at least one action")
        return self

    @property
    def word_bytes(self) -> int:
        return self.word_bits // 8

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram.bandwidth_gib_s * 2**30 / self.clock_hz

    def op_cost(self, array: str, op: str) -> OpCost:
        arr = self.arrays[array]
        if op not in arr.ops:
            raise SpecError(f"arch {self.name}.arrays.{array}.ops", f"has no {op!r} unit", arr.ops)
        return arr.ops[op]

    def area_mm2(self) -> float:
        """Sum of PE datapath and RF area plus the buffer (area_um2 holds per-instance and per-byte figures)."""
        a = self.area_um2
        total = 0.0
        for name, arr in self.arrays.items():
            total += arr.pes * a.get(f"pe_{name}", 0.0)
        total += self.buffer.bytes * a.get("buffer_per_byte", 0.0)
        return total / 1e6


def preset_names() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("attnforge.sim.specs.presets").iterdir() if p.name.endswith(".yaml"))


def load_arch(name_or_path: str | Path, overrides: dict[str, object] | None = None) -> Arch:
    """A preset by name or a YAML file by path, validated; overrides use dotted keys (``buffer.bytes``)."""
    text_path = Path(str(name_or_path))
    if text_path.suffix in (".yaml", ".yml"):
        raw = _resolve_extends(_read(text_path))
        origin = str(text_path)
    else:
        raw = _preset_raw(str(name_or_path))
        origin = str(name_or_path)
    if overrides:
        raw = _apply_overrides(raw, overrides)
    return _validate(raw, origin)


@lru_cache(maxsize=32)
def _preset_cached(name: str) -> Arch:
    return _validate(_preset_raw(name), name)


def get_preset(name: str) -> Arch:
    return _preset_cached(name)


def _preset_raw(name: str) -> dict:
    if name not in preset_names():
        raise SpecError("arch", f"unknown preset {name!r}", preset_names())
    src = resources.files("attnforge.sim.specs.presets").joinpath(f"{name}.yaml")
    return _resolve_extends(_parse_text(src.read_text(), f"{name}.yaml"), seen=(name,))


def _resolve_extends(raw: dict, seen: tuple[str, ...] = ()) -> dict:
    """``extends: NAME`` starts from another preset and deep-merges this file over it (no copied presets)."""
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw
    if base_name in seen:
        raise SpecError("arch.extends", f"cycle through {base_name!r}")
    if str(base_name) not in preset_names():
        raise SpecError("arch.extends", f"unknown preset {base_name!r}", preset_names())
    base = _resolve_extends(_parse_text(resources.files("attnforge.sim.specs.presets").joinpath(f"{base_name}.yaml").read_text(),
                                        f"{base_name}.yaml"), seen=(*seen, str(base_name)))
    return _deep_merge(base, raw)


def _deep_merge(base: dict, top: dict) -> dict:
    out = dict(base)
    for k, v in top.items():
        out[k] = _deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _read(path: Path) -> dict:
    return read_yaml(path, "arch", _ARCH_KEYS)  # type: ignore[return-value]


def _parse_text(text: str, origin: str) -> dict:
    return parse_yaml(text, "arch", origin, _ARCH_KEYS)  # type: ignore[return-value]


_ARCH_KEYS = "name, clock_mhz, arrays, buffer, dram, actions_pj"


def _apply_overrides(raw: dict, overrides: dict[str, object]) -> dict:
    import copy

    out = copy.deepcopy(raw)
    for key, val in overrides.items():
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            if not isinstance(node, dict) or p not in node:
                raise SpecError(f"arch override {key}", f"no such field {p!r}")
            node = node[p]
        if not isinstance(node, dict) or parts[-1] not in node:
            raise SpecError(f"arch override {key}", f"no such field {parts[-1]!r}")
        node[parts[-1]] = val
    return out


def _validate(raw: dict, origin: str) -> Arch:
    try:
        return Arch(**raw)
    except ValidationError as exc:
        raise from_pydantic(exc, prefix=f"arch {origin}") from None
    except TypeError as exc:
        raise SpecError(f"arch {origin}", str(exc)) from None
