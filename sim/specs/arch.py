"""Architecture specs, typed per accelerator family, with an Accelergy-style energy table.

Specs are YAML validated once into these pydantic models (the ZigZag way: typed objects, never dicts). The
presets ship in ``sim/specs/presets``; every value there cites its source. Every arch shares the fields of
:class:`Arch` (clock, DRAM, energy table, leakage, area, sources) and adds its family's own section, chosen by
``family``: the Einsum-cascade family (unfused, FLAT, FuseMax) has compute ``arrays`` and a global ``buffer``
(:class:`CascadeArch`); SpAtten has a ``spatten:`` section naming its modules (:class:`SpattenArch`). A field of
the other family is refused by name, so SpAtten is no longer squeezed into fake arrays and an untyped bag.

Energy is one table, component -> action -> pJ (Accelergy's ERT): ``energy: {2d: {mac: .., rf_read: ..},
buffer: {read: .., write: ..}, dram: {byte: ..}}``. Each family declares the (component, action) pairs its
schedule builder emits on a given arch (:meth:`Arch.emitted_actions`), and the table must hold exactly those, so
a missing or misspelled action is a SpecError naming it when the arch loads, never a KeyError mid-run.

An op on a cascade array (``exp`` say) is costed per array: how many cycles one PE spends on it and which of the
array's energy actions it fires, so "exp as 6 MACs + 1 add on FuseMax's PEs" and "exp on FLAT's dedicated unit"
are two rows of data, not two code paths.
"""

from __future__ import annotations

import copy
import math
import typing
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationError,
    model_validator,
)

from attnforge.sim.specs.errors import SpecError, from_pydantic, parse_yaml, read_yaml
from attnforge.sim.specs.registry import Registry

#: Energy actions an op on a cascade array may fire (its ``ops.<op>.actions``).
ACTIONS: tuple[str, ...] = ("mac", "add", "max", "exp", "mul", "div")
#: Register-file actions every cascade array emits (two operand reads and one write per op).
RF_ACTIONS: tuple[str, ...] = ("rf_read", "rf_write")
#: DRAM traffic is counted in bytes for every family: the table's ``dram.byte`` is pJ per byte.
DRAM_BYTE: tuple[str, str] = ("dram", "byte")

PJ = Annotated[float, Field(ge=0)]


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
                raise SpecError(f"actions.{a}", "unknown action", ACTIONS)
        if not self.actions:
            raise SpecError("actions", "needs at least one action", ACTIONS)
        return self


#: How a register file's energy per access grows with its entries: the FuseMax artifact's two RF tables of one
#: toolchain, FLAT's 4-entry and FuseMax's 12-entry 16-bit RF (docs/fusemax.md §Energy: read 0.292 -> 0.653 pJ,
#: write 0.225 -> 0.570 pJ for 3x the entries), as a power law in the entries (read ~0.73, write ~0.85).
RF_ENERGY_EXPONENT: dict[str, float] = {"rf_read": math.log(0.653 / 0.292) / math.log(3),
                                        "rf_write": math.log(0.570 / 0.225) / math.log(3)}


class RegisterFile(_Strict):
    """A PE's register file. The array's ``rf_read``/``rf_write`` energies and the PE's ``area_um2.pe_<array>``
    describe it at ``ref_words`` entries; at another depth the energies follow :data:`RF_ENERGY_EXPONENT` and the PE
    area changes by ``area_um2_per_word`` per entry, so sweeping the depth moves energy and area instead of leaving
    the preset's figures. ``ref_words`` None: the figures are taken as given at any depth."""

    words: PositiveInt
    ref_words: PositiveInt | None = None
    area_um2_per_word: NonNegativeFloat = 0.0

    def energy_scale(self, action: str) -> float:
        """Factor on the table's ``rf_read``/``rf_write`` entry at this depth (1 for other actions)."""
        if self.ref_words is None or action not in RF_ENERGY_EXPONENT:
            return 1.0
        return (self.words / self.ref_words) ** RF_ENERGY_EXPONENT[action]

    @property
    def area_delta_um2(self) -> float:
        """PE area added (or removed) by entries beyond (or short of) ``ref_words``."""
        return 0.0 if self.ref_words is None else (self.words - self.ref_words) * self.area_um2_per_word


