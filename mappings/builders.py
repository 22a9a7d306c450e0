"""Schedule builders by accelerator family, so the engine has one entry point and no per-family copies.

A builder takes (accelerator, arch, workload shape) and returns a :class:`sim.analytical.schedule.Schedule`; the engine turns
that into cycles, energy and a Result the same way for every family. The Einsum-cascade builder (unfused, FLAT,
FuseMax and its ablations) is registered here; other families call :func:`register_builder` on import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from attnforge.mappings.build import build_schedule
from attnforge.mappings.catalog import Accelerator, get_mapping
from attnforge.sim.analytical.schedule import Num, Schedule
from attnforge.sim.specs.arch import Arch
from attnforge.sim.specs.errors import SpecError
from attnforge.workloads import Model


@dataclass(frozen=True)
class Shape:
    """What a builder gets besides the arch: the model and broadcastable P, M and batch."""

    model: Model
    p: Num
    m: Num
    batch: Num
    causal: bool = False
    stage: str = "prefill"
    #: Tile sizes the user fixed (e.g. {"query_block": 512}); the rest are searched.
    tiles: tuple[tuple[str, int], ...] = ()
    #: SpAtten's algorithm settings (a sim.spatten.policy.Policy); None for the cascade family.
    policy: Any = None


Builder = Callable[[Accelerator, Arch, Shape], Schedule]
BUILDERS: dict[str, Builder] = {}


def register_builder(name: str, fn: Builder) -> None:
    BUILDERS[name] = fn


def get_builder(name: str) -> Builder:
    if name not in BUILDERS:
        raise SpecError("builder", f"unknown schedule builder {name!r}", BUILDERS)
    return BUILDERS[name]


TILE_KEYS: tuple[str, ...] = ("query_block",)


def _cascade_builder(acc: Accelerator, arch: Arch, shape: Shape) -> Schedule:
    mdl = shape.model
    mapping = get_mapping(acc.mapping)
    for key, val in shape.tiles:
        if key not in TILE_KEYS:
            raise SpecError("--tile", f"unknown tile {key!r} for {acc.name}", TILE_KEYS)
        p0 = arch.arrays["2d"].cols
        p_max = int(np.max(shape.p))
        if val <= 0 or (val % p0 and val != p_max):
            raise SpecError(f"--tile {key}", f"must be a positive multiple of the 2D array's {p0} columns, got {val}")
        mapping = replace(mapping, **{key: int(val)})
    return build_schedule(
        mapping, arch, batch=shape.batch, heads=mdl.heads, p=shape.p, m=shape.m,
        e=mdl.d_head, f=mdl.d_head, causal=shape.causal,
    )


register_builder("cascade", _cascade_builder)
