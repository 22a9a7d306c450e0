"""Dataflows (how attention is tiled, fused and bound to the arrays) and the accelerators built from them."""

from attnforge.mappings.build import build_schedule
from attnforge.mappings.builders import BUILDERS, Shape, get_builder
from attnforge.mappings.catalog import ACCELERATORS, MAPPINGS, Accelerator, get_accelerator, get_mapping
from attnforge.mappings.spec import Mapping, PhaseSpec, StageSpec

__all__ = [
    "ACCELERATORS",
    "BUILDERS",
    "Shape",
    "get_builder",
    "MAPPINGS",
    "Accelerator",
    "Mapping",
    "PhaseSpec",
    "StageSpec",
    "build_schedule",
    "get_accelerator",
    "get_mapping",
]