class ComputeArray(_Strict):
    """A 1D or 2D array of identical PEs."""

    dims: tuple[PositiveInt, ...] = Field(min_length=1, max_length=2)
    ops: dict[str, OpCost]
    rf: RegisterFile
    #: An output-stationary systolic array: operands enter skewed, so every output tile of a matmul pays
    #: rows + cols - 2 cycles of fill and drain on top of its reduction length. The FuseMax artifact's aggregate
    #: model leaves this out (its presets keep False); SCALE-Sim and real RTL include it.
    systolic: bool = False

    @model_validator(mode="after")
    def _known_ops(self) -> ComputeArray:
        for op in self.ops:
            if op not in ACTIONS:
                raise SpecError(f"ops.{op}", "unknown op", ACTIONS)
        return self

    @property
    def pes(self) -> int:
        return math.prod(self.dims)

    @property
    def rows(self) -> int:
        return self.dims[0]

    @property
    def cols(self) -> int:
        return self.dims[-1]


class Buffer(_Strict):
    """The on-chip global buffer (FuseMax's L3).

    Its ``energy.buffer`` read/write figures (pJ per word) are given at ``energy_ref_bytes`` (the capacity the
    cited table describes) and scale with sqrt(capacity) from there, as large wire-dominated SRAMs do (CACTI's
    trend), so sweeping the buffer size changes its access energy instead of leaving a stale figure.
    """

    bytes: PositiveInt
    energy_ref_bytes: PositiveInt | None = None

    @property
    def scale(self) -> float:
        return (self.bytes / self.energy_ref_bytes) ** 0.5 if self.energy_ref_bytes else 1.0


class Dram(_Strict):
    """Off-chip memory: its bandwidth (its energy is the table's ``dram.byte``)."""

    bandwidth_gib_s: PositiveFloat


class RtlPipeline(_Strict):
    """Fixed latencies of an RTL instance (``fusemax-top``) that its analytical model exposes on top of the arrays'
    work (docs/fusemax.md §fusemax-top): per output tile, the engine's cycles no array hides (cfg handshake, the last
    key tile's softmax step, the reciprocal, the hand-back to idle; the output beats are the AV Einsum's); per layer,
    the memory latency before the first words, then the first head's K/V and first Q tile. ``mem_outstanding`` is
    the memory model's requests in flight (the cycle fidelity replays it; the analytical model does not need it)."""

    #: Cycles per output tile that no array hides (cfg handshake, last softmax step, reciprocal, back to idle).
    tile_fixed_cycles: NonNegativeInt
    #: The same for a layer of 1, 2, ... key tiles where it differs (few key tiles expose another part of the
    #: previous tile's tail); from the end of the list on, ``tile_fixed_cycles``.
    tile_fixed_by_key_tiles: tuple[NonNegativeInt, ...] = ()
    #: The layer's last output tile after the engine could take another cfg (RNV, reciprocal, output pipeline and
    #: output beats): no next tile hides it, so a layer exposes it once.
    drain_cycles: NonNegativeInt = 0
    #: Cycles from a memory request to its first word (the testbench memory model's latency).
    mem_latency_cycles: PositiveInt
    #: Memory requests in flight (the memory model's slots; used by the cycle fidelity).
    mem_outstanding: PositiveInt = 4

    def fixed_cycles(self, key_tiles: Any) -> Any:
        """Fixed cycles per output tile for runs of ``key_tiles`` key tiles (a number or an array)."""
        table = np.asarray([*self.tile_fixed_by_key_tiles, self.tile_fixed_cycles])
        got = table[np.clip(np.ceil(np.asarray(key_tiles)).astype(int), 1, table.size) - 1]
        return got.item() if got.ndim == 0 else got


