"""The dataflows of the FuseMax paper, as data, and the accelerators (arch preset + mapping) built from them.

The comments name the public artifact file whose latency formula each entry reproduces; the formulas are in
docs/fusemax.md §Latency.
"""

from __future__ import annotations

from dataclasses import dataclass

from attnforge.mappings.spec import Mapping, PhaseSpec, StageSpec
from attnforge.sim.specs.arch import FAMILIES as ARCH_FAMILIES
from attnforge.sim.specs.arch import Arch
from attnforge.sim.specs.errors import SpecError
from attnforge.sim.specs.registry import Registry
from attnforge.workloads import Model

_FUSEMAX_BINDING = {
    # proposal.py: einsums_2d = [QK, LM, SLN, SLD, SLNV]; everything else on the 1D array.
    **{e: "2d" for e in ("QK", "LM", "SLN", "SLD", "SLNV")},
    **{e: "1d" for e in ("RM", "PRM", "SPD", "RD", "SPNV", "RNV", "AV")},
}
#: docs/fusemax.md §Mapping: running max, denominator and numerator live in the global buffer; everything else stays in PE RFs.
_FUSEMAX_PLACEMENT = {"RM": "gb", "RD": "gb", "RNV": "gb"}


def _one(name: str, *phases: PhaseSpec) -> tuple[StageSpec, ...]:
    return (StageSpec(name, phases),)


def _ph(*einsums: str, stall: str | None = None) -> PhaseSpec:
    return PhaseSpec(tuple(einsums), stall)


MAPPINGS: Registry[Mapping] = Registry("mapping", (
    (m.name, m)
    for m in (
        Mapping(
            name="unfused",
            cascade="3-pass",
            # artifact: unfused.py
            description="QK, softmax and AV as three separate kernels; the scores and probabilities round-trip "
            "through DRAM",
            binding={"QK": "2d", "AV": "2d", "GM": "1d", "SN": "1d", "SD": "1d", "A": "1d"},
            stages=(
                StageSpec("qk", (_ph("QK"),)),
                StageSpec("softmax", (_ph("GM", "SN", "SD", "A"),)),
                StageSpec("av", (_ph("AV"),)),
            ),
            placement={"QK": "dram", "A": "dram", "SN": "gb"},
            fiber_rows=1,
        ),
        Mapping(
            name="flat",
            cascade="3-pass",
            # artifact: flat.py
            description="FLAT: attention fused per row of scores; score rows are held in the buffer (through DRAM "
            "once they no longer fit) and the softmax runs on the 1D array",
            binding={"QK": "2d", "AV": "2d", "GM": "1d", "SN": "1d", "SD": "1d", "A": "1d"},
            stages=_one("attention", _ph("QK", "AV", "GM", "SN", "SD", "A")),
            placement={"QK": "gb", "SN": "gb", "A": "gb"},
        ),
        Mapping(
            name="fusemax-cascade",
            cascade="1-pass",
            # artifact: flat_pe_proposal.py
            description="+Cascade: FuseMax's 1-pass cascade on FLAT's hardware; only the two matmuls (QK, SLNV) "
            "on the 2D array, everything else on the 1D array, score tiles staged in the buffer",
            binding={**{e: "1d" for e in _FUSEMAX_BINDING}, "QK": "2d", "SLNV": "2d"},
            stages=_one("attention", _ph(*_FUSEMAX_BINDING)),
            placement={**_FUSEMAX_PLACEMENT, "QK": "gb", "SLN": "gb"},
            # flat_pe_proposal.py issues SLN/PRM's subtraction and exponent as two 1D instructions.
            op_cycles={"exp": 2},
        ),
        Mapping(
            name="fusemax-arch",
            cascade="1-pass",
            # artifact: stall_proposal.py
            description="+Architecture: FuseMax hardware one key tile at a time; the wait for the column max "
            "(LM) across all 256 rows is exposed",
            binding=_FUSEMAX_BINDING,
            stages=_one(
                "attention",
                _ph("QK", "LM", "RD", "AV"),
                PhaseSpec((), stall="LM"),
                _ph("RM"),
                _ph("SLN", "SLD", "PRM", "SPD"),
                _ph("SLNV", "SPNV", "RNV"),
            ),
            placement=_FUSEMAX_PLACEMENT,
        ),
        Mapping(
            name="gemm",
            cascade="gemm",
            description="one output-stationary matmul on the 2D array (for side-by-side runs with GEMM simulators)",
            binding={"QK": "2d"},
            stages=_one("gemm", _ph("QK")),
        ),
        Mapping(
            name="fusemax",
            cascade="1-pass",
            # artifact: proposal.py
            description="FuseMax: 1-pass cascade with the pipelined 2D/1D binding; the 1D array finishes tile i "
            "while the 2D array starts tile i+1, only the running-max update (RM) is exposed",
            binding=_FUSEMAX_BINDING,
            stages=_one(
                "attention",
                _ph("QK", "LM", "RD", "RNV", "AV"),
                _ph("RM"),
                _ph("SLN", "SLD", "PRM", "SPD"),
                _ph("SLNV", "SPNV"),
            ),
            placement=_FUSEMAX_PLACEMENT,
        ),
    )
))


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
