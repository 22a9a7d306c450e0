"""A golden pass of the whole SpAtten accelerator (``spatten-top``) on a workload, for the cycle and analytical
fidelities of ``simulate --arch spatten-top`` and their tests.

Why here and not in the benches: the cycle model and the analytical model both need the pass's data-dependent
facts (kept token and head sets, refetches, top-k results), so the CLI and the fast tests build the same golden
run the RTL bench checks, without the bench's memory image. MiniLM runs on the real text
(:func:`attnforge.sim.spatten.top_golden.text_input`) when its weights are installed; without them, and for any
other model, a seeded encoder of the model's shape (:func:`attnforge.sim.spatten.realdata.synthetic_inputs`) gives
the tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

from attnforge.sim.contract.spatten_fx import SpattenFx
from attnforge.sim.spatten import top_golden as tg
from attnforge.sim.spatten.realdata import minilm_path, synthetic_inputs
from attnforge.sim.specs.spatten_policy import Policy


@dataclass(frozen=True)
class TopPass:
    """A golden pass and where its tensors came from (``real:...`` or ``synthetic:seedN``)."""

    run: tg.TopRun
    source: str
    tokens: int
    heads: int


def golden_pass(*, layers: int, heads: int, d_head: int, tokens: int, fx: SpattenFx, policy: Policy,
                real: bool = False, seed: int = 0, d_ff: int | None = None) -> TopPass:
    """All ``layers`` on ``tokens`` tokens with the policy's schedule (:func:`top_golden.schedule`). ``real``:
    MiniLM on the real text when its weights are installed (the first ``tokens`` tokens), else a seeded encoder
    of the given shape (``d_ff`` default 4 x d_model)."""
    if real and minilm_path() is not None:
        enc, x, _ = tg.text_input()
        x = x[:tokens]
    else:
        d_model = heads * d_head
        enc, xs = synthetic_inputs(layers=layers, heads=heads, d_model=d_model, d_ff=d_ff or 4 * d_model,
                                   lengths=(tokens,), seed=seed)
        x = xs[0]
    run = tg.forward(enc, x, tg.schedule(policy, len(enc.layers), enc.heads, x.shape[0], fx), fx)
    return TopPass(run, enc.source, int(x.shape[0]), enc.heads)