@dataclass(frozen=True)
class PeGroup:
    """A family's compute units seen as a PE array (shape only): what listings and area figures share."""

    dims: tuple[int, ...]

    @property
    def pes(self) -> int:
        return math.prod(self.dims)


class Arch(_Strict):
    """Fields every family shares; a family subclass adds its own section and declares its energy actions."""

    family: str
    name: str
    description: str = ""
    clock_mhz: PositiveFloat
    word_bits: PositiveInt = 16
    dram: Dram
    #: component -> action -> pJ per action (Accelergy's ERT); exactly the pairs :meth:`emitted_actions` lists.
    energy: dict[str, dict[str, PJ]]
    leakage_w: float = Field(default=0.0, ge=0)
    area_um2: dict[str, float] = Field(default_factory=dict)
    sources: dict[str, str] = Field(default_factory=dict)

    @abstractmethod
    def emitted_actions(self) -> dict[str, tuple[str, ...]]:
        """component -> the actions this family's schedule builder emits on this arch (and may be charged)."""

    @abstractmethod
    def pe_groups(self) -> dict[str, PeGroup]:
        """The compute units by name with their shapes; ``area_um2["pe_<name>"]`` is per PE of each."""

    @property
    @abstractmethod
    def onchip_bytes(self) -> int:
        """On-chip SRAM outside the PEs (area per byte: ``area_um2.buffer_per_byte``)."""

    def energy_scale(self, component: str, action: str) -> float:
        """A factor on a table entry (the buffer's capacity scaling, an RF's depth); 1 unless a family says."""
        return 1.0

    def pe_area_delta_um2(self, group: str) -> float:
        """Area a PE of ``group`` gains over its ``area_um2.pe_<group>`` figure (an RF deeper than that figure's)."""
        return 0.0

    def static_power_w(self) -> dict[str, float]:
        """Power drawn for the whole run whatever the activity, by energy bucket (a family adds e.g. DRAM
        background power beside the chip's leakage)."""
        return {"leakage": self.leakage_w}

    @model_validator(mode="after")
    def _energy_matches_builder(self) -> Arch:
        want = self.emitted_actions()
        for comp, acts in self.energy.items():
            if comp not in want:
                raise SpecError(f"energy.{comp}", "no such component", want)
            for act in acts:
                if act not in want[comp]:
                    raise SpecError(f"energy.{comp}.{act}", "no such action", want[comp])
        for comp, acts in want.items():
            for act in acts:
                if act not in self.energy.get(comp, {}):
                    raise SpecError(f"energy.{comp}.{act}", f"missing: the {self.family} builder emits it")
        return self

    def pj(self, component: str, action: str) -> float:
        """Energy of one action, straight from the table (times the component's capacity scaling)."""
        try:
            per = self.energy[component][action]
        except KeyError:
            raise SpecError(f"arch {self.name}.energy.{component}.{action}", "not in the energy table",
                            [f"{c}.{a}" for c, acts in self.energy.items() for a in acts]) from None
        return per * self.energy_scale(component, action)

    @property
    def word_bytes(self) -> int:
        return self.word_bits // 8

    @property
    def clock_hz(self) -> float:
        return self.clock_mhz * 1e6

    @property
    def dram_bytes_per_cycle(self) -> float:
        return self.dram.bandwidth_gib_s * 2**30 / self.clock_hz

    def area_mm2(self) -> float:
        """Sum of PE datapath and RF area plus on-chip SRAM (area_um2 holds per-instance and per-byte figures)."""
        a = self.area_um2
        total = 0.0
        for name, group in self.pe_groups().items():
            total += group.pes * (a.get(f"pe_{name}", 0.0) + self.pe_area_delta_um2(name))
        total += self.onchip_bytes * a.get("buffer_per_byte", 0.0)
        return total / 1e6


