"""A mapping as data: which cascade, which array runs each Einsum, how Einsums overlap, where tensors live.

Mappings are YAML files (mappings/data/*.yaml, read by mappings/files.py; format in docs/variants.md). A
:class:`Mapping` is the whole difference between the unfused, FLAT and FuseMax dataflows (and the paper's
ablations); :func:`mappings.build.build_schedule` turns any of them into a Schedule with one generic routine.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from attnforge.sim.analytical.cascade import Cascade

PLACEMENTS: tuple[str, ...] = ("rf", "gb", "dram")


@dataclass(frozen=True)
class PhaseSpec:
    """Einsums whose work overlaps. ``stall`` = (einsum, multiplier): that Einsum's cycles times the 2D array's
    row count are exposed, i.e. a reduction that crosses every row while the arrays wait (FuseMax +Architecture)."""

    einsums: tuple[str, ...]
    stall: str | None = None


@dataclass(frozen=True)
class StageSpec:
    """A kernel. Tensors produced in one stage and read in another go through DRAM."""

    name: str
    phases: tuple[PhaseSpec, ...]


@dataclass(frozen=True)
class Mapping:
    name: str
    cascade: str
    binding: dict[str, str]
    stages: tuple[StageSpec, ...]
    #: Tensor -> "rf" (inside the PEs), "gb" (global buffer) or "dram"; unlisted intermediates stay in RFs.
    placement: dict[str, str] = field(default_factory=dict)
    #: Per-op cycle overrides where a published model costs an op differently on the same hardware.
    op_cycles: dict[str, int] = field(default_factory=dict)
    #: FLAT's dataflow choice: past this fraction of spilled M-fibers, it moves them off chip entirely.
    full_spill_above: float = 0.5
    #: Queries resident per block (P1 x P0). None = searched: the largest block the buffer holds.
    query_block: int | None = None
    #: Query rows whose M-fibers must be resident at once. None = the whole query block (FLAT feeds the 2D
    #: array P0 rows at a time); 1 = a standalone softmax kernel that walks rows one by one (unfused).
    fiber_rows: int | None = None
    #: Whether a grouped-query model's short query blocks (P < P0: decode) share the arrays' column tiles (the
    #: group meets the same K/V); False where the hardware runs each query head's tiles on their own (an RTL
    #: engine that takes one head per tile job).
    pack_group_queries: bool = True
    description: str = ""
    #: The cascade itself when the mapping file named a cascade file (None: ``cascade`` is a registered name).
    cascade_def: Cascade | None = field(default=None, compare=False, repr=False)

    def get_cascade(self) -> Cascade:
        """The cascade this mapping runs: its own (from a file) or the registered one named ``cascade``."""
        if self.cascade_def is not None:
            return self.cascade_def
        from attnforge.sim.analytical.cascade import get_cascade

        return get_cascade(self.cascade)

    def stage_of(self) -> dict[str, str]:
        return {e: s.name for s in self.stages for ph in s.phases for e in ph.einsums}
