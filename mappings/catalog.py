"""The accelerators (arch preset + mapping) built from the dataflows of the FuseMax paper and SpAtten.

The mappings themselves are YAML files (mappings/data/*.yaml, loaded by mappings/files.py into :data:`MAPPINGS`);
each names in a comment the public artifact file whose latency formula it reproduces (docs/fusemax.md §Latency).
"""

from __future__ import annotations

from dataclasses import dataclass

from attnforge.mappings.files import MAPPINGS
from attnforge.mappings.spec import Mapping
from attnforge.sim.specs.arch import FAMILIES as ARCH_FAMILIES
from attnforge.sim.specs.arch import Arch
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.registry import Registry
from attnforge.workloads import Model

#: Accelerator families: the arch families of sim/specs/arch.py, each with its schedule builder (mappings.builders).
FAMILIES: tuple[str, ...] = tuple(ARCH_FAMILIES)


@dataclass(frozen=True)
class Accelerator:
    """An arch preset plus how it runs attention. ``family`` names the schedule builder (mappings.builders):
    "cascade" for the Einsum-cascade dataflows (``mapping`` names one of MAPPINGS), "spatten" for SpAtten's
    pruned one-query pipeline (``policy`` names its default algorithm settings, see sim.spatten.policy)."""

    name: str
    arch: str
    mapping: str
    description: str
    family: str = "cascade"
    policy: str | None = None

    def check_arch(self, arch: Arch) -> None:
        """Binding this accelerator to ``arch``: its builder reads the typed section of its own family only."""
        if arch.family != self.family:
            raise SpecError("arch", f"{self.name} runs on a {self.family}-family arch; {arch.name} is family "
                            f"{arch.family}", sorted({a.arch for a in ACCELERATORS.values() if a.family == self.family}))

    def check_model(self, model: Model) -> None:
        """Binding this accelerator to ``model``: SpAtten prunes whole heads and fetches each head's own K and V;
        with K/V shared by a group of query heads (GQA/MQA) neither is defined (a pruned query head would not free
        its shared K/V), so such models are refused rather than costed as if every head had its own K and V."""
        if self.family == "spatten" and model.kv_heads != model.heads:
            raise SpecError("workload", f"{self.name} models multi-head attention only (head pruning and per-head "
                            f"K/V fetch); {model.name or 'this model'} shares K/V (kv_heads {model.kv_heads} < heads "
                            f"{model.heads})")


ACCELERATORS: Registry[Accelerator] = Registry("accelerator", (
    (a.name, a)
    for a in (
        Accelerator("unfused", "unfused", "unfused", "Unfused baseline on FLAT's hardware"),
        Accelerator("flat", "flat", "flat", "FLAT (Kao et al., ASPLOS'23), the FuseMax paper's baseline"),
        Accelerator("fusemax-cascade", "flat", "fusemax-cascade", "Ablation +Cascade: FuseMax cascade on FLAT hardware"),
        Accelerator("fusemax-arch", "fusemax", "fusemax-arch", "Ablation +Architecture: FuseMax hardware, no binding"),
        Accelerator("fusemax", "fusemax", "fusemax", "FuseMax (Nayak et al., MICRO 2024) = +Binding"),
        Accelerator("fusemax-top", "fusemax-top-8x8", "fusemax-top", "the fusemax-top RTL instance (8x8, d 64, 100 MHz, "
                    "its testbench memory); --fidelity cycle runs its exact cycle model"),
        Accelerator("spatten", "spatten", "spatten", "SpAtten (Wang et al., HPCA 2021): cascade token/head pruning, "
                    "progressive quantization, top-k engine", family="spatten", policy="auto"),
        Accelerator("spatten-1/8", "spatten-1-8", "spatten", "SpAtten1/8 (paper Table III): 128 multipliers, 64 GB/s",
                    family="spatten", policy="auto"),
        Accelerator("spatten-1-8", "spatten-1-8", "spatten", "alias of spatten-1/8", family="spatten", policy="auto"),
        Accelerator("spatten-dense", "spatten", "spatten", "SpAtten's dedicated datapath with no pruning or quantization",
                    family="spatten", policy="dense"),
        Accelerator("a3", "spatten-1-8", "spatten", "A3 as modelled on SpAtten1/8's resources: fetch all, prune keys/V "
                    "locally", family="spatten", policy="a3"),
        Accelerator("mnnfast", "spatten-1-8", "spatten", "MNNFast as modelled on SpAtten1/8's resources: fetch all, "
                    "prune V", family="spatten", policy="mnnfast"),
    )
), field="accel")


def get_mapping(name: str) -> Mapping:
    return MAPPINGS.get(name)


def get_accelerator(name: str) -> Accelerator:
    return ACCELERATORS.get(name)