class CascadeArch(Arch):
    """The Einsum-cascade family (unfused, FLAT, FuseMax): 1D/2D PE arrays and a global buffer."""

    family: Literal["cascade"] = "cascade"
    arrays: dict[str, ComputeArray] = Field(min_length=1)
    buffer: Buffer
    #: An RTL instance's exposed latencies (None: a paper-scale design whose fixed latencies are negligible).
    pipeline: RtlPipeline | None = None

    def emitted_actions(self) -> dict[str, tuple[str, ...]]:
        """Per array: the actions its ops fire plus its RF reads/writes; buffer reads/writes; DRAM bytes
        (what mappings/build.py and sim/analytical/linear.py emit)."""
        out: dict[str, tuple[str, ...]] = {}
        for name, arr in self.arrays.items():
            fired = {a for cost in arr.ops.values() for a in cost.actions}
            out[name] = (*(a for a in ACTIONS if a in fired), *RF_ACTIONS)
        out["buffer"] = ("read", "write")
        out[DRAM_BYTE[0]] = (DRAM_BYTE[1],)
        return out

    def pe_groups(self) -> dict[str, PeGroup]:
        return {name: PeGroup(arr.dims) for name, arr in self.arrays.items()}

    @property
    def onchip_bytes(self) -> int:
        return self.buffer.bytes

    def energy_scale(self, component: str, action: str) -> float:
        if component == "buffer":
            return self.buffer.scale
        return self.arrays[component].rf.energy_scale(action) if component in self.arrays else 1.0

    def pe_area_delta_um2(self, group: str) -> float:
        return self.arrays[group].rf.area_delta_um2 if group in self.arrays else 0.0

    @model_validator(mode="after")
    def _rf_leaves_a_pe(self) -> CascadeArch:
        """An RF made shallower than its figures' depth takes its entries' area away, never more than the PE has."""
        for name, arr in self.arrays.items():
            pe, rf = self.area_um2.get(f"pe_{name}", 0.0), arr.rf
            if rf.area_delta_um2 < 0 and pe + rf.area_delta_um2 <= 0:
                least = rf.ref_words - math.ceil(pe / rf.area_um2_per_word) + 1
                raise SpecError(f"arrays.{name}.rf.words", f"{rf.words} entries leave the PE no area "
                                f"(area_um2.pe_{name} {pe:g} at {rf.ref_words} entries, {rf.area_um2_per_word:g} per entry)",
                                f">= {max(1, least)}")
        return self

    def op_cost(self, array: str, op: str) -> OpCost:
        arr = self.arrays[array]
        if op not in arr.ops:
            raise SpecError(f"arch {self.name}.arrays.{array}.ops", f"has no {op!r} unit", arr.ops)
        return arr.ops[op]


class Hbm(_Strict):
    """SpAtten's off-chip HBM as a memory system (sim/memory/dram.py): what bounds the bandwidth it achieves.

    Timings are in ns (the HBM2 command clock is 1 GHz). ``channel_gb_s`` is one channel's pin rate;
    ``outstanding`` the requests the fetcher keeps in flight per channel; the arch's ``dram.bandwidth_gib_s`` is
    the pin rate the rooflines use and, when it differs from ``channels x channel_gb_s``, scales the achieved
    bandwidth in proportion (more or fewer channels of this kind), so bandwidth sweeps stay linear (``channels``
    or ``channel_gb_s`` changed without it, by an override or a file extending a preset, move it along:
    ``load_arch``);
    ``row_bytes`` the bytes of one channel's address space that one row activation serves (the controller's
    address mapping decides it); ``controller_ns`` the fixed time a request spends in the memory controller and
    the driver's hand-off, beyond the column access and its waits for the data bus and its bank, which the closed
    queue of sim/memory/dram.py works out from the load (calibrated on Ramulator 2.0: docs/spatten.md §Memory
    system).
    """

    channels: PositiveInt
    #: Independent data buses per channel (HBM2 pseudo-channel mode: 2 x 64 bits), each busy ``t_burst_ns`` a request.
    pseudo_channels: PositiveInt
    channel_gb_s: PositiveFloat
    request_bytes: PositiveInt
    #: Requests the fetcher keeps in flight per channel (the closed queue solves one population at a time: at most 4096).
    outstanding: int = Field(ge=1, le=4096)
    row_bytes: PositiveInt
    #: Banks per channel (all pseudo-channels'): a row miss waits for its bank's row cycle (``t_rc_ns``).
    banks: PositiveInt
    controller_ns: float = Field(ge=0)
    t_cl_ns: float = Field(ge=0)
    #: Row cycle: a bank's time from one activate to the next (precharge, activate, the read), held by a miss.
    t_rc_ns: float = Field(ge=0)
    t_burst_ns: float = Field(ge=0)
    #: Standby and refresh power of one channel, drawn whether or not it moves data.
    background_w_per_channel: float = Field(ge=0)
    #: How achieved bandwidth follows from load and row hits: the closed queue (mean-value analysis, any timings)
    #: or the event-level replay's table (Ramulator 2.0's cycles; the preset's HBM2 timings only). sim/memory/.
    model: Literal["closed-queue", "replay"] = "closed-queue"
    #: Whether each layer's K/V fetches finish on every channel before the next layer's begin (a decode layer's
    #: kept keys are known only after the layer before it), so a layer waits for its most loaded channel
    #: (sim/memory/dram.py ``channel_imbalance``). Off in the presets: SpAtten's released bench streams all layers'
    #: rows without a break, and the paper's figures come from it (docs/spatten.md §Memory system).
    layer_barrier: bool = False

    @property
    def peak_gb_s(self) -> float:
        return self.channels * self.channel_gb_s

    @property
    def background_w(self) -> float:
        return self.channels * self.background_w_per_channel


