"""The Scenario: one typed request that travels from every front end to a fidelity, and back inside every Result.

Why one object: before it, each front end (simulate, compare, sweep, reproduce, cycle mode, trace replay) put the
engine call together itself, and options got lost on the way (``--p``/``--m`` ignored by simulate, a causal sweep
computed non-causally, SpAtten knobs that reached the engine through global registries). A Scenario is resolved
and validated once, here: the accelerator, the arch *after* its overrides (with its name and where it came from),
the model, the points (P, M, batch), causal, stage, scope, tiles, the SpAtten policy and the fidelity. The engine
takes it whole, and every output records it (``Scenario.describe``).

Options a fidelity or an accelerator family cannot honour are refused by :meth:`Scenario.check_honoured` with one
line naming the option, never ignored.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from attnforge.mappings.catalog import ACCELERATORS, Accelerator, get_accelerator
from attnforge.mappings.spec import Mapping as MappingSpec
from attnforge.sim.specs.arch import Arch, get_preset, load_arch
from attnforge.sim.specs.errors import SpecError, check_finite
from attnforge.sim.specs.spatten_policy import POLICY_NAMES, Policy, parse_setting, policy_for
from attnforge.workloads import STAGES, Model, get_model, parse_length

SCOPES: tuple[str, ...] = ("attention", "end-to-end")
FIDELITIES: tuple[str, ...] = ("analytical", "cycle")
#: Largest sequence length or batch a Scenario accepts. Beyond 2**30 tokens (a billion) no attention model here
#: means anything, and the counts stay well inside float64's exact integer range (2**53) for every schedule.
MAX_SIZE = 1 << 30
#: SpAtten algorithm knobs a Scenario takes as a policy override (a mapping of these names to values).
POLICY_KNOBS: tuple[str, ...] = ("token_ratio", "head_ratio", "v_ratio", "quant", "threshold", "topk_parallelism",
                                 "lsb_refetch_rate")
#: Phases of a generative run (a causal model given a prompt of --seq-len tokens): the causal summarization pass
#: over the prompt, or the generation steps (one query each against a cache growing from the prompt length + 1).
PHASES: tuple[str, ...] = ("prompt", "generate")
#: Tokens a generation phase produces unless told: the SpAtten paper's 32 (section V-A).
DEFAULT_GENERATE = 32


def _version() -> str:
    from attnforge.sim.specs.version import __version__

    return __version__


@dataclass(frozen=True)
class Scenario:
    """A fully resolved run request. ``p``, ``m`` and ``batch`` are per point (equal lengths): one Scenario is one
    vectorised engine call over all its points."""

    accelerator: Accelerator
    arch: Arch
    arch_source: str
    overrides: tuple[tuple[str, Any], ...]
    model: Model
    p: tuple[int, ...]
    m: tuple[int, ...]
    batch: tuple[int, ...]
    causal: bool = False
    stage: str = "prefill"
    scope: str = "attention"
    tiles: tuple[tuple[str, int], ...] = ()
    policy: Policy | None = None
    fidelity: str = "analytical"
    seed: int = 0
    #: Cycle fidelity only: the RTL instance's parameters (``--rtl-param``) and query rows sampled (SpAtten).
    rtl_params: tuple[tuple[str, int], ...] = ()
    sample_rows: int | None = None
    #: The cascade family's mapping when the user gave one (``--mapping``: a registered name or a file); None runs
    #: the accelerator's own. ``mapping_source`` is what the user wrote.
    mapping: MappingSpec | None = None
    mapping_source: str | None = None
    #: The phase of a generative run this Scenario is (None: a plain prefill or decode shape); with "generate"
    #: the points are the steps, one per generated token.
    phase: str | None = None
    version: str = field(default_factory=_version)

    # ---- construction -----------------------------------------------------------------------------------------
    @classmethod
    def build(
        cls,
        *,
        accelerator: str = "fusemax",
        workload: str | Model = "bert-base",
        seq_lens: int | str | Sequence[int | str] = 4096,
        batch: int | Sequence[int] = 64,
        p: int | None = None,
        m: int | None = None,
        causal: bool | None = None,
        stage: str = "prefill",
        scope: str = "attention",
        arch: str | Path | Arch | None = None,
        overrides: Mapping[str, Any] | None = None,
        tiles: Mapping[str, int] | None = None,
        policy: str | Policy | Mapping[str, Any] | None = None,
        fidelity: str = "analytical",
        seed: int = 0,
        rtl_params: Mapping[str, int] | None = None,
        sample_rows: int | None = None,
        mapping: str | Path | MappingSpec | None = None,
        phase: str | None = None,
        generate: int | None = None,
    ) -> Scenario:
        """Resolve names and check every field; a bad value is one SpecError naming the option."""
        acc = get_accelerator(accelerator)
        _choice("stage", stage, STAGES)
        _choice("scope", scope, SCOPES)
        _choice("fidelity", fidelity, FIDELITIES)
        model = workload if isinstance(workload, Model) else get_model(str(workload))
        acc.check_model(model)  # at build, so every fidelity refuses it (SpAtten's cycle model is per-head too)
        the_arch, source, ovr = resolve_arch(acc, arch, overrides)
        is_causal = model.causal if causal is None else bool(causal)
        if phase is not None or generate is not None:
            stage, seq_lens = _phase(model.name, is_causal, phase, generate, seq_lens, stage, p, m)
        ps, ms, bs = _points(seq_lens, batch, p, m, stage)
        _check_causal_points(is_causal, ps, ms)
        the_mapping, mapping_source = _mapping(acc, the_arch, mapping)
        return cls(
            accelerator=acc, arch=the_arch, arch_source=source, overrides=ovr, model=model, p=ps, m=ms, batch=bs,
            causal=is_causal, stage=stage, scope=scope, tiles=_tiles(tiles), policy=_policy(acc, policy, is_causal),
            fidelity=fidelity, seed=int(seed), rtl_params=tuple(sorted((rtl_params or {}).items())),
            sample_rows=sample_rows, mapping=the_mapping, mapping_source=mapping_source, phase=phase,
        )

    @classmethod
    def for_workload(cls, accelerator: str, wl: Any, **kw: Any) -> Scenario:
        """The Scenario of one :class:`attnforge.workloads.Workload` (its model, shape, causal and stage)."""
        return cls.build(accelerator=accelerator, workload=wl.model, seq_lens=[wl.m], p=wl.p, m=wl.m, batch=wl.batch,
                         causal=wl.causal, stage=wl.stage, seed=wl.seed, **kw)

    def with_(self, **kw: Any) -> Scenario:
        return replace(self, **kw)

    # ---- what each fidelity can honour ------------------------------------------------------------------------
    def check_honoured(self) -> None:
        """Refuse, in one line, any option this fidelity and accelerator family would otherwise ignore."""
        if self.policy is not None and self.policy.warmup_steps:
            # A Scenario runs one policy on every point; the unpruned warm-up steps of a generative benchmark run
            # apart, with their own policy (reports.spatten_runs.run_phase does the split).
            raise SpecError("policy.warmup_steps", f"{self.policy.warmup_steps} warm-up steps cannot be honoured by "
                            "one Scenario (one policy on every point): run the benchmark with run_phase "
                            "(attnforge.reports.spatten_runs), which runs its warm-up steps apart, or give 0")
        if self.fidelity == "analytical":
            if self.rtl_params:
                raise SpecError("--rtl-param", "sizes an RTL instance; it needs --fidelity cycle")
            if self.sample_rows is not None:
                raise SpecError("--cycle-rows", "samples rows for the cycle model; it needs --fidelity cycle")
            return
        if self.mapping is not None:
            raise SpecError("--mapping", "cannot be honoured by --fidelity cycle (the RTL implements FuseMax's own "
                            "mapping)")
        fam = self.accelerator.family
        # fusemax-top's arch, or a SpAtten arch with a ``top`` section (spatten-top), is the RTL instance: --arch /
        # --set size it
        sp_top = getattr(self.arch, "top", None) is not None
        top = self.accelerator.name == "fusemax-top" or sp_top
        if fam == "cascade" and self.accelerator.name != "fusemax" and not top:
            raise SpecError("--accel", f"--fidelity cycle models the FuseMax tile engine, the fusemax-top layer or the "
                            f"SpAtten pipeline RTL, not {self.accelerator.name!r}", ["fusemax", "fusemax-top", "spatten"])
        refused = {
            "--scope end-to-end": self.scope != "attention",
            "--tile": bool(self.tiles),
            "--set / --arch (the cycle model runs the RTL instance given by --rtl-param)":
                (bool(self.overrides) or self.arch_source != self.accelerator.arch) and not top,
            "--causal (the RTL has no causal mask)": self.causal and fam == "cascade",
            "--cycle-rows (only SpAtten's cycles depend on sampled rows)": self.sample_rows is not None and fam != "spatten",
        }
        for option, bad in refused.items():
            if bad:
                raise SpecError(option.split(" (")[0], f"cannot be honoured by --fidelity cycle"
                                f"{' (' + option.split(' (', 1)[1] if ' (' in option else ''}")
        if fam == "spatten" and self.policy is not None:
            base = policy_for(self.accelerator.policy or "auto", self.causal)
            changed = [k for k in policy_settings(self.policy) if getattr(self.policy, k) != getattr(base, k)]
            takes = ("threshold", "v_ratio", "token_ratio", "head_ratio") if sp_top else ("threshold", "v_ratio")
            extra = [k for k in changed if k not in takes]
            if extra:
                what = ("spatten-top RTL takes only --threshold, --v-ratio, --token-ratio and --head-ratio" if sp_top
                        else "one-query pipeline RTL takes only --threshold and --v-ratio")
                raise SpecError("--" + extra[0].replace("_", "-"), f"cannot be honoured by --fidelity cycle (the {what})")

    # ---- views ------------------------------------------------------------------------------------------------
    @property
    def points(self) -> int:
        return len(self.m)

    @property
    def name(self) -> str:
        return self.accelerator.name

    @property
    def label(self) -> str:
        """How results name this run: the accelerator, or ``accelerator@mapping`` (as given) with a user's mapping."""
        return self.name if self.mapping is None else f"{self.name}@{self.mapping_source}"

    def point(self, i: int) -> Scenario:
        """The single-point Scenario of point ``i``."""
        return replace(self, p=(self.p[i],), m=(self.m[i],), batch=(self.batch[i],))

    def describe(self) -> dict[str, Any]:
        """What every output records beside the numbers: who asked for what, on which arch, with which tool."""
        pol = self.policy
        out: dict[str, Any] = {
            "accelerator": self.accelerator.name,
            "arch": self.arch.name,
            "arch_source": self.arch_source,
            "overrides": {k: v for k, v in self.overrides},
            "policy": None if pol is None else pol.name,
            "policy_settings": None if pol is None else policy_settings(pol),
            "fidelity": self.fidelity,
            "attnforge_version": self.version,
        }
        if self.mapping is not None:
            # Only when the user chose one, so runs of an accelerator's own mapping keep their keys.
            out.update(mapping=self.mapping.name, mapping_source=self.mapping_source, cascade=self.mapping.cascade)
        if self.phase is not None:
            out.update(phase=self.phase)  # only when asked, so plain runs keep their keys
        if self.model.kv_heads != self.model.heads:
            # Only when K/V are shared, so multi-head outputs (every report and golden file so far) keep their keys.
            out.update(heads=self.model.heads, kv_heads=self.model.kv_heads)
        return out

    def header(self) -> str:
        """One line for the top of a text table."""
        d = self.describe()
        ovr = ", ".join(f"{k}={v}" for k, v in d["overrides"].items())
        parts = [f"{d['accelerator']} on arch {d['arch']} ({d['arch_source']}{'; ' + ovr if ovr else ''})"]
        if self.mapping is not None:
            parts.append(f"mapping {self.mapping.name} ({self.mapping_source}; cascade {self.mapping.cascade})")
        if d["policy"]:
            parts.append(f"policy {d['policy']}")
        parts.append(f"{self.fidelity} fidelity")
        parts.append(f"attnforge {self.version}")
        return ", ".join(parts)


