"""What a schedule builder gets besides the arch: the workload's shape (kept apart from mappings/builders.py so
every builder can import it without importing the registry that lists the builders)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from attnforge.sim.analytical.schedule import Num
from attnforge.workloads import Model


@dataclass(frozen=True)
class Shape:
    """The model and broadcastable P, M and batch."""

    model: Model
    p: Num
    m: Num
    batch: Num
    causal: bool = False
    stage: str = "prefill"
    #: Tile sizes the user fixed (e.g. {"query_block": 512}); the rest are searched.
    tiles: tuple[tuple[str, int], ...] = ()
    #: SpAtten's algorithm settings (a sim.specs.spatten_policy.Policy); None for the cascade family.
    policy: Any = None
    #: The cascade family's mapping when the user gave one (a mappings.spec.Mapping); None: the accelerator's own.
    mapping: Any = None