class SpattenModules(_Strict):
    """SpAtten's datapath (paper Fig. 8) by module: sizes, K/V SRAM and the latencies one query sees."""

    qk_multipliers: PositiveInt
    softmax_lanes: PositiveInt
    #: Top-k engines: the paper's two are one for the token and head top-k and one for the local-V top-k; each
    #: engine past the first takes the local-V top-k of another query in parallel (with ``query_overlap``).
    topk_engines: PositiveInt
    #: Comparators per top-k engine array: the engine's parallelism (elements compared per cycle).
    topk_comparators: PositiveInt
    pv_multipliers: PositiveInt
    #: Fetcher ports, each issuing at most one request per cycle: they bound the HBM's achieved bandwidth at
    #: ``fetcher_channels x hbm.request_bytes`` per cycle (the paper's 32 ports feed 16 channels: not binding).
    fetcher_channels: PositiveInt
    #: Bytes of the Key SRAM (the Value SRAM is the same size), double-buffered: half holds one head's K.
    kv_sram_bytes: PositiveInt
    qk_latency_cycles: NonNegativeInt
    softmax_latency_cycles: NonNegativeInt
    requant_latency_cycles: NonNegativeInt
    pv_latency_cycles: NonNegativeInt
    #: Passes the softmax makes over a row at ``softmax_lanes`` per cycle: 1 for the paper's streaming unit (FIFO
    #: depth 128), 3 for our RTL (load, exponent, normalize).
    softmax_passes: PositiveInt = 1
    #: The top-k engine buffers each job's input in a FIFO in front of its filter pass, so the filter of one query
    #: runs while quick-select works on the next (the released TopK's data FIFO). False: one job at a time.
    topk_filter_overlap: bool = True
    #: Cycles a quick-select round costs beyond streaming its candidates (pivot pick, flush, FIFO swap, pipeline
    #: drain). None: our RTL's (2 + ROUND_PIPE, sim/spatten/topk_golden.py).
    topk_round_overhead_cycles: NonNegativeInt | None = None
    #: Modules work on different queries at once (the paper's pipeline, FIFOs between the stages). False: the
    #: next query enters only when the last one left (our spatten-pipeline RTL).
    query_overlap: bool = True
    #: With ``query_overlap`` false (the spatten-pipeline RTL): the instance's longest key row (its ``max_n``), which
    #: sizes the softmax accumulator and divider and so the pipeline's depth (a 16-key instance's front pass is 6
    #: cycles shorter than a 1024-key one's); a longer row is refused, as the RTL refuses it. None: 1024, the widest.
    pipeline_max_keys: Annotated[int, Field(ge=1, le=1024)] | None = None
    #: Allocations the K (and V) SRAM holds at once: its lines go out in a ring, one allocation per head of a
    #: summarization pass, each freed only at its last query's progressive-quant decision, so a head waits when
    #: every allocation is taken (or the lines run out) until the oldest head drains and its refill returns. None:
    #: no head-level wait.
    kv_buffer_allocations: PositiveInt | None = None
    #: Queries admitted between the K-buffer allocation and their progressive-quant decision (the released
    #: controller's 16-entry request FIFO takes new queries while 8 entries are free): by Little's law a query then
    #: takes at least its decision latency over this window. None: no such bound.
    decision_window: PositiveInt | None = None
    #: Where a layer boundary prunes, the next layer's first K fetch waits for the token and head top-k (the
    #: authors' BERT model adds the top-k cycles to each layer's). False: they run beside the pipe.
    layer_topk_serial: bool = False