# ---- helpers ------------------------------------------------------------------------------------------------------
def _choice(name: str, value: str, allowed: Iterable[str]) -> None:
    allowed = tuple(allowed)
    if value not in allowed:
        raise SpecError(name, f"unknown {name} {value!r}", allowed)


def _mapping(acc: Accelerator, arch: Arch,
             mapping: str | Path | MappingSpec | None) -> tuple[MappingSpec | None, str | None]:
    """The user's mapping (a registered name, a mapping file or a Mapping), checked against the arch's arrays;
    refused for families that run no cascade mapping (SpAtten)."""
    if mapping is None:
        return None, None
    if acc.family != "cascade":
        raise SpecError("mapping", f"{acc.name} runs SpAtten's own pruned pipeline, not an Einsum-cascade mapping",
                        sorted(a.name for a in ACCELERATORS.values() if a.family == "cascade"))
    from attnforge.mappings.files import check_mapping_arch, resolve_mapping

    m = resolve_mapping(mapping)
    check_mapping_arch(m, arch.arrays, arch.name)  # type: ignore[attr-defined]  # a cascade arch (checked at bind)
    return m, (f"object {m.name}" if isinstance(mapping, MappingSpec) else str(mapping))


def resolve_arch(acc: Accelerator, arch: str | Path | Arch | None,
                 overrides: Mapping[str, Any] | None) -> tuple[Arch, str, tuple[tuple[str, Any], ...]]:
    """The accelerator's preset, or a preset name / YAML file / Arch object instead, with dotted overrides."""
    ovr = tuple(sorted((overrides or {}).items()))
    if isinstance(arch, Arch):
        if ovr:
            raise SpecError("overrides", "apply overrides to an arch name or file, not to a built Arch object")
        acc.check_arch(arch)
        return arch, f"object {arch.name}", ()
    source = str(arch) if arch is not None else acc.arch
    if ovr or arch is not None:
        for k, v in ovr:
            check_finite(v, f"--set {k}")
        built = load_arch(source, dict(ovr))
        check_finite(built.model_dump(), f"arch {built.name}")  # an arch file's .inf, .nan or 1e400 too
    else:
        built = get_preset(acc.arch)
    acc.check_arch(built)  # binding: the accelerator's builder reads its own family's section of the arch
    return built, source, ovr


