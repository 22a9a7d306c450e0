"""Dataflows (how attention is tiled, fused and bound to the arrays) and the accelerators built from them."""

from mappings.build import build_schedule
from mappings.catalog import ACCELERATORS, MAPPINGS, Accelerator, get_accelerator, get_mapping
from mappings.spec import Mapping, PhaseSpec, StageSpec

__all__ = [
    "ACCELERATORS",
    "MAPPINGS",
    "Accelerator",
    "Mapping",
    "PhaseSpec",
    "StageSpec",
    "build_schedule",
    "get_accelerator",
    "get_mapping",
]