class SpattenTop(_Strict):
    """An RTL instance of the whole SpAtten accelerator (``spatten-top``, docs/spatten.md §Three fidelities): its
    size limits and the memory port it fetches Q, K and V through (sim/spatten/top_analytical.py reads them; the
    datapath's sizes and block latencies are the ``spatten`` section's). One memory word is one token's row of
    ``max_d`` values, so the port moves one K or V row per beat."""

    #: Largest head dimension the instance runs (the top taps one key per Q x K beat, so qk_multipliers ==
    #: max_d); a smaller power of two down to min_d runs at max_d's cost, the upper lanes zeroed.
    max_d: PositiveInt
    #: Most tokens alive in a layer (alive list, importance accumulators, probability buffer).
    max_n: PositiveInt
    #: Most heads, and most layers per pass (the importance accumulators' sizes).
    max_heads: PositiveInt
    max_layers: PositiveInt
    #: The memory port: cycles from a request to its first beat, requests in flight, cycles per beat.
    mem_latency_cycles: PositiveInt
    mem_outstanding: PositiveInt
    mem_interval_cycles: PositiveInt = 1
    #: Queries in flight: 2 when the pipeline's front (K fetch, Q x K, softmax, refetch decision) works on the
    #: next query while its back (local-V top-k, V fetch, prob x V) finishes the last one; 1 when it does not.
    queries_in_flight: Literal[1, 2] = 2
    #: K and V are fetched again for every query (no on-chip K/V buffer to reuse across queries).
    kv_fetch: Literal["per_query"] = "per_query"


class SpattenArch(Arch):
    """SpAtten (HPCA 2021): its modules in a typed ``spatten:`` section (sim/spatten/occupancy.py reads them)."""

    family: Literal["spatten"] = "spatten"
    spatten: SpattenModules
    hbm: Hbm
    #: An RTL instance of the whole accelerator (None: the paper's design, modelled by its modules alone).
    top: SpattenTop | None = None

    #: The pairs mappings/spatten.py and sim/spatten/trace.py emit, in the order they emit them.
    EMITS: ClassVar[dict[str, tuple[str, ...]]] = {
        "qk": ("mac",), "pv": ("mac",), "softmax": ("element",), "topk": ("compare",), "fetcher": ("byte",),
        DRAM_BYTE[0]: (DRAM_BYTE[1], "activate"),
    }

    def static_power_w(self) -> dict[str, float]:
        return {"leakage": self.leakage_w, "dram_background": self.hbm.background_w}

    def emitted_actions(self) -> dict[str, tuple[str, ...]]:
        return dict(self.EMITS)

    def pe_groups(self) -> dict[str, PeGroup]:
        s = self.spatten
        return {"qk": PeGroup((s.qk_multipliers,)), "pv": PeGroup((s.pv_multipliers,)),
                "softmax": PeGroup((s.softmax_lanes,)), "topk": PeGroup((s.topk_engines, s.topk_comparators)),
                "fetcher": PeGroup((s.fetcher_channels,))}

    @property
    def onchip_bytes(self) -> int:
        return 2 * self.spatten.kv_sram_bytes