def check_size(name: str, value: Any) -> int:
    """A positive integer no larger than MAX_SIZE (bools and floats are refused: 1.5 tokens is a typo)."""
    if isinstance(value, bool) or not isinstance(value, int) and not (hasattr(value, "__index__")):
        raise SpecError(name, f"must be a positive integer, got {value!r}")
    v = int(value)
    if v <= 0:
        raise SpecError(name, f"must be a positive integer, got {v}")
    if v > MAX_SIZE:
        raise SpecError(name, f"{v} is larger than the largest size modelled", f"1..{MAX_SIZE} (2**30)")
    return v


def _lengths(seq_lens: int | str | Sequence[int | str]) -> list[int]:
    items = [seq_lens] if isinstance(seq_lens, (int, str)) else list(seq_lens)
    out = [check_size("seq-len", parse_length(x) if isinstance(x, str) else x) for x in items]
    if not out:
        raise SpecError("seq-len", "give at least one sequence length")
    return out


def _points(seq_lens: int | str | Sequence[int | str], batch: int | Sequence[int], p: int | None, m: int | None,
            stage: str) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """(P, M, batch) per point: every length x every batch. M = the length unless --m fixes it; P = the length in
    prefill and 1 in decode, unless --p fixes it."""
    lengths = _lengths(seq_lens)
    batches = [check_size("batch", b) for b in ([batch] if isinstance(batch, int) else list(batch))]
    if not batches:
        raise SpecError("batch", "give at least one batch size")
    if m is not None and len(lengths) > 1:
        raise SpecError("--m", "fixes the key length, so give one --seq-len (or leave --m out)")
    pp = None if p is None else check_size("--p", p)
    mm = None if m is None else check_size("--m", m)
    ps: list[int] = []
    ms: list[int] = []
    bs: list[int] = []
    for length, b in itertools.product(lengths, batches):
        ms.append(mm if mm is not None else length)
        ps.append(pp if pp is not None else (1 if stage == "decode" else length))
        bs.append(b)
    return tuple(ps), tuple(ms), tuple(bs)


