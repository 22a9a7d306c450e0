"""The result of evaluating one accelerator on one workload: what every report is made from."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np


@dataclass
class Result:
    accelerator: str
    workload: str
    seq_len: int
    batch: int
    p: int
    m: int
    scope: str
    stage: str
    causal: bool
    cycles: float
    latency_s: float
    energy_j: float
    energy_breakdown_j: dict[str, float]
    dram_bytes: float
    utilization: dict[str, float]
    flops: float
    passes: int
    bound: str
    roofline_cycles: float
    roofline_bound: str
    stage_cycles: dict[str, float] = field(default_factory=dict)
    tiles: dict[str, float] = field(default_factory=dict)
    area_mm2: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)
    #: Cycles of the schedule's compute and of its DRAM traffic (``bound`` names the larger).
    compute_cycles: float = 0.0
    memory_cycles: float = 0.0
    #: Model layers the result covers (Schedule.layers): compare accelerators per layer (reports/tables.py).
    layers: int = 1
    #: Share of the run's cycles each unit is busy (padded work and stalls in it included, so at least its
    #: utilization): the largest is the compute side's bottleneck, e.g. SpAtten's top-k in pruned decode.
    busy: dict[str, float] = field(default_factory=dict)
    #: The request this result answers (accelerator, arch after overrides, policy, fidelity, version).
    scenario: Any = field(default=None, repr=False, compare=False)
    #: Opt-in (``--actions``): one row per (component, action) with count, pj_each and energy_j, and the leakage
    #: (static) energy beside them; ``sum(energy_j) + leakage_j == energy_j`` of the result.
    actions: list[dict[str, Any]] | None = field(default=None, repr=False, compare=False)
    leakage_j: float | None = field(default=None, repr=False, compare=False)

    @property
    def tflops(self) -> float:
        return self.flops / self.latency_s / 1e12 if self.latency_s else 0.0

    @property
    def avg_power_w(self) -> float:
        """Average power over the run: every action's energy plus static power, over the latency."""
        return self.energy_j / self.latency_s if self.latency_s else 0.0

    def to_dict(self) -> dict[str, Any]:
        """Plain data: the numbers, the accelerator-specific extras, and what the Scenario says about the run."""
        sc = self.scenario
        d = {f.name: getattr(self, f.name) for f in fields(self)
             if f.name not in ("scenario", "extra", "actions", "leakage_j")}
        d = {k: (dict(v) if isinstance(v, dict) else v) for k, v in d.items()}
        d["avg_power_w"] = self.avg_power_w
        d.update(self.extra)
        if sc is not None:
            d.update({k: v for k, v in sc.describe().items() if k != "accelerator"})
        if self.actions is not None:
            d["actions"] = [dict(a) for a in self.actions]
            d["leakage_j"] = self.leakage_j
        return _plain(d)


def _plain(x: Any) -> Any:
    if isinstance(x, dict):
        return {k: _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return x