#: Arch classes by ``family``; a preset without ``family`` is a cascade arch.
FAMILIES: Registry[type[Arch]] = Registry("arch family", {"cascade": CascadeArch, "spatten": SpattenArch},
                                          field="arch.family")


def _preset_files() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("attnforge.sim.specs.presets").iterdir() if p.name.endswith(".yaml"))


def _load_preset(name: str) -> Arch:
    return _validate(_preset_raw(name), name)


#: The shipped presets by name, each parsed and validated (energy table against its family) on first use.
PRESETS: Registry[Arch] = Registry.lazy("preset", _preset_files(), _load_preset, field="arch")


def preset_names() -> list[str]:
    return list(PRESETS.names())


def get_preset(name: str) -> Arch:
    return PRESETS.get(name)


def load_arch(name_or_path: str | Path, overrides: dict[str, object] | None = None) -> Arch:
    """A preset by name or a YAML file by path, validated; overrides use dotted keys (``buffer.bytes``,
    ``spatten.topk_comparators``)."""
    text_path = Path(str(name_or_path))
    if text_path.suffix in (".yaml", ".yml"):
        own = _read(text_path)
        changed = _dotted_keys(own) if "extends" in own else set()
        raw = _pins_follow_channels(_resolve_extends(own), changed)
        origin = str(text_path)
    else:
        raw = _preset_raw(str(name_or_path))
        origin = str(name_or_path)
    if overrides:
        raw = _pins_follow_channels(_apply_overrides(raw, overrides), set(overrides))
    return _validate(raw, origin)


def _dotted_keys(raw: dict) -> set[str]:
    """The fields a file sets, as dotted keys one level deep (``hbm.channels``)."""
    return {f"{k}.{kk}" if isinstance(v, dict) else str(k) for k, v in raw.items()
            for kk in (v if isinstance(v, dict) else [None])}


def _pins_follow_channels(raw: dict, changed: set[str]) -> dict:
    """An HBM whose channel count or channel rate was changed (an override, or a file that extends a preset)
    without naming the pin rate gets the pin rate they imply, ``dram.bandwidth_gib_s`` = channels x channel_gb_s.
    The model scales the HBM's achieved bandwidth by ``dram.bandwidth_gib_s`` (so a pin-rate sweep alone acts as more
    or fewer channels of this kind: :class:`Hbm`), which would otherwise leave a changed channel count without effect
    on the time."""
    if "dram.bandwidth_gib_s" in changed or not changed & {"hbm.channels", "hbm.channel_gb_s"}:
        return raw
    hbm, dram = raw.get("hbm"), raw.get("dram")
    if not isinstance(hbm, dict) or not isinstance(dram, dict):
        return raw
    try:
        gb_s = float(hbm["channels"]) * float(hbm["channel_gb_s"])
    except (KeyError, TypeError, ValueError):
        return raw  # validation names the missing or bad field
    if not gb_s > 0:
        return raw  # a channel count or rate of 0 or less: validation names that field, not the pin rate
    return {**raw, "dram": {**dram, "bandwidth_gib_s": gb_s * 1e9 / 2**30}}


def _preset_text(name: str) -> str:
    return resources.files("attnforge.sim.specs.presets").joinpath(f"{name}.yaml").read_text()


def _preset_raw(name: str) -> dict:
    if name not in PRESETS:
        raise SpecError("arch", f"unknown preset {name!r}", PRESETS.names())
    return _preset_parsed(name)  # shared: never mutated (overrides copy the path they change)


@cache
def _preset_parsed(name: str) -> dict:
    """A packaged preset's YAML parsed (and its ``extends`` resolved) once per process: presets are package data,
    and parsing dominated every ``load_arch`` (a sweep validates one arch per override combination)."""
    return _resolve_extends(_parse_text(_preset_text(name), f"{name}.yaml"), seen=(name,))