def _check_causal_points(causal: bool, ps: Sequence[int], ms: Sequence[int]) -> None:
    """A causal mask aligns the P queries with the last P of the M keys (query i sees keys up to M - P + i), so it
    needs P <= M: more queries than keys would leave the first ones with nothing to attend to, which no causal
    model has (its queries are among its keys)."""
    for pp, mm in zip(ps, ms, strict=True):
        if causal and pp > mm:
            raise SpecError("--p", f"a causal mask needs the queries among the keys (P <= M); got P = {pp}, M = {mm} "
                            "(give --m >= --p, or leave the mask out with a non-causal workload)")


def _phase(model: str, causal: bool, phase: str | None, generate: int | None, seq_lens: int | str | Sequence[int | str],
           stage: str, p: int | None, m: int | None) -> tuple[str, list[int]]:
    """The stage and lengths of one phase of a generative run. Refused where it cannot apply: an encoder (no
    generation, no causal prompt), a shape fixed by hand (--stage decode, --p, --m), --generate without --phase."""
    if phase is None:
        raise SpecError("--generate", "counts the tokens of a generation phase; give --phase generate")
    _choice("phase", phase, PHASES)
    if not causal:
        raise SpecError("--phase", f"{model} is an encoder (not causal): it has no prompt or generation phase; "
                        "run it as a plain prefill")
    if stage != "prefill" or p is not None or m is not None:
        raise SpecError("--phase", "sets the shape itself; leave out --stage, --p and --m")
    lengths = _lengths(seq_lens)
    if phase == "prompt":
        if generate is not None:
            raise SpecError("--generate", "applies to --phase generate, not to the prompt")
        return "prefill", lengths
    n = check_size("--generate", DEFAULT_GENERATE if generate is None else generate)
    return "decode", [length + 1 + i for length in lengths for i in range(n)]


