"""Schedule builders by accelerator family, so the engine has one entry point and no per-family copies.

A builder takes (accelerator, arch, workload shape) and returns a :class:`sim.analytical.schedule.Schedule`; the engine turns
that into cycles, energy and a Result the same way for every family. :data:`BUILDERS` lists them, built once at
import: the Einsum-cascade builder (unfused, FLAT, FuseMax and its ablations, below) and SpAtten's
(mappings/spatten.py). The (component, action) pairs each builder emits are declared by its family's arch class
(``Arch.emitted_actions``), so an arch's energy table is checked against them when it loads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np

from attnforge.mappings.build import build_schedule
from attnforge.mappings.catalog import Accelerator, get_mapping
from attnforge.mappings.shape import Shape
from attnforge.mappings.spatten import build_spatten
from attnforge.sim.analytical.schedule import Schedule
from attnforge.sim.specs.arch import Arch, CascadeArch
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.registry import Registry

Builder = Callable[[Accelerator, Arch, Shape], Schedule]

TILE_KEYS: tuple[str, ...] = ("query_block",)


def _cascade_builder(acc: Accelerator, arch: Arch, shape: Shape) -> Schedule:
    acc.check_arch(arch)
    assert isinstance(arch, CascadeArch)  # check_arch bound a cascade accelerator to a cascade arch
    mdl = shape.model
    mapping = shape.mapping if shape.mapping is not None else get_mapping(acc.mapping)
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
        e=mdl.d_head, f=mdl.d_head, causal=shape.causal, kv_heads=mdl.kv_heads,
    )


BUILDERS: Registry[Builder] = Registry("schedule builder", {"cascade": _cascade_builder, "spatten": build_spatten},
                                       field="builder")


def get_builder(name: str) -> Builder:
    return BUILDERS.get(name)


__all__ = ["BUILDERS", "TILE_KEYS", "Builder", "Shape", "get_builder"]