def _resolve_extends(raw: dict, seen: tuple[str, ...] = ()) -> dict:
    """``extends: NAME`` starts from another preset and deep-merges this file over it (no copied presets)."""
    base_name = raw.pop("extends", None)
    if base_name is None:
        return raw
    if base_name in seen:
        raise SpecError("arch.extends", f"cycle through {base_name!r}")
    if str(base_name) not in PRESETS:
        raise SpecError("arch.extends", f"unknown preset {base_name!r}", PRESETS.names())
    base = _resolve_extends(_parse_text(_preset_text(str(base_name)), f"{base_name}.yaml"), seen=(*seen, str(base_name)))
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


_ARCH_KEYS = "name, clock_mhz, dram, energy and a family section (arrays + buffer, or spatten)"


def parse_overrides(items: Sequence[str] | None) -> dict[str, object]:
    """``--set KEY=VALUE`` (YAML values: numbers, lists, strings) -> {dotted key: value}, for :func:`load_arch`;
    every front end that takes ``--set`` reads it here."""
    import yaml

    out: dict[str, object] = {}
    for item in items or []:
        if "=" not in item:
            raise SpecError("--set", f"expected KEY=VALUE, got {item!r}", "e.g. buffer.bytes=8388608, clock_mhz=1000")
        k, v = item.split("=", 1)
        try:
            out[k.strip()] = yaml.safe_load(v)
        except (yaml.YAMLError, RecursionError, ValueError, OverflowError):
            raise SpecError(f"--set {k.strip()}", f"cannot read the value {v!r}") from None
    return out


def _names(node: object) -> list[str] | None:
    """The fields an override could have named at this level (None past a leaf)."""
    return sorted(str(k) for k in node) if isinstance(node, dict) else None


def _apply_overrides(raw: dict, overrides: dict[str, object]) -> dict:
    """A copy of ``raw`` with the overrides set; only the dicts on each override's path are copied (``raw`` itself,
    possibly a cached preset, is never changed)."""
    out = dict(raw)
    for key, val in overrides.items():
        node = out
        parts = key.split(".")
        for p in parts[:-1]:
            if not isinstance(node, dict) or p not in node:
                raise SpecError(f"arch override {key}", f"no such field {p!r}", _names(node))
            if isinstance(node[p], dict):
                node[p] = dict(node[p])
            node = node[p]
        fields = _model_fields(raw, parts[:-1])
        if not isinstance(node, dict) or (parts[-1] not in node and parts[-1] not in fields):
            raise SpecError(f"arch override {key}", f"no such field {parts[-1]!r}",
                            sorted(set(_names(node) or []) | fields))
        node[parts[-1]] = copy.deepcopy(val)
    return out


def _model_fields(raw: dict, path: list[str]) -> set[str]:
    """The fields the arch's schema defines at ``path`` (``["spatten"]``), so an override may set one the file leaves
    at its default (``spatten.query_overlap``); empty where the path is no typed section."""
    cls: Any = FAMILIES.get(str(raw.get("family", "cascade")))
    for part in path:
        info = getattr(cls, "model_fields", {}).get(part)
        if info is None:
            return set()
        ann = info.annotation
        cls = next((a for a in (*typing.get_args(ann), ann) if isinstance(a, type) and hasattr(a, "model_fields")),
                   None)
        if cls is None:
            return set()
    return set(getattr(cls, "model_fields", {}))


def _family_class(raw: dict[str, Any], origin: str) -> type[Arch]:
    """The arch class ``family`` names; a top-level field of another family is refused by name."""
    cls = FAMILIES.get(str(raw.get("family", "cascade")))
    own = set(cls.model_fields)
    for fam in FAMILIES:
        other = FAMILIES.get(fam)
        for key in raw:
            if key not in own and key in other.model_fields:
                raise SpecError(f"arch {origin}.{key}", f"is a {fam}-family field; this arch is family "
                                f"{raw.get('family', 'cascade')}", sorted(own - {"family"}))
    return cls


def _validate(raw: dict, origin: str) -> Arch:
    try:
        return _family_class(raw, origin)(**raw)
    except ValidationError as exc:
        raise from_pydantic(exc, prefix=f"arch {origin}") from None
    except TypeError as exc:
        raise SpecError(f"arch {origin}", str(exc)) from None