def _tiles(tiles: Mapping[str, int] | None) -> tuple[tuple[str, int], ...]:
    out = []
    for k, v in (tiles or {}).items():
        out.append((str(k), check_size(f"--tile {k}", v)))
    return tuple(sorted(out))


def _policy(acc: Accelerator, policy: str | Policy | Mapping[str, Any] | None, causal: bool) -> Policy | None:
    """SpAtten accelerators always run a policy (their default, a named one, or the default with knobs changed);
    any other family refuses one, since nothing there would read it."""
    if acc.family != "spatten":
        if policy is not None:
            raise SpecError("policy", f"{acc.name} has no SpAtten algorithm settings to change",
                            ["spatten", "spatten-1/8", "spatten-dense", "a3", "mnnfast"])
        return None
    base = policy_for(acc.policy or "auto", causal)
    if policy is None:
        return base
    if isinstance(policy, Policy):
        return policy
    if isinstance(policy, str):
        if policy not in POLICY_NAMES:
            raise SpecError("policy", f"unknown policy {policy!r}", POLICY_NAMES)
        return policy_for(policy, causal)
    return apply_knobs(base, policy)


def apply_knobs(base: Policy, knobs: Mapping[str, Any]) -> Policy:
    """The base policy with the CLI's knobs (``quant`` as "6+4" progressive or "8" static) applied and renamed."""

    kw: dict[str, Any] = {}
    for k, v in knobs.items():
        if k not in POLICY_KNOBS:
            raise SpecError("policy", f"unknown setting {k!r}", POLICY_KNOBS)
        if v is None:
            continue
        if k == "quant":
            msb, lsb = parse_setting(str(v))
            kw.update(quantize=True, k_msb=msb, k_lsb=lsb, progressive=lsb > 0, lsb_refetch_rate=None)
        elif k == "lsb_refetch_rate":  # one rate for every layer, after --quant (which would reset it)
            kw.update(lsb_refetch_rate=v, lsb_refetch_layers=None)
        else:
            kw[k] = v
    if not kw:
        return base
    out = base.with_(name=f"{base.name}+custom", **kw)
    if knobs.get("lsb_refetch_rate") is not None and not (out.quantize and out.progressive and out.k_lsb):
        raise SpecError("--lsb-refetch-rate", f"policy {base.name} fetches K whole (static quantization): no row "
                        "refetches LSBs; give a progressive --quant such as 6+4")
    return out


def policy_settings(pol: Policy) -> dict[str, Any]:
    """The knobs of a policy as plain data (for JSON, CSV and table headers)."""
    from dataclasses import asdict

    return {k: v for k, v in asdict(pol).items() if k != "name"}
